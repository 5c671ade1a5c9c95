#include "http/file_plan.hpp"

#include <cctype>
#include <cstring>
#include <ctime>

namespace phonon::http {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

/// Parses a run of digits; false on anything else or overflow.
bool parse_u64(std::string_view s, uint64_t& out) {
  if (s.empty() || s.size() > 19)
    return false;
  out = 0;
  for (char c : s) {
    if (c < '0' || c > '9')
      return false;
    out = out * 10 + static_cast<uint64_t>(c - '0');
  }
  return true;
}

/// True when the If-None-Match list contains `etag` (weak comparison).
bool etag_matches(std::string_view list, const std::string& etag) {
  list = trim(list);
  if (list == "*")
    return true;
  while (!list.empty()) {
    auto comma = list.find(',');
    auto item = trim(list.substr(0, comma));
    if (item.substr(0, 2) == "W/")
      item.remove_prefix(2);
    if (item == etag)
      return true;
    if (comma == std::string_view::npos)
      break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

enum class range_result { none, satisfiable, unsatisfiable };

/// Parses "bytes=a-b", "bytes=a-" or "bytes=-n" against `size`.
range_result parse_range(std::string_view header, uint64_t size,
                         uint64_t& first, uint64_t& last) {
  header = trim(header);
  constexpr std::string_view unit = "bytes=";
  if (header.size() < unit.size())
    return range_result::none;
  for (size_t i = 0; i < unit.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(header[i])) != unit[i])
      return range_result::none;
  auto spec = trim(header.substr(unit.size()));
  // Several ranges: answering with the whole file is allowed and simple.
  if (spec.find(',') != std::string_view::npos)
    return range_result::none;
  auto dash = spec.find('-');
  if (dash == std::string_view::npos)
    return range_result::none;
  auto a = trim(spec.substr(0, dash));
  auto b = trim(spec.substr(dash + 1));
  uint64_t x = 0;
  uint64_t y = 0;
  if (a.empty()) {
    if (!parse_u64(b, y))
      return range_result::none;
    if (y == 0 || size == 0)
      return range_result::unsatisfiable;
    first = y >= size ? 0 : size - y;
    last = size - 1;
    return range_result::satisfiable;
  }
  if (!parse_u64(a, x))
    return range_result::none;
  if (b.empty()) {
    y = size == 0 ? 0 : size - 1;
  } else if (!parse_u64(b, y) || y < x) {
    return range_result::none;
  }
  if (x >= size)
    return range_result::unsatisfiable;
  first = x;
  last = y >= size ? size - 1 : y;
  return range_result::satisfiable;
}

} // namespace

std::string http_date(int64_t unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return buf;
}

int64_t parse_http_date(std::string_view text) {
  std::tm tm{};
  std::string s{trim(text)};
  const char* end = strptime(s.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (end == nullptr || *end != '\0')
    return -1;
  return static_cast<int64_t>(timegm(&tm));
}

file_plan plan_file(const actors::file_ref& file, const file_request& req) {
  file_plan plan;
  plan.headers = {
    {"ETag", file.etag},
    {"Last-Modified", http_date(file.mtime)},
    {"Accept-Ranges", "bytes"},
    // Stored files never change under one ETag (a new upload gets a new
    // revision), but clients should revalidate so a replace shows up.
    {"Cache-Control", "private, no-cache"},
  };
  bool not_modified = false;
  if (!req.if_none_match.empty()) {
    not_modified = etag_matches(req.if_none_match, file.etag);
  } else if (!req.if_modified_since.empty()) {
    auto since = parse_http_date(req.if_modified_since);
    not_modified = since >= 0 && file.mtime <= since;
  }
  if (not_modified) {
    plan.status = 304;
    plan.send_body = false;
    return plan;
  }
  plan.headers.emplace_back("Content-Type", file.content_type);
  plan.length = file.size;
  bool use_range = !req.range.empty();
  if (use_range && !req.if_range.empty()) {
    auto ir = trim(req.if_range);
    use_range = !ir.empty() && (ir.front() == '"'
                                  ? ir == file.etag
                                  : parse_http_date(ir) >= file.mtime);
  }
  if (use_range) {
    uint64_t first = 0;
    uint64_t last = 0;
    switch (parse_range(req.range, file.size, first, last)) {
      case range_result::none:
        break;
      case range_result::unsatisfiable:
        plan.status = 416;
        plan.send_body = false;
        plan.length = 0;
        plan.headers.emplace_back("Content-Range",
                                  "bytes */" + std::to_string(file.size));
        return plan;
      case range_result::satisfiable:
        plan.status = 206;
        plan.offset = first;
        plan.length = last - first + 1;
        plan.headers.emplace_back("Content-Range",
                                  "bytes " + std::to_string(first) + "-"
                                    + std::to_string(last) + "/"
                                    + std::to_string(file.size));
        break;
    }
  }
  plan.send_body = !req.head;
  return plan;
}

} // namespace phonon::http
