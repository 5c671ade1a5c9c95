#include "http/cors.hpp"

namespace phonon::http {

namespace {

/// Headers a page's script may read besides the CORS-safelisted ones.
constexpr const char* exposed
  = "Content-Length, Content-Range, Accept-Ranges, ETag, Last-Modified, "
    "Location, Retry-After, X-Request-Id, Content-Disposition";

/// Request headers a page may send.
constexpr const char* allowed_request_headers
  = "Authorization, Content-Type, Range, If-None-Match, If-Modified-Since, "
    "X-Request-Id";

} // namespace

bool origin_allowed(std::string_view origin,
                    const std::vector<std::string>& allowed) {
  if (origin.empty())
    return false;
  for (auto& o : allowed)
    if (o == "*" || o == origin)
      return true;
  return false;
}

header_list cors_headers(std::string_view origin,
                         const std::vector<std::string>& allowed) {
  header_list h;
  if (allowed.empty())
    return h;
  // Answers differ by Origin whenever CORS is on, so shared caches must key
  // on it even for requests without one.
  h.emplace_back("Vary", "Origin");
  if (!origin_allowed(origin, allowed))
    return h;
  h.emplace_back("Access-Control-Allow-Origin", std::string{origin});
  h.emplace_back("Access-Control-Expose-Headers", exposed);
  return h;
}

options_answer answer_options(const route& where, std::string_view origin,
                              std::string_view request_method,
                              const std::vector<std::string>& allowed) {
  options_answer a;
  auto methods = std::string{where.allow} + ", OPTIONS";
  if (origin.empty()) {
    // Not from a browser page: say what the path takes.
    a.headers.emplace_back("Allow", methods);
    return a;
  }
  if (!origin_allowed(origin, allowed)) {
    a.status = 403;
    a.message = "this origin may not make cross-origin requests";
    if (!allowed.empty())
      a.headers.emplace_back("Vary", "Origin");
    return a;
  }
  a.headers = cors_headers(origin, allowed);
  if (request_method.empty()) {
    // An OPTIONS from a listed page that is not a preflight.
    a.headers.emplace_back("Allow", methods);
    return a;
  }
  a.headers.emplace_back("Access-Control-Allow-Methods", methods);
  a.headers.emplace_back("Access-Control-Allow-Headers",
                         allowed_request_headers);
  a.headers.emplace_back("Access-Control-Max-Age", "600");
  return a;
}

} // namespace phonon::http
