#pragma once

// The worker side of a remote job: a job that the serve node's supervisor
// dispatched to a transcoder of this node, which does not share the serve
// node's files (`cluster.shared_files` false). The serve node's relay
// (job_relay_actor.hpp) drives it; this side only answers:
//
//   relay (serve node)                    this node
//   ------------------                    ---------
//   open_job(job, size, transcoder) ---> job host: refuses size > bound,
//                                   <--- creates rjob-<pid>-<n>.in/.out in
//                                        its temp folder, spawns the job
//   put_chunk(offset, bytes)        ---> remote job: appends to .in
//                                   <--- bytes received so far (the ack)
//   ... one chunk in flight, each at most transfer_chunk_bytes ...
//   run_job                         ---> sends the job with both paths to
//                                        its transcoder, which streams
//                                        .in -> .out (media/transcode.hpp)
//                                   <--- transcode_output (facts, size)
//   get_chunk(offset)               ---> reads up to transfer_chunk_bytes
//                                   <--- bytes at offset
//   close_job                       ---> quits
//
// One cleanup path: whatever ends the remote job (close_job, a refused or
// out-of-order chunk, a failed transcode, its transcoder or the relay going
// down, no message for `idle_timeout` while it is not transcoding, the
// system shutting down) ends the actor, and the state's destructor closes
// and removes both files. Files of a worker process that was killed are
// removed by the next job host started on the same folder (the pid in the
// name is no longer alive).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include "actors/messages.hpp"
#include "actors/transcoder_actor.hpp"
#include "persistence/s3_blob_store.hpp"

namespace phonon::actors {

/// Settings of the remote jobs of one worker node.
struct remote_job_settings {
  /// Folder of the jobs' input and output files (created when missing).
  std::string temp_dir = "./worker-tmp";
  /// Largest input a job may announce: a larger job is refused with
  /// errc::payload_too_large before a byte is sent, and a chunk past the
  /// announced size ends the job.
  uint64_t max_input_bytes = uint64_t{512} << 20;
  /// A job that hears nothing from its relay for this long while it is not
  /// transcoding (a serve node that died or hangs mid-transfer) ends and
  /// removes its files.
  std::chrono::milliseconds idle_timeout{60000};
  /// The bucket this node reaches itself (storage.type s3), or null: with
  /// one, the job host also runs bucket jobs (bucket_job_actor.hpp).
  std::shared_ptr<persistence::s3_blob_store> bucket;
};

/// Spawns the job host of a worker node: answers
/// `(open_job_atom, transcode_job, uint64_t input_size, caf::actor
/// transcoder)` with the handle (untyped, as it crosses nodes) of a new
/// remote job that runs on `transcoder` (a transcoder_actor of this node)
/// and is driven by the requester; and, when `cfg.bucket` is set,
/// `(bucket_job_atom, transcode_job, caf::actor transcoder)` by running
/// the job from and to the bucket on a new bucket job
/// (bucket_job_actor.hpp), which answers the requester itself. At start it
/// removes the files that dead processes left in `cfg.temp_dir`. Detached
/// (it creates files).
caf::actor spawn_job_host(caf::actor_system& sys, remote_job_settings cfg);

/// Removes the files `rjob-<pid>-*` in `dir` whose process is gone;
/// returns how many. Any thread.
size_t sweep_remote_job_files(const std::string& dir);

} // namespace phonon::actors
