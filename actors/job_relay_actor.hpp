#pragma once

// The serve node's side of a remote job: one file job that the supervisor
// dispatched to a transcoder on a node without this node's files
// (`cluster.shared_files` false). The relay moves the input there and the
// output back in chunks of at most transfer_chunk_bytes (256 KiB), so
// neither node's memory grows with the recording's length:
//
//     open ──> send input ──> run ──> fetch output ──> done
//       │        │  ^ ack       │        │  ^ chunk
//       │        └──┘           │        └──┘
//       └────────┴──────────────┴────────┴──> fail (any error, timeout,
//                                                   the worker gone)
//
// - open: asks the worker's job host (remote_job_actor.hpp) for a remote
//   job, announcing the input's size (the worker refuses one too large).
// - send input: one chunk per request, read from the input file at the
//   acknowledged offset; the next is read only when the worker acked the
//   previous one (one chunk in flight: flow control without a window).
// - run: the worker's transcoder streams between the worker's temp files.
// - fetch output: one chunk per request by offset, appended to the job's
//   output file on this node, until the size the worker reported.
// - done: closes the remote job (the worker removes its files) and
//   answers like a local transcoder that streamed (output_path, size).
// - fail: the one cleanup path. Closes the remote job if one was opened,
//   removes the output file, answers the error and quits. Every request
//   is bounded by what is left of `timeout` (transcoder.job_timeout), so
//   the whole job is; a worker that dies ends the job at once (the remote
//   job is monitored).

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/fwd.hpp>

#include "actors/messages.hpp"
#include "actors/transcoder_actor.hpp"

namespace phonon::actors {

/// Spawns the relay of one file job for `remote` (a transcoder on another
/// node) whose job host is `job_host`. It takes one
/// `(transcode_atom, transcode_job)` with input_path and output_path set,
/// answers transcode_output (output in output_path) or the error, and
/// quits. Detached: it reads and writes files.
caf::actor spawn_job_relay(caf::actor_system& sys, transcoder_actor remote,
                           caf::actor job_host, caf::timespan timeout);

} // namespace phonon::actors
