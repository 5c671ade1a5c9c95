// The recordings actor: the use cases behind the HTTP API.
//
// Every change of one (user, phrase), an upload (POST/PUT) or a DELETE,
// runs alone: a change that arrives while another of the same key runs
// waits in that key's queue (serialize/release). Reads (metadata, fetch,
// list) never wait. Work that runs after an answer (writing the master
// when it could not be stored with the original, and startup recovery)
// does not hold the key; it is safe because the storage actor writes a
// revision's files only while its original exists, and the repository
// marks a revision ready only while the row names it.
//
// An upload is a sequence of named steps that all end in upload_finish,
// the one place that cleans up (the spool file, a half-stored revision)
// and answers:
//
//   upload_check -> upload_decode -> upload_store -> upload_commit
//        |               |                |               |
//        +---------------+----------------+---------------+--> upload_finish
//
// With storage other nodes share (S3: recordings_deps::original_first) the
// original is stored first, so that a worker on the bucket can decode it
// from there and write the master there itself (a bucket job): neither
// passes through this node. The steps are then
//
//   upload_check -> upload_keep_original -> upload_decode
//                -> upload_keep_master -> upload_commit
//
// each of them, too, ending in upload_finish on any error.
//
// The commit point is the row's insert/upsert. Before it, an upload that
// ran past server.request_timeout is abandoned (504, nothing stored);
// after it the client gets 200/201 even when late: an answer never lies.
//
// Normally upload_store installs the original and the WAV master together
// and upload_commit inserts the row already `ready`: nothing is left to do
// after the answer. When the master cannot be installed with the original
// the row is committed `processing` and upload_finish hands the master to
// write_master (adopt, then record_ready), the same path startup recovery
// and the retries after a full disk take.

#include "actors/recordings_actor.hpp"

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <tuple>

#include <caf/sec.hpp>
#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/errors.hpp"
#include "actors/log.hpp"
#include "actors/metrics.hpp"
#include "media/formats.hpp"
#include "persistence/blob_layout.hpp"
#include "persistence/text.hpp"

