#include "tests/unit/query_params.hpp"
#include "http/redirect.hpp"

#include <catch2/catch.hpp>

#include <map>
#include <string>

#include "persistence/s3/presigned_url.hpp"
#include "persistence/s3/sigv4.hpp"

// The storage.s3.redirect decision and its 302 (redirect.hpp): which GETs
// become redirects, and the Location built from the settings, its
// signature recomputed with the signer's step functions.

using namespace phonon::http;
namespace s3 = phonon::persistence::s3;

namespace {

redirect_policy policy_on() {
  redirect_policy p;
  p.enabled = true;
  p.min_bytes = 1000;
  p.ttl = std::chrono::seconds{120};
  p.local_base = "/var/lib/phonon/audio";
  p.bucket.endpoint = "https://media.example.com";
  p.bucket.region = "eu-west-3";
  p.bucket.bucket = "voices";
  p.bucket.prefix = "phonon";
  p.bucket.access_key = "AKIDREDIRECT";
  p.bucket.secret_key = "redirect-secret";
  p.bucket.path_style = true;
  return p;
}

phonon::actors::file_ref file_of(uint64_t size, std::string name = "cache/mp3",
                                  std::string type = "audio/mpeg") {
  return {"/var/lib/phonon/audio/7/12/3/" + name, size, 1700000000,
          "\"3-mp3\"", type};
}

bool decide(const redirect_policy& p, const phonon::actors::file_ref& f,
            const std::string& format, const file_request& req) {
  return should_redirect(p, f, format, req, plan_file(f, req));
}

std::string header(const reply& r, const std::string& name) {
  for (auto& [k, v] : r.headers)
    if (k == name)
      return v;
  return {};
}

using phonon::testing::params_of;
using phonon::testing::percent_decode;

} // namespace

TEST_CASE("redirect decision: large audio GETs, full or ranged, only",
          "[unit][http][redirect]") {
  auto p = policy_on();
  file_request get;
  SECTION("at and above the threshold: redirected") {
    CHECK(decide(p, file_of(1000), "mp3", get));
    CHECK(decide(p, file_of(5000), "mp3", get));
    CHECK(decide(p, file_of(5000, "original", "audio/mp4"), "m4a", get));
    CHECK(decide(p, file_of(5000, "master.wav", "audio/wav"), "wav", get));
    for (auto fmt : {"ogg", "opus", "flac", "webm"})
      CHECK(decide(p, file_of(5000, std::string{"cache/"} + fmt), fmt, get));
  }
  SECTION("below the threshold: served by the node") {
    CHECK_FALSE(decide(p, file_of(999), "mp3", get));
  }
  SECTION("redirects off: never") {
    p.enabled = false;
    CHECK_FALSE(decide(p, file_of(1 << 20), "mp3", get));
  }
  SECTION("HEAD: never") {
    file_request head;
    head.head = true;
    CHECK_FALSE(decide(p, file_of(5000), "mp3", head));
  }
  SECTION("a conditional GET that matches is the node's own 304") {
    file_request cond;
    cond.if_none_match = "\"3-mp3\"";
    CHECK(plan_file(file_of(5000), cond).status == 304);
    CHECK_FALSE(decide(p, file_of(5000), "mp3", cond));
    cond.if_none_match = "\"other\"";
    CHECK(decide(p, file_of(5000), "mp3", cond));
    file_request since;
    since.if_modified_since = "Tue, 14 Nov 2023 22:13:20 GMT";
    CHECK_FALSE(decide(p, file_of(5000), "mp3", since));
  }
  SECTION("ranged GETs: redirected; an unsatisfiable range is the node's "
          "416") {
    file_request range;
    range.range = "bytes=100-199";
    CHECK(plan_file(file_of(5000), range).status == 206);
    CHECK(decide(p, file_of(5000), "mp3", range));
    range.range = "bytes=9000-";
    CHECK(plan_file(file_of(5000), range).status == 416);
    CHECK_FALSE(decide(p, file_of(5000), "mp3", range));
  }
  SECTION("waveforms: never") {
    auto wave = file_of(50000, "cache/waveform-pps100-all.json",
                        "application/json");
    CHECK_FALSE(decide(p, wave, "waveform.json", get));
    CHECK_FALSE(decide(p, file_of(50000, "cache/waveform-pps100-all.dat",
                                  "application/octet-stream"),
                       "waveform.dat", get));
    // Nor is a waveform's file ever an object redirect_reply names.
    CHECK_FALSE(redirect_reply(p, wave, "", 0).has_value());
  }
}

