// HTTP behaviour of the real `phonon` binary: routing, connections and the
// conditional/ranged GET of stored audio.

#include <catch2/catch.hpp>

#include <string>

#include "tests/integration/support.hpp"

using namespace phonon::integration;

namespace {

bool starts_with(const std::string& text, std::string_view prefix) {
  return text.compare(0, prefix.size(), prefix) == 0;
}

bool is_json_error(const http_response& res) {
  auto doc = res.json();
  return starts_with(res.header("Content-Type"), "application/json")
         && doc.is_object() && doc.contains("message")
         && doc["message"].is_string();
}

std::string raw_get(const std::string& target, const std::string& version
                                               = "HTTP/1.1") {
  return "GET " + target + " " + version + "\r\nHost: 127.0.0.1\r\n\r\n";
}

} // namespace

TEST_CASE("wrong methods are 405 with Allow, unknown paths 404",
          "[integration]") {
  server_process srv;
  srv.start();
  auto post = http_request(srv.port(), "POST", "/healthz", "{}",
                           {{"Content-Type", "application/json"}});
  CHECK(post.status == 405);
  CHECK(is_json_error(post));
  REQUIRE(post.has("Allow"));
  CHECK(post.header("Allow").find("GET") != std::string::npos);
  CHECK(post.header("Allow").find("POST") == std::string::npos);
  auto post_audio = http_request(srv.port(), "POST",
                                 "/audio/user/1/phrase/1/m4a", "x",
                                 {{"Content-Type", "audio/mp4"}});
  CHECK(post_audio.status == 405);
  CHECK(is_json_error(post_audio));
  CHECK(post_audio.has("Allow"));
  auto unknown = http_get(srv.port(), "/no/such/path");
  CHECK(unknown.status == 404);
  CHECK(is_json_error(unknown));
}

TEST_CASE("connections: keep-alive, pipelining, HTTP/1.0, big headers",
          "[integration]") {
  server_process srv;
  srv.start();
  auto port = srv.port();
  SECTION("two requests on one keep-alive connection are both answered") {
    http_connection conn{port};
    auto first = conn.request("GET", "/healthz");
    CHECK(first.status == 200);
    CHECK(first.keep_alive);
    auto second = conn.request("GET", "/audio/user/1/phrase/1");
    CHECK(second.status == 404);
    CHECK(is_json_error(second));
  }
  SECTION("pipelined requests written at once are answered in order") {
    http_connection conn{port};
    conn.send_raw(raw_get("/healthz") + raw_get("/no/such/path")
                  + raw_get("/healthz"));
    auto a = conn.read_response();
    auto b = conn.read_response();
    auto c = conn.read_response();
    CHECK(a.status == 200);
    CHECK(a.json() == nlohmann::json{{"status", "ok"}});
    CHECK(b.status == 404);
    CHECK(c.status == 200);
    CHECK(c.json() == nlohmann::json{{"status", "ok"}});
  }
  SECTION("an HTTP/1.0 request is answered, then the server closes") {
    http_connection conn{port};
    conn.send_raw("GET /healthz HTTP/1.0\r\n\r\n");
    auto res = conn.read_response();
    CHECK(res.status == 200);
    CHECK(res.json() == nlohmann::json{{"status", "ok"}});
    CHECK_FALSE(res.keep_alive);
    CHECK(conn.wait_closed_by_peer());
  }
  SECTION("a 20 KiB header is refused and new connections still work") {
    http_connection conn{port};
    auto res = conn.request("GET", "/healthz", {},
                            {{"X-Padding", std::string(20 * 1024, 'a')}});
    CHECK((res.status == 431 || res.status == 400));
    CHECK(is_json_error(res));
    CHECK(conn.wait_closed_by_peer());
  }
  auto after = http_get(port, "/healthz");
  CHECK(after.status == 200);
  CHECK(after.json() == nlohmann::json{{"status", "ok"}});
}

TEST_CASE("stored m4a supports validators, ranges, 304 and HEAD",
          "[integration]") {
  const auto& fx = audio_fixtures();
  server_process srv;
  srv.start();
  auto port = srv.port();
  const std::string target = "/audio/user/11/phrase/3";
  REQUIRE(upload_file(port, target, read_file(fx.m4a)).status == 201);
  auto meta = wait_until_settled(port, target);
  REQUIRE(meta.is_object());
  REQUIRE(meta.value("status", "") == "ready");
  const auto url = target + "/m4a";
  auto full = http_get(port, url);
  REQUIRE(full.status == 200);
  const auto size = full.body.size();
  REQUIRE(size > 200);
  CHECK(full.header("Content-Length") == std::to_string(size));
  CHECK(full.header("Content-Type") == "audio/mp4");
  CHECK(full.header("Accept-Ranges") == "bytes");
  const auto etag = full.header("ETag");
  const auto last_modified = full.header("Last-Modified");
  REQUIRE_FALSE(etag.empty());
  REQUIRE_FALSE(last_modified.empty());
  const auto total = "/" + std::to_string(size);
  SECTION("bytes=0-99 is the first 100 bytes") {
    auto res = http_get(port, url, {{"Range", "bytes=0-99"}});
    CHECK(res.status == 206);
    CHECK(res.header("Content-Range") == "bytes 0-99" + total);
    CHECK(res.header("Content-Length") == "100");
    CHECK(res.body == full.body.substr(0, 100));
  }
  SECTION("bytes=-100 is the last 100 bytes") {
    auto res = http_get(port, url, {{"Range", "bytes=-100"}});
    CHECK(res.status == 206);
    CHECK(res.header("Content-Range")
          == "bytes " + std::to_string(size - 100) + "-"
               + std::to_string(size - 1) + total);
    CHECK(res.body == full.body.substr(size - 100));
  }
  SECTION("bytes=100- is everything from byte 100") {
    auto res = http_get(port, url, {{"Range", "bytes=100-"}});
    CHECK(res.status == 206);
    CHECK(res.header("Content-Range")
          == "bytes 100-" + std::to_string(size - 1) + total);
    CHECK(res.body == full.body.substr(100));
  }
  SECTION("a range past the end is 416") {
    auto res = http_get(port, url, {{"Range", "bytes=999999999-"}});
    CHECK(res.status == 416);
    CHECK(res.header("Content-Range") == "bytes *" + total);
    CHECK(res.body.size() < size);
  }
  SECTION("If-None-Match with the ETag is 304 without a body") {
    auto res = http_get(port, url, {{"If-None-Match", etag}});
    CHECK(res.status == 304);
    CHECK(res.body.empty());
    CHECK(res.header("ETag") == etag);
    auto other = http_get(port, url, {{"If-None-Match", "\"other\""}});
    CHECK(other.status == 200);
    CHECK(other.body == full.body);
  }
  SECTION("If-Modified-Since with Last-Modified is 304") {
    auto res = http_get(port, url, {{"If-Modified-Since", last_modified}});
    CHECK(res.status == 304);
    CHECK(res.body.empty());
  }
  SECTION("HEAD has the same headers and no body") {
    http_connection conn{port};
    auto res = conn.request("HEAD", url);
    CHECK(res.status == 200);
    CHECK(res.body.empty());
    for (auto name : {"Content-Length", "Content-Type", "ETag",
                      "Last-Modified", "Accept-Ranges", "Cache-Control"}) {
      CAPTURE(name);
      CHECK(res.header(name) == full.header(name));
    }
    // Nothing was sent after the head: the next answer parses cleanly.
    auto next = conn.request("GET", "/healthz");
    CHECK(next.status == 200);
  }
}
