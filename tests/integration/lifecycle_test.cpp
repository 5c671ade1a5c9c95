// Create, replace, delete and list recordings against the real `phonon`
// binary.

#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/media_support.hpp"
#include "tests/integration/support.hpp"

using namespace phonon::integration;

namespace {

using namespace std::chrono_literals;

const std::vector<std::string>& all_formats() {
  static const std::vector<std::string> result{"m4a", "wav",  "mp3", "ogg",
                                               "opus", "flac", "webm"};
  return result;
}

/// Phrase ids of a list answer's items, in order.
std::vector<int64_t> phrase_ids(const nlohmann::json& doc) {
  std::vector<int64_t> result;
  for (auto& item : doc["items"])
    result.push_back(item.value("phrase_id", int64_t{-1}));
  return result;
}

} // namespace

TEST_CASE("POST twice is 409; PUT replaces the audio and its derived formats",
          "[integration][lifecycle]") {
  temp_dir dir{"phonon-it-lifecycle"};
  auto two = dir / "two.m4a";
  auto four = dir / "four.m4a";
  make_media("-f lavfi -i sine=frequency=440:duration=2:sample_rate=44100 "
             "-ac 1 -c:a aac -b:a 64k -movflags +faststart",
             two);
  make_media("-f lavfi -i sine=frequency=880:duration=4:sample_rate=48000 "
             "-ac 2 -c:a aac -b:a 96k -movflags +faststart",
             four);
  auto two_bytes = read_file(two);
  auto four_bytes = read_file(four);

  server_process srv;
  srv.start();
  const auto port = srv.port();
  const std::string target = "/audio/user/3/phrase/9";
  REQUIRE(upload_file(port, target, two_bytes, "two.m4a").status == 201);
  auto meta = require_ready(port, target);
  CHECK(meta.value("duration_ms", 0.0) == Approx(2000).margin(100));
  auto old_m4a = http_get(port, target + "/m4a");
  REQUIRE(old_m4a.status == 200);
  auto old_etag = old_m4a.header("ETag");
  REQUIRE_FALSE(old_etag.empty());
  // A derived format made (and cached) before the replacement.
  auto old_ogg = http_get(port, target + "/ogg");
  REQUIRE(old_ogg.status == 200);
  CHECK(decoded_seconds_of(old_ogg.body) == Approx(2.0).margin(0.15));

  SECTION("a second POST is 409 and changes nothing") {
    auto res = upload_file(port, target, four_bytes, "four.m4a");
    CHECK(res.status == 409);
    expect_json_error(res);
    auto now = http_get(port, target + "/m4a");
    REQUIRE(now.status == 200);
    CHECK(now.body == two_bytes);
    CHECK(now.header("ETag") == old_etag);
  }

  SECTION("PUT on an existing recording is 200 and serves the new audio") {
    auto res = upload_file(port, target, four_bytes, "four.m4a", "audio/mp4",
                           "PUT");
    INFO("PUT answer: " << res.body);
    CHECK(res.status == 200);
    auto doc = res.json();
    REQUIRE(doc.is_object());
    REQUIRE(doc.contains("data"));
    CHECK(doc["data"].value("original_filename", "") == "four.m4a");
    CHECK(doc["data"].value("size_bytes", uint64_t{0}) == four_bytes.size());

    auto m4a = http_get(port, target + "/m4a");
    REQUIRE(m4a.status == 200);
    CHECK(m4a.body == four_bytes);
    CHECK(decoded_seconds_of(m4a.body) == Approx(4.0).margin(0.15));
    CHECK_FALSE(m4a.header("ETag").empty());
    CHECK(m4a.header("ETag") != old_etag);
    // The old validator no longer matches.
    auto cond = http_get(port, target + "/m4a",
                         {{"If-None-Match", old_etag}});
    CHECK(cond.status == 200);

    auto after = require_ready(port, target);
    CHECK(after.value("duration_ms", 0.0) == Approx(4000).margin(100));
    CHECK(after.value("sample_rate", 0) == 48000);
    CHECK(after.value("channels", 0) == 2);
    // The cached ogg of the old audio is gone: the new one is 4 s.
    auto ogg = http_get(port, target + "/ogg");
    REQUIRE(ogg.status == 200);
    CHECK(ogg.header("ETag") != old_ogg.header("ETag"));
    CHECK(decoded_seconds_of(ogg.body) == Approx(4.0).margin(0.15));
    auto wav = http_get(port, target + "/wav");
    REQUIRE(wav.status == 200);
    auto info = probe_bytes(wav.body);
    REQUIRE(info);
    CHECK(info->duration == Approx(4.0).margin(0.15));
    CHECK(info->sample_rate == 48000);
    CHECK(info->channels == 2);
  }

  SECTION("PUT on a new pair is 201") {
    const std::string fresh = "/audio/user/3/phrase/10";
    auto res = upload_file(port, fresh, four_bytes, "four.m4a", "audio/mp4",
                           "PUT");
    CHECK(res.status == 201);
    CHECK(res.header("Location") == fresh);
    auto m4a = http_get(port, fresh + "/m4a");
    REQUIRE(m4a.status == 200);
    CHECK(m4a.body == four_bytes);
    // The neighbour is untouched.
    CHECK(http_get(port, target + "/m4a").body == two_bytes);
  }
}

