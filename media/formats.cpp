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

#include "media/transcode.hpp"

#include <fstream>

namespace phonon::media {

bool moov_before_mdat(std::string_view bytes) noexcept {
  // Walk the top-level boxes: 32-bit size + type, size 1 = 64-bit size
  // follows, size 0 = to the end of the file.
  size_t pos = 0;
  while (pos + 8 <= bytes.size()) {
    auto byte = [&](size_t i) {
      return static_cast<uint64_t>(static_cast<unsigned char>(bytes[i]));
    };
    uint64_t size = byte(pos) << 24 | byte(pos + 1) << 16 | byte(pos + 2) << 8
                    | byte(pos + 3);
    auto type = bytes.substr(pos + 4, 4);
    if (type == "moov")
      return true;
    if (type == "mdat" || type == "moof")
      return false;
    if (size == 1) {
      if (pos + 16 > bytes.size())
        return false;
      size = 0;
      for (size_t i = 8; i < 16; ++i)
        size = size << 8 | byte(pos + i);
    } else if (size == 0) {
      return false;
    }
    if (size < 8 || size > bytes.size() - pos)
      return false;
    pos += static_cast<size_t>(size);
  }
  return false;
}

bool moov_before_mdat_file(const std::string& path) noexcept {
  std::ifstream in{path, std::ios::binary};
  if (!in)
    return false;
  in.seekg(0, std::ios::end);
  auto total = static_cast<uint64_t>(in.tellg());
  // The same walk over box headers only; a file has few top-level boxes,
  // the bound stops a hostile one.
  uint64_t pos = 0;
  for (int box = 0; box < 4096 && pos + 8 <= total; ++box) {
    unsigned char h[16];
    in.seekg(static_cast<std::streamoff>(pos));
    if (!in.read(reinterpret_cast<char*>(h), 8))
      return false;
    uint64_t size = uint64_t{h[0]} << 24 | uint64_t{h[1]} << 16
                    | uint64_t{h[2]} << 8 | h[3];
    std::string_view type{reinterpret_cast<char*>(h) + 4, 4};
    if (type == "moov")
      return true;
    if (type == "mdat" || type == "moof")
      return false;
    if (size == 1) {
      if (pos + 16 > total || !in.read(reinterpret_cast<char*>(h) + 8, 8))
        return false;
      size = 0;
      for (int i = 8; i < 16; ++i)
        size = size << 8 | h[i];
    } else if (size == 0) {
      return false;
    }
    if (size < 8 || size > total - pos)
      return false;
    pos += size;
  }
  return false;
}

} // namespace phonon::media
