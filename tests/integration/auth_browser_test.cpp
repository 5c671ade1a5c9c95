// Signed links and CORS in a real browser: headless Chromium (Debian's
// /usr/bin/chromium, driven by npm puppeteer-core from tests/browser/*.mjs)
// against the real `phonon` binary.
//
// - Signed links: with auth.mode token, a page on a second loopback origin
//   plays the m4a and mp3 links of the metadata's `formats` map in
//   <audio src>, with no headers; tampered and expired links fail there and
//   are 401 over plain HTTP; a link never grants PUT or DELETE.
// - CORS: a page on a listed loopback origin fetch()es the metadata and a
//   byte range of the audio (auth off, and auth on with a bearer token); a
//   page on an unlisted origin cannot. The preflight answers are checked
//   over plain HTTP too.
//
// Tokens are minted here (tests/integration/jwt_mint.hpp) with the HS256
// secret the server gets from APP_AUTH_SECRET. Every browser run is bounded
// (`timeout` around node, a deadline inside the script) and every Chromium
// process of the run's profile is killed when it ends.

#include <catch2/catch.hpp>

#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <map>
#include <regex>
#include <string>
#include <thread>
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
const std::string auth_secret = "phonon-browser-test-token-secret-0123456789";
const std::string link_secret = "phonon-browser-test-link-secret-9876543210";

/// The length of the test recordings in seconds.
constexpr double tone_seconds = 3.0;

// -- tokens and requests --------------------------------------------------------

int64_t unix_now() {
  return static_cast<int64_t>(std::time(nullptr));
}

/// An HS256 bearer token for `user` (sub as a decimal string) valid for
/// ten minutes, signed with the server's secret.
std::string bearer(int64_t user) {
  auto now = unix_now();
  auto claims = R"({"sub":")" + std::to_string(user)
                + R"(","iat":)" + std::to_string(now)
                + R"(,"exp":)" + std::to_string(now + 600) + "}";
  return jwt::mint(R"({"alg":"HS256","typ":"JWT"})", claims,
                   jwt::key::hs256(auth_secret));
}

header_list with_token(const std::string& token, header_list more = {}) {
  more.emplace_back("Authorization", "Bearer " + token);
  return more;
}

/// The environment of a server with auth on.
env_list auth_env() {
  return {{"APP_AUTH_SECRET", auth_secret},
          {"APP_AUTH_LINK_SECRET", link_secret}};
}

/// A 3 s stereo WAV tone: every other format (m4a, mp3, ...) is derived.
std::string make_tone(const temp_dir& dir, int frequency) {
  auto path = dir / ("tone" + std::to_string(frequency) + ".wav");
  make_media("-f lavfi -i sine=frequency=" + std::to_string(frequency)
               + ":duration=3:sample_rate=44100 -ac 2 -c:a pcm_s16le",
             path);
  return read_file(path);
}

/// POSTs `wav` as the audio_file part, with `token` unless it is empty.
http_response upload(uint16_t port, const std::string& target,
                     const std::string& wav, const std::string& token) {
  auto mp = make_multipart({{"audio_file", "tone.wav", "audio/wav", wav}});
  header_list headers{{"Content-Type", mp.content_type}};
  if (!token.empty())
    headers = with_token(token, headers);
  return http_request(port, "POST", target, mp.body, headers);
}

/// Polls the metadata (with `headers`) every 50 ms until it is not
/// "processing" (at most 15 s) and REQUIREs "ready"; returns it.
nlohmann::json wait_ready(uint16_t port, const std::string& target,
                          const header_list& headers) {
  nlohmann::json last;
  unsigned status = 0;
  auto deadline = std::chrono::steady_clock::now() + 15s;
  do {
    auto res = http_get(port, target, headers);
    status = res.status;
    if (res.status == 200) {
      last = res.json();
      if (last.is_object() && last.value("status", "") != "processing")
        break;
    }
    std::this_thread::sleep_for(50ms);
  } while (std::chrono::steady_clock::now() < deadline);
  INFO("metadata of " << target << ": HTTP " << status << " "
                      << last.dump());
  REQUIRE(last.is_object());
  REQUIRE(last.value("status", "") == "ready");
  return last;
}

