#include <catch2/catch.hpp>

#include <algorithm>

#include <caf/sec.hpp>
#include <nlohmann/json.hpp>

#include "actors/errors.hpp"
#include "http/status_map.hpp"

using namespace phonon;

TEST_CASE("actor errors map to API.md's statuses", "[unit][http]") {
  CHECK(http::to_http_status(caf::error{errc::not_found}) == 404);
  CHECK(http::to_http_status(caf::error{errc::already_exists}) == 409);
  CHECK(http::to_http_status(caf::error{errc::unsupported_media}) == 415);
  CHECK(http::to_http_status(caf::error{errc::corrupt_media}) == 415);
  CHECK(http::to_http_status(caf::error{errc::not_ready}) == 409);
  CHECK(http::to_http_status(caf::error{errc::conversion_failed}) == 422);
  CHECK(http::to_http_status(caf::error{errc::overloaded}) == 503);
  CHECK(http::to_http_status(caf::error{errc::database_unavailable}) == 503);
  CHECK(http::to_http_status(caf::make_error(caf::sec::request_timeout))
        == 504);
  CHECK(http::to_http_status(caf::error{errc::storage_full}) == 507);
  CHECK(http::to_http_status(caf::error{errc::too_long}) == 413);
  CHECK(http::to_http_status(caf::error{errc::audio_out_of_range}) == 415);
  CHECK(http::to_http_status(caf::error{errc::deadline_exceeded}) == 504);
  CHECK(http::to_http_status(caf::make_error(caf::sec::runtime_error))
        == 500);
}

TEST_CASE("a GET whose recording changed under it is a 503 retry",
          "[unit][http]") {
  auto r = http::to_reply(caf::error{errc::recording_changed});
  CHECK(r.status == 503);
  CHECK(nlohmann::json::parse(r.body)["code"] == "recording_changed");
  auto retry =
    std::find_if(r.headers.begin(), r.headers.end(),
                 [](const auto& h) { return h.first == "Retry-After"; });
  REQUIRE(retry != r.headers.end());
  CHECK(retry->second == "1");
}

TEST_CASE("a full disk's path stays in the log, not in the 507",
          "[unit][http]") {
  auto r = http::to_reply(caf::error{
    errc::storage_full, std::string{"write /srv/data/tmp/x: No space"}});
  CHECK(r.status == 507);
  CHECK(r.body.find("/srv") == std::string::npos);
  CHECK(nlohmann::json::parse(r.body)["code"] == "storage_full");
}

TEST_CASE("error replies are JSON without internal detail", "[unit][http]") {
  auto r = http::to_reply(
    caf::error{errc::storage_failure, std::string{"/srv/data/x: EIO"}});
  CHECK(r.status == 500);
  CHECK(r.content_type == "application/json");
  auto j = nlohmann::json::parse(r.body);
  CHECK(j["message"].is_string());
  CHECK(r.body.find("/srv") == std::string::npos);
}

TEST_CASE("backpressure and not-ready answers carry Retry-After",
          "[unit][http]") {
  for (auto code : {errc::overloaded, errc::not_ready, errc::storage_full}) {
    auto r = http::to_reply(caf::error{code});
    bool found = false;
    for (auto& [k, v] : r.headers)
      found = found || k == "Retry-After";
    CHECK(found);
  }
}

TEST_CASE("too_long carries its limit to the client", "[unit][http]") {
  auto r = http::to_reply(
    caf::error{errc::too_long,
               std::string{"the audio is longer than the allowed 10 minutes"}});
  CHECK(r.status == 413);
  auto j = nlohmann::json::parse(r.body);
  CHECK(j["code"] == "too_long");
  CHECK(j["message"] == "the audio is longer than the allowed 10 minutes");
}

TEST_CASE("a timeout says so in its code", "[unit][http]") {
  auto r = http::to_reply(caf::make_error(caf::sec::request_timeout));
  CHECK(r.status == 504);
  CHECK(nlohmann::json::parse(r.body)["code"] == "timeout");
}
