// One contract for every recording_store: each case below is a function of a
// `backend` and is registered twice, once on a SQLite file and once on a
// real MySQL/MariaDB server.
//
// - "sqlite store: ..." cases carry [unit][persistence][sqlite] and run with
//   the unit tests.
// - "mysql store: ..." cases carry [.mysql][persistence]: hidden from a run
//   without filter, selected by "[mysql]". They need the
//   APP_DATABASE_MYSQL_* variables and FAIL without them (never skip):
//     scripts/with-mysql.sh build/phonon_unit_tests "[mysql]"

#include <catch2/catch.hpp>

#include <cppconn/connection.h>
#include <cppconn/exception.h>
#include <cppconn/resultset.h>
#include <cppconn/resultset_metadata.h>
#include <cppconn/statement.h>
#include <mysql_driver.h>
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "persistence/migrations.hpp"
#include "persistence/recording_store.hpp"

using namespace phonon::persistence;

namespace fs = std::filesystem;

namespace {

// -- shared helpers ---------------------------------------------------------

recording make_recording(int64_t user, int64_t phrase) {
  recording r;
  r.user_id = user;
  r.phrase_id = phrase;
  r.revision = 1000 + phrase;
  r.status = recording_status::processing;
  r.original_format = "m4a";
  r.original_filename = "hello world.m4a";
  r.size_bytes = 12345;
  r.created_at = 1700000000000 + phrase;
  r.updated_at = 1700000000000 + phrase;
  return r;
}

void require_same(const recording& x, const recording& y) {
  REQUIRE(x.user_id == y.user_id);
  REQUIRE(x.phrase_id == y.phrase_id);
  REQUIRE(x.revision == y.revision);
  REQUIRE(std::string{to_string(x.status)} == to_string(y.status));
  REQUIRE(x.original_format == y.original_format);
  REQUIRE(x.original_filename == y.original_filename);
  REQUIRE(x.size_bytes == y.size_bytes);
  REQUIRE(x.duration_ms == y.duration_ms);
  REQUIRE(x.sample_rate == y.sample_rate);
  REQUIRE(x.channels == y.channels);
  REQUIRE(x.created_at == y.created_at);
  REQUIRE(x.updated_at == y.updated_at);
  REQUIRE(x.error == y.error);
  REQUIRE(x.serve_original == y.serve_original);
}

std::vector<int64_t> phrases_of(const std::vector<recording>& xs) {
  std::vector<int64_t> result;
  for (auto& x : xs)
    result.push_back(x.phrase_id);
  return result;
}

// -- backends ---------------------------------------------------------------

/// A database for one test case, empty and migrated when the case starts.
class backend {
public:
  virtual ~backend() = default;

  /// A new store on this database, migrated.
  virtual std::unique_ptr<recording_store> open() = 0;

  /// Removes every table and returns a store that has not migrated yet.
  virtual std::unique_ptr<recording_store> open_unmigrated() = 0;

  /// Runs `sql` on a separate connection; each row's columns joined by '|'.
  virtual std::vector<std::string> rows(const std::string& sql) = 0;

  /// True when one store object may be used by several threads at once.
  virtual bool thread_safe_store() const = 0;

  /// The embedded migrations of this dialect.
  virtual const std::vector<migration>& migrations() const = 0;
};

/// A fresh SQLite file in its own temp folder.
class sqlite_backend final : public backend {
public:
  sqlite_backend() {
    std::random_device rd;
    dir_ = fs::temp_directory_path()
           / ("phonon-contract-" + std::to_string(rd()) + "-"
              + std::to_string(rd()));
    fs::create_directories(dir_);
    file_ = dir_ / "phonon.db";
  }

  ~sqlite_backend() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  std::unique_ptr<recording_store> open() override {
    auto store = open_sqlite_store(file_.string());
    store->migrate();
    return store;
  }

  std::unique_ptr<recording_store> open_unmigrated() override {
    file_ = dir_ / ("fresh-" + std::to_string(++fresh_) + ".db");
    return open_sqlite_store(file_.string());
  }

  std::vector<std::string> rows(const std::string& sql) override {
    sqlite3* db = nullptr;
    auto rc = sqlite3_open_v2(file_.c_str(), &db, SQLITE_OPEN_READONLY,
                              nullptr);
    std::unique_ptr<sqlite3, int (*)(sqlite3*)> guard{db, sqlite3_close_v2};
    REQUIRE(rc == SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr)
            == SQLITE_OK);
    std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> st_guard{
      st, sqlite3_finalize};
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
    return result;
  }

  bool thread_safe_store() const override {
    return false;
  }

