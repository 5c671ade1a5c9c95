#include "http/ids.hpp"

#include <limits>

namespace phonon::http {

std::optional<int64_t> parse_id(std::string_view text) noexcept {
  // API.md "Identifiers": ASCII digits only, no leading zero, 1 ... INT64_MAX.
  if (text.empty() || text.front() == '0')
    return std::nullopt;
  constexpr auto max = std::numeric_limits<int64_t>::max();
  int64_t result = 0;
  for (auto c : text) {
    if (c < '0' || c > '9')
      return std::nullopt;
    auto digit = static_cast<int64_t>(c - '0');
    if (result > (max - digit) / 10)
      return std::nullopt;
    result = result * 10 + digit;
  }
  return result;
}

} // namespace phonon::http
