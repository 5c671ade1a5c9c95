#pragma once

// The worker side of a bucket job: a job that the serve node's supervisor
// sent to a worker that reaches the serve node's bucket itself (same
// storage.s3 endpoint, bucket and prefix), naming objects instead of
// carrying bytes. Nothing of the job passes through the serve node:
//
//     fetch ──> convert ──> store ──> done
//       │          │          │
//       └──────────┴──────────┴──> fail (a bucket error, a conversion
//                                        error, the transcoder gone)
//
// - fetch: downloads the input object (transcode_job::input_key) into a
//   temp file of this node (no local copy is kept).
// - convert: the node's transcoder streams the temp input to a temp
//   output, exactly as for any other job (media/transcode.hpp).
// - store: uploads the output under transcode_job::output_key with one
//   atomic PUT (or a multipart upload completed at once): the object is
//   whole or not there.
// - done: answers transcode_output with `stored` set and the output's
//   size and facts; the serve node claims the object (storage actor's
//   claim_atom).
// - fail: the one cleanup path. Answers the error and quits; the state's
//   destructor removes both temp files however the actor ends. A bucket
//   that fails answers errc::storage_unavailable, storage_failure or
//   not_found, which the serve node's supervisor answers by running the
//   job again without the bucket (in chunks or locally); a conversion
//   error is the job's answer, as for any transcoder; a transcoder that
//   dies ends the job with its exit reason (the supervisor retries it).
//
// Temp files are `<temp_dir>/rjob-<pid>-b<n>.in|.out`, swept like the
// chunked remote jobs' files when the process died (remote_job_actor.hpp).

#include <chrono>
#include <memory>
#include <string>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include "actors/messages.hpp"
#include "actors/transcoder_actor.hpp"
#include "persistence/s3_blob_store.hpp"

namespace phonon::actors {

/// Spawns one bucket job that runs on `transcoder` (of this node), with
/// its temp files at `file_base` + ".in" / ".out". It takes one
/// `(transcode_atom, transcode_job)` naming input_key and output_key,
/// answers transcode_output (stored) or the error, and quits. Detached:
/// it blocks on the bucket.
caf::actor spawn_bucket_job(caf::actor_system& sys,
                            std::shared_ptr<persistence::s3_blob_store> bucket,
                            transcoder_actor transcoder,
                            std::string file_base);

} // namespace phonon::actors