TEST_CASE("DELETE removes the recording and every format",
          "[integration][lifecycle]") {
  server_process srv;
  srv.start();
  const auto port = srv.port();
  const std::string target = "/audio/user/4/phrase/2";
  const std::string other = "/audio/user/4/phrase/3";
  auto wav = read_file(audio_fixtures().wav);
  REQUIRE(upload_file(port, target, wav, "a.wav", "audio/wav").status == 201);
  REQUIRE(upload_file(port, other, wav, "b.wav", "audio/wav").status == 201);
  require_ready(port, target);
  require_ready(port, other);
  for (auto& fmt : all_formats())
    REQUIRE(http_get(port, target + "/" + fmt).status == 200);
  auto folder = srv.data_dir() / "audio" / "4" / "2";
  REQUIRE(bytes_below(folder) > 0);

  auto del = http_request(port, "DELETE", target);
  CHECK(del.status == 204);
  CHECK(del.body.empty());

  auto meta = http_get(port, target);
  CHECK(meta.status == 404);
  expect_json_error(meta);
  for (auto& fmt : all_formats()) {
    INFO("format " << fmt);
    auto res = http_get(port, target + "/" + fmt);
    CHECK(res.status == 404);
    expect_json_error(res);
  }
  auto again = http_request(port, "DELETE", target);
  CHECK(again.status == 404);
  expect_json_error(again);

  // Its files are gone from disk (bounded wait), the neighbour is kept.
  auto left = bytes_below(folder);
  for (int i = 0; i < 40 && left > 0; ++i) {
    std::this_thread::sleep_for(50ms);
    left = bytes_below(folder);
  }
  CHECK(left == 0);
  CHECK(http_get(port, other).status == 200);
  CHECK(http_get(port, other + "/wav").status == 200);

  // The pair can be used again with POST.
  CHECK(upload_file(port, target, wav, "c.wav", "audio/wav").status == 201);
}

