// The pure decisions of http/auth.hpp and http/cors.hpp, without a socket.
// The real-server table lives in tests/integration/auth_test.cpp.

#include "http/auth.hpp"
#include "http/cors.hpp"

#include <catch2/catch.hpp>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <string>

using namespace phonon::http;

namespace {

const std::string secret(32, 'k');
const std::string link_key(32, 'l');
constexpr int64_t now = 1'800'000'000;

std::string hs256(const std::string& header, const std::string& claims,
                  const std::string& key = secret) {
  auto input = base64url(header) + "." + base64url(claims);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(),
       mac, &len);
  return input + "." + base64url({reinterpret_cast<char*>(mac), len});
}

std::string token(const std::string& claims) {
  return hs256(R"({"alg":"HS256"})", claims);
}

authenticator make(const std::string& issuer = {}) {
  phonon::config::auth_settings a;
  a.mode = "token";
  a.secret = secret;
  a.link_secret = link_key;
  a.issuer = issuer;
  a.leeway = 30;
  a.link_ttl = 60;
  phonon::config::metrics_settings m;
  m.token = "scrape";
  return authenticator{a, m};
}

auth_decision ask(const authenticator& auth, const std::string& method,
                  const std::string& target, const std::string& authorization,
                  int64_t at = now) {
  auto q = target.find('?');
  auto path = target.substr(0, q);
  auto query = q == std::string::npos ? "" : target.substr(q + 1);
  auto where = match_route(path);
  auth_request r;
  r.method = method;
  r.where = &where;
  r.path = path;
  r.query = query;
  r.authorization = authorization;
  return auth.check(r, at);
}

} // namespace

TEST_CASE("auth off lets everything through", "[unit][http][auth]") {
  authenticator off{{}, {}};
  CHECK_FALSE(off.enabled());
  CHECK(ask(off, "DELETE", "/audio/user/1/phrase/2", "").allowed());
  CHECK(ask(off, "GET", "/metrics", "").allowed());
}

TEST_CASE("bearer tokens: claims decide", "[unit][http][auth]") {
  auto auth = make();
  auto exp = std::to_string(now + 100);
  // A scope without audio:read: allowed to write, but not to get links.
  auto w = ask(auth, "PUT", "/audio/user/1/phrase/1",
               "Bearer "
                 + token(R"({"sub":"1","exp":1900000000,"scope":"audio:write"})"));
  CHECK(w.allowed());
  CHECK_FALSE(w.may_read);
  CHECK(w.subject == "user:1");
  auto bearer = [](const std::string& t) { return "Bearer " + t; };
  CHECK(ask(auth, "GET", "/audio/user/1", bearer(token(
                                             R"({"sub":"1","exp":)" + exp
                                             + "}")))
          .allowed());
  CHECK(ask(auth, "GET", "/audio/user/1", "").status == 401);
  CHECK(ask(auth, "GET", "/audio/user/1", "").code == "missing_token");
  // The leeway applies both ways, and no further.
  auto edge = [&](const std::string& claims, int64_t at) {
    return ask(auth, "GET", "/audio/user/1", bearer(token(claims)), at);
  };
  CHECK(edge(R"({"sub":"1","exp":1800000000})", now + 30).allowed());
  CHECK(edge(R"({"sub":"1","exp":1800000000})", now + 31).code
        == "token_expired");
  CHECK(edge(R"({"sub":"1","exp":1900000000,"nbf":1800000030})", now)
          .allowed());
  CHECK(edge(R"({"sub":"1","exp":1900000000,"nbf":1800000031})", now).code
        == "token_not_yet_valid");
  // Negative or non-numeric times never mean "forever".
  CHECK(edge(R"({"sub":"1","exp":-1})", now).status == 401);
  CHECK(edge(R"({"sub":"1","exp":1e400})", now).status == 401);
  CHECK(edge(R"({"sub":"1","exp":true})", now).status == 401);
  CHECK(edge(R"({"sub":"1","exp":1900000000,"nbf":"x"})", now).status == 401);
  // Claims that are not a JSON object, a header that is not one.
  CHECK(ask(auth, "GET", "/audio/user/1", bearer(token("[1]"))).status == 401);
  CHECK(ask(auth, "GET", "/audio/user/1",
            bearer(hs256("[]", R"({"sub":"1","exp":1900000000})")))
          .status
        == 401);
  // Another algorithm in the header, with a valid HMAC over it.
  CHECK(ask(auth, "GET", "/audio/user/1",
            bearer(hs256(R"({"alg":"HS512"})",
                         R"({"sub":"1","exp":1900000000})")))
          .status
        == 401);
  CHECK(ask(auth, "GET", "/audio/user/1",
            bearer(hs256(R"({"alg":"none"})",
                         R"({"sub":"1","exp":1900000000})")))
          .status
        == 401);
  CHECK(ask(auth, "GET", "/audio/user/1",
            bearer(hs256(R"({"alg":"HS256","crit":["exp"]})",
                         R"({"sub":"1","exp":1900000000})")))
          .status
        == 401);
  // typ is informational (RFC 9068 "at+jwt"); alg is case-sensitive.
  CHECK(ask(auth, "GET", "/audio/user/1",
            bearer(hs256(R"({"alg":"HS256","typ":"at+jwt"})",
                         R"({"sub":"1","exp":1900000000})")))
          .allowed());
  CHECK(ask(auth, "GET", "/audio/user/1",
            bearer(hs256(R"({"alg":"hs256"})",
                         R"({"sub":"1","exp":1900000000})")))
          .status
        == 401);
  // One spelling per token: no padding, no standard-alphabet characters.
  auto good = token(R"({"sub":"1","exp":1900000000})");
  CHECK(ask(auth, "GET", "/audio/user/1", bearer(good)).allowed());
  CHECK(ask(auth, "GET", "/audio/user/1", bearer(good + "=")).status == 401);
  CHECK(ask(auth, "GET", "/audio/user/1", bearer(good + ".x")).status == 401);
  // Characters outside base64url and token68.
  CHECK(ask(auth, "GET", "/audio/user/1", "Bearer a.b\"c").status == 401);
  CHECK(ask(auth, "GET", "/audio/user/1", "Bearer").status == 401);
}

