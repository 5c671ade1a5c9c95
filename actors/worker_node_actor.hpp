#pragma once

#include <cstdint>
#include <string>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include "actors/remote_job_actor.hpp"
#include "actors/transcoder_actor.hpp"

namespace phonon::actors {

/// Settings of a worker node.
struct worker_node_settings {
  /// Host and port of the serve node's published supervisor.
  std::string host;
  uint16_t port = 0;
  /// Transcoders this node runs.
  int workers = 2;
  /// This node may open the serve node's files (same machine): its
  /// transcoders are registered as taking file jobs.
  bool shared_files = false;
  /// The remote jobs of a node without shared files: its temp folder, the
  /// largest input it takes, the idle timeout and the bucket it reaches
  /// itself, if any (remote_job_actor.hpp): with a bucket, every
  /// registration names its identity (s3_blob_store::identity).
  remote_job_settings jobs;
  /// First and longest wait between connection attempts.
  std::chrono::milliseconds min_backoff{200};
  std::chrono::milliseconds max_backoff{5000};
};

/// The heart of `phonon worker`: keeps `workers` local transcoders alive,
/// connects to the serve node's supervisor (retrying with exponential
/// backoff while it is not there), registers every transcoder with it, and
/// when the serve node goes away (restart, network loss) reconnects and
/// registers again by itself. With each transcoder it registers the node's
/// job host (remote_job_actor.hpp), where the serve node opens the jobs it
/// sends in chunks or runs bucket jobs, and the identity of its bucket
/// (empty without one). Detached: connecting is a blocking call.
caf::actor spawn_worker_node(caf::actor_system& sys, worker_node_settings cfg,
                             transcode_fn fn = run_media_job);

} // namespace phonon::actors
