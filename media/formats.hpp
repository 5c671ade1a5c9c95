#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace phonon::media {

/// The formats Phonon serves (API.md, "Formats").
enum class format { m4a, wav, mp3, ogg, opus, flac, webm };

/// URL name of a format ("m4a", "wav", ...).
const char* to_string(format f);

/// Parses a URL name; nullopt for anything not in the table.
std::optional<format> parse_format(std::string_view name);

/// Content-Type of a format as served.
const char* content_type(format f);

} // namespace phonon::media
