// The web console (API.md "Console", README "Console"): its files over
// plain HTTP (security headers, ETag/304, HEAD, server.console=false), and
// a real browser using it as a person would (tests/browser/console.mjs):
// headless Chromium with a fake microphone playing a generated WAV records
// about 2 s, uploads with a progress bar, waits for `ready`, sees the
// waveform drawn, plays the mp3 and the webm to their end, fits a
// phone-width screen and deletes the recording — once with auth off and
// once with auth on (a token typed into the page, playback through signed
// links). The page must load nothing from any host but Phonon and log no
// console error.
//
// PHONON_CONSOLE_SCREENSHOT=<path> copies the auth-off run's screenshot
// there (docs/console.png is made this way).

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <regex>
#include <string>
#include <vector>

#include "tests/integration/browser_support.hpp"
#include "tests/integration/jwt_mint.hpp"
#include "tests/integration/media_support.hpp"
#include "tests/integration/support.hpp"

using namespace phonon::integration;

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// Both at least 32 bytes, as startup demands.
const std::string auth_secret = "phonon-console-test-token-secret-0123456789";
const std::string link_secret = "phonon-console-test-link-secret-9876543210";

const char* const expected_csp
  = "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; media-src 'self' blob:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

std::string origin_of(uint16_t port) {
  return "http://127.0.0.1:" + std::to_string(port);
}

/// An HS256 bearer token for `user`, valid for ten minutes.
std::string bearer(int64_t user) {
  auto now = static_cast<int64_t>(std::time(nullptr));
  auto claims = R"({"sub":")" + std::to_string(user) + R"(","iat":)"
                + std::to_string(now) + R"(,"exp":)" + std::to_string(now + 600)
                + "}";
  return jwt::mint(R"({"alg":"HS256","typ":"JWT"})", claims,
                   jwt::key::hs256(auth_secret));
}

/// The console's security headers on a 200 or 304.
void check_console_headers(const http_response& res) {
  CHECK(res.header("Content-Security-Policy") == expected_csp);
  CHECK(res.header("X-Content-Type-Options") == "nosniff");
  CHECK(res.header("X-Frame-Options") == "DENY");
  CHECK(res.header("Referrer-Policy") == "no-referrer");
  CHECK(res.header("Cache-Control") == "no-cache");
  CHECK_FALSE(res.header("ETag").empty());
}

/// The fake microphone: 6 s of a 220 Hz tone whose loudness swells and
/// fades like syllables (so the waveform has a shape), 48 kHz mono 16-bit
/// (Chromium loops the file).
fs::path make_microphone(const temp_dir& dir) {
  auto path = dir / "microphone.wav";
  make_media("-f lavfi -i "
             "aevalsrc='0.9*sin(2*PI*220*t)*abs(sin(2*PI*0.7*t))':s=48000:d=6 "
             "-ac 1 -c:a pcm_s16le",
             path);
  return path;
}

