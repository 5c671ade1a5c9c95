// Nothing accepted is lost, nothing refused is kept: uploads that outlive
// the request timeout, PUT racing DELETE on one key, crashes in the middle
// of a replace, and file names that are not UTF-8 (issue 8, items 7-9).
// Every case runs the real `phonon` binary and audits its data folder.

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/media_support.hpp"
#include "tests/integration/support.hpp"

using namespace phonon::integration;
namespace fs = std::filesystem;

namespace {

using namespace std::chrono_literals;

std::string target_of(int64_t user, int64_t phrase) {
  return "/audio/user/" + std::to_string(user) + "/phrase/"
         + std::to_string(phrase);
}

/// Revision folders of (user, phrase) under the data dir's audio folder.
std::vector<fs::path> revision_dirs(const fs::path& data_dir, int64_t user,
                                    int64_t phrase) {
  std::vector<fs::path> out;
  auto dir = data_dir / "audio" / std::to_string(user)
             / std::to_string(phrase);
  std::error_code ec;
  for (fs::directory_iterator it{dir, ec}, end; !ec && it != end;
       it.increment(ec))
    if (it->is_directory())
      out.push_back(it->path());
  return out;
}

/// The revision a served file belongs to, read from its ETag
/// ("<revision hex>-<format>").
std::string revision_of_etag(const std::string& etag) {
  auto text = etag;
  if (text.size() >= 2 && text.front() == '"')
    text = text.substr(1, text.size() - 2);
  auto dash = text.find('-');
  if (dash == std::string::npos)
    return "";
  return std::to_string(std::stoll(text.substr(0, dash), nullptr, 16));
}

/// Checks one key's disk against its row, after everything settled: a row
/// has exactly its own revision folder with its original (and master when
/// ready); no row means no revision folder and so no file at all.
void audit_key(const server_process& srv, int64_t user, int64_t phrase) {
  auto port = srv.port();
  auto target = target_of(user, phrase);
  auto meta = http_get(port, target);
  // The files of a replaced or deleted revision go after the answer (on S3
  // the bucket's objects first, then this node's copies), so the disk may
  // lag the rows briefly: wait, bounded, for the folders the row implies.
  // A folder that stays is still a failure below.
  const size_t expected = meta.status == 404 ? 0 : 1;
  auto dirs = revision_dirs(srv.data_dir(), user, phrase);
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (dirs.size() != expected
         && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(100ms);
    dirs = revision_dirs(srv.data_dir(), user, phrase);
  }
  INFO("key " << target << " metadata " << meta.status << " " << meta.body);
  std::string names;
  for (auto& d : dirs) {
    names += d.filename().string() + " [";
    std::error_code ec;
    for (fs::recursive_directory_iterator it{d, ec}, end; !ec && it != end;
         it.increment(ec))
      names += fs::relative(it->path(), d).string() + " ";
    names += "] ";
  }
  INFO("revision folders on disk: " << names);
  if (meta.status == 404) {
    CHECK(dirs.empty());
    return;
  }
  REQUIRE(meta.status == 200);
  auto doc = meta.json();
  CHECK(doc.value("status", "") == "ready");
  REQUIRE(dirs.size() == 1);
  CHECK(fs::exists(dirs[0] / "original"));
  auto wav = http_request(port, "HEAD", target + "/wav");
  REQUIRE(wav.status == 200);
  CHECK(revision_of_etag(wav.header("ETag")) == dirs[0].filename().string());
  CHECK(fs::exists(dirs[0] / "master.wav"));
}

/// Waits until no recording of `user` in `phrases` is processing. Every
/// change has been answered when this runs, so a key that is 404 stays so
/// (wait_until_settled would poll it for its whole limit).
void settle(uint16_t port, int64_t user, const std::vector<int64_t>& phrases) {
  for (auto p : phrases)
    if (http_get(port, target_of(user, p)).status != 404)
      wait_until_settled(port, target_of(user, p), 20000ms);
}

} // namespace

