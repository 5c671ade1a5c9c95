#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace phonon::http {

/// Parses a user or phrase id as API.md defines it: decimal digits only,
/// 1 ... 9223372036854775807, no sign, no whitespace, no leading zero.
/// Returns nullopt for anything else.
std::optional<int64_t> parse_id(std::string_view text) noexcept;

} // namespace phonon::http
