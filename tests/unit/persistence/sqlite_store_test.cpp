#include <catch2/catch.hpp>

#include <sqlite3.h>

#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "persistence/migrations.hpp"
#include "persistence/recording_store.hpp"

using namespace phonon::persistence;

namespace fs = std::filesystem;

namespace {

/// A fresh folder under the system temp dir, removed at scope exit.
struct temp_folder {
  fs::path path;

  temp_folder() {
    std::random_device rd;
    path = fs::temp_directory_path()
           / ("phonon-sqlite-test-" + std::to_string(rd()) + "-"
              + std::to_string(rd()));
    fs::create_directories(path);
  }

  ~temp_folder() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

/// A raw connection for looking at the file behind the store's back.
struct raw_db {
  sqlite3* db = nullptr;

  explicit raw_db(const fs::path& file) {
    REQUIRE(sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READONLY, nullptr)
            == SQLITE_OK);
  }

  ~raw_db() {
    sqlite3_close_v2(db);
  }

  /// Runs `sql` and returns every row as text columns joined by '|'.
  std::vector<std::string> rows(const std::string& sql) {
    sqlite3_stmt* st = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr)
            == SQLITE_OK);
    std::vector<std::string> result;
    while (sqlite3_step(st) == SQLITE_ROW) {
      std::string row;
      for (int i = 0; i < sqlite3_column_count(st); ++i) {
        if (i > 0)
          row += '|';
        auto p = sqlite3_column_text(st, i);
        row += p ? reinterpret_cast<const char*>(p) : "NULL";
      }
      result.push_back(row);
    }
    sqlite3_finalize(st);
    return result;
  }
};

recording make_recording(int64_t user, int64_t phrase) {
  recording r;
  r.user_id = user;
  r.phrase_id = phrase;
  r.revision = 1000 + phrase;
  r.status = recording_status::processing;
  r.original_format = "m4a";
  r.original_filename = "hello world.m4a";
  r.size_bytes = 12345;
  r.duration_ms = 0;
  r.sample_rate = 0;
  r.channels = 0;
  r.created_at = 1700000000000 + phrase;
  r.updated_at = 1700000000000 + phrase;
  return r;
}

void require_same(const recording& x, const recording& y) {
  REQUIRE(x.user_id == y.user_id);
  REQUIRE(x.phrase_id == y.phrase_id);
  REQUIRE(x.revision == y.revision);
  REQUIRE(to_string(x.status) == std::string{to_string(y.status)});
  REQUIRE(x.original_format == y.original_format);
  REQUIRE(x.original_filename == y.original_filename);
  REQUIRE(x.size_bytes == y.size_bytes);
  REQUIRE(x.duration_ms == y.duration_ms);
  REQUIRE(x.sample_rate == y.sample_rate);
  REQUIRE(x.channels == y.channels);
  REQUIRE(x.created_at == y.created_at);
  REQUIRE(x.updated_at == y.updated_at);
  REQUIRE(x.error == y.error);
}

std::vector<int64_t> phrases_of(const std::vector<recording>& xs) {
  std::vector<int64_t> result;
  for (auto& x : xs)
    result.push_back(x.phrase_id);
  return result;
}

std::unique_ptr<recording_store> memory_store() {
  auto store = open_sqlite_store(":memory:");
  store->migrate();
  return store;
}

} // namespace

TEST_CASE("status text round-trips and rejects unknown text",
          "[unit][persistence]") {
  for (auto s : {recording_status::processing, recording_status::ready,
                 recording_status::failed})
    CHECK(status_from_string(to_string(s)) == s);
  CHECK(std::string{to_string(recording_status::ready)} == "ready");
  CHECK_THROWS_AS(status_from_string("done"), db_error);
  CHECK_THROWS_AS(status_from_string(""), db_error);
}

TEST_CASE("migrate twice is a no-op and records each migration once",
          "[unit][persistence]") {
  temp_folder dir;
  auto file = dir.path / "sub" / "phonon.db"; // parent folder is missing
  auto store = open_sqlite_store(file.string());
  REQUIRE(fs::exists(file));
  store->migrate();
  REQUIRE(store->insert(make_recording(1, 1)));
  std::vector<std::string> first;
  {
    raw_db raw{file};
    first = raw.rows("SELECT version, name, applied_at FROM schema_migrations "
                     "ORDER BY version");
  }
  REQUIRE(first.size() == sqlite_migrations().size());
  REQUIRE_FALSE(first.empty());
  CHECK(first[0].rfind("1|001_create_recordings|", 0) == 0);
  store->migrate();
  raw_db raw{file};
  CHECK(raw.rows("SELECT version, name, applied_at FROM schema_migrations "
                 "ORDER BY version")
        == first);
  // The second run neither failed nor recreated the table.
  CHECK(raw.rows("SELECT COUNT(*) FROM recordings")
        == std::vector<std::string>{"1"});
}

