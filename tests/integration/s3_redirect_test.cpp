// storage.s3.redirect against s3rver on loopback: GETs of large audio files
// answer 302 to a presigned URL of the public endpoint that s3rver serves
// byte for byte (with Phonon's Content-Type and Content-Disposition); small
// files, HEAD, 304 and waveforms are answered by the node; a tampered or
// expired URL is refused by the bucket; a request that fails auth never
// gets a Location; a redirected GET needs no local copy; with redirects off
// the same GETs return the same bytes. Tagged [s3]: it starts its own
// s3rver and runs once, in the plain integration suite (ctest's
// integration_mysql_s3 leaves [s3] out).

#include <catch2/catch.hpp>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <string>
#include <thread>

#include "tests/integration/jwt_mint.hpp"
#include "tests/integration/media_support.hpp"
#include "tests/integration/s3rver_support.hpp"
#include "tests/integration/support.hpp"

using namespace phonon::integration;
using namespace std::chrono_literals;

namespace {

const std::string auth_secret(40, 's');
const std::string link_secret(40, 'l');

/// A presigned Location split into what a plain client sends to s3rver.
struct target {
  std::string host;
  std::string path_and_query;
};

target split_location(const std::string& loc) {
  constexpr std::string_view scheme = "http://";
  REQUIRE(loc.rfind(scheme, 0) == 0);
  auto rest = loc.substr(scheme.size());
  auto slash = rest.find('/');
  REQUIRE(slash != std::string::npos);
  return {rest.substr(0, slash), rest.substr(slash)};
}

/// GETs a Location from s3rver (127.0.0.1) with the Host it names, which
/// the URL's signature covers.
http_response follow(const s3rver& s3, const std::string& loc,
                     header_list extra = {}) {
  auto t = split_location(loc);
  extra.emplace_back("Host", t.host);
  return http_request(s3.port(), "GET", t.path_and_query, {}, extra);
}

env_list redirect_env(const s3rver& s3, bool redirect) {
  env_list env{{"APP_STORAGE_TYPE", "s3"},
               {"APP_STORAGE_S3_ENDPOINT", s3.origin()},
               {"APP_STORAGE_S3_BUCKET", s3rver_bucket},
               {"APP_STORAGE_S3_PREFIX", "node"},
               {"APP_STORAGE_S3_ACCESS_KEY", s3rver_key},
               {"APP_STORAGE_S3_SECRET_KEY", s3rver_key},
               {"APP_DATABASE_DRIVER", "sqlite"}};
  if (redirect) {
    env.push_back({"APP_STORAGE_S3_REDIRECT", "true"});
    env.push_back({"APP_STORAGE_S3_REDIRECT_MIN_BYTES", "40000"});
    env.push_back({"APP_STORAGE_S3_REDIRECT_TTL", "3"});
    // Clients reach the bucket under another name than the node does: the
    // URL must name (and sign) this one.
    env.push_back({"APP_STORAGE_S3_PUBLIC_ENDPOINT",
                   "http://localhost:" + std::to_string(s3.port())});
  }
  return env;
}

const std::string p1 = "/audio/user/21/phrase/1";
const std::string p2 = "/audio/user/21/phrase/2";

} // namespace

