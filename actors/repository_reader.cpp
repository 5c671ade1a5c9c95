#include "actors/repository_reader.hpp"

#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/errors.hpp"
#include "actors/store_call.hpp"

namespace phonon::actors {

namespace {

struct reader_state {
  static inline const char* name = "phonon.repository.reader";
  std::shared_ptr<persistence::recording_store> store;
  reader_load load;
};

using pointer = repository_reader_actor::stateful_pointer<reader_state>;

/// Takes one read off the reader's load when the handler returns, whatever
/// it answers.
class finished_read {
public:
  explicit finished_read(const reader_load& load) : load_(load) {
    // nop
  }

  finished_read(const finished_read&) = delete;
  finished_read& operator=(const finished_read&) = delete;

  ~finished_read() {
    load_->fetch_sub(1, std::memory_order_relaxed);
  }

private:
  const reader_load& load_;
};

repository_reader_actor::behavior_type
reader_impl(pointer self, std::shared_ptr<persistence::recording_store> store,
            reader_load load) {
  self->state.store = std::move(store);
  self->state.load = std::move(load);
  using persistence::recording;
  return {
    [=](caf::get_atom, int64_t user, int64_t phrase,
        const std::string& rid) -> caf::result<recording> {
      finished_read done{self->state.load};
      try {
        if (auto row = self->state.store->get(user, phrase))
          return std::move(*row);
        return caf::error{errc::not_found};
      } catch (const persistence::db_error& e) {
        return store_failure("get", rid, e);
      } catch (const std::exception& e) {
        return store_failure("get", rid, e);
      }
    },
    [=](list_atom, int64_t user, int64_t after, int32_t limit,
        const std::string& rid) {
      finished_read done{self->state.load};
      auto& s = *self->state.store;
      return store_call("list", rid,
                        [&] { return s.list(user, after, limit); });
    },
    [=](pending_atom) {
      finished_read done{self->state.load};
      auto& s = *self->state.store;
      return store_call("pending", no_request,
                        [&] { return s.list_processing(); });
    },
    [=](scan_atom, int64_t after_user, int64_t after_phrase, int32_t limit) {
      finished_read done{self->state.load};
      auto& s = *self->state.store;
      return store_call("scan", no_request, [&] {
        return s.list_all(after_user, after_phrase, limit);
      });
    },
    [=](ping_atom) -> caf::result<bool> {
      finished_read done{self->state.load};
      return self->state.store->ping();
    },
  };
}

} // namespace

repository_reader_actor
spawn_repository_reader(caf::actor_system& sys,
                        std::shared_ptr<persistence::recording_store> store,
                        reader_load load) {
  return sys.spawn<caf::detached>(reader_impl, std::move(store),
                                  std::move(load));
}

} // namespace phonon::actors
