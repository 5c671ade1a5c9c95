// limits.per_user_inflight (API.md "Limits"): one user's uploads and
// conversions in flight are bounded on a node (actors/user_gate.hpp); beyond the bound a request
// gets 429 + Retry-After before any work is done for it, other users are
// not held up, and the user's places come back when the requests are
// answered. Against the real binary over real sockets: the uploads held in
// flight are real multipart uploads whose bodies arrive slowly.

#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/media_support.hpp"
#include "tests/integration/raw_conn.hpp"
#include "tests/integration/support.hpp"

using namespace phonon::integration;
using namespace std::chrono_literals;

namespace {

std::string recording(int64_t user, int64_t phrase) {
  return "/audio/user/" + std::to_string(user) + "/phrase/"
         + std::to_string(phrase);
}

/// A multipart upload whose head and first half are sent now, the rest
/// when finish() is called: an upload in flight as a slow phone makes one.
struct slow_upload {
  raw_conn conn;
  std::string rest;

  slow_upload(uint16_t port, const std::string& target,
              const std::string& audio)
    : conn(port) {
    auto mp = make_multipart({{"audio_file", "slow.m4a", "audio/mp4", audio}});
    auto request = "POST " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                   + "Content-Type: " + mp.content_type + "\r\n"
                   + "Content-Length: " + std::to_string(mp.body.size())
                   + "\r\n\r\n";
    auto half = mp.body.size() / 2;
    REQUIRE(conn.send_all(request + mp.body.substr(0, half)));
    rest = mp.body.substr(half);
  }

  raw_response finish() {
    REQUIRE(conn.send_all(rest));
    auto res = conn.read_response(30000ms);
    REQUIRE(res);
    return *res;
  }
};

} // namespace

TEST_CASE("limits: a user's uploads and conversions in flight are bounded "
          "(429 + Retry-After), other users are not, and the places come "
          "back when the requests are answered",
          "[integration][limits]") {
  server_process srv;
  srv.start({"--set", "limits.per_user_inflight=2"});
  auto port = srv.port();
  auto m4a = read_file(audio_fixtures().m4a);
  // A recording of user 7 whose formats are not converted yet.
  REQUIRE(upload_file(port, recording(7, 50), m4a).status == 201);

  // User 7 has two uploads in flight (bodies half sent).
  std::vector<std::unique_ptr<slow_upload>> held;
  held.push_back(std::make_unique<slow_upload>(port, recording(7, 1), m4a));
  held.push_back(std::make_unique<slow_upload>(port, recording(7, 2), m4a));
  // The server counts an upload from its head on, when it starts its
  // spool file: wait until both exist. (A probing request would take a
  // place itself and race the second head.)
  auto spool = srv.data_dir() / "audio" / "tmp";
  auto spooling = [&] {
    int n = 0;
    std::error_code ec;
    for (auto& e : std::filesystem::directory_iterator{spool, ec})
      if (e.path().filename().string().rfind("upload-", 0) == 0)
        ++n;
    return n;
  };
  for (int i = 0; i < 100 && spooling() < 2; ++i)
    std::this_thread::sleep_for(50ms);
  REQUIRE(spooling() == 2);

  // A third upload of user 7 is refused before its body is read, and
  // changes nothing.
  auto third = upload_file(port, recording(7, 3), m4a);
  CHECK(third.status == 429);
  expect_json_error(third);
  CHECK(third.json().value("code", "") == "too_many_requests");
  CHECK(third.header("Retry-After") == "1");
  CHECK(http_get(port, recording(7, 3)).status == 404);
  // Conversions have a budget of their own (the next test): user 7's
  // uploads in flight do not hold up a conversion, metadata, lists or
  // stored files.
  CHECK(http_get(port, recording(7, 50) + "/mp3").status == 200);
  CHECK(http_get(port, recording(7, 50)).status == 200);
  CHECK(http_get(port, recording(7, 50) + "/wav").status == 200);
  CHECK(http_get(port, "/audio/user/7").status == 200);

  // Another user is not held up by user 7.
  CHECK(upload_file(port, recording(8, 1), m4a).status == 201);
  CHECK(http_get(port, recording(8, 1) + "/m4a").status == 200);

  // The held uploads complete normally; then user 7 has places again.
  for (auto& up : held) {
    auto res = up->finish();
    INFO(res.head << res.body);
    CHECK(res.status == 201);
  }
  CHECK(upload_file(port, recording(7, 3), m4a).status == 201);
  CHECK(http_get(port, recording(7, 3) + "/mp3").status == 200);
}

TEST_CASE("limits: per_user_inflight 0 is no bound",
          "[integration][limits]") {
  server_process srv;
  srv.start({"--set", "limits.per_user_inflight=0"});
  auto port = srv.port();
  auto m4a = read_file(audio_fixtures().m4a);
  std::vector<std::unique_ptr<slow_upload>> held;
  for (int phrase = 1; phrase <= 12; ++phrase)
    held.push_back(
      std::make_unique<slow_upload>(port, recording(5, phrase), m4a));
  CHECK(upload_file(port, recording(5, 13), m4a).status == 201);
  for (auto& up : held)
    CHECK(up->finish().status == 201);
}

TEST_CASE("limits: conversions of a user's recordings, which others may "
          "start (signed links, auth off), never take the user's upload "
          "places",
          "[integration][limits]") {
  server_process srv;
  // Every mp3 takes 3 s more: one conversion stays in flight.
  srv.set_env({{"PHONON_TEST_FAULT", "slow:mp3:3000"}});
  srv.start({"--set", "limits.per_user_inflight=1"});
  auto port = srv.port();
  auto m4a = read_file(audio_fixtures().m4a);
  REQUIRE(upload_file(port, recording(7, 1), m4a).status == 201);
  auto slow = std::async(std::launch::async, [&] {
    return http_get(port, recording(7, 1) + "/mp3").status;
  });
  // Once the mp3 runs it holds user 7's one conversion place: another
  // conversion is refused, and says so.
  bool running = false;
  for (int i = 0; i < 100 && !running; ++i) {
    running = metric_value(fetch_metrics(port), "phonon_jobs_running")
              == 1.0;
    if (!running)
      std::this_thread::sleep_for(20ms);
  }
  REQUIRE(running);
  auto other = http_get(port, recording(7, 1) + "/ogg");
  CHECK(other.status == 429);
  CHECK(other.json().value("code", "") == "too_many_requests");
  CHECK(other.header("Retry-After") == "1");
  // ... while user 7 still uploads.
  CHECK(upload_file(port, recording(7, 2), m4a).status == 201);
  CHECK(slow.get() == 200);
  CHECK(http_get(port, recording(7, 1) + "/ogg").status == 200);
}
