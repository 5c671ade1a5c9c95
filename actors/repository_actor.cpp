#include "actors/repository_actor.hpp"

#include <chrono>

#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/errors.hpp"
#include "actors/log.hpp"
#include "actors/repository_reader.hpp"
#include "actors/store_call.hpp"

namespace phonon::actors {

int64_t unix_millis() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch())
    .count();
}

namespace {

/// A reader and the reads it has in flight.
struct reader_slot {
  repository_reader_actor hdl;
  reader_load load;
};

struct repository_state {
  static inline const char* name = "phonon.repository";
  std::shared_ptr<persistence::recording_store> store;
  /// Empty when the store allows no concurrent reads: then this actor
  /// answers the reads itself.
  std::vector<reader_slot> readers;
  /// Where the search for the least-loaded reader starts (ties go round
  /// robin).
  size_t next_reader = 0;
};

using pointer = repository_actor::stateful_pointer<repository_state>;

/// The reader with the fewest reads in flight, counted as having one more.
/// A reader stuck on a slow statement keeps its count, so the reads behind
/// it go to the others.
const repository_reader_actor& least_loaded(repository_state& st) {
  auto n = st.readers.size();
  auto best = st.next_reader % n;
  auto best_load = st.readers[best].load->load(std::memory_order_relaxed);
  for (size_t k = 1; k < n && best_load > 0; ++k) {
    auto i = (st.next_reader + k) % n;
    auto load = st.readers[i].load->load(std::memory_order_relaxed);
    if (load < best_load) {
      best = i;
      best_load = load;
    }
  }
  st.next_reader = best + 1;
  st.readers[best].load->fetch_add(1, std::memory_order_relaxed);
  return st.readers[best].hdl;
}

repository_actor::behavior_type
repository_impl(pointer self,
                std::shared_ptr<persistence::recording_store> store,
                std::vector<reader_slot> readers) {
  self->state.store = std::move(store);
  self->state.readers = std::move(readers);
  // The readers end with the repository (they only ever hear from it).
  self->attach_functor([hdls = self->state.readers](const caf::error&) {
    for (auto& r : hdls)
      caf::anon_send_exit(r.hdl, caf::exit_reason::user_shutdown);
  });
  using persistence::recording;
  using recordings = std::vector<recording>;
  // A read goes to a reader only once every write before it in this
  // mailbox has returned (committed): a read sent after a write, answered
  // or not, sees it. `delegate` lets the reader answer the sender directly.
  auto has_readers = [self] { return !self->state.readers.empty(); };
  auto reader = [self]() -> const repository_reader_actor& {
    return least_loaded(self->state);
  };
  return {
    [=](caf::get_atom, int64_t user, int64_t phrase,
        const std::string& rid) -> caf::result<recording> {
      if (has_readers())
        return self->delegate(reader(), caf::get_atom_v, user, phrase, rid);
      try {
        if (auto r = self->state.store->get(user, phrase))
          return std::move(*r);
        return caf::error{errc::not_found};
      } catch (const persistence::db_error& e) {
        return store_failure("get", rid, e);
      } catch (const std::exception& e) {
        return store_failure("get", rid, e);
      }
    },
    [=](insert_atom, const recording& r,
        const std::string& rid) -> caf::result<recording> {
      try {
        if (self->state.store->insert(r))
          return r;
        return caf::error{errc::already_exists};
      } catch (const persistence::db_error& e) {
        return store_failure("insert", rid, e);
      } catch (const std::exception& e) {
        return store_failure("insert", rid, e);
      }
    },
    [=](upsert_atom, const recording& r, const std::string& rid) {
      auto& s = *self->state.store;
      return store_call("upsert", rid, [&] {
        recordings old;
        if (auto prev = s.upsert(r))
          old.push_back(std::move(*prev));
        return old;
      });
    },
    [=](ready_atom, const recording& r, const std::string& rid) {
      auto& s = *self->state.store;
      return store_call("ready", rid, [&] {
        return s.mark_ready(r.user_id, r.phrase_id, r.revision, r.duration_ms,
                            r.sample_rate, r.channels, unix_millis());
      });
    },
    [=](fail_atom, int64_t user, int64_t phrase, int64_t revision,
        const std::string& error, const std::string& rid) {
      auto& s = *self->state.store;
      return store_call("fail", rid, [&] {
        return s.mark_failed(user, phrase, revision, error, unix_millis());
      });
    },
    [=](remove_atom, int64_t user, int64_t phrase, const std::string& rid) {
      auto& s = *self->state.store;
      return store_call("remove", rid, [&] {
        recordings old;
        if (auto prev = s.remove(user, phrase))
          old.push_back(std::move(*prev));
        return old;
      });
    },
    [=](list_atom, int64_t user, int64_t after, int32_t limit,
        const std::string& rid) -> caf::result<recordings> {
      if (has_readers())
        return self->delegate(reader(), list_atom_v, user, after, limit, rid);
      auto& s = *self->state.store;
      return store_call("list", rid,
                        [&] { return s.list(user, after, limit); });
    },
    [=](pending_atom) -> caf::result<recordings> {
      if (has_readers())
        return self->delegate(reader(), pending_atom_v);
      auto& s = *self->state.store;
      return store_call("pending", no_request,
                        [&] { return s.list_processing(); });
    },
    [=](scan_atom, int64_t after_user, int64_t after_phrase,
        int32_t limit) -> caf::result<recordings> {
      if (has_readers())
        return self->delegate(reader(), scan_atom_v, after_user, after_phrase,
                              limit);
      auto& s = *self->state.store;
      return store_call("scan", no_request, [&] {
        return s.list_all(after_user, after_phrase, limit);
      });
    },
    [=](ping_atom) -> caf::result<bool> {
      if (has_readers())
        return self->delegate(reader(), ping_atom_v);
      return self->state.store->ping();
    },
  };
}

} // namespace

repository_actor
spawn_repository(caf::actor_system& sys,
                 std::unique_ptr<persistence::recording_store> store) {
  std::shared_ptr<persistence::recording_store> shared{std::move(store)};
  std::vector<reader_slot> readers;
  auto n = shared->concurrent_readers();
  for (int i = 0; i < n; ++i) {
    auto load = std::make_shared<std::atomic<int>>(0);
    readers.push_back(
      reader_slot{spawn_repository_reader(sys, shared, load), load});
  }
  log::actors()->info("repository readers={}", n);
  return sys.spawn<caf::detached>(repository_impl, std::move(shared),
                                  std::move(readers));
}

} // namespace phonon::actors