  const std::vector<migration>& migrations() const override {
    return sqlite_migrations();
  }

private:
  fs::path dir_;
  fs::path file_;
  int fresh_ = 0;
};

/// Reads the APP_DATABASE_MYSQL_* variables that scripts/with-mysql.sh
/// exports; fails the case when they are missing.
mysql_options mysql_options_from_env() {
  auto env = [](const char* name) -> std::string {
    auto value = std::getenv(name);
    return value != nullptr ? value : "";
  };
  auto host = env("APP_DATABASE_MYSQL_HOST");
  if (host.empty())
    FAIL("APP_DATABASE_MYSQL_HOST is not set: the [mysql] cases need a "
         "server; run them as scripts/with-mysql.sh phonon_unit_tests "
         "\"[mysql]\"");
  mysql_options opts;
  opts.host = host;
  auto port = env("APP_DATABASE_MYSQL_PORT");
  if (!port.empty())
    opts.port = static_cast<uint16_t>(std::stoi(port));
  opts.database = env("APP_DATABASE_MYSQL_DATABASE");
  opts.username = env("APP_DATABASE_MYSQL_USERNAME");
  opts.password = env("APP_DATABASE_MYSQL_PASSWORD");
  // The cases drop and empty tables: never let them near a real database
  // that happens to be configured in the shell.
  if (opts.database.find("test") == std::string::npos)
    FAIL("APP_DATABASE_MYSQL_DATABASE='" << opts.database
                                         << "' does not look like a test "
                                            "database (no 'test' in it)");
  opts.pool_size = 2; // fewer connections than writer threads below
  return opts;
}

/// A plain Connector/C++ connection of the test, beside the store's.
class raw_mysql {
public:
  explicit raw_mysql(const mysql_options& opts) {
    sql::ConnectOptionsMap props;
    props["hostName"] = sql::SQLString{"tcp://" + opts.host + ":"
                                       + std::to_string(opts.port)};
    props["userName"] = sql::SQLString{opts.username};
    props["password"] = sql::SQLString{opts.password};
    props["schema"] = sql::SQLString{opts.database};
    props["OPT_CHARSET_NAME"] = sql::SQLString{"utf8mb4"};
    props["OPT_CONNECT_TIMEOUT"] = 3;
    try {
      conn_.reset(sql::mysql::get_mysql_driver_instance()->connect(props));
    } catch (const sql::SQLException& e) {
      FAIL("cannot connect to MySQL at " << opts.host << ":" << opts.port
                                         << ": " << e.what());
    }
  }

  void execute(const std::string& sql) {
    std::unique_ptr<sql::Statement> st{conn_->createStatement()};
    st->execute(sql);
  }

  std::vector<std::string> rows(const std::string& sql) {
    std::unique_ptr<sql::Statement> st{conn_->createStatement()};
    std::unique_ptr<sql::ResultSet> rs{st->executeQuery(sql)};
    auto columns = rs->getMetaData()->getColumnCount();
    std::vector<std::string> result;
    while (rs->next()) {
      std::string row;
      for (unsigned i = 1; i <= columns; ++i) {
        if (i > 1)
          row += '|';
        row += rs->isNull(i) ? std::string{"NULL"}
                             : rs->getString(i).asStdString();
      }
      result.push_back(row);
    }
    return result;
  }

  /// Connection ids of the store's user, except this connection.
  std::vector<std::string> other_connections() {
    return rows("SELECT ID FROM information_schema.PROCESSLIST "
                "WHERE USER = SUBSTRING_INDEX(CURRENT_USER(), '@', 1) "
                "AND ID <> CONNECTION_ID() "
                "ORDER BY ID");
  }

private:
  std::unique_ptr<sql::Connection> conn_;
};

/// The server of APP_DATABASE_MYSQL_*, its `recordings` emptied.
class mysql_backend final : public backend {
public:
  mysql_backend() : opts_(mysql_options_from_env()), raw_(opts_) {
    open(); // creates the tables when missing
    raw_.execute("DELETE FROM recordings");
  }

  std::unique_ptr<recording_store> open() override {
    auto store = open_mysql_store(opts_);
    store->migrate();
    return store;
  }

  std::unique_ptr<recording_store> open_unmigrated() override {
    raw_.execute("DROP TABLE IF EXISTS recordings, schema_migrations");
    return open_mysql_store(opts_);
  }

  std::vector<std::string> rows(const std::string& sql) override {
    return raw_.rows(sql);
  }

  bool thread_safe_store() const override {
    return true;
  }

  const std::vector<migration>& migrations() const override {
    return mysql_migrations();
  }

  const mysql_options& options() const {
    return opts_;
  }

