#include <sqlite3.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <utility>

#include "persistence/migrations.hpp"
#include "persistence/recording_store.hpp"

namespace phonon::persistence {

namespace {

// -- RAII for SQLite handles ------------------------------------------------

struct db_closer {
  void operator()(sqlite3* p) const noexcept {
    sqlite3_close_v2(p);
  }
};

struct stmt_finalizer {
  void operator()(sqlite3_stmt* p) const noexcept {
    sqlite3_finalize(p);
  }
};

using db_ptr = std::unique_ptr<sqlite3, db_closer>;
using stmt_ptr = std::unique_ptr<sqlite3_stmt, stmt_finalizer>;

[[noreturn]] void fail(sqlite3* db, const std::string& what) {
  std::string msg = "sqlite: " + what + ": ";
  msg += db != nullptr ? sqlite3_errmsg(db) : "out of memory";
  throw db_error(msg, db != nullptr && sqlite3_errcode(db) == SQLITE_FULL);
}

int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch())
    .count();
}

// -- cached statements ------------------------------------------------------

// Indexes into sqlite_store::stmts_ and `statement_sql`.
enum class query : size_t {
  begin,
  commit,
  rollback,
  max_version,
  add_migration,
  insert,
  upsert,
  get,
  mark_ready,
  mark_failed,
  remove,
  list,
  list_processing,
  list_all,
  ping,
  count,
};

#define PHONON_COLUMNS                                                         \
  "user_id, phrase_id, revision, status, original_format, "                    \
  "original_filename, size_bytes, duration_ms, sample_rate, channels, "        \
  "created_at, updated_at, error, serve_original"

#define PHONON_VALUES                                                          \
  "?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14"

constexpr const char* statement_sql[] = {
  // begin: IMMEDIATE takes the write lock up front, so a read-then-write
  // transaction never fails half way with SQLITE_BUSY.
  "BEGIN IMMEDIATE",
  // commit
  "COMMIT",
  // rollback
  "ROLLBACK",
  // max_version
  "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
  // add_migration
  "INSERT INTO schema_migrations (version, name, applied_at) "
  "VALUES (?1, ?2, ?3)",
  // insert
  "INSERT INTO recordings (" PHONON_COLUMNS ") VALUES (" PHONON_VALUES ")",
  // upsert: a replace is a new version of the recording, but the recording
  // itself (user, phrase) has existed since the first upload. So the row
  // keeps the old `created_at` and takes every other column, including
  // `updated_at`, from the new value.
  "INSERT INTO recordings (" PHONON_COLUMNS ") VALUES (" PHONON_VALUES ") "
  "ON CONFLICT (user_id, phrase_id) DO UPDATE SET "
  "revision = excluded.revision, status = excluded.status, "
  "original_format = excluded.original_format, "
  "original_filename = excluded.original_filename, "
  "size_bytes = excluded.size_bytes, duration_ms = excluded.duration_ms, "
  "sample_rate = excluded.sample_rate, channels = excluded.channels, "
  "updated_at = excluded.updated_at, error = excluded.error, "
  "serve_original = excluded.serve_original",
  // get
  "SELECT " PHONON_COLUMNS " FROM recordings "
  "WHERE user_id = ?1 AND phrase_id = ?2",
  // mark_ready
  "UPDATE recordings SET status = 'ready', duration_ms = ?4, "
  "sample_rate = ?5, channels = ?6, updated_at = ?7, error = NULL "
  "WHERE user_id = ?1 AND phrase_id = ?2 AND revision = ?3",
  // mark_failed
  "UPDATE recordings SET status = 'failed', error = ?4, updated_at = ?5 "
  "WHERE user_id = ?1 AND phrase_id = ?2 AND revision = ?3",
  // remove
  "DELETE FROM recordings WHERE user_id = ?1 AND phrase_id = ?2",
  // list
  "SELECT " PHONON_COLUMNS " FROM recordings "
  "WHERE user_id = ?1 AND phrase_id > ?2 ORDER BY phrase_id LIMIT ?3",
  // list_processing (uses recordings_status_idx)
  "SELECT " PHONON_COLUMNS " FROM recordings "
  "WHERE status = 'processing' ORDER BY user_id, phrase_id",
  // list_all (the primary key's order)
  "SELECT " PHONON_COLUMNS " FROM recordings "
  "WHERE user_id > ?1 OR (user_id = ?1 AND phrase_id > ?2) "
  "ORDER BY user_id, phrase_id LIMIT ?3",
  // ping
  "SELECT 1",
};

#undef PHONON_VALUES
#undef PHONON_COLUMNS

constexpr size_t query_count = static_cast<size_t>(query::count);

static_assert(sizeof(statement_sql) / sizeof(statement_sql[0])
                == query_count,
              "one SQL text per query");