TEST_CASE("object_key_of: the object a local copy holds, nothing else",
          "[unit][http][redirect]") {
  const std::string base = "/var/lib/phonon/audio";
  CHECK(object_key_of(base, base + "/7/12/3/cache/mp3") == "7/12/3/cache/mp3");
  CHECK(object_key_of(base + "/", base + "/7/12/3/original")
        == "7/12/3/original");
  CHECK(object_key_of("./data/audio", "data/audio/7/12/3/master.wav")
        == "7/12/3/master.wav");
  CHECK_FALSE(object_key_of(base, "/elsewhere/7/12/3/original"));
  CHECK_FALSE(object_key_of(base, base + "/../7/12/3/original"));
  CHECK_FALSE(object_key_of(base, base + "/tmp/upload-1"));
  CHECK_FALSE(object_key_of(base, base + "/7/12/3/cache/waveform-pps100-all.json"));
  CHECK_FALSE(object_key_of("", base + "/7/12/3/original"));
}

TEST_CASE("the 302: Location a presigned GET of the object from the "
          "settings, no-store, no body",
          "[unit][http][redirect]") {
  auto p = policy_on();
  const std::time_t now = 1764720000; // 2025-12-03T00:00:00Z
  auto r = redirect_reply(p, file_of(5000), "inline; filename=\"7-12.mp3\"",
                          now);
  REQUIRE(r.has_value());
  CHECK(r->status == 302);
  CHECK(r->body.empty());
  CHECK(r->content_type.empty());
  CHECK_FALSE(r->file.has_value());
  CHECK(header(*r, "Cache-Control") == "private, no-store");
  auto loc = header(*r, "Location");
  auto parts = s3::split_url(loc);
  CHECK(parts.scheme == "https");
  CHECK(parts.host == "media.example.com");
  CHECK(parts.path == "/voices/phonon/7/12/3/cache/mp3");
  auto q = params_of(parts.query);
  CHECK(q.at("X-Amz-Expires") == "120");
  CHECK(q.at("X-Amz-Date") == "20251203T000000Z");
  CHECK(q.at("X-Amz-Credential")
        == "AKIDREDIRECT/20251203/eu-west-3/s3/aws4_request");
  CHECK(q.at("response-content-type") == "audio/mpeg");
  CHECK(q.at("response-content-disposition")
        == "inline; filename=\"7-12.mp3\"");
  // The signature, recomputed step by step with the signer's functions.
  s3::query_list unsigned_q;
  for (auto& [k, v] : q)
    if (k != "X-Amz-Signature")
      unsigned_q.push_back({k, v});
  auto creq = s3::canonical_request(
    "GET", s3::canonical_uri(parts.path, s3::path_rule::s3),
    s3::canonical_query_string(unsigned_q),
    s3::canonical_headers({{"host", "media.example.com"}}),
    s3::unsigned_payload);
  auto sts = s3::string_to_sign(
    "20251203T000000Z",
    s3::credential_scope("20251203", "eu-west-3", "s3"), creq);
  CHECK(q.at("X-Amz-Signature")
        == s3::signature(s3::signing_key("redirect-secret", "20251203",
                                         "eu-west-3", "s3"),
                         sts));
  // No disposition: no override for it.
  auto bare = redirect_reply(p, file_of(5000), "", now);
  REQUIRE(bare.has_value());
  CHECK(header(*bare, "Location").find("response-content-disposition")
        == std::string::npos);
  // The console's media origin follows the public endpoint.
  CHECK(redirect_origin(p) == "https://media.example.com");
  p.enabled = false;
  CHECK(redirect_origin(p).empty());
}
