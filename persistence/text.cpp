#include "persistence/text.hpp"

#include <algorithm>

namespace phonon::persistence {

namespace {

constexpr std::string_view replacement = "\xEF\xBF\xBD"; // U+FFFD

/// Length of the well-formed UTF-8 sequence at the start of `s`, or 0.
/// Written by hand: a dozen lines against the table of RFC 3629 section 4,
/// where a library (ICU, Boost.Locale) would be a large dependency for it.
size_t sequence_length(std::string_view s) {
  auto byte = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  auto in = [&](size_t i, unsigned lo, unsigned hi) {
    return i < s.size() && byte(i) >= lo && byte(i) <= hi;
  };
  auto b0 = byte(0);
  if (b0 <= 0x7F)
    return 1;
  if (b0 >= 0xC2 && b0 <= 0xDF)
    return in(1, 0x80, 0xBF) ? 2 : 0;
  if (b0 == 0xE0)
    return in(1, 0xA0, 0xBF) && in(2, 0x80, 0xBF) ? 3 : 0;
  if ((b0 >= 0xE1 && b0 <= 0xEC) || b0 == 0xEE || b0 == 0xEF)
    return in(1, 0x80, 0xBF) && in(2, 0x80, 0xBF) ? 3 : 0;
  if (b0 == 0xED) // no UTF-16 surrogates
    return in(1, 0x80, 0x9F) && in(2, 0x80, 0xBF) ? 3 : 0;
  if (b0 == 0xF0)
    return in(1, 0x90, 0xBF) && in(2, 0x80, 0xBF) && in(3, 0x80, 0xBF) ? 4
                                                                      : 0;
  if (b0 >= 0xF1 && b0 <= 0xF3)
    return in(1, 0x80, 0xBF) && in(2, 0x80, 0xBF) && in(3, 0x80, 0xBF) ? 4
                                                                      : 0;
  if (b0 == 0xF4)
    return in(1, 0x80, 0x8F) && in(2, 0x80, 0xBF) && in(3, 0x80, 0xBF) ? 4
                                                                      : 0;
  return 0;
}

} // namespace

std::string valid_utf8(std::string_view text, size_t max_bytes) {
  std::string out;
  out.reserve(std::min(text.size(), max_bytes));
  while (!text.empty()) {
    auto n = sequence_length(text);
    auto piece = n > 0 ? text.substr(0, n) : replacement;
    if (out.size() + piece.size() > max_bytes)
      break;
    out.append(piece);
    text.remove_prefix(n > 0 ? n : 1);
  }
  return out;
}

} // namespace phonon::persistence
