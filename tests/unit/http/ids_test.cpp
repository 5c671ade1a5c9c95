#include "http/ids.hpp"

#include <catch2/catch.hpp>

#include <string>

using phonon::http::parse_id;

TEST_CASE("parse_id accepts positive decimal ids", "[unit][http]") {
  CHECK(parse_id("1") == int64_t{1});
  CHECK(parse_id("42") == int64_t{42});
  CHECK(parse_id("10") == int64_t{10});
  CHECK(parse_id("9223372036854775807") == INT64_C(9223372036854775807));
  CHECK(parse_id("9223372036854775806") == INT64_C(9223372036854775806));
}

TEST_CASE("parse_id refuses every bad form API.md names", "[unit][http]") {
  const char* bad[] = {
    "",      "0",    "00",   "01",   "-1",  "+1", " 1",
    "1 ",    "1.0",  "1e3",  "0x10", "1/2", "a",  "12a",
    "9223372036854775808", "9223372036854775810",
    "99999999999999999999", "18446744073709551616",
    "\xd9\xa1", // ARABIC-INDIC DIGIT ONE
    "\xef\xbc\x91", // FULLWIDTH DIGIT ONE
  };
  for (auto text : bad) {
    INFO("text: '" << text << "'");
    CHECK_FALSE(parse_id(text).has_value());
  }
}

TEST_CASE("parse_id refuses embedded NUL bytes", "[unit][http]") {
  std::string text{"1\0" "2", 3};
  CHECK_FALSE(parse_id(text).has_value());
}
