#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace phonon::persistence {

/// Names one stored file of one revision of one recording. Paths are built
/// from the integers and from `name`, which is one of a fixed set chosen by
/// Phonon's code ("original", "master.wav", "cache/mp3", ...), never from
/// client text.
struct blob_key {
  int64_t user_id = 0;
  int64_t phrase_id = 0;
  int64_t revision = 0;
  std::string name;
};

/// A storage failure (disk full, permissions). `what()` is for logs only.
class storage_error : public std::runtime_error {
public:
  /// `no_space`: the write failed because the disk or quota is full
  /// (ENOSPC, EDQUOT), or the free space is below the configured reserve.
  explicit storage_error(const std::string& what, bool no_space = false)
    : std::runtime_error(what), no_space_(no_space) {
    // nop
  }

  /// True when more free space would have let the operation succeed.
  bool no_space() const noexcept {
    return no_space_;
  }

private:
  bool no_space_;
};

/// Facts about a stored file, enough to serve it.
struct blob_info {
  std::filesystem::path path;
  uint64_t size = 0;
  /// Modification time, Unix seconds.
  int64_t mtime = 0;
};

/// Files on the local filesystem under a base folder:
/// `<base>/<user>/<phrase>/<revision>/<name>` plus `<base>/tmp/` for temp
/// and spool files (same filesystem, so rename is atomic). Every write is
/// temp file -> fsync -> rename -> fsync of the folder: a reader sees the
/// whole file or none. Thread-safe: methods share no mutable state.
class local_blob_store {
public:
  /// Creates `base` and `base/tmp` when missing.
  explicit local_blob_store(std::filesystem::path base);

  /// Folder for spool files; files there are swept by sweep_temp().
  const std::filesystem::path& temp_dir() const noexcept;

  /// Returns a fresh unique path inside temp_dir() (file not created).
  std::filesystem::path make_temp_path(std::string_view prefix) const;

  /// Moves the finished file `src` (must be in temp_dir()) into place:
  /// fsync(src), rename, fsync(folder). Returns the stored file's info.
  blob_info put_file(const blob_key& key, const std::filesystem::path& src);

  /// Does the slow part of a later put_file(key, src) ahead of time, so
  /// that it can overlap other work (an upload's decode): fsync(src) and
  /// the durable creation of key's folder. put_file still does all of it;
  /// its syncs then find nothing left to write.
  void prepare_put(const blob_key& key, const std::filesystem::path& src);

  /// What put_upload() moved into place.
  struct installed_upload {
    blob_info original;
    /// The master, when it was installed with the original.
    std::optional<blob_info> master;
    /// Why a master that was given is not installed (for logs); empty when
    /// it is, or when none was given.
    std::string master_error;
    /// The master failed for want of space (ENOSPC, EDQUOT).
    bool master_no_space = false;
  };

  /// Moves an upload's files into their revision folder with one fsync of
  /// that folder: the spooled `spool` under `original` (fsync'd first, as
  /// put_file does) and, unless `master_src` is empty, the file
  /// `master_src` under `master` (fsync'd first unless `master_synced`:
  /// its writer already did). Both files must be in temp_dir() and both
  /// keys must name the same revision. A master that cannot be synced or
  /// moved is left where it is and the original is installed alone
  /// (`master` empty, `master_error` says why). A failure of the original
  /// or of the folder's fsync throws; the revision folder may then hold
  /// either file (the caller removes the revision).
  installed_upload put_upload(const blob_key& original,
                              const std::filesystem::path& spool,
                              const blob_key& master,
                              const std::filesystem::path& master_src,
                              bool master_synced);

  /// Writes `bytes` atomically under `key`.
  blob_info put_bytes(const blob_key& key, std::string_view bytes);

  /// Info of a stored file; nullopt when it does not exist.
  std::optional<blob_info> stat(const blob_key& key) const;

  /// Reads a whole stored file; throws storage_error when missing.
  std::string read(const blob_key& key) const;

  /// Removes one file; false when it did not exist.
  bool remove(const blob_key& key);

  /// Removes the folder of one revision with everything in it.
  void remove_revision(int64_t user_id, int64_t phrase_id, int64_t revision);

  /// Removes every revision folder of (user, phrase) except `keep`.
  void remove_other_revisions(int64_t user_id, int64_t phrase_id,
                              int64_t keep);

  /// A stored file found by a scan, with its key.
  struct listed_blob {
    blob_key key;
    blob_info info;
  };

  /// One revision folder found by a scan.
  struct listed_revision {
    int64_t user_id = 0;
    int64_t phrase_id = 0;
    int64_t revision = 0;
    /// The folder holds the revision's `original`.
    bool has_original = false;
  };

  /// Every `<user>/<phrase>/<revision>/` folder, in no particular order;
  /// folders whose names are not integers are ignored (startup
  /// reconciliation).
  std::vector<listed_revision> list_revisions() const;

  /// Bytes an unprivileged writer may still write on the base folder's
  /// file system (statvfs f_bavail).
  uint64_t free_bytes() const;

  /// Every file under `<user>/<phrase>/<revision>/<sub>/` (for example the
  /// derived-format cache, `sub` = "cache"); entries whose folder names are
  /// not integers are ignored. Used once at startup.
  std::vector<listed_blob> list_sub(const std::string& sub) const;

  /// Removes every file in temp_dir(); returns how many. Call at startup,
  /// before anything spools.
  size_t sweep_temp();

  /// True when the base folder is writable (readiness check).
  bool writable() const noexcept;

  /// Path a key maps to (exists or not).
  std::filesystem::path path_of(const blob_key& key) const;

private:
  std::filesystem::path base_;
  std::filesystem::path tmp_;
};

} // namespace phonon::persistence