// -- signed links -------------------------------------------------------------

/// A signed link taken apart: `path?expires=E&sig=S`.
struct signed_link {
  std::string path;
  std::string expires;
  std::string sig;

  std::string text() const {
    return path + "?expires=" + expires + "&sig=" + sig;
  }
};

/// Parses a link of the API's form; REQUIREs that `text` has it.
signed_link parse_link(const std::string& text) {
  static const std::regex form{
    R"(^(/audio/user/[0-9]+/phrase/[0-9]+/[a-z0-9.]+)\?expires=([0-9]+)&sig=([A-Za-z0-9_-]+)$)"};
  std::smatch m;
  INFO("link: " << text);
  REQUIRE(std::regex_match(text, m, form));
  return {m[1], m[2], m[3]};
}

/// `sig` with its first character replaced by another base64url one.
std::string flip_first(const std::string& sig) {
  auto copy = sig;
  copy[0] = copy[0] == 'A' ? 'B' : 'A';
  return copy;
}

/// API.md "Every answer": an IMF-fixdate Date and an X-Request-Id.
void check_every_answer(const http_response& res) {
  static const std::regex imf{
    R"(^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{2} )"
    R"((Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [0-9]{4} )"
    R"([0-9]{2}:[0-9]{2}:[0-9]{2} GMT$)"};
  auto date = res.header("Date");
  INFO("Date: " << date);
  CHECK(std::regex_match(date, imf));
  CHECK_FALSE(res.header("X-Request-Id").empty());
}

/// Checks a 401 as API.md words it: WWW-Authenticate Bearer with
/// error="invalid_token" and a JSON error body (a HEAD answer has the JSON
/// Content-Type but no body).
void expect_401(const http_response& res, const std::string& what,
                bool head = false) {
  INFO(what << ": HTTP " << res.status << " " << res.body.substr(0, 300));
  CHECK(res.status == 401);
  auto challenge = res.header("WWW-Authenticate");
  CHECK(challenge.rfind("Bearer ", 0) == 0);
  CHECK(challenge.find("realm=\"phonon\"") != std::string::npos);
  CHECK(challenge.find("error=\"invalid_token\"") != std::string::npos);
  check_every_answer(res);
  if (head)
    CHECK(res.header("Content-Type").rfind("application/json", 0) == 0);
  else if (res.status >= 400)
    expect_json_error(res);
}


/// An <audio> case: what signed_links.mjs loads.
nlohmann::json audio_case(const std::string& key, uint16_t port,
                          const std::string& link, int wait_ms) {
  return {{"key", key},
          {"src", "http://127.0.0.1:" + std::to_string(port) + link},
          {"wait_ms", wait_ms}};
}

/// Checks that the <audio> case played: its duration, and playback to the
/// end.
void check_played(const nlohmann::json& results, const std::string& key) {
  INFO("case " << key << ": " << results.value(key, nlohmann::json{}).dump());
  REQUIRE(results.contains(key));
  const auto& r = results[key];
  CHECK_FALSE(r.contains("errorCode"));
  REQUIRE(r.contains("duration"));
  auto duration = std::strtod(r.value("duration", "").c_str(), nullptr);
  CHECK(duration == Approx(tone_seconds).margin(0.25));
  CHECK(r.value("played", false));
  CHECK(r.value("maxTime", 0.0) > 0.5);
  CHECK(r.value("finished", "") == "ended");
}

/// Checks that the <audio> case failed to load (MediaError, no metadata).
void check_refused(const nlohmann::json& results, const std::string& key) {
  INFO("case " << key << ": " << results.value(key, nlohmann::json{}).dump());
  REQUIRE(results.contains(key));
  const auto& r = results[key];
  CHECK(r.value("finished", "") == "error");
  CHECK(r.value("errorCode", 0) == 4); // MEDIA_ERR_SRC_NOT_SUPPORTED
  CHECK_FALSE(r.contains("duration"));
  CHECK(r.value("maxTime", 0.0) == 0.0);
}

// -- CORS ---------------------------------------------------------------------

