#include "actors/storage_actor.hpp"

#include <fstream>
#include <sstream>

#include <caf/typed_event_based_actor.hpp>

#include "actors/errors.hpp"
#include "actors/log.hpp"

namespace phonon::actors {

namespace {

using persistence::blob_key;
using persistence::local_blob_store;

blob_key key_of(const blob_ref& ref) {
  return {ref.user_id, ref.phrase_id, ref.revision, ref.name};
}

blob_stat stat_of(const persistence::blob_info& info) {
  return {info.path.string(), info.size, info.mtime};
}

/// Only files directly inside the temp folder may be read or dropped as
/// spool files; anything else is a programming error, not a client's.
bool in_temp_dir(const local_blob_store& st, const std::string& path) {
  auto p = std::filesystem::path{path}.lexically_normal();
  return p.parent_path() == st.temp_dir().lexically_normal();
}

/// Runs `f` and turns storage exceptions into an error reply.
template <class F>
auto guarded(const char* what, F f) -> caf::result<decltype(f())> {
  try {
    return f();
  } catch (const std::exception& e) {
    log::actors()->warn("storage failure op={} error={}", what, e.what());
    return caf::error{errc::storage_failure, std::string{e.what()}};
  }
}

storage_actor::behavior_type
storage_impl(storage_actor::pointer self,
             std::shared_ptr<local_blob_store> st) {
  return {
    [=](spool_atom, const std::string& path) -> caf::result<std::string> {
      if (!in_temp_dir(*st, path))
        return caf::error{errc::storage_failure, "not a spool file"};
      return guarded("spool", [&] {
        std::ifstream in{path, std::ios::binary};
        if (!in)
          throw persistence::storage_error("cannot open spool file");
        std::ostringstream out;
        out << in.rdbuf();
        return std::move(out).str();
      });
    },
    [=](store_atom, const blob_ref& ref,
        const std::string& spool) -> caf::result<blob_stat> {
      if (!in_temp_dir(*st, spool))
        return caf::error{errc::storage_failure, "not a spool file"};
      return guarded("store",
                     [&] { return stat_of(st->put_file(key_of(ref), spool)); });
    },
    [=](caf::put_atom, const blob_ref& ref, const std::string& bytes) {
      return guarded("put",
                     [&] { return stat_of(st->put_bytes(key_of(ref), bytes)); });
    },
    [=](read_atom, const blob_ref& ref) -> caf::result<std::string> {
      try {
        if (!st->stat(key_of(ref)))
          return caf::error{errc::not_found};
        return st->read(key_of(ref));
      } catch (const std::exception& e) {
        log::actors()->warn("storage failure op=read error={}", e.what());
        return caf::error{errc::storage_failure, std::string{e.what()}};
      }
    },
    [=](stat_atom, const blob_ref& ref) -> caf::result<blob_stat> {
      try {
        if (auto info = st->stat(key_of(ref)))
          return stat_of(*info);
        return caf::error{errc::not_found};
      } catch (const std::exception& e) {
        log::actors()->warn("storage failure op=stat error={}", e.what());
        return caf::error{errc::storage_failure, std::string{e.what()}};
      }
    },
    [=](drop_atom, const std::string& spool) {
      std::error_code ec;
      if (in_temp_dir(*st, spool))
        std::filesystem::remove(spool, ec);
    },
    [=](drop_atom, const blob_ref& ref) {
      return guarded("drop", [&] { return st->remove(key_of(ref)); });
    },
    [=](drop_atom, int64_t user, int64_t phrase, int64_t revision) {
      return guarded("drop", [&] {
        st->remove_revision(user, phrase, revision);
        return true;
      });
    },
    [=](prune_atom, int64_t user, int64_t phrase, int64_t keep) {
      return guarded("prune", [&] {
        st->remove_other_revisions(user, phrase, keep);
        return true;
      });
    },
    [=](list_atom, const std::string& sub) {
      return guarded("list", [&] {
        std::vector<listed_blob> out;
        for (auto& b : st->list_sub(sub))
          out.push_back({blob_ref{b.key.user_id, b.key.phrase_id,
                                  b.key.revision, b.key.name},
                         stat_of(b.info)});
        return out;
      });
    },
    [=](ping_atom) -> caf::result<bool> { return st->writable(); },
  };
}

} // namespace

storage_actor spawn_storage(caf::actor_system& sys,
                            std::shared_ptr<local_blob_store> st) {
  return sys.spawn<caf::detached>(storage_impl, std::move(st));
}

} // namespace phonon::actors
