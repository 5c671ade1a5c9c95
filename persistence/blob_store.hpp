#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "persistence/blob_layout.hpp"

namespace phonon::persistence {

/// A storage failure (disk full, permissions, an object store that does not
/// answer). `what()` is for logs only.
class storage_error : public std::runtime_error {
public:
  /// What a caller decides on.
  enum class kind : uint8_t {
    /// Anything else: permissions, corrupt state, a refused request.
    failure,
    /// The write failed because the disk or quota is full (ENOSPC,
    /// EDQUOT), or the free space is below the configured reserve.
    no_space,
    /// The store did not answer (connection refused or reset, timeouts,
    /// 5xx after retries): the same operation may succeed later.
    unavailable,
  };

  explicit storage_error(const std::string& what, bool no_space = false)
    : std::runtime_error(what),
      kind_(no_space ? kind::no_space : kind::failure) {
    // nop
  }

  storage_error(const std::string& what, kind k)
    : std::runtime_error(what), kind_(k) {
    // nop
  }

  /// True when more free space would have let the operation succeed.
  bool no_space() const noexcept {
    return kind_ == kind::no_space;
  }

  /// True when the store was unreachable: retrying later may succeed.
  bool unavailable() const noexcept {
    return kind_ == kind::unavailable;
  }

private:
  kind kind_;
};

/// Facts about a stored object, enough to serve it.
struct blob_info {
  /// A complete local file holding the object's bytes: the stored file
  /// itself (local store) or this node's copy of the object (S3).
  std::filesystem::path path;
  uint64_t size = 0;
  /// Modification time, Unix seconds.
  int64_t mtime = 0;
};

/// Where Phonon keeps the bytes of recordings: every object under the name
/// blob_layout gives it, written atomically (a reader sees a whole object
/// or none), plus a node-local temp folder for spool and transcoder files.
/// Implementations: local_blob_store (files under a folder) and
/// s3_blob_store (objects in an S3 bucket, with a local copy of what this
/// node served or wrote). One contract test suite holds both to the same
/// behaviour (tests/unit/persistence/blob_store_contract.hpp).
///
/// Every method blocks and throws storage_error (or a subclass) on
/// failure; a missing object is not a failure where the method says so.
/// Thread-safe: methods may be called from several threads.
class blob_store {
public:
  virtual ~blob_store();

  // -- temp files ------------------------------------------------------------

  /// Node-local folder for spool and temp files, on the same file system
  /// as the local copies (rename is atomic); swept by sweep_temp().
  virtual const std::filesystem::path& temp_dir() const noexcept = 0;

  /// Returns a fresh unique path inside temp_dir() (file not created).
  virtual std::filesystem::path
  make_temp_path(std::string_view prefix) const = 0;

  /// Removes every file in temp_dir(); returns how many. Call at startup,
  /// before anything spools.
  virtual size_t sweep_temp() = 0;

  // -- writes ------------------------------------------------------------------

  /// Stores the finished file `src` (must be in temp_dir()) under `key`
  /// durably; `src` is consumed (moved into place) on success and left
  /// for the caller on failure. Returns the stored object's info.
  virtual blob_info put_file(const blob_key& key,
                             const std::filesystem::path& src) = 0;

  /// Does the slow part of a later put_file(key, src) ahead of time, so
  /// that it can overlap other work (an upload's decode). put_file still
  /// does all of it.
  virtual void prepare_put(const blob_key& key,
                           const std::filesystem::path& src) = 0;

  /// What put_upload() stored.
  struct installed_upload {
    blob_info original;
    /// The master, when it was stored with the original.
    std::optional<blob_info> master;
    /// Why a master that was given is not stored (for logs); empty when
    /// it is, or when none was given.
    std::string master_error;
    /// The master failed for want of space (ENOSPC, EDQUOT).
    bool master_no_space = false;
  };