std::string origin_of(uint16_t port) {
  return "http://127.0.0.1:" + std::to_string(port);
}

bool contains_token(const std::string& list, const std::string& token) {
  // Comma-separated, case-insensitive, spaces around items ignored.
  auto lower = [](std::string s) {
    for (auto& c : s)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  };
  auto hay = lower(list);
  auto want = lower(token);
  size_t pos = 0;
  while (pos <= hay.size()) {
    auto comma = hay.find(',', pos);
    auto item = hay.substr(pos, comma == std::string::npos ? std::string::npos
                                                           : comma - pos);
    auto b = item.find_first_not_of(' ');
    auto e = item.find_last_not_of(' ');
    if (b != std::string::npos && item.substr(b, e - b + 1) == want)
      return true;
    if (comma == std::string::npos)
      break;
    pos = comma + 1;
  }
  return false;
}

/// A preflight of `method` on `target` from `origin`.
http_response preflight(uint16_t port, const std::string& target,
                        const std::string& origin, const std::string& method,
                        const std::string& request_headers = {}) {
  header_list h{{"Origin", origin}, {"Access-Control-Request-Method", method}};
  if (!request_headers.empty())
    h.emplace_back("Access-Control-Request-Headers", request_headers);
  return http_request(port, "OPTIONS", target, {}, h);
}

/// Checks a 204 preflight answer for `origin` allowing exactly `methods`
/// (at least those; `refused` must be absent).
void check_preflight(const http_response& res, const std::string& origin,
                     const std::vector<std::string>& methods,
                     const std::vector<std::string>& refused) {
  INFO("preflight: HTTP " << res.status << " " << res.body.substr(0, 300));
  CHECK(res.status == 204);
  check_every_answer(res);
  CHECK(res.header("Access-Control-Allow-Origin") == origin);
  CHECK(contains_token(res.header("Vary"), "Origin"));
  auto allow = res.header("Access-Control-Allow-Methods");
  INFO("Access-Control-Allow-Methods: " << allow);
  for (auto& m : methods)
    CHECK(contains_token(allow, m));
  for (auto& m : refused)
    CHECK_FALSE(contains_token(allow, m));
  auto headers = res.header("Access-Control-Allow-Headers");
  INFO("Access-Control-Allow-Headers: " << headers);
  for (auto h : {"Authorization", "Content-Type", "Range", "If-None-Match",
                 "If-Modified-Since", "X-Request-Id"})
    CHECK(contains_token(headers, h));
  CHECK(res.header("Access-Control-Max-Age") == "600");
}

/// Checks the CORS headers of an actual (non-preflight) answer to a listed
/// origin.
void check_cors_answer(const http_response& res, const std::string& origin) {
  INFO("HTTP " << res.status);
  CHECK(res.header("Access-Control-Allow-Origin") == origin);
  CHECK(contains_token(res.header("Vary"), "Origin"));
  auto expose = res.header("Access-Control-Expose-Headers");
  INFO("Access-Control-Expose-Headers: " << expose);
  for (auto h : {"Content-Length", "Content-Range", "Accept-Ranges", "ETag",
                 "Last-Modified", "Location", "Retry-After", "X-Request-Id"})
    CHECK(contains_token(expose, h));
}

/// Checks what cors.mjs read from a listed origin: the metadata JSON and
/// the first 100 bytes of `size` with the exposed headers.
void check_fetched(const nlohmann::json& r, const std::string& origin,
                   const std::string& user, uint64_t size,
                   const std::string& request_id) {
  INFO("page result: " << r.dump());
  CHECK(r.value("origin", "") == origin);
  REQUIRE(r.contains("metadata"));
  REQUIRE(r.contains("audio"));
  const auto& m = r["metadata"];
  CHECK_FALSE(m.contains("error"));
  CHECK(m.value("status", 0) == 200);
  REQUIRE(m.contains("json"));
  CHECK(m["json"].value("user_id_str", "") == user);
  CHECK(m["json"].value("status", "") == "ready");
  CHECK(m.value("x_request_id", "") == request_id);
  const auto& a = r["audio"];
  CHECK_FALSE(a.contains("error"));
  CHECK(a.value("status", 0) == 206);
  CHECK(a.value("bytes", -1) == 100);
  // Readable only because the server exposes them.
  CHECK(a.value("content_range", "")
        == "bytes 0-99/" + std::to_string(size));
  CHECK(a.value("content_length", "") == "100");
  CHECK(a.value("accept_ranges", "") == "bytes");
  CHECK_FALSE(a.value("etag", "").empty());
  CHECK_FALSE(a.value("last_modified", "").empty());
  CHECK(a.value("x_request_id", "") == request_id);
}

