#include "http/multipart.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

using phonon::http::multipart_boundary;
using phonon::http::multipart_parser;

namespace {

const std::string boundary = "----phononBoundary7MA4YWxkTrZu0gW";

/// Binary content full of near-misses of the delimiter: CRs, "\r\n--",
/// "\r\n--" plus a prefix of the boundary, NULs and high bytes.
std::string tricky_content() {
  std::mt19937 rng{42};
  std::uniform_int_distribution<int> byte{0, 255};
  std::string out;
  for (int i = 0; i < 64; ++i) {
    for (int j = 0; j < 12; ++j)
      out += static_cast<char>(byte(rng));
    switch (i % 8) {
      case 0:
        out += "\r\n--";
        break;
      case 1:
        out += "\r\n--" + boundary.substr(0, boundary.size() - 1);
        break;
      case 2:
        out += "\r\r\n\r";
        break;
      case 3:
        out += "--" + boundary; // not preceded by CRLF: content
        break;
      case 4:
        out += "\r\n-" + boundary;
        break;
      case 5:
        out += std::string{"\0\r\n\0", 4};
        break;
      case 6:
        out += "\n--" + boundary;
        break;
      default:
        out += "\r\n--" + boundary.substr(0, 5);
    }
  }
  out += "\r"; // a CR right before the real delimiter
  return out;
}

std::string part(const std::string& headers, const std::string& content) {
  return "--" + boundary + "\r\n" + headers + "\r\n\r\n" + content + "\r\n";
}

std::string closing() {
  return "--" + boundary + "--\r\n";
}

std::string file_headers() {
  return "Content-Disposition: form-data; name=\"audio_file\"; "
         "filename=\"x.m4a\"\r\nContent-Type: audio/mp4";
}

/// A well-formed body with two plain fields around the file.
std::string form_body(const std::string& content) {
  return part("Content-Disposition: form-data; name=\"title\"", "hello")
         + part(file_headers(), content)
         + part("Content-Disposition: form-data; name=\"note\"",
                "bye\r\n--" + boundary.substr(0, 10))
         + closing();
}

struct outcome {
  bool fed = true;
  bool finished = false;
  multipart_parser::error error = multipart_parser::error::none;
  std::string data;
  std::string filename;
  std::string content_type;
  size_t part_size = 0;
};

/// Parses `body` split at the given offsets (ascending).
outcome parse(const std::string& body, const std::vector<size_t>& cuts,
              const std::string& field = "audio_file") {
  outcome out;
  multipart_parser parser{boundary, field, [&](const char* data, size_t n) {
                            out.data.append(data, n);
                          }};
  size_t pos = 0;
  auto feed_to = [&](size_t end) {
    if (out.fed)
      out.fed = parser.feed(body.data() + pos, end - pos);
    pos = end;
  };
  for (auto cut : cuts)
    feed_to(cut);
  feed_to(body.size());
  out.finished = parser.finish();
  out.error = parser.last_error();
  out.filename = parser.filename();
  out.content_type = parser.part_content_type();
  out.part_size = parser.part_size();
  return out;
}

outcome parse_whole(const std::string& body,
                    const std::string& field = "audio_file") {
  return parse(body, {}, field);
}

} // namespace

TEST_CASE("multipart: a well-formed form yields the file part exactly",
          "[unit][http]") {
  auto content = tricky_content();
  auto out = parse_whole(form_body(content));
  CHECK(out.fed);
  CHECK(out.finished);
  CHECK(out.error == multipart_parser::error::none);
  CHECK(out.data == content);
  CHECK(out.part_size == content.size());
  CHECK(out.filename == "x.m4a");
  CHECK(out.content_type == "audio/mp4");
}

TEST_CASE("multipart: other fields can be extracted too", "[unit][http]") {
  auto out = parse_whole(form_body(tricky_content()), "note");
  CHECK(out.finished);
  CHECK(out.data == "bye\r\n--" + boundary.substr(0, 10));
  CHECK(out.filename.empty());
  CHECK(out.content_type.empty());
}

TEST_CASE("multipart: one byte at a time", "[unit][http]") {
  auto content = tricky_content();
  auto body = form_body(content);
  std::vector<size_t> cuts;
  for (size_t i = 1; i < body.size(); ++i)
    cuts.push_back(i);
  auto out = parse(body, cuts);
  CHECK(out.finished);
  CHECK(out.data == content);
  CHECK(out.filename == "x.m4a");
  CHECK(out.content_type == "audio/mp4");
}

