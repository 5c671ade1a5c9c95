#include "http/response_cache.hpp"

#include <utility>
#include <vector>

#include "http/file_plan.hpp"
#include "http/wire.hpp"

namespace phonon::http {

bool same_contents(const actors::file_ref& a, const actors::file_ref& b) {
  return a.size == b.size && a.mtime == b.mtime && a.etag == b.etag
         && a.path == b.path;
}

cached_file_ptr make_cached_file(const actors::file_ref& file,
                                 std::string bytes) {
  auto entry = std::make_shared<cached_file>();
  entry->facts = file;
  entry->bytes = std::move(bytes);
  entry->plain_fields = file_fields(plan_file(file, file_request{}));
  return entry;
}

response_cache::response_cache(uint64_t max_bytes, uint64_t item_max)
  : max_bytes_(max_bytes), item_max_(item_max) {
  // nop
}

cached_file_ptr response_cache::find(const actors::file_ref& file) {
  cached_file_ptr stale; // freed after the lock is released
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = index_.find(file.path);
  if (i == index_.end()) {
    ++stats_.misses;
    return nullptr;
  }
  auto it = i->second;
  if (!same_contents((*it)->facts, file)) {
    // The path holds other contents now: these bytes can never be served.
    stale = drop(it);
    ++stats_.misses;
    return nullptr;
  }
  lru_.splice(lru_.begin(), lru_, it);
  ++stats_.hits;
  return *it;
}

cached_file_ptr response_cache::insert(const actors::file_ref& file,
                                       std::string bytes) {
  auto result = make_cached_file(file, std::move(bytes));
  if (!admits(result->bytes.size()))
    return result;
  // Declared before the guard: dropped entries are freed after unlocking.
  std::vector<cached_file_ptr> dropped;
  std::lock_guard<std::mutex> guard{mtx_};
  if (auto i = index_.find(file.path); i != index_.end())
    dropped.push_back(drop(i->second));
  lru_.push_front(result);
  index_.emplace(file.path, lru_.begin());
  stats_.bytes += result->bytes.size();
  ++stats_.entries;
  while (stats_.bytes > max_bytes_ && lru_.size() > 1) {
    dropped.push_back(drop(std::prev(lru_.end())));
    ++stats_.evictions;
  }
  return result;
}

void response_cache::erase(const std::string& path) {
  cached_file_ptr stale; // freed after the lock is released
  std::lock_guard<std::mutex> guard{mtx_};
  if (auto i = index_.find(path); i != index_.end())
    stale = drop(i->second);
}

response_cache::stats response_cache::snapshot() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return stats_;
}

cached_file_ptr response_cache::drop(lru_list::iterator it) {
  auto entry = std::move(*it);
  stats_.bytes -= entry->bytes.size();
  --stats_.entries;
  index_.erase(entry->facts.path);
  lru_.erase(it);
  // The caller releases it after unlocking; a session still writing the
  // bytes keeps them alive until its answer is written.
  return entry;
}

} // namespace phonon::http
