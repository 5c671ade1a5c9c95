#pragma once

#include <filesystem>

#include "persistence/blob_store.hpp"

namespace phonon::persistence {

/// Files on the local filesystem under a base folder: the object
/// blob_layout::relative(key) is the file `<base>/<relative>`, plus
/// `<base>/tmp/` for temp and spool files (same filesystem, so rename is
/// atomic). Every write is temp file -> fsync -> rename -> fsync of the
/// folder: a reader sees the whole file or none. Thread-safe: methods share
/// no mutable state.
class local_blob_store final : public blob_store {
public:
  /// Creates `base` and `base/tmp` when missing.
  explicit local_blob_store(std::filesystem::path base);

  const std::filesystem::path& temp_dir() const noexcept override;
  std::filesystem::path make_temp_path(std::string_view prefix) const override;
  size_t sweep_temp() override;

  /// fsync(src), rename, fsync(folder).
  blob_info put_file(const blob_key& key,
                     const std::filesystem::path& src) override;

  /// fsync(src) and the durable creation of key's folder; put_file's syncs
  /// then find nothing left to write.
  void prepare_put(const blob_key& key,
                   const std::filesystem::path& src) override;

  /// Both files move into the revision folder with one fsync of it.
  installed_upload put_upload(const blob_key& original,
                              const std::filesystem::path& spool,
                              const blob_key& master,
                              const std::filesystem::path& master_src,
                              bool master_synced) override;

  blob_info put_bytes(const blob_key& key, std::string_view bytes) override;

  bool exists(const blob_key& key) override;
  std::optional<blob_info> stat(const blob_key& key) override;
  std::string read(const blob_key& key) override;
  std::string read_range(const blob_key& key, uint64_t first,
                         uint64_t last) override;

  bool remove(const blob_key& key) override;
  void remove_revision(int64_t user_id, int64_t phrase_id,
                       int64_t revision) override;
  void remove_other_revisions(int64_t user_id, int64_t phrase_id,
                              int64_t keep) override;

  /// Every `<user>/<phrase>/<revision>/` folder; folders whose names are
  /// not integers are ignored.
  std::vector<listed_revision> list_revisions() override;
  std::vector<listed_blob> list_sub(const std::string& sub) override;

  uint64_t free_bytes() const override;

  /// A probe file can be created, written and removed in temp_dir().
  bool writable() noexcept override;

  /// Throws unless writable().
  void check() override;

  /// Path a key maps to (exists or not).
  std::filesystem::path path_of(const blob_key& key) const;

  /// The base folder: path_of(key) is base() / blob_layout::relative(key).
  const std::filesystem::path& base() const noexcept {
    return base_;
  }

private:
  std::filesystem::path base_;
  std::filesystem::path tmp_;
};

} // namespace phonon::persistence
