#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <ctime>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <string>
#include <tuple>

#include "persistence/local_blob_store.hpp"
#include "tests/unit/temp_dir.hpp"

using namespace phonon::persistence;

namespace fs = std::filesystem;

namespace {


blob_key key(int64_t revision, std::string name) {
  return blob_key{1, 2, revision, std::move(name)};
}

size_t entries_in(const fs::path& dir) {
  size_t n = 0;
  for ([[maybe_unused]] auto& e : fs::directory_iterator{dir})
    ++n;
  return n;
}

void write_file(const fs::path& path, const std::string& bytes) {
  std::ofstream out{path, std::ios::binary};
  out << bytes;
  REQUIRE(out.good());
}

/// Bytes with NULs and every byte value, so text-mode bugs show.
std::string binary_payload(size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i)
    s.push_back(static_cast<char>(i * 7 % 256));
  return s;
}

} // namespace

TEST_CASE("the constructor creates base and temp folders",
          "[unit][persistence]") {
  phonon::testing::temp_dir dir{"phonon-blob-test"};
  local_blob_store store{dir.path / "audio"};
  CHECK(fs::is_directory(dir.path / "audio"));
  CHECK(store.temp_dir() == dir.path / "audio" / "tmp");
  CHECK(fs::is_directory(store.temp_dir()));
  CHECK(store.writable());
}

TEST_CASE("put_bytes then read returns the same bytes",
          "[unit][persistence]") {
  phonon::testing::temp_dir dir{"phonon-blob-test"};
  local_blob_store store{dir.path};
  auto bytes = binary_payload(200000);
  auto info = store.put_bytes(key(5, "master.wav"), bytes);
  CHECK(info.path == dir.path / "1" / "2" / "5" / "master.wav");
  CHECK(info.size == bytes.size());
  CHECK(info.mtime > 0);
  CHECK(store.read(key(5, "master.wav")) == bytes);
  // One sub-folder level is allowed.
  store.put_bytes(key(5, "cache/mp3"), "mp3 bytes");
  CHECK(store.read(key(5, "cache/mp3")) == "mp3 bytes");
  CHECK(fs::is_regular_file(dir.path / "1" / "2" / "5" / "cache" / "mp3"));
  // Empty content is a valid file.
  store.put_bytes(key(5, "empty"), "");
  CHECK(store.read(key(5, "empty")).empty());
  CHECK(store.stat(key(5, "empty")).value().size == 0);
}

TEST_CASE("the temp folder is empty after a put", "[unit][persistence]") {
  phonon::testing::temp_dir dir{"phonon-blob-test"};
  local_blob_store store{dir.path};
  store.put_bytes(key(1, "original"), "abc");
  store.put_bytes(key(1, "original"), "abcd");
  CHECK(entries_in(store.temp_dir()) == 0);
}

TEST_CASE("put_file moves a spooled file into place", "[unit][persistence]") {
  phonon::testing::temp_dir dir{"phonon-blob-test"};
  local_blob_store store{dir.path};
  auto spool = store.make_temp_path("upload");
  CHECK(spool.parent_path() == store.temp_dir());
  CHECK_FALSE(fs::exists(spool)); // not created
  auto bytes = binary_payload(4096);
  write_file(spool, bytes);
  auto info = store.put_file(key(3, "original"), spool);
  CHECK_FALSE(fs::exists(spool));
  CHECK(info.path == store.path_of(key(3, "original")));
  CHECK(info.size == bytes.size());
  CHECK(store.read(key(3, "original")) == bytes);
  CHECK(entries_in(store.temp_dir()) == 0);
  // A missing source is a storage error, and nothing appears.
  CHECK_THROWS_AS(store.put_file(key(4, "original"), spool), storage_error);
  CHECK_FALSE(store.stat(key(4, "original")).has_value());
}