TEST_CASE("multipart: every two-way split", "[unit][http]") {
  auto content = tricky_content();
  auto body = form_body(content);
  size_t failures = 0;
  for (size_t cut = 0; cut <= body.size(); ++cut) {
    auto out = parse(body, {cut});
    if (!out.finished || out.data != content || out.filename != "x.m4a") {
      ++failures;
      UNSCOPED_INFO("failed at cut " << cut);
    }
  }
  CHECK(failures == 0);
}

TEST_CASE("multipart: random multi-way splits", "[unit][http]") {
  auto content = tricky_content();
  auto body = form_body(content);
  std::mt19937 rng{7};
  std::uniform_int_distribution<size_t> at{0, body.size()};
  for (int round = 0; round < 200; ++round) {
    std::vector<size_t> cuts;
    for (int i = 0; i < 5; ++i)
      cuts.push_back(at(rng));
    std::sort(cuts.begin(), cuts.end());
    auto out = parse(body, cuts);
    REQUIRE(out.finished);
    REQUIRE(out.data == content);
  }
}

TEST_CASE("multipart: content is streamed, not buffered", "[unit][http]") {
  std::string content(100000, 'a');
  auto body = part(file_headers(), content) + closing();
  std::string seen;
  multipart_parser parser{boundary, "audio_file",
                          [&](const char* data, size_t n) {
                            seen.append(data, n);
                          }};
  // Feed everything but the final delimiter and closing.
  auto head = body.size() - closing().size() - 2;
  REQUIRE(parser.feed(body.data(), head));
  CHECK(seen.size() + boundary.size() + 4 >= content.size());
  CHECK(parser.part_size() == seen.size());
  REQUIRE(parser.feed(body.data() + head, body.size() - head));
  CHECK(parser.finish());
  CHECK(seen == content);
}

TEST_CASE("multipart: preamble, padding, epilogue, no-header parts",
          "[unit][http]") {
  auto body = "This is a preamble.\r\n--" + boundary + "\r\n\r\nno headers\r\n"
              + "--" + boundary + " \t\r\n" + file_headers()
              + "\r\n\r\nDATA\r\n--" + boundary
              + "--  \r\nepilogue --" + boundary + "\r\ngarbage";
  auto out = parse_whole(body);
  CHECK(out.finished);
  CHECK(out.data == "DATA");
  CHECK(out.filename == "x.m4a");
}

TEST_CASE("multipart: header names and parameters are case-insensitive",
          "[unit][http]") {
  auto body = part("content-type:  audio/wav \r\n"
                   "CONTENT-DISPOSITION: Form-Data; NAME=audio_file; "
                   "FileName=y.wav; filename*=UTF-8''z.wav",
                   "RIFF")
              + closing();
  auto out = parse_whole(body);
  CHECK(out.finished);
  CHECK(out.data == "RIFF");
  CHECK(out.filename == "y.wav");
  CHECK(out.content_type == "audio/wav");
}

TEST_CASE("multipart: quoted filename with escapes and semicolons",
          "[unit][http]") {
  auto body = part("Content-Disposition: form-data; "
                   "filename=\"a \\\"b\\\"; c.m4a\"; name=\"audio_file\"",
                   "x")
              + closing();
  auto out = parse_whole(body);
  CHECK(out.finished);
  CHECK(out.filename == "a \"b\"; c.m4a");
}

TEST_CASE("multipart: an empty wanted part is found with no data",
          "[unit][http]") {
  auto out = parse_whole(part(file_headers(), "") + closing());
  CHECK(out.finished);
  CHECK(out.data.empty());
  CHECK(out.part_size == 0);
}

TEST_CASE("multipart: missing part", "[unit][http]") {
  auto body = part("Content-Disposition: form-data; name=\"title\"", "x")
              + part("Content-Disposition: form-data; name=\"audio_file_2\"",
                     "y")
              + closing();
  auto out = parse_whole(body);
  CHECK(out.fed);
  CHECK_FALSE(out.finished);
  CHECK(out.error == multipart_parser::error::missing_part);
  CHECK(out.data.empty());
}

TEST_CASE("multipart: duplicate part", "[unit][http]") {
  auto body = part(file_headers(), "one") + part(file_headers(), "two")
              + closing();
  auto out = parse_whole(body);
  CHECK_FALSE(out.fed);
  CHECK_FALSE(out.finished);
  CHECK(out.error == multipart_parser::error::duplicate_part);
}

