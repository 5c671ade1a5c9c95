#include "actors/format_cache_actor.hpp"

#include <algorithm>
#include <list>
#include <map>
#include <optional>
#include <tuple>

#include <caf/typed_event_based_actor.hpp>

#include "actors/waveform_target.hpp"
#include "actors/errors.hpp"
#include "actors/log.hpp"
#include "persistence/blob_layout.hpp"
#include "actors/metrics.hpp"
#include "media/waveform.hpp"

namespace phonon::actors {

namespace {

using persistence::blob_layout;

/// (user, phrase, revision, format).
using cache_key = std::tuple<int64_t, int64_t, int64_t, std::string>;

struct cache_entry {
  /// What the file counts against the bound: cache_charge(its size).
  uint64_t size = 0;
  std::list<cache_key>::iterator lru_pos;
  /// format_cache_state::clock at its last use (to find a revision's least
  /// recently used waveform without walking the LRU list).
  uint64_t used = 0;
};

/// A conversion in flight and the requests that wait for it.
struct conversion {
  /// The id of the request that started it (its log lines carry it).
  std::string request_id;
  std::vector<caf::typed_response_promise<blob_stat>> waiting;
  /// Its user's place in limits.per_user_inflight, taken when it turned
  /// out to need a conversion, given back when it ends.
  std::optional<user_gate::ticket> place;
};

struct format_cache_state {
  static inline const char* name = "phonon.format_cache";
  storage_actor storage;
  supervisor_actor supervisor;
  uint64_t max_bytes = 0;
  uint64_t total = 0;
  /// Ticks once per use of an entry.
  uint64_t clock = 0;
  /// Evicted files leave it first (read_model::forget_file).
  std::shared_ptr<read_model> model;
  /// Most recently used at the front.
  std::list<cache_key> lru;
  std::map<cache_key, cache_entry> entries;
  /// Requests waiting on a conversion that is already running.
  std::map<cache_key, conversion> in_flight;
  /// limits.per_user_inflight; null: no bound.
  std::shared_ptr<user_gate> gate;
};

using pointer = format_cache_actor::stateful_pointer<format_cache_state>;

/// The request id of work no request caused (the startup scan).
const std::string no_request;

blob_ref ref_of(const cache_key& k) {
  return {std::get<0>(k), std::get<1>(k), std::get<2>(k),
          blob_layout::derived_name(std::get<3>(k))};
}

bool is_waveform(const cache_key& k) {
  return std::get<3>(k).rfind("waveform-", 0) == 0;
}

void forget(pointer self, const cache_key& k) {
  auto& st = self->state;
  auto i = st.entries.find(k);
  if (i == st.entries.end())
    return;
  st.total -= i->second.size;
  st.lru.erase(i->second.lru_pos);
  st.entries.erase(i);
}

/// Removes `victim` from the cache: from the read model, the LRU and disk.
void evict_one(pointer self, const cache_key& victim, const std::string& rid,
               const char* why) {
  auto& st = self->state;
  // Hot reads stop naming the file before it is removed.
  st.model->forget_file(std::get<0>(victim), std::get<1>(victim),
                        std::get<2>(victim), std::get<3>(victim));
  forget(self, victim);
  metrics::global().inc("phonon_cache_evictions_total");
  log::actors()->debug("cache evicts req_id={} user={} phrase={} rev={} "
                       "format={} why={}",
                       log::rid(rid), std::get<0>(victim),
                       std::get<1>(victim), std::get<2>(victim),
                       std::get<3>(victim), why);
  self->request(st.storage, caf::infinite, drop_atom_v, ref_of(victim), rid)
    .then([](bool) {}, [](caf::error&) {});
}

/// Room for the waveform `k` (cached, or about to be): while its revision
/// holds max_waveforms_per_revision others or more, their least recently
/// used one is evicted.
void cap_waveforms(pointer self, const cache_key& k, const std::string& rid) {
  auto& st = self->state;
  for (;;) {
    // The map is ordered by (user, phrase, revision, format): a revision's
    // entries are contiguous, its waveforms too ("waveform-" prefix).
    auto first = st.entries.lower_bound(cache_key{
      std::get<0>(k), std::get<1>(k), std::get<2>(k), "waveform-"});
    size_t others = 0;
    const cache_key* oldest = nullptr;
    uint64_t oldest_used = 0;
    for (auto i = first; i != st.entries.end(); ++i) {
      if (std::get<0>(i->first) != std::get<0>(k)
          || std::get<1>(i->first) != std::get<1>(k)
          || std::get<2>(i->first) != std::get<2>(k) || !is_waveform(i->first))
        break;
      if (i->first == k)
        continue;
      ++others;
      if (!oldest || i->second.used < oldest_used) {
        oldest = &i->first;
        oldest_used = i->second.used;
      }
    }
    if (others + 1 <= max_waveforms_per_revision || !oldest)
      return;
    cache_key victim = *oldest;
    evict_one(self, victim, rid, "waveforms_per_revision");
  }
}

/// Marks `k` (a file of `size` bytes) used, adding it when new.
void touch(pointer self, const cache_key& k, uint64_t size,
           const std::string& rid) {
  auto& st = self->state;
  auto i = st.entries.find(k);
  if (i != st.entries.end()) {
    st.lru.splice(st.lru.begin(), st.lru, i->second.lru_pos);
    i->second.used = ++st.clock;
    return;
  }
  st.lru.push_front(k);
  auto charge = cache_charge(size);
  st.entries.emplace(k, cache_entry{charge, st.lru.begin(), ++st.clock});
  st.total += charge;
  if (is_waveform(k))
    cap_waveforms(self, k, rid);
}

/// Evicts least recently used files until the total plus `incoming` bytes
/// (a file about to be written) fits, never `keep`: it is being served.
/// `rid` is the request whose file needs the room.
void evict(pointer self, const cache_key& keep, const std::string& rid,
           uint64_t incoming = 0) {
  auto& st = self->state;
  while (st.total + incoming > st.max_bytes && !st.lru.empty()) {
    auto victim = st.lru.back();
    if (victim == keep)
      break;
    evict_one(self, victim, rid, "cache_max_bytes");
  }
  metrics::global().set("phonon_cache_bytes", {},
                        static_cast<double>(st.total));
}

void complete(pointer self, const cache_key& k, caf::expected<blob_stat> res) {
  auto& st = self->state;
  auto conv = std::move(st.in_flight[k]);
  st.in_flight.erase(k);
  if (!res)
    log::actors()->debug("derived format failed req_id={} user={} phrase={} "
                         "rev={} format={} waiting={} error={}",
                         log::rid(conv.request_id), std::get<0>(k),
                         std::get<1>(k), std::get<2>(k), std::get<3>(k),
                         conv.waiting.size(),
                         self->system().render(res.error()));
  for (auto& rp : conv.waiting) {
    if (res)
      rp.deliver(*res);
    else
      rp.deliver(res.error());
  }
}

/// Converts the master (streamed from its file to a temp file) and has the
/// storage actor adopt the result, for request `rid`.
/// A job's weight in the conversion queue's byte bound: the master's size,
/// except for a waveform, whose cost is its output (the master is streamed
/// in fixed blocks): media::waveform_output_bound.
uint64_t job_weight(const cache_key& k, uint64_t master_bytes,
                    int32_t sample_rate) {
  auto w = blob_layout::parse_waveform_format(std::get<3>(k));
  if (!w)
    return master_bytes;
  auto opt = waveform_options_of(*w);
  return std::min(master_bytes,
                  media::waveform_output_bound(
                    master_bytes, sample_rate, opt,
                    w->json ? media::waveform_container::json
                            : media::waveform_container::dat));
}

void convert(pointer self, const cache_key& k, const std::string& rid,
             int32_t sample_rate) {
  auto& st = self->state;
  blob_ref master{std::get<0>(k), std::get<1>(k), std::get<2>(k),
                  std::string{blob_layout::master_name}};
  log::actors()->debug("converting for the cache req_id={} user={} "
                       "phrase={} rev={} format={}",
                       log::rid(rid), std::get<0>(k), std::get<1>(k),
                       std::get<2>(k), std::get<3>(k));
  auto fail = [=](caf::error& err) { complete(self, k, std::move(err)); };
  self->request(st.storage, caf::infinite, stat_atom_v, master, rid)
    .then(
      [=](const blob_stat& file) {
        // The transcoder streams the master from its file into a temp
        // file, which the storage actor adopts (or removes); or, with the
        // keys that go with the job, a worker that reaches the bucket
        // reads the master and writes the format there itself.
        self
          ->request(self->state.supervisor, caf::infinite, transcode_atom_v,
                    std::get<3>(k), file.path,
                    job_weight(k, file.size, sample_rate), rid, master,
                    ref_of(k))
          .then(
            [=](transcode_output& out) {
              // Make room first, so the folder never holds more than the
              // bound, not even for a moment.
              evict(self, k, rid, cache_charge(out.size));
              // The drops go to the storage actor before the adopt (or
              // claim), so the new file never joins a full set.
              if (is_waveform(k))
                cap_waveforms(self, k, rid);
              auto cached = [=](blob_stat& stat) {
                log::actors()->debug("cached req_id={} user={} phrase={} "
                                     "rev={} format={} bytes={} "
                                     "by_worker={}",
                                     log::rid(rid), std::get<0>(k),
                                     std::get<1>(k), std::get<2>(k),
                                     std::get<3>(k), stat.size, out.stored);
                touch(self, k, stat.size, rid);
                evict(self, k, rid);
                complete(self, k, std::move(stat));
              };
              // A bucket job's output is in the bucket already: claim it
              // (this node's copy, to serve it); else adopt the file.
              if (out.stored)
                self
                  ->request(self->state.storage, caf::infinite, claim_atom_v,
                            ref_of(k), out.size, true, rid)
                  .then(cached, fail);
              else
                self
                  ->request(self->state.storage, caf::infinite, adopt_atom_v,
                            ref_of(k), std::move(out.output_path), rid)
                  .then(cached, fail);
            },
            fail);
      },
      fail);
}

format_cache_actor::behavior_type
format_cache_impl(pointer self, storage_actor storage,
                  supervisor_actor supervisor, uint64_t max_bytes,
                  std::shared_ptr<read_model> model,
                  std::shared_ptr<user_gate> gate) {
  self->state.model = std::move(model);
  self->state.gate = std::move(gate);
  self->state.storage = std::move(storage);
  self->state.supervisor = std::move(supervisor);
  self->state.max_bytes = max_bytes;
  // Files cached before a restart count against the bound too: seed the
  // LRU from disk, oldest first, and evict what no longer fits.
  self->request(self->state.storage, caf::infinite, list_atom_v,
                std::string{blob_layout::cache_folder})
    .then(
      [=](std::vector<listed_blob>& found) {
        std::sort(found.begin(), found.end(),
                  [](const listed_blob& a, const listed_blob& b) {
                    return a.stat.mtime < b.stat.mtime;
                  });
        for (auto& b : found) {
          auto format = blob_layout::format_of(b.ref.name);
          if (!format)
            continue;
          touch(self,
                cache_key{b.ref.user_id, b.ref.phrase_id, b.ref.revision,
                          std::move(*format)},
                b.stat.size, no_request);
        }
        evict(self, cache_key{}, no_request);
        if (!found.empty())
          log::actors()->info("format cache loaded files={} bytes={}",
                              found.size(), self->state.total);
      },
      [=](caf::error& err) {
        log::actors()->warn("cannot scan the format cache error={}",
                            self->system().render(err));
      });
  return {
    [=](derive_atom, int64_t user, int64_t phrase, int64_t revision,
        std::string& format, std::string& rid,
        int32_t sample_rate) -> caf::result<blob_stat> {
      cache_key k{user, phrase, revision, std::move(format)};
      auto rp = self->make_response_promise<blob_stat>();
      auto& st = self->state;
      if (auto i = st.in_flight.find(k); i != st.in_flight.end()) {
        log::actors()->debug("derived format joins a running conversion "
                             "req_id={} user={} phrase={} rev={} format={} "
                             "started_by={}",
                             log::rid(rid), user, phrase, revision,
                             std::get<3>(k), log::rid(i->second.request_id));
        i->second.waiting.push_back(rp);
        return rp;
      }
      auto& conv = st.in_flight[k];
      conv.request_id = rid;
      conv.waiting.push_back(rp);
      // The file may be on disk from before a restart even when this actor
      // has no entry for it, so storage is asked first.
      self->request(st.storage, caf::infinite, stat_atom_v, ref_of(k), rid)
        .then(
          [=](blob_stat& stat) {
            metrics::global().inc("phonon_cache_hits_total");
            log::actors()->debug("derived format cached req_id={} user={} "
                                 "phrase={} rev={} format={}",
                                 log::rid(rid), user, phrase, revision,
                                 std::get<3>(k));
            touch(self, k, stat.size, rid);
            evict(self, k, rid);
            complete(self, k, std::move(stat));
          },
          [=](caf::error& err) {
            if (!is(err, errc::not_found)) {
              complete(self, k, std::move(err));
              return;
            }
            metrics::global().inc("phonon_cache_misses_total");
            forget(self, k);
            // A conversion takes a place of its user (those that join it
            // take none); none left: this request and any that joined
            // meanwhile are answered 429.
            if (auto& gate = self->state.gate) {
              auto place = gate->try_enter(user);
              if (!place) {
                complete(self, k,
                         caf::error{errc::too_many_requests,
                                    "limits.per_user_inflight"});
                return;
              }
              self->state.in_flight[k].place = std::move(place);
            }
            convert(self, k, rid, sample_rate);
          });
      return rp;
    },
    [=](drop_atom, int64_t user, int64_t phrase) {
      std::vector<cache_key> gone;
      for (auto& [k, e] : self->state.entries)
        if (std::get<0>(k) == user && std::get<1>(k) == phrase)
          gone.push_back(k);
      for (auto& k : gone)
        forget(self, k);
    },
    [=](touch_atom, int64_t user, int64_t phrase, int64_t revision,
        std::string& format) {
      auto& st = self->state;
      cache_key k{user, phrase, revision, std::move(format)};
      if (auto i = st.entries.find(k); i != st.entries.end()) {
        st.lru.splice(st.lru.begin(), st.lru, i->second.lru_pos);
        i->second.used = ++st.clock;
      }
    },
  };
}

} // namespace

format_cache_actor spawn_format_cache(caf::actor_system& sys,
                                      storage_actor storage,
                                      supervisor_actor supervisor,
                                      uint64_t max_bytes,
                                      std::shared_ptr<read_model> model,
                                      std::shared_ptr<user_gate> gate) {
  auto& m = metrics::global();
  m.describe("phonon_cache_hits_total", "counter",
             "Derived-format requests served from the cache.");
  m.describe("phonon_cache_misses_total", "counter",
             "Derived-format requests that needed a conversion.");
  m.describe("phonon_cache_evictions_total", "counter",
             "Cached derived files evicted to respect cache_max_bytes or "
             "the bound of waveforms per revision.");
  m.describe("phonon_cache_bytes", "gauge",
             "Bytes of cached derived files, each rounded up to 4 KiB.");
  // Counters are shown from the start (0), so a rate of them is 0 rather
  // than no data before the first event.
  for (auto name : {"phonon_cache_hits_total", "phonon_cache_misses_total",
                    "phonon_cache_evictions_total"})
    m.inc(name, {}, 0);
  m.set("phonon_cache_bytes", {}, m.value("phonon_cache_bytes"));
  return sys.spawn(format_cache_impl, std::move(storage), std::move(supervisor),
                   max_bytes, std::move(model), std::move(gate));
}

} // namespace phonon::actors
