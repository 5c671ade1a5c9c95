#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/messages.hpp"
#include "actors/read_model.hpp"

namespace phonon::actors {

/// This serve node's link to the other serve nodes of its deployment (the
/// nodes that share its database and bucket). A node started with
/// `cluster.join` connects to the named node's published supervisor, which
/// hands it to that node's peers actor (peer_atom); from then on the two
/// tell each other about every change of a recording, and each relays what
/// it hears to its other peers (nodes join like a tree, one `cluster.join`
/// each, so a change reaches every node exactly once). A change heard from
/// a peer invalidates the key in this node's read model, so its next GET
/// reads the database. A lost peer is forgotten; a lost joined node is
/// connected to again with backoff, like a worker. Scheduled; the blocking
/// connect runs on a short-lived detached helper.
using peers_actor = caf::typed_actor<
  /// A change of (user, phrase) made through this node: tell every peer.
  caf::reacts_to<changed_atom, int64_t, int64_t>,
  /// A change made through another node, heard from peer `from`.
  caf::reacts_to<changed_atom, int64_t, int64_t, caf::actor>,
  /// Another serve node joins (its peers actor, untyped as it crosses
  /// nodes): answers this node's peers actor.
  caf::replies_to<peer_atom, caf::actor>::with<caf::actor>,
  /// (internal) Time to connect to the joined node.
  caf::reacts_to<connect_atom>,
  /// (internal) A connection to the joined node's supervisor was made
  /// (or not: a default handle).
  caf::reacts_to<connect_atom, caf::actor>>;

/// Where and how to join.
struct peers_settings {
  /// `cluster.join` of a serve node, host and port; port 0: join nobody
  /// (other nodes may still join this one).
  std::string join_host;
  uint16_t join_port = 0;
  std::chrono::milliseconds min_backoff{200};
  std::chrono::milliseconds max_backoff{5000};
};

/// Spawns the peers actor; `model` is this node's read model.
peers_actor spawn_peers(caf::actor_system& sys, peers_settings cfg,
                        std::shared_ptr<read_model> model);

} // namespace phonon::actors
