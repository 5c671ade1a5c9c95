#pragma once

#include <cstdint>
#include <memory>

#include <caf/actor_system.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/messages.hpp"
#include "actors/read_model.hpp"
#include "actors/user_gate.hpp"
#include "actors/storage_actor.hpp"
#include "actors/transcode_supervisor.hpp"

namespace phonon::actors {

/// Derived formats made from WAV masters on first request and kept in
/// storage. Concurrent first requests for one (recording revision, format)
/// run exactly one conversion (single flight); the cache is bounded by
/// `max_bytes`, evicting the least recently used file first. Each file
/// counts at least cache_block_bytes (its size rounded up to them: what it
/// takes on disk), and a revision keeps at most max_waveforms_per_revision
/// waveform files (one per zoom and channel choice): a new one evicts that
/// revision's least recently used waveform, so that files and inodes stay
/// bounded however many zooms clients ask for. Scheduled: all file work
/// happens in the storage actor.
/// The least a cached file counts against the bound: one filesystem block.
constexpr uint64_t cache_block_bytes = 4096;
/// Waveform files (cache/waveform-*) one recording revision keeps at most.
constexpr size_t max_waveforms_per_revision = 8;

/// `size` rounded up to whole cache_block_bytes (at least one block).
constexpr uint64_t cache_charge(uint64_t size) {
  return size == 0 ? cache_block_bytes
                   : (size + cache_block_bytes - 1) / cache_block_bytes
                       * cache_block_bytes;
}

using format_cache_actor = caf::typed_actor<
  /// (user, phrase, revision, format, request id, the recording's sample
  /// rate or 0) -> the cached file, made if missing. Requests that join a
  /// conversion already running log their own id and the id of the request
  /// whose conversion they wait for. The sample rate sizes a waveform job
  /// for the conversion queue (media::waveform_output_bound).
  caf::replies_to<derive_atom, int64_t, int64_t, int64_t, std::string,
                  std::string, int32_t>::with<blob_stat>,
  /// Forgets every cached entry of (user, phrase) (after delete/replace).
  caf::reacts_to<drop_atom, int64_t, int64_t>,
  /// (user, phrase, revision, format) was served from the read model: moves
  /// the file to the front of the LRU (sent at most once a second per file,
  /// read_model::should_touch).
  caf::reacts_to<touch_atom, int64_t, int64_t, int64_t, std::string>>;

/// Spawns the cache in front of `storage` and `supervisor`. A file it
/// evicts leaves `model` (read_model.hpp) before it leaves the disk. A
/// conversion it starts holds a place of its user in `gate`
/// (limits.per_user_inflight) until it ends; none left: the request is
/// answered errc::too_many_requests. No gate: no bound.
format_cache_actor spawn_format_cache(caf::actor_system& sys,
                                      storage_actor storage,
                                      supervisor_actor supervisor,
                                      uint64_t max_bytes,
                                      std::shared_ptr<read_model> model
                                      = std::make_shared<read_model>(0),
                                      std::shared_ptr<user_gate> gate
                                      = nullptr);

} // namespace phonon::actors
