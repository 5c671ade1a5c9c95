#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <random>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "persistence/local_blob_store.hpp"

namespace phonon::persistence {

namespace fs = std::filesystem;

namespace {

/// Owns a POSIX file descriptor.
class unique_fd {
public:
  explicit unique_fd(int fd = -1) noexcept : fd_(fd) {
    // nop
  }

  unique_fd(const unique_fd&) = delete;
  unique_fd& operator=(const unique_fd&) = delete;

  ~unique_fd() {
    if (fd_ >= 0)
      ::close(fd_);
  }

  int get() const noexcept {
    return fd_;
  }

  /// Closes now and returns close(2)'s result (it can report write errors).
  int close() noexcept {
    auto fd = std::exchange(fd_, -1);
    return fd >= 0 ? ::close(fd) : 0;
  }

private:
  int fd_;
};

[[noreturn]] void fail_errno(int err, const std::string& what,
                             const fs::path& path) {
  // std::generic_category().message() is thread-safe, unlike strerror().
  throw storage_error(what + " " + path.string() + ": "
                        + std::generic_category().message(err),
                      err == ENOSPC || err == EDQUOT);
}

[[noreturn]] void fail_errno(const std::string& what, const fs::path& path) {
  fail_errno(errno, what, path);
}

[[noreturn]] void fail_ec(const std::error_code& ec, const std::string& what,
                          const fs::path& path) {
  throw storage_error(what + " " + path.string() + ": " + ec.message(),
                      ec == std::errc::no_space_on_device
                        || ec.value() == EDQUOT);
}

unique_fd open_or_fail(const fs::path& path, int flags, mode_t mode = 0) {
  int fd;
  do {
    fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0)
    fail_errno("open", path);
  return unique_fd{fd};
}

void fsync_or_fail(int fd, const fs::path& path) {
  if (::fsync(fd) != 0)
    fail_errno("fsync", path);
}

/// Makes a rename or a new entry in `dir` durable.
void fsync_dir(const fs::path& dir) {
  auto fd = open_or_fail(dir, O_RDONLY | O_DIRECTORY);
  fsync_or_fail(fd.get(), dir);
}

/// Creates `dir` and its missing ancestors. Every new folder's entry is
/// made durable by an fsync of its parent.
void make_dirs_durable(const fs::path& dir) {
  std::vector<fs::path> missing;
  for (auto p = dir; !p.empty(); p = p.parent_path()) {
    struct stat st;
    if (::stat(p.c_str(), &st) == 0) {
      if (!S_ISDIR(st.st_mode))
        fail_errno(ENOTDIR, "mkdir", p);
      break;
    }
    if (errno != ENOENT)
      fail_errno("stat", p);
    missing.push_back(p);
    if (p == p.parent_path())
      break;
  }
  for (auto i = missing.rbegin(); i != missing.rend(); ++i) {
    // EEXIST: a concurrent writer made it; its fsync may not have happened
    // yet, so sync the parent anyway.
    if (::mkdir(i->c_str(), 0755) != 0 && errno != EEXIST)
      fail_errno("mkdir", *i);
    auto parent = i->parent_path();
    fsync_dir(parent.empty() ? fs::path{"."} : parent);
  }
}

/// Writes all of `bytes`, retrying short writes and EINTR.
void write_all(int fd, std::string_view bytes, const fs::path& path) {
  auto p = bytes.data();
  auto left = bytes.size();
  while (left > 0) {
    auto n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      fail_errno("write", path);
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
}

bool valid_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.'
         || c == '_' || c == '-';
}

/// Allowed in temp file prefixes: the name characters without '/'.
void check_prefix(std::string_view prefix) {
  for (auto c : prefix)
    if (!valid_name_char(c))
      throw storage_error("invalid temp prefix '" + std::string{prefix}
                          + "'");
  if (prefix.find("..") != std::string_view::npos)
    throw storage_error("invalid temp prefix '" + std::string{prefix} + "'");
}

blob_info info_of(const fs::path& path, const struct stat& st) {
  blob_info info;
  info.path = path;
  info.size = static_cast<uint64_t>(st.st_size);
  info.mtime = static_cast<int64_t>(st.st_mtim.tv_sec);
  return info;
}

/// Syncs the data of the file at `path`.
void fsync_file(const fs::path& path) {
  auto fd = open_or_fail(path, O_RDONLY);
  fsync_or_fail(fd.get(), path);
}

/// Renames `src` onto `dst`. rename(2) replaces `dst` atomically: a reader
/// sees the old or the new file, and one that opened the old file keeps
/// reading it. Durable only once the folder is synced.
void rename_or_fail(const fs::path& src, const fs::path& dst) {
  if (::rename(src.c_str(), dst.c_str()) != 0)
    fail_errno("rename to " + dst.string() + " from", src);
}

blob_info stat_or_fail(const fs::path& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0)
    fail_errno("stat", path);
  return info_of(path, st);
}

/// Moves `src` onto `dst` durably; `src` must already be synced.
blob_info install(const fs::path& src, const fs::path& dst) {
  auto dir = dst.parent_path();
  make_dirs_durable(dir);
  rename_or_fail(src, dst);
  fsync_dir(dir);
  return stat_or_fail(dst);
}

std::string id_text(int64_t x) {
  return std::to_string(x);
}

} // namespace