/// Checks that both fetch() calls of cors.mjs were rejected (TypeError:
/// the browser refused to hand the answer to the page).
void check_blocked(const nlohmann::json& r) {
  INFO("page result: " << r.dump());
  REQUIRE(r.contains("metadata"));
  REQUIRE(r.contains("audio"));
  CHECK(r["metadata"].value("error", "").rfind("TypeError", 0) == 0);
  CHECK_FALSE(r["metadata"].contains("status"));
  CHECK(r["audio"].value("error", "").rfind("TypeError", 0) == 0);
  CHECK_FALSE(r["audio"].contains("status"));
}

} // namespace

// -- signed links -------------------------------------------------------------

TEST_CASE("signed links play in headless Chromium with no headers; tampered "
          "links and writes are refused",
          "[integration][browser][auth]") {
  temp_dir dir{"phonon-it-signed"};
  auto wav = make_tone(dir, 440);
  auto other_wav = make_tone(dir, 550);

  server_process srv;
  srv.set_env(auth_env());
  srv.start({"--set", "auth.mode=token"});
  const auto port = srv.port();
  const int64_t user = 31;
  const auto token = bearer(user);
  const std::string rec = "/audio/user/31/phrase/1";
  const std::string other = "/audio/user/31/phrase/2";
  REQUIRE(upload(port, rec, wav, token).status == 201);
  REQUIRE(upload(port, other, other_wav, token).status == 201);
  auto meta = wait_ready(port, rec, with_token(token));
  wait_ready(port, other, with_token(token));

  // The formats map holds a signed link per format, for this path, valid
  // for auth.link_ttl (3600 s by default).
  INFO("metadata: " << meta.dump());
  REQUIRE(meta.contains("formats"));
  REQUIRE(meta["formats"].is_object());
  std::map<std::string, signed_link> links;
  for (auto& [format, value] : meta["formats"].items()) {
    REQUIRE(value.is_string());
    auto link = parse_link(value.get<std::string>());
    CHECK(link.path == rec + "/" + format);
    auto expires = std::stoll(link.expires);
    CHECK(expires > unix_now());
    CHECK(expires <= unix_now() + 3600 + 5);
    links[format] = link;
  }
  for (auto f : {"m4a", "mp3", "wav"})
    REQUIRE(links.count(f) == 1);
  const auto& m4a = links["m4a"];
  const auto& mp3 = links["mp3"];
  const auto& wav_link = links["wav"];

  // -- plain HTTP: the links work with no headers -----------------------------
  std::map<std::string, std::string> bodies;
  for (auto f : {"m4a", "mp3", "wav"}) {
    auto res = http_get(port, links[f].text());
    INFO(f << " by its link: HTTP " << res.status << " "
           << res.body.substr(0, 200));
    REQUIRE(res.status == 200);
    CHECK(decoded_seconds_of(res.body) == Approx(tone_seconds).margin(0.1));
    check_every_answer(res);
    CHECK(res.header("Content-Disposition")
          == std::string{"inline; filename=\"31-1."} + f + "\"");
    bodies[f] = res.body;
    auto head = http_request(port, "HEAD", links[f].text());
    CHECK(head.status == 200);
    CHECK(head.body.empty());
    CHECK(head.header("Content-Length") == std::to_string(res.body.size()));
    auto part = http_get(port, links[f].text(), {{"Range", "bytes=0-99"}});
    CHECK(part.status == 206);
    CHECK(part.body == res.body.substr(0, 100));
  }
  // Without a link or a token the same path is refused.
  expect_401(http_get(port, m4a.path), "no link, no token");

  // -- plain HTTP: tampered and misused links are 401 ------------------------
  const auto query = "?expires=" + m4a.expires + "&sig=" + m4a.sig;
  std::vector<std::pair<std::string, std::string>> tampered{
    // Another phrase (it exists: a 404 would leak that it does not).
    {"tampered path (other phrase)", other + "/m4a" + query},
    {"tampered path (other user)", "/audio/user/32/phrase/1/m4a" + query},
    {"tampered path (metadata)", rec + query},
    // The mp3 link's query on the wav path.
    {"tampered format",
     wav_link.path + "?expires=" + mp3.expires + "&sig=" + mp3.sig},
    {"tampered expiry (+1 s)",
     m4a.path + "?expires=" + std::to_string(std::stoll(m4a.expires) + 1)
       + "&sig=" + m4a.sig},
    {"tampered expiry (far future)",
     m4a.path + "?expires=99999999999&sig=" + m4a.sig},
    {"tampered expiry (past)", m4a.path + "?expires=1000&sig=" + m4a.sig},
    {"tampered signature",
     m4a.path + "?expires=" + m4a.expires + "&sig=" + flip_first(m4a.sig)},
    {"truncated signature",
     m4a.path + "?expires=" + m4a.expires + "&sig="
       + m4a.sig.substr(0, m4a.sig.size() - 1)},
    {"no signature", m4a.path + "?expires=" + m4a.expires},
    {"no expiry", m4a.path + "?sig=" + m4a.sig},
  };
  for (auto& [what, target] : tampered)
    expect_401(http_get(port, target), what + ": GET " + target);

  // -- a link never grants a write -------------------------------------------
  auto mp = make_multipart({{"audio_file", "tone.wav", "audio/wav",
                             other_wav}});
  const header_list form{{"Content-Type", mp.content_type}};
  // The link's own path takes GET and HEAD only: API.md leaves open whether
  // the method (405, what the server answers) or the missing credential
  // (401) is checked first; either way nothing is written.
  for (auto method : {"PUT", "DELETE", "POST"}) {
    auto res = http_request(port, method, m4a.text(), mp.body, form);
    INFO(method << " on the link: HTTP " << res.status << " " << res.body);
    CHECK((res.status == 401 || res.status == 405));
    if (res.status == 405)
      CHECK(res.header("Allow").find("PUT") == std::string::npos);
  }
  expect_401(http_request(port, "PUT", rec + query, mp.body, form),
             "PUT on the recording with the link's query");
  expect_401(http_request(port, "DELETE", rec + query),
             "DELETE on the recording with the link's query");
  expect_401(http_request(port, "POST", rec + "/links" + query),
             "POST .../links with the link's query");
  // Nothing changed.
  auto after = http_get(port, rec, with_token(token));
  REQUIRE(after.status == 200);
  CHECK(after.json().value("size_bytes", 0) == meta.value("size_bytes", 0));
  CHECK(after.json().value("updated_at", "") == meta.value("updated_at", ""));
  for (auto f : {"m4a", "mp3", "wav"}) {
    auto res = http_get(port, links[f].text());
    CHECK(res.status == 200);
    CHECK(res.body == bodies[f]);
  }

  // -- POST .../links: fresh links for the same paths --------------------------
  auto fresh = http_request(port, "POST", rec + "/links", {},
                            with_token(token));
  INFO("POST .../links: HTTP " << fresh.status << " " << fresh.body);
  REQUIRE(fresh.status == 200);
  REQUIRE(fresh.json().contains("formats"));
  auto fresh_mp3 = parse_link(fresh.json()["formats"].value("mp3", ""));
  CHECK(fresh_mp3.path == mp3.path);
  {
    auto res = http_get(port, fresh_mp3.text());
    CHECK(res.status == 200);
    CHECK(res.body == bodies["mp3"]);
  }

  // -- the browser ----------------------------------------------------------
  nlohmann::json cases = nlohmann::json::array();
  cases.push_back(audio_case("m4a", port, m4a.text(), 20000));
  cases.push_back(audio_case("mp3", port, fresh_mp3.text(), 20000));
  for (size_t i = 0; i < tampered.size(); ++i)
    cases.push_back(
      audio_case("refused" + std::to_string(i), port, tampered[i].second,
                 20000));
  cases.push_back(audio_case("unsigned", port, m4a.path, 20000));
  const auto log_before = srv.log().size();
  auto br = run_browser("signed_links.mjs", {{"cases", cases}}, dir, 90s);
  require_ran(br);
  INFO("browser result: " << br.result.dump().substr(0, 6000));
  const auto& results = br.result["results"];
  // The page is on another origin than the server.
  CHECK(br.result.value("origin", "") != origin_of(port));
  check_played(results, "m4a");
  check_played(results, "mp3");
  for (size_t i = 0; i < tampered.size(); ++i) {
    INFO(tampered[i].first);
    check_refused(results, "refused" + std::to_string(i));
  }
  check_refused(results, "unsigned");
  // The players got audio (200 or 206) for the two good links. The browser
  // hides the refused answers from the page (ORB blocks a cross-origin
  // JSON body for <audio>), so the server's access log tells that each was
  // a 401, with no credential behind it.
  int audio_ok = 0;
  for (auto& r : br.result["responses"])
    if (r.value("status", 0) == 200 || r.value("status", 0) == 206)
      ++audio_ok;
  CHECK(audio_ok >= 2);
  auto log = srv.log().substr(log_before);
  size_t refused = 0;
  size_t other_4xx_5xx = 0;
  for (size_t at = 0, end = 0; at < log.size(); at = end + 1) {
    end = log.find('\n', at);
    if (end == std::string::npos)
      end = log.size();
    auto line = log.substr(at, end - at);
    if (line.find(" request ") == std::string::npos)
      continue;
    if (line.find("status=401") != std::string::npos)
      ++refused;
    else if (line.find("status=4") != std::string::npos
             || line.find("status=5") != std::string::npos)
      ++other_4xx_5xx;
  }
  INFO("server log during the browser run:\n" << log.substr(0, 8000));
  CHECK(refused >= tampered.size() + 1);
  CHECK(other_4xx_5xx == 0);
}