TEST_CASE("listing a user's recordings pages by phrase id",
          "[integration][lifecycle]") {
  server_process srv;
  srv.start();
  const auto port = srv.port();
  auto wav = read_file(audio_fixtures().wav);
  // Uploaded out of order: the list is ordered by phrase id.
  for (int p : {3, 1, 5, 2, 4}) {
    auto target = "/audio/user/7/phrase/" + std::to_string(p);
    REQUIRE(upload_file(port, target, wav, "t.wav", "audio/wav").status
            == 201);
  }
  REQUIRE(upload_file(port, "/audio/user/8/phrase/1", wav, "t.wav",
                      "audio/wav")
            .status
          == 201);

  auto page = [&](const std::string& query) {
    auto res = http_get(port, "/audio/user/7" + query);
    INFO("GET /audio/user/7" << query << " -> " << res.status << " "
                             << res.body);
    REQUIRE(res.status == 200);
    CHECK(res.header("Content-Type").rfind("application/json", 0) == 0);
    auto doc = res.json();
    REQUIRE(doc.is_object());
    REQUIRE(doc.contains("items"));
    REQUIRE(doc["items"].is_array());
    REQUIRE(doc.contains("next"));
    for (auto& item : doc["items"])
      CHECK(item.value("user_id", int64_t{-1}) == 7);
    return doc;
  };

  auto p1 = page("?limit=2");
  CHECK(phrase_ids(p1) == std::vector<int64_t>{1, 2});
  CHECK(p1["next"] == "2");
  auto p2 = page("?limit=2&after=2");
  CHECK(phrase_ids(p2) == std::vector<int64_t>{3, 4});
  CHECK(p2["next"] == "4");
  auto p3 = page("?limit=2&after=4");
  CHECK(phrase_ids(p3) == std::vector<int64_t>{5});
  CHECK(p3["next"].is_null());
  auto p4 = page("?after=4");
  CHECK(phrase_ids(p4) == std::vector<int64_t>{5});
  CHECK(p4["next"].is_null());
  auto all = page("");
  CHECK(phrase_ids(all) == std::vector<int64_t>{1, 2, 3, 4, 5});
  CHECK(all["next"].is_null());
  // Items are full metadata.
  REQUIRE_FALSE(all["items"].empty());
  CHECK(all["items"][0].contains("status"));
  CHECK(all["items"][0].contains("formats"));

  auto other = http_get(port, "/audio/user/8");
  REQUIRE(other.status == 200);
  CHECK(phrase_ids(other.json()) == std::vector<int64_t>{1});

  auto empty = http_get(port, "/audio/user/9");
  REQUIRE(empty.status == 200);
  auto empty_doc = empty.json();
  REQUIRE(empty_doc.is_object());
  REQUIRE(empty_doc.contains("items"));
  CHECK(empty_doc["items"].is_array());
  CHECK(empty_doc["items"].empty());
  CHECK(empty_doc["next"].is_null());

  for (std::string bad : {"?limit=0", "?limit=1001", "?limit=abc",
                          "?after=-1", "?limit=", "?after=abc"}) {
    INFO("query " << bad);
    auto res = http_get(port, "/audio/user/7" + bad);
    CHECK(res.status == 400);
    expect_json_error(res);
  }
}

TEST_CASE("/readyz reports ok", "[integration][lifecycle]") {
  server_process srv;
  srv.start();
  auto res = http_get(srv.port(), "/readyz");
  CHECK(res.status == 200);
  CHECK(res.header("Content-Type").rfind("application/json", 0) == 0);
  auto doc = res.json();
  REQUIRE(doc.is_object());
  CHECK(doc.value("status", "") == "ok");
}

TEST_CASE("a serve node whose HTTP port is taken stops at once with a clear "
          "error, cluster port or not",
          "[integration][lifecycle]") {
  // Another process holds the HTTP port.
  server_process holder;
  holder.start();
  const auto busy = holder.port();
  temp_dir dir{"phonon-it-busy"};
  for (bool cluster : {false, true}) {
    INFO("cluster.port set: " << cluster);
    std::string cmd = "timeout -k 2 20 " + shell_quote(phonon_binary())
                      + " serve --data-dir " + shell_quote(dir.path().string())
                      + " --host 127.0.0.1 --port " + std::to_string(busy);
    if (cluster)
      cmd += " --set cluster.host=127.0.0.1 --set cluster.port="
             + std::to_string(pick_free_port());
    auto started = std::chrono::steady_clock::now();
    auto res = run(cmd + " 2>&1");
    auto took = std::chrono::steady_clock::now() - started;
    INFO(res.output.substr(0, 3000));
    // Not timeout's 124/137: the process ended by itself, with an error.
    CHECK(res.exit_code != 0);
    CHECK(res.exit_code != 124);
    CHECK(res.exit_code != 137);
    CHECK(took < 15s);
    CHECK(res.output.find("cannot start") != std::string::npos);
  }
  // The holder was never disturbed.
  CHECK(http_get(busy, "/healthz").status == 200);
}