local_blob_store::local_blob_store(fs::path base)
  : base_(std::move(base)), tmp_(base_ / "tmp") {
  std::error_code ec;
  fs::create_directories(tmp_, ec);
  if (ec)
    fail_ec(ec, "create", tmp_);
}

const fs::path& local_blob_store::temp_dir() const noexcept {
  return tmp_;
}

fs::path local_blob_store::make_temp_path(std::string_view prefix) const {
  check_prefix(prefix);
  static std::atomic<uint64_t> counter{0};
  // A fresh random number per call: unique across processes sharing the
  // folder; the counter keeps names unique within this process.
  std::random_device rd;
  auto rnd = (static_cast<uint64_t>(rd()) << 32) ^ static_cast<uint64_t>(rd());
  char buf[64];
  std::snprintf(buf, sizeof(buf), "-%016llx-%llu",
                static_cast<unsigned long long>(rnd),
                static_cast<unsigned long long>(++counter));
  return tmp_ / (std::string{prefix} + buf);
}

blob_info local_blob_store::put_file(const blob_key& key, const fs::path& src) {
  auto dst = path_of(key);
  // Sync the data before the rename makes it visible under its name.
  fsync_file(src);
  return install(src, dst);
}

local_blob_store::installed_upload
local_blob_store::put_upload(const blob_key& original, const fs::path& spool,
                             const blob_key& master,
                             const fs::path& master_src, bool master_synced) {
  auto dst = path_of(original);
  auto dir = dst.parent_path();
  // Usually done already by prepare_put(): then both find nothing to do.
  fsync_file(spool);
  make_dirs_durable(dir);
  rename_or_fail(spool, dst);
  installed_upload out;
  std::optional<fs::path> master_dst;
  if (!master_src.empty()) {
    // The master is optional here: whatever goes wrong with it leaves the
    // original to be installed alone, and the caller makes the master
    // later.
    try {
      auto path = path_of(master);
      if (path.parent_path() != dir)
        throw storage_error("master " + path.string()
                            + " is not in the revision folder " + dir.string());
      if (!master_synced)
        fsync_file(master_src);
      rename_or_fail(master_src, path);
      master_dst = std::move(path);
    } catch (const storage_error& e) {
      out.master_error = e.what();
      out.master_no_space = e.no_space();
    }
  }
  // One fsync makes both entries durable.
  fsync_dir(dir);
  out.original = stat_or_fail(dst);
  if (master_dst)
    out.master = stat_or_fail(*master_dst);
  return out;
}

void local_blob_store::prepare_put(const blob_key& key, const fs::path& src) {
  auto dst = path_of(key);
  fsync_file(src);
  make_dirs_durable(dst.parent_path());
}