/// One use of a cached statement: binds, steps, and resets the statement and
/// clears its bindings when it goes out of scope.
class statement_use {
public:
  statement_use(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {
    // nop
  }

  statement_use(const statement_use&) = delete;
  statement_use& operator=(const statement_use&) = delete;

  ~statement_use() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }

  void bind(int index, int64_t value) {
    check(sqlite3_bind_int64(stmt_, index, value));
  }

  void bind(int index, const std::string& value) {
    check(sqlite3_bind_text(stmt_, index, value.data(),
                            static_cast<int>(value.size()), SQLITE_TRANSIENT));
  }

  /// Binds NULL for an empty string.
  void bind_or_null(int index, const std::string& value) {
    if (value.empty())
      check(sqlite3_bind_null(stmt_, index));
    else
      bind(index, value);
  }

  /// Steps once and returns the raw (extended) result code.
  int step_rc() noexcept {
    return sqlite3_step(stmt_);
  }

  /// Steps once; true when a row is available, false when done.
  bool step() {
    auto rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW)
      return true;
    if (rc == SQLITE_DONE)
      return false;
    fail(db_, sqlite3_sql(stmt_));
  }

  /// Steps a statement that returns no rows.
  void run() {
    while (step()) {
      // skip rows
    }
  }

  int64_t column_int64(int index) const noexcept {
    return sqlite3_column_int64(stmt_, index);
  }

  std::string column_text(int index) const {
    auto p = sqlite3_column_text(stmt_, index);
    if (p == nullptr)
      return {};
    auto n = static_cast<size_t>(sqlite3_column_bytes(stmt_, index));
    return std::string{reinterpret_cast<const char*>(p), n};
  }

  /// Reads the columns of PHONON_COLUMNS from the current row.
  recording read_recording() const {
    recording r;
    r.user_id = column_int64(0);
    r.phrase_id = column_int64(1);
    r.revision = column_int64(2);
    r.status = status_from_string(column_text(3));
    r.original_format = column_text(4);
    r.original_filename = column_text(5);
    r.size_bytes = column_int64(6);
    r.duration_ms = column_int64(7);
    r.sample_rate = static_cast<int32_t>(column_int64(8));
    r.channels = static_cast<int32_t>(column_int64(9));
    r.created_at = column_int64(10);
    r.updated_at = column_int64(11);
    r.error = column_text(12);
    r.serve_original = column_int64(13) != 0;
    return r;
  }

  /// Binds the parameters ?1..?14 in PHONON_COLUMNS order.
  void bind_recording(const recording& r) {
    bind(1, r.user_id);
    bind(2, r.phrase_id);
    bind(3, r.revision);
    bind(4, std::string{to_string(r.status)});
    bind(5, r.original_format);
    bind(6, r.original_filename);
    bind(7, r.size_bytes);
    bind(8, r.duration_ms);
    bind(9, static_cast<int64_t>(r.sample_rate));
    bind(10, static_cast<int64_t>(r.channels));
    bind(11, r.created_at);
    bind(12, r.updated_at);
    bind_or_null(13, r.error);
    bind(14, static_cast<int64_t>(r.serve_original ? 1 : 0));
  }

private:
  void check(int rc) {
    if (rc != SQLITE_OK)
      fail(db_, std::string{"bind: "} + sqlite3_sql(stmt_));
  }

  sqlite3* db_;
  sqlite3_stmt* stmt_;
};

// -- the store --------------------------------------------------------------

class sqlite_store final : public recording_store {
public:
  explicit sqlite_store(const std::string& path);

  void migrate() override;

  bool insert(const recording& r) override;

  std::optional<recording> upsert(const recording& r) override;

  std::optional<recording> get(int64_t user_id, int64_t phrase_id) override;

  bool mark_ready(int64_t user_id, int64_t phrase_id, int64_t revision,
                  int64_t duration_ms, int32_t sample_rate, int32_t channels,
                  int64_t now) override;

  bool mark_failed(int64_t user_id, int64_t phrase_id, int64_t revision,
                   const std::string& error, int64_t now) override;

  std::optional<recording> remove(int64_t user_id,
                                  int64_t phrase_id) override;

  std::vector<recording> list(int64_t user_id, int64_t after,
                              int limit) override;

  std::vector<recording> list_processing() override;

  std::vector<recording> list_all(int64_t after_user, int64_t after_phrase,
                                  int limit) override;

  bool ping() noexcept override;

  /// 0: the one connection is opened SQLITE_OPEN_NOMUTEX and its prepared
  /// statements are reused, so only one thread may use it at a time. WAL
  /// would let readers on connections of their own run beside the writer,
  /// but an in-memory database cannot be shared between connections, and a
  /// read of the local file takes microseconds (hot GETs do not reach the
  /// database at all: the published read model answers them).
  int concurrent_readers() const noexcept override {
    return 0;
  }

private:
  /// A transaction that rolls back unless committed.
  class transaction {
  public:
    explicit transaction(sqlite_store& self) : self_(self) {
      self_.use(query::begin).run();
    }

