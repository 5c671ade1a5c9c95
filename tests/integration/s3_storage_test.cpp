// One Phonon node on S3 (storage.type s3) against s3rver on loopback: a
// wrong secret stops the node at startup with a clear error, and an outage
// of the bucket mid-run gives 503 on writes and readiness, then recovers by
// itself with nothing accepted lost. (The whole HTTP suite also runs on S3:
// ctest's integration_mysql_s3.)

#include <catch2/catch.hpp>

#include <signal.h>

#include <atomic>
#include <filesystem>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "persistence/s3/client.hpp"
#include "tests/integration/s3rver_support.hpp"
#include "tests/integration/support.hpp"

using namespace phonon::integration;
using namespace std::chrono_literals;

namespace {

using clock_type = std::chrono::steady_clock;

env_list s3_env(const s3rver& s3, const std::string& secret = s3rver_key) {
  return {{"APP_STORAGE_TYPE", "s3"},
          {"APP_STORAGE_S3_ENDPOINT", s3.origin()},
          {"APP_STORAGE_S3_BUCKET", s3rver_bucket},
          {"APP_STORAGE_S3_PREFIX", "node"},
          {"APP_STORAGE_S3_ACCESS_KEY", s3rver_key},
          {"APP_STORAGE_S3_SECRET_KEY", secret},
          // This test owns its database: SQLite in the data dir.
          {"APP_DATABASE_DRIVER", "sqlite"}};
}

std::string recording_path(int phrase) {
  return "/audio/user/21/phrase/" + std::to_string(phrase);
}

} // namespace

TEST_CASE("s3 storage: a wrong secret is a clear startup error that never "
          "shows the secret",
          "[integration][s3]") {
  s3rver s3;
  server_process srv;
  const std::string secret = "not-the-secret-0123456789";
  srv.set_env(s3_env(s3, secret));
  CHECK_THROWS(srv.start());
  auto log = srv.log();
  CHECK(log.find("storage.s3") != std::string::npos);
  CHECK(log.find("SignatureDoesNotMatch") != std::string::npos);
  CHECK(log.find(secret) == std::string::npos);
}

TEST_CASE("s3 storage: an outage of the bucket gives 503 on writes and "
          "readiness, and every upload that got 201 ends ready",
          "[integration][s3]") {
  s3rver s3;
  server_process srv;
  srv.set_env(s3_env(s3));
  srv.start({"--workers", "2"});
  auto port = srv.port();
  auto wav = read_file(audio_fixtures().wav);
  REQUIRE(http_get(port, "/readyz").status == 200);

  // One client uploads without pause, a new phrase each time, while the
  // bucket goes away for ~3 s and comes back.
  std::atomic<bool> stop{false};
  std::vector<std::pair<int, unsigned>> answers; // (phrase, status)
  std::vector<std::string> retry_after;
  std::thread client{[&] {
    for (int phrase = 1; !stop && phrase < 400; ++phrase) {
      unsigned status = 0;
      try {
        auto r = upload_file(port, recording_path(phrase), wav, "clip.wav",
                             "audio/wav");
        status = r.status;
        if (status == 503)
          retry_after.push_back(r.header("Retry-After"));
      } catch (const std::exception&) {
        status = 0;
      }
      answers.emplace_back(phrase, status);
      std::this_thread::sleep_for(20ms);
    }
  }};
  std::this_thread::sleep_for(1s);
  s3.stop();
  bool saw_not_ready = false;
  auto outage_end = clock_type::now() + 3s;
  while (clock_type::now() < outage_end) {
    if (http_get(port, "/readyz").status == 503)
      saw_not_ready = true;
    std::this_thread::sleep_for(100ms);
  }
  s3.start_again();
  CHECK(saw_not_ready);
  // Ready again by itself.
  auto back = clock_type::now() + 20s;
  while (http_get(port, "/readyz").status != 200 && clock_type::now() < back)
    std::this_thread::sleep_for(100ms);
  CHECK(http_get(port, "/readyz").status == 200);
  std::this_thread::sleep_for(1s);
  stop = true;
  client.join();

  int created = 0, refused = 0;
  for (auto& [phrase, status] : answers) {
    INFO("phrase " << phrase << " status " << status);
    CHECK((status == 201 || status == 503));
    if (status == 201)
      ++created;
    if (status == 503)
      ++refused;
  }
  CHECK(refused > 0);
  CHECK(created > 0);
  for (auto& v : retry_after)
    CHECK_FALSE(v.empty());
  // After the outage: uploads are taken again ...
  CHECK(answers.back().second == 201);
  // ... and everything that got 201 is ready and served; a refused phrase
  // left nothing behind.
  for (auto& [phrase, status] : answers) {
    INFO("phrase " << phrase << " status " << status);
    if (status == 201) {
      auto meta = wait_until_settled(port, recording_path(phrase), 60s);
      CHECK(meta.value("status", "") == "ready");
      CHECK(http_get(port, recording_path(phrase) + "/wav").status == 200);
    } else {
      CHECK(http_get(port, recording_path(phrase)).status == 404);
    }
  }
}

