#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "http/response_cache.hpp"

using namespace phonon::http;
using phonon::actors::file_ref;

namespace {

file_ref file_of(const std::string& path, uint64_t size,
                 const std::string& etag = "\"1-m4a\"", int64_t mtime = 100) {
  return {path, size, mtime, etag, "audio/mp4"};
}

/// Inserts `size` bytes of `fill` as the contents of `path`.
cached_file_ptr put(response_cache& c, const std::string& path, uint64_t size,
                    char fill = 'x') {
  return c.insert(file_of(path, size),
                  std::string(static_cast<std::size_t>(size), fill));
}

} // namespace

TEST_CASE("the memory cache keeps its byte bound and evicts least recently "
          "used first",
          "[unit][http]") {
  response_cache c{1000, 900};
  put(c, "/a", 300);
  put(c, "/b", 300);
  put(c, "/c", 300);
  CHECK(c.snapshot().bytes == 900);
  CHECK(c.snapshot().entries == 3);
  // /a is used again: /b is now the least recently used.
  REQUIRE(c.find(file_of("/a", 300)) != nullptr);
  put(c, "/d", 300);
  auto st = c.snapshot();
  CHECK(st.bytes == 900);
  CHECK(st.entries == 3);
  CHECK(st.evictions == 1);
  CHECK(c.find(file_of("/b", 300)) == nullptr);
  CHECK(c.find(file_of("/a", 300)) != nullptr);
  CHECK(c.find(file_of("/c", 300)) != nullptr);
  CHECK(c.find(file_of("/d", 300)) != nullptr);
  // Now d, c, a from most to least recently used: a 400 byte entry needs
  // 300 bytes more room, so a (only) goes.
  put(c, "/e", 400);
  st = c.snapshot();
  CHECK(st.bytes == 1000);
  CHECK(st.evictions == 2);
  CHECK(c.find(file_of("/a", 300)) == nullptr);
  CHECK(c.find(file_of("/c", 300)) != nullptr);
  CHECK(c.find(file_of("/d", 300)) != nullptr);
  CHECK(c.find(file_of("/e", 400)) != nullptr);
  // A larger one pushes out as many as needed, least recently used first.
  put(c, "/f", 900);
  st = c.snapshot();
  CHECK(st.bytes == 900);
  CHECK(st.entries == 1);
  CHECK(st.evictions == 5);
}

TEST_CASE("the memory cache counts hits and misses", "[unit][http]") {
  response_cache c{1000, 1000};
  CHECK(c.find(file_of("/a", 10)) == nullptr);
  put(c, "/a", 10, 'q');
  auto hit = c.find(file_of("/a", 10));
  REQUIRE(hit != nullptr);
  CHECK(hit->bytes == std::string(10, 'q'));
  auto st = c.snapshot();
  CHECK(st.hits == 1);
  CHECK(st.misses == 1);
}

TEST_CASE("the memory cache never serves other facts than those cached",
          "[unit][http]") {
  response_cache c{1000, 1000};
  put(c, "/a", 10, 'o');
  SECTION("another ETag") {
    CHECK(c.find(file_of("/a", 10, "\"2-m4a\"")) == nullptr);
  }
  SECTION("another size") {
    CHECK(c.find(file_of("/a", 11)) == nullptr);
  }
  SECTION("another mtime") {
    CHECK(c.find(file_of("/a", 10, "\"1-m4a\"", 101)) == nullptr);
  }
  // The stale entry is gone, even for the old facts.
  CHECK(c.find(file_of("/a", 10)) == nullptr);
  CHECK(c.snapshot().entries == 0);
  CHECK(c.snapshot().bytes == 0);
}

TEST_CASE("the memory cache replaces the entry of the same path",
          "[unit][http]") {
  response_cache c{1000, 1000};
  put(c, "/a", 100, 'o');
  auto old = c.find(file_of("/a", 100));
  REQUIRE(old != nullptr);
  c.insert(file_of("/a", 200, "\"2-m4a\"", 200), std::string(200, 'n'));
  auto st = c.snapshot();
  CHECK(st.entries == 1);
  CHECK(st.bytes == 200);
  CHECK(st.evictions == 0);
  auto now = c.find(file_of("/a", 200, "\"2-m4a\"", 200));
  REQUIRE(now != nullptr);
  CHECK(now->bytes == std::string(200, 'n'));
  // A reader of the replaced bytes still holds them whole.
  CHECK(old->bytes == std::string(100, 'o'));
  // The same facts again: still one entry, counted once.
  c.insert(file_of("/a", 200, "\"2-m4a\"", 200), std::string(200, 'n'));
  CHECK(c.snapshot().entries == 1);
  CHECK(c.snapshot().bytes == 200);
  // The old facts never find the new bytes (and drop the entry).
  CHECK(c.find(file_of("/a", 100)) == nullptr);
  CHECK(c.snapshot().entries == 0);
}

TEST_CASE("the memory cache keeps out large files and is off at 0 bytes",
          "[unit][http]") {
  response_cache c{1000, 100};
  CHECK(c.admits(100));
  CHECK_FALSE(c.admits(101));
  auto e = put(c, "/big", 101);
  REQUIRE(e != nullptr); // handed back, uncached
  CHECK(e->bytes.size() == 101);
  CHECK(c.snapshot().entries == 0);
  CHECK(c.find(file_of("/big", 101)) == nullptr);

  response_cache off{0, 100};
  CHECK_FALSE(off.admits(0));
  CHECK_FALSE(off.admits(10));
  put(off, "/a", 10);
  CHECK(off.snapshot().bytes == 0);
  CHECK(off.find(file_of("/a", 10)) == nullptr);
}

TEST_CASE("the memory cache stays consistent under concurrent use",
          "[unit][http]") {
  constexpr uint64_t bound = 64 * 1024;
  response_cache c{bound, 4096};
  constexpr int threads = 8;
  constexpr int rounds = 20000;
  std::atomic<int> wrong{0};
  std::atomic<uint64_t> over{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      for (int i = 0; i < rounds; ++i) {
        // 64 paths, each with two versions whose bytes name the version.
        auto n = static_cast<unsigned>(i * 7 + t * 13) % 64;
        auto version = static_cast<int64_t>((i / 64 + t) % 2);
        auto size = static_cast<uint64_t>(512 + n * 50);
        auto facts = file_of("/f" + std::to_string(n), size,
                             "\"" + std::to_string(version) + "-m4a\"",
                             version);
        char fill = static_cast<char>('a' + version);
        auto got = c.find(facts);
        if (!got)
          got = c.insert(facts, std::string(size, fill));
        if (got->bytes.size() != size
            || got->bytes.find_first_not_of(fill) != std::string::npos
            || got->facts.etag != facts.etag)
          ++wrong;
        auto st = c.snapshot();
        if (st.bytes > bound)
          ++over;
      }
    });
  for (auto& th : pool)
    th.join();
  CHECK(wrong == 0);
  CHECK(over == 0);
  auto st = c.snapshot();
  CHECK(st.bytes <= bound);
  CHECK(st.hits + st.misses == uint64_t{threads} * rounds);
  CHECK(st.evictions > 0);
  // At most one version of each path is held.
  CHECK(st.entries <= 64);
  CHECK(st.entries > 0);
}