TEST_CASE("s3 redirects: large audio GETs answer 302 to a presigned URL "
          "that the bucket serves; everything else as before",
          "[integration][s3][redirect]") {
  temp_dir media{"phonon-redirect-media"};
  // 10 s (original ~80 KB, master ~960 KB, mp3 ~80 KB: above 40000) and
  // 1 s (original ~8 KB: below).
  auto big_path = media.path() / "big.m4a";
  auto small_path = media.path() / "small.m4a";
  make_media("-f lavfi -i sine=frequency=500:duration=10:sample_rate=48000 "
             "-ac 1 -c:a aac -b:a 64k -movflags +faststart",
             big_path);
  make_media("-f lavfi -i sine=frequency=700:duration=1:sample_rate=48000 "
             "-ac 1 -c:a aac -b:a 32k -movflags +faststart",
             small_path);
  auto big = read_file(big_path);
  auto small = read_file(small_path);
  REQUIRE(big.size() >= 40000);
  REQUIRE(small.size() < 40000);

  s3rver s3;
  server_process srv;
  srv.set_env(redirect_env(s3, true));
  srv.start();
  auto port = srv.port();
  // Exported at 0 before any redirect.
  CHECK(metric_value(fetch_metrics(port), "phonon_s3_redirects_total", {})
        == 0);

  REQUIRE(upload_file(port, p1, big, "big.m4a", "audio/mp4").status == 201);
  REQUIRE(upload_file(port, p2, small, "small.m4a", "audio/mp4").status
          == 201);
  require_ready(port, p1);
  require_ready(port, p2);
  const std::string public_prefix = "http://localhost:"
                                    + std::to_string(s3.port())
                                    + "/phonon/node/21/1/";

  // The original (an M4A served as uploaded).
  auto m4a = http_get(port, p1 + "/m4a");
  auto t0 = std::chrono::steady_clock::now();
  REQUIRE(m4a.status == 302);
  auto loc_m4a = m4a.header("Location");
  CHECK(loc_m4a.rfind(public_prefix, 0) == 0);
  CHECK(loc_m4a.find("/original?") != std::string::npos);
  CHECK(m4a.header("Cache-Control") == "private, no-store");
  CHECK(m4a.body.empty());
  CHECK(m4a.header("Content-Length") == "0");
  CHECK_FALSE(m4a.has("Content-Type"));
  CHECK_FALSE(m4a.header("X-Request-Id").empty());
  auto got = follow(s3, loc_m4a);
  REQUIRE(got.status == 200);
  CHECK(got.body == big);
  // s3rver honours response-content-type and -disposition.
  CHECK(got.header("Content-Type") == "audio/mp4");
  CHECK(got.header("Content-Disposition") == "inline; filename=\"21-1.m4a\"");

  // The WAV master and a derived format (converted on this first GET).
  auto wav = http_get(port, p1 + "/wav");
  REQUIRE(wav.status == 302);
  auto loc_wav = wav.header("Location");
  CHECK(loc_wav.find("/master.wav?") != std::string::npos);
  auto wav_bytes = follow(s3, loc_wav);
  REQUIRE(wav_bytes.status == 200);
  CHECK(wav_bytes.header("Content-Type") == "audio/wav");
  CHECK(wav_bytes.body.size() > 40000);
  auto mp3 = http_get(port, p1 + "/mp3");
  REQUIRE(mp3.status == 302);
  CHECK(mp3.header("Location").find("/cache/mp3?") != std::string::npos);
  auto mp3_bytes = follow(s3, mp3.header("Location"));
  REQUIRE(mp3_bytes.status == 200);
  CHECK(mp3_bytes.header("Content-Type") == "audio/mpeg");
  auto info = probe_bytes(mp3_bytes.body);
  REQUIRE(info.has_value());
  CHECK(decoded_seconds_of(mp3_bytes.body) == Approx(10.0).margin(0.2));

  // A ranged GET is redirected too; the client sends its Range again.
  auto ranged = http_get(port, p1 + "/wav", {{"Range", "bytes=100-199"}});
  REQUIRE(ranged.status == 302);
  auto part = follow(s3, ranged.header("Location"),
                     {{"Range", "bytes=100-199"}});
  CHECK(part.status == 206);
  CHECK(part.body == wav_bytes.body.substr(100, 100));

  // HEAD: answered by the node, no Location.
  auto head = http_request(port, "HEAD", p1 + "/wav");
  CHECK(head.status == 200);
  CHECK_FALSE(head.has("Location"));
  CHECK(head.header("Content-Length")
        == std::to_string(wav_bytes.body.size()));
  auto etag = head.header("ETag");
  REQUIRE_FALSE(etag.empty());
  // A conditional GET that matches: Phonon's own 304 (its own ETag).
  auto cond = http_get(port, p1 + "/wav", {{"If-None-Match", etag}});
  CHECK(cond.status == 304);
  CHECK_FALSE(cond.has("Location"));
  CHECK(cond.header("ETag") == etag);
  // Below the threshold: served by the node.
  auto small_get = http_get(port, p2 + "/m4a");
  CHECK(small_get.status == 200);
  CHECK_FALSE(small_get.has("Location"));
  CHECK(small_get.body == small);
  // Waveforms never.
  auto wave = http_get(port, p1 + "/waveform.json");
  CHECK(wave.status == 200);
  CHECK_FALSE(wave.has("Location"));

  // A tampered URL (another signature, another key) is refused by the
  // bucket.
  auto tampered = loc_wav;
  tampered.back() = tampered.back() == '0' ? '1' : '0';
  CHECK(follow(s3, tampered).status == 403);
  auto other_key = loc_wav;
  other_key.replace(other_key.find("/master.wav?"), 12, "/original?");
  CHECK(follow(s3, other_key).status == 403);

  auto metrics = fetch_metrics(port);
  CHECK(metric_value(metrics, "phonon_s3_redirects_total", {}) == 4);

  // The console's <audio> may follow the redirects to the public endpoint.
  auto page = http_get(port, "/");
  REQUIRE(page.status == 200);
  CHECK(page.header("Content-Security-Policy")
          .find("media-src 'self' blob: http://localhost:"
                + std::to_string(s3.port()) + ";")
        != std::string::npos);

  {
    INFO("a redirected GET needs no local copy of the object");
    srv.stop();
    std::filesystem::remove_all(srv.data_dir() / "audio" / "21" / "1");
    srv.restart();
    port = srv.port();
    auto again = http_get(port, p1 + "/wav");
    REQUIRE(again.status == 302);
    CHECK(follow(s3, again.header("Location")).body == wav_bytes.body);
    auto orig = http_get(port, p1 + "/m4a");
    REQUIRE(orig.status == 302);
    CHECK(follow(s3, orig.header("Location")).body == big);
    // HEAD and 304 need no bytes either.
    CHECK(http_request(port, "HEAD", p1 + "/wav").status == 200);
    CHECK(http_get(port, p1 + "/wav", {{"If-None-Match", etag}}).status
          == 304);
    // The node never downloaded them.
    CHECK_FALSE(std::filesystem::exists(srv.data_dir() / "audio" / "21"
                                        / "1"));
  }

  {
    INFO("with auth on, a refused GET never gets a Location");
    auto env = redirect_env(s3, true);
    env.push_back({"APP_AUTH_MODE", "token"});
    env.push_back({"APP_AUTH_SECRET", auth_secret});
    env.push_back({"APP_AUTH_LINK_SECRET", link_secret});
    srv.set_env(env);
    srv.restart();
    port = srv.port();
    auto refused = http_get(port, p1 + "/wav");
    CHECK(refused.status == 401);
    CHECK_FALSE(refused.has("Location"));
    auto forged = http_get(port, p1 + "/wav?exp=9999999999&sig=00");
    CHECK((forged.status == 401 || forged.status == 403));
    CHECK_FALSE(forged.has("Location"));
    auto token = jwt::mint(R"({"alg":"HS256","typ":"JWT"})",
                           R"({"sub":"21","exp":)"
                             + std::to_string(std::time(nullptr) + 600) + "}",
                           jwt::key::hs256(auth_secret));
    header_list bearer{{"Authorization", "Bearer " + token}};
    auto allowed = http_get(port, p1 + "/wav", bearer);
    REQUIRE(allowed.status == 302);
    CHECK(follow(s3, allowed.header("Location")).body == wav_bytes.body);
    // A signed link (from the metadata) is redirected too.
    auto meta = http_get(port, p1, bearer);
    REQUIRE(meta.status == 200);
    auto link = meta.json()["formats"]["wav"].get<std::string>();
    REQUIRE(link.find("sig=") != std::string::npos);
    auto by_link = http_get(port, link);
    REQUIRE(by_link.status == 302);
    CHECK(follow(s3, by_link.header("Location")).body == wav_bytes.body);
  }

  {
    INFO("with redirects off the same GETs send the same bytes, and an "
         "expired URL is refused");
    srv.set_env(redirect_env(s3, false));
    srv.restart();
    port = srv.port();
    auto w = http_get(port, p1 + "/wav");
    REQUIRE(w.status == 200);
    CHECK(w.body == wav_bytes.body);
    auto m = http_get(port, p1 + "/mp3");
    REQUIRE(m.status == 200);
    CHECK(m.body == mp3_bytes.body);
    auto o = http_get(port, p1 + "/m4a");
    REQUIRE(o.status == 200);
    CHECK(o.body == big);
    CHECK(metric_value(fetch_metrics(port), "phonon_s3_redirects_total", {})
          == 0);
    CHECK(http_get(port, "/").header("Content-Security-Policy")
            .find("localhost")
          == std::string::npos);
    // redirect_ttl is 3 s: the first Location (signed before t0) is dead
    // one second after it expired.
    std::this_thread::sleep_until(t0 + 4s);
    CHECK(follow(s3, loc_m4a).status == 403);
  }
}
