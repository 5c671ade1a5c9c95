#pragma once

#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "actors/messages.hpp"

namespace phonon::http {

/// How to answer a GET or HEAD of a stored file: status, the byte window to
/// send and the headers. A pure function of the file's facts and the
/// request's Range and conditional headers, so it is tested on its own.
struct file_plan {
  unsigned status = 200;
  uint64_t offset = 0;
  uint64_t length = 0;
  /// False for HEAD, 304 and 416.
  bool send_body = true;
  std::vector<std::pair<std::string, std::string>> headers;
};

/// The request headers that matter for serving a file.
struct file_request {
  bool head = false;
  std::string_view range;
  std::string_view if_none_match;
  std::string_view if_modified_since;
  std::string_view if_range;
};

/// Plans the answer (RFC 9110: a single byte range, suffix and open ranges;
/// multiple ranges are answered with the whole file; If-None-Match wins over
/// If-Modified-Since; If-Range with a different ETag ignores Range).
file_plan plan_file(const actors::file_ref& file, const file_request& req);

/// The Content-Disposition of a stored file's answer:
/// `inline; filename="<user>-<phrase>.<format>"` (the route's ids and
/// format are checked digits and a known name, so nothing needs quoting).
std::string inline_disposition(int64_t user, int64_t phrase,
                               std::string_view format);

/// Appends inline_disposition(user, phrase, format) to `out` (the hot
/// path of file answers: no string of its own).
void append_inline_disposition(std::string& out, int64_t user,
                               int64_t phrase, std::string_view format);

/// True when an If-None-Match list names `etag` (weak comparison; "*"
/// matches everything).
bool etag_matches(std::string_view list, const std::string& etag);

/// Formats Unix seconds as an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"),
/// the form of Date and Last-Modified. Written by hand, so the process
/// locale cannot change the day and month names. Times before year 1 or after
/// 9999 are written as the nearest end of that range. Thread-safe.
std::string http_date(std::time_t unix_seconds);

/// Parses an HTTP-date in any of the three forms RFC 9110 section 5.6.7
/// allows recipients: IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"), the
/// obsolete RFC 850 form ("Sunday, 06-Nov-94 08:49:37 GMT") and asctime
/// ("Sun Nov  6 08:49:37 1994"). Exactly the grammar, case-sensitive as the
/// RFC says (surrounding blanks aside); std::nullopt for anything else,
/// including impossible dates (31 Feb), so the caller ignores the header.
/// A two-digit RFC 850 year that would put the date more than 50 years
/// after `now` means the most recent past year with those digits.
std::optional<int64_t> parse_http_date(std::string_view text,
                                       std::time_t now);

/// parse_http_date against the current time.
std::optional<int64_t> parse_http_date(std::string_view text);

} // namespace phonon::http
