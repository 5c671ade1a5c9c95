#pragma once

// The blob-store contract: what every persistence::blob_store promises,
// written once as functions of a `blob_store_backend` and registered as the
// same Catch2 cases for each implementation by
// PHONON_BLOB_STORE_CONTRACT(Fixture, "name", "[tags]"):
// - tests/unit/persistence/local_blob_store_contract_test.cpp: local files;
// - tests/integration/s3_blob_store_contract_test.cpp: an S3 bucket served
//   by s3rver on loopback.
// A Fixture derives from blob_store_backend: `store` is one node's view of
// the storage and `other()` opens a second node's view of the same storage
// (another local_blob_store on the same folder; another s3_blob_store with
// its own local folder on the same bucket), so that "visible" means visible
// to everyone, not only to the writer's own copies.

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "persistence/blob_store.hpp"

namespace phonon::contract {

using persistence::blob_key;
using persistence::blob_layout;
using persistence::blob_store;

struct blob_store_backend {
  virtual ~blob_store_backend() = default;
  /// A second node's view of the same stored objects.
  virtual std::shared_ptr<blob_store> other() = 0;
  std::shared_ptr<blob_store> store;
  /// The storage takes concurrent writes of one key (each is seen whole).
  bool same_key_writers_atomic = true;
};

/// Bytes with NULs and every byte value, distinct per `seed`.
inline std::string payload(size_t n, unsigned seed = 7) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i)
    s[i] = static_cast<char>((i * seed + seed) % 251);
  return s;
}

/// A file with `bytes` in the store's temp folder.
inline std::filesystem::path temp_file(blob_store& st, const std::string& bytes,
                                       const char* prefix = "contract") {
  auto p = st.make_temp_path(prefix);
  std::ofstream out{p, std::ios::binary};
  out << bytes;
  out.close();
  REQUIRE(out.good());
  return p;
}

