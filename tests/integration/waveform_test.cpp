// API.md "Waveforms" against the real server: waveform.json and waveform.dat
// of an uploaded recording, checked against min/max computed here from the
// WAV master Phonon serves (GET .../wav), in audiowaveform's formats; the
// query's 400s, 409 before the master exists, ETag/304/Range/HEAD, one
// computation for concurrent first requests, deletion, the metadata's
// `formats`, and signed links with auth on.

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <ctime>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/integration/jwt_mint.hpp"
#include "tests/integration/media_support.hpp"
#include "tests/integration/support.hpp"
#include "tests/integration/waveform_support.hpp"

using namespace phonon::integration;

namespace {

/// Waveform conversions that succeeded so far.
double conversions_ok(uint16_t port) {
  return counter_value(fetch_metrics(port), "phonon_conversions_total",
                       {{"format", "waveform"}, {"outcome", "ok"}});
}

} // namespace

TEST_CASE("waveform.json and waveform.dat hold audiowaveform's peaks of the "
          "master",
          "[integration][waveform]") {
  temp_dir dir;
  auto wav = stereo_wav(dir);
  server_process srv;
  srv.start();
  auto port = srv.port();
  const std::string target = "/audio/user/41/phrase/1";
  REQUIRE(upload_file(port, target, wav, "stereo.wav", "audio/wav").status
          == 201);
  auto meta = require_ready(port, target);
  CHECK(meta["formats"].value("waveform.json", "")
        == target + "/waveform.json");
  CHECK(meta["formats"].value("waveform.dat", "") == target + "/waveform.dat");
  auto master_res = http_get(port, target + "/wav");
  REQUIRE(master_res.status == 200);
  auto master = parse_wav(master_res.body);
  REQUIRE(master.channels == 2);
  REQUIRE(master.rate == 22050);
  REQUIRE(master.samples.size() > 50000);

  std::vector<waveform_ask> asks{
    {"", 220, false},                                 // 22050 / 100
    {"pixels_per_second=7", 3150, false},
    {"pixels_per_second=1000&channels=mono", 22, true},
    {"samples_per_pixel=32", 32, false},
    {"samples_per_pixel=1000&channels=mono", 1000, true},
    {"samples_per_pixel=1000000&channels=all", 1000000, false},
  };
  for (auto& a : asks) {
    auto q = a.query.empty() ? std::string{} : "?" + a.query;
    check_waveform_json(http_get(port, target + "/waveform.json" + q), master,
                        a);
    check_waveform_dat(http_get(port, target + "/waveform.dat" + q), master, a);
  }
  // The channels differ, so their peaks do (the right one is silent at
  // first and quieter).
  auto all = nlohmann::json::parse(
    http_get(port, target + "/waveform.json?samples_per_pixel=22050").body);
  REQUIRE(all["data"].size() == 8);
  CHECK(all["data"][1].get<int>() > 90);       // left max, first second
  CHECK(all["data"][3].get<int>() < 45);       // right max, first second
  CHECK(all["data"][3].get<int>() > 20);

  SECTION("served like a stored file: ETag, 304, Range, HEAD") {
    auto url = target + "/waveform.dat?pixels_per_second=50";
    auto full = http_get(port, url);
    REQUIRE(full.status == 200);
    auto etag = full.header("ETag");
    REQUIRE(!etag.empty());
    CHECK(!full.header("Last-Modified").empty());
    CHECK(full.header("Accept-Ranges") == "bytes");
    CHECK(full.header("Content-Disposition")
          == "inline; filename=\"41-1.waveform.dat\"");
    CHECK(http_get(port, url, {{"If-None-Match", etag}}).status == 304);
    // Other parameters are another file with another ETag.
    auto other = http_get(port, target + "/waveform.dat?pixels_per_second=51");
    REQUIRE(other.status == 200);
    CHECK(other.header("ETag") != etag);
    auto part = http_get(port, url, {{"Range", "bytes=0-3"}});
    CHECK(part.status == 206);
    CHECK(part.body == full.body.substr(0, 4));
    CHECK(part.header("Content-Range")
          == "bytes 0-3/" + std::to_string(full.body.size()));
    auto head = http_request(port, "HEAD", url);
    CHECK(head.status == 200);
    CHECK(head.body.empty());
    CHECK(head.header("Content-Length") == std::to_string(full.body.size()));
    CHECK(head.header("ETag") == etag);
    auto json_head = http_request(port, "HEAD", target + "/waveform.json");
    CHECK(json_head.status == 200);
    CHECK(json_head.header("Content-Type") == "application/json");
  }

  SECTION("bad zoom or channel values are 400 with a JSON error") {
    for (std::string q :
         {"pixels_per_second=0", "pixels_per_second=1001",
          "pixels_per_second=abc", "pixels_per_second=10&samples_per_pixel=64",
          "samples_per_pixel=31", "samples_per_pixel=1000001",
          "channels=left", "pixels_per_second=-1"}) {
      for (auto name : {"/waveform.json?", "/waveform.dat?"}) {
        INFO(name << q);
        auto res = http_get(port, target + name + q);
        CHECK(res.status == 400);
        expect_json_error(res);
      }
    }
    // Unknown recordings are 404 before any zoom is looked at.
    CHECK(http_get(port, "/audio/user/41/phrase/999/waveform.json").status
          == 404);
    CHECK(http_get(port, "/audio/user/41/phrase/1/waveform.png").status
          == 400);
  }

  SECTION("a replaced recording has the new audio's waveform") {
    auto url = target + "/waveform.json?pixels_per_second=20";
    auto old_res = http_get(port, url);
    REQUIRE(old_res.status == 200);
    auto put = upload_file(port, target, read_file(audio_fixtures().wav),
                           "new.wav", "audio/wav", "PUT");
    REQUIRE(put.status == 200);
    require_ready(port, target);
    auto fresh_master = parse_wav(http_get(port, target + "/wav").body);
    REQUIRE(fresh_master.channels == 1);
    auto fresh = http_get(port, url);
    check_waveform_json(fresh, fresh_master,
                        {"pixels_per_second=20", fresh_master.rate / 20,
                         false});
    CHECK(fresh.header("ETag") != old_res.header("ETag"));
    CHECK(http_get(port, url, {{"If-None-Match", old_res.header("ETag")}})
            .status
          == 200);
  }

  SECTION("concurrent first requests compute it once; it is cached on disk "
          "and goes with the recording") {
    auto before = conversions_ok(port);
    auto url = target + "/waveform.json?pixels_per_second=333&channels=mono";
    std::vector<std::future<http_response>> got;
    for (int i = 0; i < 6; ++i)
      got.push_back(std::async(std::launch::async,
                               [&] { return http_get(port, url); }));
    std::string first;
    for (auto& f : got) {
      auto res = f.get();
      CHECK(res.status == 200);
      if (first.empty())
        first = res.body;
      CHECK(res.body == first);
    }
    CHECK(conversions_ok(port) == before + 1);
    // Served again without a conversion.
    CHECK(http_get(port, url).body == first);
    CHECK(conversions_ok(port) == before + 1);
    // In the revision's cache folder under its parameters' name.
    bool found = false;
    for (auto& e : std::filesystem::recursive_directory_iterator(
           srv.data_dir())) {
      if (e.path().filename() == "waveform-pps333-mono.json"
          && e.path().parent_path().filename() == "cache") {
        found = true;
        CHECK(read_file(e.path()) == first);
      }
    }
    CHECK(found);
    CHECK(cache_bytes_below(srv.data_dir()) >= first.size());
    REQUIRE(http_request(port, "DELETE", target).status == 204);
    CHECK(http_get(port, url).status == 404);
    CHECK(http_get(port, target + "/waveform.dat").status == 404);
    for (int i = 0; i < 40 && cache_bytes_below(srv.data_dir()) > 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds{50});
    CHECK(cache_bytes_below(srv.data_dir()) == 0);
  }
}