TEST_CASE("an upload answered 504 changed nothing; the client may retry",
          "[integration][integrity]") {
  const auto& m4a = read_file(audio_fixtures().m4a_faststart);
  const auto& wav = read_file(audio_fixtures().wav);
  server_process srv;
  srv.start();
  auto port = srv.port();
  // A recording that exists before the slow uploads start.
  const auto kept = target_of(5, 1);
  REQUIRE(upload_file(port, kept, m4a, "kept.m4a").status == 201);
  require_ready(port, kept);
  auto before = http_get(port, kept + "/m4a");
  REQUIRE(before.status == 200);

  // Every decode now takes longer than the whole request may.
  srv.stop();
  srv.set_env({{"PHONON_TEST_FAULT", "slow:master:2500"}});
  srv.start({"--set", "server.request_timeout=1"});
  port = srv.port();

  SECTION("a POST that timed out is not stored; its retry is 201") {
    const auto fresh = target_of(5, 2);
    auto res = upload_file(port, fresh, wav, "a.wav", "audio/wav");
    CHECK(res.status == 504);
    expect_json_error(res);
    std::this_thread::sleep_for(3s); // the decode has long finished
    CHECK(http_get(port, fresh).status == 404);
    CHECK(revision_dirs(srv.data_dir(), 5, 2).empty());
    srv.stop();
    srv.set_env({});
    srv.start();
    auto retry = upload_file(srv.port(), fresh, wav, "a.wav", "audio/wav");
    CHECK(retry.status == 201);
  }

  SECTION("a PUT that timed out did not replace the old version") {
    auto res = upload_file(port, kept, wav, "b.wav", "audio/wav", "PUT");
    CHECK(res.status == 504);
    std::this_thread::sleep_for(3s);
    auto now = http_get(port, kept + "/m4a");
    REQUIRE(now.status == 200);
    CHECK(now.header("ETag") == before.header("ETag"));
    CHECK(now.body == before.body);
    CHECK(revision_dirs(srv.data_dir(), 5, 1).size() == 1);
  }

  SECTION("a DELETE right after a timed-out POST is 404 and stays true") {
    const auto fresh = target_of(5, 3);
    auto res = upload_file(port, fresh, wav, "c.wav", "audio/wav");
    CHECK(res.status == 504);
    CHECK(http_request(port, "DELETE", fresh).status == 404);
    std::this_thread::sleep_for(3s);
    CHECK(http_get(port, fresh).status == 404);
    CHECK(revision_dirs(srv.data_dir(), 5, 3).empty());
  }
}

TEST_CASE("PUT, DELETE and GET racing on the same keys leave disk and rows "
          "in agreement",
          "[integration][integrity]") {
  server_process srv;
  srv.start();
  const auto port = srv.port();
  const int64_t user = 77;
  // Few keys and several threads, so that changes of one key overlap.
  const std::vector<int64_t> phrases{1, 2};
  const auto& wav = read_file(audio_fixtures().wav);
  std::atomic<int> bad_answers{0};
  auto worker = [&](unsigned seed) {
    std::mt19937 rng{seed};
    for (int round = 0; round < 8; ++round) {
      auto phrase = phrases[rng() % phrases.size()];
      auto target = target_of(user, phrase);
      try {
        auto dice = rng() % 10;
        if (dice < 6) {
          auto s = upload_file(port, target, wav, "r.wav", "audio/wav", "PUT")
                     .status;
          if (s != 200 && s != 201)
            ++bad_answers;
        } else if (dice < 8) {
          auto s = http_request(port, "DELETE", target).status;
          if (s != 204 && s != 404)
            ++bad_answers;
        } else {
          // Makes derived files appear in the cache while keys change.
          auto s = http_get(port, target + "/ogg").status;
          if (s != 200 && s != 404 && s != 409 && s != 503)
            ++bad_answers;
        }
      } catch (const std::exception&) {
        ++bad_answers;
      }
    }
  };
  // Eight bursts of 4 threads x 8 changes; after each, everything settles
  // and the disk is audited against the rows.
  for (unsigned burst = 0; burst < 8; ++burst) {
    std::vector<std::thread> threads;
    for (unsigned i = 0; i < 4; ++i)
      threads.emplace_back(worker, 1000 * burst + i);
    for (auto& t : threads)
      t.join();
    CHECK(bad_answers == 0);
    settle(port, user, phrases);
    // A conversion answered late may still be writing: give it a moment.
    std::this_thread::sleep_for(300ms);
    INFO("burst " << burst);
    for (auto p : phrases)
      audit_key(srv, user, p);
  }
}

