// The read model (DESIGN.md "Read path") against the real `phonon` binary:
// GETs of known recordings are answered without the actors, and exactly:
// no GET after a PUT's answer sees the old version, none after a DELETE's
// answer sees the recording, and no answer mixes two versions.

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/media_support.hpp"
#include "tests/integration/support.hpp"

using namespace phonon::integration;
namespace fs = std::filesystem;

namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

/// One answer a reader saw, with when its request was sent.
struct observed {
  clock_type::time_point sent;
  std::string target;
  unsigned status = 0;
  std::string etag;
  std::string body;
};

/// A client that GETs `targets` in turn over one keep-alive connection
/// until `stop`, at most `limit` requests, keeping every answer.
void read_loop(uint16_t port, const std::vector<std::string>& targets,
               const std::atomic<bool>& stop, std::vector<observed>& out,
               size_t limit) {
  std::unique_ptr<http_connection> conn;
  for (size_t i = 0; !stop.load() && i < limit; ++i) {
    const auto& target = targets[i % targets.size()];
    observed o;
    o.target = target;
    o.sent = clock_type::now();
    try {
      if (!conn)
        conn = std::make_unique<http_connection>(port);
      auto res = conn->request("GET", target);
      if (!res.keep_alive)
        conn.reset();
      o.status = res.status;
      o.etag = res.header("ETag");
      o.body = std::move(res.body);
    } catch (const std::exception&) {
      conn.reset();
      continue; // a connection closed under us: not an answer
    }
    out.push_back(std::move(o));
  }
}

} // namespace

TEST_CASE("GETs never see a replaced or deleted version once the change "
          "was answered",
          "[integration][read-model]") {
  temp_dir dir;
  auto v1 = dir.path() / "v1.m4a";
  auto v2 = dir.path() / "v2.m4a";
  // Two AAC-LC recordings with their moov first: both are served as
  // uploaded (serve_original), so the m4a is readable while processing.
  make_media("-f lavfi -i sine=frequency=440:duration=2 -c:a aac -b:a 48k "
             "-movflags +faststart",
             v1);
  make_media("-f lavfi -i sine=frequency=880:duration=3 -c:a aac -b:a 64k "
             "-movflags +faststart",
             v2);
  const auto bytes1 = read_file(v1);
  const auto bytes2 = read_file(v2);
  REQUIRE(bytes1 != bytes2);

  server_process srv;
  // Explicitly on: the default is off with MySQL (next test case).
  srv.start({"--set", "storage.read_model_entries=65536"});
  const std::string rec = "/audio/user/81/phrase/5";
  const std::string audio = rec + "/m4a";
  auto up = upload_file(srv.port(), rec, bytes1, "v1.m4a");
  INFO("upload: " << up.body);
  REQUIRE(up.status == 201);
  require_ready(srv.port(), rec);
  auto first = http_get(srv.port(), audio);
  REQUIRE(first.status == 200);
  REQUIRE(first.body == bytes1);
  const auto etag1 = first.header("ETag");

  // Warm: the next GETs are read-model hits (no actor, no database).
  auto before = fetch_metrics(srv.port());
  for (int i = 0; i < 20; ++i) {
    REQUIRE(http_get(srv.port(), audio).status == 200);
    REQUIRE(http_get(srv.port(), rec).status == 200);
  }
  auto after = fetch_metrics(srv.port());
  CHECK(counter_value(after, "phonon_read_model_hits_total")
          - counter_value(before, "phonon_read_model_hits_total")
        >= 40);

  std::atomic<bool> stop{false};
  std::vector<std::vector<observed>> seen(8);
  std::vector<std::thread> readers;
  for (size_t i = 0; i < seen.size(); ++i)
    readers.emplace_back([&, i] {
      read_loop(srv.port(), {audio, rec}, stop, seen[i], 200000);
    });

  std::this_thread::sleep_for(300ms);
  auto put = upload_file(srv.port(), rec, bytes2, "v2.m4a", "audio/mp4",
                         "PUT");
  auto put_answered = clock_type::now();
  INFO("put: " << put.body);
  REQUIRE(put.status == 200);
  std::this_thread::sleep_for(300ms);
  auto del = http_request(srv.port(), "DELETE", rec);
  auto delete_answered = clock_type::now();
  REQUIRE(del.status == 204);
  std::this_thread::sleep_for(300ms);
  stop = true;
  for (auto& t : readers)
    t.join();

  size_t total = 0, after_put = 0, after_delete = 0;
  std::string etag2;
  for (auto& list : seen)
    for (auto& o : list)
      if (o.target == audio && o.status == 200 && o.body == bytes2)
        etag2 = o.etag;
  for (auto& list : seen) {
    for (auto& o : list) {
      ++total;
      INFO("target " << o.target << " status " << o.status << " etag "
                     << o.etag);
      // Never a mix: a 200 of the audio is one whole version with its own
      // ETag; metadata names one of the two uploads.
      if (o.target == audio && o.status == 200) {
        bool one = o.body == bytes1 || o.body == bytes2;
        CHECK(one);
        CHECK(o.etag == (o.body == bytes1 ? etag1 : etag2));
      }
      if (o.target == rec && o.status == 200) {
        auto name = nlohmann::json::parse(o.body)
                      .value("original_filename", std::string{});
        CHECK((name == "v1.m4a" || name == "v2.m4a"));
        if (o.sent > put_answered)
          CHECK(name == "v2.m4a");
      }
      // After the PUT's answer: only the new version (or, once the DELETE
      // may have run, 404). Requests sent while the DELETE ran may see
      // either the new version or 404.
      if (o.sent > put_answered) {
        ++after_put;
        if (o.target == audio && o.status == 200) {
          CHECK(o.body == bytes2);
          CHECK(o.etag != etag1);
        }
        CHECK((o.status == 200 || o.status == 404));
      }
      if (o.sent > delete_answered) {
        ++after_delete;
        CHECK(o.status == 404);
      }
    }
  }
  INFO("answers " << total << " after put " << after_put << " after delete "
                  << after_delete);
  CHECK(total > 100);
  CHECK(after_put > 20);
  CHECK(after_delete > 20);
  CHECK_FALSE(etag2.empty());
}

