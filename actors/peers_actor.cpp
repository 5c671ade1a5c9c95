#include "actors/peers_actor.hpp"

#include <algorithm>
#include <vector>

#include <caf/event_based_actor.hpp>
#include <caf/io/middleman.hpp>
#include <caf/openssl/remote_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/log.hpp"
#include "actors/metrics.hpp"
#include "actors/transcode_supervisor.hpp"

namespace phonon::actors {

namespace {

struct peers_state {
  static inline const char* name = "phonon.peers";
  peers_settings cfg;
  std::shared_ptr<read_model> model;
  /// Every serve node this one exchanges changes with.
  std::vector<caf::actor> peers;
  /// The node reached through cluster.join (also in `peers`).
  caf::actor joined;
  std::chrono::milliseconds backoff{0};
  bool connecting = false;
};

using pointer = peers_actor::stateful_pointer<peers_state>;

void count_peers(pointer self) {
  metrics::global().set("phonon_cluster_nodes", {{"kind", "serve"}},
                        static_cast<double>(self->state.peers.size()));
}

void add_peer(pointer self, const caf::actor& peer) {
  auto& peers = self->state.peers;
  if (!peer || std::find(peers.begin(), peers.end(), peer) != peers.end())
    return;
  peers.push_back(peer);
  self->monitor(peer);
  count_peers(self);
}

/// Asks for a connection to the joined node after the current backoff
/// (connect_atom to itself), unless one is on its way.
void schedule_connect(pointer self) {
  auto& st = self->state;
  if (st.connecting || st.cfg.join_port == 0)
    return;
  st.connecting = true;
  self->delayed_send(self, st.backoff, connect_atom_v);
  st.backoff = std::min(st.cfg.max_backoff,
                        std::max(st.cfg.min_backoff, st.backoff * 2));
}

/// Connects to the joined node's supervisor on a detached helper (the
/// middleman's connect blocks), which answers connect_atom with the
/// handle, or a default one on failure.
void connect(pointer self) {
  auto host = self->state.cfg.join_host;
  auto port = self->state.cfg.join_port;
  auto parent = caf::actor_cast<caf::actor>(self);
  self->system().spawn<caf::detached>([=](caf::event_based_actor* helper) {
    auto& sys = helper->system();
    caf::expected<supervisor_actor> sup
      = sys.has_openssl_manager()
          ? caf::openssl::remote_actor<supervisor_actor>(sys, host, port)
          : sys.middleman().remote_actor<supervisor_actor>(host, port);
    if (!sup) {
      log::actors()->info("serve node to join not reachable host={} port={} "
                          "error={}",
                          host, port, sys.render(sup.error()));
      helper->send(parent, connect_atom_v, caf::actor{});
      return;
    }
    helper->send(parent, connect_atom_v, caf::actor_cast<caf::actor>(*sup));
  });
}

peers_actor::behavior_type peers_impl(pointer self, peers_settings cfg,
                                      std::shared_ptr<read_model> model) {
  self->state.cfg = std::move(cfg);
  self->state.model = std::move(model);
  count_peers(self);
  self->set_down_handler([=](caf::down_msg& dm) {
    auto& st = self->state;
    auto gone = std::find_if(st.peers.begin(), st.peers.end(),
                             [&](const caf::actor& p) {
                               return p.address() == dm.source;
                             });
    if (gone == st.peers.end())
      return;
    bool was_joined = st.joined && *gone == st.joined;
    st.peers.erase(gone);
    count_peers(self);
    log::actors()->warn("serve node lost reason={}{}",
                        self->system().render(dm.reason),
                        was_joined ? ", joining again" : "");
    if (was_joined) {
      st.joined = nullptr;
      st.backoff = st.cfg.min_backoff;
      schedule_connect(self);
    }
  });
  schedule_connect(self);
  return {
    [=](changed_atom, int64_t user, int64_t phrase) {
      for (auto& p : self->state.peers)
        self->send(caf::actor_cast<peers_actor>(p), changed_atom_v, user,
                   phrase, caf::actor_cast<caf::actor>(self));
    },
    [=](changed_atom, int64_t user, int64_t phrase, caf::actor from) {
      self->state.model->invalidate(user, phrase);
      log::actors()->debug("change heard from a serve node user={} "
                           "phrase={}",
                           user, phrase);
      for (auto& p : self->state.peers)
        if (p != from)
          self->send(caf::actor_cast<peers_actor>(p), changed_atom_v, user,
                     phrase, caf::actor_cast<caf::actor>(self));
    },
    [=](peer_atom, caf::actor other) -> caf::actor {
      add_peer(self, other);
      log::actors()->info("serve node joined peers={}",
                          self->state.peers.size());
      return caf::actor_cast<caf::actor>(self);
    },
    [=](connect_atom) { connect(self); },
    [=](connect_atom, caf::actor sup) {
      auto& st = self->state;
      st.connecting = false;
      if (!sup) {
        schedule_connect(self);
        return;
      }
      self
        ->request(caf::actor_cast<supervisor_actor>(sup),
                  std::chrono::seconds(10), peer_atom_v,
                  caf::actor_cast<caf::actor>(self))
        .then(
          [=](caf::actor other) {
            auto& st = self->state;
            st.joined = other;
            st.backoff = st.cfg.min_backoff;
            add_peer(self, other);
            log::actors()->info("joined serve node host={} port={}",
                                st.cfg.join_host, st.cfg.join_port);
          },
          [=](caf::error& err) {
            log::actors()->warn("joining serve node failed host={} port={} "
                                "error={}",
                                self->state.cfg.join_host,
                                self->state.cfg.join_port,
                                self->system().render(err));
            schedule_connect(self);
          });
    },
  };
}

} // namespace

peers_actor spawn_peers(caf::actor_system& sys, peers_settings cfg,
                        std::shared_ptr<read_model> model) {
  return sys.spawn(peers_impl, std::move(cfg), std::move(model));
}

} // namespace phonon::actors
