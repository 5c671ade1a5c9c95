// The derived-format cache against the real `phonon` binary: single flight
// of concurrent first requests, LRU eviction under storage.cache_max_bytes,
// and what /metrics exposes about it.

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tests/integration/media_support.hpp"
#include "tests/integration/support.hpp"

using namespace phonon::integration;

namespace {

using namespace std::chrono_literals;

/// Uploads the shared 3 s WAV fixture to `target` and waits until ready.
void upload_ready_wav(uint16_t port, const std::string& target) {
  auto res = upload_file(port, target, read_file(audio_fixtures().wav),
                         "tone.wav", "audio/wav");
  INFO("upload: " << res.body);
  REQUIRE(res.status == 201);
  require_ready(port, target);
}

/// Polls (at most 3 s) until the bytes in the cache folders below `dir`
/// are at most `bound`; returns the last total seen. The eviction of a
/// file removes it asynchronously, right after the response that caused it.
uint64_t settled_cache_bytes(const std::filesystem::path& dir,
                             uint64_t bound) {
  auto total = cache_bytes_below(dir);
  for (int i = 0; i < 60 && total > bound; ++i) {
    std::this_thread::sleep_for(50ms);
    total = cache_bytes_below(dir);
  }
  return total;
}

/// Sizes of two derived formats of the WAV fixture, measured on a server
/// with the default (large) cache.
std::pair<uint64_t, uint64_t> derived_sizes(const std::string& target,
                                            const std::string& fmt_a,
                                            const std::string& fmt_b) {
  server_process srv;
  srv.start();
  upload_ready_wav(srv.port(), target);
  auto a = http_get(srv.port(), target + "/" + fmt_a);
  auto b = http_get(srv.port(), target + "/" + fmt_b);
  REQUIRE(a.status == 200);
  REQUIRE(b.status == 200);
  return {a.body.size(), b.body.size()};
}

} // namespace

TEST_CASE("16 concurrent first requests for a format share one conversion",
          "[integration][cache]") {
  server_process srv;
  srv.start();
  const auto port = srv.port();
  const std::string target = "/audio/user/5/phrase/1";
  upload_ready_wav(port, target);
  auto before = fetch_metrics(port);
  const metric_labels flac_ok{{"format", "flac"}, {"outcome", "ok"}};

  constexpr int n = 16;
  std::vector<std::unique_ptr<http_connection>> conns;
  for (int i = 0; i < n; ++i)
    conns.push_back(std::make_unique<http_connection>(port));
  std::vector<http_response> results(n);
  std::vector<std::string> errors(n);
  std::atomic<int> arrived{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      ++arrived;
      // Bounded spin: every thread is connected before anyone sends.
      for (int k = 0; k < 200000 && !go.load(); ++k)
        std::this_thread::yield();
      try {
        results[static_cast<size_t>(i)]
          = conns[static_cast<size_t>(i)]->request("GET", target + "/flac");
      } catch (const std::exception& e) {
        errors[static_cast<size_t>(i)] = e.what();
      }
    });
  }
  for (int k = 0; k < 2000 && arrived.load() < n; ++k)
    std::this_thread::sleep_for(1ms);
  go = true;
  for (auto& t : threads)
    t.join();

  for (int i = 0; i < n; ++i) {
    INFO("request " << i << " error: " << errors[static_cast<size_t>(i)]);
    REQUIRE(errors[static_cast<size_t>(i)].empty());
    CHECK(results[static_cast<size_t>(i)].status == 200);
    CHECK(results[static_cast<size_t>(i)].header("Content-Type")
          == "audio/flac");
    CHECK(results[static_cast<size_t>(i)].body == results[0].body);
  }
  auto info = probe_bytes(results[0].body);
  REQUIRE(info);
  CHECK(info->codec_name == "flac");
  CHECK(info->duration == Approx(3.0).margin(0.15));

  auto after = fetch_metrics(port);
  INFO("before:\n" << before << "\nafter:\n" << after);
  CHECK(counter_value(after, "phonon_conversions_total", flac_ok)
        == counter_value(before, "phonon_conversions_total", flac_ok) + 1);
  CHECK(counter_value(after, "phonon_cache_misses_total")
        == counter_value(before, "phonon_cache_misses_total") + 1);
  // The requests really overlapped: not all 15 others came after the
  // conversion had finished (those would count as cache hits).
  CHECK(counter_value(after, "phonon_cache_hits_total")
        - counter_value(before, "phonon_cache_hits_total")
        < n - 1);

  // A later request is a hit and converts nothing.
  auto again = http_get(port, target + "/flac");
  CHECK(again.status == 200);
  CHECK(again.body == results[0].body);
  auto last = fetch_metrics(port);
  CHECK(counter_value(last, "phonon_conversions_total", flac_ok)
        == counter_value(after, "phonon_conversions_total", flac_ok));
  CHECK(counter_value(last, "phonon_cache_hits_total")
        > counter_value(after, "phonon_cache_hits_total"));
}

