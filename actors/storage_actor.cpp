#include "actors/storage_actor.hpp"

#include <algorithm>

#include <caf/event_based_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/errors.hpp"
#include "actors/log.hpp"

namespace phonon::actors {

namespace {

using persistence::blob_key;
using persistence::blob_layout;
using persistence::blob_store;

blob_key key_of(const blob_ref& ref) {
  return {ref.user_id, ref.phrase_id, ref.revision, ref.name};
}

blob_stat stat_of(const persistence::blob_info& info) {
  return {info.path.string(), info.size, info.mtime};
}

/// Only files directly inside the temp folder may be read or dropped as
/// spool files; anything else is a programming error, not a client's.
bool in_temp_dir(const blob_store& st, const std::string& path) {
  auto p = std::filesystem::path{path}.lexically_normal();
  return p.parent_path() == st.temp_dir().lexically_normal();
}

struct storage_state {
  static inline const char* name = "phonon.storage";
  std::shared_ptr<blob_store> st;
  uint64_t min_free = 0;
  /// Free bytes the last write that failed for want of space needed;
  /// readiness stays 503 until they exist (then it is reset to 0).
  uint64_t needed_free = 0;
};

using pointer = storage_actor::stateful_pointer<storage_state>;

/// Runs `f` and turns storage exceptions into an error reply: a full disk
/// becomes errc::storage_full and is remembered for readiness, anything
/// else errc::storage_failure. `bytes` is the size being written (0 for
/// operations that only read or remove), remembered when it did not fit;
/// `rid` is the id of the request that caused the operation.
template <class T>
struct result_of_handler {
  using type = caf::result<T>;
};

template <class T>
struct result_of_handler<caf::result<T>> {
  using type = caf::result<T>;
};

template <class Self, class F>
auto guarded(Self self, const char* what, const std::string& rid,
             uint64_t bytes, F f) ->
  typename result_of_handler<decltype(f())>::type {
  try {
    return f();
  } catch (const persistence::storage_error& e) {
    if (e.no_space()) {
      self->state.needed_free = bytes + 64 * 1024;
      log::actors()->warn("storage full req_id={} op={} bytes={} error={}",
                          log::rid(rid), what, bytes, e.what());
      return caf::error{errc::storage_full, std::string{e.what()}};
    }
    if (e.unavailable()) {
      log::actors()->warn("storage unavailable req_id={} op={} error={}",
                          log::rid(rid), what, e.what());
      return caf::error{errc::storage_unavailable, std::string{e.what()}};
    }
    log::actors()->warn("storage failure req_id={} op={} error={}",
                        log::rid(rid), what, e.what());
    return caf::error{errc::storage_failure, std::string{e.what()}};
  } catch (const std::exception& e) {
    log::actors()->warn("storage failure req_id={} op={} error={}",
                        log::rid(rid), what, e.what());
    return caf::error{errc::storage_failure, std::string{e.what()}};
  }
}

/// The request id of work no request caused (scans at startup).
const std::string no_request;

uint64_t file_size_or_zero(const std::string& path) {
  std::error_code ec;
  auto n = std::filesystem::file_size(path, ec);
  return ec ? 0 : static_cast<uint64_t>(n);
}

/// Reads a stored file (read_atom), on the writer or the reader.
template <class Self>
caf::result<std::string> read_blob(Self self, blob_store& st,
                                   const blob_ref& ref,
                                   const std::string& rid) {
  return guarded(self, "read", rid, 0, [&]() -> caf::result<std::string> {
    if (!st.stat(key_of(ref)))
      return caf::error{errc::not_found};
    return st.read(key_of(ref));
  });
}

/// Stats a stored file (stat_atom), on the writer or the reader.
template <class Self>
caf::result<blob_stat> stat_blob(Self self, blob_store& st,
                                 const blob_ref& ref,
                                 const std::string& rid) {
  return guarded(self, "stat", rid, 0, [&]() -> caf::result<blob_stat> {
    if (auto info = st.stat(key_of(ref)))
      return stat_of(*info);
    return caf::error{errc::not_found};
  });
}

/// The facts of a stored file for a GET that may be redirected
/// (facts_atom), on the writer or the reader.
template <class Self>
caf::result<blob_stat> facts_of_blob(Self self, blob_store& st,
                                     const blob_ref& ref, uint64_t fetch_below,
                                     const std::string& rid) {
  return guarded(self, "facts", rid, 0, [&]() -> caf::result<blob_stat> {
    if (auto info = st.facts(key_of(ref), fetch_below))
      return stat_of(*info);
    return caf::error{errc::not_found};
  });
}

/// The reads a GET may need, on a thread of their own: they never wait
/// behind the writer's fsyncs or bucket writes.
using storage_reader_actor = caf::typed_actor<
  caf::replies_to<read_atom, blob_ref, std::string>::with<std::string>,
  caf::replies_to<stat_atom, blob_ref, std::string>::with<blob_stat>,
  caf::replies_to<facts_atom, blob_ref, uint64_t, std::string>::with<
    blob_stat>>;

storage_reader_actor::behavior_type
storage_reader_impl(storage_reader_actor::stateful_pointer<storage_state> self,
                    std::shared_ptr<blob_store> st) {
  self->state.st = st;
  return {
    [=](read_atom, const blob_ref& ref, const std::string& rid) {
      return read_blob(self, *st, ref, rid);
    },
    [=](stat_atom, const blob_ref& ref, const std::string& rid) {
      return stat_blob(self, *st, ref, rid);
    },
    [=](facts_atom, const blob_ref& ref, uint64_t fetch_below,
        const std::string& rid) {
      return facts_of_blob(self, *st, ref, fetch_below, rid);
    },
  };
}

/// The storage actor's face: stat_atom and read_atom go to the reader,
/// every other message to the writer (in the order they arrive, so a
/// sender's changes keep their order). Scheduled: it only forwards, and
/// stays responsive while the writer or the reader blocks. Linked to
/// both, so that an exit sent to it ends all three.
caf::behavior storage_router_impl(caf::event_based_actor* self,
                                  storage_actor writer,
                                  storage_reader_actor reader) {
  self->link_to(writer);
  self->link_to(reader);
  auto to_writer = caf::actor_cast<caf::actor>(writer);
  self->set_default_handler(
    [=](caf::scheduled_actor* ptr,
        caf::message_view& x) -> caf::result<caf::message> {
      return ptr->delegate(to_writer, x.move_content_to_message());
    });
  return {
    [=](read_atom a, blob_ref& ref, std::string& rid) {
      return self->delegate(reader, a, std::move(ref), std::move(rid));
    },
    [=](stat_atom a, blob_ref& ref, std::string& rid) {
      return self->delegate(reader, a, std::move(ref), std::move(rid));
    },
    [=](facts_atom a, blob_ref& ref, uint64_t fetch_below, std::string& rid) {
      return self->delegate(reader, a, std::move(ref), fetch_below,
                            std::move(rid));
    },
  };
}

storage_actor::behavior_type storage_impl(pointer self,
                                          std::shared_ptr<blob_store> st,
                                          uint64_t min_free) {
  self->state.st = st;
  self->state.min_free = min_free;
  return {
    [=](prepare_atom, const blob_ref& ref, const std::string& spool,
        const std::string& rid) {
      if (!in_temp_dir(*st, spool))
        return;
      try {
        st->prepare_put(key_of(ref), spool);
      } catch (const std::exception& e) {
        log::actors()->debug("prepare failed req_id={} error={}",
                             log::rid(rid), e.what());
      }
    },
    [=](store_atom, const blob_ref& ref, const std::string& spool,
        const std::string& master_tmp, bool master_synced,
        uint64_t master_bytes, const std::string& rid) -> caf::result<bool> {
      if (!in_temp_dir(*st, spool))
        return caf::error{errc::storage_failure, "not a spool file"};
      if (!master_tmp.empty() && !in_temp_dir(*st, master_tmp))
        return caf::error{errc::storage_failure, "not a temp file"};
      auto size = file_size_or_zero(spool);
      return guarded(self, "store", rid, size, [&] {
        // The reserve is checked for uploads only: it is what lets the
        // masters of accepted uploads, the database and deletes go on when
        // the disk fills up. An upload whose master cannot fit is refused
        // now rather than accepted and never made ready.
        if (st->free_bytes() < self->state.min_free + size + master_bytes)
          throw persistence::storage_error(
            "not enough free space for the upload and its master", true);
        auto master = blob_layout::master(ref.user_id, ref.phrase_id,
                                          ref.revision);
        auto done = st->put_upload(key_of(ref), spool, master, master_tmp,
                                   master_synced);
        if (!done.master_error.empty()) {
          // The original is in place; the master stays in the temp folder
          // and the recordings actor adopts it after the answer.
          log::actors()->warn("master not installed with its original "
                              "req_id={} user={} phrase={} rev={} error={}",
                              log::rid(rid), ref.user_id, ref.phrase_id,
                              ref.revision, done.master_error);
          if (done.master_no_space)
            self->state.needed_free = master_bytes + 64 * 1024;
        }
        return done.master.has_value();
      });
    },
    [=](caf::put_atom, const blob_ref& ref, const std::string& bytes,
        const std::string& rid) -> caf::result<blob_stat> {
      auto original = blob_layout::original(ref.user_id, ref.phrase_id,
                                            ref.revision);
      auto write = [&]() -> caf::result<blob_stat> {
        // Checked and written in one handler: no delete or prune of this
        // revision can run in between.
        if (!st->exists(original))
          return caf::error{errc::not_found, "the revision is gone"};
        return stat_of(st->put_bytes(key_of(ref), bytes));
      };
      return guarded(self, "put", rid, bytes.size(), write);
    },
    [=](adopt_atom, const blob_ref& ref, const std::string& temp,
        const std::string& rid) -> caf::result<blob_stat> {
      if (!in_temp_dir(*st, temp))
        return caf::error{errc::storage_failure, "not a temp file"};
      auto original = blob_layout::original(ref.user_id, ref.phrase_id,
                                            ref.revision);
      auto adopt = [&]() -> caf::result<blob_stat> {
        // Checked and moved in one handler: no delete or prune of this
        // revision can run in between.
        if (!st->exists(original))
          return caf::error{errc::not_found, "the revision is gone"};
        return stat_of(st->put_file(key_of(ref), temp));
      };
      auto res = guarded(self, "adopt", rid, file_size_or_zero(temp), adopt);
      // Adopted files were renamed away; anything else goes now.
      std::error_code ec;
      std::filesystem::remove(temp, ec);
      return res;
    },
    [=](claim_atom, const blob_ref& ref, uint64_t size, bool copy,
        const std::string& rid) -> caf::result<blob_stat> {
      auto original = blob_layout::original(ref.user_id, ref.phrase_id,
                                            ref.revision);
      auto claim = [&]() -> caf::result<blob_stat> {
        // Checked and copied in one handler, like adopt: no delete or
        // prune of this revision can run in between. A worker's object of
        // a revision that is gone is removed at once (else the next
        // startup's reconciliation would).
        if (!st->exists(original)) {
          st->remove(key_of(ref));
          return caf::error{errc::not_found, "the revision is gone"};
        }
        // facts() with no size fetched: the bucket's HEAD, no download;
        // no path is answered then (it may name no file).
        auto info = copy ? st->stat(key_of(ref)) : st->facts(key_of(ref), 0);
        if (info && !copy)
          info->path.clear();
        // Not what the worker wrote: neither this node's copy nor the
        // object may be served; a later request converts again.
        if (info && info->size != size)
          st->remove(key_of(ref));
        if (!info || info->size != size)
          return caf::error{errc::storage_failure,
                            "the worker's object "
                              + blob_layout::relative(key_of(ref))
                              + (info ? " has " + std::to_string(info->size)
                                          + " bytes, the worker reported "
                                          + std::to_string(size)
                                      : std::string{" is not in the bucket"})};
        return stat_of(*info);
      };
      return guarded(self, "claim", rid, size, claim);
    },
    [=](read_atom, const blob_ref& ref, const std::string& rid) {
      return read_blob(self, *st, ref, rid);
    },
    [=](stat_atom, const blob_ref& ref, const std::string& rid) {
      return stat_blob(self, *st, ref, rid);
    },
    [=](facts_atom, const blob_ref& ref, uint64_t fetch_below,
        const std::string& rid) {
      return facts_of_blob(self, *st, ref, fetch_below, rid);
    },
    [=](drop_atom, const std::string& spool) {
      std::error_code ec;
      if (in_temp_dir(*st, spool))
        std::filesystem::remove(spool, ec);
    },
    [=](drop_atom, const blob_ref& ref, const std::string& rid) {
      return guarded(self, "drop", rid, 0,
                     [&] { return st->remove(key_of(ref)); });
    },
    [=](drop_atom, int64_t user, int64_t phrase, int64_t revision,
        const std::string& rid) {
      return guarded(self, "drop", rid, 0, [&] {
        st->remove_revision(user, phrase, revision);
        return true;
      });
    },
    [=](prune_atom, int64_t user, int64_t phrase, int64_t keep,
        const std::string& rid) {
      return guarded(self, "prune", rid, 0, [&] {
        st->remove_other_revisions(user, phrase, keep);
        return true;
      });
    },
    [=](list_atom, const std::string& sub) {
      return guarded(self, "list", no_request, 0, [&] {
        std::vector<listed_blob> out;
        for (auto& b : st->list_sub(sub))
          out.push_back({blob_ref{b.key.user_id, b.key.phrase_id,
                                  b.key.revision, b.key.name},
                         stat_of(b.info)});
        return out;
      });
    },
    [=](scan_atom) {
      return guarded(self, "scan", no_request, 0, [&] {
        std::vector<stored_revision> out;
        for (auto& r : st->list_revisions())
          out.push_back({r.user_id, r.phrase_id, r.revision, r.has_original});
        return out;
      });
    },
    [=](ping_atom) -> caf::result<bool> {
      try {
        auto free = st->free_bytes();
        // The write that last failed for want of space would fit now.
        if (free >= self->state.needed_free)
          self->state.needed_free = 0;
        return st->writable() && self->state.needed_free == 0
               && free >= self->state.min_free;
      } catch (const std::exception&) {
        return false;
      }
    },
  };
}

} // namespace

storage_actor spawn_storage(caf::actor_system& sys,
                            std::shared_ptr<blob_store> st,
                            uint64_t min_free_bytes) {
  auto writer = sys.spawn<caf::detached>(storage_impl, st, min_free_bytes);
  auto reader = sys.spawn<caf::detached>(storage_reader_impl, std::move(st));
  // Unchecked cast: the router answers the whole storage_actor interface
  // by forwarding (its default handler), which its type cannot show.
  return caf::actor_cast<storage_actor>(
    sys.spawn(storage_router_impl, std::move(writer), std::move(reader)));
}

} // namespace phonon::actors