TEST_CASE("migrate twice on an in-memory database", "[unit][persistence]") {
  auto store = open_sqlite_store(":memory:");
  CHECK_THROWS_AS(store->get(1, 1), db_error); // no table before migrate
  store->migrate();
  REQUIRE_NOTHROW(store->migrate());
  CHECK_FALSE(store->get(1, 1).has_value());
  CHECK(store->ping());
}

TEST_CASE("a file database uses WAL and the recovery query uses an index",
          "[unit][persistence]") {
  temp_folder dir;
  auto file = dir.path / "phonon.db";
  auto store = open_sqlite_store(file.string());
  store->migrate();
  raw_db raw{file};
  CHECK(raw.rows("PRAGMA journal_mode") == std::vector<std::string>{"wal"});
  auto plan = raw.rows("EXPLAIN QUERY PLAN SELECT * FROM recordings "
                       "WHERE status = 'processing'");
  REQUIRE_FALSE(plan.empty());
  CHECK(plan[0].find("USING INDEX") != std::string::npos);
}

TEST_CASE("insert then get returns every field", "[unit][persistence]") {
  auto store = memory_store();
  auto r = make_recording(7, 42);
  r.revision = 987654321012345;
  r.status = recording_status::failed;
  r.original_format = "wav";
  r.original_filename = "Übung – 1.wav";
  r.size_bytes = 5000000000; // more than 32 bits
  r.duration_ms = 3021;
  r.sample_rate = 44100;
  r.channels = 2;
  r.created_at = 1710000000123;
  r.updated_at = 1710000000456;
  r.error = "decoder said no";
  REQUIRE(store->insert(r));
  auto got = store->get(7, 42);
  REQUIRE(got.has_value());
  require_same(*got, r);
  CHECK_FALSE(store->get(7, 43).has_value());
  CHECK_FALSE(store->get(8, 42).has_value());
}

TEST_CASE("duplicate insert returns false and keeps the first row",
          "[unit][persistence]") {
  auto store = memory_store();
  auto first = make_recording(1, 2);
  REQUIRE(store->insert(first));
  auto second = make_recording(1, 2);
  second.revision = 99;
  second.original_format = "mp3";
  second.size_bytes = 1;
  CHECK_FALSE(store->insert(second));
  auto got = store->get(1, 2);
  REQUIRE(got.has_value());
  require_same(*got, first);
}

TEST_CASE("upsert returns the old row and replaces the fields",
          "[unit][persistence]") {
  auto store = memory_store();
  auto first = make_recording(3, 4);
  CHECK_FALSE(store->upsert(first).has_value()); // inserted
  require_same(store->get(3, 4).value(), first);
  auto second = make_recording(3, 4);
  second.revision = first.revision + 1;
  second.original_format = "ogg";
  second.original_filename = "take2.ogg";
  second.size_bytes = 777;
  second.created_at = first.created_at + 5000;
  second.updated_at = first.updated_at + 5000;
  auto old = store->upsert(second);
  REQUIRE(old.has_value());
  require_same(*old, first);
  auto got = store->get(3, 4);
  REQUIRE(got.has_value());
  // A replace keeps the recording's creation time.
  auto expected = second;
  expected.created_at = first.created_at;
  require_same(*got, expected);
}

TEST_CASE("mark_ready applies only to the current revision",
          "[unit][persistence]") {
  auto store = memory_store();
  auto r = make_recording(1, 1);
  r.error = "old error";
  REQUIRE(store->insert(r));
  CHECK_FALSE(store->mark_ready(1, 1, r.revision - 1, 3000, 48000, 1, 99));
  require_same(store->get(1, 1).value(), r);
  CHECK_FALSE(store->mark_ready(1, 2, r.revision, 3000, 48000, 1, 99));
  REQUIRE(store->mark_ready(1, 1, r.revision, 3000, 48000, 1, 1234567));
  auto got = store->get(1, 1).value();
  CHECK(got.status == recording_status::ready);
  CHECK(got.duration_ms == 3000);
  CHECK(got.sample_rate == 48000);
  CHECK(got.channels == 1);
  CHECK(got.updated_at == 1234567);
  CHECK(got.created_at == r.created_at);
  CHECK(got.revision == r.revision);
  CHECK(got.error.empty());
}

