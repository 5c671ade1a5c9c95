#pragma once

// Cross-origin requests (API.md "Cross-origin requests"): which headers an
// answer carries for a request's Origin, and the answer to a preflight.
// Pure functions of the request's fields and server.cors_origins.

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http/router.hpp"

namespace phonon::http {

using header_list = std::vector<std::pair<std::string, std::string>>;

/// The CORS headers of an ordinary answer to a request from `origin`
/// ("" when the request had no Origin field). Empty when CORS is off.
header_list cors_headers(std::string_view origin,
                         const std::vector<std::string>& allowed);

/// The answer to an OPTIONS request on a known path.
struct options_answer {
  unsigned status = 204;
  header_list headers;
  /// For 403: the JSON error's message.
  std::string message;
};

/// Answers OPTIONS on `where`: from an origin that is not listed 403; a
/// preflight (Access-Control-Request-Method present) from a listed origin
/// 204 with the route's methods; an OPTIONS without Origin 204 with
/// `Allow`.
options_answer answer_options(const route& where, std::string_view origin,
                              std::string_view request_method,
                              const std::vector<std::string>& allowed);

/// True when `origin` may read answers: listed exactly, or the list is
/// ["*"].
bool origin_allowed(std::string_view origin,
                    const std::vector<std::string>& allowed);

} // namespace phonon::http