  /// Stores an upload's files: the spooled `spool` under `original` and,
  /// unless `master_src` is empty, the file `master_src` under `master`
  /// (`master_synced`: its writer already fsync'd it). Both files must be
  /// in temp_dir() and both keys must name the same revision. A master
  /// that cannot be stored is left where it is and the original is stored
  /// alone (`master` empty, `master_error` says why). A failure of the
  /// original throws; the revision may then hold either object (the
  /// caller removes the revision).
  virtual installed_upload put_upload(const blob_key& original,
                                      const std::filesystem::path& spool,
                                      const blob_key& master,
                                      const std::filesystem::path& master_src,
                                      bool master_synced) = 0;

  /// Writes `bytes` atomically under `key`.
  virtual blob_info put_bytes(const blob_key& key, std::string_view bytes) = 0;

  // -- reads -------------------------------------------------------------------

  /// True when the object exists in the store (for S3: asks the bucket,
  /// whatever this node's copies hold). Cheap: never copies bytes.
  virtual bool exists(const blob_key& key) = 0;

  /// Info of a stored object, its `path` a complete local file (for S3 the
  /// object is copied to this node first when it has no copy); nullopt
  /// when it does not exist.
  virtual std::optional<blob_info> stat(const blob_key& key) = 0;

  /// The facts of an object for an answer that may not need its bytes (a
  /// GET redirected to the bucket, storage.s3.redirect): stat() here; a
  /// store whose objects live elsewhere (S3) answers an object of at least
  /// `fetch_below` bytes that this node has no copy of from the object's
  /// metadata alone, without copying it, and then `path` names where the
  /// copy would be and does not exist. nullopt when there is no object.
  virtual std::optional<blob_info> facts(const blob_key& key,
                                         uint64_t fetch_below) {
    (void) fetch_below;
    return stat(key);
  }

  /// Reads a whole stored object; throws storage_error when missing.
  virtual std::string read(const blob_key& key) = 0;

  /// Bytes `first`..`last` (inclusive; `last` past the end is cut to the
  /// end) of a stored object; throws storage_error when missing or when
  /// `first` is past the end.
  virtual std::string read_range(const blob_key& key, uint64_t first,
                                 uint64_t last) = 0;

  // -- removal -----------------------------------------------------------------

  /// Removes one object; false when it did not exist.
  virtual bool remove(const blob_key& key) = 0;

  /// Removes one revision with every object in it (a prefix delete).
  virtual void remove_revision(int64_t user_id, int64_t phrase_id,
                               int64_t revision) = 0;

  /// Removes every revision of (user, phrase) except `keep` (0 = all).
  virtual void remove_other_revisions(int64_t user_id, int64_t phrase_id,
                                      int64_t keep) = 0;

  // -- listing -----------------------------------------------------------------

  /// A stored object found by a listing, with its key. For S3 `info.path`
  /// is where this node's copy would be (it may not exist).
  struct listed_blob {
    blob_key key;
    blob_info info;
  };

  /// One revision found by a listing.
  struct listed_revision {
    int64_t user_id = 0;
    int64_t phrase_id = 0;
    int64_t revision = 0;
    /// The revision holds its `original`.
    bool has_original = false;
  };

  /// Every revision that holds at least one object, in no particular
  /// order; names that blob_layout did not make are ignored (startup
  /// reconciliation).
  virtual std::vector<listed_revision> list_revisions() = 0;

  /// Every object in the `sub` folder of any revision (for example the
  /// derived-format cache, `sub` = "cache"). Used once at startup.
  virtual std::vector<listed_blob> list_sub(const std::string& sub) = 0;

  // -- health ------------------------------------------------------------------

  /// Bytes an unprivileged writer may still write on the local file system
  /// that holds temp_dir() and the local copies (statvfs f_bavail).
  virtual uint64_t free_bytes() const = 0;

  /// True when the store takes writes now (readiness check).
  virtual bool writable() noexcept = 0;

  /// Throws storage_error saying why the store cannot be used (for S3: a
  /// refused key or signature, a missing bucket, no answer); returns when
  /// it can. Called once at startup.
  virtual void check() = 0;
};

} // namespace phonon::persistence