TEST_CASE("an expired signed link is refused over HTTP and in the browser; "
          "POST .../links issues fresh ones",
          "[integration][browser][auth]") {
  temp_dir dir{"phonon-it-expired"};
  auto wav = make_tone(dir, 440);

  server_process srv;
  srv.set_env(auth_env());
  srv.start({"--set", "auth.mode=token", "--set", "auth.link_ttl=1"});
  const auto port = srv.port();
  const auto token = bearer(33);
  const std::string rec = "/audio/user/33/phrase/7";
  REQUIRE(upload(port, rec, wav, token).status == 201);
  auto meta = wait_ready(port, rec, with_token(token));
  INFO("metadata: " << meta.dump());
  REQUIRE(meta["formats"].contains("m4a"));
  auto m4a = parse_link(meta["formats"]["m4a"].get<std::string>());
  auto mp3 = parse_link(meta["formats"]["mp3"].get<std::string>());
  auto expires = std::stoll(m4a.expires);
  CHECK(expires <= unix_now() + 1);

  // Until a second after the expiry (at most 5 s from now).
  for (int i = 0; i < 100 && unix_now() <= expires + 1; ++i)
    std::this_thread::sleep_for(50ms);
  REQUIRE(unix_now() > expires + 1);
  expect_401(http_get(port, m4a.text()), "expired m4a link");
  expect_401(http_request(port, "HEAD", m4a.text()), "expired m4a link, HEAD",
             true);
  expect_401(http_get(port, mp3.text()), "expired mp3 link");

  // Fresh links from POST .../links (bearer with read scope) work.
  auto fresh = http_request(port, "POST", rec + "/links", {},
                            with_token(token));
  INFO("POST .../links: HTTP " << fresh.status << " " << fresh.body);
  REQUIRE(fresh.status == 200);
  auto doc = fresh.json();
  REQUIRE(doc.is_object());
  CHECK(doc.value("expires_at", "").size() >= 20); // RFC 3339
  REQUIRE(doc.contains("formats"));
  // (With a 1 s TTL they may be over by the time they are used; the first
  // test case plays fresh links with the default TTL.)
  auto renewed = parse_link(doc["formats"].value("m4a", ""));
  CHECK(renewed.path == m4a.path);
  CHECK(std::stoll(renewed.expires) > expires);
  // POST .../links needs a token: no token and a foreign user's token fail.
  expect_401(http_request(port, "POST", rec + "/links"), "links, no token");
  CHECK(http_request(port, "POST", rec + "/links", {}, with_token(bearer(34)))
          .status
        == 403);

  // The browser: the expired links do not play.
  nlohmann::json cases = nlohmann::json::array();
  cases.push_back(audio_case("expired_m4a", port, m4a.text(), 15000));
  cases.push_back(audio_case("expired_mp3", port, mp3.text(), 15000));
  auto br = run_browser("signed_links.mjs", {{"cases", cases}}, dir, 60s);
  require_ran(br);
  INFO("browser result: " << br.result.dump());
  check_refused(br.result["results"], "expired_m4a");
  check_refused(br.result["results"], "expired_mp3");
}

