// The hand-written heads of file answers (http/wire.hpp) against Beast's
// serializer: for the same status, version, keep-alive and fields, the
// bytes must be the same, so replacing the serializer changes nothing a
// client sees.

#include <catch2/catch.hpp>

#include <string>
#include <utility>
#include <vector>

#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/http.hpp>

#include "http/file_plan.hpp"
#include "http/response_cache.hpp"
#include "http/wire.hpp"

using namespace phonon;
using namespace phonon::http;
namespace bhttp = boost::beast::http;

namespace {

using field_list = std::vector<std::pair<std::string, std::string>>;

/// The head Beast writes for an empty-bodied response with these fields
/// and Content-Length `length` (none when negative).
std::string beast_head(unsigned version, unsigned status, bool keep_alive,
                       const field_list& fields, long long length) {
  bhttp::response<bhttp::empty_body> res;
  res.version(version);
  res.result(status);
  for (auto& [k, v] : fields)
    res.set(k, v);
  if (length >= 0)
    res.content_length(static_cast<unsigned long long>(length));
  res.keep_alive(keep_alive);
  bhttp::response_serializer<bhttp::empty_body> sr{res};
  std::string out;
  boost::beast::error_code ec;
  sr.split(true);
  while (!sr.is_header_done()) {
    sr.next(ec, [&](boost::beast::error_code&, const auto& buffers) {
      out += boost::beast::buffers_to_string(buffers);
      sr.consume(boost::beast::buffer_bytes(buffers));
    });
    REQUIRE(!ec);
  }
  return out;
}

/// The same head from wire.hpp, fields in the same order.
std::string wire_head(unsigned version, unsigned status, bool keep_alive,
                      const field_list& fields, long long length) {
  std::string out;
  append_status_line(out, version, status);
  for (auto& [k, v] : fields)
    append_field(out, k, v);
  if (length >= 0)
    append_field(out, "Content-Length", std::to_string(length));
  append_connection(out, version, keep_alive);
  out += "\r\n";
  return out;
}

actors::file_ref phrase() {
  actors::file_ref f;
  f.path = "/data/1/2/3/original";
  f.size = 27309;
  f.mtime = 1764700000;
  f.etag = "\"3-original\"";
  f.content_type = "audio/mp4";
  return f;
}

} // namespace

TEST_CASE("wire: heads equal Beast's for every status, version and "
          "keep-alive", "[unit][http][wire]") {
  field_list fields{{"Server", "phonon"},
                    {"Date", "Thu, 03 Dec 2026 09:00:00 GMT"},
                    {"X-Request-Id", "abc-123"},
                    {"Content-Type", "audio/mp4"}};
  for (unsigned version : {10u, 11u})
    for (bool keep_alive : {true, false})
      for (unsigned status : {200u, 206u, 304u, 404u, 416u}) {
        CAPTURE(version, keep_alive, status);
        long long length = status == 304 ? -1 : 27309;
        // Beast puts Connection where keep_alive() was called: last here,
        // after Content-Length, as wire_head writes it.
        CHECK(wire_head(version, status, keep_alive, fields, length)
              == beast_head(version, status, keep_alive, fields, length));
      }
}

TEST_CASE("wire: file fields are the plan's fields and the window's length",
          "[unit][http][wire]") {
  auto f = phrase();
  file_request ranged;
  ranged.range = "bytes=10-19";
  auto plan = plan_file(f, ranged);
  REQUIRE(plan.status == 206);
  auto fields = file_fields(plan);
  CHECK(fields.find("Content-Range: bytes 10-19/27309\r\n")
        != std::string::npos);
  CHECK(fields.find("Content-Length: 10\r\n") != std::string::npos);
  CHECK(fields.find("ETag: \"3-original\"\r\n") != std::string::npos);

  file_request cond;
  cond.if_none_match = "\"3-original\"";
  auto not_modified = plan_file(f, cond);
  REQUIRE(not_modified.status == 304);
  CHECK(file_fields(not_modified).find("Content-Length")
        == std::string::npos);
}

TEST_CASE("a cached file keeps the head fields of a plain GET ready",
          "[unit][http][wire]") {
  auto f = phrase();
  response_cache cache{1 << 20, 1 << 20};
  auto entry = cache.insert(f, std::string(f.size, 'x'));
  REQUIRE(entry);
  CHECK(entry->plain_fields == file_fields(plan_file(f, file_request{})));
  CHECK(entry->plain_fields.find("Content-Length: 27309\r\n")
        != std::string::npos);
  // The same for an entry made outside the cache (a file whose mtime
  // changed is served once, uncached).
  CHECK(make_cached_file(f, std::string(f.size, 'x'))->plain_fields
        == entry->plain_fields);
}
