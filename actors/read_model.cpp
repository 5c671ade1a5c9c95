#include "actors/read_model.hpp"

#include <functional>

namespace phonon::actors {

namespace {

/// True when `a` and `b` name the same contents of the same file.
bool same_facts(const file_ref& a, const file_ref& b) {
  return a.path == b.path && a.size == b.size && a.mtime == b.mtime
         && a.etag == b.etag;
}

} // namespace

const view_file* recording_view::file(const std::string& format) const {
  for (auto& f : files)
    if (f->format == format)
      return f.get();
  return nullptr;
}

size_t read_model::key_hash::operator()(
  const std::pair<int64_t, int64_t>& k) const noexcept {
  // splitmix64 over both ids: ids are often sequential, and the low bits
  // pick the shard and the generation bucket.
  auto x = static_cast<uint64_t>(k.first) * 0x9e3779b97f4a7c15ull
           ^ static_cast<uint64_t>(k.second);
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return static_cast<size_t>(x ^ (x >> 31));
}

read_model::read_model(size_t max_entries)
  : per_shard_max_(max_entries == 0
                     ? 0
                     : (max_entries + shard_count - 1) / shard_count) {
  // nop
}

read_model::shard& read_model::shard_of(int64_t user, int64_t phrase,
                                        size_t& bucket) const {
  auto h = key_hash{}({user, phrase});
  bucket = (h / shard_count) % buckets_per_shard;
  return shards_[h % shard_count];
}

view_ptr read_model::find(int64_t user, int64_t phrase) {
  size_t bucket = 0;
  auto& s = shard_of(user, phrase, bucket);
  view_ptr v;
  {
    std::lock_guard<std::mutex> guard{s.mtx};
    if (auto i = s.views.find({user, phrase}); i != s.views.end())
      v = i->second;
  }
  (v ? hits_ : misses_).fetch_add(1, std::memory_order_relaxed);
  return v;
}

uint64_t read_model::generation(int64_t user, int64_t phrase) const {
  size_t bucket = 0;
  auto& s = shard_of(user, phrase, bucket);
  std::lock_guard<std::mutex> guard{s.mtx};
  return s.generations[bucket];
}

void read_model::put_locked(shard& s, std::pair<int64_t, int64_t> key,
                            view_ptr view) {
  if (s.views.size() >= per_shard_max_ && s.views.count(key) == 0)
    s.views.erase(s.views.begin());
  s.views[key] = std::move(view);
}

bool read_model::publish_row(const persistence::recording& row,
                             uint64_t gen) {
  if (per_shard_max_ == 0)
    return false;
  auto view = std::make_shared<recording_view>();
  view->row = row;
  size_t bucket = 0;
  auto& s = shard_of(row.user_id, row.phrase_id, bucket);
  view_ptr old; // released after the lock
  std::lock_guard<std::mutex> guard{s.mtx};
  if (s.generations[bucket] != gen)
    return false;
  std::pair<int64_t, int64_t> key{row.user_id, row.phrase_id};
  if (auto i = s.views.find(key); i != s.views.end()) {
    old = i->second;
    if (old->row.revision == row.revision)
      view->files = old->files;
  }
  put_locked(s, key, std::move(view));
  return true;
}

bool read_model::publish_file(const persistence::recording& row, uint64_t gen,
                              const std::string& format,
                              const file_ref& facts) {
  if (per_shard_max_ == 0)
    return false;
  size_t bucket = 0;
  auto& s = shard_of(row.user_id, row.phrase_id, bucket);
  view_ptr old; // released after the lock
  std::lock_guard<std::mutex> guard{s.mtx};
  if (s.generations[bucket] != gen)
    return false;
  std::pair<int64_t, int64_t> key{row.user_id, row.phrase_id};
  auto i = s.views.find(key);
  if (i == s.views.end() || i->second->row.revision != row.revision)
    return false;
  old = i->second;
  auto* known = old->file(format);
  if (known != nullptr && same_facts(known->facts, facts))
    return true;
  // New, or newer facts of the same name (the file was made again after
  // an eviction): the view names what the actors just saw.
  auto view = std::make_shared<recording_view>();
  view->row = old->row;
  for (auto& f : old->files)
    if (f->format != format)
      view->files.push_back(f);
  view->files.push_back(std::make_shared<const view_file>(format, facts));
  i->second = std::move(view);
  return true;
}

void read_model::invalidate(int64_t user, int64_t phrase) {
  size_t bucket = 0;
  auto& s = shard_of(user, phrase, bucket);
  view_ptr old; // released after the lock
  std::lock_guard<std::mutex> guard{s.mtx};
  ++s.generations[bucket];
  if (auto i = s.views.find({user, phrase}); i != s.views.end()) {
    old = std::move(i->second);
    s.views.erase(i);
  }
}

void read_model::forget_file(int64_t user, int64_t phrase, int64_t revision,
                             const std::string& format) {
  size_t bucket = 0;
  auto& s = shard_of(user, phrase, bucket);
  view_ptr old; // released after the lock
  std::lock_guard<std::mutex> guard{s.mtx};
  ++s.generations[bucket];
  auto i = s.views.find({user, phrase});
  if (i == s.views.end() || i->second->row.revision != revision
      || i->second->file(format) == nullptr)
    return;
  old = i->second;
  auto view = std::make_shared<recording_view>();
  view->row = old->row;
  for (auto& f : old->files)
    if (f->format != format)
      view->files.push_back(f);
  i->second = std::move(view);
}

bool read_model::should_touch(const view_file& file, int64_t now_ms,
                              int64_t every_ms) {
  auto last = file.touched_ms.load(std::memory_order_relaxed);
  if (now_ms - last < every_ms)
    return false;
  return file.touched_ms.compare_exchange_strong(last, now_ms,
                                                 std::memory_order_relaxed);
}

read_model::stats read_model::snapshot() const {
  stats st;
  for (auto& s : shards_) {
    std::lock_guard<std::mutex> guard{s.mtx};
    st.entries += s.views.size();
  }
  st.hits = hits_.load(std::memory_order_relaxed);
  st.misses = misses_.load(std::memory_order_relaxed);
  return st;
}

} // namespace phonon::actors