TEST_CASE("scopes and users", "[unit][http][auth]") {
  auto auth = make();
  auto with = [&](const std::string& extra) {
    return "Bearer " + token(R"({"sub":"5","exp":1900000000)" + extra + "}");
  };
  CHECK(ask(auth, "GET", "/audio/user/6/phrase/1", with("")).status == 403);
  CHECK(ask(auth, "GET", "/audio/user/6/phrase/1", with(R"(,"admin":true)"))
          .allowed());
  auto read_only = with(R"(,"scope":"audio:read")");
  CHECK(ask(auth, "GET", "/audio/user/5/phrase/1/mp3", read_only).allowed());
  CHECK(ask(auth, "HEAD", "/audio/user/5/phrase/1/mp3", read_only).allowed());
  CHECK(ask(auth, "POST", "/audio/user/5/phrase/1/links", read_only)
          .allowed());
  CHECK(ask(auth, "PUT", "/audio/user/5/phrase/1", read_only).code
        == "insufficient_scope");
  CHECK(ask(auth, "DELETE", "/audio/user/5/phrase/1", read_only).status
        == 403);
  auto write_only = with(R"(,"scope":"audio:write")");
  CHECK(ask(auth, "GET", "/audio/user/5", write_only).status == 403);
  CHECK(ask(auth, "POST", "/audio/user/5/phrase/1", write_only).allowed());
  // A scope that merely contains the word does not count.
  CHECK(ask(auth, "GET", "/audio/user/5", with(R"(,"scope":"audio:reader")"))
          .status
        == 403);
  CHECK(ask(auth, "GET", "/audio/user/5", with(R"(,"scope":["audio:read"])"))
          .status
        == 401);
}

