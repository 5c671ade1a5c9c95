#include "persistence/s3_blob_store.hpp"

#include <curl/curl.h>

#include <ctime>
#include <map>
#include <system_error>
#include <tuple>
#include <utility>

namespace phonon::persistence {

namespace fs = std::filesystem;

namespace {

/// "2026-12-03T09:21:24.000Z" (a listing's LastModified) as Unix seconds;
/// 0 when it does not parse.
int64_t iso8601_seconds(const std::string& text) {
  std::tm tm{};
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year,
                  &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
                  &tm.tm_sec)
      != 6)
    return 0;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<int64_t>(::timegm(&tm));
}

/// Removes a temp file, ignoring errors (it may be gone already).
void discard(const fs::path& p) {
  std::error_code ec;
  fs::remove(p, ec);
}

} // namespace

class s3_blob_store::lease {
public:
  explicit lease(s3_blob_store& st) : st_(st), c_(st.acquire()) {
    // nop
  }
  ~lease() {
    st_.release(std::move(c_));
  }
  lease(const lease&) = delete;
  lease& operator=(const lease&) = delete;

  s3::client* operator->() const noexcept {
    return c_.get();
  }

private:
  s3_blob_store& st_;
  std::unique_ptr<s3::client> c_;
};

s3_blob_store::s3_blob_store(s3::settings cfg, fs::path local_base)
  : cfg_(std::move(cfg)), local_(std::move(local_base)) {
  // Validates the settings now rather than at the first request.
  release(std::make_unique<s3::client>(cfg_));
}

s3_blob_store::~s3_blob_store() = default;

std::unique_ptr<s3::client> s3_blob_store::acquire() {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (!idle_.empty()) {
      auto c = std::move(idle_.back());
      idle_.pop_back();
      return c;
    }
  }
  return std::make_unique<s3::client>(cfg_);
}

void s3_blob_store::release(std::unique_ptr<s3::client> c) {
  if (!c)
    return;
  std::lock_guard<std::mutex> guard{mtx_};
  idle_.push_back(std::move(c));
}

const fs::path& s3_blob_store::temp_dir() const noexcept {
  return local_.temp_dir();
}

fs::path s3_blob_store::make_temp_path(std::string_view prefix) const {
  return local_.make_temp_path(prefix);
}

size_t s3_blob_store::sweep_temp() {
  return local_.sweep_temp();
}

blob_info s3_blob_store::put_file(const blob_key& key, const fs::path& src) {
  lease{*this}->put_file(blob_layout::relative(key), src);
  return local_.put_file(key, src);
}

void s3_blob_store::prepare_put(const blob_key& key, const fs::path& src) {
  local_.prepare_put(key, src);
}

blob_store::installed_upload
s3_blob_store::put_upload(const blob_key& original, const fs::path& spool,
                          const blob_key& master, const fs::path& master_src,
                          bool master_synced) {
  lease c{*this};
  c->put_file(blob_layout::relative(original), spool);
  std::string master_error;
  auto local_master = master_src;
  if (!master_src.empty()) {
    try {
      c->put_file(blob_layout::relative(master), master_src);
    } catch (const s3::error& e) {
      // The original is stored; the caller adopts the master later.
      master_error = e.what();
      local_master.clear();
    }
  }
  auto done = local_.put_upload(original, spool, master, local_master,
                                master_synced);
  if (!master_error.empty())
    done.master_error = std::move(master_error);
  return done;
}

blob_info s3_blob_store::put_bytes(const blob_key& key,
                                   std::string_view bytes) {
  lease{*this}->put_bytes(blob_layout::relative(key), bytes);
  return local_.put_bytes(key, bytes);
}

bool s3_blob_store::exists(const blob_key& key) {
  return lease{*this}->head(blob_layout::relative(key)).has_value();
}

std::optional<blob_info> s3_blob_store::stat(const blob_key& key) {
  if (auto info = local_.stat(key))
    return info;
  // No copy on this node yet: download it beside the spool files, then
  // rename it into place, so a reader never sees part of it.
  auto tmp = local_.make_temp_path("fetch");
  try {
    lease{*this}->get_to_file(blob_layout::relative(key), tmp);
  } catch (const s3::error& e) {
    discard(tmp);
    if (e.code() == s3::errc::not_found)
      return std::nullopt;
    throw;
  } catch (...) {
    discard(tmp);
    throw;
  }
  std::optional<blob_info> info;
  try {
    info = local_.put_file(key, tmp);
  } catch (...) {
    discard(tmp);
    throw;
  }
  // The revision was removed while its object came down (a replace or a
  // delete on the writer thread): the copy just made would outlive it.
  if (is_gone(key)) {
    local_.remove_revision(key.user_id, key.phrase_id, key.revision);
    return std::nullopt;
  }
  return info;
}

std::optional<blob_info> s3_blob_store::facts(const blob_key& key,
                                              uint64_t fetch_below) {
  if (auto info = local_.stat(key))
    return info;
  auto head = lease{*this}->head(blob_layout::relative(key));
  if (!head)
    return std::nullopt;
  if (head->size < fetch_below)
    return stat(key);
  blob_info info;
  info.path = local_.path_of(key);
  info.size = head->size;
  // curl's parser takes every HTTP date form; -1 (unparsable) -> now.
  auto t = curl_getdate(head->last_modified.c_str(), nullptr);
  info.mtime = t < 0 ? static_cast<int64_t>(std::time(nullptr))
                     : static_cast<int64_t>(t);
  return info;
}

