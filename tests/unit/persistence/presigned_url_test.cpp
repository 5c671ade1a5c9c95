#include <catch2/catch.hpp>

#include <chrono>
#include <map>
#include <stdexcept>
#include <string>

#include "tests/unit/query_params.hpp"
#include "persistence/s3/presigned_url.hpp"

// presigned_get_url (storage.s3.redirect): the URL is checked against AWS's
// published presigned example and, for other settings, by recomputing its
// signature with the signer's own step functions (sigv4.hpp), never against
// a string this code produced.

using namespace phonon::persistence::s3;

namespace {

using phonon::testing::params_of;
using phonon::testing::percent_decode;

/// The signature the signer's steps give for a presigned GET as `parts`
/// names it (the query minus X-Amz-Signature, the host header only).
std::string expected_signature(const url_parts& parts,
                               const std::string& secret,
                               const std::string& region) {
  auto params = params_of(parts.query);
  query_list q;
  for (auto& [k, v] : params)
    if (k != "X-Amz-Signature")
      q.push_back({k, v});
  auto date = params.at("X-Amz-Date");
  auto date8 = date.substr(0, 8);
  auto creq = canonical_request(
    "GET", canonical_uri(parts.path, path_rule::s3), canonical_query_string(q),
    canonical_headers({{"host", parts.host}}), unsigned_payload);
  auto sts = string_to_sign(date, credential_scope(date8, region, "s3"),
                            creq);
  return signature(signing_key(secret, date8, region, "s3"), sts);
}

settings redirect_bucket() {
  settings s;
  s.endpoint = "https://media.example.com:8443/";
  s.region = "eu-west-3";
  s.bucket = "voices";
  s.prefix = "phonon";
  s.access_key = "AKIDREDIRECT";
  s.secret_key = "redirect-secret/with+chars";
  s.path_style = true;
  return s;
}

} // namespace

TEST_CASE("presigned_get_url reproduces AWS's presigned URL example",
          "[unit][persistence][s3][redirect]") {
  // sigv4-query-string-auth.html: GET examplebucket/test.txt, virtual-host
  // addressing, 24 hours from 20130524T000000Z.
  settings s;
  s.endpoint = "https://s3.amazonaws.com";
  s.region = "us-east-1";
  s.bucket = "examplebucket";
  s.access_key = "AKIAIOSFODNN7EXAMPLE";
  s.secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
  s.path_style = false;
  auto url = presigned_get_url(s, "test.txt", {}, std::chrono::hours{24},
                               1369353600);
  CHECK(url
        == "https://examplebucket.s3.amazonaws.com/test.txt?"
           "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential="
           "AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
           "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400"
           "&X-Amz-SignedHeaders=host&X-Amz-Signature="
           "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
  CHECK(presigned_origin(s) == "https://examplebucket.s3.amazonaws.com");
}

TEST_CASE("presigned_get_url names the public endpoint, the prefix, the "
          "ttl and the response overrides, and its signature verifies",
          "[unit][persistence][s3][redirect]") {
  auto s = redirect_bucket();
  const std::time_t now = 1764720000; // 2025-12-03T00:00:00Z
  auto url = presigned_get_url(
    s, "7/12/3/cache/mp3",
    {{"response-content-type", "audio/mpeg"},
     {"response-content-disposition", "inline; filename=\"7-12.mp3\""}},
    std::chrono::seconds{300}, now);
  auto parts = split_url(url);
  CHECK(parts.scheme == "https");
  CHECK(parts.host == "media.example.com:8443");
  CHECK(parts.path == "/voices/phonon/7/12/3/cache/mp3");
  auto params = params_of(parts.query);
  CHECK(params.at("X-Amz-Expires") == "300");
  CHECK(params.at("X-Amz-Date") == amz_date(now));
  CHECK(params.at("X-Amz-Credential")
        == "AKIDREDIRECT/20251203/eu-west-3/s3/aws4_request");
  CHECK(params.at("X-Amz-SignedHeaders") == "host");
  CHECK(params.at("response-content-type") == "audio/mpeg");
  CHECK(params.at("response-content-disposition")
        == "inline; filename=\"7-12.mp3\"");
  CHECK(params.at("X-Amz-Signature")
        == expected_signature(parts, s.secret_key, s.region));
  // The secret itself is nowhere in the URL.
  CHECK(url.find("redirect-secret") == std::string::npos);
  CHECK(presigned_origin(s) == "https://media.example.com:8443");

  SECTION("signed for another host, it does not verify for this one") {
    auto other = parts;
    other.host = "internal-minio:9000";
    CHECK(params.at("X-Amz-Signature")
          != expected_signature(other, s.secret_key, s.region));
  }
  SECTION("virtual-host addressing puts the bucket in the host") {
    s.path_style = false;
    auto v = split_url(presigned_get_url(s, "7/12/3/original", {},
                                         std::chrono::seconds{60}, now));
    CHECK(v.host == "voices.media.example.com:8443");
    CHECK(v.path == "/phonon/7/12/3/original");
    CHECK(params_of(v.query).at("X-Amz-Signature")
          == expected_signature(v, s.secret_key, s.region));
    CHECK(presigned_origin(s) == "https://voices.media.example.com:8443");
  }
}

TEST_CASE("presigned_get_url refuses what cannot be a URL",
          "[unit][persistence][s3][redirect]") {
  auto s = redirect_bucket();
  CHECK_THROWS_AS(presigned_get_url(s, "", {}, std::chrono::seconds{60}, 0),
                  std::invalid_argument);
  CHECK_THROWS_AS(
    presigned_get_url(s, "1/2/3/original", {}, std::chrono::seconds{0}, 0),
    std::invalid_argument);
  CHECK_THROWS_AS(presigned_get_url(s, "1/2/3/original", {},
                                    std::chrono::seconds{604801}, 0),
                  std::invalid_argument);
  s.endpoint = "ftp://x";
  CHECK_THROWS_AS(
    presigned_get_url(s, "1/2/3/original", {}, std::chrono::seconds{60}, 0),
    std::invalid_argument);
}
