// phonon: stores short voice recordings and serves them in any format.
//
//   phonon serve   [flags]   HTTP + actors (the default role)
//   phonon migrate [flags]   apply database migrations and exit
//
// Flags and settings: see config/phonon.yaml and README.md.

#include <csignal>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>

#include "actors/errors.hpp"
#include "actors/format_cache_actor.hpp"
#include "actors/log.hpp"
#include "actors/recordings_actor.hpp"
#include "actors/repository_actor.hpp"
#include "actors/storage_actor.hpp"
#include "actors/system_config.hpp"
#include "actors/transcode_supervisor.hpp"
#include "config/settings.hpp"
#include "http/server.hpp"
#include "media/transcode.hpp"
#include "persistence/blob_store.hpp"
#include "persistence/recording_store.hpp"

namespace {

using namespace phonon;

constexpr const char* usage = R"(usage: phonon [serve|migrate] [flags]

roles:
  serve     run the HTTP server and the actors (default)
  migrate   apply database migrations and exit

flags (every setting is also APP_SECTION_KEY in the environment):
  --config PATH        YAML file (default: config/phonon.yaml when present)
  --host HOST          listen address (server.host)
  --port N             listen port, 0 = any free port (server.port)
  --data-dir DIR       SQLite file and audio files under DIR
  --workers N          local transcoders (transcoder.workers)
  --log-level LEVEL    trace, debug, info, warn, error
  --set KEY=VALUE      any setting, e.g. --set storage.cache_max_bytes=64MiB
)";

/// Refuses settings this build documents but does not implement yet, so
/// that an operator never believes a feature is on when it is not.
void refuse_unimplemented(const config::settings& s) {
  if (s.auth.mode != "none")
    throw config::config_error("auth.mode: 'token' is not implemented yet");
  if (s.transcoder.isolate)
    throw config::config_error("transcoder.isolate: not implemented yet");
  if (s.cluster.port != 0 || !s.cluster.join.empty())
    throw config::config_error("cluster: multi-node mode is not implemented "
                               "yet");
}

std::unique_ptr<persistence::recording_store>
open_store(const config::settings& s) {
  if (s.database.driver != "sqlite")
    throw config::config_error("database.driver: '" + s.database.driver
                               + "' is not supported by this build yet");
  auto store = persistence::open_sqlite_store(s.database.sqlite_path);
  store->migrate();
  return store;
}

void route_libav_logs() {
  media::set_log_sink([](int level, const char* text) {
    // libav levels: 8 fatal .. 16 error .. 24 warning .. 32 info.
    if (level <= 16)
      log::media()->debug("libav: {}", text);
    else
      log::media()->trace("libav: {}", text);
  });
}

/// Blocks SIGINT and SIGTERM in every thread started after this call, so
/// that only wait_for_signal() sees them.
sigset_t block_stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

int wait_for_signal(const sigset_t& set) {
  int sig = 0;
  sigwait(&set, &sig);
  return sig;
}

int run_migrate(const config::settings& s) {
  open_store(s);
  log::actors()->info("migrations applied driver={}", s.database.driver);
  return EXIT_SUCCESS;
}

int run_serve(const config::settings& s) {
  auto stop_signals = block_stop_signals();
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
  auto storage = actors::spawn_storage(sys, blobs);
  actors::supervisor_settings sup;
  sup.workers = s.transcoder.workers;
  sup.queue_limit = s.transcoder.queue_limit;
  sup.max_attempts = s.transcoder.max_attempts;
  auto supervisor = actors::spawn_supervisor(sys, sup);
  auto cache = actors::spawn_format_cache(sys, storage, supervisor,
                                          s.storage.cache_max_bytes);
  auto recordings = actors::spawn_recordings(
    sys, actors::recordings_deps{repository, storage, supervisor, cache});

  // Startup recovery runs in the background: the server answers meanwhile.
  {
    caf::scoped_actor self{sys};
    self->send(recordings, actors::recover_atom_v);
  }

  http::services svc;
  svc.sys = &sys;
  svc.recordings = recordings;
  svc.repository = repository;
  svc.storage = storage;
  svc.supervisor = supervisor;
  svc.timeout = std::chrono::seconds(s.server.request_timeout);

  http::server_options opts;
  opts.host = s.server.host;
  opts.port = s.server.port;
  opts.threads = s.server.threads;
  opts.max_upload_size = s.server.max_upload_size;
  opts.max_header_size = s.server.max_header_size;
  opts.request_timeout = std::chrono::seconds(s.server.request_timeout);
  opts.spool_dir = blobs->temp_dir().string();
  http::server srv{opts, svc};
  auto port = srv.start();
  log::http()->info("listening host={} port={} driver={} storage={} "
                    "transcoders={}",
                    s.server.host, port, s.database.driver,
                    s.storage.local_base_path, s.transcoder.workers);

  auto sig = wait_for_signal(stop_signals);
  log::http()->info("shutting down signal={}", sig);
  srv.stop();
  for (auto hdl : {caf::actor_cast<caf::actor>(recordings),
                   caf::actor_cast<caf::actor>(cache),
                   caf::actor_cast<caf::actor>(supervisor),
                   caf::actor_cast<caf::actor>(storage),
                   caf::actor_cast<caf::actor>(repository)})
    caf::anon_send_exit(hdl, caf::exit_reason::user_shutdown);
  return EXIT_SUCCESS;
}

} // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  std::string role = "serve";
  if (!args.empty() && args.front().rfind("--", 0) != 0) {
    role = args.front();
    args.erase(args.begin());
  }
  if (role == "help" || role == "--help"
      || (!args.empty() && (args.front() == "--help" || args.front() == "-h"))) {
    std::cout << usage;
    return EXIT_SUCCESS;
  }
  try {
    auto s = config::load_settings(args, [](const char* name) {
      return std::getenv(name);
    });
    log::init(s.log.level, s.log.format == "json");
    refuse_unimplemented(s);
    if (role == "serve")
      return run_serve(s);
    if (role == "migrate")
      return run_migrate(s);
    std::cerr << "phonon: unknown role '" << role << "'\n" << usage;
    return 2;
  } catch (const config::config_error& e) {
    std::cerr << "phonon: configuration error: " << e.what() << '\n';
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "phonon: cannot start: " << e.what() << '\n';
    return 1;
  }
}
