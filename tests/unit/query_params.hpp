#pragma once

// Test helper: the decoded parameters of a URL's query string, for tests
// that check presigned URLs (redirect_test, presigned_url_test).

#include <map>
#include <stdexcept>
#include <string>
#include <string_view>

namespace phonon::testing {

inline int hex_value(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  throw std::invalid_argument("bad hex");
}

inline std::string percent_decode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

/// The decoded query parameters of a URL's query string.
inline std::map<std::string, std::string> params_of(const std::string& query) {
  std::map<std::string, std::string> out;
  size_t pos = 0;
  while (true) {
    auto amp = query.find('&', pos);
    auto item = query.substr(pos, amp == std::string::npos ? amp : amp - pos);
    auto eq = item.find('=');
    out[percent_decode(item.substr(0, eq))]
      = eq == std::string::npos ? "" : percent_decode(item.substr(eq + 1));
    if (amp == std::string::npos)
      return out;
    pos = amp + 1;
  }
}

} // namespace phonon::testing