TEST_CASE("a waveform is 409 until the master exists",
          "[integration][waveform]") {
  const auto& fx = audio_fixtures();
  server_process srv;
  // The test hook that writes the master after the answer, late.
  srv.set_env({{"PHONON_TEST_MASTER_DELAY_MS", "400"}});
  srv.start();
  auto port = srv.port();
  const std::string target = "/audio/user/42/phrase/1";
  auto res = upload_file(port, target, read_file(fx.m4a), "later.m4a");
  REQUIRE(res.status == 201);
  REQUIRE(res.json()["data"].value("status", "") == "processing");
  auto early = http_get(port, target + "/waveform.dat");
  CHECK(early.status == 409);
  CHECK(early.header("Retry-After") == "1");
  expect_json_error(early);
  REQUIRE(wait_until_settled(port, target).value("status", "") == "ready");
  auto master = parse_wav(http_get(port, target + "/wav").body);
  check_waveform_dat(http_get(port, target + "/waveform.dat"), master,
            {"", master.rate / 100, master.channels == 1});
  // Merged to one channel: a version 1 .dat (checked field by field).
  check_waveform_dat(http_get(port, target + "/waveform.dat?channels=mono"),
                     master, {"channels=mono", master.rate / 100, true});
}

TEST_CASE("waveform URLs work as signed links with auth on",
          "[integration][waveform]") {
  const std::string secret(40, 's');
  const std::string link_secret(40, 'l');
  server_process srv;
  srv.set_env({{"APP_AUTH_SECRET", secret},
               {"APP_AUTH_LINK_SECRET", link_secret}});
  srv.start({"--set", "auth.mode=token"});
  auto port = srv.port();
  auto exp = std::to_string(static_cast<int64_t>(std::time(nullptr)) + 3600);
  auto owner = "Bearer "
               + jwt::mint(R"({"alg":"HS256","typ":"JWT"})",
                           R"({"sub":"5","exp":)" + exp + "}",
                           jwt::key::hs256(secret));
  const std::string target = "/audio/user/5/phrase/1";
  auto body = make_multipart(
    {{"audio_file", "a.m4a", "audio/mp4", read_file(audio_fixtures().m4a)}});
  REQUIRE(http_request(port, "POST", target, body.body,
                       {{"Authorization", owner},
                        {"Content-Type", body.content_type}})
            .status
          == 201);
  nlohmann::json meta;
  for (int i = 0; i < 200; ++i) {
    meta = http_get(port, target, {{"Authorization", owner}}).json();
    if (meta.value("status", "") != "processing")
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds{50});
  }
  REQUIRE(meta.value("status", "") == "ready");
  auto link = meta["formats"].value("waveform.json", "");
  INFO("link " << link);
  REQUIRE(link.rfind(target + "/waveform.json?expires=", 0) == 0);
  REQUIRE(link.find("&sig=") != std::string::npos);
  // Without credentials: 401; with the link: 200, with zoom parameters
  // added to it too.
  CHECK(http_get(port, target + "/waveform.json").status == 401);
  auto got = http_get(port, link);
  CHECK(got.status == 200);
  CHECK(nlohmann::json::parse(got.body)["version"] == 2);
  auto zoomed = http_get(port, link + "&pixels_per_second=10&channels=mono");
  CHECK(zoomed.status == 200);
  CHECK(nlohmann::json::parse(zoomed.body)["channels"] == 1);
  CHECK(http_request(port, "HEAD", link).status == 200);
  // The .dat link is its own: the .json signature does not open it.
  auto dat_link = meta["formats"].value("waveform.dat", "");
  REQUIRE(dat_link.find("&sig=") != std::string::npos);
  CHECK(http_get(port, dat_link).status == 200);
  auto swapped = target + "/waveform.dat" + link.substr(link.find('?'));
  CHECK(http_get(port, swapped).status == 401);
  // The bearer token works as for any other GET.
  CHECK(http_get(port, target + "/waveform.dat", {{"Authorization", owner}})
          .status
        == 200);
}

