#pragma once

#include <chrono>
#include <functional>
#include <string>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/messages.hpp"
#include "actors/transcoder_actor.hpp"

namespace phonon::actors {

/// Owns the transcoders (local ones it spawns, remote ones that worker nodes
/// register), queues jobs with a bound, dispatches each to the least-loaded
/// transcoder, monitors every transcoder and re-dispatches the job of one
/// that dies. A job that kills `max_attempts` transcoders fails with
/// errc::transcoder_crashed; a full queue answers errc::overloaded, and a
/// job that arrives while there is no transcoder at all errc::no_transcoder.
/// Scheduled (not detached): it never blocks.
using supervisor_actor = caf::typed_actor<
  /// Runs one job from a file: (target, input path, input size, request
  /// id; the input size is the job's weight in queue_limit_bytes, which
  /// for a waveform is its expected output, not the master it streams:
  /// media::waveform_output_bound; the request id, X-Request-Id or empty for startup recovery,
  /// travels with the job so the transcoder's log lines carry it on any
  /// node) -> output in a new file in supervisor_settings::temp_dir
  /// (transcode_output::output_path), which the caller adopts or drops. A
  /// local transcoder streams between the files; for a remote one without
  /// this node's files a relay on this node moves the input there and the
  /// output back in chunks of transfer_chunk_bytes (job_relay_actor.hpp).
  caf::replies_to<transcode_atom, std::string, std::string, uint64_t,
                  std::string>::with<transcode_output>,
  /// The same job from a stored object to a stored object: (target, input
  /// path, input size, request id, the input's key, the output's key).
  /// The files are as above; a worker that reaches this node's bucket
  /// (supervisor_settings::bucket) runs it from and to the bucket instead
  /// (bucket_job_actor.hpp): then the answer has `stored` set, no
  /// output_path, and the output is in the bucket under the output's key
  /// (the caller claims it: storage actor's claim_atom). A bucket job that
  /// fails for the bucket's sake (storage errors, a missing input) runs
  /// again without the bucket, once.
  caf::replies_to<transcode_atom, std::string, std::string, uint64_t,
                  std::string, blob_ref, blob_ref>::with<transcode_output>,
  /// Registers a transcoder of another node taking `capacity` jobs at once:
  /// (transcoder, capacity, shares files, job host). The handles travel
  /// untyped (plain `caf::actor`, which every node knows); the first must
  /// implement transcoder_actor. A node that shares this node's files
  /// (same machine: transcoder.isolate's children) gets file jobs as they
  /// are; any other gets them through a relay that opens remote jobs at
  /// its job host (remote_job_actor.hpp).
  caf::reacts_to<join_atom, caf::actor, int32_t, bool, caf::actor>,
  /// The same with the identity of the bucket the node reaches itself
  /// (s3_blob_store::identity; empty for none): when it equals
  /// supervisor_settings::bucket, the node gets bucket jobs for the jobs
  /// that name their objects; otherwise (another bucket or prefix) it gets
  /// them in chunks, and the mismatch is logged.
  caf::reacts_to<join_atom, caf::actor, int32_t, bool, caf::actor,
                 std::string>,
  /// Another serve node joins this one (cluster.join of a serve node): its
  /// peers actor, handed on to supervisor_settings::peers, which answers
  /// this node's (peers_actor.hpp).
  caf::replies_to<peer_atom, caf::actor>::with<caf::actor>,
  /// A snapshot of the pool.
  caf::replies_to<status_atom>::with<pool_status>>;

/// Supervisor settings.
struct supervisor_settings {
  /// Local transcoders to keep alive.
  int workers = 2;
  /// Jobs queued or running before new ones are refused.
  int queue_limit = 64;
  /// Transcoder deaths one job may cause before it fails for good.
  int max_attempts = 3;
  /// Longest a single conversion may run before its transcoder is
  /// considered lost (a hung decoder or a silent node); for a remote job
  /// without shared files this bounds the whole transfer and the run.
  std::chrono::seconds job_timeout{300};
  /// Input bytes (a waveform's: its expected output) of the jobs queued or
  /// running before new ones are refused with errc::overloaded; a job is always taken when no other is in
  /// flight, so one larger than the bound still runs alone.
  uint64_t queue_limit_bytes = 256ull << 20;
  /// Longest audio an upload may decode to, in ms (server.max_duration);
  /// stamped on every "master" job. Encodes of a master get no duration
  /// limit: Phonon wrote the master and the limit may have changed since.
  int64_t max_duration_ms = 10 * 60 * 1000;
  /// How long a requester waits for a job (server.request_timeout): each
  /// job's deadline is its arrival plus this. A job still queued at its
  /// deadline is dropped, a running one is stopped by its transcoder, both
  /// with errc::deadline_exceeded.
  std::chrono::milliseconds request_timeout{30000};
  /// Folder for the outputs of file jobs: the blob store's temp folder, so
  /// the storage actor can adopt them with a rename (swept at startup).
  std::string temp_dir = ".";
  /// This serve node's peers actor (peers_actor.hpp), which serve nodes
  /// that join through the published supervisor are handed to; none on
  /// nodes that take no serve nodes.
  caf::actor peers{};
  /// The identity of this node's bucket (s3_blob_store::identity) when its
  /// storage is S3; empty on local storage, where no job is a bucket job.
  std::string bucket;
};

/// Makes one local transcoder; replaceable in tests.
using transcoder_factory = std::function<transcoder_actor(caf::actor_system&)>;

/// Spawns the supervisor with `cfg.workers` transcoders from `factory`.
supervisor_actor spawn_supervisor(caf::actor_system& sys,
                                  supervisor_settings cfg,
                                  transcoder_factory factory = {});

} // namespace phonon::actors
