#pragma once

#include <string_view>
#include <vector>

namespace phonon::http {

/// One file of the web console (web/console/), compiled into the binary
/// by cmake/embed_console.cmake.
struct console_asset {
  /// File name ("index.html", "console.js").
  std::string_view name;
  std::string_view content_type;
  /// A strong ETag, quotes included, from the file's SHA-256.
  std::string_view etag;
  std::string_view body;
};

/// Every console file, sorted by name.
const std::vector<console_asset>& console_assets();

} // namespace phonon::http
