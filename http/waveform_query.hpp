#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace phonon::http {

/// What a GET of `.../waveform.json` or `.../waveform.dat` asks for: the
/// derived-format name of the cached file (persistence::blob_layout::
/// waveform_format), or why the query is refused (400).
struct waveform_query {
  /// Set when the query is valid.
  std::string format;
  /// Set when it is not: the message of the 400.
  std::string error;
};

/// True for the two waveform names of the last path segment.
bool is_waveform_route(std::string_view route_format) noexcept;

/// Reads the query of a waveform GET (API.md, "Waveforms"):
/// `pixels_per_second` (1..1000, default 100) or `samples_per_pixel`
/// (32..1000000), not both; `channels` = `all` (default: every channel on
/// its own) or `mono` (merged). Numbers are plain decimal digits without
/// sign or leading zero; each of the three keys may appear once. Other keys
/// (a signed link's `expires` and `sig`, cache busters) are ignored.
/// nullopt when `route_format` is not a waveform route.
std::optional<waveform_query> parse_waveform_query(
  std::string_view route_format, std::string_view query);

} // namespace phonon::http