namespace phonon::actors {

namespace {

using persistence::recording;
using persistence::recording_status;

const std::string original_name{persistence::blob_layout::original_name};
const std::string master_name{persistence::blob_layout::master_name};

/// (user, phrase, revision, name) of a stored file.
using file_key = std::tuple<int64_t, int64_t, int64_t, std::string>;

/// (user, phrase): the unit whose changes run one at a time.
using key_type = std::pair<int64_t, int64_t>;

using clock_type = std::chrono::steady_clock;

/// Entries kept in the stat cache before it is cleared.
constexpr size_t stat_cache_limit = 100000;

/// The request id of work no request caused: startup reconciliation and
/// recovery log "-". (Work that finishes an upload after its answer, the
/// master and its retries, keeps the upload's id instead: see
/// recordings_actor.hpp.)
const std::string no_request;

struct recordings_state {
  static inline const char* name = "phonon.recordings";
  recordings_deps deps;
  /// Facts about originals and masters. A revision's files never change
  /// and the row (read on every request) names the current revision, so an
  /// entry can only be stale for a deleted recording, which the row lookup
  /// answers first. Saves the storage actor a round trip per GET.
  std::map<file_key, blob_stat> stats;
  /// Keys with a change running, each with the changes waiting behind it.
  std::map<key_type, std::deque<std::function<void()>>> changes;
  /// Unix microseconds at spawn less recordings_deps::reconcile_grace:
  /// revisions from before it are judged by reconciliation, newer ones may
  /// be uploads in flight.
  int64_t started_us = 0;
  /// Unix microseconds at spawn.
  int64_t spawned_us = 0;
  /// Reconciliation ran (once per process).
  bool reconciled = false;
};

using pointer = recordings_actor::stateful_pointer<recordings_state>;

/// A change of (user, phrase) is about to be answered: this node's read
/// model forgets the key, and the other serve nodes hear of it (their read
/// models forget it too).
void publish_change(pointer self, int64_t user, int64_t phrase) {
  self->state.deps.model->invalidate(user, phrase);
  if (self->state.deps.peers)
    self->send(self->state.deps.peers, changed_atom_v, user, phrase);
}

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
  const char* type = "application/octet-stream";
  if (fmt)
    type = media::content_type(*fmt);
  else if (auto w = persistence::blob_layout::parse_waveform_format(format);
           w && w->json)
    type = "application/json";
  return file_ref{st.path, st.size, st.mtime, etag, type};
}

/// Answers `serve` with the facts of a stored original or master, from the
/// stat cache when possible; `rid` is the asking request's id.
template <class Serve, class Fail>
void stat_file(pointer self, blob_ref ref, const std::string& rid,
               Serve serve, Fail fail) {
  file_key key{ref.user_id, ref.phrase_id, ref.revision, ref.name};
  auto& stats = self->state.stats;
  if (auto i = stats.find(key); i != stats.end()) {
    auto st = i->second;
    serve(st);
    return;
  }
  auto& storage = self->state.deps.storage;
  auto on_stat = [=](blob_stat& st) mutable {
    auto& stats = self->state.stats;
    if (stats.size() >= stat_cache_limit)
      stats.clear();
    stats.emplace(key, st);
    serve(st);
  };
  // With redirects on, a large file's GET needs its facts, not its bytes.
  if (auto min = self->state.deps.redirect_min_bytes; min > 0) {
    self->request(storage, caf::infinite, facts_atom_v, ref, min, rid)
      .then(on_stat, fail);
    return;
  }
  self->request(storage, caf::infinite, stat_atom_v, ref, rid)
    .then(on_stat, fail);
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

// -- serializing the changes of one key ----------------------------------------

/// Runs `change` at once when no other change of `key` runs, else after
/// the ones before it. Every change calls release() exactly once, on its
/// one exit path.
void serialize(pointer self, const key_type& key, std::function<void()> change) {
  auto [i, idle] = self->state.changes.try_emplace(key);
  if (idle)
    change();
  else
    i->second.push_back(std::move(change));
}

/// Ends the running change of `key` and starts the next one waiting.
void release(pointer self, const key_type& key) {
  auto& changes = self->state.changes;
  auto i = changes.find(key);
  if (i == changes.end())
    return;
  if (i->second.empty()) {
    changes.erase(i);
    return;
  }
  auto next = std::move(i->second.front());
  i->second.pop_front();
  next();
}

bool past(clock_type::time_point deadline) {
  return clock_type::now() > deadline;
}

caf::error abandoned() {
  return caf::make_error(errc::deadline_exceeded,
                         "server.request_timeout passed before the commit");
}

// -- the master, written after the answer -------------------------------------

/// Pause between attempts to record a completion while the database is
/// unreachable.
constexpr auto ready_retry = std::chrono::seconds(1);

/// Marks a revision ready; while the database is unavailable the attempt is
/// repeated every `ready_retry`, so a completion is recorded as soon as the
/// database is back. `rid`: the id of the upload that made the revision.
void record_ready(pointer self, const recording& rec, const std::string& rid) {
  self
    ->request(self->state.deps.repository, caf::infinite, ready_atom_v, rec,
              rid)
    .then(
      [=](bool current) {
        // The row's status changed (when `current`): the next read of it
        // goes to the database.
        if (current)
          publish_change(self, rec.user_id, rec.phrase_id);
        log::actors()->debug("master ready req_id={} user={} phrase={} "
                             "rev={} current={}",
                             log::rid(rid), rec.user_id, rec.phrase_id,
                             rec.revision, current);
      },
      [=](caf::error& err) {
        if (is(err, errc::database_unavailable)
            || is(err, errc::storage_full)) {
          self->delayed_send(self, ready_retry, ready_atom_v, rec, rid);
          return;
        }
        log::actors()->warn("cannot mark ready req_id={} user={} phrase={} "
                            "error={}",
                            log::rid(rid), rec.user_id, rec.phrase_id,
                            self->system().render(err));
      });
}

/// Wait before the next attempt to make a master that could not be written
/// (a full disk): 1 s, 2 s, 4 s, ... at most 30 s.
caf::timespan master_backoff(int32_t attempt) {
  auto secs = std::min<int64_t>(30, int64_t{1} << std::min(attempt, 5));
  return std::chrono::seconds(secs);
}

/// Writes the WAV master of a stored revision and marks the row ready. Runs
/// after the upload was answered and does not hold the key: the storage
/// actor refuses the write once the revision is deleted or replaced, and the
/// repository marks only the current revision ready. `wav_path` is the
/// transcoder's output in the temp folder; the storage actor adopts it
/// (fsync, rename) or removes it. A write that fails (a full disk) is tried
/// again later from the original. `rid`: the id of the upload that made
/// the revision. `stored`: the master is not a file but already in the
/// bucket, of that size (a worker's bucket job): the storage actor claims
/// it instead of adopting a file.
void write_master(pointer self, recording rec, std::string wav_path,
                  int32_t attempt, std::string rid,
                  std::optional<uint64_t> stored = std::nullopt) {
  auto& d = self->state.deps;
  blob_ref ref{rec.user_id, rec.phrase_id, rec.revision, master_name};
  auto written = [=](const blob_stat&) { record_ready(self, rec, rid); };
  auto failed = [=](caf::error& err) {
    if (is(err, errc::not_found))
      return; // deleted or replaced meanwhile: nothing to do
    log::actors()->warn("cannot write master req_id={} user={} phrase={} "
                        "attempt={} error={}",
                        log::rid(rid), rec.user_id, rec.phrase_id, attempt,
                        self->system().render(err));
    metrics::global().inc("phonon_master_retries_total");
    self->delayed_send(self, master_backoff(attempt), remaster_atom_v, rec,
                       attempt + 1, rid);
  };
  if (stored)
    self->request(d.storage, caf::infinite, claim_atom_v, ref, *stored, false,
                  rid)
      .then(written, failed);
  else
    self
      ->request(d.storage, caf::infinite, adopt_atom_v, ref,
                std::move(wav_path), rid)
      .then(written, failed);
}

/// Fills the facts a decode learned into a row.
void apply_output(recording& rec, const transcode_output& out) {
  rec.original_format = out.format;
  rec.duration_ms = out.duration_ms;
  rec.sample_rate = out.sample_rate;
  rec.channels = out.channels;
  rec.serve_original = out.serve_as_is;
}

/// How rebuilding a master ended, for startup recovery.
enum class rebuilt {
  /// Written, being written, failed for good or no longer needed: go on.
  done,
  /// No transcoder could take the job: try again later.
  later,
};

/// Marks a revision failed for good (the original is unusable).
void mark_failed(pointer self, const recording& rec, const std::string& why,
                 const std::string& rid, std::function<void()> then) {
  log::actors()->warn("recording failed req_id={} user={} phrase={} rev={} "
                      "error={}",
                      log::rid(rid), rec.user_id, rec.phrase_id, rec.revision,
                      why);
  self
    ->request(self->state.deps.repository, caf::infinite, fail_atom_v,
              rec.user_id, rec.phrase_id, rec.revision, why, rid)
    .then(
      [=](bool) {
        publish_change(self, rec.user_id, rec.phrase_id);
        then();
      },
      [=](caf::error&) { then(); });
}

/// Makes the master of a stored revision again from its original: startup
/// recovery of `processing` rows, and the retry after a failed master write
/// (`attempt` > 0), which first checks that the row still wants it. `rid`:
/// the id of the upload that made the revision (empty for recovery).
void rebuild_master(pointer self, recording rec, int32_t attempt,
                    std::string rid, std::function<void(rebuilt)> done) {
  auto& d = self->state.deps;
  blob_ref original{rec.user_id, rec.phrase_id, rec.revision, original_name};
  log::actors()->debug("remaking master req_id={} user={} phrase={} rev={} "
                       "attempt={}",
                       log::rid(rid), rec.user_id, rec.phrase_id,
                       rec.revision, attempt);
  auto convert = [=] {
    self->request(self->state.deps.storage, caf::infinite, stat_atom_v,
                  original, rid)
      .then(
        [=](const blob_stat& file) {
          // The transcoder streams the stored original from its file.
          // With both keys: a worker that reaches the bucket reads the
          // original and writes the master there itself.
          self
            ->request(self->state.deps.supervisor, caf::infinite,
                      transcode_atom_v, std::string{"master"}, file.path,
                      file.size, rid, original,
                      blob_ref{rec.user_id, rec.phrase_id, rec.revision,
                               master_name})
            .then(
              [=](transcode_output& out) {
                auto updated = rec;
                apply_output(updated, out);
                write_master(self, updated, std::move(out.output_path),
                             attempt, rid,
                             out.stored ? std::optional<uint64_t>{out.size}
                                        : std::nullopt);
                done(rebuilt::done);
              },
              [=](caf::error& err) {
                if (is(err, errc::storage_full)) {
                  // The master did not fit in the temp folder: as when
                  // its write fails, try again when there is room.
                  log::actors()->warn("cannot write master req_id={} "
                                      "user={} phrase={} attempt={} "
                                      "error={}",
                                      log::rid(rid), rec.user_id,
                                      rec.phrase_id, attempt,
                                      self->system().render(err));
                  metrics::global().inc("phonon_master_retries_total");
                  self->delayed_send(self, master_backoff(attempt),
                                     remaster_atom_v, rec, attempt + 1, rid);
                  done(rebuilt::done);
                  return;
                }
                if (is(err, errc::no_transcoder) || is(err, errc::overloaded)
                    || err == caf::sec::request_timeout
                    || is(err, errc::deadline_exceeded)) {
                  if (attempt > 0)
                    self->delayed_send(self, master_backoff(attempt),
                                       remaster_atom_v, rec, attempt + 1,
                                       rid);
                  done(rebuilt::later);
                  return;
                }
                mark_failed(self, rec,
                            "conversion failed: "
                              + self->system().render(err),
                            rid, [=] { done(rebuilt::done); });
              });
        },
        [=](caf::error& err) {
          if (is(err, errc::not_found)) {
            mark_failed(self, rec, "original is missing", rid,
                        [=] { done(rebuilt::done); });
            return;
          }
          // Storage trouble: try again later, the row stays processing.
          self->delayed_send(self, master_backoff(attempt), remaster_atom_v,
                             rec, attempt + 1, rid);
          done(rebuilt::done);
        });
  };
  if (attempt == 0) {
    convert();
    return;
  }
  self->request(d.repository, caf::infinite, caf::get_atom_v, rec.user_id,
                rec.phrase_id, rid)
    .then(
      [=](const recording& now) {
        if (now.revision != rec.revision
            || now.status != recording_status::processing)
          return done(rebuilt::done); // replaced, deleted or finished
        convert();
      },
      [=](caf::error& err) {
        if (!is(err, errc::not_found))
          self->delayed_send(self, master_backoff(attempt), remaster_atom_v,
                             rec, attempt + 1, rid);
        done(rebuilt::done);
      });
}

// -- upload: named steps, one exit -----------------------------------------------

/// One upload on its way through the steps below; shared by their callbacks.
struct upload_flow {
  upload_request req;
  caf::typed_response_promise<upload_result> rp;
  /// server.request_timeout after the upload reached this actor. Past it,
  /// an upload that has not committed is abandoned.
  clock_type::time_point deadline;
  int64_t revision = 0;
  /// The original may be in its revision folder: a failure removes it.
  bool revision_touched = false;
  /// original_first: this node's copy of the stored original, the
  /// decode's input.
  std::string original_path;
  /// The decode's result; empty when transcoders crashed on it (`crash`),
  /// which is stored as a failed row so the error stays visible.
  std::optional<transcode_output> decoded;
  caf::error crash;
  /// upload_store installed the master with the original: the row is
  /// committed `ready`.
  bool master_installed = false;
  /// The committed row.
  recording rec;
  bool created = true;
  /// The revision the committed row replaced (a PUT over an existing
  /// recording), whose files go after the answer.
  std::optional<int64_t> replaced;
};

using flow_ptr = std::shared_ptr<upload_flow>;

void upload_keep_original(pointer self, flow_ptr f);
void upload_decode(pointer self, flow_ptr f);
void upload_store(pointer self, flow_ptr f);
void upload_keep_master(pointer self, flow_ptr f);
void upload_commit(pointer self, flow_ptr f);
void upload_finish(pointer self, flow_ptr f, caf::error err);

/// Step 1: POST must not find a row; PUT gets the next revision.
void upload_check(pointer self, flow_ptr f) {
  if (past(f->deadline))
    return upload_finish(self, f, abandoned());
  auto next = [=] {
    if (self->state.deps.original_first)
      upload_keep_original(self, f);
    else
      upload_decode(self, f);
  };
  self
    ->request(self->state.deps.repository, caf::infinite, caf::get_atom_v,
              f->req.user_id, f->req.phrase_id, f->req.request_id)
    .then(
      [=](const recording& existing) {
        if (!f->req.replace)
          return upload_finish(self, f, caf::error{errc::already_exists});
        f->revision = std::max(unix_micros(), existing.revision + 1);
        next();
      },
      [=](caf::error& err) {
        if (!is(err, errc::not_found))
          return upload_finish(self, f, std::move(err));
        f->revision = unix_micros();
        next();
      });
}

/// Step 2 with original_first: the original goes into its revision alone
/// (for S3 the bucket's PUT, then this node's copy, which is the decode's
/// input). Its reserve check cannot count the master, whose size the
/// decode tells; a master that then does not fit is written later.
void upload_keep_original(pointer self, flow_ptr f) {
  if (past(f->deadline))
    return upload_finish(self, f, abandoned());
  auto& storage = self->state.deps.storage;
  const auto& rid = f->req.request_id;
  blob_ref original{f->req.user_id, f->req.phrase_id, f->revision,
                    original_name};
  auto fail = [=](caf::error& err) { upload_finish(self, f, std::move(err)); };
  f->revision_touched = true;
  self
    ->request(storage, caf::infinite, store_atom_v, original,
              f->req.spool_path, std::string{}, false, uint64_t{0}, rid)
    .then(
      [=](bool) {
        self->request(storage, caf::infinite, stat_atom_v, original, rid)
          .then(
            [=](const blob_stat& file) {
              f->original_path = file.path;
              upload_decode(self, f);
            },
            fail);
      },
      fail);
}

/// Step 2 (3 with original_first): one transcoder decodes the upload end
/// to end, streaming the WAV master into a temp file that it fsyncs itself
/// (on its own thread), so that installing it is a rename. With
/// original_first the job names the original's and the master's keys: a
/// worker on the bucket reads the one and stores the other itself.
void upload_decode(pointer self, flow_ptr f) {
  auto& d = self->state.deps;
  const auto& rid = f->req.request_id;
  blob_ref original{f->req.user_id, f->req.phrase_id, f->revision,
                    original_name};
  auto next = [=] {
    if (self->state.deps.original_first)
      upload_keep_master(self, f);
    else
      upload_store(self, f);
  };
  auto decoded = [=](transcode_output& out) {
    f->decoded = std::move(out);
    next();
  };
  auto failed = [=](caf::error& err) {
    if (!is(err, errc::transcoder_crashed))
      return upload_finish(self, f, std::move(err));
    f->crash = std::move(err);
    next();
  };
  if (d.original_first) {
    self
      ->request(d.supervisor, caf::infinite, transcode_atom_v,
                std::string{"master"}, f->original_path, f->req.size, rid,
                original,
                blob_ref{f->req.user_id, f->req.phrase_id, f->revision,
                         master_name})
      .then(decoded, failed);
    return;
  }
  // Meanwhile the storage actor syncs the spool file and makes the
  // revision folder (the slow part of upload_store), so those waits
  // overlap the decode. A failed upload removes the folder again.
  f->revision_touched = true;
  self->send(d.storage, prepare_atom_v, original, f->req.spool_path, rid);
  self
    ->request(d.supervisor, caf::infinite, transcode_atom_v,
              std::string{"master"}, f->req.spool_path, f->req.size, rid)
    .then(decoded, failed);
}

/// Step 3: the original moves into its revision folder durably, and with
/// it the WAV master the decode wrote: one storage request, one fsync of
/// the folder. A master the storage actor cannot install (any failure) is
/// left in the temp folder and written after the answer (upload_finish).
void upload_store(pointer self, flow_ptr f) {
  if (past(f->deadline))
    return upload_finish(self, f, abandoned());
  blob_ref original{f->req.user_id, f->req.phrase_id, f->revision,
                    original_name};
  f->revision_touched = true;
  uint64_t master_bytes = 0;
  std::string master_tmp; // none: the original alone
  bool master_synced = false;
  if (f->decoded) {
    master_bytes = f->decoded->size;
    // Test hook (PHONON_TEST_MASTER_DELAY_MS): the master is made after
    // the answer instead, the path a failed install takes.
    if (self->state.deps.master_delay.count() == 0) {
      master_tmp = f->decoded->output_path;
      master_synced = f->decoded->synced;
    }
  }
  self
    ->request(self->state.deps.storage, caf::infinite, store_atom_v, original,
              f->req.spool_path, std::move(master_tmp), master_synced,
              master_bytes, f->req.request_id)
    .then(
      [=](bool with_master) {
        f->master_installed = with_master;
        if (with_master)
          f->decoded->output_path.clear(); // renamed into place
        upload_commit(self, f);
      },
      [=](caf::error& err) { upload_finish(self, f, std::move(err)); });
}

/// Step 4 with original_first: the master goes next to its original. A
/// worker's bucket job stored it already: it is claimed (its size checked
/// in the bucket; this node makes no copy until it needs one); any other
/// decode left a file, which is adopted (the bucket's PUT, then this
/// node's copy). A master that cannot be kept now is made again after the
/// answer (the row is committed `processing`).
void upload_keep_master(pointer self, flow_ptr f) {
  auto& d = self->state.deps;
  // A crash is committed as a failed row; the test hook (master_delay)
  // makes the master after the answer, like a master that was not kept.
  if (!f->decoded || d.master_delay.count() > 0)
    return upload_commit(self, f);
  const auto& rid = f->req.request_id;
  blob_ref master{f->req.user_id, f->req.phrase_id, f->revision,
                  master_name};
  auto kept = [=](const blob_stat&) {
    f->master_installed = true;
    f->decoded->output_path.clear(); // adopted: renamed into place
    upload_commit(self, f);
  };
  auto not_kept = [=](caf::error& err) {
    log::actors()->warn("master not kept with its original req_id={} "
                        "user={} phrase={} rev={} error={}",
                        log::rid(rid), f->req.user_id, f->req.phrase_id,
                        f->revision, self->system().render(err));
    // Neither a stored object nor a file is left to install (adopt
    // removes its file whatever happens): upload_finish makes it again.
    f->decoded->stored = false;
    f->decoded->output_path.clear();
    upload_commit(self, f);
  };
  if (f->decoded->stored)
    self
      ->request(d.storage, caf::infinite, claim_atom_v, master,
                f->decoded->size, false, rid)
      .then(kept, not_kept);
  else
    self
      ->request(d.storage, caf::infinite, adopt_atom_v, master,
                f->decoded->output_path, rid)
      .then(kept, not_kept);
}

/// Step 4 (5 with original_first), the commit point: the row names the new revision, `ready` when
/// its master is installed (else `processing`). Before it an upload past
/// its deadline is abandoned; after it the answer is 200/201 however late.
void upload_commit(pointer self, flow_ptr f) {
  if (past(f->deadline))
    return upload_finish(self, f, abandoned());
  auto now = unix_micros() / 1000;
  auto& rec = f->rec;
  rec.user_id = f->req.user_id;
  rec.phrase_id = f->req.phrase_id;
  rec.revision = f->revision;
  rec.original_filename = persistence::valid_utf8(f->req.filename);
  rec.size_bytes = static_cast<int64_t>(f->req.size);
  rec.created_at = now;
  rec.updated_at = now;
  if (f->decoded) {
    apply_output(rec, *f->decoded);
    // The master is durable in its folder: no second write marks it.
    rec.status = f->master_installed ? recording_status::ready
                                     : recording_status::processing;
  } else {
    rec.status = recording_status::failed;
    rec.original_format = "unknown";
    rec.error = "conversion failed: " + detail_of(f->crash);
  }
  auto& repo = self->state.deps.repository;
  auto fail = [=](caf::error& err) { upload_finish(self, f, std::move(err)); };
  if (!f->req.replace) {
    self->request(repo, caf::infinite, insert_atom_v, rec, f->req.request_id)
      .then([=](const recording&) { upload_finish(self, f, caf::error{}); },
            fail);
    return;
  }
  self->request(repo, caf::infinite, upsert_atom_v, rec, f->req.request_id)
    .then(
      [=](const std::vector<recording>& old) {
        f->created = old.empty();
        // The row this commit replaced, read in the same transaction: with
        // several nodes it may be another node's upload that committed
        // after this one began, not the row step 1 saw.
        if (!old.empty() && old.front().revision != f->revision)
          f->replaced = old.front().revision;
        upload_finish(self, f, caf::error{});
      },
      fail);
}

/// The one exit of an upload: drops the spool file (a no-op once it moved
/// into place), removes a half-stored revision, answers, and lets the key's
/// next change run once the files of older revisions are gone. A committed
/// upload whose master was not installed with its original (a `processing`
/// row) then has its master written in the background.
void upload_finish(pointer self, flow_ptr f, caf::error err) {
  auto& d = self->state.deps;
  key_type key{f->req.user_id, f->req.phrase_id};
  const auto& rid = f->req.request_id;
  self->send(d.storage, drop_atom_v, f->req.spool_path);
  // The master's temp file, unless it was installed (then empty) or
  // write_master adopts it below.
  auto master_tmp = f->decoded ? f->decoded->output_path : std::string{};
  auto drop_master = [=] {
    if (!master_tmp.empty())
      self->send(self->state.deps.storage, drop_atom_v, master_tmp);
  };
  auto next = [=] { release(self, key); };
  if (err) {
    if (is(err, errc::deadline_exceeded))
      log::actors()->warn("upload abandoned before its commit req_id={} "
                          "user={} phrase={}",
                          log::rid(rid), key.first, key.second);
    else
      log::actors()->debug("upload refused req_id={} user={} phrase={} "
                           "error={}",
                           log::rid(rid), key.first, key.second,
                           self->system().render(err));
    if (f->revision_touched) {
      // Nothing committed, but nothing published may outlive the files.
      publish_change(self, key.first, key.second);
      self
        ->request(d.storage, caf::infinite, drop_atom_v, key.first,
                  key.second, f->revision, rid)
        .then([=](bool) { next(); }, [=](caf::error&) { next(); });
    } else {
      next();
    }
    drop_master();
    f->rp.deliver(std::move(err));
    return;
  }
  log::actors()->debug("upload stored req_id={} user={} phrase={} rev={} "
                       "format={} status={} created={}",
                       log::rid(rid), key.first, key.second, f->rec.revision,
                       f->rec.original_format,
                       persistence::to_string(f->rec.status), f->created);
  // Before the answer: no GET after it may see the replaced revision.
  publish_change(self, key.first, key.second);
  f->rp.deliver(upload_result{f->rec, f->created});
  auto& m = metrics::global();
  m.inc("phonon_uploads_total", {{"format", f->rec.original_format}});
  m.inc("phonon_upload_bytes_total", {},
        static_cast<double>(f->rec.size_bytes));
  // The replaced revision, and only it: another revision of the key may be
  // another node's upload that has stored its files and not yet committed
  // (it commits over this one, and then removes this revision). What a
  // crash left of older revisions goes at the next startup's
  // reconciliation.
  self->send(d.cache, drop_atom_v, key.first, key.second);
  forget_stats(self, key.first, key.second);
  if (f->replaced)
    self
      ->request(d.storage, caf::infinite, drop_atom_v, key.first, key.second,
                *f->replaced, rid)
      .then([=](bool) { next(); }, [=](caf::error&) { next(); });
  else
    next();
  if (f->rec.status != recording_status::processing)
    return drop_master();
  if (auto delay = self->state.deps.master_delay; delay.count() > 0) {
    // Test hook (PHONON_TEST_MASTER_DELAY_MS): the master is made later,
    // from the original, as after a failed write.
    drop_master();
    self->delayed_send(self, delay, remaster_atom_v, f->rec, int32_t{1}, rid);
    return;
  }
  if (f->decoded->stored)
    write_master(self, f->rec, {}, 0, rid, f->decoded->size);
  else if (!f->decoded->output_path.empty())
    write_master(self, f->rec, std::move(f->decoded->output_path), 0, rid);
  else // nothing left of it (upload_keep_master): made from the original
    self->send(self, remaster_atom_v, f->rec, int32_t{1}, rid);
}

// -- fetch: named steps, one exit ------------------------------------------------
//
//   fetch_lookup --> fetch_serve --(the file is gone)--> fetch_gone
//     ^    |              |                                |  |
//     |    |              |      (replaced: once more)     |  |
//     +----|--------------|--------------------------------+  |
//          +--------------+-----------------------------------+--> fetch_finish
//
// A GET reads without waiting for the key's changes, so a PUT may replace
// (or a DELETE remove) the revision it looks at: its files go and storage
// answers not_found (a stat, a conversion whose master vanished, an adopt
// of "the revision is gone"). That is not a 404 while the recording
// exists: fetch_gone reads the row again and serves the current revision
// once; a recording that is gone now is 404; one replaced again, or past
// server.request_timeout, is errc::recording_changed (503 + Retry-After).

struct fetch_flow {
  caf::typed_response_promise<file_ref> rp;
  /// server.request_timeout after the GET reached this actor: no second
  /// attempt starts past it.
  clock_type::time_point deadline;
  int64_t user = 0;
  int64_t phrase = 0;
  std::string format;
  std::string rid;
  /// The revision the first attempt served; set when it was gone.
  std::optional<int64_t> gone_revision;
};

using fetch_ptr = std::shared_ptr<fetch_flow>;

void fetch_serve(pointer self, fetch_ptr f, const recording& rec);
void fetch_gone(pointer self, fetch_ptr f, const recording& rec,
                caf::error err);

/// The one exit: answers the GET with the file or the error.
void fetch_finish(pointer self, const fetch_ptr& f,
                  caf::expected<file_ref> res) {
  if (res) {
    f->rp.deliver(std::move(*res));
    return;
  }
  log::actors()->debug("fetch failed req_id={} user={} phrase={} format={} "
                       "error={}",
                       log::rid(f->rid), f->user, f->phrase, f->format,
                       self->system().render(res.error()));
  f->rp.deliver(std::move(res.error()));
}

/// Reads the row (what it learns is published to the read model unless the
/// key changed meanwhile); no row is 404.
void fetch_lookup(pointer self, fetch_ptr f) {
  auto gen = self->state.deps.model->generation(f->user, f->phrase);
  self
    ->request(self->state.deps.repository, caf::infinite, caf::get_atom_v,
              f->user, f->phrase, f->rid)
    .then(
      [=](const recording& rec) {
        self->state.deps.model->publish_row(rec, gen);
        fetch_serve(self, f, rec);
      },
      [=](caf::error& err) { fetch_finish(self, f, std::move(err)); });
}

/// Finds (or has the format cache make) the format's file of the row's
/// revision.
void fetch_serve(pointer self, fetch_ptr f, const recording& rec) {
  auto& d = self->state.deps;
  auto gen = d.model->generation(f->user, f->phrase);
  auto serve = [=](blob_stat& st) {
    auto ref = make_file_ref(rec, st, f->format);
    self->state.deps.model->publish_file(rec, gen, f->format, ref);
    fetch_finish(self, f, std::move(ref));
  };
  auto fail = [=](caf::error& err) {
    if (is(err, errc::not_found))
      fetch_gone(self, f, rec, std::move(err));
    else
      fetch_finish(self, f, std::move(err));
  };
  if (rec.status == recording_status::failed)
    return fetch_finish(self, f, caf::error{errc::conversion_failed, rec.error});
  // The original bytes of an M4A upload that is AAC with its moov first
  // are served at once, even while the master is being written; any other
  // M4A is converted like the other formats.
  if (rec.serve_original && f->format == rec.original_format)
    return stat_file(self,
                     blob_ref{f->user, f->phrase, rec.revision, original_name},
                     f->rid, serve, fail);
  if (rec.status == recording_status::processing)
    return fetch_finish(self, f, caf::error{errc::not_ready});
  if (f->format == "wav")
    return stat_file(self,
                     blob_ref{f->user, f->phrase, rec.revision, master_name},
                     f->rid, serve, fail);
  self
    ->request(d.cache, caf::infinite, derive_atom_v, f->user, f->phrase,
              rec.revision, f->format, f->rid, rec.sample_rate)
    .then(serve, fail);
}

/// The file of `rec`'s revision is gone: the first time, and within the
/// deadline, the row is read again and its current revision served (a
/// recording deleted by now is 404 there); a second time, or past the
/// deadline, the client is asked to retry.
void fetch_gone(pointer self, fetch_ptr f, const recording& rec,
                caf::error err) {
  if (f->gone_revision) {
    // The same revision gone twice is not a replacement: as before.
    if (*f->gone_revision == rec.revision)
      return fetch_finish(self, f, std::move(err));
    return fetch_finish(self, f, caf::error{errc::recording_changed});
  }
  f->gone_revision = rec.revision;
  if (past(f->deadline))
    return fetch_finish(self, f, caf::error{errc::recording_changed});
  log::actors()->debug("fetch reads the row again req_id={} user={} "
                       "phrase={} format={} gone_rev={}",
                       log::rid(f->rid), f->user, f->phrase, f->format,
                       rec.revision);
  fetch_lookup(self, f);
}

// -- delete --------------------------------------------------------------------

/// Deletes the row, then every file of the key; answers once both are gone.
/// When the database cannot write because the disk is full, the key's files
/// go first to make room (the client asked for all of it to go) and the row
/// removal is tried once more.
void delete_recording(pointer self, key_type key, std::string rid,
                      caf::typed_response_promise<bool> rp, bool freed) {
  auto& d = self->state.deps;
  auto finish = [=](caf::expected<bool> res) mutable {
    if (res)
      rp.deliver(*res);
    else
      rp.deliver(res.error());
    log::actors()->debug("delete done req_id={} user={} phrase={} result={}",
                         log::rid(rid), key.first, key.second,
                         res ? std::string{"deleted"}
                             : self->system().render(res.error()));
    release(self, key);
  };
  auto prune_all = [=](std::function<void()> then) {
    // keep = 0 matches no revision: every file goes.
    self
      ->request(self->state.deps.storage, caf::infinite, prune_atom_v,
                key.first, key.second, int64_t{0}, rid)
      .then([=](bool) { then(); }, [=](caf::error&) { then(); });
  };
  self->request(d.repository, caf::infinite, remove_atom_v, key.first,
                key.second, rid)
    .then(
      [=](const std::vector<recording>& old) mutable {
        if (old.empty())
          return finish(caf::error{errc::not_found});
        // Before the files go and before the answer.
        publish_change(self, key.first, key.second);
        self->send(self->state.deps.cache, drop_atom_v, key.first,
                   key.second);
        forget_stats(self, key.first, key.second);
        // The deleted row's revision, and only it: another node's upload
        // of the key may have stored a newer revision and commit it after
        // this delete (then it stays, as a PUT after a DELETE would).
        auto left = std::make_shared<size_t>(old.size());
        for (auto& r : old)
          self
            ->request(self->state.deps.storage, caf::infinite, drop_atom_v,
                      key.first, key.second, r.revision, rid)
            .then(
              [=](bool) mutable {
                if (--*left == 0)
                  finish(true);
              },
              [=](caf::error&) mutable {
                if (--*left == 0)
                  finish(true);
              });
      },
      [=](caf::error& err) mutable {
        if (is(err, errc::storage_full) && !freed) {
          log::actors()->warn("database disk full: removing the files of "
                              "user={} phrase={} before its row req_id={}",
                              key.first, key.second, log::rid(rid));
          publish_change(self, key.first, key.second);
          prune_all([=] { delete_recording(self, key, rid, rp, true); });
          return;
        }
        finish(std::move(err));
      });
}

// -- startup: reconcile storage with the database, then recover ----------------

/// What reconciliation collects before it compares.
struct reconcile_scan {
  /// Revision folders found on disk -> whether they hold an original.
  std::map<std::tuple<int64_t, int64_t, int64_t>, bool> folders;
  /// (user, phrase, revision) that a row names.
  std::set<std::tuple<int64_t, int64_t, int64_t>> named;
  size_t missing = 0;
};

using scan_ptr = std::shared_ptr<reconcile_scan>;

/// Rows per page of the reconciliation's table scan.
constexpr int32_t scan_page = 1000;

/// Compares one page of rows with the folders and asks for the next page;
/// after the last one removes the folders no row names. Only revisions made
/// before this process started are judged: newer ones may belong to uploads
/// in flight.
void reconcile_rows(pointer self, scan_ptr sc, int64_t after_user,
                    int64_t after_phrase, std::function<void()> then) {
  self
    ->request(self->state.deps.repository, caf::infinite, scan_atom_v,
              after_user, after_phrase, scan_page)
    .then(
      [=](const std::vector<recording>& rows) {
        auto started = self->state.started_us;
        for (auto& r : rows) {
          std::tuple<int64_t, int64_t, int64_t> k{r.user_id, r.phrase_id,
                                                  r.revision};
          sc->named.insert(k);
          if (r.revision >= started)
            continue;
          auto i = sc->folders.find(k);
          if (i != sc->folders.end() && i->second)
            continue;
          ++sc->missing;
          metrics::global().inc("phonon_missing_originals_total");
          log::actors()->error("original is missing user={} phrase={} "
                               "rev={} status={}: the recording is marked "
                               "failed",
                               r.user_id, r.phrase_id, r.revision,
                               persistence::to_string(r.status));
          if (r.status != recording_status::failed)
            self
              ->request(self->state.deps.repository, caf::infinite,
                        fail_atom_v, r.user_id, r.phrase_id, r.revision,
                        std::string{"original is missing"}, no_request)
              .then(
                [=](bool) {
                  publish_change(self, r.user_id, r.phrase_id);
                },
                [](caf::error&) {});
        }
        if (rows.size() == static_cast<size_t>(scan_page)) {
          reconcile_rows(self, sc, rows.back().user_id,
                         rows.back().phrase_id, then);
          return;
        }
        size_t removed = 0;
        for (auto& [k, has_original] : sc->folders) {
          if (sc->named.count(k) > 0 || std::get<2>(k) >= started)
            continue;
          ++removed;
          self
            ->request(self->state.deps.storage, caf::infinite, drop_atom_v,
                      std::get<0>(k), std::get<1>(k), std::get<2>(k),
                      no_request)
            .then([](bool) {}, [](caf::error&) {});
        }
        log::actors()->info("reconciled storage with the database "
                            "folders={} rows={} orphans_removed={} "
                            "originals_missing={}",
                            sc->folders.size(), sc->named.size(), removed,
                            sc->missing);
        then();
      },
      [=](caf::error& err) {
        log::actors()->warn("reconciliation stopped: cannot read rows "
                            "error={}",
                            self->system().render(err));
        then();
      });
}

/// Removes revision folders no row names (a crash between storing an
/// original and committing, or during a prune) and reports rows whose
/// original is gone (marked failed, never served as ready).
void reconcile(pointer self, std::function<void()> then) {
  self->request(self->state.deps.storage, caf::infinite, scan_atom_v)
    .then(
      [=](const std::vector<stored_revision>& found) {
        auto sc = std::make_shared<reconcile_scan>();
        for (auto& r : found)
          sc->folders[{r.user_id, r.phrase_id, r.revision}] = r.has_original;
        reconcile_rows(self, sc, 0, 0, then);
      },
      [=](caf::error& err) {
        log::actors()->warn("reconciliation stopped: cannot scan storage "
                            "error={}",
                            self->system().render(err));
        then();
      });
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
  auto then = [=](rebuilt how) mutable {
    if (how == rebuilt::later) {
      // Not the recording's fault: try the whole recovery again shortly
      // (workers may still be joining).
      log::actors()->info("recovery waits for transcoders remaining={}",
                          todo->size() - index);
      caf::delayed_anon_send(self, recovery_retry, recover_atom_v);
      rp.deliver(static_cast<int32_t>(index));
      return;
    }
    recover_next(self, todo, index + 1, rp);
  };
  rebuild_master(self, (*todo)[index], 0, no_request, then);
}

/// Re-enqueues every `processing` row.
void recover_pending(pointer self, caf::typed_response_promise<int32_t> rp) {
  self->request(self->state.deps.repository, caf::infinite, pending_atom_v)
    .then(
      [=](std::vector<recording>& rows) mutable {
        if (!rows.empty())
          log::actors()->info("recovery: {} recordings still processing",
                              rows.size());
        auto todo = std::make_shared<std::vector<recording>>(std::move(rows));
        recover_next(self, todo, 0, rp);
      },
      [=](caf::error& err) mutable { rp.deliver(std::move(err)); });
}

// -- the behavior --------------------------------------------------------------

recordings_actor::behavior_type recordings_impl(pointer self,
                                                recordings_deps deps) {
  self->state.deps = std::move(deps);
  self->state.spawned_us = unix_micros();
  self->state.started_us
    = self->state.spawned_us
      - std::chrono::duration_cast<std::chrono::microseconds>(
          self->state.deps.reconcile_grace)
          .count();
  return {
    [=](upload_atom, upload_request& req) -> caf::result<upload_result> {
      log::actors()->debug("upload received req_id={} user={} phrase={} "
                           "bytes={} replace={}",
                           log::rid(req.request_id), req.user_id,
                           req.phrase_id, req.size, req.replace);
      auto f = std::make_shared<upload_flow>();
      f->rp = self->make_response_promise<upload_result>();
      f->deadline = clock_type::now() + self->state.deps.request_timeout;
      f->req = std::move(req);
      serialize(self, {f->req.user_id, f->req.phrase_id},
                [=] { upload_check(self, f); });
      return f->rp;
    },
    [=](meta_atom, int64_t user, int64_t phrase,
        std::string& rid) -> caf::result<recording> {
      // A miss of the read model: the row is published for the next GETs
      // unless the key changed while the database answered.
      auto gen = self->state.deps.model->generation(user, phrase);
      auto rp = self->make_response_promise<recording>();
      self
        ->request(self->state.deps.repository, caf::infinite, caf::get_atom_v,
                  user, phrase, std::move(rid))
        .then(
          [=](recording& rec) mutable {
            self->state.deps.model->publish_row(rec, gen);
            rp.deliver(std::move(rec));
          },
          [=](caf::error& err) mutable { rp.deliver(std::move(err)); });
      return rp;
    },
    [=](fetch_atom, int64_t user, int64_t phrase, std::string& format,
        std::string& rid) -> caf::result<file_ref> {
      log::actors()->debug("fetch received req_id={} user={} phrase={} "
                           "format={}",
                           log::rid(rid), user, phrase, format);
      auto f = std::make_shared<fetch_flow>();
      f->rp = self->make_response_promise<file_ref>();
      f->deadline = clock_type::now() + self->state.deps.request_timeout;
      f->user = user;
      f->phrase = phrase;
      f->format = std::move(format);
      f->rid = std::move(rid);
      fetch_lookup(self, f);
      return f->rp;
    },
    [=](remove_atom, int64_t user, int64_t phrase,
        std::string& rid) -> caf::result<bool> {
      log::actors()->debug("delete received req_id={} user={} phrase={}",
                           log::rid(rid), user, phrase);
      auto rp = self->make_response_promise<bool>();
      auto deadline = clock_type::now() + self->state.deps.request_timeout;
      key_type key{user, phrase};
      serialize(self, key, [=]() mutable {
        // A DELETE that waited past its deadline behind other changes of
        // the key does nothing: its client was told it timed out.
        if (past(deadline)) {
          log::actors()->warn("delete abandoned behind other changes "
                              "req_id={} user={} phrase={}",
                              log::rid(rid), user, phrase);
          rp.deliver(abandoned());
          release(self, key);
          return;
        }
        delete_recording(self, key, rid, rp, false);
      });
      return rp;
    },
    [=](list_atom, int64_t user, int64_t after, int32_t limit,
        std::string& rid) {
      return self->delegate(self->state.deps.repository, list_atom_v, user,
                            after, limit, std::move(rid));
    },
    [=](ready_atom, const recording& rec, const std::string& rid) {
      record_ready(self, rec, rid);
    },
    [=](remaster_atom, const recording& rec, int32_t attempt,
        const std::string& rid) {
      rebuild_master(self, rec, attempt, rid, [](rebuilt) {});
    },
    [=](recover_atom) -> caf::result<int32_t> {
      auto rp = self->make_response_promise<int32_t>();
      if (self->state.reconciled) {
        recover_pending(self, rp);
        return rp;
      }
      reconcile(self, [=]() mutable {
        self->state.reconciled = true;
        auto grace = self->state.deps.reconcile_grace;
        if (grace.count() > 0)
          self->delayed_send(self, grace, scan_atom_v);
        recover_pending(self, rp);
      });
      return rp;
    },
    [=](scan_atom) {
      // Every revision made before this actor started is now older than
      // the grace: an upload in flight then has committed or given up.
      self->state.started_us = self->state.spawned_us;
      reconcile(self, [] {});
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
  m.describe("phonon_master_retries_total", "counter",
             "WAV master writes retried after a failure.");
  m.describe("phonon_missing_originals_total", "counter",
             "Recordings found at startup without their original file "
             "(marked failed).");
  // Shown from the start (0): a rate of them is 0, not no data.
  for (auto name : {"phonon_upload_bytes_total", "phonon_master_retries_total",
                    "phonon_missing_originals_total"})
    m.inc(name, {}, 0);
  return sys.spawn(recordings_impl, std::move(deps));
}

} // namespace phonon::actors
