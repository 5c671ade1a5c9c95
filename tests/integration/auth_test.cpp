// API.md "Authentication and authorization" against the real server: a
// table of credentials (one row each), every row tried on every /audio/...
// route and method. Tokens are minted at test time (jwt_mint.hpp), keys
// are generated at test time.

#include <catch2/catch.hpp>

#include <chrono>
#include <ctime>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/jwt_mint.hpp"
#include "tests/integration/media_support.hpp"
#include "tests/integration/support.hpp"

using namespace phonon::integration;

namespace {

const std::string secret(40, 's');
const std::string link_secret(40, 'l');

int64_t now() {
  return static_cast<int64_t>(std::time(nullptr));
}

std::string hs256(const std::string& claims) {
  return jwt::mint(R"({"alg":"HS256","typ":"JWT"})", claims,
                   jwt::key::hs256(secret));
}

/// Claims with sub and an exp an hour from now, plus `extra` (",..."),
/// or `exp` replaced when `extra` names one.
std::string claims(const std::string& sub_json, const std::string& extra = {}) {
  return R"({"sub":)" + sub_json + R"(,"exp":)" + std::to_string(now() + 3600)
         + extra + "}";
}

/// What a row expects of a request: refused with 401 or 403, or let
/// through (any other status: the request did its work).
enum class verdict { unauthorized, forbidden, allowed };

const char* name_of(verdict v) {
  switch (v) {
    case verdict::unauthorized:
      return "401";
    case verdict::forbidden:
      return "403";
    default:
      return "allowed";
  }
}

/// One credential and what it may do on user 1's data.
struct row {
  std::string name;
  /// The Authorization field ("" for none).
  std::string authorization;
  verdict read;
  verdict write;
};

/// One route and method on user 1's recordings.
struct call {
  std::string method;
  std::string target;
  bool is_write;
  /// Carries the upload body.
  bool upload = false;
};

http_response send(uint16_t port, const call& c, const std::string& auth,
                   const multipart_body& body) {
  header_list headers;
  if (!auth.empty())
    headers.emplace_back("Authorization", auth);
  if (c.upload) {
    headers.emplace_back("Content-Type", body.content_type);
    return http_request(port, c.method, c.target, body.body, headers);
  }
  return http_request(port, c.method, c.target, {}, headers);
}

void check_verdict(const http_response& res, verdict expected,
                   bool head) {
  INFO("status " << res.status << " body " << res.body);
  switch (expected) {
    case verdict::unauthorized:
      CHECK(res.status == 401);
      CHECK(res.header("WWW-Authenticate")
            == R"(Bearer realm="phonon", error="invalid_token")");
      if (!head)
        expect_json_error(res);
      break;
    case verdict::forbidden:
      CHECK(res.status == 403);
      if (!head)
        expect_json_error(res);
      break;
    case verdict::allowed:
      CHECK(res.status != 401);
      CHECK(res.status != 403);
      CHECK(res.status < 500);
      break;
  }
}

/// The victim's recording as an admin sees it: metadata and original bytes.
struct snapshot {
  std::string updated_at;
  std::string etag;
  std::string bytes;
};

snapshot take_snapshot(uint16_t port, const std::string& admin) {
  header_list h{{"Authorization", admin}};
  auto meta = http_get(port, "/audio/user/1/phrase/1", h);
  REQUIRE(meta.status == 200);
  auto audio = http_get(port, "/audio/user/1/phrase/1/m4a", h);
  REQUIRE(audio.status == 200);
  return {meta.json()["updated_at"].get<std::string>(), audio.header("ETag"),
          audio.body};
}

std::vector<std::string> auth_env_args() {
  return {"--set", "auth.mode=token"};
}

env_list auth_env() {
  return {{"APP_AUTH_SECRET", secret}, {"APP_AUTH_LINK_SECRET", link_secret}};
}

} // namespace

