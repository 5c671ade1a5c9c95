#include <cppconn/connection.h>
#include <cppconn/datatype.h>
#include <cppconn/exception.h>
#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>
#include <cppconn/statement.h>
#include <mysql_driver.h>

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "persistence/migrations.hpp"
#include "persistence/recording_store.hpp"

namespace phonon::persistence {

namespace {

// -- Connector/C++ handles --------------------------------------------------

// Connector/C++ 1.1 factories return owning raw pointers: each one goes
// into one of these on the line that creates it.
using connection_ptr = std::unique_ptr<sql::Connection>;
using statement_ptr = std::unique_ptr<sql::PreparedStatement>;
using plain_statement_ptr = std::unique_ptr<sql::Statement>;
using result_ptr = std::unique_ptr<sql::ResultSet>;

/// Short network timeouts: an outage fails a call within seconds instead of
/// hanging the repository actor.
constexpr int connect_timeout_s = 3;
constexpr int read_timeout_s = 10;
constexpr int write_timeout_s = 10;

/// How long migrate() waits for another process's migration.
constexpr int migrate_lock_timeout_s = 10;

/// How long a call waits for a free pooled connection.
constexpr auto acquire_timeout = std::chrono::seconds{30};

int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch())
    .count();
}

sql::mysql::MySQL_Driver* driver() {
  // get_driver_instance() fills an unguarded map: call it exactly once
  // (function-local statics initialize thread-safely).
  static sql::mysql::MySQL_Driver* instance
    = sql::mysql::get_mysql_driver_instance();
  return instance;
}

/// Calls threadInit() on construction and threadEnd() on destruction; one
/// per thread that talks to the connector.
class thread_registration {
public:
  thread_registration() {
    driver()->threadInit();
  }

  thread_registration(const thread_registration&) = delete;
  thread_registration& operator=(const thread_registration&) = delete;

  ~thread_registration() {
    driver()->threadEnd();
  }
};

/// Registers the calling thread with the client library on first use. The
/// store may be called from any thread (e.g. different CAF workers).
void ensure_thread_registered() {
  thread_local thread_registration registration;
  static_cast<void>(registration);
}

std::string describe(const sql::SQLException& e) {
  return std::string{e.what()} + " (error " + std::to_string(e.getErrorCode())
         + ", SQLSTATE " + e.getSQLState() + ")";
}

/// True when `e` says the connection itself is gone (as opposed to an error
/// of the statement): 2002/2003 cannot connect, 2006 server has gone away,
/// 2013 lost connection during query, 2055 lost connection (system error),
/// 1927 MariaDB's "connection was killed", 4031 MySQL's idle disconnect,
/// or any SQLSTATE of class 08 (connection exception).
bool is_connection_error(const sql::SQLException& e) {
  switch (e.getErrorCode()) {
    case 1927:
    case 2002:
    case 2003:
    case 2006:
    case 2013:
    case 2055:
    case 4031:
      return true;
    default:
      return e.getSQLState().compare(0, 2, "08") == 0;
  }
}

/// True when a client-side error (2000-2999) or a connector error without
/// a server code leaves it unclear whether the connection still works.
bool is_client_error(const sql::SQLException& e) {
  auto code = e.getErrorCode();
  return code == 0 || (code >= 2000 && code < 3000);
}

/// ER_LOCK_DEADLOCK: InnoDB rolled the transaction back; running it again
/// is the documented remedy.
bool is_deadlock(const sql::SQLException& e) {
  return e.getErrorCode() == 1213;
}

/// ER_DUP_ENTRY.
bool is_duplicate_key(const sql::SQLException& e) {
  return e.getErrorCode() == 1062;
}

/// Splits a migration script into statements: full-line `--` comments are
/// dropped, and a statement ends at a ';' that ends a line (or the text).
/// Enough for our own sql/mysql files; not a SQL parser.
std::vector<std::string> split_script(const std::string& script) {
  std::vector<std::string> result;
  std::string current;
  auto flush = [&] {
    if (current.find_first_not_of(" \t\r\n") != std::string::npos)
      result.push_back(current);
    current.clear();
  };
  size_t pos = 0;
  while (pos < script.size()) {
    auto eol = script.find('\n', pos);
    if (eol == std::string::npos)
      eol = script.size();
    auto line = script.substr(pos, eol - pos);
    pos = eol + 1;
    auto first = line.find_first_not_of(" \t\r");
    if (first == std::string::npos || line.compare(first, 2, "--") == 0)
      continue;
    auto last = line.find_last_not_of(" \t\r");
    if (line[last] == ';') {
      current.append(line, 0, last);
      flush();
    } else {
      current += line;
      current += '\n';
    }
  }
  flush();
  return result;
}

