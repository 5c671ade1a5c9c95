#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

#include "http/upload_sink.hpp"
#include "tests/unit/temp_dir.hpp"

using namespace phonon::http;
namespace fs = std::filesystem;

namespace {


std::string slurp(const fs::path& p) {
  std::ifstream in{p, std::ios::binary};
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

} // namespace

TEST_CASE("a raw upload is spooled as is", "[unit][http]") {
  phonon::testing::temp_dir dir{"phonon-sink"};
  auto file = (dir.path / "a").string();
  {
    upload_sink sink{file, 100, std::nullopt};
    REQUIRE(sink.write("hello ", 6));
    REQUIRE(sink.write("world", 5));
    REQUIRE(sink.finish());
    CHECK(sink.size() == 11);
    sink.release();
  }
  CHECK(slurp(file) == "hello world");
}

TEST_CASE("the spool file is removed unless released", "[unit][http]") {
  phonon::testing::temp_dir dir{"phonon-sink"};
  auto file = (dir.path / "b").string();
  {
    upload_sink sink{file, 100, std::nullopt};
    sink.write("x", 1);
    sink.finish();
  }
  CHECK_FALSE(fs::exists(file));
}

TEST_CASE("an upload over the limit is refused as it streams",
          "[unit][http]") {
  phonon::testing::temp_dir dir{"phonon-sink"};
  upload_sink sink{(dir.path / "c").string(), 10, std::nullopt};
  CHECK(sink.write("12345", 5));
  CHECK_FALSE(sink.write("678901", 6));
  CHECK(sink.last_error() == upload_sink::error::too_large);
  // Nothing beyond the limit reached the disk.
  CHECK(fs::file_size(dir.path / "c") == 5);
}

TEST_CASE("a multipart upload keeps only the audio_file part",
          "[unit][http]") {
  phonon::testing::temp_dir dir{"phonon-sink"};
  auto file = (dir.path / "d").string();
  std::string body = "--XyZ\r\n"
                     "Content-Disposition: form-data; name=\"note\"\r\n\r\n"
                     "hi\r\n"
                     "--XyZ\r\n"
                     "Content-Disposition: form-data; name=\"audio_file\"; "
                     "filename=\"a.m4a\"\r\n"
                     "Content-Type: audio/mp4\r\n\r\n"
                     "AUDIO\r\nBYTES\r\n"
                     "--XyZ--\r\n";
  upload_sink sink{file, 100, std::string{"XyZ"}};
  for (char c : body)
    REQUIRE(sink.write(&c, 1));
  REQUIRE(sink.finish());
  sink.release();
  CHECK(sink.filename() == "a.m4a");
  CHECK(slurp(file) == "AUDIO\r\nBYTES");
}

TEST_CASE("multipart errors are told apart", "[unit][http]") {
  phonon::testing::temp_dir dir{"phonon-sink"};
  SECTION("missing part") {
    upload_sink sink{(dir.path / "e").string(), 100, std::string{"B"}};
    std::string body = "--B\r\nContent-Disposition: form-data; name=\"x\"\r\n"
                       "\r\n1\r\n--B--\r\n";
    sink.write(body.data(), body.size());
    CHECK_FALSE(sink.finish());
    CHECK(sink.last_error() == upload_sink::error::missing_part);
  }
  SECTION("empty part") {
    upload_sink sink{(dir.path / "f").string(), 100, std::string{"B"}};
    std::string body = "--B\r\nContent-Disposition: form-data; "
                       "name=\"audio_file\"; filename=\"a\"\r\n\r\n\r\n--B--";
    sink.write(body.data(), body.size());
    CHECK_FALSE(sink.finish());
    CHECK(sink.last_error() == upload_sink::error::empty);
  }
  SECTION("no closing boundary") {
    upload_sink sink{(dir.path / "g").string(), 100, std::string{"B"}};
    std::string body = "--B\r\nContent-Disposition: form-data; "
                       "name=\"audio_file\"\r\n\r\nabc";
    sink.write(body.data(), body.size());
    CHECK_FALSE(sink.finish());
    CHECK(sink.last_error() == upload_sink::error::malformed);
  }
}
