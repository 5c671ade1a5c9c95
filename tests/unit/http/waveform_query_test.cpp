#include "http/waveform_query.hpp"

#include <catch2/catch.hpp>

#include <string>

#include "persistence/blob_layout.hpp"

using namespace phonon::http;
using phonon::persistence::blob_layout;

namespace {

/// The format a valid query names; FAILs on a refusal.
std::string format_of(const char* route, const char* query) {
  auto q = parse_waveform_query(route, query);
  REQUIRE(q.has_value());
  INFO("query: " << query << " error: " << q->error);
  REQUIRE(q->error.empty());
  return q->format;
}

/// The refusal of an invalid query.
std::string error_of(const char* route, const char* query) {
  auto q = parse_waveform_query(route, query);
  REQUIRE(q.has_value());
  INFO("query: " << query);
  CHECK(q->format.empty());
  return q->error;
}

} // namespace

TEST_CASE("waveform queries name one cached file per zoom and channel "
          "choice",
          "[unit][http][waveform]") {
  CHECK_FALSE(parse_waveform_query("mp3", "pixels_per_second=5"));
  CHECK_FALSE(parse_waveform_query("waveform", ""));
  CHECK(format_of("waveform.json", "") == "waveform-pps100-all.json");
  CHECK(format_of("waveform.dat", "") == "waveform-pps100-all.dat");
  CHECK(format_of("waveform.json", "pixels_per_second=1")
        == "waveform-pps1-all.json");
  CHECK(format_of("waveform.json", "pixels_per_second=1000&channels=mono")
        == "waveform-pps1000-mono.json");
  CHECK(format_of("waveform.dat", "samples_per_pixel=32")
        == "waveform-spp32-all.dat");
  CHECK(format_of("waveform.dat", "samples_per_pixel=1000000&channels=all")
        == "waveform-spp1000000-all.dat");
  // A signed link's own parameters and anything else are ignored.
  CHECK(format_of("waveform.json",
                  "expires=99&sig=abc&pixels_per_second=20&x=1")
        == "waveform-pps20-all.json");
  CHECK(format_of("waveform.json", "channels=%6Dono")
        == "waveform-pps100-mono.json");
}

TEST_CASE("bad waveform queries are refused with a reason",
          "[unit][http][waveform]") {
  for (auto q : {"pixels_per_second=0", "pixels_per_second=1001",
                 "pixels_per_second=abc", "pixels_per_second=",
                 "pixels_per_second", "pixels_per_second=-5",
                 "pixels_per_second=+5", "pixels_per_second=050",
                 "pixels_per_second=1e2",
                 "pixels_per_second=99999999999999999999"})
    CHECK(error_of("waveform.json", q).find("pixels_per_second")
          != std::string::npos);
  for (auto q : {"samples_per_pixel=31", "samples_per_pixel=1000001",
                 "samples_per_pixel=x", "samples_per_pixel=2.5"})
    CHECK(error_of("waveform.dat", q).find("samples_per_pixel")
          != std::string::npos);
  CHECK(error_of("waveform.json", "pixels_per_second=10&samples_per_pixel=64")
          .find("not both")
        != std::string::npos);
  CHECK(!error_of("waveform.json", "pixels_per_second=10&pixels_per_second=10")
           .empty());
  CHECK(error_of("waveform.json", "channels=stereo").find("channels")
        != std::string::npos);
  CHECK(!error_of("waveform.json", "channels=").empty());
}

TEST_CASE("waveform names round-trip through the blob layout",
          "[unit][persistence][waveform]") {
  for (bool json : {true, false})
    for (bool per_second : {true, false})
      for (bool mono : {true, false}) {
        phonon::persistence::waveform_params p;
        p.json = json;
        p.per_second = per_second;
        p.mono = mono;
        p.value = per_second ? 1000 : 1000000;
        auto name = blob_layout::waveform_format(p);
        INFO(name);
        CHECK(blob_layout::valid_name(blob_layout::derived_name(name)));
        auto back = blob_layout::parse_waveform_format(name);
        REQUIRE(back);
        CHECK(back->json == json);
        CHECK(back->per_second == per_second);
        CHECK(back->mono == mono);
        CHECK(back->value == p.value);
        CHECK(blob_layout::format_of(blob_layout::derived_name(name))
              == name);
      }
  for (auto bad : {"mp3", "waveform", "waveform-pps100.json",
                   "waveform-pps0100-all.json", "waveform-pps-all.json",
                   "waveform-xyz1-all.json", "waveform-pps1-all.wav",
                   "waveform-pps1-both.json",
                   "waveform-pps99999999999-all.dat"})
    CHECK_FALSE(blob_layout::parse_waveform_format(bad));
}