// -- statements -------------------------------------------------------------

// Indexes into session::stmts and `statement_sql`.
enum class query : size_t {
  max_version,
  add_migration,
  insert,
  upsert,
  get,
  get_for_update,
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

#define PHONON_VALUES "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?"

constexpr const char* statement_sql[] = {
  // max_version
  "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
  // add_migration
  "INSERT INTO schema_migrations (version, name, applied_at) "
  "VALUES (?, ?, ?)",
  // insert
  "INSERT INTO recordings (" PHONON_COLUMNS ") VALUES (" PHONON_VALUES ")",
  // upsert: like the SQLite store, a replace keeps the row's `created_at`
  // (the recording has existed since its first upload) and takes every
  // other column from the new value. VALUES() is what both MariaDB and
  // MySQL 8 accept.
  "INSERT INTO recordings (" PHONON_COLUMNS ") VALUES (" PHONON_VALUES ") "
  "ON DUPLICATE KEY UPDATE "
  "revision = VALUES(revision), status = VALUES(status), "
  "original_format = VALUES(original_format), "
  "original_filename = VALUES(original_filename), "
  "size_bytes = VALUES(size_bytes), duration_ms = VALUES(duration_ms), "
  "sample_rate = VALUES(sample_rate), channels = VALUES(channels), "
  "updated_at = VALUES(updated_at), error = VALUES(error), "
  "serve_original = VALUES(serve_original)",
  // get
  "SELECT " PHONON_COLUMNS " FROM recordings "
  "WHERE user_id = ? AND phrase_id = ?",
  // get_for_update: locks the row (or the gap) until the transaction ends.
  "SELECT " PHONON_COLUMNS " FROM recordings "
  "WHERE user_id = ? AND phrase_id = ? FOR UPDATE",
  // mark_ready (CLIENT_FOUND_ROWS: the count is of matched rows, as in
  // SQLite, so setting identical values again still reports success)
  "UPDATE recordings SET status = 'ready', duration_ms = ?, "
  "sample_rate = ?, channels = ?, updated_at = ?, error = NULL "
  "WHERE user_id = ? AND phrase_id = ? AND revision = ?",
  // mark_failed
  "UPDATE recordings SET status = 'failed', error = ?, updated_at = ? "
  "WHERE user_id = ? AND phrase_id = ? AND revision = ?",
  // remove
  "DELETE FROM recordings WHERE user_id = ? AND phrase_id = ?",
  // list
  "SELECT " PHONON_COLUMNS " FROM recordings "
  "WHERE user_id = ? AND phrase_id > ? ORDER BY phrase_id LIMIT ?",
  // list_processing (uses recordings_status_idx)
  "SELECT " PHONON_COLUMNS " FROM recordings "
  "WHERE status = 'processing' ORDER BY user_id, phrase_id",
  // list_all (the primary key's order)
  "SELECT " PHONON_COLUMNS " FROM recordings "
  "WHERE user_id > ? OR (user_id = ? AND phrase_id > ?) "
  "ORDER BY user_id, phrase_id LIMIT ?",
  // ping
  "SELECT 1",
};

#undef PHONON_VALUES
#undef PHONON_COLUMNS

constexpr size_t query_count = static_cast<size_t>(query::count);

static_assert(sizeof(statement_sql) / sizeof(statement_sql[0])
                == query_count,
              "one SQL text per query");

/// Reads the columns of PHONON_COLUMNS from the current row.
recording read_recording(const sql::ResultSet& rs) {
  recording r;
  r.user_id = rs.getInt64(1);
  r.phrase_id = rs.getInt64(2);
  r.revision = rs.getInt64(3);
  r.status = status_from_string(rs.getString(4).asStdString());
  r.original_format = rs.getString(5).asStdString();
  r.original_filename = rs.getString(6).asStdString();
  r.size_bytes = rs.getInt64(7);
  r.duration_ms = rs.getInt64(8);
  r.sample_rate = rs.getInt(9);
  r.channels = rs.getInt(10);
  r.created_at = rs.getInt64(11);
  r.updated_at = rs.getInt64(12);
  if (!rs.isNull(13))
    r.error = rs.getString(13).asStdString();
  r.serve_original = rs.getInt(14) != 0;
  return r;
}

/// Binds the 14 parameters in PHONON_COLUMNS order.
void bind_recording(sql::PreparedStatement& st, const recording& r) {
  st.setInt64(1, r.user_id);
  st.setInt64(2, r.phrase_id);
  st.setInt64(3, r.revision);
  st.setString(4, to_string(r.status));
  st.setString(5, r.original_format);
  st.setString(6, r.original_filename);
  st.setInt64(7, r.size_bytes);
  st.setInt64(8, r.duration_ms);
  st.setInt(9, r.sample_rate);
  st.setInt(10, r.channels);
  st.setInt64(11, r.created_at);
  st.setInt64(12, r.updated_at);
  if (r.error.empty())
    st.setNull(13, sql::DataType::VARCHAR);
  else
    st.setString(13, r.error);
  st.setInt(14, r.serve_original ? 1 : 0);
}

std::vector<recording> read_all(sql::PreparedStatement& st) {
  std::vector<recording> result;
  result_ptr rs{st.executeQuery()};
  while (rs->next())
    result.push_back(read_recording(*rs));
  return result;
}

std::optional<recording> read_one(sql::PreparedStatement& st) {
  result_ptr rs{st.executeQuery()};
  if (!rs->next())
    return std::nullopt;
  return read_recording(*rs);
}

// -- connections ------------------------------------------------------------

/// One server connection and the statements prepared on it.
class session {
public:
  explicit session(connection_ptr conn) : conn_(std::move(conn)) {
    // nop
  }