  raw_mysql& raw() {
    return raw_;
  }

private:
  mysql_options opts_;
  raw_mysql raw_;
};

// -- the contract -----------------------------------------------------------

void insert_then_get(backend& b) {
  auto store = b.open();
  auto r = make_recording(7, 42);
  r.revision = 987654321012345;
  r.status = recording_status::failed;
  r.original_format = "wav";
  // Long, and with 2-, 3- and 4-byte UTF-8 (the last needs utf8mb4).
  r.original_filename.clear();
  for (int i = 0; i < 40; ++i)
    r.original_filename += "Übung – 練習 🎤 ";
  r.original_filename += ".wav";
  REQUIRE(r.original_filename.size() > 800);
  r.size_bytes = 5000000000; // more than 32 bits
  r.duration_ms = 3021;
  r.sample_rate = 44100;
  r.channels = 2;
  r.created_at = 1710000000123;
  r.updated_at = 1710000000456;
  r.serve_original = true;
  r.error = "decoder said no";
  REQUIRE(store->insert(r));
  auto got = store->get(7, 42);
  REQUIRE(got.has_value());
  require_same(*got, r);
  // A second store sees the committed row.
  auto other = b.open();
  auto seen = other->get(7, 42);
  REQUIRE(seen.has_value());
  require_same(*seen, r);
}

void get_missing_row(backend& b) {
  auto store = b.open();
  REQUIRE(store->insert(make_recording(7, 42)));
  CHECK_FALSE(store->get(7, 43).has_value());
  CHECK_FALSE(store->get(8, 42).has_value());
  CHECK_FALSE(store->get(42, 7).has_value());
}

void duplicate_insert(backend& b) {
  auto store = b.open();
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
  // The store is still usable after the constraint error.
  CHECK(store->insert(make_recording(1, 3)));
}

void upsert_old_and_new(backend& b) {
  auto store = b.open();
  auto first = make_recording(3, 4);
  first.error = "";
  CHECK_FALSE(store->upsert(first).has_value()); // inserted
  require_same(store->get(3, 4).value(), first);
  auto second = make_recording(3, 4);
  second.revision = first.revision + 1;
  second.status = recording_status::ready;
  second.original_format = "ogg";
  second.original_filename = "take2.ogg";
  second.size_bytes = 777;
  second.duration_ms = 1500;
  second.sample_rate = 22050;
  second.channels = 1;
  second.created_at = first.created_at + 5000;
  second.updated_at = first.updated_at + 5000;
  second.error = "kept as given";
  auto old = store->upsert(second);
  REQUIRE(old.has_value());
  require_same(*old, first);
  auto got = store->get(3, 4);
  REQUIRE(got.has_value());
  // A replace keeps the recording's creation time.
  auto expected = second;
  expected.created_at = first.created_at;
  require_same(*got, expected);
  // Other rows are untouched.
  CHECK_FALSE(store->get(3, 5).has_value());
}

void mark_ready_revisions(backend& b) {
  auto store = b.open();
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
  // Repeating the same completion still matches the row (a store must
  // count matched rows, not changed ones).
  CHECK(store->mark_ready(1, 1, r.revision, 3000, 48000, 1, 1234567));
}

void mark_failed_error(backend& b) {
  auto store = b.open();
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
  CHECK(got.revision == r.revision);
}

void list_pages(backend& b) {
  auto store = b.open();
  for (int64_t phrase : {5, 1, 9, 3, 7})
    REQUIRE(store->insert(make_recording(1, phrase)));
  REQUIRE(store->insert(make_recording(2, 2)));
  REQUIRE(store->insert(make_recording(2, 4)));
  using ids = std::vector<int64_t>;
  CHECK(phrases_of(store->list(1, 0, 100)) == ids{1, 3, 5, 7, 9});
  CHECK(phrases_of(store->list(1, 0, 2)) == ids{1, 3});
  CHECK(phrases_of(store->list(1, 3, 2)) == ids{5, 7});
  CHECK(phrases_of(store->list(1, 7, 2)) == ids{9});
  CHECK(store->list(1, 9, 2).empty());
  CHECK(phrases_of(store->list(1, 4, 100)) == ids{5, 7, 9});
  CHECK(phrases_of(store->list(2, 0, 100)) == ids{2, 4});
  CHECK(store->list(3, 0, 100).empty());
  CHECK(store->list(1, 0, 0).empty());
  CHECK(store->list(1, 0, -1).empty());
  auto rows = store->list(2, 2, 1);
  REQUIRE(rows.size() == 1);
  require_same(rows[0], make_recording(2, 4));
}