TEST_CASE("auth: every credential on every /audio route and method "
          "(HS256, issuer and audience set)",
          "[auth]") {
  server_process server;
  server.set_env(auth_env());
  server.start({"--set", "auth.mode=token", "--set", "auth.issuer=https://id",
                "--set", "auth.audience=phonon"});
  auto port = server.port();
  const std::string iss_aud = R"(,"iss":"https://id","aud":"phonon")";
  auto bearer = [](const std::string& t) { return "Bearer " + t; };
  auto owner = bearer(hs256(claims(R"("1")", iss_aud)));
  auto admin = bearer(hs256(claims(R"("99")", iss_aud + R"(,"admin":true)")));

  // The victim (user 1, phrase 1) and the recording of user 2.
  // Moov first: served as uploaded, byte for byte.
  auto m4a = read_file(audio_fixtures().m4a_faststart);
  auto body = make_multipart({{"audio_file", "a.m4a", "audio/mp4", m4a}});
  for (auto target : {"/audio/user/1/phrase/1", "/audio/user/2/phrase/1"}) {
    auto up = http_request(port, "POST", target, body.body,
                           {{"Authorization", admin},
                            {"Content-Type", body.content_type}});
    REQUIRE(up.status == 201);
  }
  auto before = take_snapshot(port, admin);

  // The RS256 public key of a pair the server does not use: HS256 signed
  // with a public key as the secret (algorithm confusion) and an RS256
  // token must both fail on an HS256 server.
  auto rsa = jwt::make_rsa_key_pair();
  auto h = [&](const std::string& c) {
    return bearer(hs256(c));
  };
  std::vector<row> rows{
    {"no Authorization", "", verdict::unauthorized, verdict::unauthorized},
    {"Basic", "Basic dXNlcjpwYXNz", verdict::unauthorized,
     verdict::unauthorized},
    {"garbage", "Bearer not-a-token", verdict::unauthorized,
     verdict::unauthorized},
    {"empty bearer", "Bearer ", verdict::unauthorized, verdict::unauthorized},
    {"alg none",
     bearer(jwt::mint(R"({"alg":"none","typ":"JWT"})",
                      claims(R"("1")", iss_aud), jwt::key::none())),
     verdict::unauthorized, verdict::unauthorized},
    {"HS256 signed with an RSA public key",
     bearer(jwt::mint(R"({"alg":"HS256","typ":"JWT"})",
                      claims(R"("1")", iss_aud),
                      jwt::key::hs256(rsa.public_pem))),
     verdict::unauthorized, verdict::unauthorized},
    {"RS256 on an HS256 server",
     bearer(jwt::mint(R"({"alg":"RS256","typ":"JWT"})",
                      claims(R"("1")", iss_aud),
                      jwt::key::rs256(rsa.private_pem))),
     verdict::unauthorized, verdict::unauthorized},
    {"wrong secret",
     bearer(jwt::mint(R"({"alg":"HS256","typ":"JWT"})",
                      claims(R"("1")", iss_aud),
                      jwt::key::hs256(std::string(40, 'x')))),
     verdict::unauthorized, verdict::unauthorized},
    {"expired",
     h(R"({"sub":"1","exp":)" + std::to_string(now() - 3600) + iss_aud
       + "}"),
     verdict::unauthorized, verdict::unauthorized},
    {"expired within the leeway is still good",
     h(R"({"sub":"1","exp":)" + std::to_string(now() - 5) + iss_aud + "}"),
     verdict::allowed, verdict::allowed},
    {"no exp", h(R"({"sub":"1")" + iss_aud + "}"), verdict::unauthorized,
     verdict::unauthorized},
    {"exp not a number",
     h(R"({"sub":"1","exp":"tomorrow")" + iss_aud + "}"),
     verdict::unauthorized, verdict::unauthorized},
    {"nbf in the future",
     h(claims(R"("1")",
              iss_aud + R"(,"nbf":)" + std::to_string(now() + 3600))),
     verdict::unauthorized, verdict::unauthorized},
    {"iat in the future",
     h(claims(R"("1")",
              iss_aud + R"(,"iat":)" + std::to_string(now() + 3600))),
     verdict::unauthorized, verdict::unauthorized},
    {"wrong iss", h(claims(R"("1")", R"(,"iss":"https://evil","aud":"phonon")")),
     verdict::unauthorized, verdict::unauthorized},
    {"no iss", h(claims(R"("1")", R"(,"aud":"phonon")")),
     verdict::unauthorized, verdict::unauthorized},
    {"wrong aud", h(claims(R"("1")", R"(,"iss":"https://id","aud":"other")")),
     verdict::unauthorized, verdict::unauthorized},
    {"aud as a list naming phonon",
     h(claims(R"("1")", R"(,"iss":"https://id","aud":["x","phonon"])")),
     verdict::allowed, verdict::allowed},
    {"tampered claims (signature of other claims)",
     [&] {
       auto t = hs256(claims(R"("2")", iss_aud));
       auto good = hs256(claims(R"("1")", iss_aud));
       // user 1's claims with user 2's signature
       return bearer(good.substr(0, good.rfind('.'))
                     + t.substr(t.rfind('.')));
     }(),
     verdict::unauthorized, verdict::unauthorized},
    {"sub of another user", h(claims(R"("2")", iss_aud)), verdict::forbidden,
     verdict::forbidden},
    {"sub as a number", h(claims("1", iss_aud)), verdict::unauthorized,
     verdict::unauthorized},
    {"sub with a leading zero", h(claims(R"("01")", iss_aud)),
     verdict::forbidden, verdict::forbidden},
    {"admin not a boolean",
     h(claims(R"("99")", iss_aud + R"(,"admin":"true")")),
     verdict::unauthorized, verdict::unauthorized},
    {"admin false on another user",
     h(claims(R"("99")", iss_aud + R"(,"admin":false)")), verdict::forbidden,
     verdict::forbidden},
    {"admin token on another user", admin, verdict::allowed,
     verdict::allowed},
    {"read-only scope", h(claims(R"("1")", iss_aud + R"(,"scope":"audio:read")")),
     verdict::allowed, verdict::forbidden},
    {"write-only scope",
     h(claims(R"("1")", iss_aud + R"(,"scope":"audio:write")")),
     verdict::forbidden, verdict::allowed},
    {"empty scope", h(claims(R"("1")", iss_aud + R"(,"scope":"")")),
     verdict::forbidden, verdict::forbidden},
    {"both scopes and more",
     h(claims(R"("1")", iss_aud + R"(,"scope":"openid audio:write audio:read")")),
     verdict::allowed, verdict::allowed},
    {"the owner", owner, verdict::allowed, verdict::allowed},
    {"scheme in lower case", "bearer " + hs256(claims(R"("1")", iss_aud)),
     verdict::allowed, verdict::allowed},
  };

  // Refused rows act on the victim; rows that may write act on a scratch
  // phrase of the same user, so that the victim stays comparable.
  auto calls_on = [](const std::string& phrase) {
    auto rec = "/audio/user/1/phrase/" + phrase;
    return std::vector<call>{
      {"GET", "/audio/user/1", false},
      {"HEAD", "/audio/user/1", false},
      {"GET", rec, false},
      {"HEAD", rec, false},
      {"GET", rec + "/m4a", false},
      {"HEAD", rec + "/m4a", false},
      {"GET", rec + "/wav", false},
      {"POST", rec + "/links", false},
      {"PUT", rec, true, true},
      {"POST", rec, true, true},
      {"DELETE", rec, true},
    };
  };
  for (auto& r : rows) {
    bool may_write = r.write == verdict::allowed;
    for (auto& c : calls_on(may_write ? "7" : "1")) {
      auto expected = c.is_write ? r.write : r.read;
      INFO("row '" << r.name << "': " << c.method << " " << c.target
                   << " expects " << name_of(expected));
      auto res = send(port, c, r.authorization, body);
      check_verdict(res, expected, c.method == "HEAD");
    }
  }
  // A refused request changed nothing.
  auto after = take_snapshot(port, admin);
  CHECK(after.updated_at == before.updated_at);
  CHECK(after.etag == before.etag);
  CHECK(after.bytes == before.bytes);
  CHECK(after.bytes == m4a);
  // The other user's recording too.
  auto other = http_get(port, "/audio/user/2/phrase/1/m4a",
                        {{"Authorization", admin}});
  CHECK(other.body == m4a);
}

TEST_CASE("auth: an upload without a token is refused from its head",
          "[auth]") {
  server_process server;
  server.set_env(auth_env());
  server.start(auth_env_args());
  // 10 MiB announced, not one byte of it sent: the answer comes anyway,
  // and the connection closes since the body stays unread.
  http_connection conn{server.port()};
  conn.send_raw("PUT /audio/user/1/phrase/1 HTTP/1.1\r\nHost: x\r\n"
                "Content-Type: audio/mp4\r\nContent-Length: 10485760\r\n\r\n");
  auto res = conn.read_response();
  CHECK(res.status == 401);
  CHECK(conn.wait_closed_by_peer());
  // With Expect: 100-continue the client never sends the body at all.
  http_connection conn2{server.port()};
  conn2.send_raw("POST /audio/user/1/phrase/1 HTTP/1.1\r\nHost: x\r\n"
                 "Content-Type: audio/mp4\r\nContent-Length: 10485760\r\n"
                 "Expect: 100-continue\r\n"
                 "Authorization: Bearer "
                 + hs256(claims(R"("2")")) + "\r\n\r\n");
  auto res2 = conn2.read_response();
  CHECK(res2.status == 403);
  // Nothing reached the actors: no spool file, no row.
  auto admin = "Bearer " + hs256(claims(R"("9")", R"(,"admin":true)"));
  CHECK(http_get(server.port(), "/audio/user/1/phrase/1",
                 {{"Authorization", admin}})
          .status
        == 404);
}

TEST_CASE("auth: RS256 and ES256 servers take their algorithm only",
          "[auth]") {
  auto rsa = jwt::make_rsa_key_pair();
  auto ec = jwt::make_ec_p256_key_pair();
  temp_dir keys{"phonon-keys"};
  write_file(keys.path() / "rsa.pem", rsa.public_pem);
  write_file(keys.path() / "ec.pem", ec.public_pem);
  auto c = claims(R"("1")");
  auto rs = jwt::mint(R"({"alg":"RS256","typ":"JWT"})", c,
                      jwt::key::rs256(rsa.private_pem));
  auto es = jwt::mint(R"({"alg":"ES256","typ":"JWT"})", c,
                      jwt::key::es256(ec.private_pem));
  // HS256 with the server's own public key text as the secret.
  auto confused_rsa = jwt::mint(R"({"alg":"HS256","typ":"JWT"})", c,
                                jwt::key::hs256(rsa.public_pem));
  auto confused_ec = jwt::mint(R"({"alg":"HS256","typ":"JWT"})", c,
                               jwt::key::hs256(ec.public_pem));
  auto none = jwt::mint(R"({"alg":"none"})", c, jwt::key::none());
  // An RS256 header over an ES256 signature and the other way round.
  auto other_rsa = jwt::make_rsa_key_pair();
  auto rs_other_key = jwt::mint(R"({"alg":"RS256","typ":"JWT"})", c,
                                jwt::key::rs256(other_rsa.private_pem));

  struct server_case {
    std::string algorithm;
    std::string key_file;
    std::string good;
    std::vector<std::string> bad;
  };
  // One token, one spelling: padding or the standard base64 alphabet in
  // the signature are refused even where OpenSSL would decode them.
  auto padded = rs + "=";
  auto std_alphabet = rs;
  for (size_t i = rs.rfind('.') + 1; i < std_alphabet.size(); ++i) {
    if (std_alphabet[i] == '-')
      std_alphabet[i] = '+';
    else if (std_alphabet[i] == '_')
      std_alphabet[i] = '/';
  }
  std::vector<std::string> rs_bad{es, confused_rsa, none, rs_other_key,
                                  hs256(c), padded};
  if (std_alphabet != rs)
    rs_bad.push_back(std_alphabet);
  // An RFC 9068 access token (typ at+jwt) is fine; the algorithm's name is
  // case-sensitive.
  auto at_jwt = jwt::mint(R"({"alg":"RS256","typ":"at+jwt"})", c,
                          jwt::key::rs256(rsa.private_pem));
  rs_bad.push_back(jwt::mint(R"({"alg":"rs256","typ":"JWT"})", c,
                             jwt::key::rs256(rsa.private_pem)));
  std::vector<server_case> cases{
    {"RS256", (keys.path() / "rsa.pem").string(), rs, rs_bad},
    {"RS256", (keys.path() / "rsa.pem").string(), at_jwt, {}},
    {"ES256", (keys.path() / "ec.pem").string(), es,
     {rs, confused_ec, none, hs256(c)}},
  };
  for (auto& sc : cases) {
    INFO("auth.algorithm=" << sc.algorithm);
    server_process server;
    server.set_env({{"APP_AUTH_LINK_SECRET", link_secret}});
    server.start({"--set", "auth.mode=token", "--set",
                  "auth.algorithm=" + sc.algorithm, "--set",
                  "auth.public_key_file=" + sc.key_file});
    auto port = server.port();
    auto good = http_get(port, "/audio/user/1", {{"Authorization",
                                                   "Bearer " + sc.good}});
    CHECK(good.status == 200);
    for (size_t i = 0; i < sc.bad.size(); ++i) {
      INFO("bad token #" << i);
      auto res = http_get(port, "/audio/user/1",
                          {{"Authorization", "Bearer " + sc.bad[i]}});
      CHECK(res.status == 401);
    }
  }
}

TEST_CASE("auth: startup refuses unusable keys and never prints secrets",
          "[auth]") {
  temp_dir dir{"phonon-keys"};
  write_file(dir.path() / "garbage.pem", "not a key");
  auto ec = jwt::make_ec_p256_key_pair();
  write_file(dir.path() / "ec.pem", ec.public_pem);
  struct start_case {
    std::string name;
    std::string env;
    std::string args;
    std::string expected;
  };
  const std::string long_secret(40, 'q');
  std::vector<start_case> cases{
    {"no secret", "APP_AUTH_LINK_SECRET=" + link_secret, "",
     "auth.secret"},
    {"short secret",
     "APP_AUTH_SECRET=tooShortSecret APP_AUTH_LINK_SECRET=" + link_secret,
     "", "auth.secret"},
    {"no link secret", "APP_AUTH_SECRET=" + long_secret, "",
     "auth.link_secret"},
    {"garbage public key", "APP_AUTH_LINK_SECRET=" + link_secret,
     "--set auth.algorithm=RS256 --set auth.public_key_file="
       + (dir.path() / "garbage.pem").string(),
     "auth.public_key_file"},
    {"EC key for RS256", "APP_AUTH_LINK_SECRET=" + link_secret,
     "--set auth.algorithm=RS256 --set auth.public_key_file="
       + (dir.path() / "ec.pem").string(),
     "RSA"},
    {"secret in argv",
     "APP_AUTH_LINK_SECRET=" + link_secret,
     "--set auth.secret=" + long_secret, "APP_AUTH_SECRET"},
  };
  for (auto& c : cases) {
    INFO(c.name);
    auto r = run("env " + c.env + " " + shell_quote(phonon_binary())
                 + " serve --port 0 --data-dir "
                 + shell_quote((dir.path() / "data").string())
                 + " --set auth.mode=token " + c.args + " 2>&1");
    INFO(r.output);
    CHECK(r.exit_code == 2);
    CHECK(r.output.find(c.expected) != std::string::npos);
    CHECK(r.output.find("tooShortSecret") == std::string::npos);
    CHECK(r.output.find(link_secret) == std::string::npos);
    CHECK(r.output.find(long_secret) == std::string::npos);
  }
}

TEST_CASE("auth: /metrics needs an admin or the scraper token; health "
          "stays open; secrets never show",
          "[auth]") {
  server_process server;
  const std::string scraper = "scraper-token-0123456789-0123456789";
  auto env = auth_env();
  env.emplace_back("APP_METRICS_TOKEN", scraper);
  server.set_env(env);
  server.start(auth_env_args());
  auto port = server.port();
  CHECK(http_get(port, "/healthz").status == 200);
  CHECK(http_get(port, "/readyz").status == 200);
  auto none = http_get(port, "/metrics");
  CHECK(none.status == 401);
  CHECK(none.has("WWW-Authenticate"));
  CHECK(http_get(port, "/metrics", {{"Authorization", "Bearer wrong"}}).status
        == 401);
  CHECK(http_get(port, "/metrics",
                 {{"Authorization", "Bearer " + hs256(claims(R"("1")"))}})
          .status
        == 403);
  auto scraped = http_get(port, "/metrics",
                          {{"Authorization", "Bearer " + scraper}});
  CHECK(scraped.status == 200);
  auto admin = "Bearer " + hs256(claims(R"("1")", R"(,"admin":true)"));
  auto by_admin = http_get(port, "/metrics", {{"Authorization", admin}});
  CHECK(by_admin.status == 200);
  // Make some traffic with a token, then look for secrets everywhere an
  // operator or a client can see text.
  http_get(port, "/audio/user/1", {{"Authorization", admin}});
  http_get(port, "/audio/user/1", {{"Authorization", "Bearer " + secret}});
  auto metrics = http_get(port, "/metrics", {{"Authorization", admin}}).body;
  auto ready = http_get(port, "/readyz").body;
  auto log = server.log();
  for (auto& s : {secret, link_secret, scraper}) {
    CHECK(metrics.find(s) == std::string::npos);
    CHECK(ready.find(s) == std::string::npos);
    CHECK(log.find(s) == std::string::npos);
  }
}

TEST_CASE("auth: signed links grant GET and HEAD of one path until they "
          "expire",
          "[auth]") {
  server_process server;
  server.set_env(auth_env());
  server.start({"--set", "auth.mode=token", "--set", "auth.link_ttl=3"});
  auto port = server.port();
  auto owner = "Bearer " + hs256(claims(R"("1")"));
  // Moov first: served as uploaded, byte for byte.
  auto m4a = read_file(audio_fixtures().m4a_faststart);
  auto body = make_multipart({{"audio_file", "a.m4a", "audio/mp4", m4a}});
  for (auto target : {"/audio/user/1/phrase/1", "/audio/user/1/phrase/2"})
    REQUIRE(http_request(port, "POST", target, body.body,
                         {{"Authorization", owner},
                          {"Content-Type", body.content_type}})
              .status
            == 201);
  auto meta = http_get(port, "/audio/user/1/phrase/1",
                       {{"Authorization", owner}});
  REQUIRE(meta.status == 200);
  // Answers with links are never stored by caches.
  CHECK(meta.header("Cache-Control") == "no-store");
  auto link = meta.json()["formats"]["m4a"].get<std::string>();
  INFO("link " << link);
  // A write-only token uploads, but its answer holds no read links.
  auto writer = "Bearer " + hs256(claims(R"("1")", R"(,"scope":"audio:write")"));
  auto up = http_request(port, "PUT", "/audio/user/1/phrase/3", body.body,
                         {{"Authorization", writer},
                          {"Content-Type", body.content_type}});
  REQUIRE(up.status == 201);
  auto up_doc = up.json();
  REQUIRE(up_doc["data"]["formats"].is_object());
  for (auto& [fmt, url] : up_doc["data"]["formats"].items()) {
    INFO(fmt << " " << url);
    CHECK(url.get<std::string>().find("sig=") == std::string::npos);
  }
  REQUIRE(link.rfind("/audio/user/1/phrase/1/m4a?expires=", 0) == 0);
  REQUIRE(link.find("&sig=") != std::string::npos);
  auto got = http_get(port, link);
  CHECK(got.status == 200);
  CHECK(got.body == m4a);
  CHECK(got.header("Content-Disposition") == "inline; filename=\"1-1.m4a\"");
  CHECK(http_request(port, "HEAD", link).status == 200);
  CHECK(http_get(port, link, {{"Range", "bytes=0-9"}}).status == 206);

  auto query = link.substr(link.find('?'));
  auto expires = query.substr(9, query.find('&') - 9);
  auto sig = query.substr(query.find("&sig=") + 5);
  std::vector<std::pair<std::string, std::string>> tampered{
    {"other phrase", "/audio/user/1/phrase/2/m4a" + query},
    {"other user", "/audio/user/2/phrase/1/m4a" + query},
    {"other format", "/audio/user/1/phrase/1/wav" + query},
    {"later expiry", "/audio/user/1/phrase/1/m4a?expires="
                       + std::to_string(std::stoll(expires) + 1000)
                       + "&sig=" + sig},
    {"changed signature",
     "/audio/user/1/phrase/1/m4a?expires=" + expires + "&sig="
       + (sig[0] == 'A' ? "B" : "A") + sig.substr(1)},
    {"shortened signature",
     "/audio/user/1/phrase/1/m4a?expires=" + expires + "&sig="
       + sig.substr(0, sig.size() - 1)},
    {"no signature", "/audio/user/1/phrase/1/m4a?expires=" + expires},
    {"no expiry", "/audio/user/1/phrase/1/m4a?sig=" + sig},
  };
  for (auto& [name, target] : tampered) {
    INFO(name << ": " << target);
    auto res = http_get(port, target);
    CHECK(res.status == 401);
    CHECK(res.has("WWW-Authenticate"));
  }
  // A link never grants writes, on its own path or the recording's.
  CHECK(http_request(port, "DELETE", "/audio/user/1/phrase/1" + query).status
        == 401);
  CHECK(http_request(port, "PUT", "/audio/user/1/phrase/1" + query, body.body,
                     {{"Content-Type", body.content_type}})
          .status
        == 401);
  CHECK(http_request(port, "DELETE", link).status == 405);
  CHECK(http_request(port, "POST", "/audio/user/1/phrase/1/links" + query)
          .status
        == 401);
  // Fresh links on request.
  auto fresh = http_request(port, "POST", "/audio/user/1/phrase/1/links", {},
                            {{"Authorization", owner}});
  REQUIRE(fresh.status == 200);
  CHECK(fresh.json()["formats"]["mp3"].get<std::string>().find("&sig=")
        != std::string::npos);
  CHECK(fresh.json()["expires_at"].is_string());
  CHECK(http_request(port, "POST", "/audio/user/1/phrase/404/links", {},
                     {{"Authorization", owner}})
          .status
        == 404);
  // The log never holds a link's signature.
  CHECK(server.log().find(sig) == std::string::npos);
  // auth.link_ttl=3: after it the same link is refused.
  std::this_thread::sleep_for(std::chrono::milliseconds(4200));
  auto late = http_get(port, link);
  CHECK(late.status == 401);
  CHECK(late.json()["code"] == "link_expired");
}