  session(const session&) = delete;
  session& operator=(const session&) = delete;

  ~session() {
    // Statements before their connection.
    for (auto& st : stmts_)
      st.reset();
  }

  sql::Connection& conn() {
    return *conn_;
  }

  /// Returns the statement of `q`, preparing it on first use on this
  /// connection (lazily: `recordings` does not exist before migrate()).
  sql::PreparedStatement& use(query q) {
    auto& slot = stmts_[static_cast<size_t>(q)];
    if (!slot) {
      auto sql = statement_sql[static_cast<size_t>(q)];
      slot.reset(conn_->prepareStatement(sql));
    }
    slot->clearParameters();
    return *slot;
  }

  /// Runs `sql` (trusted text from sql/mysql, no values) directly.
  void execute(const std::string& sql) {
    plain_statement_ptr st{conn_->createStatement()};
    st->execute(sql);
  }

private:
  connection_ptr conn_;
  std::array<statement_ptr, query_count> stmts_;
};

using session_ptr = std::unique_ptr<session>;

/// Opens a new connection with our options; throws sql::SQLException.
session_ptr connect(const mysql_options& opts) {
  sql::ConnectOptionsMap props;
  props["hostName"] = sql::SQLString{"tcp://" + opts.host + ":"
                                     + std::to_string(opts.port)};
  props["userName"] = sql::SQLString{opts.username};
  props["password"] = sql::SQLString{opts.password};
  props["schema"] = sql::SQLString{opts.database};
  props["OPT_CHARSET_NAME"] = sql::SQLString{"utf8mb4"};
  props["OPT_CONNECT_TIMEOUT"] = connect_timeout_s;
  props["OPT_READ_TIMEOUT"] = read_timeout_s;
  props["OPT_WRITE_TIMEOUT"] = write_timeout_s;
  // We reconnect ourselves: a silent reconnect inside the client library
  // would lose a transaction half way without telling us.
  props["OPT_RECONNECT"] = false;
  // UPDATE reports matched rows, not changed rows (as SQLite does).
  props["CLIENT_FOUND_ROWS"] = true;
  connection_ptr conn{driver()->connect(props)};
  conn->setAutoCommit(true);
  return std::make_unique<session>(std::move(conn));
}

/// Up to `size` connections shared by all threads; a call holds one for its
/// whole duration.
class connection_pool {
public:
  /// A connection taken from the pool; returns it on destruction.
  class lease {
  public:
    lease(connection_pool& pool, session_ptr s)
      : pool_(&pool), session_(std::move(s)) {
      // nop
    }