// -- CORS ---------------------------------------------------------------------

TEST_CASE("CORS: a listed loopback origin fetch()es metadata and a byte "
          "range, an unlisted one cannot (auth off)",
          "[integration][browser][auth][cors]") {
  temp_dir dir{"phonon-it-cors"};
  auto wav = make_tone(dir, 440);
  const auto listed_port = pick_free_port();
  auto unlisted_port = pick_free_port();
  for (int i = 0; i < 20 && unlisted_port == listed_port; ++i)
    unlisted_port = pick_free_port();
  REQUIRE(unlisted_port != listed_port);
  const auto listed = origin_of(listed_port);
  const auto unlisted = origin_of(unlisted_port);

  server_process srv;
  srv.start({"--set", "server.cors_origins=" + listed});
  const auto port = srv.port();
  const std::string rec = "/audio/user/41/phrase/1";
  REQUIRE(upload(port, rec, wav, "").status == 201);
  wait_ready(port, rec, {});
  // The m4a is derived: made once here, served from the cache below.
  auto whole = http_get(port, rec + "/m4a");
  REQUIRE(whole.status == 200);

  // -- plain HTTP: preflights and the headers of actual answers --------------
  check_preflight(preflight(port, rec, listed, "GET", "x-request-id"), listed,
                  {"GET", "PUT", "DELETE"}, {});
  check_preflight(preflight(port, rec, listed, "PUT",
                            "content-type, x-request-id"),
                  listed, {"GET", "PUT", "DELETE"}, {});
  check_preflight(preflight(port, rec + "/m4a", listed, "GET", "range"),
                  listed, {"GET", "HEAD"}, {"PUT", "DELETE", "POST"});
  check_preflight(preflight(port, "/audio/user/41", listed, "GET"), listed,
                  {"GET"}, {"PUT", "DELETE"});
  {
    auto res = preflight(port, rec, unlisted, "GET", "x-request-id");
    INFO("preflight from an unlisted origin: HTTP " << res.status);
    CHECK(res.status == 403);
    check_every_answer(res);
    CHECK_FALSE(res.has("Access-Control-Allow-Origin"));
    if (res.status >= 400)
      expect_json_error(res);
  }
  {
    auto res = preflight(port, "/audio/user/41/phrase/1/nope/more", listed,
                         "GET");
    INFO("preflight on an unknown path: HTTP " << res.status);
    CHECK(res.status == 404);
  }
  check_cors_answer(http_get(port, rec, {{"Origin", listed}}), listed);
  check_cors_answer(http_get(port, rec + "/m4a",
                             {{"Origin", listed}, {"Range", "bytes=0-99"}}),
                    listed);
  {
    auto res = http_get(port, rec, {{"Origin", unlisted}});
    CHECK_FALSE(res.has("Access-Control-Allow-Origin"));
    auto plain = http_get(port, rec);
    CHECK_FALSE(plain.has("Access-Control-Allow-Origin"));
  }

  // -- the browser ----------------------------------------------------------
  const std::string rid = "cors-browser-test-1";
  nlohmann::json config{
    {"phonon", origin_of(port)},
    {"metadata_path", rec},
    {"audio_path", rec + "/m4a"},
    {"token", ""},
    {"request_id", rid},
    {"origins",
     {{{"key", "listed"}, {"port", listed_port}},
      {{"key", "unlisted"}, {"port", unlisted_port}}}},
  };
  auto br = run_browser("cors.mjs", config, dir, 60s);
  require_ran(br);
  INFO("browser result: " << br.result.dump());
  const auto& results = br.result["results"];
  check_fetched(results["listed"], listed, "41", whole.body.size(), rid);
  check_blocked(results["unlisted"]);
}

