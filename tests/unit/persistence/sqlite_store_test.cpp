#include <catch2/catch.hpp>

#include <sqlite3.h>

#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "persistence/migrations.hpp"
#include "persistence/recording_store.hpp"
#include "tests/unit/temp_dir.hpp"

using namespace phonon::persistence;

namespace fs = std::filesystem;

namespace {


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
  phonon::testing::temp_dir dir{"phonon-sqlite-test"};
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
  phonon::testing::temp_dir dir{"phonon-sqlite-test"};
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

// The behaviour both stores share (insert, duplicate, upsert, mark_ready,
// mark_failed, list, remove, list_processing) is tested once for both in
// store_contract_test.cpp; this file keeps what is SQLite's own.

TEST_CASE("reopening a file database keeps the rows", "[unit][persistence]") {
  phonon::testing::temp_dir dir{"phonon-sqlite-test"};
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
  phonon::testing::temp_dir dir{"phonon-sqlite-test"};
  // The path names a folder, which SQLite cannot open as a database.
  CHECK_THROWS_AS(open_sqlite_store(dir.path.string()), db_error);
}
