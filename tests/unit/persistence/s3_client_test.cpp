#include <catch2/catch.hpp>

#include <chrono>
#include <stdexcept>
#include <string>

#include "persistence/s3/client.hpp"

// The pure parts of the S3 client: its XML reader (S3's answers), the
// backoff schedule, the part size, and the settings checks. The client's
// requests are tested against s3rver in
// tests/integration/s3_client_test.cpp.

namespace s3 = phonon::persistence::s3;
using namespace std::chrono_literals;

TEST_CASE("s3 xml: a ListObjectsV2 page with escaped keys",
          "[unit][persistence][s3xml]") {
  auto doc = s3::parse_xml(
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
    "<Name>phonon</Name><Prefix>a/</Prefix><KeyCount>2</KeyCount>"
    "<IsTruncated>true</IsTruncated>"
    "<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM="
    "</NextContinuationToken>"
    "<Contents><Key>a/x&amp;y&lt;z&gt;&quot;&apos;</Key><Size>3</Size>"
    "<ETag>&quot;abc&quot;</ETag></Contents>"
    "<Contents><Key>a/&#x1F600;&#65;</Key><Size>10</Size><ETag>\"d\"</ETag>"
    "</Contents>"
    "</ListBucketResult>");
  CHECK(doc.name == "ListBucketResult");
  CHECK(doc.child_text("IsTruncated") == "true");
  CHECK(doc.child_text("NextContinuationToken")
        == "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");
  REQUIRE(doc.children.size() == 7);
  CHECK(doc.children[5].child_text("Key") == "a/x&y<z>\"'");
  CHECK(doc.children[5].child_text("ETag") == "\"abc\"");
  CHECK(doc.children[6].child_text("Key") == "a/\xF0\x9F\x98\x80" "A");
  CHECK(doc.child_text("Missing").empty());
}

TEST_CASE("s3 xml: error bodies, prefixes, CDATA, comments, self-closing "
          "tags",
          "[unit][persistence][s3xml]") {
  auto err = s3::parse_xml(
    "<?xml version=\"1.0\"?><!-- s3 --><Error><Code>NoSuchKey</Code>"
    "<Message>The specified key does not exist.</Message>"
    "<Key>a b</Key><Empty/><Other attr='x>y' b=\"1\"/></Error>\n");
  CHECK(err.name == "Error");
  CHECK(err.child_text("Code") == "NoSuchKey");
  CHECK(err.child("Empty") != nullptr);
  CHECK(err.child("Other") != nullptr);

  auto ns = s3::parse_xml("<s3:Root><s3:Key><![CDATA[a&b<c>]]>d&amp;"
                          "<!-- x --></s3:Key></s3:Root>");
  CHECK(ns.name == "Root");
  CHECK(ns.child_text("Key") == "a&b<c>d&");
}

TEST_CASE("s3 xml: malformed documents are refused",
          "[unit][persistence][s3xml]") {
  for (const char* bad :
       {"", "text", "<a>", "<a></b>", "<a>&unknown;</a>", "<a>&#0;</a>",
        "<a>&#xD800;</a>", "<a>&amp</a>", "<a><b></a></b>", "<a/><b/>",
        "<!DOCTYPE a [<!ENTITY x \"y\">]><a>&x;</a>", "<a b></a>",
        "<a b=c></a>", "<a><![CDATA[x</a>"}) {
    INFO(bad);
    CHECK_THROWS_AS(s3::parse_xml(bad), std::runtime_error);
  }
  std::string deep;
  for (int i = 0; i < 1000; ++i)
    deep += "<a>";
  CHECK_THROWS_AS(s3::parse_xml(deep), std::runtime_error);
}

TEST_CASE("s3 client: backoff doubles from the base, capped",
          "[unit][persistence][s3client]") {
  CHECK(s3::backoff_delay(50ms, 2) == 50ms);
  CHECK(s3::backoff_delay(50ms, 3) == 100ms);
  CHECK(s3::backoff_delay(50ms, 4) == 200ms);
  CHECK(s3::backoff_delay(50ms, 40) == 2000ms);
}

TEST_CASE("s3 client: part size grows past 10,000 parts",
          "[unit][persistence][s3client]") {
  constexpr uint64_t mib = 1024 * 1024;
  CHECK(s3::effective_part_size(11 * mib, 5 * mib) == 5 * mib);
  CHECK(s3::effective_part_size(50000 * mib, 5 * mib) == 5 * mib);
  // 50,001 MiB in 5 MiB parts would be 10,001 parts.
  auto p = s3::effective_part_size(50001 * mib, 5 * mib);
  CHECK(p == 6 * mib);
  CHECK((50001 * mib + p - 1) / p <= 10000);
}

TEST_CASE("s3 client: settings are checked at construction",
          "[unit][persistence][s3client]") {
  s3::settings ok;
  ok.endpoint = "http://127.0.0.1:9";
  ok.bucket = "b";
  CHECK_NOTHROW(s3::client{ok});
  auto bad = [&](auto change) {
    auto cfg = ok;
    change(cfg);
    CHECK_THROWS_AS(s3::client{cfg}, std::invalid_argument);
  };
  bad([](s3::settings& c) { c.endpoint = "127.0.0.1:9"; });
  bad([](s3::settings& c) { c.endpoint = "ftp://127.0.0.1"; });
  bad([](s3::settings& c) { c.endpoint = "http://host/path"; });
  bad([](s3::settings& c) { c.endpoint = "http://user:pw@host"; });
  bad([](s3::settings& c) { c.bucket.clear(); });
  bad([](s3::settings& c) { c.region.clear(); });
  bad([](s3::settings& c) { c.part_size = 1024; });
  bad([](s3::settings& c) { c.attempts = 0; });
  CHECK(s3::to_string(s3::errc::forbidden) == "forbidden");
}
