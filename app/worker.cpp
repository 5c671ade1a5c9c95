#include "app/roles.hpp"

#include <cstdlib>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/send.hpp>

#include "actors/log.hpp"
#include "actors/system_config.hpp"
#include "actors/worker_node_actor.hpp"

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

  caf::actor_system_config cfg;
  actors::configure(cfg, s);
  caf::actor_system sys{cfg};
  auto node = actors::spawn_worker_node(sys, wn, transcode_function());
  // With cluster.tls.* the system has CAF's OpenSSL module and the node
  // joins over TLS (actors/system_config.cpp, worker_node_actor.cpp).
  log::actors()->info("worker started join={} transcoders={} tls={}", join,
                      wn.workers, s.cluster.tls.enabled());
  auto sig = wait_for_signal(stop_signals);
  log::actors()->info("worker shutting down signal={}", sig);
  caf::anon_send_exit(node, caf::exit_reason::user_shutdown);
  // Transcoders registered remotely are referenced by the serve node; do
  // not wait for them to be released.
  std::_Exit(EXIT_SUCCESS);
}

} // namespace phonon::app
