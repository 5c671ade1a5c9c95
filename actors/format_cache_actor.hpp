#pragma once

#include <cstdint>
#include <memory>

#include <caf/actor_system.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/messages.hpp"
#include "actors/read_model.hpp"
#include "actors/storage_actor.hpp"
#include "actors/transcode_supervisor.hpp"

namespace phonon::actors {

/// Derived formats made from WAV masters on first request and kept in
/// storage. Concurrent first requests for one (recording revision, format)
/// run exactly one conversion (single flight); the cache is bounded by
/// `max_bytes`, evicting the least recently used file first. Scheduled: all
/// file work happens in the storage actor.
using format_cache_actor = caf::typed_actor<
  /// (user, phrase, revision, format, request id) -> the cached file, made
  /// if missing. Requests that join a conversion already running log their
  /// own id and the id of the request whose conversion they wait for.
  caf::replies_to<derive_atom, int64_t, int64_t, int64_t, std::string,
                  std::string>::with<blob_stat>,
  /// Forgets every cached entry of (user, phrase) (after delete/replace).
  caf::reacts_to<drop_atom, int64_t, int64_t>,
  /// (user, phrase, revision, format) was served from the read model: moves
  /// the file to the front of the LRU (sent at most once a second per file,
  /// read_model::should_touch).
  caf::reacts_to<touch_atom, int64_t, int64_t, int64_t, std::string>>;

/// Spawns the cache in front of `storage` and `supervisor`. A file it
/// evicts leaves `model` (read_model.hpp) before it leaves the disk.
format_cache_actor spawn_format_cache(caf::actor_system& sys,
                                      storage_actor storage,
                                      supervisor_actor supervisor,
                                      uint64_t max_bytes,
                                      std::shared_ptr<read_model> model
                                      = std::make_shared<read_model>(0));

} // namespace phonon::actors