    transaction(const transaction&) = delete;
    transaction& operator=(const transaction&) = delete;

    ~transaction() {
      if (!done_)
        self_.rollback_quietly();
    }

    void commit() {
      self_.use(query::commit).run();
      done_ = true;
    }

  private:
    sqlite_store& self_;
    bool done_ = false;
  };

  /// Returns the cached statement, preparing it on first use. Statements
  /// are prepared lazily because `recordings` does not exist before
  /// migrate().
  statement_use use(query q);

  /// Runs every statement of `sql` (a script, e.g. a migration) once.
  void run_script(const char* sql, const std::string& what);

  std::optional<recording> get_row(int64_t user_id, int64_t phrase_id);

  void rollback_quietly() noexcept;

  // Declared before the statements: members are destroyed in reverse order,
  // so every statement is finalized before the connection closes.
  db_ptr db_;
  std::array<stmt_ptr, query_count> stmts_;
};

sqlite_store::sqlite_store(const std::string& path) {
  // Create the parent folder; not for in-memory or URI databases.
  if (!path.empty() && path != ":memory:" && path.rfind("file:", 0) != 0) {
    auto parent = std::filesystem::path{path}.parent_path();
    if (!parent.empty()) {
      std::error_code ec;
      std::filesystem::create_directories(parent, ec);
      if (ec)
        throw db_error("sqlite: cannot create folder " + parent.string()
                       + ": " + ec.message());
    }
  }
  sqlite3* raw = nullptr;
  auto rc = sqlite3_open_v2(path.c_str(), &raw,
                            SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
                              | SQLITE_OPEN_NOMUTEX,
                            nullptr);
  // Even a failed open allocates a handle that must be closed.
  db_.reset(raw);
  if (rc != SQLITE_OK)
    fail(db_.get(), "open " + path);
  sqlite3_extended_result_codes(db_.get(), 1);
  sqlite3_busy_timeout(db_.get(), 5000);
  // WAL: readers do not block the writer. synchronous=FULL: a commit is on
  // disk before it returns (a 201 must survive a crash).
  run_script("PRAGMA journal_mode = WAL;"
             "PRAGMA synchronous = FULL;"
             "PRAGMA foreign_keys = ON;",
             "pragmas");
}