TEST_CASE("s3 storage: startup reconciliation removes objects and local "
          "copies no row names, now and after the grace, and fails a row "
          "whose original object is gone",
          "[integration][s3]") {
  namespace p = phonon::persistence;
  s3rver s3;
  server_process srv;
  srv.set_env(s3_env(s3));
  // request_timeout 2 s: revisions younger than 4 s at startup are judged
  // by a second pass 4 s later.
  std::vector<std::string> args{"--workers", "1", "--set",
                                "server.request_timeout=2"};
  srv.start(args);
  auto port = srv.port();
  auto wav = read_file(audio_fixtures().wav);
  for (int phrase : {1, 2, 3}) {
    REQUIRE(upload_file(port, recording_path(phrase), wav, "a.wav",
                        "audio/wav")
              .status
            == 201);
    REQUIRE(wait_until_settled(port, recording_path(phrase), 20s)
              .value("status", "")
            == "ready");
  }
  srv.stop();

  p::s3::settings cfg;
  cfg.endpoint = s3.origin();
  cfg.bucket = s3rver_bucket;
  cfg.prefix = "node";
  cfg.access_key = s3rver_key;
  cfg.secret_key = s3rver_key;
  p::s3::client bucket{cfg};
  auto keys = [&](const std::string& prefix) {
    std::vector<std::string> out;
    for (auto& o : bucket.list(prefix))
      out.push_back(o.key);
    return out;
  };
  // What crashes leave: an old revision beside the current one, a
  // recording with objects but no row, a fresh revision with no row (an
  // upload killed before its commit a moment ago), a local copy of a
  // revision the bucket no longer has; and a row whose original object
  // vanished.
  auto now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                  std::chrono::system_clock::now().time_since_epoch())
                  .count();
  auto fresh = "21/1/" + std::to_string(now_us) + "/";
  bucket.put_bytes("21/1/1/original", wav);
  bucket.put_bytes("21/44/123/original", wav);
  bucket.put_bytes(fresh + "original", wav);
  auto local_only = srv.data_dir() / "audio" / "21" / "55" / "7";
  std::filesystem::create_directories(local_only);
  write_file(local_only / "original", wav);
  auto third = keys("21/3/");
  REQUIRE_FALSE(third.empty());
  for (auto& k : third)
    bucket.remove(k);
  std::filesystem::remove_all(srv.data_dir() / "audio" / "21" / "3");

  srv.start(args);
  port = srv.port();
  auto cleaned = [&] {
    return keys("21/1/1/").empty() && keys("21/44/").empty()
           && !std::filesystem::exists(local_only);
  };
  auto deadline = clock_type::now() + 15s;
  while (!cleaned() && clock_type::now() < deadline)
    std::this_thread::sleep_for(100ms);
  CHECK(cleaned());
  // The fresh one waits for the second pass.
  deadline = clock_type::now() + 20s;
  while (!keys(fresh).empty() && clock_type::now() < deadline)
    std::this_thread::sleep_for(200ms);
  CHECK(keys(fresh).empty());
  CHECK(srv.log().find("reconciled storage with the database")
        != std::string::npos);

  auto meta = wait_until_settled(port, recording_path(3), 15s);
  CHECK(meta.value("status", "") == "failed");
  CHECK(http_get(port, recording_path(3) + "/wav").status == 422);
  for (int phrase : {1, 2}) {
    INFO("phrase " << phrase);
    CHECK(http_get(port, recording_path(phrase)).status == 200);
    CHECK(http_get(port, recording_path(phrase) + "/wav").status == 200);
    CHECK(keys("21/" + std::to_string(phrase) + "/").size() >= 2);
  }
}

TEST_CASE("s3 storage: while the bucket hangs, a GET of a file this node "
          "has a copy of is answered at once, and a write is not answered "
          "as stored",
          "[integration][s3]") {
  s3rver s3;
  server_process srv;
  srv.set_env(s3_env(s3));
  srv.start({"--workers", "1", "--set", "server.request_timeout=10"});
  auto wav = read_file(audio_fixtures().wav);
  REQUIRE(upload_file(srv.port(), recording_path(1), wav, "a.wav",
                      "audio/wav")
            .status
          == 201);
  REQUIRE(wait_until_settled(srv.port(), recording_path(1), 20s)
            .value("status", "")
          == "ready");
  auto before = http_get(srv.port(), recording_path(1) + "/wav");
  REQUIRE(before.status == 200);
  // A fresh process knows no file facts: its GETs ask the storage actor.
  srv.restart();
  auto port = srv.port();
  REQUIRE(http_get(port, "/readyz").status == 200);

  ::kill(s3.pid(), SIGSTOP);
  unsigned write_status = 0;
  std::chrono::milliseconds write_took{0};
  std::thread writer{[&] {
    auto t0 = clock_type::now();
    try {
      write_status = upload_file(port, recording_path(2), wav, "b.wav",
                                 "audio/wav")
                       .status;
    } catch (const std::exception&) {
      write_status = 0;
    }
    write_took = std::chrono::duration_cast<std::chrono::milliseconds>(
      clock_type::now() - t0);
  }};
  std::this_thread::sleep_for(500ms); // the write is stuck in the bucket
  auto t0 = clock_type::now();
  http_response during;
  try {
    during = http_get(port, recording_path(1) + "/wav");
  } catch (const std::exception&) {
    during.status = 0; // the test client's 10 s limit
  }
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
    clock_type::now() - t0);
  writer.join();
  ::kill(s3.pid(), SIGCONT);

  CHECK(during.status == 200);
  CHECK((during.body == before.body));
  INFO("GET took " << took.count() << " ms");
  CHECK(took < 2000ms);
  // 503 once the bucket requests give up (3 tries), or the test client's
  // own 10 s limit first (0): never a success.
  INFO("write answered " << write_status << " after " << write_took.count()
                         << " ms");
  CHECK((write_status == 503 || write_status == 504 || write_status == 0));
}
