#include "actors/worker_node_actor.hpp"

#include <algorithm>
#include <vector>

#include <caf/event_based_actor.hpp>
#include <caf/io/middleman.hpp>
#include <caf/openssl/remote_actor.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/log.hpp"
#include "actors/metrics.hpp"
#include "actors/transcode_supervisor.hpp"

namespace phonon::actors {

namespace {


struct worker_node_state {
  static inline const char* name = "phonon.worker_node";
  worker_node_settings cfg;
  transcode_fn fn;
  std::vector<transcoder_actor> transcoders;
  /// Opens the remote jobs the serve node sends in chunks, and runs its
  /// bucket jobs.
  caf::actor job_host;
  /// The identity of the bucket this node reaches itself (empty: none).
  std::string bucket;
  supervisor_actor supervisor;
  std::chrono::milliseconds backoff{0};
  bool connecting = false;
};

using pointer = caf::stateful_actor<worker_node_state>*;

/// The worker's own gauges: joined or not, and its transcoders.
void publish_gauges(pointer self) {
  auto& m = metrics::global();
  m.set("phonon_worker_connected", {}, self->state.supervisor ? 1 : 0);
  m.set("phonon_worker_transcoders", {},
        static_cast<double>(self->state.transcoders.size()));
}

/// Connects to the serve node's supervisor (blocking). A system configured
/// with `cluster.tls.*` has CAF's OpenSSL module loaded (system_config.cpp):
/// then the connection is TLS, this node presents its certificate and
/// accepts the serve node only with a certificate the CA signed.
caf::expected<supervisor_actor> connect_supervisor(caf::actor_system& sys,
                                                   const std::string& host,
                                                   uint16_t port) {
  if (sys.has_openssl_manager())
    return caf::openssl::remote_actor<supervisor_actor>(sys, host, port);
  return sys.middleman().remote_actor<supervisor_actor>(host, port);
}

/// Registers transcoder `t` with the serve node's supervisor.
/// With a bucket (cfg.jobs.bucket) it names the bucket's identity, so that
/// the serve node sends bucket jobs when it writes the same bucket.
void register_one(pointer self, const transcoder_actor& t) {
  auto& st = self->state;
  self->send(st.supervisor, join_atom_v, caf::actor_cast<caf::actor>(t),
             int32_t{1}, st.cfg.shared_files, st.job_host, st.bucket);
}

void register_all(pointer self) {
  for (auto& t : self->state.transcoders)
    register_one(self, t);
}

void schedule_connect(pointer self) {
  auto& st = self->state;
  if (st.connecting)
    return;
  st.connecting = true;
  self->delayed_send(self, st.backoff, connect_atom_v);
  st.backoff = std::min(st.cfg.max_backoff,
                        std::max(st.cfg.min_backoff, st.backoff * 2));
}

caf::behavior worker_node_impl(pointer self, worker_node_settings cfg,
                               transcode_fn fn) {
  auto& st = self->state;
  st.cfg = cfg;
  st.fn = fn;
  if (cfg.jobs.bucket && !cfg.shared_files)
    st.bucket = cfg.jobs.bucket->identity();
  if (!cfg.shared_files) {
    st.job_host = spawn_job_host(self->system(), cfg.jobs);
    self->link_to(st.job_host);
  }
  for (int i = 0; i < cfg.workers; ++i) {
    st.transcoders.push_back(spawn_transcoder(self->system(), fn));
    self->monitor(st.transcoders.back());
  }
  self->set_down_handler([=](caf::down_msg& dm) {
    auto& st = self->state;
    if (st.supervisor && dm.source == st.supervisor.address()) {
      log::actors()->warn("serve node lost, reconnecting reason={}",
                          self->system().render(dm.reason));
      st.supervisor = nullptr;
      publish_gauges(self);
      st.backoff = st.cfg.min_backoff;
      schedule_connect(self);
      return;
    }
    auto i = std::find_if(st.transcoders.begin(), st.transcoders.end(),
                          [&](const transcoder_actor& t) {
                            return t.address() == dm.source;
                          });
    if (i == st.transcoders.end())
      return;
    // A transcoder died (its job is retried by the supervisor): replace it.
    *i = spawn_transcoder(self->system(), st.fn);
    self->monitor(*i);
    if (st.supervisor)
      register_one(self, *i);
  });
  publish_gauges(self);
  schedule_connect(self);
  return {
    [=](connect_atom) {
      auto& st = self->state;
      st.connecting = false;
      if (st.supervisor)
        return;
      auto sup = connect_supervisor(self->system(), st.cfg.host, st.cfg.port);
      if (!sup) {
        log::actors()->info("serve node not reachable host={} port={} "
                            "retry_ms={} error={}",
                            st.cfg.host, st.cfg.port, st.backoff.count(),
                            self->system().render(sup.error()));
        schedule_connect(self);
        return;
      }
      st.supervisor = std::move(*sup);
      st.backoff = st.cfg.min_backoff;
      self->monitor(st.supervisor);
      register_all(self);
      metrics::global().inc("phonon_worker_joins_total");
      publish_gauges(self);
      log::actors()->info("joined serve node host={} port={} transcoders={} "
                          "bucket={}",
                          st.cfg.host, st.cfg.port, st.transcoders.size(),
                          st.bucket.empty() ? "none" : st.bucket);
    },
  };
}

} // namespace

caf::actor spawn_worker_node(caf::actor_system& sys, worker_node_settings cfg,
                             transcode_fn fn) {
  auto& m = metrics::global();
  m.describe("phonon_worker_connected", "gauge",
             "1 while this worker is registered with a serve node, else 0.");
  m.describe("phonon_worker_transcoders", "gauge",
             "Transcoders this worker runs.");
  m.describe("phonon_worker_joins_total", "counter",
             "Times this worker joined a serve node (first join and every "
             "rejoin after losing it).");
  m.inc("phonon_worker_joins_total", {}, 0);
  return sys.spawn<caf::detached>(worker_node_impl, std::move(cfg),
                                  std::move(fn));
}

} // namespace phonon::actors
