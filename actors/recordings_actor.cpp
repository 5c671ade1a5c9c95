#include "actors/recordings_actor.hpp"

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <map>
#include <tuple>

#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/errors.hpp"
#include "actors/log.hpp"
#include "actors/metrics.hpp"
#include "media/formats.hpp"

namespace phonon::actors {

namespace {

using persistence::recording;
using persistence::recording_status;

constexpr const char* original_name = "original";
constexpr const char* master_name = "master.wav";

/// (user, phrase, revision, name) of a stored file.
using file_key = std::tuple<int64_t, int64_t, int64_t, std::string>;

/// Entries kept in the stat cache before it is cleared.
constexpr size_t stat_cache_limit = 100000;

struct recordings_state {
  static inline const char* name = "phonon.recordings";
  recordings_deps deps;
  /// Facts about originals and masters. A revision's files never change
  /// and the row (read on every request) names the current revision, so an
  /// entry can only be stale for a deleted recording, which the row lookup
  /// answers first. Saves the storage actor a round trip per GET.
  std::map<file_key, blob_stat> stats;
};

using pointer = recordings_actor::stateful_pointer<recordings_state>;

int64_t unix_micros() {
  using namespace std::chrono;
  return duration_cast<microseconds>(system_clock::now().time_since_epoch())
    .count();
}

file_ref make_file_ref(const recording& rec, const blob_stat& st,
                       const std::string& format) {
  char etag[64];
  std::snprintf(etag, sizeof(etag), "\"%llx-%s\"",
                static_cast<unsigned long long>(rec.revision), format.c_str());
  auto fmt = media::parse_format(format);
  return file_ref{st.path, st.size, st.mtime, etag,
                  fmt ? media::content_type(*fmt) : "application/octet-stream"};
}

/// Answers `serve` with the facts of a stored original or master, from the
/// stat cache when possible.
template <class Serve, class Fail>
void stat_file(pointer self, blob_ref ref, Serve serve, Fail fail) {
  file_key key{ref.user_id, ref.phrase_id, ref.revision, ref.name};
  auto& stats = self->state.stats;
  if (auto i = stats.find(key); i != stats.end()) {
    auto st = i->second;
    serve(st);
    return;
  }
  self->request(self->state.deps.storage, caf::infinite, stat_atom_v, ref)
    .then(
      [=](blob_stat& st) mutable {
        auto& stats = self->state.stats;
        if (stats.size() >= stat_cache_limit)
          stats.clear();
        stats.emplace(key, st);
        serve(st);
      },
      fail);
}

/// Forgets the cached facts of every revision of (user, phrase).
void forget_stats(pointer self, int64_t user, int64_t phrase) {
  auto& stats = self->state.stats;
  auto first = stats.lower_bound(file_key{user, phrase, INT64_MIN, ""});
  auto last = first;
  while (last != stats.end() && std::get<0>(last->first) == user
         && std::get<1>(last->first) == phrase)
    ++last;
  stats.erase(first, last);
}

/// Pause between attempts to record a completion while the database is
/// unreachable.
constexpr auto ready_retry = std::chrono::seconds(1);

/// Marks a revision ready; while the database is unavailable the attempt is
/// repeated every `ready_retry`, so a completion is recorded as soon as the
/// database is back.
void record_ready(pointer self, const recording& rec) {
  self
    ->request(self->state.deps.repository, caf::infinite, ready_atom_v, rec)
    .then(
      [=](bool current) {
        log::actors()->debug("master ready user={} phrase={} rev={} "
                             "current={}",
                             rec.user_id, rec.phrase_id, rec.revision,
                             current);
      },
      [=](caf::error& err) {
        if (is(err, errc::database_unavailable)) {
          self->delayed_send(self, ready_retry, ready_atom_v, rec);
          return;
        }
        log::actors()->warn("cannot mark ready user={} phrase={} error={}",
                            rec.user_id, rec.phrase_id,
                            self->system().render(err));
      });
}

/// Writes the WAV master of a stored revision and marks the row ready. Runs
/// after the upload was answered; if the master cannot be written the row
/// stays `processing`, so the next start's recovery finishes it.
void finish_master(pointer self, recording rec, std::string wav) {
  auto& d = self->state.deps;
  blob_ref ref{rec.user_id, rec.phrase_id, rec.revision, master_name};
  self->request(d.storage, caf::infinite, caf::put_atom_v, ref, std::move(wav))
    .then([=](const blob_stat&) { record_ready(self, rec); },
          [=](caf::error& err) {
            log::actors()->warn("cannot write master user={} phrase={} "
                                "error={}",
                                rec.user_id, rec.phrase_id,
                                self->system().render(err));
          });
}

/// Fills the facts a decode learned into a row.
void apply_output(recording& rec, const transcode_output& out) {
  rec.original_format = out.format;
  rec.duration_ms = out.duration_ms;
  rec.sample_rate = out.sample_rate;
  rec.channels = out.channels;
  rec.serve_original = out.serve_as_is;
}

/// Runs once the original is decoded (or its decode crashed transcoders
/// `max_attempts` times: then `out` is empty and the row is stored failed,
/// so the original is kept and the error is visible in the metadata).
void register_upload(pointer self, upload_request req,
                     caf::typed_response_promise<upload_result> rp,
                     int64_t revision, caf::expected<transcode_output> out) {
  auto& d = self->state.deps;
  auto now = unix_micros() / 1000;
  recording rec;
  rec.user_id = req.user_id;
  rec.phrase_id = req.phrase_id;
  rec.revision = revision;
  rec.original_filename = req.filename;
  rec.size_bytes = static_cast<int64_t>(req.size);
  rec.created_at = now;
  rec.updated_at = now;
  std::string wav;
  if (out) {
    apply_output(rec, *out);
    wav = std::move(out->bytes);
  } else {
    rec.status = recording_status::failed;
    rec.original_format = "unknown";
    rec.error = "conversion failed: " + detail_of(out.error());
  }
  blob_ref original{req.user_id, req.phrase_id, revision, original_name};
  auto drop_revision = [=] {
    self
      ->request(self->state.deps.storage, caf::infinite, drop_atom_v,
                req.user_id, req.phrase_id, revision)
      .then([](bool) {}, [](caf::error&) {});
  };
  self->request(d.storage, caf::infinite, store_atom_v, original,
                req.spool_path)
    .then(
      [=](const blob_stat&) mutable {
        auto on_stored = [=](bool created) mutable {
          rp.deliver(upload_result{rec, created});
          metrics::global().inc("phonon_uploads_total",
                                {{"format", rec.original_format}});
          metrics::global().inc("phonon_upload_bytes_total", {},
                                static_cast<double>(rec.size_bytes));
          if (!created) {
            auto& d = self->state.deps;
            self
              ->request(d.storage, caf::infinite, prune_atom_v, rec.user_id,
                        rec.phrase_id, rec.revision)
              .then([](bool) {}, [](caf::error&) {});
            self->send(d.cache, drop_atom_v, rec.user_id, rec.phrase_id);
            forget_stats(self, rec.user_id, rec.phrase_id);
          }
          if (rec.status == recording_status::processing)
            finish_master(self, rec, std::move(wav));
        };
        auto on_db_error = [=](caf::error& err) mutable {
          drop_revision();
          rp.deliver(std::move(err));
        };
        auto& repo = self->state.deps.repository;
        if (!req.replace) {
          self->request(repo, caf::infinite, insert_atom_v, rec)
            .then([=](const recording&) mutable { on_stored(true); },
                  on_db_error);
        } else {
          self->request(repo, caf::infinite, upsert_atom_v, rec)
            .then(
              [=](const std::vector<recording>& old) mutable {
                on_stored(old.empty());
              },
              on_db_error);
        }
      },
      [=](caf::error& err) mutable {
        self->send(self->state.deps.storage, drop_atom_v, req.spool_path);
        drop_revision();
        rp.deliver(std::move(err));
      });
}

/// Reads the spooled upload, has it decoded and registers it.
void accept_upload(pointer self, upload_request req,
                   caf::typed_response_promise<upload_result> rp,
                   int64_t revision) {
  auto& d = self->state.deps;
  auto refuse = [=](caf::error err) mutable {
    self->send(self->state.deps.storage, drop_atom_v, req.spool_path);
    rp.deliver(std::move(err));
  };
  self->request(d.storage, caf::infinite, spool_atom_v, req.spool_path)
    .then(
      [=](std::string& bytes) mutable {
        self
          ->request(self->state.deps.supervisor, caf::infinite,
                    transcode_atom_v, std::string{"master"}, std::move(bytes))
          .then(
            [=](transcode_output& out) mutable {
              register_upload(self, req, rp, revision, std::move(out));
            },
            [=](caf::error& err) mutable {
              if (is(err, errc::transcoder_crashed))
                register_upload(self, req, rp, revision, std::move(err));
              else
                refuse(std::move(err));
            });
      },
      [=](caf::error& err) mutable { refuse(std::move(err)); });
}

/// Pause before recovery tries again when no transcoder could take a job.
constexpr auto recovery_retry = std::chrono::seconds(2);

/// Recovers the rows in `todo` one after another (so recovery never floods
/// the conversion queue), then delivers how many there were.
void recover_next(pointer self, std::shared_ptr<std::vector<recording>> todo,
                  size_t index, caf::typed_response_promise<int32_t> rp) {
  if (index >= todo->size()) {
    rp.deliver(static_cast<int32_t>(todo->size()));
    return;
  }
  auto rec = (*todo)[index];
  auto next = [=] { recover_next(self, todo, index + 1, rp); };
  auto& d = self->state.deps;
  auto mark_failed = [=](const std::string& why) {
    log::actors()->warn("recovery failed user={} phrase={} error={}",
                        rec.user_id, rec.phrase_id, why);
    self
      ->request(self->state.deps.repository, caf::infinite, fail_atom_v,
                rec.user_id, rec.phrase_id, rec.revision, why)
      .then([=](bool) { next(); }, [=](caf::error&) { next(); });
  };
  blob_ref original{rec.user_id, rec.phrase_id, rec.revision, original_name};
  self->request(d.storage, caf::infinite, read_atom_v, original)
    .then(
      [=](std::string& bytes) {
        self
          ->request(self->state.deps.supervisor, caf::infinite,
                    transcode_atom_v, std::string{"master"}, std::move(bytes))
          .then(
            [=](transcode_output& out) {
              auto updated = rec;
              apply_output(updated, out);
              finish_master(self, updated, std::move(out.bytes));
              next();
            },
            [=](caf::error& err) mutable {
              if (is(err, errc::no_transcoder) || is(err, errc::overloaded)) {
                // Not the recording's fault: try the whole recovery again
                // shortly (workers may still be joining).
                log::actors()->info("recovery waits for transcoders "
                                    "remaining={}",
                                    todo->size() - index);
                caf::delayed_anon_send(self, recovery_retry, recover_atom_v);
                rp.deliver(static_cast<int32_t>(index));
                return;
              }
              mark_failed("conversion failed: "
                          + self->system().render(err));
            });
      },
      [=](caf::error& err) {
        if (is(err, errc::not_found))
          mark_failed("original file is missing");
        else
          next(); // storage trouble: leave the row for the next start
      });
}

recordings_actor::behavior_type recordings_impl(pointer self,
                                                recordings_deps deps) {
  self->state.deps = std::move(deps);
  return {
    [=](upload_atom, upload_request& req) -> caf::result<upload_result> {
      auto rp = self->make_response_promise<upload_result>();
      self
        ->request(self->state.deps.repository, caf::infinite, caf::get_atom_v,
                  req.user_id, req.phrase_id)
        .then(
          [=](const recording& existing) mutable {
            if (!req.replace) {
              self->send(self->state.deps.storage, drop_atom_v,
                         req.spool_path);
              rp.deliver(caf::error{errc::already_exists});
              return;
            }
            auto rev = std::max(unix_micros(), existing.revision + 1);
            accept_upload(self, req, rp, rev);
          },
          [=](caf::error& err) mutable {
            if (is(err, errc::not_found)) {
              accept_upload(self, req, rp, unix_micros());
              return;
            }
            self->send(self->state.deps.storage, drop_atom_v, req.spool_path);
            rp.deliver(std::move(err));
          });
      return rp;
    },
    [=](meta_atom, int64_t user, int64_t phrase) {
      return self->delegate(self->state.deps.repository, caf::get_atom_v,
                            user, phrase);
    },
    [=](fetch_atom, int64_t user, int64_t phrase,
        std::string& format) -> caf::result<file_ref> {
      auto rp = self->make_response_promise<file_ref>();
      auto& d = self->state.deps;
      self->request(d.repository, caf::infinite, caf::get_atom_v, user, phrase)
        .then(
          [=](const recording& rec) mutable {
            auto& d = self->state.deps;
            auto serve = [=](blob_stat& st) mutable {
              rp.deliver(make_file_ref(rec, st, format));
            };
            auto fail = [=](caf::error& err) mutable {
              rp.deliver(std::move(err));
            };
            // The original bytes of an M4A upload that is AAC with its moov
            // first are served at once, even while the master is being
            // written; any other M4A is converted like the other formats.
            if (rec.serve_original && format == rec.original_format) {
              stat_file(self,
                        blob_ref{user, phrase, rec.revision, original_name},
                        serve, fail);
              return;
            }
            if (rec.status == recording_status::processing) {
              rp.deliver(caf::error{errc::not_ready});
              return;
            }
            if (rec.status == recording_status::failed) {
              rp.deliver(caf::error{errc::conversion_failed, rec.error});
              return;
            }
            if (format == "wav") {
              stat_file(self,
                        blob_ref{user, phrase, rec.revision, master_name},
                        serve, fail);
              return;
            }
            self
              ->request(d.cache, caf::infinite, derive_atom_v, user, phrase,
                        rec.revision, format)
              .then(serve, fail);
          },
          [=](caf::error& err) mutable { rp.deliver(std::move(err)); });
      return rp;
    },
    [=](remove_atom, int64_t user, int64_t phrase) -> caf::result<bool> {
      auto rp = self->make_response_promise<bool>();
      auto& d = self->state.deps;
      self->request(d.repository, caf::infinite, remove_atom_v, user, phrase)
        .then(
          [=](const std::vector<recording>& old) mutable {
            if (old.empty()) {
              rp.deliver(caf::error{errc::not_found});
              return;
            }
            auto& d = self->state.deps;
            self->send(d.cache, drop_atom_v, user, phrase);
            forget_stats(self, user, phrase);
            // keep = 0 matches no revision: every file goes.
            self->request(d.storage, caf::infinite, prune_atom_v, user, phrase,
                          int64_t{0})
              .then([=](bool) mutable { rp.deliver(true); },
                    [=](caf::error&) mutable { rp.deliver(true); });
          },
          [=](caf::error& err) mutable { rp.deliver(std::move(err)); });
      return rp;
    },
    [=](list_atom, int64_t user, int64_t after, int32_t limit) {
      return self->delegate(self->state.deps.repository, list_atom_v, user,
                            after, limit);
    },
    [=](ready_atom, const recording& rec) { record_ready(self, rec); },
    [=](recover_atom) -> caf::result<int32_t> {
      auto rp = self->make_response_promise<int32_t>();
      self
        ->request(self->state.deps.repository, caf::infinite, pending_atom_v)
        .then(
          [=](std::vector<recording>& rows) mutable {
            if (!rows.empty())
              log::actors()->info("recovery: {} recordings still processing",
                                  rows.size());
            auto todo = std::make_shared<std::vector<recording>>(
              std::move(rows));
            recover_next(self, todo, 0, rp);
          },
          [=](caf::error& err) mutable { rp.deliver(std::move(err)); });
      return rp;
    },
  };
}

} // namespace

recordings_actor spawn_recordings(caf::actor_system& sys,
                                  recordings_deps deps) {
  auto& m = metrics::global();
  m.describe("phonon_uploads_total", "counter",
             "Accepted uploads by original format.");
  m.describe("phonon_upload_bytes_total", "counter",
             "Bytes of accepted uploads.");
  return sys.spawn(recordings_impl, std::move(deps));
}

} // namespace phonon::actors
