#pragma once

#include <filesystem>
#include <memory>
#include <map>
#include <mutex>
#include <set>
#include <tuple>
#include <vector>

#include "persistence/blob_store.hpp"
#include "persistence/local_blob_store.hpp"
#include "persistence/s3/client.hpp"

namespace phonon::persistence {

/// Objects in an S3-compatible bucket (the durable copy) plus a local copy
/// of each object this node wrote or served, under a local folder laid out
/// like local_blob_store's (that folder also holds temp_dir()).
///
/// - A write succeeds only once the bucket has the object (PUT answered
///   200); the local copy is installed after it (temp file, fsync,
///   rename), so the node serves it without a round trip.
/// - stat() answers from the local copy and, when the node has none,
///   downloads the object first (streamed to a temp file, then renamed):
///   every blob_info path is a whole local file that the HTTP layer serves
///   with sendfile or its memory cache, and that transcoders read. Copies
///   are never stale: a revision's objects never change (blob_layout).
/// - exists(), listings and deletes ask the bucket; deletes remove the
///   local copies too. Another node's copies of a deleted revision stay
///   on its disk until it deletes the revision itself or restarts (its
///   rows no longer name them, so they are never served).
/// - Failures are s3::error (a storage_error): `unavailable()` when the
///   bucket did not answer after the client's retries.
///
/// Thread-safe: each call borrows one of a pool of s3::client (one curl
/// connection each), created as calls need them.
class s3_blob_store final : public blob_store {
public:
  /// Checks the settings (s3::client's rules); connects lazily.
  s3_blob_store(s3::settings cfg, std::filesystem::path local_base);
  ~s3_blob_store() override;

  const std::filesystem::path& temp_dir() const noexcept override;
  std::filesystem::path make_temp_path(std::string_view prefix) const override;
  size_t sweep_temp() override;

  blob_info put_file(const blob_key& key,
                     const std::filesystem::path& src) override;
  void prepare_put(const blob_key& key,
                   const std::filesystem::path& src) override;
  /// The original's PUT must succeed (else this throws and nothing is
  /// installed locally); a master whose PUT fails stays in temp_dir().
  installed_upload put_upload(const blob_key& original,
                              const std::filesystem::path& spool,
                              const blob_key& master,
                              const std::filesystem::path& master_src,
                              bool master_synced) override;
  blob_info put_bytes(const blob_key& key, std::string_view bytes) override;

  bool exists(const blob_key& key) override;
  std::optional<blob_info> stat(const blob_key& key) override;
  /// This node's copy when it has one; else one HEAD of the object, and a
  /// download (stat) only when it is smaller than `fetch_below`. The
  /// mtime of an object answered from its HEAD is its Last-Modified.
  std::optional<blob_info> facts(const blob_key& key,
                                 uint64_t fetch_below) override;
  std::string read(const blob_key& key) override;
  std::string read_range(const blob_key& key, uint64_t first,
                         uint64_t last) override;

  bool remove(const blob_key& key) override;
  void remove_revision(int64_t user_id, int64_t phrase_id,
                       int64_t revision) override;
  void remove_other_revisions(int64_t user_id, int64_t phrase_id,
                              int64_t keep) override;

  std::vector<listed_revision> list_revisions() override;
  std::vector<listed_blob> list_sub(const std::string& sub) override;

  uint64_t free_bytes() const override;
  /// The local folder is writable and the bucket answers a listing.
  bool writable() noexcept override;
  /// local_blob_store::check, then one listing of the bucket; a refused
  /// secret or key and a missing bucket throw s3::error naming S3's code.
  void check() override;

  /// This node's local copies and temp folder.
  local_blob_store& local() noexcept {
    return local_;
  }

  // -- objects without local copies (a worker's bucket jobs) -----------------

  /// Which bucket this store writes, as one string: endpoint (without a
  /// trailing '/'), bucket and prefix (with its '/'). Two stores with equal
  /// identities read and write the same objects under the same keys; a
  /// serve node trusts a worker's bucket only when they are equal.
  std::string identity() const;

  /// Downloads the object under `key` into the file `dst` (created or
  /// truncated), making no local copy: for a worker that converts an
  /// object and keeps nothing. Throws s3::error (errc::not_found when
  /// there is no such object); `dst` may then hold part of it.
  void get_object(const blob_key& key, const std::filesystem::path& dst);

  /// Stores the file `src` under `key` in the bucket only: one PUT, or a
  /// multipart upload completed (or aborted) at once, so the object is
  /// whole or not there. Makes no local copy and leaves `src` to the
  /// caller. Returns the object's size. Throws s3::error.
  uint64_t put_object(const blob_key& key, const std::filesystem::path& src);

private:
  /// A client from the pool, returned to it when the lease ends.
  class lease;

  std::unique_ptr<s3::client> acquire();
  void release(std::unique_ptr<s3::client> c);

  /// Remembers that a revision's objects are being removed (before its
  /// local copies go), so that a copy downloaded meanwhile by stat() on
  /// another thread is not left behind.
  void mark_gone(int64_t user_id, int64_t phrase_id, int64_t revision,
                 bool older_too);
  /// True when `key`'s revision was marked gone.
  bool is_gone(const blob_key& key);

  s3::settings cfg_;
  local_blob_store local_;
  std::mutex mtx_;
  std::vector<std::unique_ptr<s3::client>> idle_;
  /// Revisions removed lately (exact), and per recording the revision
  /// below which every revision is gone (remove_other_revisions); bounded.
  std::mutex gone_mtx_;
  std::set<std::tuple<int64_t, int64_t, int64_t>> gone_;
  std::map<std::pair<int64_t, int64_t>, int64_t> gone_below_;
};

} // namespace phonon::persistence