inline std::string file_bytes(const std::filesystem::path& p) {
  std::ifstream in{p, std::ios::binary};
  return {std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
}

inline void put_get_stat(blob_store_backend& b) {
  auto& st = *b.store;
  auto key = blob_layout::original(11, 22, 33);
  auto bytes = payload(100000);
  auto info = st.put_bytes(key, bytes);
  CHECK(info.size == bytes.size());
  CHECK(st.exists(key));
  CHECK(st.read(key) == bytes);
  auto s = st.stat(key);
  REQUIRE(s);
  CHECK(s->size == bytes.size());
  CHECK(s->mtime > 0);
  CHECK(file_bytes(s->path) == bytes); // a whole local file
  CHECK(st.facts(key, 0)->size == bytes.size());
  CHECK_FALSE(st.facts(blob_layout::original(11, 22, 999), 0));
  // Another node reads the same bytes.
  auto other = b.other();
  CHECK(other->exists(key));
  CHECK(other->facts(key, 0)->size == bytes.size());
  CHECK(other->read(key) == bytes);
  auto os = other->stat(key);
  REQUIRE(os);
  CHECK(file_bytes(os->path) == bytes);
}

inline void put_file_consumes_the_temp_file(blob_store_backend& b) {
  auto& st = *b.store;
  auto key = blob_layout::master(11, 22, 34);
  auto bytes = payload(300000, 3);
  auto src = temp_file(st, bytes);
  auto info = st.put_file(key, src);
  CHECK(info.size == bytes.size());
  CHECK_FALSE(std::filesystem::exists(src));
  CHECK(b.other()->read(key) == bytes);
}

inline void put_upload_stores_original_and_master(blob_store_backend& b) {
  auto& st = *b.store;
  auto original = blob_layout::original(5, 6, 7);
  auto master = blob_layout::master(5, 6, 7);
  auto o = payload(4000, 5), m = payload(9000, 9);
  auto done = st.put_upload(original, temp_file(st, o), master,
                            temp_file(st, m), false);
  CHECK(done.original.size == o.size());
  REQUIRE(done.master);
  CHECK(done.master_error.empty());
  auto other = b.other();
  CHECK(other->read(original) == o);
  CHECK(other->read(master) == m);
}

inline void ranged_get(blob_store_backend& b) {
  auto& st = *b.store;
  auto key = blob_layout::derived(1, 2, 3, "mp3");
  auto bytes = payload(5000, 11);
  st.put_bytes(key, bytes);
  auto other = b.other();
  CHECK(other->read_range(key, 0, 9) == bytes.substr(0, 10));
  CHECK(other->read_range(key, 1000, 1999) == bytes.substr(1000, 1000));
  CHECK(other->read_range(key, 4990, 4999) == bytes.substr(4990));
  // A last byte past the end is cut to the end.
  CHECK(other->read_range(key, 4000, 999999) == bytes.substr(4000));
  CHECK_THROWS_AS(other->read_range(key, 5000, 5001),
                  persistence::storage_error);
}

inline void missing_objects(blob_store_backend& b) {
  auto& st = *b.store;
  auto key = blob_layout::original(404, 404, 404);
  CHECK_FALSE(st.exists(key));
  CHECK_FALSE(st.stat(key));
  CHECK_THROWS_AS(st.read(key), persistence::storage_error);
  CHECK_THROWS_AS(st.read_range(key, 0, 1), persistence::storage_error);
  CHECK_FALSE(st.remove(key));
  // Removing a revision or the other revisions of a recording that has
  // none is no error.
  CHECK_NOTHROW(st.remove_revision(404, 404, 404));
  CHECK_NOTHROW(st.remove_other_revisions(404, 404, 1));
}

inline void list_by_prefix(blob_store_backend& b) {
  auto& st = *b.store;
  st.put_bytes(blob_layout::original(1, 1, 10), "o1");
  st.put_bytes(blob_layout::master(1, 1, 10), "m1");
  st.put_bytes(blob_layout::derived(1, 1, 10, "mp3"), "mp3-bytes");
  st.put_bytes(blob_layout::derived(1, 1, 10, "ogg"), "ogg");
  st.put_bytes(blob_layout::master(1, 2, 20), "master without original");
  st.put_bytes(blob_layout::derived(3, 4, 30, "flac"), "f");
  auto other = b.other();
  std::set<std::tuple<int64_t, int64_t, int64_t, bool>> revs;
  for (auto& r : other->list_revisions())
    revs.emplace(r.user_id, r.phrase_id, r.revision, r.has_original);
  CHECK(revs
        == std::set<std::tuple<int64_t, int64_t, int64_t, bool>>{
          {1, 1, 10, true}, {1, 2, 20, false}, {3, 4, 30, false}});
  std::set<std::tuple<int64_t, int64_t, int64_t, std::string, uint64_t>> sub;
  for (auto& l : other->list_sub("cache"))
    sub.emplace(l.key.user_id, l.key.phrase_id, l.key.revision, l.key.name,
                l.info.size);
  CHECK(sub
        == std::set<std::tuple<int64_t, int64_t, int64_t, std::string,
                               uint64_t>>{{1, 1, 10, "cache/mp3", 9},
                                          {1, 1, 10, "cache/ogg", 3},
                                          {3, 4, 30, "cache/flac", 1}});
}

inline void delete_one(blob_store_backend& b) {
  auto& st = *b.store;
  auto key = blob_layout::derived(8, 8, 8, "opus");
  auto keep = blob_layout::original(8, 8, 8);
  st.put_bytes(key, "x");
  st.put_bytes(keep, "y");
  auto other = b.other();
  REQUIRE(other->read(key) == "x"); // the other node holds it too
  CHECK(st.remove(key));
  CHECK_FALSE(st.exists(key));
  CHECK_FALSE(other->exists(key));
  CHECK_FALSE(st.remove(key));
  CHECK(other->read(keep) == "y");
}

inline void delete_prefix(blob_store_backend& b) {
  auto& st = *b.store;
  for (int64_t rev : {100, 200, 300}) {
    st.put_bytes(blob_layout::original(9, 9, rev), "o");
    st.put_bytes(blob_layout::derived(9, 9, rev, "mp3"), "d");
  }
  st.put_bytes(blob_layout::original(9, 10, 100), "neighbour");
  st.remove_revision(9, 9, 100);
  auto other = b.other();
  CHECK_FALSE(other->exists(blob_layout::original(9, 9, 100)));
  CHECK_FALSE(other->exists(blob_layout::derived(9, 9, 100, "mp3")));
  CHECK(other->exists(blob_layout::original(9, 9, 200)));
  st.remove_other_revisions(9, 9, 300);
  CHECK_FALSE(other->exists(blob_layout::original(9, 9, 200)));
  CHECK_FALSE(other->exists(blob_layout::derived(9, 9, 200, "mp3")));
  CHECK(other->read(blob_layout::original(9, 9, 300)) == "o");
  CHECK(other->read(blob_layout::derived(9, 9, 300, "mp3")) == "d");
  CHECK(other->read(blob_layout::original(9, 10, 100)) == "neighbour");
  st.remove_other_revisions(9, 9, 0); // 0: every revision
  CHECK_FALSE(other->exists(blob_layout::original(9, 9, 300)));
  CHECK(other->exists(blob_layout::original(9, 10, 100)));
}

/// A reader on another node, while one key is replaced again and again,
/// only ever sees one whole version (never a mix or a prefix).
inline void put_is_atomic(blob_store_backend& b) {
  auto& st = *b.store;
  auto other = b.other();
  const size_t n = 1 << 20;
  std::vector<std::string> versions{std::string(n, 'a'),
                                    std::string(n + 4096, 'b')};
  // Each put is a new revision's object seen for the first time by the
  // reader, as happens when a recording is replaced.
  std::atomic<int64_t> written{0};
  std::atomic<bool> done{false};
  std::atomic<int> torn{0}, seen{0};
  std::thread reader{[&] {
    while (!done) {
      auto rev = written.load();
      if (rev == 0)
        continue;
      auto got = other->read(blob_layout::derived(2, 2, rev, "wav"));
      ++seen;
      auto& want = versions[static_cast<size_t>(rev % 2)];
      if (got != want)
        ++torn;
    }
  }};
  for (int64_t rev = 1; rev <= 8; ++rev) {
    st.put_file(blob_layout::derived(2, 2, rev, "wav"),
                temp_file(st, versions[static_cast<size_t>(rev % 2)]));
    written = rev;
  }
  done = true;
  reader.join();
  CHECK(seen > 0);
  CHECK(torn == 0);
}

/// Several writers put at once: writers of distinct keys all land; writers
/// of one key leave exactly one writer's bytes, on the writing node and on
/// every other node (not necessarily the same writer's: a node keeps what
/// it wrote, and Phonon only ever writes one key twice for a derived
/// format, whose bytes are equal). Where the server cannot take concurrent
/// writes of one key (`same_key_writers_atomic` false), they run one after
/// the other and the last one wins.
inline void concurrent_writers(blob_store_backend& b) {
  auto& st = *b.store;
  const int writers = 6;
  std::vector<std::string> bodies;
  for (int i = 0; i < writers; ++i)
    bodies.push_back(payload(200000 + 1000 * static_cast<size_t>(i),
                             static_cast<unsigned>(13 + i)));
  auto shared = blob_layout::master(4, 4, 4);
  auto derived = [](int i) {
    return blob_layout::derived(4, 4, 4, "w" + std::to_string(i));
  };
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int i = 0; i < writers; ++i)
    threads.emplace_back([&, i] {
      try {
        if (b.same_key_writers_atomic)
          st.put_file(shared, temp_file(st, bodies[static_cast<size_t>(i)]));
        st.put_bytes(derived(i), bodies[static_cast<size_t>(i)]);
      } catch (...) {
        ++failures;
      }
    });
  for (auto& t : threads)
    t.join();
  CHECK(failures == 0);
  if (!b.same_key_writers_atomic)
    for (int i = 0; i < writers; ++i)
      st.put_file(shared, temp_file(st, bodies[static_cast<size_t>(i)]));
  auto other = b.other();
  auto one_whole_body = [&](const std::string& got) {
    return std::count(bodies.begin(), bodies.end(), got) == 1;
  };
  CHECK(one_whole_body(other->read(shared)));
  CHECK(one_whole_body(st.read(shared)));
  if (!b.same_key_writers_atomic)
    CHECK(other->read(shared) == bodies.back());
  for (int i = 0; i < writers; ++i)
    CHECK(other->read(derived(i)) == bodies[static_cast<size_t>(i)]);
}

} // namespace phonon::contract

