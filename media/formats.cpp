#include "media/formats.hpp"

#include <array>

namespace phonon::media {

namespace {

struct format_row {
  format value;
  const char* name;
  const char* content_type;
};

constexpr std::array<format_row, 7> format_table{{
  {format::m4a, "m4a", "audio/mp4"},
  {format::wav, "wav", "audio/wav"},
  {format::mp3, "mp3", "audio/mpeg"},
  {format::ogg, "ogg", "audio/ogg"},
  {format::opus, "opus", "audio/ogg; codecs=opus"},
  {format::flac, "flac", "audio/flac"},
  {format::webm, "webm", "audio/webm"},
}};

const format_row& row(format f) {
  for (const auto& r : format_table)
    if (r.value == f)
      return r;
  // Unreachable for valid enumerators; fall back to the first row rather
  // than reading out of bounds for a value cast from garbage.
  return format_table[0];
}

} // namespace

const char* to_string(format f) {
  return row(f).name;
}

std::optional<format> parse_format(std::string_view name) {
  for (const auto& r : format_table)
    if (name == r.name)
      return r.value;
  return std::nullopt;
}

const char* content_type(format f) {
  return row(f).content_type;
}

} // namespace phonon::media
