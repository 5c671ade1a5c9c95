#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/settings.hpp"
#include "persistence/recording.hpp"

namespace phonon::persistence {

/// Durable metadata of recordings. One owner (the repository actor) calls
/// the writes; how many threads may call the reads beside it says
/// concurrent_readers(). Every method throws db_error.
class recording_store {
public:
  virtual ~recording_store() = default;

  /// Applies pending migrations and records them in `schema_migrations`.
  virtual void migrate() = 0;

  /// Inserts a new row; returns false when (user, phrase) already exists.
  virtual bool insert(const recording& r) = 0;

  /// Replaces the row of (user, phrase) or inserts it; returns the previous
  /// row when there was one. Runs in one transaction.
  virtual std::optional<recording> upsert(const recording& r) = 0;

  /// Returns the row of (user, phrase), if any.
  virtual std::optional<recording> get(int64_t user_id, int64_t phrase_id) = 0;

  /// Sets status `ready` and the master's properties, but only while the
  /// row still has `revision`; returns false otherwise (stale completion).
  virtual bool mark_ready(int64_t user_id, int64_t phrase_id, int64_t revision,
                          int64_t duration_ms, int32_t sample_rate,
                          int32_t channels, int64_t now) = 0;

  /// Sets status `failed` with `error`, only while the row has `revision`.
  virtual bool mark_failed(int64_t user_id, int64_t phrase_id,
                           int64_t revision, const std::string& error,
                           int64_t now) = 0;

  /// Deletes the row; returns the deleted row when there was one.
  virtual std::optional<recording> remove(int64_t user_id,
                                          int64_t phrase_id) = 0;

  /// Up to `limit` rows of `user_id` with phrase_id > `after`, ascending.
  virtual std::vector<recording> list(int64_t user_id, int64_t after,
                                      int limit) = 0;

  /// Every row still `processing` (startup recovery).
  virtual std::vector<recording> list_processing() = 0;

  /// Up to `limit` rows of every user ordered by (user_id, phrase_id),
  /// starting after (after_user, after_phrase); (0, 0) starts at the first.
  /// Pages through the whole table (startup reconciliation).
  virtual std::vector<recording> list_all(int64_t after_user,
                                          int64_t after_phrase,
                                          int limit) = 0;

  /// Cheap round trip for readiness checks; false when unusable.
  virtual bool ping() noexcept = 0;

  /// How many threads may call the reads (get, list, list_processing,
  /// list_all, ping) at the same time, while one more thread calls any
  /// method; 0 when every call must come from one thread at a time. A read
  /// that starts after a write returned sees that write.
  virtual int concurrent_readers() const noexcept = 0;
};

/// Opens (creating when missing) the SQLite database at `path` with WAL and
/// a busy timeout; `:memory:` works for tests. Does not migrate. One
/// connection, for one thread at a time (concurrent_readers() is 0).
std::unique_ptr<recording_store> open_sqlite_store(const std::string& path);

/// Connection settings of the MySQL store: `database.mysql.*`.
using mysql_options = config::mysql_settings;

/// Connects to MySQL/MariaDB with MySQL Connector/C++ 1.1. The store keeps
/// up to `pool_size` connections, reconnects transparently after a lost
/// connection and is safe to call from several threads at once:
/// concurrent_readers() is `pool_size - 1`, so that those readers and one
/// writer never wait for a connection. Does not migrate. Throws db_error
/// when the server cannot be reached.
std::unique_ptr<recording_store> open_mysql_store(const mysql_options& opts);

} // namespace phonon::persistence
