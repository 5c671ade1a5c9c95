#pragma once

// Every message type and atom that travels between Phonon's actors. Types
// that may cross CAF nodes (transcode_job, transcode_output) are plain
// structs with `inspect` and a type ID, announced once by phonon_config.

#include <cstdint>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/atom.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/type_id.hpp>

#include "persistence/recording.hpp"

namespace phonon::actors {

/// An upload handed over by the HTTP side: the body is already spooled to
/// `spool_path` (a file in the blob store's temp folder).
struct upload_request {
  /// X-Request-Id of the HTTP request: every log line about this upload
  /// carries it (log::rid), the master written after the answer included.
  std::string request_id;
  int64_t user_id = 0;
  int64_t phrase_id = 0;
  /// PUT (create or replace) rather than POST (create only).
  bool replace = false;
  std::string spool_path;
  std::string filename;
  uint64_t size = 0;
};

/// Answer to an upload: the stored row and whether it was new.
struct upload_result {
  persistence::recording rec;
  bool created = true;
};

/// A stored file ready to be sent: everything the HTTP side needs for the
/// headers. Files are immutable once in place (revisions get new folders),
/// so the path stays valid while the revision exists.
struct file_ref {
  std::string path;
  uint64_t size = 0;
  /// Unix seconds, for Last-Modified.
  int64_t mtime = 0;
  std::string etag;
  std::string content_type;
};

/// Names one stored file (see persistence::blob_key).
struct blob_ref {
  int64_t user_id = 0;
  int64_t phrase_id = 0;
  int64_t revision = 0;
  std::string name;
};

/// Facts about a stored file as the storage actor reports them.
struct blob_stat {
  std::string path;
  uint64_t size = 0;
  int64_t mtime = 0;
};

/// A stored file found by a storage scan.
struct listed_blob {
  blob_ref ref;
  blob_stat stat;
};

/// A revision folder found by a storage scan (startup reconciliation).
struct stored_revision {
  int64_t user_id = 0;
  int64_t phrase_id = 0;
  int64_t revision = 0;
  /// The folder holds the revision's original.
  bool has_original = false;
};

/// Most bytes one message of a remote job carries (an input chunk on its
/// way to a worker, an output chunk on its way back): a job that runs on a
/// node without this node's files moves its input and output in chunks of
/// at most this size, one chunk in flight at a time (job_relay_actor.hpp),
/// so neither node holds more than a chunk of it in memory.
constexpr uint64_t transfer_chunk_bytes = uint64_t{256} << 10;

/// What a transcoder is asked to do. `target` is "master" for the upload
/// decode (input -> WAV master + source facts) or a format name for an
/// encode of the master.
///
/// A job names its input and output files: the transcoder streams from
/// `input_path` to `output_path`. For a transcoder on a node without the
/// files, a relay moves the input to a temp file on that node and the
/// output back in chunks of transfer_chunk_bytes (job_relay_actor.hpp,
/// remote_job_actor.hpp), and the job names that node's files there.
///
/// A job may also name the bucket objects it reads and writes
/// (`input_key`, `output_key`): a worker that reaches this node's bucket
/// itself gets them instead of the bytes (a bucket job,
/// bucket_job_actor.hpp) and never sends a byte through this node; any
/// other transcoder ignores them and streams between the files.
struct transcode_job {
  uint64_t id = 0;
  std::string target;
  /// The input file: a spooled upload or a stored blob (a temp file on a
  /// node without the files).
  std::string input_path;
  /// Where the job writes its output: a fresh file in the blob store's
  /// temp folder that the storage actor adopts (store_atom's way: fsync
  /// unless transcode_output::synced, rename, fsync of the folder) or
  /// drops (a temp file on a node without the files).
  std::string output_path;
  /// Longest audio the job may decode, in ms (media::limits); 0 = none.
  int64_t max_duration_ms = 0;
  /// When nobody waits for the result any more, in ms since the Unix epoch
  /// (wall clock, so it means the same on a remote worker); 0 = never.
  int64_t deadline_unix_ms = 0;
  /// X-Request-Id of the request that caused the job (empty for startup
  /// recovery): the transcoder's log lines carry it, on whatever node.
  std::string request_id;
  /// The stored object the input file holds (a master or an original);
  /// an empty name when the input is not stored yet (an upload's spool
  /// file): such a job is never a bucket job.
  blob_ref input_key;
  /// The key the output is stored under (a derived format, a master);
  /// an empty name for none.
  blob_ref output_key;
};

/// True when `job` names both of its objects, so that a worker reaching
/// the bucket may run it from and to the bucket.
inline bool has_keys(const transcode_job& job) {
  return !job.input_key.name.empty() && !job.output_key.name.empty();
}

/// What a transcoder produced: the output file and the facts about it
/// (for "master": the source's format/codec with the master's rate, channels
/// and duration).
struct transcode_output {
  uint64_t job_id = 0;
  /// The file the output was written to: the job's output_path, complete
  /// but not yet in place (empty in a remote job's answer to the relay,
  /// whose output file is on the serve node).
  std::string output_path;
  /// output_path is already fsync'd by the transcoder that wrote it (a
  /// streamed master): installing it needs only a rename and an fsync of
  /// the folder. False for anything else (derived formats, and files a
  /// relay wrote from a remote worker's chunks).
  bool synced = false;
  /// The output's size in bytes.
  uint64_t size = 0;
  std::string format;
  std::string codec;
  int64_t duration_ms = 0;
  int32_t sample_rate = 0;
  int32_t channels = 0;
  /// For "master": the input can be served as it is for its own format
  /// (M4A that is AAC-LC with the moov atom first).
  bool serve_as_is = false;
  /// A bucket job's answer: the output is already in the bucket under the
  /// job's output_key (no output_path): the caller claims it (storage
  /// actor's claim_atom) instead of adopting a file.
  bool stored = false;
};

/// A snapshot of the transcode supervisor for /readyz and /metrics.
struct pool_status {
  int32_t local_transcoders = 0;
  int32_t remote_transcoders = 0;
  int32_t remote_nodes = 0;
  int32_t queued = 0;
  int32_t running = 0;
};

// -- inspect ------------------------------------------------------------------

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, upload_request& x) {
  return f(caf::meta::type_name("phonon::upload_request"), x.request_id,
           x.user_id, x.phrase_id, x.replace, x.spool_path, x.filename,
           x.size);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, upload_result& x) {
  return f(caf::meta::type_name("phonon::upload_result"), x.rec, x.created);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, file_ref& x) {
  return f(caf::meta::type_name("phonon::file_ref"), x.path, x.size, x.mtime,
           x.etag, x.content_type);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, blob_ref& x) {
  return f(caf::meta::type_name("phonon::blob_ref"), x.user_id, x.phrase_id,
           x.revision, x.name);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, blob_stat& x) {
  return f(caf::meta::type_name("phonon::blob_stat"), x.path, x.size,
           x.mtime);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, listed_blob& x) {
  return f(caf::meta::type_name("phonon::listed_blob"), x.ref, x.stat);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, stored_revision& x) {
  return f(caf::meta::type_name("phonon::stored_revision"), x.user_id,
           x.phrase_id, x.revision, x.has_original);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, transcode_job& x) {
  return f(caf::meta::type_name("phonon::transcode_job"), x.id, x.target,
           x.input_path, x.output_path, x.max_duration_ms,
           x.deadline_unix_ms, x.request_id, x.input_key, x.output_key);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, transcode_output& x) {
  return f(caf::meta::type_name("phonon::transcode_output"), x.job_id,
           x.output_path, x.synced, x.size, x.format, x.codec,
           x.duration_ms, x.sample_rate, x.channels, x.serve_as_is,
           x.stored);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, pool_status& x) {
  return f(caf::meta::type_name("phonon::pool_status"), x.local_transcoders,
           x.remote_transcoders, x.remote_nodes, x.queued, x.running);
}

} // namespace phonon::actors

