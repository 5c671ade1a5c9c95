#pragma once

#include <atomic>
#include <memory>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/messages.hpp"
#include "persistence/recording_store.hpp"

namespace phonon::actors {

/// One of the repository's readers: answers the read messages of
/// repository_actor (same signatures, same replies) on a thread of its own,
/// beside the repository and the other readers. Only the repository sends
/// to it (it delegates the reads it takes in, see spawn_repository), so
/// every read reaches a reader after the writes that came before it were
/// committed.
using repository_reader_actor = caf::typed_actor<
  caf::replies_to<caf::get_atom, int64_t, int64_t, std::string>::with<
    persistence::recording>,
  caf::replies_to<list_atom, int64_t, int64_t, int32_t, std::string>::with<
    std::vector<persistence::recording>>,
  caf::replies_to<pending_atom>::with<std::vector<persistence::recording>>,
  caf::replies_to<scan_atom, int64_t, int64_t, int32_t>::with<
    std::vector<persistence::recording>>,
  caf::replies_to<ping_atom>::with<bool>>;

/// Reads a reader has been handed and not finished yet: the repository
/// adds one before it delegates a read, the reader takes it off when it
/// has answered. The one piece of state the two share, so that the
/// repository can pick the least-loaded reader without waiting for replies.
using reader_load = std::shared_ptr<std::atomic<int>>;

/// Spawns a detached reader over `store`, which the repository shares and
/// which must allow concurrent reads (recording_store::concurrent_readers).
repository_reader_actor
spawn_repository_reader(caf::actor_system& sys,
                        std::shared_ptr<persistence::recording_store> store,
                        reader_load load);

} // namespace phonon::actors