TEST_CASE("waveforms count against cache_max_bytes and are remade after "
          "eviction",
          "[integration][waveform]") {
  temp_dir dir;
  auto wav = stereo_wav(dir);
  // The .dat sizes follow from the frames: 24 + pixels x 2 channels x 2.
  auto frames = parse_wav(wav).samples.size() / 2;
  auto dat_size = [&](size_t spp) {
    return 24 + (frames + spp - 1) / spp * 4;
  };
  auto size_a = dat_size(32);
  auto size_b = dat_size(64);
  // Room for either alone, never for both.
  auto bound = size_a + size_b / 2;
  server_process srv;
  srv.start({"--set", "storage.cache_max_bytes=" + std::to_string(bound)});
  auto port = srv.port();
  const std::string target = "/audio/user/43/phrase/1";
  REQUIRE(upload_file(port, target, wav, "stereo.wav", "audio/wav").status
          == 201);
  require_ready(port, target);
  auto evictions = [&] {
    return counter_value(fetch_metrics(port), "phonon_cache_evictions_total");
  };
  auto e0 = evictions();
  auto before = conversions_ok(port);
  auto a = http_get(port, target + "/waveform.dat?samples_per_pixel=32");
  REQUIRE(a.status == 200);
  CHECK(a.body.size() == size_a);
  auto b = http_get(port, target + "/waveform.dat?samples_per_pixel=64");
  REQUIRE(b.status == 200);
  CHECK(b.body.size() == size_b);
  CHECK(evictions() == e0 + 1);
  CHECK(cache_bytes_below(srv.data_dir()) <= bound);
  // The first one was evicted: made again, the same bytes.
  auto again = http_get(port, target + "/waveform.dat?samples_per_pixel=32");
  REQUIRE(again.status == 200);
  CHECK(again.body == a.body);
  CHECK(conversions_ok(port) == before + 3);
  CHECK(evictions() == e0 + 2);
  CHECK(cache_bytes_below(srv.data_dir()) == size_a);
}

