#pragma once

#include <memory>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/messages.hpp"
#include "persistence/recording_store.hpp"

namespace phonon::actors {

/// The only writer of recording metadata. Runs detached (its own thread), so
/// its handlers may block on the database. Database failures answer
/// errc::database_unavailable.
///
/// Reads (get, list, pending, scan, ping) run on the store's concurrent
/// readers when it has some (MySQL: `pool_size - 1`, see
/// repository_reader.hpp): the repository delegates each one to the reader
/// with the fewest reads in flight, in mailbox order, so a read leaves only
/// after every write sent before it has been committed and sees it. Without
/// readers (SQLite, a MySQL pool of one) it answers them itself.
///
/// The last argument of the messages a request causes is its request id
/// (X-Request-Id, empty for work no request caused): the failure lines
/// these handlers log carry it (log::rid).
using repository_actor = caf::typed_actor<
  /// Returns the row of (user, phrase) or errc::not_found.
  caf::replies_to<caf::get_atom, int64_t, int64_t, std::string>::with<
    persistence::recording>,
  /// Inserts a new row; errc::already_exists when the pair exists.
  caf::replies_to<insert_atom, persistence::recording, std::string>::with<
    persistence::recording>,
  /// Inserts or replaces; returns the previous rows (zero or one).
  caf::replies_to<upsert_atom, persistence::recording, std::string>::with<
    std::vector<persistence::recording>>,
  /// Marks (user, phrase, revision) ready with the master's facts; false
  /// when the revision is stale.
  caf::replies_to<ready_atom, persistence::recording, std::string>::with<
    bool>,
  /// Marks (user, phrase, revision) failed with `error` (then the request
  /// id).
  caf::replies_to<fail_atom, int64_t, int64_t, int64_t, std::string,
                  std::string>::with<bool>,
  /// Deletes the row; returns the deleted rows (zero or one).
  caf::replies_to<remove_atom, int64_t, int64_t, std::string>::with<
    std::vector<persistence::recording>>,
  /// Lists (user, after, limit); then the request id.
  caf::replies_to<list_atom, int64_t, int64_t, int32_t, std::string>::with<
    std::vector<persistence::recording>>,
  /// Every row still `processing`.
  caf::replies_to<pending_atom>::with<std::vector<persistence::recording>>,
  /// A page of every row, ordered by (user, phrase), after (user, phrase).
  caf::replies_to<scan_atom, int64_t, int64_t, int32_t>::with<
    std::vector<persistence::recording>>,
  /// True when the database answers.
  caf::replies_to<ping_atom>::with<bool>>;

/// Spawns the repository around an opened and migrated store, with
/// `store->concurrent_readers()` detached readers that end with it.
repository_actor
spawn_repository(caf::actor_system& sys,
                 std::unique_ptr<persistence::recording_store> store);

/// Current Unix time in milliseconds.
int64_t unix_millis();

} // namespace phonon::actors
