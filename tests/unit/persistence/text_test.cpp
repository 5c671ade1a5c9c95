#include <catch2/catch.hpp>

#include "persistence/text.hpp"

using phonon::persistence::valid_utf8;

TEST_CASE("valid UTF-8 passes unchanged", "[unit][persistence]") {
  CHECK(valid_utf8("recording.m4a") == "recording.m4a");
  CHECK(valid_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x8e\xa4.m4a")
        == "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x8e\xa4.m4a");
  CHECK(valid_utf8("") == "");
}

TEST_CASE("invalid bytes become U+FFFD", "[unit][persistence]") {
  const std::string fffd = "\xef\xbf\xbd";
  CHECK(valid_utf8("caf\xe9.m4a") == "caf" + fffd + ".m4a");
  CHECK(valid_utf8("\xff\xfe") == fffd + fffd);
  CHECK(valid_utf8("\xc0\xaf") == fffd + fffd);         // overlong '/'
  CHECK(valid_utf8("\xed\xa0\x80") == fffd + fffd + fffd); // surrogate
  CHECK(valid_utf8("\xf4\x90\x80\x80") == fffd + fffd + fffd + fffd);
  CHECK(valid_utf8("ab\xe2\x82") == "ab" + fffd + fffd); // cut short
  CHECK(valid_utf8(std::string{"a\0b", 3}) == std::string{"a\0b", 3});
}

TEST_CASE("the result is cut at a character boundary", "[unit][persistence]") {
  CHECK(valid_utf8(std::string(300, 'x')).size() == 255);
  CHECK(valid_utf8("ab\xc3\xa9", 3) == "ab");
  CHECK(valid_utf8("ab\xe9", 4) == "ab");
  CHECK(valid_utf8("ab\xe9", 5) == "ab\xef\xbf\xbd");
}
