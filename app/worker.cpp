#include "app/roles.hpp"

#include <algorithm>
#include <cstdlib>
#include <memory>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/send.hpp>

#include "actors/log.hpp"
#include "actors/system_config.hpp"
#include "actors/worker_node_actor.hpp"
#include "http/metrics_listener.hpp"
#include "media/transcode.hpp"
#include "persistence/s3_blob_store.hpp"

namespace phonon::app {

int run_worker(const config::settings& s) {
  auto stop_signals = block_stop_signals();
  route_libav_logs();
  const auto& join = s.cluster.join;
  auto colon = join.rfind(':');
  if (join.empty() || colon == std::string::npos)
    throw config::config_error("cluster.join: a worker needs --join "
                               "HOST:PORT");
  actors::worker_node_settings wn;
  wn.host = join.substr(0, colon);
  wn.port = static_cast<uint16_t>(std::stoi(join.substr(colon + 1)));
  wn.workers = std::max(1, s.transcoder.workers);
  wn.shared_files = s.cluster.shared_files;
  // Remote jobs (chunks from a serve node without shared files) land in
  // this node's own temp folder, beside the blob store's (whose scans skip
  // foreign folders). An input may be an upload (server.max_upload_size)
  // or a WAV master, whose PCM the decode's budget bounds
  // (media::limits::max_pcm_bytes: server.max_duration of 48 kHz stereo,
  // at least media::default_pcm_budget).
  wn.jobs.temp_dir = s.storage.local_base_path + "/worker-tmp";
  uint64_t master_bytes = std::max<uint64_t>(
    media::default_pcm_budget,
    static_cast<uint64_t>(s.server.max_duration) * 48000 * 2 * 2);
  wn.jobs.max_input_bytes = std::max<uint64_t>(s.server.max_upload_size,
                                               master_bytes + (1 << 20));

  // The worker has no HTTP server: metrics.port gives it a listener that
  // serves only GET /metrics. With auth on it takes the scraper's token
  // alone (a worker has no users to check admin tokens for).
  std::unique_ptr<http::metrics_listener> metrics;
  if (s.metrics.port != 0) {
    if (s.auth.enabled() && s.metrics.token.empty())
      throw config::config_error("metrics.port: with auth.mode token a "
                                 "worker's metrics listener needs "
                                 "APP_METRICS_TOKEN or metrics.token_file");
    metrics = std::make_unique<http::metrics_listener>(
      s.metrics.host, s.metrics.port, s.metrics.token);
    log::actors()->info("metrics listening host={} port={} token={}",
                        s.metrics.host, metrics->port(),
                        s.metrics.token.empty() ? "none" : "required");
  }

  // A worker with storage settings for S3 reaches the bucket itself: the
  // serve node sends it jobs naming objects (bucket jobs) when both name
  // the same endpoint, bucket and prefix. A bucket that refuses this
  // worker's keys, or does not exist, stops the start (open_blob_store
  // throws: "the bucket refused this node"); one that does not answer yet
  // is only logged (its jobs then fail over to chunks).
  if (s.storage.type == "s3" && !s.cluster.shared_files)
    wn.jobs.bucket = std::dynamic_pointer_cast<persistence::s3_blob_store>(
      open_blob_store(s));

  caf::actor_system_config cfg;
  actors::configure(cfg, s);
  caf::actor_system sys{cfg};
  auto node = actors::spawn_worker_node(sys, wn, transcode_function());
  // With cluster.tls.* the system has CAF's OpenSSL module and the node
  // joins over TLS (actors/system_config.cpp, worker_node_actor.cpp).
  log::actors()->info("worker started join={} transcoders={} tls={} "
                      "bucket={}",
                      join, wn.workers, s.cluster.tls.enabled(),
                      wn.jobs.bucket ? wn.jobs.bucket->identity() : "none");
  auto sig = wait_for_signal(stop_signals);
  log::actors()->info("worker shutting down signal={}", sig);
  caf::anon_send_exit(node, caf::exit_reason::user_shutdown);
  // Transcoders registered remotely are referenced by the serve node; do
  // not wait for them to be released.
  std::_Exit(EXIT_SUCCESS);
}

} // namespace phonon::app
