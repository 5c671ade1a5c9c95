#include "actors/repository_actor.hpp"

#include <chrono>

#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/errors.hpp"
#include "actors/log.hpp"

namespace phonon::actors {

int64_t unix_millis() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch())
    .count();
}

namespace {

struct repository_state {
  static inline const char* name = "phonon.repository";
  std::unique_ptr<persistence::recording_store> store;
};

using pointer = repository_actor::stateful_pointer<repository_state>;

/// The request id of statements no request caused (startup scans, the
/// pending rows at recovery).
const std::string no_request;

/// The error reply for a failed statement: a full disk is storage_full
/// (507 for uploads; deletes free space and retry), anything else
/// database_unavailable (503). `rid` is the id of the request that caused
/// the statement.
caf::error failure(const char* what, const std::string& rid,
                   const persistence::db_error& e) {
  log::actors()->warn("database failure req_id={} op={} error={}",
                      log::rid(rid), what, e.what());
  if (e.disk_full())
    return caf::error{errc::storage_full, std::string{e.what()}};
  return caf::error{errc::database_unavailable, std::string{e.what()}};
}

/// Runs `f` against the store and turns a db_error into an error reply,
/// so that no exception ever leaves a handler.
template <class F>
auto guarded(pointer self, const char* what, const std::string& rid, F f)
  -> caf::result<decltype(f(*self->state.store))> {
  try {
    return f(*self->state.store);
  } catch (const persistence::db_error& e) {
    return failure(what, rid, e);
  } catch (const std::exception& e) {
    log::actors()->warn("database failure req_id={} op={} error={}",
                        log::rid(rid), what, e.what());
    return caf::error{errc::database_unavailable, std::string{e.what()}};
  }
}

repository_actor::behavior_type
repository_impl(pointer self,
                std::unique_ptr<persistence::recording_store> store) {
  self->state.store = std::move(store);
  using persistence::recording;
  using recordings = std::vector<recording>;
  return {
    [=](caf::get_atom, int64_t user, int64_t phrase,
        const std::string& rid) -> caf::result<recording> {
      try {
        if (auto r = self->state.store->get(user, phrase))
          return *r;
        return caf::error{errc::not_found};
      } catch (const persistence::db_error& e) {
        return failure("get", rid, e);
      } catch (const std::exception& e) {
        log::actors()->warn("database failure req_id={} op=get error={}",
                            log::rid(rid), e.what());
        return caf::error{errc::database_unavailable, std::string{e.what()}};
      }
    },
    [=](insert_atom, const recording& r,
        const std::string& rid) -> caf::result<recording> {
      try {
        if (self->state.store->insert(r))
          return r;
        return caf::error{errc::already_exists};
      } catch (const persistence::db_error& e) {
        return failure("insert", rid, e);
      } catch (const std::exception& e) {
        log::actors()->warn("database failure req_id={} op=insert error={}",
                            log::rid(rid), e.what());
        return caf::error{errc::database_unavailable, std::string{e.what()}};
      }
    },
    [=](upsert_atom, const recording& r, const std::string& rid) {
      return guarded(self, "upsert", rid, [&](auto& s) {
        recordings old;
        if (auto prev = s.upsert(r))
          old.push_back(std::move(*prev));
        return old;
      });
    },
    [=](ready_atom, const recording& r, const std::string& rid) {
      return guarded(self, "ready", rid, [&](auto& s) {
        return s.mark_ready(r.user_id, r.phrase_id, r.revision, r.duration_ms,
                            r.sample_rate, r.channels, unix_millis());
      });
    },
    [=](fail_atom, int64_t user, int64_t phrase, int64_t revision,
        const std::string& error, const std::string& rid) {
      return guarded(self, "fail", rid, [&](auto& s) {
        return s.mark_failed(user, phrase, revision, error, unix_millis());
      });
    },
    [=](remove_atom, int64_t user, int64_t phrase, const std::string& rid) {
      return guarded(self, "remove", rid, [&](auto& s) {
        recordings old;
        if (auto prev = s.remove(user, phrase))
          old.push_back(std::move(*prev));
        return old;
      });
    },
    [=](list_atom, int64_t user, int64_t after, int32_t limit,
        const std::string& rid) {
      return guarded(self, "list", rid,
                     [&](auto& s) { return s.list(user, after, limit); });
    },
    [=](pending_atom) {
      return guarded(self, "pending", no_request,
                     [&](auto& s) { return s.list_processing(); });
    },
    [=](scan_atom, int64_t after_user, int64_t after_phrase, int32_t limit) {
      return guarded(self, "scan", no_request, [&](auto& s) {
        return s.list_all(after_user, after_phrase, limit);
      });
    },
    [=](ping_atom) -> caf::result<bool> {
      return self->state.store->ping();
    },
  };
}

} // namespace

repository_actor
spawn_repository(caf::actor_system& sys,
                 std::unique_ptr<persistence::recording_store> store) {
  return sys.spawn<caf::detached>(repository_impl, std::move(store));
}

} // namespace phonon::actors
