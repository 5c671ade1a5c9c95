#pragma once

#include <chrono>
#include <functional>

#include <caf/actor_system.hpp>

#include "actors/recordings_actor.hpp"
#include "actors/repository_actor.hpp"
#include "actors/storage_actor.hpp"
#include "actors/transcode_supervisor.hpp"

namespace phonon::http {

/// The actors the HTTP side talks to, plus the bound on every request.
struct services {
  caf::actor_system* sys = nullptr;
  actors::recordings_actor recordings;
  actors::repository_actor repository;
  actors::storage_actor storage;
  actors::supervisor_actor supervisor;
  std::chrono::milliseconds timeout{30000};
};

} // namespace phonon::http