void remove_row(backend& b) {
  auto store = b.open();
  auto r = make_recording(1, 1);
  REQUIRE(store->insert(r));
  REQUIRE(store->insert(make_recording(1, 2)));
  auto removed = store->remove(1, 1);
  REQUIRE(removed.has_value());
  require_same(*removed, r);
  CHECK_FALSE(store->get(1, 1).has_value());
  CHECK(store->get(1, 2).has_value());
  CHECK_FALSE(store->remove(1, 1).has_value());
  CHECK_FALSE(store->remove(9, 9).has_value());
  // The key is free again.
  CHECK(store->insert(r));
}

void list_processing_rows(backend& b) {
  auto store = b.open();
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

void list_all_pages(backend& b) {
  auto store = b.open();
  for (auto [u, p] : {std::pair<int64_t, int64_t>{2, 1}, {1, 7}, {1, 5},
                      {3, 2}, {2, 9}})
    REQUIRE(store->insert(make_recording(u, p)));
  std::vector<std::pair<int64_t, int64_t>> seen;
  int64_t after_user = 0;
  int64_t after_phrase = 0;
  for (int page = 0; page < 10; ++page) {
    auto rows = store->list_all(after_user, after_phrase, 2);
    CHECK(rows.size() <= 2);
    if (rows.empty())
      break;
    for (auto& r : rows)
      seen.emplace_back(r.user_id, r.phrase_id);
    after_user = rows.back().user_id;
    after_phrase = rows.back().phrase_id;
  }
  CHECK(seen
        == std::vector<std::pair<int64_t, int64_t>>{
          {1, 5}, {1, 7}, {2, 1}, {2, 9}, {3, 2}});
  CHECK(store->list_all(0, 0, 0).empty());
  CHECK(store->list_all(3, 2, 10).empty());
}

void migrate_twice(backend& b) {
  auto store = b.open_unmigrated();
  CHECK_THROWS_AS(store->get(1, 1), db_error); // no table before migrate
  store->migrate();
  REQUIRE(store->insert(make_recording(1, 1)));
  auto query = "SELECT version, name, applied_at FROM schema_migrations "
               "ORDER BY version";
  auto first = b.rows(query);
  REQUIRE(first.size() == b.migrations().size());
  REQUIRE_FALSE(first.empty());
  CHECK(first[0].rfind("1|001_create_recordings|", 0) == 0);
  REQUIRE_NOTHROW(store->migrate());
  REQUIRE_NOTHROW(b.open()->migrate()); // another store object, too
  CHECK(b.rows(query) == first);
  // The second run neither failed nor recreated the table.
  CHECK(b.rows("SELECT COUNT(*) FROM recordings")
        == std::vector<std::string>{"1"});
  CHECK(store->ping());
}

void concurrent_writers(backend& b) {
  constexpr int threads = 4;
  constexpr int rows_per_thread = 50;
  // The MySQL store is shared by every thread; a SQLite store is not
  // thread-safe, so each thread opens its own on the same file (writers
  // then wait for each other through the busy timeout).
  std::unique_ptr<recording_store> shared;
  if (b.thread_safe_store())
    shared = b.open();
  else
    b.open(); // migrate once before the threads start
  std::vector<std::unique_ptr<recording_store>> own(threads);
  if (!shared)
    for (auto& s : own)
      s = b.open();
  std::mutex mtx;
  std::vector<std::string> failures;
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      auto& store = shared ? *shared : *own[t];
      for (int i = 1; i <= rows_per_thread; ++i) {
        try {
          auto r = make_recording(100 + t, i);
          if (!store.insert(r))
            throw db_error("insert returned false");
          if (!store.get(r.user_id, r.phrase_id))
            throw db_error("row not found after insert");
        } catch (const std::exception& e) {
          std::lock_guard<std::mutex> guard{mtx};
          failures.push_back("thread " + std::to_string(t) + " row "
                             + std::to_string(i) + ": " + e.what());
        }
      }
    });
  }
  for (auto& w : workers)
    w.join();
  INFO("first failure: " << (failures.empty() ? "" : failures.front()));
  CHECK(failures.empty());
  auto reader = b.open();
  for (int t = 0; t < threads; ++t) {
    auto rows = reader->list(100 + t, 0, 1000);
    CHECK(rows.size() == static_cast<size_t>(rows_per_thread));
  }
  CHECK(b.rows("SELECT COUNT(*) FROM recordings")
        == std::vector<std::string>{std::to_string(threads
                                                   * rows_per_thread)});
}

// -- MySQL only -------------------------------------------------------------