blob_info local_blob_store::put_bytes(const blob_key& key,
                                      std::string_view bytes) {
  auto dst = path_of(key);
  auto tmp = make_temp_path("put");
  try {
    auto fd = open_or_fail(tmp, O_WRONLY | O_CREAT | O_EXCL, 0644);
    write_all(fd.get(), bytes, tmp);
    fsync_or_fail(fd.get(), tmp);
    if (fd.close() != 0)
      fail_errno("close", tmp);
    return install(tmp, dst);
  } catch (...) {
    ::unlink(tmp.c_str()); // best effort; sweep_temp() catches the rest
    throw;
  }
}

std::optional<blob_info> local_blob_store::stat(const blob_key& key) {
  auto path = path_of(key);
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR)
      return std::nullopt;
    fail_errno("stat", path);
  }
  if (!S_ISREG(st.st_mode))
    return std::nullopt;
  return info_of(path, st);
}

std::string local_blob_store::read(const blob_key& key) {
  auto path = path_of(key);
  auto fd = open_or_fail(path, O_RDONLY);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0)
    fail_errno("fstat", path);
  std::string result;
  result.reserve(static_cast<size_t>(st.st_size));
  char buf[65536];
  for (;;) {
    auto n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR)
        continue;
      fail_errno("read", path);
    }
    if (n == 0)
      break;
    result.append(buf, static_cast<size_t>(n));
  }
  return result;
}

bool local_blob_store::remove(const blob_key& key) {
  auto path = path_of(key);
  if (::unlink(path.c_str()) != 0) {
    if (errno == ENOENT || errno == ENOTDIR)
      return false;
    fail_errno("unlink", path);
  }
  return true;
}

void local_blob_store::remove_revision(int64_t user_id, int64_t phrase_id,
                                       int64_t revision) {
  auto dir = base_ / id_text(user_id) / id_text(phrase_id) / id_text(revision);
  std::error_code ec;
  fs::remove_all(dir, ec); // a missing folder is no error
  if (ec)
    fail_ec(ec, "remove", dir);
  // The phrase's and the user's folders go too once empty: a refused
  // upload made them (prepare_put), and a flood of refused uploads must
  // not leave one folder each behind (found by a hostile review: 30,000
  // empty folders). rmdir(2) removes only an empty folder; a failure
  // (another revision or phrase is there) is the normal case.
  auto phrase_dir = dir.parent_path();
  if (::rmdir(phrase_dir.c_str()) == 0)
    ::rmdir(phrase_dir.parent_path().c_str());
}

void local_blob_store::remove_other_revisions(int64_t user_id,
                                              int64_t phrase_id,
                                              int64_t keep) {
  auto dir = base_ / id_text(user_id) / id_text(phrase_id);
  auto keep_name = id_text(keep);
  std::error_code ec;
  fs::directory_iterator it{dir, ec};
  if (ec) {
    if (ec == std::errc::no_such_file_or_directory)
      return;
    fail_ec(ec, "list", dir);
  }
  // Collect first: removing while iterating is unspecified.
  std::vector<fs::path> victims;
  for (; it != fs::directory_iterator{}; it.increment(ec)) {
    if (it->path().filename() != keep_name)
      victims.push_back(it->path());
  }
  if (ec)
    fail_ec(ec, "list", dir);
  for (auto& p : victims) {
    fs::remove_all(p, ec);
    if (ec)
      fail_ec(ec, "remove", p);
  }
}

size_t local_blob_store::sweep_temp() {
  std::error_code ec;
  fs::directory_iterator it{tmp_, ec};
  if (ec) {
    if (ec == std::errc::no_such_file_or_directory)
      return 0;
    fail_ec(ec, "list", tmp_);
  }
  std::vector<fs::path> victims;
  for (; it != fs::directory_iterator{}; it.increment(ec))
    victims.push_back(it->path());
  if (ec)
    fail_ec(ec, "list", tmp_);
  size_t removed = 0;
  for (auto& p : victims) {
    fs::remove_all(p, ec);
    if (ec)
      fail_ec(ec, "remove", p);
    ++removed;
  }
  return removed;
}

bool local_blob_store::writable() noexcept {
  try {
    auto probe = make_temp_path("probe");
    auto fd = open_or_fail(probe, O_WRONLY | O_CREAT | O_EXCL, 0644);
    auto ok = ::write(fd.get(), "x", 1) == 1;
    ok = fd.close() == 0 && ok;
    ok = ::unlink(probe.c_str()) == 0 && ok;
    return ok;
  } catch (...) {
    return false;
  }
}

