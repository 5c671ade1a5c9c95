#include "app/roles.hpp"

#include <arpa/inet.h>
#include <sys/resource.h>

#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/io/middleman.hpp>
#include <caf/openssl/publish.hpp>
#include <caf/scoped_actor.hpp>

#include "actors/format_cache_actor.hpp"
#include "actors/log.hpp"
#include "actors/peers_actor.hpp"
#include "actors/recordings_actor.hpp"
#include "actors/repository_actor.hpp"
#include "actors/storage_actor.hpp"
#include "actors/system_config.hpp"
#include "actors/transcode_supervisor.hpp"
#include "persistence/s3_blob_store.hpp"
#include "app/child_workers.hpp"
#include "http/server.hpp"

namespace phonon::app {

namespace {

/// Raises the soft limit of open files to the hard one: every connection,
/// spool file and served file takes a descriptor, and the usual soft limit
/// (1024) is far below server.max_connections.
void raise_open_file_limit() {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0)
    return;
  auto soft = lim.rlim_cur;
  if (lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &lim) != 0) {
      log::http()->warn("cannot raise the open file limit soft={} hard={}",
                        soft, lim.rlim_max);
      return;
    }
  }
  log::http()->info("open file limit soft={} (was {}) hard={}",
                    lim.rlim_cur, soft, lim.rlim_max);
}

/// Views the read model keeps (storage.read_model_entries): -1 is 65536
/// with SQLite and 0 with MySQL, whose database several HTTP nodes may
/// share (a node's read model does not see the changes made through
/// another one).
size_t read_model_size(const config::settings& s) {
  auto n = s.storage.read_model_entries;
  if (n < 0)
    n = s.database.driver == "mysql" ? 0 : 65536;
  log::http()->info("read model entries={}{}", n,
                    n == 0 ? " (off: every GET asks the actors)" : "");
  if (n > 0 && s.database.driver == "mysql")
    log::http()->info("storage.read_model_entries={} with MySQL: every HTTP "
                      "node on this database must be joined to the others "
                      "(cluster.join / cluster.port), or a change made "
                      "through a node that is not is never seen here",
                      n);
  return static_cast<size_t>(n);
}

/// cluster.join of a serve node as the peers actor takes it.
actors::peers_settings peers_settings_of(const config::settings& s) {
  actors::peers_settings p;
  const auto& join = s.cluster.join;
  if (auto colon = join.rfind(':'); !join.empty() && colon != std::string::npos) {
    p.join_host = join.substr(0, colon);
    p.join_port = static_cast<uint16_t>(std::stoi(join.substr(colon + 1)));
    log::actors()->info("joining serve node host={} port={}", p.join_host,
                        p.join_port);
  }
  return p;
}

/// True for `localhost`, 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104: the
/// addresses only processes of this machine can reach.
bool is_loopback(const std::string& host) {
  if (host == "localhost")
    return true;
  in_addr v4{};
  if (::inet_pton(AF_INET, host.c_str(), &v4) == 1)
    return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (::inet_pton(AF_INET6, host.c_str(), &v6) == 1)
    return IN6_IS_ADDR_LOOPBACK(&v6)
           || (IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127);
  return false;
}

// What bounds a peer's message size on the cluster port (CAF 0.17.6,
// libcaf_io/src/io/basp_broker.cpp, basp/instance.cpp, network/stream.cpp):
// nothing but the 32-bit `payload_len` field of the 32-byte BASP header.
// The broker reads a header from every new connection before any handshake,
// checks only that the operation is known and that a few fields are zero
// (basp::valid), then calls `configure_read(receive_policy::exactly(
// payload_len))`, and the stream resizes its read buffer to that size
// (std::vector<char>::resize, zero-filled, so the pages are really touched).
// One header declaring 0xFFFFFFFF bytes costs 4 GiB per connection, and
// CAF 0.17 has no option to lower that limit (the middleman.* options are
// about heartbeats, reads per event and workers). Worse, a client_handshake
// header declaring no payload at all makes instance::handle dereference a
// null payload (`binary_deserializer bd{ctx, *payload}`): one 32-byte
// message crashes the node (SIGSEGV with Debian's 0.17.6, reproduced). So:
// - with cluster.tls.* the port is published through CAF's OpenSSL module:
//   the TLS handshake, in which the peer must present a certificate the CA
//   signed, completes before the BASP broker sees a single byte; random or
//   plain-TCP bytes fail in OpenSSL's record layer, whose buffers are
//   bounded (records of at most 16 KiB). (CAF's session needs one fix for
//   that to hold: see "OpenSSL's error queue" in actors/system_config.cpp.)
// - without TLS the port is bound to cluster.host, 127.0.0.1 by default,
//   and a warning at start says when it is not a loopback address; nothing
//   cheap bounds the size there (it would take a BASP-aware proxy in front
//   of CAF).
// An authenticated peer is trusted: it can still declare 4 GiB.