/// Runs console.mjs against `port` and checks everything a person would
/// have seen. `token` empty: auth off.
void drive_console(uint16_t port, const temp_dir& dir, int64_t user,
                   int64_t phrase, const std::string& token,
                   const fs::path& screenshot, int relink_wait_ms = 0) {
  auto mic = make_microphone(dir);
  nlohmann::json config{
    {"origin", origin_of(port)},
    {"user", user},
    {"phrase", phrase},
    {"token", token},
    {"record_ms", 2000},
    {"play", {"mp3", "webm"}},
    {"screenshot", screenshot.string()},
    {"relink_wait_ms", relink_wait_ms},
    {"extra_args",
     {"--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
      "--use-file-for-fake-audio-capture=" + mic.string()}},
  };
  auto br = run_browser("console.mjs", config, dir, 120s);
  require_ran(br);
  const auto& r = br.result;
  INFO("browser result: " << r.dump(1).substr(0, 8000));

  CHECK(r.value("page_status", 0) == 200);
  CHECK(r.value("csp", "") == expected_csp);
  // No request to any host but Phonon (blob: is the recording's preview,
  // data: the empty icon).
  const auto origin = origin_of(port) + "/";
  for (const auto& url : r["requests"]) {
    auto u = url.get<std::string>();
    INFO("request " << u);
    CHECK((u.rfind(origin, 0) == 0 || u.rfind("blob:" + origin_of(port), 0) == 0
           || u.rfind("data:", 0) == 0));
  }
  // No console errors or warnings, no uncaught exception; the only failed
  // requests allowed are media loads the player aborted itself when the
  // format changed.
  // (After the expired-link step only its refused media load may be
  // logged.)
  const size_t clean = r.value("console_before_relink", r["console"].size());
  for (size_t i = 0; i < r["console"].size(); ++i) {
    const auto& m = r["console"][i];
    INFO("console " << m.dump());
    if (i >= clean) {
      CHECK(m.value("text", "").find("status of 401") != std::string::npos);
      continue;
    }
    CHECK(m.value("type", "") != "error");
    CHECK(m.value("type", "") != "warn");
  }
  CHECK(r["page_errors"].empty());
  for (const auto& f : r["failed"]) {
    auto text = f.get<std::string>();
    INFO("failed request " << text);
    CHECK(text.find("net::ERR_ABORTED") != std::string::npos);
    CHECK(text.find("/audio/") != std::string::npos);
  }
  CHECK(r["unlabelled"].empty());

  // Recorded from the microphone, with the level meter moving.
  CHECK(r.value("level_peak", 0.0) > 0.2);
  CHECK(r.value("recorded_status", "").rfind("Recorded", 0) == 0);
  // Uploaded with the progress bar at its end, seen first as processing
  // or ready.
  CHECK(r.value("progress_final", 0) == 100);
  CHECK(r.value("upload_status", "").rfind("Uploaded phrase "
                                            + std::to_string(phrase), 0)
        == 0);
  auto badge = r.value("first_badge", "");
  CHECK((badge == "processing" || badge == "ready"));
  // The waveform was drawn: points fetched, and bars (not a flat line of
  // silence) painted: on average more than 10 px of each column.
  CHECK(r["waveform"].value("points", 0) > 0);
  CHECK(r["waveform"].value("painted", 0)
        > 10 * r["waveform"].value("width", 1 << 20));
  // Every audio format is offered, and the mp3 and webm played to their
  // end with a duration near the ~2 s recorded.
  for (auto f : {"mp3", "m4a", "webm", "opus", "ogg", "flac", "wav"}) {
    INFO("format " << f);
    CHECK(std::find(r["formats"].begin(), r["formats"].end(), f)
          != r["formats"].end());
  }
  for (auto f : {"mp3", "webm"}) {
    INFO("played " << f);
    const auto& p = r["played"][f];
    CHECK(p.value("ended", false));
    CHECK(p.value("duration", 0.0) > 1.0);
    CHECK(p.value("duration", 0.0) < 4.0);
    auto src = p.value("src", "");
    if (token.empty()) {
      CHECK(src.find("sig=") == std::string::npos);
    } else {
      // Auth on: <audio> plays a signed link (no header can be sent).
      CHECK(src.find("expires=") != std::string::npos);
      CHECK(src.find("sig=") != std::string::npos);
    }
  }
  if (relink_wait_ms > 0) {
    // The expired link was renewed by the page and the m4a then played.
    const auto& rl = r["relink"];
    CHECK(rl.value("status", "").find("renewed") != std::string::npos);
    CHECK(rl.value("ended", false));
    CHECK(rl.value("src", "") != rl.value("first_src", ""));
    CHECK(rl.value("src", "").find("sig=") != std::string::npos);
  }
  // Readable on a phone: nothing wider than a 360 px screen.
  CHECK(r.value("phone_overflow", 1) <= 0);
  CHECK(fs::file_size(screenshot) > 10000);
  // Deleted through the page: the server agrees.
  CHECK(r.value("delete_status", "").rfind("Deleted phrase", 0) == 0);
  header_list headers;
  if (!token.empty())
    headers.emplace_back("Authorization", "Bearer " + token);
  auto meta = http_get(port,
                       "/audio/user/" + std::to_string(user) + "/phrase/"
                         + std::to_string(phrase),
                       headers);
  CHECK(meta.status == 404);
}

} // namespace

