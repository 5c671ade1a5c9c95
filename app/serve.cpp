#include "app/roles.hpp"

#include <sys/resource.h>

#include <cstdlib>
#include <optional>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/io/middleman.hpp>
#include <caf/scoped_actor.hpp>

#include "actors/format_cache_actor.hpp"
#include "actors/log.hpp"
#include "actors/recordings_actor.hpp"
#include "actors/repository_actor.hpp"
#include "actors/storage_actor.hpp"
#include "actors/system_config.hpp"
#include "actors/transcode_supervisor.hpp"
#include "app/child_workers.hpp"
#include "http/server.hpp"
#include "persistence/blob_store.hpp"

namespace phonon::app {

namespace {

/// Raises the soft limit of open files to the hard one: every connection,
/// spool file and served file takes a descriptor, and the usual soft limit
/// (1024) is far below server.max_connections.
void raise_open_file_limit() {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0)
    return;
  auto soft = lim.rlim_cur;
  if (lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &lim) != 0) {
      log::http()->warn("cannot raise the open file limit soft={} hard={}",
                        soft, lim.rlim_max);
      return;
    }
  }
  log::http()->info("open file limit soft={} (was {}) hard={}",
                    lim.rlim_cur, soft, lim.rlim_max);
}

} // namespace

int run_serve(const config::settings& s) {
  // First: an unusable key stops the start before anything else runs.
  auto auth = std::make_shared<const http::authenticator>(s.auth, s.metrics);
  if (auth->enabled())
    log::http()->info("auth mode=token algorithm={} issuer={} audience={} "
                      "link_ttl={}s metrics_token={}",
                      s.auth.algorithm,
                      s.auth.issuer.empty() ? "-" : s.auth.issuer,
                      s.auth.audience.empty() ? "-" : s.auth.audience,
                      s.auth.link_ttl, s.metrics.token.empty() ? "no" : "yes");
  else
    log::http()->warn("auth mode=none: anyone who can reach this port may "
                      "read, replace and delete every recording");
  auto stop_signals = block_stop_signals();
  raise_open_file_limit();
  route_libav_logs();
  auto store = open_store(s);
  auto blobs = std::make_shared<persistence::local_blob_store>(
    s.storage.local_base_path);
  if (auto n = blobs->sweep_temp(); n > 0)
    log::actors()->info("swept stray temp files count={}", n);

  caf::actor_system_config cfg;
  actors::configure(cfg, s);
  caf::actor_system sys{cfg};

  auto repository = actors::spawn_repository(sys, std::move(store));
  auto storage = actors::spawn_storage(sys, blobs, s.storage.min_free_bytes);
  actors::supervisor_settings sup;
  // With isolate, every transcoder of this node runs in a child process.
  sup.workers = s.transcoder.isolate ? 0 : s.transcoder.workers;
  sup.queue_limit = s.transcoder.queue_limit;
  sup.queue_limit_bytes = s.transcoder.queue_limit_bytes;
  sup.max_duration_ms = int64_t{s.server.max_duration} * 1000;
  // A conversion nobody waits for any more is stopped.
  sup.request_timeout = std::chrono::seconds(s.server.request_timeout);
  sup.max_attempts = s.transcoder.max_attempts;
  auto fn = transcode_function();
  auto supervisor = actors::spawn_supervisor(
    sys, sup,
    [fn](caf::actor_system& sys) { return actors::spawn_transcoder(sys, fn); });

  // Worker nodes join through the published supervisor.
  std::optional<uint16_t> cluster_port;
  if (s.cluster.port != 0 || s.transcoder.isolate) {
    // Isolated children connect over loopback; a real cluster port listens
    // on the HTTP host's address.
    const char* bind = nullptr;
    if (s.cluster.port == 0)
      bind = "127.0.0.1";
    else if (s.server.host != "0.0.0.0")
      bind = s.server.host.c_str();
    auto port = sys.middleman().publish(supervisor, s.cluster.port, bind,
                                        true);
    if (!port)
      throw std::runtime_error("cannot publish on cluster.port "
                               + std::to_string(s.cluster.port) + ": "
                               + sys.render(port.error()));
    cluster_port = *port;
    log::actors()->info("cluster listening port={}", *port);
  }
  std::optional<child_workers> children;
  if (s.transcoder.isolate)
    children.emplace(s.transcoder.workers, *cluster_port,
                     std::vector<std::string>{"--log-level", s.log.level});

  auto cache = actors::spawn_format_cache(sys, storage, supervisor,
                                          s.storage.cache_max_bytes);
  auto recordings = actors::spawn_recordings(
    sys, actors::recordings_deps{repository, storage, supervisor, cache,
                                 std::chrono::seconds(
                                   s.server.request_timeout),
                                 test_master_delay()});

  // Startup recovery runs in the background: the server answers meanwhile.
  caf::anon_send(recordings, actors::recover_atom_v);

  http::services svc;
  svc.sys = &sys;
  svc.recordings = recordings;
  svc.repository = repository;
  svc.storage = storage;
  svc.supervisor = supervisor;
  svc.timeout = std::chrono::seconds(s.server.request_timeout);
  svc.change_timeout = svc.timeout + http::commit_grace;
  svc.auth = auth;

  http::server_options opts;
  opts.host = s.server.host;
  opts.port = s.server.port;
  opts.threads = s.server.threads;
  opts.max_upload_size = s.server.max_upload_size;
  opts.max_header_size = s.server.max_header_size;
  opts.header_timeout = std::chrono::seconds(s.server.header_timeout);
  opts.idle_timeout = std::chrono::seconds(s.server.idle_timeout);
  opts.max_connections = static_cast<uint64_t>(s.server.max_connections);
  opts.spool_dir = blobs->temp_dir().string();
  opts.cors_origins = s.server.cors_origins;
  opts.memory_cache_bytes = s.storage.memory_cache_bytes;
  opts.memory_cache_item_max = s.storage.memory_cache_item_max;
  http::server srv{opts, svc};
  auto port = srv.start();
  log::http()->info("listening host={} port={} driver={} storage={} "
                    "transcoders={} isolate={}",
                    s.server.host, port, s.database.driver,
                    s.storage.local_base_path, s.transcoder.workers,
                    s.transcoder.isolate);

  auto sig = wait_for_signal(stop_signals);
  log::http()->info("shutting down signal={}", sig);
  srv.stop();
  children.reset();
  for (auto hdl : {caf::actor_cast<caf::actor>(recordings),
                   caf::actor_cast<caf::actor>(cache),
                   caf::actor_cast<caf::actor>(supervisor),
                   caf::actor_cast<caf::actor>(storage),
                   caf::actor_cast<caf::actor>(repository)})
    caf::anon_send_exit(hdl, caf::exit_reason::user_shutdown);
  return EXIT_SUCCESS;
}

} // namespace phonon::app
