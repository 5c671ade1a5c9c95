#pragma once

#include <cstdint>
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

/// Formats Unix seconds as an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT").
std::string http_date(int64_t unix_seconds);

/// Parses an IMF-fixdate; returns -1 when it is not one.
int64_t parse_http_date(std::string_view text);

} // namespace phonon::http
