// fuzz-sources: http/file_plan.cpp

// The Range / conditional planner (http/file_plan.*): for any file facts and
// any Range, If-None-Match, If-Modified-Since and If-Range text, plan_file()
// must not crash and must return a plan the server can send as is: a status
// of 200/206/304/416, a byte window inside the file, a Content-Range that
// names that window, and no body for HEAD, 304 or 416. parse_http_date()
// must not crash on any text and must read back what http_date() writes.
//
// Input layout: the four header values as FuzzedDataProvider random-length
// strings (a backslash escapes, "\\" ends one), then the file facts taken
// from the end of the input.

#include <cinttypes>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <fuzzer/FuzzedDataProvider.h>

#include "http/file_plan.hpp"

namespace {

using phonon::http::file_plan;
using phonon::http::file_request;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "file_plan: %s\n", what);
  abort();
}

const std::string* header(const file_plan& plan, const char* name) {
  for (auto& [k, v] : plan.headers)
    if (k == name)
      return &v;
  return nullptr;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider fdp{data, size};
  auto range = fdp.ConsumeRandomLengthString(256);
  auto if_none_match = fdp.ConsumeRandomLengthString(256);
  auto if_modified_since = fdp.ConsumeRandomLengthString(256);
  auto if_range = fdp.ConsumeRandomLengthString(256);

  phonon::actors::file_ref file;
  file.path = "/data/x";
  // Small sizes make edge cases (0, 1, ranges past the end) likely; now and
  // then any 64-bit size.
  auto size_kind = fdp.ConsumeIntegral<uint8_t>();
  file.size = size_kind < 224 ? fdp.ConsumeIntegralInRange<uint64_t>(0, 2000)
                              : fdp.ConsumeIntegral<uint64_t>();
  file.mtime = fdp.ConsumeIntegral<int64_t>();
  file.etag = (size_kind & 1) != 0 ? "\"abc\"" : "W/\"r1-m4a\"";
  file.content_type = "audio/mp4";
  bool head = fdp.ConsumeBool();

  file_request req;
  req.head = head;
  req.range = range;
  req.if_none_match = if_none_match;
  req.if_modified_since = if_modified_since;
  req.if_range = if_range;
  auto plan = phonon::http::plan_file(file, req);

  if (header(plan, "ETag") == nullptr || *header(plan, "ETag") != file.etag)
    fail("no ETag");
  auto content_range = header(plan, "Content-Range");
  switch (plan.status) {
    case 200:
      if (plan.offset != 0 || plan.length != file.size)
        fail("200 with a partial window");
      if (content_range != nullptr)
        fail("200 with Content-Range");
      break;
    case 206: {
      if (plan.length == 0 || plan.offset >= file.size
          || plan.length > file.size - plan.offset)
        fail("206 window outside the file");
      auto expected = "bytes " + std::to_string(plan.offset) + "-"
                      + std::to_string(plan.offset + plan.length - 1) + "/"
                      + std::to_string(file.size);
      if (content_range == nullptr || *content_range != expected)
        fail("206 Content-Range does not match the window");
      if (range.empty())
        fail("206 without a Range header");
      break;
    }
    case 304:
      if (plan.send_body || content_range != nullptr)
        fail("304 with a body or Content-Range");
      if (if_none_match.empty() && if_modified_since.empty())
        fail("304 without a condition");
      break;
    case 416:
      if (plan.send_body || plan.length != 0)
        fail("416 with a body");
      if (content_range == nullptr
          || *content_range != "bytes */" + std::to_string(file.size))
        fail("416 Content-Range");
      break;
    default:
      fail("unexpected status");
  }
  if (head && plan.send_body)
    fail("HEAD with a body");
  if (!head && (plan.status == 200 || plan.status == 206) && !plan.send_body)
    fail("GET without a body");

  // Dates: any text parses or is refused; a date we write reads back
  // (years 1970..9999, what an IMF-fixdate can say).
  phonon::http::parse_http_date(range);
  if (file.mtime >= 0 && file.mtime <= INT64_C(253402300799)) {
    auto text = phonon::http::http_date(file.mtime);
    if (phonon::http::parse_http_date(text) != file.mtime) {
      std::fprintf(stderr, "%" PRId64 " -> %s\n", file.mtime, text.c_str());
      fail("http_date does not read back");
    }
  }
  return 0;
}