void s3_blob_store::mark_gone(int64_t user_id, int64_t phrase_id,
                              int64_t revision, bool older_too) {
  // Bounded: a copy made long after its revision was removed is left to
  // the next startup reconciliation, as before.
  constexpr size_t most = 65536;
  std::lock_guard<std::mutex> guard{gone_mtx_};
  if (gone_.size() >= most)
    gone_.clear();
  if (gone_below_.size() >= most)
    gone_below_.clear();
  if (older_too) {
    auto& floor = gone_below_[{user_id, phrase_id}];
    floor = std::max(floor, revision);
  } else {
    gone_.emplace(user_id, phrase_id, revision);
  }
}

bool s3_blob_store::is_gone(const blob_key& key) {
  std::lock_guard<std::mutex> guard{gone_mtx_};
  if (gone_.count({key.user_id, key.phrase_id, key.revision}) != 0)
    return true;
  auto it = gone_below_.find({key.user_id, key.phrase_id});
  return it != gone_below_.end() && key.revision < it->second;
}

std::string s3_blob_store::read(const blob_key& key) {
  if (!stat(key))
    throw s3::error(s3::errc::not_found,
                    "no object " + blob_layout::relative(key), 404);
  return local_.read(key);
}

std::string s3_blob_store::read_range(const blob_key& key, uint64_t first,
                                      uint64_t last) {
  if (!stat(key))
    throw s3::error(s3::errc::not_found,
                    "no object " + blob_layout::relative(key), 404);
  return local_.read_range(key, first, last);
}

bool s3_blob_store::remove(const blob_key& key) {
  auto rel = blob_layout::relative(key);
  lease c{*this};
  // S3 answers a DELETE 204 whether or not the object existed.
  bool existed = c->head(rel).has_value();
  c->remove(rel);
  local_.remove(key);
  return existed;
}

void s3_blob_store::remove_revision(int64_t user_id, int64_t phrase_id,
                                    int64_t revision) {
  // Marked first, so that a copy another thread downloads meanwhile is
  // removed by it (stat). This node's copies next: they go even when the
  // bucket does not answer (objects left there are removed by the next
  // reconciliation).
  mark_gone(user_id, phrase_id, revision, false);
  local_.remove_revision(user_id, phrase_id, revision);
  lease{*this}->remove_prefix(
    blob_layout::revision_prefix(user_id, phrase_id, revision));
}

void s3_blob_store::remove_other_revisions(int64_t user_id, int64_t phrase_id,
                                           int64_t keep) {
  mark_gone(user_id, phrase_id, keep, true);
  local_.remove_other_revisions(user_id, phrase_id, keep);
  lease c{*this};
  std::vector<std::string> victims;
  c->list(blob_layout::recording_prefix(user_id, phrase_id),
          [&](const s3::listed_object& o) {
            auto key = blob_layout::parse(o.key);
            if (key && key->revision != keep)
              victims.push_back(o.key);
          });
  for (const auto& k : victims)
    c->remove(k);
}

std::vector<blob_store::listed_revision> s3_blob_store::list_revisions() {
  std::map<std::tuple<int64_t, int64_t, int64_t>, bool> found;
  lease{*this}->list("", [&](const s3::listed_object& o) {
    if (auto key = blob_layout::parse(o.key)) {
      auto& has_original
        = found[std::make_tuple(key->user_id, key->phrase_id, key->revision)];
      has_original = has_original || key->name == blob_layout::original_name;
    }
  });
  // This node's copies of revisions the bucket no longer has (deleted
  // through another node, or left by a crash) are listed too, so that
  // reconciliation removes them; only the bucket says whether an original
  // exists.
  for (auto& r : local_.list_revisions())
    found.emplace(std::make_tuple(r.user_id, r.phrase_id, r.revision), false);
  std::vector<listed_revision> out;
  out.reserve(found.size());
  for (const auto& [k, has_original] : found)
    out.push_back(
      {std::get<0>(k), std::get<1>(k), std::get<2>(k), has_original});
  return out;
}

std::vector<blob_store::listed_blob>
s3_blob_store::list_sub(const std::string& sub) {
  std::vector<listed_blob> out;
  auto folder = sub + '/';
  lease{*this}->list("", [&](const s3::listed_object& o) {
    auto key = blob_layout::parse(o.key);
    if (!key || key->name.compare(0, folder.size(), folder) != 0)
      return;
    blob_info info;
    info.path = local_.path_of(*key);
    info.size = o.size;
    info.mtime = iso8601_seconds(o.last_modified);
    out.push_back({std::move(*key), std::move(info)});
  });
  return out;
}

std::string s3_blob_store::identity() const {
  auto endpoint = cfg_.endpoint;
  while (!endpoint.empty() && endpoint.back() == '/')
    endpoint.pop_back();
  auto prefix = cfg_.prefix;
  if (!prefix.empty() && prefix.back() != '/')
    prefix += '/';
  return endpoint + " " + cfg_.bucket + "/" + prefix;
}

void s3_blob_store::get_object(const blob_key& key, const fs::path& dst) {
  lease{*this}->get_to_file(blob_layout::relative(key), dst);
}

uint64_t s3_blob_store::put_object(const blob_key& key, const fs::path& src) {
  std::error_code ec;
  auto size = fs::file_size(src, ec);
  if (ec)
    throw storage_error("cannot read " + src.string() + ": " + ec.message());
  lease{*this}->put_file(blob_layout::relative(key), src);
  return static_cast<uint64_t>(size);
}

uint64_t s3_blob_store::free_bytes() const {
  return local_.free_bytes();
}

bool s3_blob_store::writable() noexcept {
  try {
    if (!local_.writable())
      return false;
    lease{*this}->probe();
    return true;
  } catch (...) {
    return false;
  }
}

void s3_blob_store::check() {
  local_.check();
  lease{*this}->probe();
}

} // namespace phonon::persistence
