#pragma once

#include <chrono>
#include <functional>
#include <memory>

#include <caf/actor_system.hpp>

#include "actors/format_cache_actor.hpp"
#include "actors/read_model.hpp"
#include "actors/recordings_actor.hpp"
#include "actors/repository_actor.hpp"
#include "actors/storage_actor.hpp"
#include "actors/transcode_supervisor.hpp"
#include "http/auth.hpp"

namespace phonon::http {

/// How much longer than server.request_timeout the HTTP side waits for the
/// answer to an upload or a DELETE. The recordings actor abandons such a
/// change (504, nothing stored) when it has not reached its commit point by
/// request_timeout; past the commit point it answers 200/201/204 however
/// late. This grace covers that last stretch (a commit and a prune), so
/// that the HTTP side never gives up on a change that then happens anyway.
constexpr std::chrono::milliseconds commit_grace{60000};

/// The actors the HTTP side talks to, plus the bound on every request.
struct services {
  caf::actor_system* sys = nullptr;
  actors::recordings_actor recordings;
  actors::repository_actor repository;
  actors::storage_actor storage;
  actors::supervisor_actor supervisor;
  /// Told about derived files served from the read model (touch_atom).
  actors::format_cache_actor cache;
  /// What the actors published for GETs (read_model.hpp): a hit is answered
  /// on the io thread without a message. Off unless set.
  std::shared_ptr<actors::read_model> model
    = std::make_shared<actors::read_model>(0);
  /// limits.per_user_inflight for uploads (actors/user_gate.hpp): an
  /// upload holds a place of its user from its head until it is answered.
  /// Null: no bound.
  std::shared_ptr<actors::user_gate> gate;
  /// server.console: `/` and `/console/*` serve the web console.
  bool console = true;
  /// The bucket's origin when storage.s3.redirect is on (redirect_origin):
  /// the console's CSP allows media from it. Empty otherwise.
  std::string console_media_origin;
  std::chrono::milliseconds timeout{30000};
  /// Bound on uploads and deletes: timeout + commit_grace.
  std::chrono::milliseconds change_timeout{90000};
  /// Who may do what; never null once the server runs (auth off when
  /// default-made).
  std::shared_ptr<const authenticator> auth
    = std::make_shared<const authenticator>(config::auth_settings{},
                                            config::metrics_settings{});
};

} // namespace phonon::http
