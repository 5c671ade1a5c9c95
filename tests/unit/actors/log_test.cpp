// actors/log: how request ids and messages appear in text and JSON lines.

#include <catch2/catch.hpp>

#include <sstream>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "actors/log.hpp"
#include "tests/unit/actors/log_capture.hpp"

using namespace phonon;

TEST_CASE("request ids are written as they are, or escaped", "[unit][actors]") {
  CHECK(fmt::format("req_id={}", log::rid("test-abc-123"))
        == "req_id=test-abc-123");
  // No request: "-".
  CHECK(fmt::format("req_id={}", log::rid("")) == "req_id=-");
  // What the HTTP side would never let in (a job from another node): no
  // byte can end the field or the JSON string.
  CHECK(log::to_string(log::rid("a b")) == "a\\x20b");
  CHECK(log::to_string(log::rid("a\"b\\c")) == "a\\x22b\\x5cc");
  CHECK(log::to_string(log::rid(std::string{"a\nb\0c", 5})) == "a\\x0ab\\x00c");
  CHECK(log::to_string(log::rid("\xc3\xa9")) == "\\xc3\\xa9");
  // More than 128 bytes are cut.
  std::string longest(128, 'x');
  CHECK(log::to_string(log::rid(longest)) == longest);
  CHECK(log::to_string(log::rid(std::string(200, 'x'))) == longest + "...");
}

TEST_CASE("JSON log lines stay valid JSON whatever the message holds",
          "[unit][actors]") {
  testing::log_capture logs{true};
  std::string nasty = "quote \" backslash \\ newline \n tab \t bell \x07 "
                      "utf-8 \xc3\xa9 braces {} end";
  log::actors()->info("upload refused req_id={} error={}",
                      log::rid("test-abc-123"), nasty);
  log::http()->debug("request req_id={}", log::rid("x\"y"));
  std::istringstream in{logs.text()};
  std::string line;
  REQUIRE(std::getline(in, line));
  auto doc = nlohmann::json::parse(line, nullptr, false);
  REQUIRE(doc.is_object());
  CHECK(doc["level"] == "info");
  CHECK(doc["logger"] == "actors");
  CHECK(doc["msg"] == "upload refused req_id=test-abc-123 error=" + nasty);
  REQUIRE(std::getline(in, line));
  doc = nlohmann::json::parse(line, nullptr, false);
  REQUIRE(doc.is_object());
  CHECK(doc["msg"] == "request req_id=x\\x22y");
  CHECK_FALSE(std::getline(in, line));
}

TEST_CASE("text log lines keep the message as it is", "[unit][actors]") {
  testing::log_capture logs{false};
  log::actors()->info("job queued req_id={} job={}", log::rid("r-1"), 7);
  auto text = logs.text();
  CHECK(text.find(" info [actors] [t") != std::string::npos);
  CHECK(text.find("] job queued req_id=r-1 job=7\n") != std::string::npos);
}
