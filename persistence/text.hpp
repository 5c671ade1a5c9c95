#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace phonon::persistence {

/// Returns `text` as valid UTF-8 of at most `max_bytes` bytes: every byte
/// that does not start or continue a well-formed sequence (RFC 3629: no
/// overlongs, no surrogates, nothing above U+10FFFF) becomes U+FFFD, and
/// the result is cut at a character boundary. Client-supplied names (the
/// multipart filename) go through this before they are stored, so that
/// every row can be written as JSON. Thread-safe (pure).
std::string valid_utf8(std::string_view text, size_t max_bytes = 255);

} // namespace phonon::persistence
