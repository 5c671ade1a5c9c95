#pragma once

#include <cstdint>
#include <string>
#include <optional>
#include <string_view>
#include <utility>

namespace phonon::http {

/// Which endpoint a request path names.
enum class route_kind {
  not_found,   ///< no such path: 404
  bad_id,      ///< an audio path with an invalid id: 400
  healthz,     ///< /healthz
  readyz,      ///< /readyz
  metrics,     ///< /metrics
  user_list,   ///< /audio/user/{u}
  recording,   ///< /audio/user/{u}/phrase/{p}
  audio,       ///< /audio/user/{u}/phrase/{p}/{format}
  links,       ///< /audio/user/{u}/phrase/{p}/links
  console,     ///< / and /console/{file} (the web console's files)
};

/// A routed request path. `format` is the raw last segment for `audio`
/// (checked against the format table by the handler: unknown -> 400) and
/// the file name for `console` ("index.html" for "/").
struct route {
  route_kind kind = route_kind::not_found;
  int64_t user_id = 0;
  int64_t phrase_id = 0;
  std::string format;
  /// The route's name for metrics and logs ("/audio/user/:u/phrase/:p").
  const char* name = "unknown";
  /// Methods the route takes, for `Allow` on 405 ("GET, HEAD").
  const char* allow = "";
};

/// Routes the path part of a request target (query already removed).
route match_route(std::string_view path);

/// True when `method` (as Beast spells it: "GET", "HEAD", ...) is one the
/// route takes.
bool allows(const route& r, std::string_view method);

/// Splits "path?query" into its parts.
std::pair<std::string_view, std::string_view> split_target(
  std::string_view target);

/// Decodes `application/x-www-form-urlencoded` text: "%XX" and '+' -> ' '.
/// A '%' not followed by two hex digits is kept as is.
std::string url_decode(std::string_view text);

/// Returns the value of `key` in a query string ("a=1&b=2"), URL-decoded;
/// nullopt when absent.
std::optional<std::string> query_param(std::string_view query,
                                       std::string_view key);

} // namespace phonon::http