/// Publishes the supervisor on `host`:`port` (0 = any free port), through
/// CAF's OpenSSL module when `tls`. Returns the bound port.
uint16_t publish_supervisor(caf::actor_system& sys,
                            const actors::supervisor_actor& supervisor,
                            const std::string& host, uint16_t port,
                            bool tls) {
  auto bound = tls ? caf::openssl::publish(supervisor, port, host.c_str(),
                                           true)
                   : sys.middleman().publish(supervisor, port, host.c_str(),
                                             true);
  if (!bound)
    throw std::runtime_error("cannot publish the cluster port on "
                             + host + ":" + std::to_string(port) + ": "
                             + sys.render(bound.error()));
  return *bound;
}

/// Flags that give an isolated child worker this node's TLS files: the
/// child proves itself with the serve node's own certificate.
std::vector<std::string>
child_tls_args(const config::cluster_tls_settings& tls) {
  if (!tls.enabled())
    return {};
  return {"--set", "cluster.tls.certificate=" + tls.certificate,
          "--set", "cluster.tls.key=" + tls.key,
          "--set", "cluster.tls.ca=" + tls.ca};
}

/// Tells the actors it was given to exit when it goes out of scope, the
/// last added first.
class actor_stopper {
public:
  template <class Handle>
  void add(const Handle& hdl) {
    hdls_.push_back(caf::actor_cast<caf::actor>(hdl));
  }

  ~actor_stopper() {
    for (auto it = hdls_.rbegin(); it != hdls_.rend(); ++it)
      caf::anon_send_exit(*it, caf::exit_reason::user_shutdown);
  }

private:
  std::vector<caf::actor> hdls_;
};

} // namespace