TEST_CASE("mark_failed stores the error", "[unit][persistence]") {
  auto store = memory_store();
  auto r = make_recording(1, 1);
  REQUIRE(store->insert(r));
  CHECK_FALSE(store->mark_failed(1, 1, r.revision + 1, "stale", 50));
  require_same(store->get(1, 1).value(), r);
  REQUIRE(store->mark_failed(1, 1, r.revision, "no audio stream", 4242));
  auto got = store->get(1, 1).value();
  CHECK(got.status == recording_status::failed);
  CHECK(got.error == "no audio stream");
  CHECK(got.updated_at == 4242);
  CHECK(got.original_format == r.original_format);
}

TEST_CASE("list pages by phrase id for one user", "[unit][persistence]") {
  auto store = memory_store();
  for (int64_t phrase : {5, 1, 9, 3, 7})
    REQUIRE(store->insert(make_recording(1, phrase)));
  REQUIRE(store->insert(make_recording(2, 2)));
  REQUIRE(store->insert(make_recording(2, 4)));
  using ids = std::vector<int64_t>;
  CHECK(phrases_of(store->list(1, 0, 100)) == ids{1, 3, 5, 7, 9});
  CHECK(phrases_of(store->list(1, 0, 2)) == ids{1, 3});
  CHECK(phrases_of(store->list(1, 3, 2)) == ids{5, 7});
  CHECK(phrases_of(store->list(1, 7, 2)) == ids{9});
  CHECK(phrases_of(store->list(1, 9, 2)).empty());
  CHECK(phrases_of(store->list(1, 4, 100)) == ids{5, 7, 9});
  CHECK(phrases_of(store->list(2, 0, 100)) == ids{2, 4});
  CHECK(store->list(3, 0, 100).empty());
  CHECK(store->list(1, 0, 0).empty());
  auto rows = store->list(2, 2, 1);
  REQUIRE(rows.size() == 1);
  require_same(rows[0], make_recording(2, 4));
}

TEST_CASE("remove returns the deleted row", "[unit][persistence]") {
  auto store = memory_store();
  auto r = make_recording(1, 1);
  REQUIRE(store->insert(r));
  REQUIRE(store->insert(make_recording(1, 2)));
  auto removed = store->remove(1, 1);
  REQUIRE(removed.has_value());
  require_same(*removed, r);
  CHECK_FALSE(store->get(1, 1).has_value());
  CHECK(store->get(1, 2).has_value());
  CHECK_FALSE(store->remove(1, 1).has_value());
  // The key is free again.
  CHECK(store->insert(r));
}

TEST_CASE("list_processing returns every processing row",
          "[unit][persistence]") {
  auto store = memory_store();
  REQUIRE(store->insert(make_recording(2, 1)));
  REQUIRE(store->insert(make_recording(1, 5)));
  auto ready = make_recording(1, 6);
  ready.status = recording_status::ready;
  REQUIRE(store->insert(ready));
  REQUIRE(store->insert(make_recording(1, 7)));
  REQUIRE(store->mark_failed(1, 7, make_recording(1, 7).revision, "x", 1));
  auto rows = store->list_processing();
  REQUIRE(rows.size() == 2);
  CHECK(rows[0].user_id == 1);
  CHECK(rows[0].phrase_id == 5);
  CHECK(rows[1].user_id == 2);
  CHECK(rows[1].phrase_id == 1);
  for (auto& r : rows)
    CHECK(r.status == recording_status::processing);
}

TEST_CASE("reopening a file database keeps the rows", "[unit][persistence]") {
  temp_folder dir;
  auto file = (dir.path / "phonon.db").string();
  auto r = make_recording(11, 22);
  {
    auto store = open_sqlite_store(file);
    store->migrate();
    REQUIRE(store->insert(r));
    REQUIRE(store->mark_ready(11, 22, r.revision, 1500, 16000, 1, 777));
  }
  auto store = open_sqlite_store(file);
  store->migrate();
  auto got = store->get(11, 22);
  REQUIRE(got.has_value());
  CHECK(got->status == recording_status::ready);
  CHECK(got->duration_ms == 1500);
  CHECK(got->original_filename == r.original_filename);
  CHECK(store->ping());
}

TEST_CASE("opening an unusable path throws db_error", "[unit][persistence]") {
  temp_folder dir;
  // The path names a folder, which SQLite cannot open as a database.
  CHECK_THROWS_AS(open_sqlite_store(dir.path.string()), db_error);
}