namespace phonon::persistence {

// Lives here rather than in persistence/ so that persistence/ never sees CAF.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, recording& x) {
  return f(caf::meta::type_name("phonon::recording"), x.user_id, x.phrase_id,
           x.revision, x.status, x.original_format, x.original_filename,
           x.size_bytes, x.duration_ms, x.sample_rate, x.channels,
           x.created_at, x.updated_at, x.error, x.serve_original);
}

} // namespace phonon::persistence

// -- type IDs and atoms ---------------------------------------------------------

CAF_BEGIN_TYPE_ID_BLOCK(phonon, caf::first_custom_type_id)

  CAF_ADD_TYPE_ID(phonon, (phonon::actors::upload_request))
  CAF_ADD_TYPE_ID(phonon, (phonon::actors::upload_result))
  CAF_ADD_TYPE_ID(phonon, (phonon::actors::file_ref))
  CAF_ADD_TYPE_ID(phonon, (phonon::actors::blob_ref))
  CAF_ADD_TYPE_ID(phonon, (phonon::actors::blob_stat))
  CAF_ADD_TYPE_ID(phonon, (phonon::actors::listed_blob))
  CAF_ADD_TYPE_ID(phonon, (std::vector<phonon::actors::listed_blob>))
  CAF_ADD_TYPE_ID(phonon, (phonon::actors::transcode_job))
  CAF_ADD_TYPE_ID(phonon, (phonon::actors::transcode_output))
  CAF_ADD_TYPE_ID(phonon, (phonon::actors::pool_status))
  CAF_ADD_TYPE_ID(phonon, (phonon::persistence::recording))
  CAF_ADD_TYPE_ID(phonon, (std::vector<phonon::persistence::recording>))
  CAF_ADD_TYPE_ID(phonon, (phonon::actors::stored_revision))
  CAF_ADD_TYPE_ID(phonon, (std::vector<phonon::actors::stored_revision>))

  // repository
  CAF_ADD_ATOM(phonon, phonon::actors, insert_atom, "insert")
  CAF_ADD_ATOM(phonon, phonon::actors, upsert_atom, "upsert")
  CAF_ADD_ATOM(phonon, phonon::actors, ready_atom, "ready")
  CAF_ADD_ATOM(phonon, phonon::actors, fail_atom, "fail")
  CAF_ADD_ATOM(phonon, phonon::actors, remove_atom, "remove")
  CAF_ADD_ATOM(phonon, phonon::actors, list_atom, "list")
  CAF_ADD_ATOM(phonon, phonon::actors, pending_atom, "pending")
  CAF_ADD_ATOM(phonon, phonon::actors, ping_atom, "ping")
  // storage
  CAF_ADD_ATOM(phonon, phonon::actors, prepare_atom, "prepare")
  CAF_ADD_ATOM(phonon, phonon::actors, store_atom, "store")
  CAF_ADD_ATOM(phonon, phonon::actors, read_atom, "read")
  CAF_ADD_ATOM(phonon, phonon::actors, stat_atom, "stat")
  CAF_ADD_ATOM(phonon, phonon::actors, facts_atom, "facts")
  CAF_ADD_ATOM(phonon, phonon::actors, drop_atom, "drop")
  CAF_ADD_ATOM(phonon, phonon::actors, prune_atom, "prune")
  CAF_ADD_ATOM(phonon, phonon::actors, adopt_atom, "adopt")
  CAF_ADD_ATOM(phonon, phonon::actors, claim_atom, "claim")
  // transcoding
  CAF_ADD_ATOM(phonon, phonon::actors, transcode_atom, "transcode")
  CAF_ADD_ATOM(phonon, phonon::actors, join_atom, "join")
  CAF_ADD_ATOM(phonon, phonon::actors, status_atom, "status")
  CAF_ADD_ATOM(phonon, phonon::actors, connect_atom, "connect")
  // remote jobs in chunks (job_relay_actor.hpp, remote_job_actor.hpp)
  CAF_ADD_ATOM(phonon, phonon::actors, open_job_atom, "open_job")
  CAF_ADD_ATOM(phonon, phonon::actors, put_chunk_atom, "put_chunk")
  CAF_ADD_ATOM(phonon, phonon::actors, run_job_atom, "run_job")
  CAF_ADD_ATOM(phonon, phonon::actors, get_chunk_atom, "get_chunk")
  CAF_ADD_ATOM(phonon, phonon::actors, close_job_atom, "close_job")
  CAF_ADD_ATOM(phonon, phonon::actors, idle_check_atom, "idle_check")
  // remote jobs from and to the bucket (bucket_job_actor.hpp)
  CAF_ADD_ATOM(phonon, phonon::actors, bucket_job_atom, "bucket_job")
  // recordings
  CAF_ADD_ATOM(phonon, phonon::actors, upload_atom, "upload")
  CAF_ADD_ATOM(phonon, phonon::actors, meta_atom, "meta")
  CAF_ADD_ATOM(phonon, phonon::actors, fetch_atom, "fetch")
  CAF_ADD_ATOM(phonon, phonon::actors, derive_atom, "derive")
  CAF_ADD_ATOM(phonon, phonon::actors, touch_atom, "touch")
  CAF_ADD_ATOM(phonon, phonon::actors, recover_atom, "recover")
  CAF_ADD_ATOM(phonon, phonon::actors, scan_atom, "scan")
  CAF_ADD_ATOM(phonon, phonon::actors, remaster_atom, "remaster")
  // serve nodes of one deployment (peers_actor.hpp)
  CAF_ADD_ATOM(phonon, phonon::actors, peer_atom, "peer")
  CAF_ADD_ATOM(phonon, phonon::actors, changed_atom, "changed")

CAF_END_TYPE_ID_BLOCK(phonon)