// The two cases below manage local files as a crash leaves them; on S3 the
// bucket is the truth and a node's local files are copies
// (s3_storage_test.cpp checks reconciliation there): [local-storage] keeps
// them out of ctest's integration_mysql_s3.
TEST_CASE("startup reconciles storage with the database",
          "[integration][integrity][local-storage]") {
  const auto& m4a = read_file(audio_fixtures().m4a_faststart);
  server_process srv;
  srv.start();
  auto port = srv.port();
  for (int64_t p : {1, 2, 3}) {
    REQUIRE(upload_file(port, target_of(9, p), m4a, "x.m4a").status == 201);
    require_ready(port, target_of(9, p));
  }
  REQUIRE(http_get(port, target_of(9, 1) + "/ogg").status == 200);
  srv.stop();

  // What a crash in the middle of a replace or a delete leaves behind: a
  // second revision folder beside the current one, a key folder with files
  // but no row, and a row whose original vanished.
  auto audio = srv.data_dir() / "audio";
  auto current = revision_dirs(srv.data_dir(), 9, 1);
  REQUIRE(current.size() == 1);
  auto stray_rev = audio / "9" / "1" / "1";
  fs::create_directories(stray_rev / "cache");
  fs::copy_file(current[0] / "original", stray_rev / "original");
  fs::copy_file(current[0] / "cache" / "ogg", stray_rev / "cache" / "ogg");
  auto no_row = audio / "9" / "44" / "123";
  fs::create_directories(no_row / "cache");
  fs::copy_file(current[0] / "original", no_row / "original");
  fs::copy_file(current[0] / "cache" / "ogg", no_row / "cache" / "ogg");
  auto lost = revision_dirs(srv.data_dir(), 9, 3);
  REQUIRE(lost.size() == 1);
  fs::remove(lost[0] / "original");

  srv.restart();
  port = srv.port();
  auto deadline = std::chrono::steady_clock::now() + 15s;
  while ((fs::exists(stray_rev) || fs::exists(no_row))
         && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(100ms);
  CHECK_FALSE(fs::exists(stray_rev));
  CHECK_FALSE(fs::exists(no_row));
  CHECK(fs::exists(current[0] / "original"));
  audit_key(srv, 9, 1);
  audit_key(srv, 9, 2);

  // The row whose original is gone is never served as ready.
  auto meta = wait_until_settled(port, target_of(9, 3), 15000ms);
  CHECK(meta.value("status", "") == "failed");
  CHECK(http_get(port, target_of(9, 3) + "/m4a").status == 422);
  CHECK(http_get(port, target_of(9, 3) + "/wav").status == 422);
  CHECK(srv.log().find("original is missing") != std::string::npos);
  auto metrics = fetch_metrics(port);
  CHECK(counter_value(metrics, "phonon_missing_originals_total") >= 1);
}

TEST_CASE("kill -9 during PUT-replace leaves nothing a restart does not "
          "clean",
          "[integration][integrity][local-storage]") {
  const auto& wav = read_file(audio_fixtures().wav);
  server_process srv;
  srv.start();
  const auto target = target_of(12, 1);
  REQUIRE(upload_file(srv.port(), target, wav, "a.wav", "audio/wav").status
          == 201);
  require_ready(srv.port(), target);
  std::mt19937 rng{42};
  for (int trial = 0; trial < 8; ++trial) {
    auto port = srv.port();
    std::thread client([port, &target, &wav] {
      try {
        upload_file(port, target, wav, "b.wav", "audio/wav", "PUT");
      } catch (const std::exception&) {
        // the server died under the request: expected
      }
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 40));
    srv.kill_hard();
    client.join();
    srv.restart();
    wait_until_settled(srv.port(), target, 15000ms);
    // Reconciliation runs in the background right after the start.
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (revision_dirs(srv.data_dir(), 12, 1).size() > 1
           && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(50ms);
    INFO("trial " << trial);
    audit_key(srv, 12, 1);
  }
}

TEST_CASE("a file name that is not UTF-8 is stored as valid UTF-8",
          "[integration][integrity]") {
  const auto& m4a = read_file(audio_fixtures().m4a_faststart);
  server_process srv;
  srv.start();
  auto port = srv.port();
  const auto target = target_of(31, 1);
  auto res = upload_file(port, target, m4a, "caf\xe9.m4a");
  REQUIRE(res.status == 201);
  auto doc = nlohmann::json::parse(res.body, nullptr, false);
  REQUIRE_FALSE(doc.is_discarded());
  CHECK(doc["data"].value("original_filename", "") == "caf\xef\xbf\xbd.m4a");
  auto meta = http_get(port, target);
  REQUIRE(meta.status == 200);
  CHECK(meta.json().value("original_filename", "") == "caf\xef\xbf\xbd.m4a");
  auto list = http_get(port, "/audio/user/31");
  REQUIRE(list.status == 200);
  CHECK(list.json()["items"].size() == 1);
  CHECK(http_get(port, "/healthz").status == 200);
}

TEST_CASE("a GET of a derived format overlapping a change of its key is "
          "never a 404 for a recording that exists",
          "[integration][integrity][put-race]") {
  // Every conversion of the format asked for stalls first, so the GET is
  // still converting the old revision when the PUT replaces (or the DELETE
  // removes) it: the conversion then finds its master, or its revision,
  // gone.
  const auto& wav = read_file(audio_fixtures().wav);
  const auto& m4a = read_file(audio_fixtures().m4a);
  struct race {
    std::string route;  ///< what the GET asks for, below the recording
    std::string target; ///< the transcode target that stalls
  };
  auto mp3 = race{"/mp3", "mp3"};
  auto peaks = race{"/waveform.json?pixels_per_second=20&channels=mono",
                    "waveform-pps20-mono.json"};
  server_process srv;
  auto start_stalling = [&](const race& r, int ms) {
    srv.set_env({{"PHONON_TEST_FAULT",
                  "slow:" + r.target + ":" + std::to_string(ms)}});
    srv.start();
  };
  auto get_in_background = [&](const std::string& url) {
    auto res = std::make_shared<http_response>();
    std::thread t{[port = srv.port(), url, res] {
      *res = http_get(port, url);
    }};
    return std::make_pair(std::move(t), res);
  };
  const auto target = target_of(78, 1);

  for (const auto& r : {mp3, peaks}) {
    DYNAMIC_SECTION("a PUT replaces the recording under a GET of " << r.route
                    << ": the GET serves the current revision") {
      start_stalling(r, 1500);
      REQUIRE(upload_file(srv.port(), target, wav, "a.wav", "audio/wav")
                .status
              == 201);
      require_ready(srv.port(), target);
      auto [getter, res] = get_in_background(target + r.route);
      std::this_thread::sleep_for(400ms);
      auto put = upload_file(srv.port(), target, m4a, "b.m4a", "audio/mp4",
                             "PUT");
      getter.join();
      INFO("PUT: " << put.status << " " << put.body);
      REQUIRE(put.status == 200);
      INFO("GET: " << res->status << " " << res->body.substr(0, 200));
      CHECK(res->status == 200);
      if (r.target == "mp3") {
        auto info = probe_bytes(res->body);
        REQUIRE(info);
        CHECK(info->codec_name == "mp3");
      } else {
        CHECK(nlohmann::json::parse(res->body).contains("data"));
      }
      // The answer's file is the new revision's: the old one's is gone.
      CHECK(http_get(srv.port(), target + r.route).body == res->body);
    }
  }

  SECTION("a PUT twice under one GET: 503 with Retry-After, never 404") {
    start_stalling(mp3, 2000);
    REQUIRE(upload_file(srv.port(), target, wav, "a.wav", "audio/wav").status
            == 201);
    require_ready(srv.port(), target);
    auto began = std::chrono::steady_clock::now();
    auto [getter, res] = get_in_background(target + "/mp3");
    std::this_thread::sleep_for(400ms);
    // The first conversion fails at 2 s; the second, of this revision,
    // runs until 4 s: the next PUT replaces it in between.
    REQUIRE(upload_file(srv.port(), target, m4a, "b.m4a", "audio/mp4", "PUT")
              .status
            == 200);
    std::this_thread::sleep_until(began + 2800ms);
    REQUIRE(upload_file(srv.port(), target, wav, "c.wav", "audio/wav", "PUT")
              .status
            == 200);
    getter.join();
    INFO("GET: " << res->status << " " << res->body);
    CHECK(res->status == 503);
    CHECK(res->header("Retry-After") == "1");
    expect_json_error(*res);
  }

  SECTION("a DELETE under a GET of mp3: the GET is 404") {
    start_stalling(mp3, 1500);
    REQUIRE(upload_file(srv.port(), target, wav, "a.wav", "audio/wav").status
            == 201);
    require_ready(srv.port(), target);
    auto [getter, res] = get_in_background(target + "/mp3");
    std::this_thread::sleep_for(400ms);
    REQUIRE(http_request(srv.port(), "DELETE", target).status == 204);
    getter.join();
    INFO("GET: " << res->status << " " << res->body);
    CHECK(res->status == 404);
    expect_json_error(*res);
  }
}