/// Registers every contract case for `Fixture` (a default-constructible
/// blob_store_backend); `name` prefixes the case names.
#define PHONON_BLOB_STORE_CONTRACT(Fixture, name, tags)                        \
  TEST_CASE_METHOD(Fixture, name ": put, get and stat", tags) {               \
    phonon::contract::put_get_stat(*this);                                     \
  }                                                                            \
  TEST_CASE_METHOD(Fixture, name ": put_file consumes its temp file", tags) { \
    phonon::contract::put_file_consumes_the_temp_file(*this);                  \
  }                                                                            \
  TEST_CASE_METHOD(Fixture, name ": put_upload stores original and master",   \
                   tags) {                                                     \
    phonon::contract::put_upload_stores_original_and_master(*this);            \
  }                                                                            \
  TEST_CASE_METHOD(Fixture, name ": ranged get", tags) {                      \
    phonon::contract::ranged_get(*this);                                       \
  }                                                                            \
  TEST_CASE_METHOD(Fixture, name ": missing objects", tags) {                 \
    phonon::contract::missing_objects(*this);                                  \
  }                                                                            \
  TEST_CASE_METHOD(Fixture, name ": list by prefix", tags) {                  \
    phonon::contract::list_by_prefix(*this);                                   \
  }                                                                            \
  TEST_CASE_METHOD(Fixture, name ": delete", tags) {                          \
    phonon::contract::delete_one(*this);                                       \
  }                                                                            \
  TEST_CASE_METHOD(Fixture, name ": delete by prefix (revisions)", tags) {    \
    phonon::contract::delete_prefix(*this);                                    \
  }                                                                            \
  TEST_CASE_METHOD(Fixture, name ": a put is seen whole or not at all",       \
                   tags) {                                                     \
    phonon::contract::put_is_atomic(*this);                                    \
  }                                                                            \
  TEST_CASE_METHOD(Fixture, name ": concurrent writers", tags) {              \
    phonon::contract::concurrent_writers(*this);                               \
  }