    lease(const lease&) = delete;
    lease& operator=(const lease&) = delete;

    ~lease() {
      pool_->give_back(std::move(session_));
    }

    /// The session, connecting first when the last one was dropped.
    session& get() {
      if (!session_)
        session_ = pool_->open();
      return *session_;
    }

    /// The session, or null when dropped (or the reconnect failed).
    session* current() noexcept {
      return session_.get();
    }

    /// Closes the connection; the next get() opens a new one.
    void drop() noexcept {
      session_.reset();
    }

  private:
    connection_pool* pool_;
    session_ptr session_;
  };

  explicit connection_pool(mysql_options opts) : opts_(std::move(opts)) {
    // give_back() must not allocate (it runs in destructors).
    idle_.reserve(static_cast<size_t>(opts_.pool_size));
  }

  connection_pool(const connection_pool&) = delete;
  connection_pool& operator=(const connection_pool&) = delete;

  ~connection_pool() {
    ensure_thread_registered();
    idle_.clear();
  }

  /// Opens a connection and puts it into the pool; throws
  /// sql::SQLException.
  void prime() {
    auto s = open();
    std::lock_guard<std::mutex> guard{mtx_};
    ++open_;
    idle_.push_back(std::move(s));
  }

  /// Takes an idle connection, or a free slot (connecting lazily), waiting
  /// while every slot is in use. Throws db_error on timeout.
  lease acquire() {
    std::unique_lock<std::mutex> guard{mtx_};
    auto size = static_cast<size_t>(opts_.pool_size);
    if (!cv_.wait_for(guard, acquire_timeout, [&] {
          return !idle_.empty() || open_ < size;
        }))
      throw db_error("mysql: no free connection in the pool within "
                     + std::to_string(acquire_timeout.count()) + " s");
    if (idle_.empty()) {
      ++open_; // a new slot; the lease connects on first use
      return lease{*this, nullptr};
    }
    auto s = std::move(idle_.back());
    idle_.pop_back();
    return lease{*this, std::move(s)};
  }

private:
  session_ptr open() {
    return connect(opts_);
  }

  void give_back(session_ptr s) noexcept {
    {
      std::lock_guard<std::mutex> guard{mtx_};
      if (s)
        idle_.push_back(std::move(s));
      else
        --open_; // dropped: the slot is free for a new connection
    }
    cv_.notify_one();
  }

  mysql_options opts_;
  std::mutex mtx_;
  std::condition_variable cv_;
  /// Connections ready for use (most recently used last).
  std::vector<session_ptr> idle_;
  /// Slots taken: idle connections plus leases.
  size_t open_ = 0;
};

// -- the store --------------------------------------------------------------

/// The recording_store on MySQL/MariaDB: every call takes one pooled
/// connection for its duration, so any thread may call it.
class mysql_store final : public recording_store {
public:
  explicit mysql_store(const mysql_options& opts)
    : pool_size_(opts.pool_size), pool_(opts) {
    ensure_thread_registered();
    try {
      pool_.prime();
    } catch (const sql::SQLException& e) {
      throw db_error("mysql: cannot connect to " + opts.host + ":"
                     + std::to_string(opts.port) + ": " + describe(e));
    }
  }

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

  /// One connection of the pool for each reader and one for the writer:
  /// nobody waits in acquire() while those are the only callers. Every
  /// pooled connection runs in autocommit (run() restores it after a
  /// failure), so each read is a statement of its own with a fresh snapshot
  /// and sees every write that committed before it started.
  int concurrent_readers() const noexcept override {
    return pool_size_ - 1;
  }

private:
  /// Runs `f(session&)` on a pooled connection. After a lost connection (or
  /// a deadlock) the whole of `f` runs once more, on a new connection; the
  /// server has rolled back whatever the first run left uncommitted. (A
  /// write whose reply alone was lost, error 2013, did commit: a retried
  /// insert then reports the key as taken.) Every failure leaves as
  /// db_error.
  template <class F>
  auto run(const char* what, F f) -> decltype(f(std::declval<session&>()));