TEST_CASE("a file the read model names that was evicted is converted again, "
          "not failed",
          "[integration][read-model]") {
  server_process srv;
  // Room for about one derived file: every other format evicts it.
  srv.start({"--set", "storage.cache_max_bytes=60KiB", "--set",
             "storage.memory_cache_bytes=0", "--set",
             "storage.read_model_entries=65536"});
  const std::string rec = "/audio/user/82/phrase/1";
  auto up = upload_file(srv.port(), rec, read_file(audio_fixtures().m4a));
  REQUIRE(up.status == 201);
  require_ready(srv.port(), rec);
  auto mp3 = http_get(srv.port(), rec + "/mp3");
  REQUIRE(mp3.status == 200);
  // Known to the read model now; ogg evicts the mp3 from the disk cache.
  REQUIRE(http_get(srv.port(), rec + "/mp3").status == 200);
  REQUIRE(http_get(srv.port(), rec + "/ogg").status == 200);
  REQUIRE(http_get(srv.port(), rec + "/flac").status == 200);
  auto again = http_get(srv.port(), rec + "/mp3");
  CHECK(again.status == 200);
  CHECK(again.body.size() == mp3.body.size());
}

TEST_CASE("the read model is on by default with SQLite and off with MySQL",
          "[integration][read-model]") {
  // Several HTTP nodes may share a MySQL database, and one node's read
  // model does not see the changes made through another.
  const char* driver = std::getenv("APP_DATABASE_DRIVER");
  bool mysql = driver != nullptr && std::string{driver} == "mysql";
  server_process srv;
  srv.start();
  const std::string rec = "/audio/user/83/phrase/1";
  REQUIRE(upload_file(srv.port(), rec, read_file(audio_fixtures().m4a)).status
          == 201);
  require_ready(srv.port(), rec);
  auto before = counter_value(fetch_metrics(srv.port()),
                              "phonon_read_model_hits_total");
  // Ready now: the first GET may miss, the others are hits (when on).
  for (int i = 0; i < 5; ++i)
    REQUIRE(http_get(srv.port(), rec).status == 200);
  auto hits = counter_value(fetch_metrics(srv.port()),
                            "phonon_read_model_hits_total")
              - before;
  if (mysql) {
    CHECK(srv.log().find("read model entries=0") != std::string::npos);
    CHECK(hits == 0);
  } else {
    CHECK(srv.log().find("read model entries=65536") != std::string::npos);
    CHECK(hits >= 4);
  }
}
