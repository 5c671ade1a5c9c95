#pragma once

#include <memory>
#include <string>

#include <caf/actor_system.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/messages.hpp"
#include "persistence/blob_store.hpp"

namespace phonon::actors {

/// Owns the stored bytes. Runs detached because every handler does blocking
/// file I/O (fsync included). Failures answer errc::storage_failure; a
/// missing file answers errc::not_found.
using storage_actor = caf::typed_actor<
  /// Reads a spooled upload (a file in the temp folder) into memory.
  caf::replies_to<spool_atom, std::string>::with<std::string>,
  /// Moves a spooled file into place durably (fsync, rename, fsync dir).
  caf::replies_to<store_atom, blob_ref, std::string>::with<blob_stat>,
  /// Writes bytes durably under a key.
  caf::replies_to<caf::put_atom, blob_ref, std::string>::with<blob_stat>,
  /// Reads a stored file.
  caf::replies_to<read_atom, blob_ref>::with<std::string>,
  /// Stats a stored file; errc::not_found when missing.
  caf::replies_to<stat_atom, blob_ref>::with<blob_stat>,
  /// Removes a spooled file (an upload that was refused).
  caf::reacts_to<drop_atom, std::string>,
  /// Removes one stored file (cache eviction).
  caf::replies_to<drop_atom, blob_ref>::with<bool>,
  /// Removes one revision of (user, phrase) with everything in it.
  caf::replies_to<drop_atom, int64_t, int64_t, int64_t>::with<bool>,
  /// Removes every revision of (user, phrase) except `keep` (0 = all).
  caf::replies_to<prune_atom, int64_t, int64_t, int64_t>::with<bool>,
  /// Every stored file in the `sub` folder of any revision ("cache").
  caf::replies_to<list_atom, std::string>::with<std::vector<listed_blob>>,
  /// True when the storage is writable.
  caf::replies_to<ping_atom>::with<bool>>;

/// Spawns the storage actor around a blob store.
storage_actor spawn_storage(caf::actor_system& sys,
                            std::shared_ptr<persistence::local_blob_store> st);

} // namespace phonon::actors
