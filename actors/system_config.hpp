#pragma once

#include <caf/actor_system_config.hpp>

#include "config/settings.hpp"

namespace phonon::actors {

/// Prepares CAF for Phonon: announces the message types (needed for remote
/// nodes), registers the error renderer, loads the middleman and sizes the
/// scheduler against the machine (Beast and the detached actors run on
/// threads of their own).
void configure(caf::actor_system_config& cfg, const config::settings& s);

} // namespace phonon::actors