TEST_CASE("multipart: no closing boundary", "[unit][http]") {
  auto content = tricky_content();
  auto body = part(file_headers(), content);
  auto out = parse_whole(body);
  CHECK(out.fed);
  CHECK_FALSE(out.finished);
  CHECK(out.error == multipart_parser::error::malformed);
  // Also when the body stops inside the content.
  out = parse_whole(body.substr(0, body.size() / 2));
  CHECK_FALSE(out.finished);
  CHECK(out.error == multipart_parser::error::malformed);
}

TEST_CASE("multipart: garbage is malformed", "[unit][http]") {
  const std::string bodies[] = {
    "",
    "hello world",
    "--" + boundary + "X\r\n\r\n\r\n--" + boundary + "--",
    "--" + boundary + "-x",
    "--" + boundary + "\r\nno colon here\r\n\r\nx\r\n" + closing(),
    "--" + boundary + "\r\n: empty name\r\n\r\nx\r\n" + closing(),
    "--" + boundary + "\r\nContent-Disposition: form-data; name=\"audio_"
      "file\r\n\r\nx\r\n" + closing(),
    "--" + boundary,
    part(file_headers(), "x") + "--" + boundary,
  };
  for (auto& body : bodies) {
    INFO("body: " << body);
    auto out = parse_whole(body);
    CHECK_FALSE(out.finished);
    CHECK(out.error == multipart_parser::error::malformed);
  }
}

TEST_CASE("multipart: a header block over 8 KiB is malformed",
          "[unit][http]") {
  auto filler = "X-Filler: " + std::string(8200, 'f');
  auto body = part(filler + "\r\n" + file_headers(), "x") + closing();
  auto out = parse_whole(body);
  CHECK_FALSE(out.fed);
  CHECK(out.error == multipart_parser::error::malformed);
  // Fed in small pieces, it fails as soon as the cap is crossed.
  multipart_parser parser{boundary, "audio_file", nullptr};
  size_t fed = 0;
  bool ok = true;
  while (ok && fed < body.size()) {
    ok = parser.feed(body.data() + fed, 1);
    ++fed;
  }
  CHECK_FALSE(ok);
  CHECK(fed < 8300);
  CHECK(parser.last_error() == multipart_parser::error::malformed);
  // A big header block under the cap is fine.
  auto small = "X-Filler: " + std::string(7000, 'f');
  out = parse_whole(part(small + "\r\n" + file_headers(), "x") + closing());
  CHECK(out.finished);
  CHECK(out.data == "x");
}

TEST_CASE("multipart: a failed parser stays failed", "[unit][http]") {
  multipart_parser parser{boundary, "audio_file", nullptr};
  std::string junk = "--" + boundary + "!!";
  CHECK_FALSE(parser.feed(junk.data(), junk.size()));
  auto good = part(file_headers(), "x") + closing();
  CHECK_FALSE(parser.feed(good.data(), good.size()));
  CHECK_FALSE(parser.finish());
  CHECK(parser.last_error() == multipart_parser::error::malformed);
}

TEST_CASE("multipart_boundary parses Content-Type", "[unit][http]") {
  CHECK(multipart_boundary("multipart/form-data; boundary=abc")
        == std::string{"abc"});
  CHECK(multipart_boundary(
          "Multipart/Form-Data; charset=x; boundary=\"abc def\"")
        == std::string{"abc def"});
  CHECK(multipart_boundary("multipart/form-data;BOUNDARY=abc;charset=utf-8")
        == std::string{"abc"});
  CHECK(multipart_boundary("  multipart/form-data ; boundary = xyz ")
        == std::string{"xyz"});
  CHECK(multipart_boundary("multipart/form-data; boundary=" + boundary)
        == boundary);
  CHECK(multipart_boundary("multipart/form-data; boundary=" + std::string(70,
                                                                          'b'))
        == std::string(70, 'b'));
  CHECK_FALSE(multipart_boundary("multipart/form-data; boundary="
                                 + std::string(71, 'b')));
  CHECK_FALSE(multipart_boundary("multipart/form-data; boundary="));
  CHECK_FALSE(multipart_boundary("multipart/form-data; boundary=\"\""));
  CHECK_FALSE(multipart_boundary("multipart/form-data; boundary=\"abc"));
  CHECK_FALSE(multipart_boundary("multipart/form-data; boundary=\"abc \""));
  CHECK_FALSE(multipart_boundary("multipart/form-data"));
  CHECK_FALSE(multipart_boundary("multipart/form-data; charset=utf-8"));
  CHECK_FALSE(multipart_boundary("multipart/mixed; boundary=abc"));
  CHECK_FALSE(multipart_boundary("application/octet-stream"));
  CHECK_FALSE(multipart_boundary(""));
  CHECK_FALSE(multipart_boundary("multipart/form-data; boundary=\"a\tb\""));
}