void reconnect_after_kill(mysql_backend& b) {
  auto store = b.open();
  REQUIRE(store->insert(make_recording(1, 1)));
  // Two threads at once make the pool open both of its connections.
  {
    std::thread other{[&] {
      try {
        store->list(1, 0, 10);
      } catch (...) {
        // checked through the connection count below
      }
    }};
    store->list(1, 0, 10);
    other.join();
  }
  auto kill_all = [&b] {
    auto ids = b.raw().other_connections();
    REQUIRE_FALSE(ids.empty());
    for (auto& id : ids)
      b.raw().execute("KILL CONNECTION " + id); // ids are server numbers
    // KILL returns before the victim is gone; wait until it is.
    for (int i = 0; i < 100; ++i) {
      auto now = b.raw().other_connections();
      if (std::none_of(now.begin(), now.end(), [&](const std::string& x) {
            return std::find(ids.begin(), ids.end(), x) != ids.end();
          }))
        break;
      std::this_thread::sleep_for(std::chrono::milliseconds{20});
    }
    return ids;
  };
  auto killed = kill_all();
  REQUIRE(b.raw().other_connections().empty());
  // Every call after the kill succeeds: the store drops the dead
  // connection, reconnects and runs the statement again.
  auto got = store->get(1, 1);
  REQUIRE(got.has_value());
  require_same(*got, make_recording(1, 1));
  CHECK(store->insert(make_recording(1, 2)));
  CHECK(store->list(1, 0, 10).size() == 2);
  CHECK(store->ping());
  auto now = b.raw().other_connections();
  REQUIRE_FALSE(now.empty());
  for (auto& id : now)
    CHECK(std::find(killed.begin(), killed.end(), id) == killed.end());
  // Also in the middle of the transactional calls.
  kill_all();
  auto replaced = make_recording(1, 2);
  replaced.revision += 1;
  auto old = store->upsert(replaced);
  REQUIRE(old.has_value());
  CHECK(old->revision == make_recording(1, 2).revision);
  kill_all();
  CHECK(store->remove(1, 1).has_value());
  CHECK(store->list(1, 0, 10).size() == 1);
}

void unreachable_server(mysql_backend& b) {
  auto opts = b.options();
  opts.port = 1; // nothing listens there
  auto start = std::chrono::steady_clock::now();
  CHECK_THROWS_AS(open_mysql_store(opts), db_error);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds{5});
  opts = b.options();
  opts.password = "wrong";
  CHECK_THROWS_AS(open_mysql_store(opts), db_error);
  opts = b.options();
  opts.pool_size = 0;
  CHECK_THROWS_AS(open_mysql_store(opts), db_error);
}

} // namespace

// Each contract case twice: on SQLite with the unit tests, on MySQL hidden
// behind [mysql] (the leading dot keeps it out of a run without filter).
#define PHONON_STORE_CONTRACT(description, fn)                                 \
  TEST_CASE("sqlite store: " description, "[unit][persistence][sqlite]") {     \
    sqlite_backend b;                                                          \
    fn(b);                                                                     \
  }                                                                            \
  TEST_CASE("mysql store: " description, "[.mysql][persistence]") {            \
    mysql_backend b;                                                           \
    fn(b);                                                                     \
  }

PHONON_STORE_CONTRACT("insert then get returns every field", insert_then_get)
PHONON_STORE_CONTRACT("get of a missing row is empty", get_missing_row)
PHONON_STORE_CONTRACT("duplicate insert returns false and keeps the first",
                      duplicate_insert)
PHONON_STORE_CONTRACT("upsert returns the old row and keeps created_at",
                      upsert_old_and_new)
PHONON_STORE_CONTRACT("mark_ready applies only to the current revision",
                      mark_ready_revisions)
PHONON_STORE_CONTRACT("mark_failed stores the error", mark_failed_error)
PHONON_STORE_CONTRACT("list pages by phrase id for one user", list_pages)
PHONON_STORE_CONTRACT("remove returns the deleted row", remove_row)
PHONON_STORE_CONTRACT("list_processing returns every processing row",
                      list_processing_rows)
PHONON_STORE_CONTRACT("list_all pages through every user's rows",
                      list_all_pages)
PHONON_STORE_CONTRACT("migrate twice is a no-op", migrate_twice)
PHONON_STORE_CONTRACT("concurrent writers all land", concurrent_writers)

#undef PHONON_STORE_CONTRACT

TEST_CASE("mysql store: calls succeed after the connections are killed",
          "[.mysql][persistence]") {
  mysql_backend b;
  reconnect_after_kill(b);
}

TEST_CASE("mysql store: an unusable server or setting throws db_error",
          "[.mysql][persistence]") {
  mysql_backend b;
  unreachable_server(b);
}