TEST_CASE("issuer is checked when set", "[unit][http][auth]") {
  auto auth = make("https://id.example");
  auto t = [](const std::string& iss) {
    return "Bearer "
           + token(R"({"sub":"1","exp":1900000000,"iss":)" + iss + "}");
  };
  CHECK(ask(auth, "GET", "/audio/user/1", t(R"("https://id.example")"))
          .allowed());
  CHECK(ask(auth, "GET", "/audio/user/1", t(R"("https://id.example/")"))
          .status
        == 401);
  CHECK(ask(auth, "GET", "/audio/user/1", t("null")).status == 401);
}

TEST_CASE("metrics: scraper token or admin", "[unit][http][auth]") {
  auto auth = make();
  CHECK(ask(auth, "GET", "/metrics", "").status == 401);
  CHECK(ask(auth, "GET", "/metrics", "Bearer scrape").allowed());
  CHECK(ask(auth, "GET", "/metrics", "Bearer scrapf").status == 401);
  CHECK(ask(auth, "GET", "/metrics",
            "Bearer " + token(R"({"sub":"1","exp":1900000000})"))
          .status
        == 403);
  CHECK(ask(auth, "GET", "/metrics",
            "Bearer " + token(R"({"exp":1900000000,"admin":true})"))
          .allowed());
  CHECK(ask(auth, "GET", "/healthz", "").allowed());
  CHECK(ask(auth, "GET", "/readyz", "").allowed());
}

TEST_CASE("signed links: one path, reads only, until expiry",
          "[unit][http][auth]") {
  auto auth = make();
  auto link = auth.sign_link("/audio/user/1/phrase/2/mp3", now);
  CHECK(link.rfind("/audio/user/1/phrase/2/mp3?expires=1800000060&sig=", 0)
        == 0);
  CHECK(ask(auth, "GET", link, "").allowed());
  CHECK(ask(auth, "HEAD", link, "").allowed());
  CHECK(ask(auth, "GET", link, "", now + 60).allowed());
  CHECK(ask(auth, "GET", link, "", now + 61).code == "link_expired");
  auto query = link.substr(link.find('?'));
  CHECK(ask(auth, "GET", "/audio/user/1/phrase/2/wav" + query, "").code
        == "invalid_link");
  CHECK(ask(auth, "GET", "/audio/user/1/phrase/3/mp3" + query, "").status
        == 401);
  CHECK(ask(auth, "GET", "/audio/user/1/phrase/2" + query, "").status == 401);
  CHECK(ask(auth, "DELETE", "/audio/user/1/phrase/2" + query, "").status
        == 401);
  // Leading zeros change the signed text.
  auto zeros = "/audio/user/1/phrase/2/mp3?expires=01800000060&sig="
               + link.substr(link.find("&sig=") + 5);
  CHECK(ask(auth, "GET", zeros, "").status == 401);
  // A wrong bearer token is not rescued by a good link.
  CHECK(ask(auth, "GET", link, "Bearer x.y.z").status == 401);
  // Another key signs differently.
  auto other_settings = phonon::config::auth_settings{};
  other_settings.mode = "token";
  other_settings.secret = secret;
  other_settings.link_secret = std::string(32, 'm');
  authenticator other{other_settings, {}};
  CHECK(other.link_signature("/p", 1) != auth.link_signature("/p", 1));
}

TEST_CASE("helpers: base64url, constant-time compare, log redaction",
          "[unit][http][auth]") {
  CHECK(base64url("") == "");
  CHECK(base64url("f") == "Zg");
  CHECK(base64url("fo") == "Zm8");
  CHECK(base64url("foo") == "Zm9v");
  CHECK(base64url("\xfb\xff") == "-_8");
  CHECK(equal_in_constant_time("abc", "abc"));
  CHECK_FALSE(equal_in_constant_time("abc", "abd"));
  CHECK_FALSE(equal_in_constant_time("abc", "ab"));
  CHECK(without_credentials("/a?expires=1&sig=SECRET&x=2")
        == "/a?expires=1&sig=-&x=2");
  CHECK(without_credentials("/a?sig=S&sig=T") == "/a?sig=-&sig=-");
  CHECK(without_credentials("/a") == "/a");
  CHECK(without_credentials("/a?%73ig=S&%73%69%67=T&access_token=U")
        == "/a?%73ig=-&%73%69%67=-&access_token=-");
}

TEST_CASE("CORS: listed origins, preflights", "[unit][http][cors]") {
  std::vector<std::string> list{"http://a.example", "http://b.example:8080"};
  auto h = cors_headers("http://a.example", list);
  auto has = [](const header_list& hs, const std::string& k,
                const std::string& v) {
    for (auto& [name, value] : hs)
      if (name == k && (v.empty() || value == v))
        return true;
    return false;
  };
  CHECK(has(h, "Access-Control-Allow-Origin", "http://a.example"));
  CHECK(has(h, "Vary", "Origin"));
  CHECK(has(h, "Access-Control-Expose-Headers", ""));
  auto other = cors_headers("http://c.example", list);
  CHECK_FALSE(has(other, "Access-Control-Allow-Origin", ""));
  CHECK(has(other, "Vary", "Origin"));
  CHECK(cors_headers("http://a.example", {}).empty());
  CHECK_FALSE(origin_allowed("http://A.example", list));
  CHECK_FALSE(origin_allowed("null", list));
  CHECK(origin_allowed("null", {"*"}));
  auto rec = match_route("/audio/user/1/phrase/2");
  auto pre = answer_options(rec, "http://b.example:8080", "PUT", list);
  CHECK(pre.status == 204);
  CHECK(has(pre.headers, "Access-Control-Allow-Methods",
            "GET, HEAD, POST, PUT, DELETE, OPTIONS"));
  CHECK(has(pre.headers, "Access-Control-Max-Age", "600"));
  CHECK(answer_options(rec, "http://evil", "PUT", list).status == 403);
  // Any OPTIONS from an unlisted page is refused, preflight or not.
  CHECK(answer_options(rec, "http://evil", "", list).status == 403);
  CHECK(answer_options(rec, "http://a.example", "", list).status == 204);
  auto plain = answer_options(rec, "", "", list);
  CHECK(plain.status == 204);
  CHECK(has(plain.headers, "Allow", "GET, HEAD, POST, PUT, DELETE, OPTIONS"));
}
