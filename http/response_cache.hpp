#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "actors/messages.hpp"

namespace phonon::http {

/// The bytes of one stored file, immutable once made. Sessions share it
/// while they write windows of it (server.cpp write_wire), so an
/// entry evicted meanwhile stays alive until its last answer is written.
struct cached_file {
  /// The file's facts the bytes belong to (path, size, mtime, ETag).
  actors::file_ref facts;
  /// The whole file.
  std::string bytes;
  /// The head fields of a plain GET of it (wire.hpp file_fields of
  /// plan_file without Range or conditions), ready to write after the
  /// per-request fields: the common answer needs no planning.
  std::string plain_fields;
};

/// A shared, immutable cached file.
using cached_file_ptr = std::shared_ptr<const cached_file>;

/// A cached_file of `bytes` as the contents of `file`, with its head
/// fields made (not inserted anywhere).
cached_file_ptr make_cached_file(const actors::file_ref& file,
                                 std::string bytes);

/// A byte-bounded least-recently-used cache of small stored files, shared
/// by every connection and io thread (storage.memory_cache_bytes,
/// storage.memory_cache_item_max).
///
/// Keyed on the whole identity of a file's contents: the path names the
/// slot, and a lookup only hits when the ETag, size and mtime the actors
/// just reported equal those of the cached bytes. A lookup with other facts
/// drops the entry (the file was replaced), and an insert replaces
/// whatever the path held, so at most one version of a path is kept.
///
/// Thread-safe: every member may be called from any thread. One mutex
/// guards the index for a hash lookup and a list splice; no I/O happens
/// under it (callers read the file before insert()).
class response_cache {
public:
  /// Counters and gauges, read together.
  struct stats {
    uint64_t bytes = 0;
    uint64_t entries = 0;
    uint64_t hits = 0;
    uint64_t misses = 0;
    uint64_t evictions = 0;
  };

  /// A cache of at most `max_bytes` bytes of file contents holding files of
  /// at most `item_max` bytes; `max_bytes` 0 turns it off.
  response_cache(uint64_t max_bytes, uint64_t item_max);

  response_cache(const response_cache&) = delete;
  response_cache& operator=(const response_cache&) = delete;

  /// True when a file of `size` bytes may be cached (the cache is on and
  /// the file is small enough).
  bool admits(uint64_t size) const noexcept {
    return max_bytes_ > 0 && size <= item_max_ && size <= max_bytes_;
  }

  /// The cached bytes of `file` (moved to the front), or nullptr; counts a
  /// hit or a miss.
  cached_file_ptr find(const actors::file_ref& file);

  /// Caches `bytes` as the contents of `file`, replacing whatever the path
  /// held, and evicts least recently used entries until the bound holds.
  /// Returns the new entry (also when it is not admitted, uncached).
  cached_file_ptr insert(const actors::file_ref& file, std::string bytes);

  /// Drops the entry of `path`, if any (not counted as an eviction).
  void erase(const std::string& path);

  /// A consistent snapshot of the counters.
  stats snapshot() const;

  /// The byte bound.
  uint64_t max_bytes() const noexcept {
    return max_bytes_;
  }

  /// The largest file kept.
  uint64_t item_max() const noexcept {
    return item_max_;
  }

private:
  using lru_list = std::list<cached_file_ptr>;

  /// Removes `it` from the list and the index and returns its entry; the
  /// caller holds mtx_.
  cached_file_ptr drop(lru_list::iterator it);

  const uint64_t max_bytes_;
  const uint64_t item_max_;
  mutable std::mutex mtx_;
  /// Most recently used first.
  lru_list lru_;
  std::unordered_map<std::string, lru_list::iterator> index_;
  stats stats_;
};

/// True when `a` and `b` describe the same contents (path, ETag, size and
/// mtime equal).
bool same_contents(const actors::file_ref& a, const actors::file_ref& b);

} // namespace phonon::http