TEST_CASE("the console's files come from the binary with strict headers",
          "[integration][console]") {
  server_process srv;
  srv.start();
  const auto port = srv.port();

  auto page = http_get(port, "/");
  INFO(page.body.substr(0, 400));
  REQUIRE(page.status == 200);
  CHECK(page.header("Content-Type") == "text/html; charset=utf-8");
  check_console_headers(page);
  CHECK(page.body.find("<title>Phonon console</title>") != std::string::npos);
  // Only this server's own files: no absolute URL in a src or href.
  static const std::regex foreign{R"((src|href)\s*=\s*["']?(https?:)?//)"};
  CHECK_FALSE(std::regex_search(page.body, foreign));

  for (auto [path, type] :
       {std::pair{"/console/console.js", "text/javascript; charset=utf-8"},
        std::pair{"/console/console.css", "text/css; charset=utf-8"}}) {
    INFO(path);
    auto res = http_get(port, path);
    REQUIRE(res.status == 200);
    CHECK(res.header("Content-Type") == type);
    check_console_headers(res);
    CHECK(res.body.find("http://") == std::string::npos);
    CHECK(res.body.find("https://") == std::string::npos);
    // Revalidation: the same ETag gives a 304 with no body.
    auto again = http_get(port, path, {{"If-None-Match", res.header("ETag")}});
    CHECK(again.status == 304);
    CHECK(again.body.empty());
    CHECK(again.header("ETag") == res.header("ETag"));
    // HEAD: the headers and length, no body.
    auto head = http_request(port, "HEAD", path);
    CHECK(head.status == 200);
    CHECK(head.body.empty());
    CHECK(head.header("Content-Length") == std::to_string(res.body.size()));
  }
  // Anything else is a JSON 404; a write is a 405.
  for (auto path : {"/console/nope.js", "/console/", "/console",
                    "/console/index.html/x", "/console/..%2Fconsole.js",
                    "/index.html"}) {
    INFO(path);
    auto res = http_get(port, path);
    CHECK(res.status == 404);
    expect_json_error(res);
  }
  auto post = http_request(port, "POST", "/", "x",
                           {{"Content-Type", "text/plain"}});
  CHECK(post.status == 405);
  CHECK(post.header("Allow").find("GET") != std::string::npos);
  // A console path that names no file is unknown whatever the method
  // (not 405 or a 204 preflight as for a path that exists).
  for (auto method : {"POST", "OPTIONS", "DELETE"}) {
    INFO(method);
    auto res = http_request(port, method, "/console/nothing.js");
    CHECK(res.status == 404);
    expect_json_error(res);
  }
}

TEST_CASE("server.console=false: no console", "[integration][console]") {
  server_process srv;
  srv.set_env({{"APP_SERVER_CONSOLE", "false"}});
  srv.start();
  for (auto path : {"/", "/console/console.js", "/console/console.css"}) {
    for (auto method : {"GET", "HEAD", "POST", "OPTIONS"}) {
      INFO(method << " " << path);
      auto res = http_request(srv.port(), method, path);
      CHECK(res.status == 404);
      if (std::string{method} != "HEAD")
        expect_json_error(res);
    }
  }
  // The API itself is unaffected.
  CHECK(http_get(srv.port(), "/healthz").status == 200);
}

TEST_CASE("with auth on the console's files are public and the API is not",
          "[integration][console][auth]") {
  server_process srv;
  srv.set_env({{"APP_AUTH_SECRET", auth_secret},
               {"APP_AUTH_LINK_SECRET", link_secret}});
  srv.start({"--set", "auth.mode=token"});
  CHECK(http_get(srv.port(), "/").status == 200);
  CHECK(http_get(srv.port(), "/console/console.js").status == 200);
  CHECK(http_get(srv.port(), "/audio/user/1").status == 401);
}

TEST_CASE("a person records, uploads, plays and deletes in the console",
          "[integration][browser][console]") {
  temp_dir dir{"phonon-it-console"};
  server_process srv;
  srv.start();
  auto shot = dir / "console.png";
  drive_console(srv.port(), dir, 7001, 3, "", shot);
  if (const char* out = std::getenv("PHONON_CONSOLE_SCREENSHOT");
      out != nullptr && *out != '\0')
    fs::copy_file(shot, out, fs::copy_options::overwrite_existing);
}

TEST_CASE("the console with auth on: a typed token, signed links",
          "[integration][browser][console][auth]") {
  temp_dir dir{"phonon-it-console-auth"};
  server_process srv;
  srv.set_env({{"APP_AUTH_SECRET", auth_secret},
               {"APP_AUTH_LINK_SECRET", link_secret}});
  // Links live 12 s: the run then waits past that and plays an expired
  // one, which the page must renew.
  srv.start({"--set", "auth.mode=token", "--set", "auth.link_ttl=12"});
  const int64_t user = 7002;
  drive_console(srv.port(), dir, user, 1, bearer(user), dir / "console.png",
                13000);
}