TEST_CASE("put_upload installs an original and its master together",
          "[unit][persistence]") {
  phonon::testing::temp_dir dir{"phonon-blob-test"};
  local_blob_store store{dir.path};
  auto original = binary_payload(4096);
  auto master = binary_payload(9000);

  SECTION("both files land in the revision folder, nothing stays in tmp") {
    auto spool = store.make_temp_path("upload");
    auto wav = store.make_temp_path("job");
    write_file(spool, original);
    write_file(wav, master);
    // The spool's sync and the folder made ahead, as the upload does.
    store.prepare_put(key(5, "original"), spool);
    for (bool synced : {true, false}) {
      auto done = store.put_upload(key(5, "original"), spool,
                                   key(5, "master.wav"), wav, synced);
      CHECK(done.master_error.empty());
      REQUIRE(done.master.has_value());
      CHECK(done.master->path == store.path_of(key(5, "master.wav")));
      CHECK(done.master->size == master.size());
      CHECK(done.original.size == original.size());
      CHECK(store.read(key(5, "original")) == original);
      CHECK(store.read(key(5, "master.wav")) == master);
      CHECK(entries_in(store.temp_dir()) == 0);
      // Again for the other `synced`, over the same names (a rename
      // replaces them).
      write_file(spool, original);
      write_file(wav, master);
    }
    fs::remove(spool);
    fs::remove(wav);
  }

  SECTION("no master given: the original alone, as put_file") {
    auto spool = store.make_temp_path("upload");
    write_file(spool, original);
    auto done = store.put_upload(key(6, "original"), spool,
                                 key(6, "master.wav"), fs::path{}, false);
    CHECK_FALSE(done.master.has_value());
    CHECK(done.master_error.empty());
    CHECK(store.read(key(6, "original")) == original);
    CHECK_FALSE(store.stat(key(6, "master.wav")).has_value());
  }

  SECTION("a master that cannot be installed leaves the original alone") {
    auto spool = store.make_temp_path("upload");
    write_file(spool, original);
    // The master's temp file is gone (its rename fails with ENOENT).
    auto missing = store.make_temp_path("job");
    auto done = store.put_upload(key(7, "original"), spool,
                                 key(7, "master.wav"), missing, true);
    CHECK_FALSE(done.master.has_value());
    CHECK_FALSE(done.master_error.empty());
    CHECK_FALSE(done.master_no_space);
    CHECK(store.read(key(7, "original")) == original);
    CHECK_FALSE(store.stat(key(7, "master.wav")).has_value());
    // A master key outside the original's revision is refused, and the
    // master stays in the temp folder for a later adoption.
    spool = store.make_temp_path("upload");
    auto wav = store.make_temp_path("job");
    write_file(spool, original);
    write_file(wav, master);
    done = store.put_upload(key(8, "original"), spool, key(9, "master.wav"),
                            wav, true);
    CHECK_FALSE(done.master.has_value());
    CHECK_FALSE(done.master_error.empty());
    CHECK(store.read(key(8, "original")) == original);
    CHECK_FALSE(store.stat(key(9, "master.wav")).has_value());
    CHECK(fs::exists(wav));
    fs::remove(wav);
  }

  SECTION("a missing original throws and installs no master") {
    auto spool = store.make_temp_path("upload"); // never written
    auto wav = store.make_temp_path("job");
    write_file(wav, master);
    CHECK_THROWS_AS(store.put_upload(key(10, "original"), spool,
                                     key(10, "master.wav"), wav, true),
                    storage_error);
    CHECK_FALSE(store.stat(key(10, "original")).has_value());
    CHECK_FALSE(store.stat(key(10, "master.wav")).has_value());
    CHECK(fs::exists(wav));
    fs::remove(wav);
  }
}

TEST_CASE("make_temp_path returns unique names", "[unit][persistence]") {
  phonon::testing::temp_dir dir{"phonon-blob-test"};
  local_blob_store store{dir.path};
  std::set<fs::path> seen;
  for (int i = 0; i < 1000; ++i)
    seen.insert(store.make_temp_path("x"));
  CHECK(seen.size() == 1000);
  auto name = store.make_temp_path("spool").filename().string();
  CHECK(name.rfind("spool", 0) == 0);
  CHECK_THROWS_AS(store.make_temp_path("../evil"), storage_error);
}