  int pool_size_;
  connection_pool pool_;
};

/// setAutoCommit(false) now, commit() explicitly. Rollback on failure is
/// left to mysql_store::run, which also drops a connection that cannot
/// roll back.
class transaction {
public:
  explicit transaction(session& s) : s_(s) {
    s_.conn().setAutoCommit(false);
  }

  void commit() {
    s_.conn().commit();
    s_.conn().setAutoCommit(true);
  }

private:
  session& s_;
};

/// Leaves a connection after a failed call as a new one would be: no open
/// transaction, autocommit on. Returns false when that fails.
bool reset_session(session& s) noexcept {
  try {
    s.conn().rollback();
    s.conn().setAutoCommit(true);
    return true;
  } catch (...) {
    return false;
  }
}

/// Asks the server whether the connection still works (a ping).
bool still_valid(session& s) noexcept {
  try {
    return s.conn().isValid();
  } catch (...) {
    return false;
  }
}

template <class F>
auto mysql_store::run(const char* what, F f)
  -> decltype(f(std::declval<session&>())) {
  ensure_thread_registered();
  auto lease = pool_.acquire();
  // Leaves the connection as a new one would be (no open transaction,
  // autocommit on), or drops it when that fails.
  auto clean_up = [&lease] {
    if (auto s = lease.current(); s != nullptr && !reset_session(*s))
      lease.drop();
  };
  for (int attempt = 1;; ++attempt) {
    std::string reason;
    bool retry = false;
    bool disk_full = false;
    try {
      return f(lease.get());
    } catch (const sql::SQLException& e) {
      reason = describe(e);
      // ER_DISK_FULL, ER_RECORD_FILE_FULL: the server's disk has no room.
      disk_full = e.getErrorCode() == 1021 || e.getErrorCode() == 1114;
      auto s = lease.current(); // null when get() could not connect
      bool lost = is_connection_error(e)
                  || (s != nullptr && is_client_error(e) && !still_valid(*s));
      if (lost)
        lease.drop();
      else
        clean_up();
      retry = lost || is_deadlock(e);
    } catch (const db_error&) {
      // Our own check (e.g. an unknown status text in a row).
      clean_up();
      throw;
    } catch (const std::exception& e) {
      reason = e.what();
      lease.drop();
    }
    if (!retry || attempt > 1)
      throw db_error(std::string{"mysql: "} + what + ": " + reason, disk_full);
  }
}

void mysql_store::migrate() {
  run("migrate", [](session& s) {
    // Bootstrap: the table must exist to know which migrations are pending.
    s.execute("CREATE TABLE IF NOT EXISTS schema_migrations ("
              "version INT NOT NULL PRIMARY KEY, "
              "name VARCHAR(255) NOT NULL, "
              "applied_at BIGINT NOT NULL"
              ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4");
    // An advisory lock keeps two processes from migrating at once. MySQL DDL
    // commits implicitly, so a migration cannot share a transaction with
    // its schema_migrations row; each row is written right after its
    // migration instead.
    {
      statement_ptr lock{s.conn().prepareStatement("SELECT GET_LOCK(?, ?)")};
      lock->setString(1, "phonon_migrate");
      lock->setInt(2, migrate_lock_timeout_s);
      result_ptr rs{lock->executeQuery()};
      if (!rs->next() || rs->isNull(1) || rs->getInt(1) != 1)
        throw db_error("mysql: migrate: another process holds the "
                       "migration lock");
    }
    struct unlock_guard {
      session& s;
      ~unlock_guard() {
        try {
          statement_ptr st{
            s.conn().prepareStatement("SELECT RELEASE_LOCK(?)")};
          st->setString(1, "phonon_migrate");
          result_ptr rs{st->executeQuery()};
        } catch (...) {
          // The server releases it with the connection anyway.
        }
      }
    } unlock{s};
    int64_t applied = 0;
    {
      result_ptr rs{s.use(query::max_version).executeQuery()};
      if (rs->next())
        applied = rs->getInt64(1);
    }
    for (auto& m : mysql_migrations()) {
      if (m.version <= applied)
        continue;
      for (auto& stmt : split_script(m.sql))
        s.execute(stmt);
      auto& add = s.use(query::add_migration);
      add.setInt(1, m.version);
      add.setString(2, m.name);
      add.setInt64(3, now_ms());
      add.executeUpdate();
    }
  });
}

bool mysql_store::insert(const recording& r) {
  return run("insert", [&](session& s) {
    auto& st = s.use(query::insert);
    bind_recording(st, r);
    try {
      st.executeUpdate();
      return true;
    } catch (const sql::SQLException& e) {
      if (is_duplicate_key(e))
        return false;
      throw;
    }
  });
}

std::optional<recording> mysql_store::upsert(const recording& r) {
  return run("upsert", [&](session& s) {
    transaction tx{s};
    auto& select = s.use(query::get_for_update);
    select.setInt64(1, r.user_id);
    select.setInt64(2, r.phrase_id);
    auto old = read_one(select);
    auto& st = s.use(query::upsert);
    bind_recording(st, r);
    st.executeUpdate();
    tx.commit();
    return old;
  });
}

std::optional<recording> mysql_store::get(int64_t user_id,
                                          int64_t phrase_id) {
  return run("get", [&](session& s) {
    auto& st = s.use(query::get);
    st.setInt64(1, user_id);
    st.setInt64(2, phrase_id);
    return read_one(st);
  });
}

bool mysql_store::mark_ready(int64_t user_id, int64_t phrase_id,
                             int64_t revision, int64_t duration_ms,
                             int32_t sample_rate, int32_t channels,
                             int64_t now) {
  return run("mark_ready", [&](session& s) {
    auto& st = s.use(query::mark_ready);
    st.setInt64(1, duration_ms);
    st.setInt(2, sample_rate);
    st.setInt(3, channels);
    st.setInt64(4, now);
    st.setInt64(5, user_id);
    st.setInt64(6, phrase_id);
    st.setInt64(7, revision);
    return st.executeUpdate() > 0;
  });
}

bool mysql_store::mark_failed(int64_t user_id, int64_t phrase_id,
                              int64_t revision, const std::string& error,
                              int64_t now) {
  return run("mark_failed", [&](session& s) {
    auto& st = s.use(query::mark_failed);
    st.setString(1, error);
    st.setInt64(2, now);
    st.setInt64(3, user_id);
    st.setInt64(4, phrase_id);
    st.setInt64(5, revision);
    return st.executeUpdate() > 0;
  });
}

std::optional<recording> mysql_store::remove(int64_t user_id,
                                             int64_t phrase_id) {
  return run("remove", [&](session& s) {
    transaction tx{s};
    auto& select = s.use(query::get_for_update);
    select.setInt64(1, user_id);
    select.setInt64(2, phrase_id);
    auto old = read_one(select);
    if (old) {
      auto& st = s.use(query::remove);
      st.setInt64(1, user_id);
      st.setInt64(2, phrase_id);
      st.executeUpdate();
    }
    tx.commit();
    return old;
  });
}

std::vector<recording> mysql_store::list(int64_t user_id, int64_t after,
                                         int limit) {
  if (limit <= 0)
    return {};
  return run("list", [&](session& s) {
    auto& st = s.use(query::list);
    st.setInt64(1, user_id);
    st.setInt64(2, after);
    st.setInt(3, limit);
    return read_all(st);
  });
}

std::vector<recording> mysql_store::list_processing() {
  return run("list_processing", [](session& s) {
    return read_all(s.use(query::list_processing));
  });
}

std::vector<recording> mysql_store::list_all(int64_t after_user,
                                             int64_t after_phrase,
                                             int limit) {
  if (limit <= 0)
    return {};
  return run("list_all", [&](session& s) {
    auto& st = s.use(query::list_all);
    st.setInt64(1, after_user);
    st.setInt64(2, after_user);
    st.setInt64(3, after_phrase);
    st.setInt(4, limit);
    return read_all(st);
  });
}

bool mysql_store::ping() noexcept {
  try {
    return run("ping", [](session& s) {
      result_ptr rs{s.use(query::ping).executeQuery()};
      return rs->next() && rs->getInt(1) == 1;
    });
  } catch (...) {
    return false;
  }
}

} // namespace

std::unique_ptr<recording_store> open_mysql_store(const mysql_options& opts) {
  if (opts.pool_size < 1)
    throw db_error("mysql: pool_size must be at least 1, got "
                   + std::to_string(opts.pool_size));
  return std::make_unique<mysql_store>(opts);
}

} // namespace phonon::persistence