TEST_CASE("the cache evicts the least recently used format and remakes it",
          "[integration][cache]") {
  const std::string target = "/audio/user/6/phrase/1";
  const std::string fmt_a = "flac";
  const std::string fmt_b = "mp3";
  // Measure the two derived sizes on an unbounded server first.
  auto [size_a, size_b] = derived_sizes(target, fmt_a, fmt_b);
  // Room for either file alone, never for both.
  const uint64_t bound = std::max(size_a, size_b)
                         + std::min(size_a, size_b) / 2;
  INFO(fmt_a << " is " << size_a << " bytes, " << fmt_b << " is " << size_b
             << " bytes, cache_max_bytes=" << bound);
  REQUIRE(bound < size_a + size_b);

  server_process srv;
  srv.start({"--set", "storage.cache_max_bytes=" + std::to_string(bound)});
  const auto port = srv.port();
  upload_ready_wav(port, target);
  auto m0 = fetch_metrics(port);
  auto misses = [](const std::string& text) {
    return counter_value(text, "phonon_cache_misses_total");
  };
  auto evictions = [](const std::string& text) {
    return counter_value(text, "phonon_cache_evictions_total");
  };

  auto first = http_get(port, target + "/" + fmt_a);
  REQUIRE(first.status == 200);
  CHECK(first.body.size() == size_a);
  CHECK(settled_cache_bytes(srv.data_dir(), bound) <= bound);
  auto m1 = fetch_metrics(port);
  CHECK(misses(m1) == misses(m0) + 1);
  CHECK(evictions(m1) == evictions(m0));

  auto second = http_get(port, target + "/" + fmt_b);
  REQUIRE(second.status == 200);
  CHECK(second.body.size() == size_b);
  CHECK(settled_cache_bytes(srv.data_dir(), bound) <= bound);
  auto m2 = fetch_metrics(port);
  CHECK(misses(m2) == misses(m1) + 1);
  CHECK(evictions(m2) == evictions(m1) + 1);

  // A was evicted: the third request converts again and still serves it.
  auto third = http_get(port, target + "/" + fmt_a);
  REQUIRE(third.status == 200);
  CHECK(third.header("Content-Type") == "audio/flac");
  CHECK(third.body.size() == size_a);
  auto info = probe_bytes(third.body);
  REQUIRE(info);
  CHECK(info->codec_name == "flac");
  CHECK(info->duration == Approx(3.0).margin(0.15));
  CHECK(settled_cache_bytes(srv.data_dir(), bound) <= bound);
  auto m3 = fetch_metrics(port);
  CHECK(misses(m3) == misses(m2) + 1);
  CHECK(evictions(m3) == evictions(m2) + 1);
  // The cache folder holds exactly the most recent format.
  CHECK(settled_cache_bytes(srv.data_dir(), size_a) == size_a);
}

