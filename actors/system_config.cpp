#include "actors/system_config.hpp"

#include <algorithm>
#include <thread>

#include <caf/io/middleman.hpp>

#include "actors/errors.hpp"
#include "actors/messages.hpp"

namespace phonon::actors {

void configure(caf::actor_system_config& cfg, const config::settings&) {
  cfg.add_message_types<caf::id_block::phonon>();
  cfg.add_error_category(phonon_category, render_error);
  cfg.load<caf::io::middleman>();
  // The cooperative scheduler only runs the non-blocking actors (recordings,
  // supervisor, cache, bridges); two threads are plenty for them.
  auto cores = static_cast<size_t>(
    std::max(1u, std::thread::hardware_concurrency()));
  cfg.set("scheduler.max-threads", std::min<size_t>(cores, 4));
  // The work-stealing policy lets idle workers poll with sleeps (up to
  // 10 ms when relaxed), which adds that much latency to a request that
  // reaches an idle server. The sharing policy wakes a worker at once
  // through a condition variable; with two or four workers its shared
  // queue is not a bottleneck.
  cfg.set("scheduler.policy", caf::atom("sharing"));
  cfg.set("logger.verbosity", caf::atom("quiet"));
}

} // namespace phonon::actors
