#include "media/formats.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace phonon::media;

namespace {

struct expected_row {
  format value;
  const char* name;
  const char* content_type;
};

// API.md, "Formats".
const expected_row api_table[] = {
  {format::m4a, "m4a", "audio/mp4"},
  {format::wav, "wav", "audio/wav"},
  {format::mp3, "mp3", "audio/mpeg"},
  {format::ogg, "ogg", "audio/ogg"},
  {format::opus, "opus", "audio/ogg; codecs=opus"},
  {format::flac, "flac", "audio/flac"},
  {format::webm, "webm", "audio/webm"},
};

} // namespace

TEST_CASE("format names and content types follow the API table",
          "[unit][media]") {
  for (const auto& row : api_table) {
    INFO(row.name);
    CHECK(std::string{to_string(row.value)} == row.name);
    CHECK(std::string{content_type(row.value)} == row.content_type);
    auto parsed = parse_format(row.name);
    REQUIRE(parsed.has_value());
    CHECK(*parsed == row.value);
    CHECK(parse_format(to_string(row.value)) == row.value);
  }
}

TEST_CASE("parse_format rejects names outside the table", "[unit][media]") {
  for (const char* name : {"", "M4A", "Wav", "mp4", "aac", "oga", "wav ",
                           " mp3", "ogg;", "webm/", "flac\n", "mpeg"}) {
    INFO('"' << name << '"');
    CHECK_FALSE(parse_format(name).has_value());
  }
  // A view into a larger buffer must compare only its own characters.
  std::string text = "mp3x";
  CHECK(parse_format(std::string_view{text}.substr(0, 3)) == format::mp3);
  CHECK_FALSE(parse_format(text).has_value());
}