TEST_CASE("/metrics exposes requests, latency, queue, transcoders, cache",
          "[integration][cache]") {
  server_process srv;
  srv.start({"--set", "transcoder.workers=3"});
  const auto port = srv.port();
  const std::string target = "/audio/user/7/phrase/1";
  upload_ready_wav(port, target);
  REQUIRE(http_get(port, target + "/ogg").status == 200); // miss
  REQUIRE(http_get(port, target + "/ogg").status == 200); // hit
  REQUIRE(http_get(port, "/audio/user/7/phrase/2/ogg").status == 404);

  auto res = http_get(port, "/metrics");
  REQUIRE(res.status == 200);
  CHECK(res.header("Content-Type").rfind("text/plain", 0) == 0);
  const auto& text = res.body;
  INFO(text);

  // Requests by route and status.
  const std::string fmt_route
    = "/audio/user/:user_id/phrase/:phrase_id/:format";
  double ok_gets = 0;
  double not_found = 0;
  for (auto& [labels, value] :
       metric_samples(text, "phonon_http_requests_total")) {
    CHECK(labels.count("route") == 1);
    CHECK(labels.count("status") == 1);
    auto route = labels.count("route") ? labels.at("route") : "";
    auto status = labels.count("status") ? labels.at("status") : "";
    if (route == fmt_route && status == "200")
      ok_gets += value;
    if (route == fmt_route && status == "404")
      not_found += value;
  }
  CHECK(ok_gets >= 2);
  CHECK(not_found >= 1);

  // Latency histogram: buckets with `le`, cumulative, +Inf equals _count.
  auto buckets = metric_samples(text,
                                "phonon_http_request_duration_seconds_bucket");
  REQUIRE_FALSE(buckets.empty());
  std::vector<std::pair<double, double>> route_buckets; // (le, count)
  double inf_count = -1;
  for (auto& [labels, value] : buckets) {
    REQUIRE(labels.count("le") == 1);
    if (labels.count("route") == 0 || labels.at("route") != fmt_route
        || labels.count("status") == 0 || labels.at("status") != "200")
      continue;
    if (labels.at("le") == "+Inf")
      inf_count = value;
    else
      route_buckets.emplace_back(std::stod(labels.at("le")), value);
  }
  REQUIRE_FALSE(route_buckets.empty());
  std::sort(route_buckets.begin(), route_buckets.end());
  for (size_t i = 1; i < route_buckets.size(); ++i)
    CHECK(route_buckets[i].second >= route_buckets[i - 1].second);
  CHECK(inf_count >= 2); // the two 200 GETs of the ogg
  CHECK(inf_count >= route_buckets.back().second);
  CHECK(metric_value(text, "phonon_http_request_duration_seconds_count",
                     {{"route", fmt_route}, {"status", "200"}})
        == inf_count);
  CHECK(metric_value(text, "phonon_http_request_duration_seconds_sum",
                     {{"route", fmt_route}, {"status", "200"}})
          .value_or(-1)
        > 0);

  // Queue depth, transcoders, cache hits and misses.
  auto depth = metric_value(text, "phonon_queue_depth");
  REQUIRE(depth);
  CHECK(*depth >= 0);
  CHECK(metric_value(text, "phonon_transcoders", {{"kind", "local"}})
        == 3.0);
  CHECK(metric_value(text, "phonon_cache_misses_total").value_or(0) >= 1);
  CHECK(metric_value(text, "phonon_cache_hits_total").value_or(0) >= 1);
  CHECK(text.find("# TYPE phonon_http_requests_total counter")
        != std::string::npos);
  CHECK(text.find("# TYPE phonon_http_request_duration_seconds histogram")
        != std::string::npos);
}

// API.md bounds the cache by storage.cache_max_bytes. Phonon stores a new
// derived file first and evicts afterwards, so for a moment both files are
// on disk; this samples the cache folders during the A, B, A, B sequence.
TEST_CASE("the cache folders never exceed the bound, even for a moment",
          "[integration][cache]") {
  const std::string target = "/audio/user/6/phrase/2";
  auto [size_a, size_b] = derived_sizes(target, "flac", "mp3");
  const uint64_t bound = std::max(size_a, size_b)
                         + std::min(size_a, size_b) / 2;
  server_process srv;
  srv.start({"--set", "storage.cache_max_bytes=" + std::to_string(bound)});
  upload_ready_wav(srv.port(), target);
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> peak{0};
  std::thread sampler{[&] {
    for (int i = 0; i < 1000000 && !stop.load(); ++i) {
      auto now = cache_bytes_below(srv.data_dir());
      if (now > peak.load())
        peak = now;
    }
  }};
  std::vector<unsigned> statuses;
  for (auto* fmt : {"flac", "mp3", "flac", "mp3"})
    statuses.push_back(http_get(srv.port(), target + "/" + fmt).status);
  std::this_thread::sleep_for(200ms);
  stop = true;
  sampler.join();
  CHECK(statuses == std::vector<unsigned>{200, 200, 200, 200});
  INFO("bound " << bound << " bytes, flac " << size_a << ", mp3 " << size_b);
  CHECK(peak.load() <= bound);
}
