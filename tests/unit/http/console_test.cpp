#include "http/console.hpp"

#include <catch2/catch.hpp>

#include <string>

#include "http/console_assets.hpp"

using namespace phonon::http;

namespace {

std::string header(const reply& r, const std::string& name) {
  for (auto& [k, v] : r.headers)
    if (k == name)
      return v;
  return {};
}

} // namespace

TEST_CASE("the console's files are compiled in", "[unit][http][console]") {
  REQUIRE(console_assets().size() == 3);
  for (auto name : {"index.html", "console.js", "console.css"}) {
    INFO(name);
    auto r = console_reply(name, "");
    REQUIRE(r.has_value());
    CHECK(r->status == 200);
    CHECK_FALSE(r->body.empty());
    CHECK(header(*r, "Content-Security-Policy") == console_csp);
    CHECK(header(*r, "X-Content-Type-Options") == "nosniff");
    auto etag = header(*r, "ETag");
    CHECK(etag.size() > 4);
    CHECK(etag.front() == '"');
    CHECK(etag.back() == '"');
  }
  CHECK(console_reply("index.html", "")->content_type
        == "text/html; charset=utf-8");
  CHECK(console_reply("console.js", "")->content_type
        == "text/javascript; charset=utf-8");
  CHECK(console_reply("console.css", "")->content_type
        == "text/css; charset=utf-8");
}

TEST_CASE("console files: 304 on a matching ETag, nothing else served",
          "[unit][http][console]") {
  auto etag = header(*console_reply("console.js", ""), "ETag");
  auto r = console_reply("console.js", etag);
  REQUIRE(r.has_value());
  CHECK(r->status == 304);
  CHECK(r->body.empty());
  CHECK(console_reply("console.js", "W/" + etag)->status == 304);
  CHECK(console_reply("console.js", "\"other\", " + etag)->status == 304);
  CHECK(console_reply("console.js", "\"other\"")->status == 200);
  // The ETags differ between files.
  CHECK(header(*console_reply("console.css", ""), "ETag") != etag);
  for (auto name : {"", "index", "../index.html", "console.js/", "CONSOLE.JS",
                    "missing.js"}) {
    INFO(name);
    CHECK_FALSE(console_reply(name, "").has_value());
  }
}

TEST_CASE("with S3 redirects the console's CSP allows the bucket's origin "
          "in media-src, and only there",
          "[unit][http][console][redirect]") {
  const std::string origin = "https://voices.media.example.com:8443";
  auto r = console_reply("index.html", "", origin);
  REQUIRE(r.has_value());
  auto csp = header(*r, "Content-Security-Policy");
  CHECK(csp.find("media-src 'self' blob: " + origin + ";")
        != std::string::npos);
  // Nowhere else: scripts, connections and images stay same-origin.
  CHECK(csp.find(origin) == csp.rfind(origin));
  CHECK(csp.find("connect-src 'self';") != std::string::npos);
  CHECK(csp.find("script-src 'self';") != std::string::npos);
  // Without redirects (no origin): the policy as before.
  CHECK(header(*console_reply("index.html", ""), "Content-Security-Policy")
        == console_csp);
  CHECK(console_csp_with("") == console_csp);
  CHECK(std::string{console_csp}.find("media-src 'self' blob:;")
        != std::string::npos);
  // Text that could end the directive is never inserted.
  CHECK(console_csp_with("https://x; script-src *") == console_csp);
  CHECK(console_csp_with("https://x 'unsafe-inline'") == console_csp);
}