statement_use sqlite_store::use(query q) {
  auto& slot = stmts_[static_cast<size_t>(q)];
  if (!slot) {
    sqlite3_stmt* raw = nullptr;
    auto sql = statement_sql[static_cast<size_t>(q)];
    auto rc = sqlite3_prepare_v3(db_.get(), sql, -1,
                                 SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
    slot.reset(raw);
    if (rc != SQLITE_OK || !slot)
      fail(db_.get(), std::string{"prepare: "} + sql);
  }
  return statement_use{db_.get(), slot.get()};
}

void sqlite_store::run_script(const char* sql, const std::string& what) {
  // Migrations hold several statements; prepare and run them one by one.
  const char* tail = sql;
  while (tail != nullptr && *tail != '\0') {
    sqlite3_stmt* raw = nullptr;
    auto rc = sqlite3_prepare_v2(db_.get(), tail, -1, &raw, &tail);
    stmt_ptr stmt{raw};
    if (rc != SQLITE_OK)
      fail(db_.get(), what);
    if (!stmt)
      break; // only whitespace or comments left
    while ((rc = sqlite3_step(stmt.get())) == SQLITE_ROW) {
      // skip rows (PRAGMA journal_mode returns one)
    }
    if (rc != SQLITE_DONE)
      fail(db_.get(), what);
  }
}

void sqlite_store::rollback_quietly() noexcept {
  try {
    use(query::rollback).step_rc();
  } catch (...) {
    // Nothing left to do: the error that got us here is already in flight.
  }
}

void sqlite_store::migrate() {
  // Bootstrap: the table must exist to know which migrations are pending.
  run_script("CREATE TABLE IF NOT EXISTS schema_migrations ("
             "version INTEGER PRIMARY KEY, "
             "name TEXT NOT NULL, "
             "applied_at INTEGER NOT NULL)",
             "create schema_migrations");
  for (auto& m : sqlite_migrations()) {
    // Each migration and its schema_migrations row commit together. The
    // version check runs inside the write transaction, so two processes
    // migrating at once cannot both apply a step.
    transaction tx{*this};
    int64_t applied = 0;
    {
      auto st = use(query::max_version);
      if (st.step())
        applied = st.column_int64(0);
    }
    if (m.version > applied) {
      run_script(m.sql, std::string{"migration "} + m.name);
      auto st = use(query::add_migration);
      st.bind(1, static_cast<int64_t>(m.version));
      st.bind(2, std::string{m.name});
      st.bind(3, now_ms());
      st.run();
    }
    tx.commit();
  }
}

bool sqlite_store::insert(const recording& r) {
  auto st = use(query::insert);
  st.bind_recording(r);
  auto rc = st.step_rc();
  if (rc == SQLITE_DONE)
    return true;
  if (rc == SQLITE_CONSTRAINT_PRIMARYKEY)
    return false;
  fail(db_.get(), "insert");
}

std::optional<recording> sqlite_store::get_row(int64_t user_id,
                                               int64_t phrase_id) {
  auto st = use(query::get);
  st.bind(1, user_id);
  st.bind(2, phrase_id);
  if (!st.step())
    return std::nullopt;
  return st.read_recording();
}

std::optional<recording> sqlite_store::upsert(const recording& r) {
  transaction tx{*this};
  auto old = get_row(r.user_id, r.phrase_id);
  {
    auto st = use(query::upsert);
    st.bind_recording(r);
    st.run();
  }
  tx.commit();
  return old;
}

std::optional<recording> sqlite_store::get(int64_t user_id,
                                           int64_t phrase_id) {
  return get_row(user_id, phrase_id);
}

bool sqlite_store::mark_ready(int64_t user_id, int64_t phrase_id,
                              int64_t revision, int64_t duration_ms,
                              int32_t sample_rate, int32_t channels,
                              int64_t now) {
  // The one commit that need not be on disk before it returns: a ready
  // mark lost to a power cut leaves the row `processing`, and startup
  // recovery makes the master again. Without the fsync it is one wait
  // less between an upload and `ready`. The next FULL commit syncs the
  // WAL, this transaction included.
  run_script("PRAGMA synchronous = NORMAL;", "pragmas");
  struct full_again {
    sqlite_store* self;
    ~full_again() {
      try {
        self->run_script("PRAGMA synchronous = FULL;", "pragmas");
      } catch (...) {
        // The next commit would then not be synced: close the connection
        // rather than go on (open() sets FULL again).
        std::terminate();
      }
    }
  } restore{this};
  auto st = use(query::mark_ready);
  st.bind(1, user_id);
  st.bind(2, phrase_id);
  st.bind(3, revision);
  st.bind(4, duration_ms);
  st.bind(5, static_cast<int64_t>(sample_rate));
  st.bind(6, static_cast<int64_t>(channels));
  st.bind(7, now);
  st.run();
  return sqlite3_changes(db_.get()) > 0;
}

bool sqlite_store::mark_failed(int64_t user_id, int64_t phrase_id,
                               int64_t revision, const std::string& error,
                               int64_t now) {
  auto st = use(query::mark_failed);
  st.bind(1, user_id);
  st.bind(2, phrase_id);
  st.bind(3, revision);
  st.bind(4, error);
  st.bind(5, now);
  st.run();
  return sqlite3_changes(db_.get()) > 0;
}

std::optional<recording> sqlite_store::remove(int64_t user_id,
                                              int64_t phrase_id) {
  transaction tx{*this};
  auto old = get_row(user_id, phrase_id);
  if (old) {
    auto st = use(query::remove);
    st.bind(1, user_id);
    st.bind(2, phrase_id);
    st.run();
  }
  tx.commit();
  return old;
}

std::vector<recording> sqlite_store::list(int64_t user_id, int64_t after,
                                          int limit) {
  std::vector<recording> result;
  // SQLite reads a negative LIMIT as "no limit"; the caller asked for none.
  if (limit <= 0)
    return result;
  auto st = use(query::list);
  st.bind(1, user_id);
  st.bind(2, after);
  st.bind(3, static_cast<int64_t>(limit));
  while (st.step())
    result.push_back(st.read_recording());
  return result;
}

std::vector<recording> sqlite_store::list_processing() {
  std::vector<recording> result;
  auto st = use(query::list_processing);
  while (st.step())
    result.push_back(st.read_recording());
  return result;
}

std::vector<recording> sqlite_store::list_all(int64_t after_user,
                                              int64_t after_phrase,
                                              int limit) {
  std::vector<recording> result;
  if (limit <= 0)
    return result;
  auto st = use(query::list_all);
  st.bind(1, after_user);
  st.bind(2, after_phrase);
  st.bind(3, static_cast<int64_t>(limit));
  while (st.step())
    result.push_back(st.read_recording());
  return result;
}

bool sqlite_store::ping() noexcept {
  try {
    auto st = use(query::ping);
    return st.step() && st.column_int64(0) == 1;
  } catch (...) {
    return false;
  }
}

} // namespace

std::unique_ptr<recording_store> open_sqlite_store(const std::string& path) {
  return std::make_unique<sqlite_store>(path);
}

} // namespace phonon::persistence