TEST_CASE("stat reports size and absence", "[unit][persistence]") {
  phonon::testing::temp_dir dir{"phonon-blob-test"};
  local_blob_store store{dir.path};
  CHECK_FALSE(store.stat(key(1, "master.wav")).has_value());
  store.put_bytes(key(1, "master.wav"), std::string(1234, 'a'));
  auto info = store.stat(key(1, "master.wav"));
  REQUIRE(info.has_value());
  CHECK(info->size == 1234);
  CHECK(info->path == store.path_of(key(1, "master.wav")));
  // Just written: the mtime is now, in Unix seconds.
  auto now = static_cast<int64_t>(std::time(nullptr));
  CHECK(info->mtime >= now - 5);
  CHECK(info->mtime <= now + 5);
  CHECK_FALSE(store.stat(key(2, "master.wav")).has_value());
  CHECK_THROWS_AS(store.read(key(2, "master.wav")), storage_error);
}

TEST_CASE("an overwrite is atomic for readers", "[unit][persistence]") {
  phonon::testing::temp_dir dir{"phonon-blob-test"};
  local_blob_store store{dir.path};
  auto old_bytes = std::string(100000, 'o');
  store.put_bytes(key(1, "master.wav"), old_bytes);
  // A reader opens the old file before the overwrite...
  auto path = store.path_of(key(1, "master.wav"));
  int fd = ::open(path.c_str(), O_RDONLY);
  REQUIRE(fd >= 0);
  store.put_bytes(key(1, "master.wav"), "new contents");
  // ...and still reads the complete old contents afterwards.
  std::string seen;
  char buf[8192];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof(buf))) > 0)
    seen.append(buf, static_cast<size_t>(n));
  ::close(fd);
  CHECK(seen == old_bytes);
  CHECK(store.read(key(1, "master.wav")) == "new contents");
}

TEST_CASE("remove deletes one file", "[unit][persistence]") {
  phonon::testing::temp_dir dir{"phonon-blob-test"};
  local_blob_store store{dir.path};
  store.put_bytes(key(1, "cache/mp3"), "x");
  store.put_bytes(key(1, "master.wav"), "y");
  CHECK(store.remove(key(1, "cache/mp3")));
  CHECK_FALSE(store.remove(key(1, "cache/mp3")));
  CHECK_FALSE(store.remove(key(9, "master.wav")));
  CHECK_FALSE(store.stat(key(1, "cache/mp3")).has_value());
  CHECK(store.read(key(1, "master.wav")) == "y");
}

TEST_CASE("remove_revision and remove_other_revisions",
          "[unit][persistence]") {
  phonon::testing::temp_dir dir{"phonon-blob-test"};
  local_blob_store store{dir.path};
  for (int64_t rev : {1, 2, 3}) {
    store.put_bytes(key(rev, "original"), "o");
    store.put_bytes(key(rev, "cache/ogg"), "c");
  }
  // Another phrase and another user are not touched.
  store.put_bytes(blob_key{1, 3, 1, "original"}, "other phrase");
  store.put_bytes(blob_key{2, 2, 1, "original"}, "other user");
  store.remove_other_revisions(1, 2, 2);
  CHECK_FALSE(fs::exists(dir.path / "1" / "2" / "1"));
  CHECK_FALSE(fs::exists(dir.path / "1" / "2" / "3"));
  CHECK(store.read(key(2, "original")) == "o");
  CHECK(store.read(key(2, "cache/ogg")) == "c");
  CHECK(entries_in(dir.path / "1" / "2") == 1);
  CHECK(store.read(blob_key{1, 3, 1, "original"}) == "other phrase");
  CHECK(store.read(blob_key{2, 2, 1, "original"}) == "other user");
  // Missing folders are no error.
  REQUIRE_NOTHROW(store.remove_other_revisions(7, 7, 1));
  REQUIRE_NOTHROW(store.remove_revision(7, 7, 1));
  store.remove_revision(1, 2, 2);
  CHECK_FALSE(fs::exists(dir.path / "1" / "2" / "2"));
  CHECK_FALSE(store.stat(key(2, "original")).has_value());
  // The phrase's folder went with its last revision; the user's folder
  // stays while another phrase is in it, and goes with that one.
  CHECK_FALSE(fs::exists(dir.path / "1" / "2"));
  CHECK(fs::exists(dir.path / "1" / "3"));
  store.remove_revision(1, 3, 1);
  CHECK_FALSE(fs::exists(dir.path / "1"));
  CHECK(store.read(blob_key{2, 2, 1, "original"}) == "other user");
  // A refused upload's folders (made ahead by prepare_put) leave nothing.
  auto spool = store.make_temp_path("upload");
  write_file(spool, "not audio");
  store.prepare_put(blob_key{5, 6, 7, "original"}, spool);
  CHECK(fs::exists(dir.path / "5" / "6" / "7"));
  store.remove_revision(5, 6, 7);
  CHECK_FALSE(fs::exists(dir.path / "5"));
}