fs::path local_blob_store::path_of(const blob_key& key) const {
  return base_ / blob_layout::relative(key);
}

bool local_blob_store::exists(const blob_key& key) {
  return stat(key).has_value();
}

std::string local_blob_store::read_range(const blob_key& key, uint64_t first,
                                         uint64_t last) {
  auto path = path_of(key);
  auto fd = open_or_fail(path, O_RDONLY);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0)
    fail_errno("fstat", path);
  auto size = static_cast<uint64_t>(st.st_size);
  if (first >= size || first > last)
    throw storage_error("range " + std::to_string(first) + "-"
                        + std::to_string(last) + " outside "
                        + path.string());
  last = std::min(last, size - 1);
  std::string out(static_cast<size_t>(last - first + 1), '\0');
  size_t done = 0;
  while (done < out.size()) {
    auto n = ::pread(fd.get(), out.data() + done, out.size() - done,
                     static_cast<off_t>(first + done));
    if (n < 0) {
      if (errno == EINTR)
        continue;
      fail_errno("read", path);
    }
    if (n == 0)
      throw storage_error("short read of " + path.string());
    done += static_cast<size_t>(n);
  }
  return out;
}

void local_blob_store::check() {
  if (!writable())
    throw storage_error("cannot write in " + tmp_.string());
}

namespace {

/// Parses a folder name made by id_text(); nullopt for anything else.
std::optional<int64_t> folder_id(const fs::path& p) {
  auto text = p.filename().string();
  if (text.empty() || text.size() > 19)
    return std::nullopt;
  int64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9')
      return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return v;
}

/// Sub-folders of `p` (none when it cannot be listed).
std::vector<fs::path> sub_folders(const fs::path& p) {
  std::vector<fs::path> xs;
  std::error_code ec;
  for (fs::directory_iterator it{p, ec}, end; !ec && it != end;
       it.increment(ec))
    if (it->is_directory(ec))
      xs.push_back(it->path());
  return xs;
}

/// Calls `f(user, phrase, revision, folder)` for every
/// `<base>/<user>/<phrase>/<revision>/` folder whose names are integers
/// (tmp/ and anything foreign are skipped).
template <class F>
void for_each_revision(const fs::path& base, F f) {
  for (auto& u : sub_folders(base)) {
    auto user = folder_id(u);
    if (!user)
      continue;
    for (auto& p : sub_folders(u)) {
      auto phrase = folder_id(p);
      if (!phrase)
        continue;
      for (auto& r : sub_folders(p))
        if (auto revision = folder_id(r))
          f(*user, *phrase, *revision, r);
    }
  }
}

} // namespace

std::vector<local_blob_store::listed_revision>
local_blob_store::list_revisions() {
  std::vector<listed_revision> out;
  for_each_revision(base_, [&](int64_t user, int64_t phrase, int64_t revision,
                               const fs::path& dir) {
    std::error_code ec;
    out.push_back(
      {user, phrase, revision, fs::is_regular_file(dir / blob_layout::original_name, ec)});
  });
  return out;
}

uint64_t local_blob_store::free_bytes() const {
  struct statvfs st {};
  if (::statvfs(base_.c_str(), &st) != 0)
    fail_errno("statvfs", base_);
  return static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
}

std::vector<local_blob_store::listed_blob>
local_blob_store::list_sub(const std::string& sub) {
  std::vector<listed_blob> out;
  for_each_revision(base_, [&](int64_t user, int64_t phrase, int64_t revision,
                               const fs::path& dir) {
    std::error_code ec;
    for (fs::directory_iterator it{dir / sub, ec}, end; !ec && it != end;
         it.increment(ec)) {
      if (!it->is_regular_file(ec))
        continue;
      blob_key key{user, phrase, revision,
                   sub + "/" + it->path().filename().string()};
      if (!blob_layout::valid_name(key.name))
        continue;
      if (auto info = stat(key))
        out.push_back({std::move(key), *info});
    }
  });
  return out;
}

} // namespace phonon::persistence