namespace {

/// Waveform files (cache/waveform-*) below `dir`.
size_t waveform_files_below(const std::filesystem::path& dir) {
  size_t n = 0;
  std::error_code ec;
  for (std::filesystem::recursive_directory_iterator it{dir, ec}, end;
       !ec && it != end; it.increment(ec)) {
    std::error_code ec2;
    if (it->is_regular_file(ec2)
        && it->path().parent_path().filename() == "cache"
        && it->path().filename().string().rfind("waveform-", 0) == 0)
      ++n;
  }
  return n;
}

} // namespace

TEST_CASE("a revision keeps at most 8 waveform files, evicting its least "
          "recently used",
          "[integration][waveform][cache]") {
  temp_dir dir;
  auto wav = stereo_wav(dir);
  server_process srv;
  srv.start();
  auto port = srv.port();
  const std::string target = "/audio/user/44/phrase/1";
  REQUIRE(upload_file(port, target, wav, "stereo.wav", "audio/wav").status
          == 201);
  require_ready(port, target);
  auto master_res = http_get(port, target + "/wav");
  REQUIRE(master_res.status == 200);
  auto master = parse_wav(master_res.body);
  auto evictions = [&] {
    return counter_value(fetch_metrics(port), "phonon_cache_evictions_total");
  };
  auto e0 = evictions();
  // 12 zooms, half of them JSON: every answer right, never more than 8
  // files on disk.
  for (int spp = 32; spp < 44; ++spp) {
    waveform_ask a{"samples_per_pixel=" + std::to_string(spp), spp, false};
    auto path = target + (spp % 2 ? "/waveform.json?" : "/waveform.dat?")
                + a.query;
    auto res = http_get(port, path);
    if (spp % 2)
      check_waveform_json(res, master, a);
    else
      check_waveform_dat(res, master, a);
    CHECK(waveform_files_below(srv.data_dir()) <= 8);
  }
  CHECK(waveform_files_below(srv.data_dir()) == 8);
  CHECK(evictions() == e0 + 4);
  // The first (evicted) one is made again, the same numbers; another one
  // leaves in its place.
  waveform_ask first{"samples_per_pixel=32", 32, false};
  check_waveform_dat(http_get(port, target + "/waveform.dat?" + first.query),
                     master, first);
  CHECK(waveform_files_below(srv.data_dir()) == 8);
  CHECK(evictions() == e0 + 5);
  // Other formats of the revision are not waveforms: not bounded by it.
  REQUIRE(http_get(port, target + "/mp3").status == 200);
  CHECK(waveform_files_below(srv.data_dir()) == 8);
  // The zooms a client picks never become metric labels (found by a
  // hostile review: 3000 zooms grew /metrics from 14 KB to 4.4 MB): every
  // waveform job is target/format "waveform".
  auto text = fetch_metrics(port);
  CHECK(text.find("waveform-") == std::string::npos);
  bool counted_as_waveform
    = text.find("phonon_transcoder_jobs_total{outcome=\"ok\",target=\"waveform\"}")
        != std::string::npos
      || text.find("phonon_transcoder_jobs_total{target=\"waveform\",outcome=\"ok\"}")
           != std::string::npos;
  CHECK(counted_as_waveform);
}