TEST_CASE("CORS with auth on: a listed origin fetch()es with a bearer token, "
          "its preflight needs none; an unlisted origin cannot",
          "[integration][browser][auth][cors]") {
  temp_dir dir{"phonon-it-cors-auth"};
  auto wav = make_tone(dir, 440);
  const auto listed_port = pick_free_port();
  auto unlisted_port = pick_free_port();
  for (int i = 0; i < 20 && unlisted_port == listed_port; ++i)
    unlisted_port = pick_free_port();
  REQUIRE(unlisted_port != listed_port);
  const auto listed = origin_of(listed_port);
  const auto unlisted = origin_of(unlisted_port);

  server_process srv;
  srv.set_env(auth_env());
  srv.start({"--set", "auth.mode=token", "--set",
             "server.cors_origins=" + listed});
  const auto port = srv.port();
  const auto token = bearer(42);
  const std::string rec = "/audio/user/42/phrase/3";
  REQUIRE(upload(port, rec, wav, token).status == 201);
  wait_ready(port, rec, with_token(token));
  auto whole = http_get(port, rec + "/m4a", with_token(token));
  REQUIRE(whole.status == 200);

  // A browser never sends credentials in a preflight: it must pass
  // without a token.
  check_preflight(preflight(port, rec, listed, "GET",
                            "authorization, x-request-id"),
                  listed, {"GET", "PUT", "DELETE"}, {});
  check_preflight(preflight(port, rec + "/m4a", listed, "GET",
                            "authorization, range, x-request-id"),
                  listed, {"GET", "HEAD"}, {"PUT", "DELETE"});
  CHECK(preflight(port, rec, unlisted, "GET", "authorization").status == 403);
  // A 401 carries the CORS headers too, so that the page can read it.
  {
    auto res = http_get(port, rec, {{"Origin", listed}});
    expect_401(res, "cross-origin GET without a token");
    check_cors_answer(res, listed);
  }

  const std::string rid = "cors-browser-test-2";
  nlohmann::json config{
    {"phonon", origin_of(port)},
    {"metadata_path", rec},
    {"audio_path", rec + "/m4a"},
    {"token", token},
    {"links_path", rec + "/links"},
    {"request_id", rid},
    {"origins",
     {{{"key", "listed"}, {"port", listed_port}},
      {{"key", "unlisted"}, {"port", unlisted_port}}}},
  };
  auto br = run_browser("cors.mjs", config, dir, 60s);
  require_ran(br);
  INFO("browser result: " << br.result.dump());
  const auto& results = br.result["results"];
  check_fetched(results["listed"], listed, "42", whole.body.size(), rid);
  check_blocked(results["unlisted"]);
  // The page asked for fresh links and read a range through one of them
  // with no Authorization.
  {
    const auto& l = results["listed"].value("links", nlohmann::json{});
    INFO("links step: " << l.dump());
    CHECK(l.value("status", 0) == 200);
    CHECK(l.value("link_status", 0) == 206);
    CHECK(l.value("link_bytes", -1) == 100);
    CHECK(l.value("link_content_range", "")
          == "bytes 0-99/" + std::to_string(whole.body.size()));
    const auto& u = results["unlisted"].value("links", nlohmann::json{});
    CHECK(u.value("error", "").rfind("TypeError", 0) == 0);
  }
  // Preflight of POST .../links.
  check_preflight(preflight(port, rec + "/links", listed, "POST",
                            "authorization"),
                  listed, {"POST"}, {"PUT", "DELETE"});
}