int run_serve(const config::settings& s) {
  // First: an unusable key stops the start before anything else runs.
  auto auth = std::make_shared<const http::authenticator>(s.auth, s.metrics);
  if (auth->enabled())
    log::http()->info("auth mode=token algorithm={} issuer={} audience={} "
                      "link_ttl={}s metrics_token={}",
                      s.auth.algorithm,
                      s.auth.issuer.empty() ? "-" : s.auth.issuer,
                      s.auth.audience.empty() ? "-" : s.auth.audience,
                      s.auth.link_ttl, s.metrics.token.empty() ? "no" : "yes");
  else
    log::http()->warn("auth mode=none: anyone who can reach this port may "
                      "read, replace and delete every recording");
  auto stop_signals = block_stop_signals();
  raise_open_file_limit();
  route_libav_logs();
  auto store = open_store(s);
  auto blobs = open_blob_store(s);
  if (auto n = blobs->sweep_temp(); n > 0)
    log::actors()->info("swept stray temp files count={}", n);

  caf::actor_system_config cfg;
  actors::configure(cfg, s);
  caf::actor_system sys{cfg};
  // One way out for the actors: however run_serve ends (a signal, or a
  // throw such as the HTTP or cluster port being in use), every actor
  // spawned below is told to exit before `sys` is destroyed, whose
  // destructor waits for all of them (without this a failed start hung
  // for ever, deaf to SIGTERM).
  actor_stopper stopper;

  auto repository = actors::spawn_repository(sys, std::move(store));
  stopper.add(repository);
  auto storage = actors::spawn_storage(sys, blobs, s.storage.min_free_bytes);
  stopper.add(storage);
  auto model = std::make_shared<actors::read_model>(
    read_model_size(s));
  // The other serve nodes of this deployment: this node joins the one named
  // by cluster.join (if any) and takes those that join it through its
  // published supervisor; all tell each other about every change.
  auto peers = actors::spawn_peers(sys, peers_settings_of(s), model);
  stopper.add(peers);
  actors::supervisor_settings sup;
  sup.peers = caf::actor_cast<caf::actor>(peers);
  // With isolate, every transcoder of this node runs in a child process.
  sup.workers = s.transcoder.isolate ? 0 : s.transcoder.workers;
  sup.queue_limit = s.transcoder.queue_limit;
  sup.queue_limit_bytes = s.transcoder.queue_limit_bytes;
  sup.max_duration_ms = int64_t{s.server.max_duration} * 1000;
  // A conversion nobody waits for any more is stopped.
  sup.request_timeout = std::chrono::seconds(s.server.request_timeout);
  sup.max_attempts = s.transcoder.max_attempts;
  // File jobs write their output next to the spool files, so the storage
  // actor adopts it with a rename.
  sup.temp_dir = blobs->temp_dir().string();
  // On S3, workers that name the same bucket read and write it themselves
  // (bucket jobs, actors/bucket_job_actor.hpp).
  if (auto bucket = std::dynamic_pointer_cast<persistence::s3_blob_store>(
        blobs))
    sup.bucket = bucket->identity();
  auto fn = transcode_function();
  auto supervisor = actors::spawn_supervisor(
    sys, sup,
    [fn](caf::actor_system& sys) { return actors::spawn_transcoder(sys, fn); });
  stopper.add(supervisor);

  // Worker nodes join through the published supervisor, on cluster.host
  // (see the note on message sizes above publish_supervisor).
  const auto& tls = s.cluster.tls;
  if (s.cluster.port != 0) {
    if (!tls.enabled() && !is_loopback(s.cluster.host))
      log::actors()->warn(
        "cluster port reachable beyond loopback without TLS host={} port={}: "
        "anyone who reaches it can join as a worker and receive users' "
        "audio, make this node allocate up to 4 GiB per connection or crash "
        "it with one 32-byte message; set "
        "cluster.tls.certificate/key/ca (scripts/cluster-certs.sh) or "
        "cluster.host=127.0.0.1",
        s.cluster.host, s.cluster.port);
    auto port = publish_supervisor(sys, supervisor, s.cluster.host,
                                   s.cluster.port, tls.enabled());
    log::actors()->info("cluster published host={} port={} tls={}",
                        s.cluster.host, port, tls.enabled());
  }
  // Isolated children join on a port of their own on 127.0.0.1, whatever
  // cluster.host is; with TLS they use TLS too (with this node's own
  // certificate), so that a local process cannot join or reach BASP either.
  std::optional<child_workers> children;
  if (s.transcoder.isolate) {
    auto port = publish_supervisor(sys, supervisor, "127.0.0.1", 0,
                                   tls.enabled());
    log::actors()->info("isolated transcoders port host=127.0.0.1 port={} "
                        "tls={}",
                        port, tls.enabled());
    auto args = child_tls_args(tls);
    args.insert(args.end(), {"--log-level", s.log.level});
    // Same machine, same user: the children stream between the data
    // folder's files like local transcoders.
    args.insert(args.end(), {"--set", "cluster.shared_files=true"});
    // The children read the same settings: a metrics.port meant for
    // `phonon worker` processes would have every child bind it (all but
    // the first fail). Their work is counted by this node's supervisor.
    args.insert(args.end(), {"--set", "metrics.port=0"});
    children.emplace(s.transcoder.workers, port, std::move(args));
  }

  // limits.per_user_inflight: one budget for a user's uploads (the HTTP
  // sessions) and one for conversions of the user's recordings (the format
  // cache). Separate, so that conversions that others start through the
  // user's signed links (or anyone, with auth off) can never lock the user
  // out of uploading.
  auto upload_gate = actors::user_gate::make(s.limits.per_user_inflight);
  auto conversion_gate = actors::user_gate::make(s.limits.per_user_inflight);
  auto cache = actors::spawn_format_cache(sys, storage, supervisor,
                                          s.storage.cache_max_bytes, model,
                                          conversion_gate);
  stopper.add(cache);
  actors::recordings_deps deps{repository,
                               storage,
                               supervisor,
                               cache,
                               std::chrono::seconds(s.server.request_timeout),
                               test_master_delay(),
                               model};
  // A bucket is shared with other nodes: leave their uploads in flight
  // alone (an upload commits within the request timeout or never).
  if (s.storage.type == "s3") {
    deps.reconcile_grace = std::chrono::seconds(2 * s.server.request_timeout);
    deps.original_first = true;
  }
  deps.peers = peers;
  if (s.storage.s3.redirect && s.storage.type == "s3")
    deps.redirect_min_bytes = s.storage.s3.redirect_min_bytes;
  auto recordings = actors::spawn_recordings(sys, std::move(deps));
  stopper.add(recordings);

  // Startup recovery runs in the background: the server answers meanwhile.
  caf::anon_send(recordings, actors::recover_atom_v);

  http::services svc;
  svc.sys = &sys;
  svc.recordings = recordings;
  svc.repository = repository;
  svc.storage = storage;
  svc.supervisor = supervisor;
  svc.cache = cache;
  svc.model = model;
  svc.gate = upload_gate;
  svc.timeout = std::chrono::seconds(s.server.request_timeout);
  svc.change_timeout = svc.timeout + http::commit_grace;
  svc.auth = auth;
  svc.console = s.server.console;

  http::server_options opts;
  opts.host = s.server.host;
  opts.port = s.server.port;
  opts.threads = s.server.threads;
  opts.max_upload_size = s.server.max_upload_size;
  opts.max_header_size = s.server.max_header_size;
  opts.header_timeout = std::chrono::seconds(s.server.header_timeout);
  opts.idle_timeout = std::chrono::seconds(s.server.idle_timeout);
  opts.max_connections = static_cast<uint64_t>(s.server.max_connections);
  opts.spool_dir = blobs->temp_dir().string();
  opts.cors_origins = s.server.cors_origins;
  opts.console = s.server.console;
  opts.memory_cache_bytes = s.storage.memory_cache_bytes;
  opts.memory_cache_item_max = s.storage.memory_cache_item_max;
  if (s.storage.s3.redirect) {
    // config::validate refused redirect without storage.type s3.
    auto bucket = std::dynamic_pointer_cast<persistence::s3_blob_store>(blobs);
    if (!bucket)
      throw std::runtime_error("storage.s3.redirect: needs storage.type s3");
    const auto& in = s.storage.s3;
    auto& r = opts.redirect;
    r.enabled = true;
    r.min_bytes = in.redirect_min_bytes;
    r.ttl = std::chrono::seconds(in.redirect_ttl);
    r.local_base = bucket->local().base().string();
    r.bucket.endpoint = in.public_endpoint.empty() ? in.endpoint
                                                   : in.public_endpoint;
    r.bucket.region = in.region;
    r.bucket.bucket = in.bucket;
    r.bucket.prefix = in.prefix;
    r.bucket.access_key = in.access_key;
    r.bucket.secret_key = in.secret_key;
    r.bucket.path_style = in.path_style;
    svc.console_media_origin = http::redirect_origin(opts.redirect);
    log::http()->info("s3 redirects on min_bytes={} ttl={}s origin={}",
                      in.redirect_min_bytes, in.redirect_ttl,
                      svc.console_media_origin);
  }
  http::server srv{opts, svc};
  auto port = srv.start();
  log::http()->info("listening host={} port={} driver={} storage={} "
                    "transcoders={} isolate={}",
                    s.server.host, port, s.database.driver,
                    s.storage.local_base_path, s.transcoder.workers,
                    s.transcoder.isolate);

  auto sig = wait_for_signal(stop_signals);
  log::http()->info("shutting down signal={}", sig);
  srv.stop();
  children.reset();
  return EXIT_SUCCESS; // stopper tells the actors to exit
}

} // namespace phonon::app