TEST_CASE("waveform jobs weigh their output in the queue: a client asking "
          "many zooms of a long master leaves room for other conversions",
          "[integration][waveform]") {
  temp_dir dir;
  // A: a small FLAC that decodes to 60 s of 48 kHz stereo, an 11.5 MB
  // master, far above the queue's byte bound; B: a small recording whose
  // formats need conversions.
  auto a_path = dir / "long.flac";
  make_media("-f lavfi -i \"sine=frequency=300:sample_rate=48000:d=60\" "
             "-ac 2 -c:a flac",
             a_path);
  auto b_path = dir / "short.wav";
  make_media("-f lavfi -i \"sine=frequency=440:sample_rate=8000:d=1\" "
             "-c:a pcm_s16le",
             b_path);
  server_process srv;
  srv.start({"--set", "transcoder.queue_limit_bytes=1MiB"});
  auto port = srv.port();
  const std::string a = "/audio/user/45/phrase/1";
  const std::string b = "/audio/user/45/phrase/2";
  REQUIRE(upload_file(port, a, read_file(a_path), "long.flac", "audio/flac")
            .status
          == 201);
  REQUIRE(upload_file(port, b, read_file(b_path), "short.wav", "audio/wav")
            .status
          == 201);
  require_ready(port, a);
  require_ready(port, b);
  // Three clients ask for new zooms of A, one after another, until the
  // victim is done (bounded).
  std::atomic<bool> stop{false};
  std::atomic<int> attacker_ok{0};
  std::atomic<int> attacker_other{0};
  std::vector<std::future<void>> attackers;
  for (int t = 0; t < 3; ++t)
    attackers.push_back(std::async(std::launch::async, [&, t] {
      for (int i = 0; i < 300 && !stop; ++i) {
        auto spp = 1000 + t * 1000 + i;
        auto res = http_get(port, a + "/waveform.dat?samples_per_pixel="
                                    + std::to_string(spp));
        (res.status == 200 ? attacker_ok : attacker_other) += 1;
      }
    }));
  // Let the attack run, then the victim asks for conversions of B.
  while (attacker_ok + attacker_other < 6)
    std::this_thread::sleep_for(std::chrono::milliseconds{5});
  std::vector<int> statuses;
  for (auto format : {"mp3", "ogg", "opus", "flac", "webm", "m4a"})
    statuses.push_back(http_get(port, b + "/" + format).status);
  stop = true;
  for (auto& f : attackers)
    f.get();
  INFO("attacker 200s " << attacker_ok << ", other " << attacker_other);
  CHECK(std::count(statuses.begin(), statuses.end(), 200) == 6);
  CHECK(attacker_other == 0);
}
