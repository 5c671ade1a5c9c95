#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "actors/messages.hpp"
#include "persistence/recording.hpp"

namespace phonon::actors {

/// One stored file of a recording view: its format and the facts a GET
/// answers with.
struct view_file {
  std::string format;
  file_ref facts;
  /// Unix ms of the last time a hot read told the format cache about this
  /// file (derived formats only; see read_model::should_touch).
  mutable std::atomic<int64_t> touched_ms{0};

  view_file(std::string f, file_ref r)
    : format(std::move(f)), facts(std::move(r)) {
    // nop
  }
};

/// What a GET of one recording needs, immutable once published: the row as
/// the database holds it and the facts of the files known to be stored for
/// the row's revision.
struct recording_view {
  persistence::recording row;
  std::vector<std::shared_ptr<const view_file>> files;

  /// The file of `format`, or nullptr.
  const view_file* file(const std::string& format) const;
};

using view_ptr = std::shared_ptr<const recording_view>;

/// The published read model (DESIGN.md, "Read path"): what the actors that
/// change recordings know, readable by Beast's io threads without a
/// message, a database query or a lock held across I/O.
///
/// Writers are the actors (the recordings actor publishes what its misses
/// learned and invalidates on every change; the format cache drops evicted
/// files). Readers take a shared pointer to an immutable view under a short
/// shard lock and use it afterwards without any lock.
///
/// Exact invalidation: every change calls invalidate() before it answers,
/// which removes the key's view and bumps the key's generation. A miss
/// reads generation() before it asks the database and passes it to
/// publish(), which refuses when the generation moved meanwhile, so an
/// answer the database gave before a change can never be published after
/// it. Generations live in a fixed table of buckets (keys share a bucket
/// by hash): a shared bucket costs at most a skipped publish, never a stale
/// view, and the table does not grow with the keys ever seen.
class read_model {
public:
  /// Counters for /metrics.
  struct stats {
    uint64_t entries = 0;
    uint64_t hits = 0;
    uint64_t misses = 0;
  };

  /// A model of at most `max_entries` views (0 turns publishing off; every
  /// lookup then misses).
  explicit read_model(size_t max_entries = 65536);

  read_model(const read_model&) = delete;
  read_model& operator=(const read_model&) = delete;

  /// The view of (user, phrase) or nullptr; counts a hit or a miss.
  view_ptr find(int64_t user, int64_t phrase);

  /// The key's current generation, read by a miss before it asks the
  /// database.
  uint64_t generation(int64_t user, int64_t phrase) const;

  /// Publishes the row of a miss read at generation `gen`: keeps the files
  /// of the current view when it is of the same revision. False (nothing
  /// changed) when the key changed since `gen`.
  bool publish_row(const persistence::recording& row, uint64_t gen);

  /// Adds the facts of `format`'s stored file to the view of `row`'s
  /// revision read at generation `gen` (replacing other facts the view
  /// held for it); false when the key changed since, or the view is gone
  /// or of another revision.
  bool publish_file(const persistence::recording& row, uint64_t gen,
                    const std::string& format, const file_ref& facts);

  /// A change of (user, phrase) happened or is about to be answered:
  /// removes its view and moves its generation on.
  void invalidate(int64_t user, int64_t phrase);

  /// A stored file of `revision` in `format` is gone (evicted): removes it
  /// from the view and moves the key's generation on.
  void forget_file(int64_t user, int64_t phrase, int64_t revision,
                   const std::string& format);

  /// True at most once per `every_ms` for `file`: a hot read of a derived
  /// format tells the format cache then, so its LRU order stays close to
  /// the real use without a message per GET.
  static bool should_touch(const view_file& file, int64_t now_ms,
                           int64_t every_ms = 1000);

  stats snapshot() const;

private:
  static constexpr size_t shard_count = 64;
  static constexpr size_t buckets_per_shard = 64;

  struct key_hash {
    size_t operator()(const std::pair<int64_t, int64_t>& k) const noexcept;
  };

  struct shard {
    mutable std::mutex mtx;
    std::unordered_map<std::pair<int64_t, int64_t>, view_ptr, key_hash> views;
    std::array<uint64_t, buckets_per_shard> generations{};
  };

  shard& shard_of(int64_t user, int64_t phrase, size_t& bucket) const;

  /// Stores `view` in `s` (held locked), dropping an arbitrary other view
  /// when the shard is full.
  void put_locked(shard& s, std::pair<int64_t, int64_t> key, view_ptr view);

  const size_t per_shard_max_;
  mutable std::array<shard, shard_count> shards_;
  std::atomic<uint64_t> hits_{0};
  std::atomic<uint64_t> misses_{0};
};

} // namespace phonon::actors