TEST_CASE("sweep_temp removes stray files", "[unit][persistence]") {
  phonon::testing::temp_dir dir{"phonon-blob-test"};
  local_blob_store store{dir.path};
  write_file(store.make_temp_path("upload"), "partial");
  write_file(store.make_temp_path("put"), "partial");
  fs::create_directory(store.temp_dir() / "leftover-dir");
  write_file(store.temp_dir() / "leftover-dir" / "f", "x");
  store.put_bytes(key(1, "original"), "kept");
  CHECK(store.sweep_temp() == 3);
  CHECK(entries_in(store.temp_dir()) == 0);
  CHECK(fs::is_directory(store.temp_dir()));
  CHECK(store.read(key(1, "original")) == "kept");
  CHECK(store.sweep_temp() == 0);
}

TEST_CASE("hostile names throw storage_error", "[unit][persistence]") {
  phonon::testing::temp_dir dir{"phonon-blob-test"};
  auto base = dir.path / "base";
  local_blob_store store{base};
  for (auto name : {"../x", "/etc/passwd", "a/../../x", "..", ".", "./x",
                    "cache/..", "a/b/c", "Master.wav", "a b", "x/", "",
                    "cache//mp3", "a\\b"}) {
    INFO("name: " << name);
    CHECK_THROWS_AS(store.path_of(key(1, name)), storage_error);
    CHECK_THROWS_AS(store.put_bytes(key(1, name), "pwned"), storage_error);
    CHECK_THROWS_AS(store.stat(key(1, name)), storage_error);
    CHECK_THROWS_AS(store.read(key(1, name)), storage_error);
    CHECK_THROWS_AS(store.remove(key(1, name)), storage_error);
  }
  // Nothing was written anywhere, inside or outside the base folder.
  CHECK(entries_in(dir.path) == 1);
  CHECK(entries_in(base) == 1); // only tmp
  CHECK(entries_in(store.temp_dir()) == 0);
}

TEST_CASE("list_revisions finds every revision folder and its original",
          "[unit][persistence]") {
  phonon::testing::temp_dir dir{"phonon-blob-test"};
  local_blob_store st{dir.path};
  st.put_bytes(blob_key{1, 2, 10, "original"}, "a");
  st.put_bytes(blob_key{1, 2, 10, "master.wav"}, "b");
  st.put_bytes(blob_key{1, 2, 11, "cache/mp3"}, "c"); // no original
  st.put_bytes(blob_key{3, 4, 5, "original"}, "d");
  fs::create_directories(dir.path / "1" / "2" / "not-a-number");
  auto found = st.list_revisions();
  std::set<std::tuple<int64_t, int64_t, int64_t, bool>> got;
  for (auto& r : found)
    got.emplace(r.user_id, r.phrase_id, r.revision, r.has_original);
  CHECK(got
        == std::set<std::tuple<int64_t, int64_t, int64_t, bool>>{
          {1, 2, 10, true}, {1, 2, 11, false}, {3, 4, 5, true}});
  CHECK(st.free_bytes() > 0);
}

