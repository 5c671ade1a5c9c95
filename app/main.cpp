// phonon: stores short voice recordings and serves them in any format.
//
//   phonon serve   [flags]   HTTP + actors (the default role)
//   phonon worker  [flags]   a transcoder node joining a serve node
//   phonon migrate [flags]   apply database migrations and exit
//
// Flags and settings: see config/phonon.yaml and README.md.

#include <csignal>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "actors/log.hpp"
#include "app/allocator.hpp"
#include "app/roles.hpp"
#include "config/settings.hpp"

namespace {

using namespace phonon;

constexpr const char* usage = R"(usage: phonon [serve|worker|migrate] [flags]

roles:
  serve     run the HTTP server and the actors (default)
  worker    run transcoders for a serve node: phonon worker --join HOST:PORT
  migrate   apply database migrations and exit

flags (every setting is also APP_SECTION_KEY in the environment):
  --config PATH        YAML file (default: config/phonon.yaml when present)
  --host HOST          listen address (server.host)
  --port N             listen port, 0 = any free port (server.port)
  --data-dir DIR       SQLite file and audio files under DIR
  --workers N          local transcoders (transcoder.workers)
  --join HOST:PORT     serve node to join (worker role, cluster.join)
  --log-level LEVEL    trace, debug, info, warn, error
  --set KEY=VALUE      any setting, e.g. --set storage.cache_max_bytes=64MiB
)";

} // namespace

int main(int argc, char** argv) {
  // Before any thread or large allocation (app/allocator.hpp).
  app::tune_malloc();
  // A write to a connection its peer reset must fail with EPIPE, not end
  // the process: sendfile(2) (the read path) has no MSG_NOSIGNAL, and
  // neither have the other plain writes to sockets and pipes.
  std::signal(SIGPIPE, SIG_IGN);
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
    if (role == "serve")
      return app::run_serve(s);
    if (role == "worker")
      return app::run_worker(s);
    if (role == "migrate")
      return app::run_migrate(s);
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
