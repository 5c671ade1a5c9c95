// The closed cluster (issue 9): `cluster.tls.*` and `cluster.host` against
// the real binaries over real loopback sockets. A serve node with TLS
// publishes its supervisor through CAF's OpenSSL module and accepts only
// peers whose certificate the cluster CA signed; workers verify the serve
// node the same way; strangers (plain TCP, random bytes, a BASP header
// declaring 4 GiB) never reach CAF's BASP parsing. Without TLS the port is
// bound to loopback unless cluster.host says otherwise, and then a warning
// is logged.
//
// The certificates are made once per run by scripts/cluster-certs.sh (the
// script a newcomer uses) in a temp dir: the cluster's CA with a serve and a
// worker certificate, a second, unrelated CA with the same two, and a
// self-signed certificate from the openssl CLI.

#include <catch2/catch.hpp>

#include <sys/types.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/cluster_support.hpp"
#include "tests/integration/support.hpp"

using namespace phonon::integration;
using namespace std::chrono_literals;

namespace {

namespace fs = std::filesystem;

/// The three `cluster.tls.*` files of one node.
struct node_tls {
  std::string certificate;
  std::string key;
  std::string ca;
};

/// Every certificate the tests use.
struct test_certs {
  /// Where scripts/cluster-certs.sh made the cluster's files.
  fs::path cluster_dir;
  /// The serve node and a worker of the cluster (the cluster CA signed
  /// them; they trust the cluster CA).
  node_tls serve;
  node_tls worker;
  /// A worker with a self-signed certificate that trusts the cluster CA:
  /// only the serve node's check can refuse it.
  node_tls self_signed_worker;
  /// A worker whose certificate an unrelated CA signed; it trusts the
  /// cluster CA.
  node_tls foreign_worker;
  /// A serve node whose certificate the unrelated CA signed; it trusts the
  /// cluster CA (so it would accept the cluster's worker).
  node_tls foreign_serve;
};

/// Path of scripts/cluster-certs.sh in the source tree.
fs::path certs_script() {
  const char* root = std::getenv("PHONON_SOURCE_DIR");
  if (root == nullptr)
    throw std::runtime_error("set PHONON_SOURCE_DIR to the repository root");
  return fs::path{root} / "scripts" / "cluster-certs.sh";
}

/// Runs scripts/cluster-certs.sh DIR; throws with its output on failure.
run_result make_certs(const fs::path& dir) {
  auto res = run(shell_quote(certs_script().string()) + " "
                 + shell_quote(dir.string()));
  if (!res.ok())
    throw std::runtime_error("scripts/cluster-certs.sh failed: "
                             + res.output);
  return res;
}

const test_certs& certs() {
  static std::unique_ptr<temp_dir> dir;
  static std::unique_ptr<test_certs> result;
  if (result)
    return *result;
  dir = std::make_unique<temp_dir>("phonon-it-certs");
  auto cluster = *dir / "cluster";
  auto foreign = *dir / "foreign";
  make_certs(cluster);
  make_certs(foreign);
  auto self_key = (*dir / "self.key").string();
  auto self_pem = (*dir / "self.pem").string();
  auto res = run("openssl req -x509 -newkey ec -pkeyopt "
                 "ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=worker "
                 "-addext extendedKeyUsage=serverAuth,clientAuth -keyout "
                 + shell_quote(self_key) + " -out " + shell_quote(self_pem));
  if (!res.ok())
    throw std::runtime_error("openssl req -x509 failed: " + res.output);
  auto in = [](const fs::path& d, const char* name) {
    return (d / name).string();
  };
  auto ca = in(cluster, "ca.pem");
  test_certs c;
  c.cluster_dir = cluster;
  c.serve = {in(cluster, "serve.pem"), in(cluster, "serve.key"), ca};
  c.worker = {in(cluster, "worker.pem"), in(cluster, "worker.key"), ca};
  c.self_signed_worker = {self_pem, self_key, ca};
  c.foreign_worker = {in(foreign, "worker.pem"), in(foreign, "worker.key"),
                      ca};
  c.foreign_serve = {in(foreign, "serve.pem"), in(foreign, "serve.key"), ca};
  result = std::make_unique<test_certs>(std::move(c));
  return *result;
}

/// `--set` flags giving a node its TLS files.
std::vector<std::string> tls_flags(const node_tls& tls) {
  return {"--set", "cluster.tls.certificate=" + tls.certificate,
          "--set", "cluster.tls.key=" + tls.key,
          "--set", "cluster.tls.ca=" + tls.ca};
}

/// The same as environment variables (how a worker gets them here).
env_list tls_env(const node_tls& tls) {
  return {{"APP_CLUSTER_TLS_CERTIFICATE", tls.certificate},
          {"APP_CLUSTER_TLS_KEY", tls.key},
          {"APP_CLUSTER_TLS_CA", tls.ca}};
}

/// An HTTP-only serve node (no local transcoders) publishing its
/// supervisor on `cluster_port`, with `tls` when given, plus `extra`.
std::vector<std::string> serve_args(uint16_t cluster_port,
                                    const node_tls* tls,
                                    std::vector<std::string> extra = {}) {
  std::vector<std::string> args{"--workers", "0", "--set",
                                "cluster.port="
                                  + std::to_string(cluster_port)};
  if (tls != nullptr) {
    auto flags = tls_flags(*tls);
    args.insert(args.end(), flags.begin(), flags.end());
  }
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

/// Waits until the serve node counts `transcoders` remote transcoders on
/// `nodes` worker nodes.
bool wait_for_pool(uint16_t port, double transcoders, double nodes,
                   std::chrono::milliseconds limit = 10s) {
  return wait_for_metric(port, "phonon_transcoders", {{"kind", "remote"}},
                         transcoders, limit)
         && wait_for_metric(port, "phonon_cluster_nodes",
                            {{"kind", "worker"}}, nodes, limit);
}

/// True when, within `window`, the serve node ever counts a worker node or
/// a remote transcoder.
bool anyone_joins(uint16_t port, std::chrono::milliseconds window) {
  return wait_for(
    [&] {
      return scrape_or_zero(port, "phonon_cluster_nodes",
                            {{"kind", "worker"}})
               > 0
             || scrape_or_zero(port, "phonon_transcoders",
                               {{"kind", "remote"}})
                  > 0;
    },
    window);
}

/// A worker refused by (or refusing) the serve node retries with backoff
/// (200 ms doubling): 3 s covers four attempts.
constexpr auto refusal_window = 3s;

std::string recording_path(int user, int phrase) {
  return "/audio/user/" + std::to_string(user) + "/phrase/"
         + std::to_string(phrase);
}

/// Uploads the 3 s WAV fixture and fetches it as MP3: only a transcoder
/// (here: a worker's) can do either.
void check_converts(uint16_t port, int user, int phrase) {
  auto target = recording_path(user, phrase);
  auto res = upload_file(port, target, read_file(audio_fixtures().wav),
                         "clip.wav", "audio/wav");
  INFO("upload answer " << res.status << " " << res.body);
  REQUIRE(res.status == 201);
  CHECK(wait_until_settled(port, target).value("status", "") == "ready");
  auto mp3 = http_get(port, target + "/mp3");
  REQUIRE(mp3.status == 200);
  auto info = probe_bytes(mp3.body);
  REQUIRE(info);
  CHECK(info->codec_name == "mp3");
  CHECK(std::abs(decoded_seconds_of(mp3.body) - 3.0) < 0.2);
}

/// The serve node has no transcoder: /readyz says so and an upload is
/// refused with 503.
void check_no_transcoder(uint16_t port, int user) {
  auto ready = http_get(port, "/readyz");
  CHECK(ready.status == 503);
  CHECK(ready.json().value("transcoder", "") == "unavailable");
  auto res = upload_file(port, recording_path(user, 1),
                         read_file(audio_fixtures().wav), "clip.wav",
                         "audio/wav");
  INFO("upload answer " << res.body);
  CHECK(res.status == 503);
}

/// A TLS handshake with the openssl CLI as `as`, verifying the server
/// against `as.ca`.
run_result tls_handshake(uint16_t port, const node_tls& as) {
  return run("timeout 10 openssl s_client -brief -verify_return_error "
             "-connect 127.0.0.1:"
             + std::to_string(port) + " -CAfile " + shell_quote(as.ca)
             + " -cert " + shell_quote(as.certificate) + " -key "
             + shell_quote(as.key) + " </dev/null");
}

/// What a stranger may get back from the TLS cluster port before it is
/// closed: nothing, or a TLS alert record (content type 21). A BASP server
/// handshake (operation 0) would mean CAF's broker talked to it.
bool nothing_but_a_tls_alert(const std::string& received) {
  return received.empty() || static_cast<unsigned char>(received[0]) == 0x15;
}

/// `n` pseudo-random bytes (fixed seed per `seed`: reproducible runs).
std::string random_bytes(size_t n, uint64_t seed) {
  std::mt19937_64 gen{seed};
  std::string bytes(n, '\0');
  for (size_t i = 0; i < n; i += 8) {
    auto word = gen();
    for (size_t j = 0; j < 8 && i + j < n; ++j)
      bytes[i + j] = static_cast<char>((word >> (8 * j)) & 0xFF);
  }
  return bytes;
}

/// Where the serve node logged `prefix` followed by a port number: the
/// number, or 0.
uint16_t logged_port(const std::string& log, const std::string& prefix) {
  auto pos = log.find(prefix);
  if (pos == std::string::npos)
    return 0;
  return static_cast<uint16_t>(
    std::strtoul(log.c_str() + pos + prefix.size(), nullptr, 10));
}

constexpr uint64_t mib_in_kib = 1024;

} // namespace

TEST_CASE("cluster tls: cluster-certs.sh makes a CA and node certificates "
          "that verify, and a second run keeps them",
          "[integration][cluster][tls]") {
  const auto& c = certs();
  auto verify = run("openssl verify -CAfile " + shell_quote(c.serve.ca) + " "
                    + shell_quote(c.serve.certificate) + " "
                    + shell_quote(c.worker.certificate));
  INFO(verify.output);
  CHECK(verify.ok());
  auto before = read_file(c.worker.certificate);
  auto again = make_certs(c.cluster_dir);
  INFO(again.output);
  CHECK(again.output.find("nothing made") != std::string::npos);
  CHECK(again.output.find("APP_CLUSTER_TLS_CA=") != std::string::npos);
  CHECK(read_file(c.worker.certificate) == before);
  // The other CA did not sign the cluster's certificates.
  auto foreign = run("openssl verify -CAfile "
                     + shell_quote((c.cluster_dir.parent_path() / "foreign"
                                    / "ca.pem")
                                     .string())
                     + " " + shell_quote(c.worker.certificate));
  CHECK_FALSE(foreign.ok());
}

TEST_CASE("cluster tls: a worker with a certificate from the cluster CA "
          "joins and converts",
          "[integration][cluster][tls]") {
  const auto& c = certs();
  auto cluster_port = pick_free_port();
  server_process srv;
  srv.start(serve_args(cluster_port, &c.serve));
  auto port = srv.port();
  CHECK(srv.log().find("tls=true") != std::string::npos);

  // The port speaks TLS and accepts the cluster's worker certificate (and
  // the client verified the serve node's against the CA).
  auto hs = tls_handshake(cluster_port, c.worker);
  INFO("openssl s_client: " << hs.output);
  CHECK(hs.ok());
  CHECK(hs.output.find("Verification: OK") != std::string::npos);

  // HTTP only: nothing converts until the TLS worker joins.
  check_no_transcoder(port, 1);
  worker_process w{cluster_port, 1, tls_env(c.worker)};
  w.start();
  INFO("worker log:\n" << w.log_tail());
  REQUIRE(wait_for_pool(port, 1, 1, 15s));
  CHECK(http_get(port, "/readyz").status == 200);
  check_converts(port, 1, 2);
}

TEST_CASE("cluster tls: workers with a self-signed certificate or one from "
          "another CA are refused",
          "[integration][cluster][tls]") {
  const auto& c = certs();
  auto cluster_port = pick_free_port();
  server_process srv;
  srv.start(serve_args(cluster_port, &c.serve));
  auto port = srv.port();

  worker_process self_signed{cluster_port, 1, tls_env(c.self_signed_worker)};
  worker_process foreign{cluster_port, 1, tls_env(c.foreign_worker)};
  self_signed.start();
  foreign.start();
  CHECK_FALSE(anyone_joins(port, refusal_window));
  check_no_transcoder(port, 2);
  INFO("self-signed worker log:\n" << self_signed.log_tail());
  INFO("foreign worker log:\n" << foreign.log_tail());
  CHECK(self_signed.log().find("serve node not reachable")
        != std::string::npos);
  CHECK(foreign.log().find("serve node not reachable") != std::string::npos);
  CHECK(self_signed.running());
  CHECK(foreign.running());

  // The refusal was about the certificates: the cluster's worker joins.
  worker_process good{cluster_port, 1, tls_env(c.worker)};
  good.start();
  REQUIRE(wait_for_pool(port, 1, 1, 15s));
  check_converts(port, 2, 2);
  // The strangers are still not counted.
  CHECK(scrape_or_zero(port, "phonon_cluster_nodes", {{"kind", "worker"}})
        == 1);
}

TEST_CASE("cluster tls: a plain TCP client, a TLS client without a "
          "certificate and a worker without TLS are refused",
          "[integration][cluster][tls]") {
  const auto& c = certs();
  auto cluster_port = pick_free_port();
  server_process srv;
  srv.start(serve_args(cluster_port, &c.serve));
  auto port = srv.port();

  // A plain client that speaks BASP gets no BASP handshake back, only a
  // closed connection. Its message, a client handshake header declaring no
  // payload, is one that crashes CAF 0.17's broker (a null dereference in
  // basp::instance::handle) when it gets that far.
  {
    raw_tcp_peer peer{cluster_port};
    peer.send(basp_client_handshake_header(0));
    auto got = peer.read_until_closed(5s);
    INFO("received " << got.size() << " bytes");
    CHECK(peer.closed());
    CHECK(nothing_but_a_tls_alert(got));
  }
  REQUIRE(srv.running());

  // A TLS client without a certificate (which trusts the serve node) is
  // told so and cut off: TLS 1.3 reports it after the client's handshake.
  auto no_cert = run("timeout 10 openssl s_client -brief -ign_eof -connect "
                     "127.0.0.1:"
                     + std::to_string(cluster_port) + " -CAfile "
                     + shell_quote(c.serve.ca) + " </dev/null");
  INFO("openssl s_client without a certificate: " << no_cert.output);
  CHECK_FALSE(no_cert.ok());
  CHECK(no_cert.output.find("alert certificate required")
        != std::string::npos);

  // `phonon worker --join` without TLS settings.
  worker_process plain{cluster_port, 1};
  plain.start();
  CHECK_FALSE(anyone_joins(port, refusal_window));
  check_no_transcoder(port, 3);
  INFO("plain worker log:\n" << plain.log_tail());
  CHECK(plain.log().find("serve node not reachable") != std::string::npos);
  CHECK(srv.running());
  CHECK(http_get(port, "/healthz").status == 200);
}

TEST_CASE("cluster tls: a worker refuses a serve node whose certificate "
          "another CA signed",
          "[integration][cluster][tls]") {
  const auto& c = certs();
  auto cluster_port = pick_free_port();
  server_process srv;
  // This serve node trusts the cluster CA, so it would take the worker:
  // only the worker's own check of the serve node can keep them apart.
  srv.start(serve_args(cluster_port, &c.foreign_serve));
  auto port = srv.port();
  worker_process w{cluster_port, 1, tls_env(c.worker)};
  w.start();
  CHECK_FALSE(anyone_joins(port, refusal_window));
  INFO("worker log:\n" << w.log_tail());
  CHECK(w.log().find("serve node not reachable") != std::string::npos);
  // The CLI agrees: the serve node's certificate does not verify.
  CHECK_FALSE(tls_handshake(cluster_port, c.worker).ok());
}

TEST_CASE("cluster tls: 1 MiB of random bytes on the cluster port does not "
          "disturb the serve node",
          "[integration][cluster][tls]") {
  const auto& c = certs();
  auto cluster_port = pick_free_port();
  server_process srv;
  srv.start(serve_args(cluster_port, &c.serve));
  auto port = srv.port();
  worker_process w{cluster_port, 1, tls_env(c.worker)};
  w.start();
  REQUIRE(wait_for_pool(port, 1, 1, 15s));
  auto pid = listener_pid(cluster_port);
  REQUIRE(pid > 0);
  auto before = process_memory(pid);
  REQUIRE(before);

  // One stranger sends 1 MiB in one go; three more each send 1 MiB of
  // other random bytes at the same time.
  std::vector<std::unique_ptr<raw_tcp_peer>> peers;
  for (int i = 0; i < 4; ++i)
    peers.push_back(std::make_unique<raw_tcp_peer>(cluster_port));
  std::vector<std::thread> senders;
  std::vector<size_t> sent(peers.size());
  for (size_t i = 0; i < peers.size(); ++i)
    senders.emplace_back([&, i] {
      sent[i] = peers[i]->send(random_bytes(1024 * 1024, 0x9e3779b9 + i));
    });
  for (auto& t : senders)
    t.join();
  for (size_t i = 0; i < peers.size(); ++i) {
    auto got = peers[i]->read_until_closed(5s);
    INFO("stranger " << i << " sent " << sent[i] << " bytes, received "
                     << got.size());
    CHECK(peers[i]->closed());
    CHECK(nothing_but_a_tls_alert(got));
  }
  peers.clear();

  // The node kept its worker (the same connection: a worker that lost it
  // would reconnect), answers and converts.
  CHECK(srv.running());
  CHECK(http_get(port, "/healthz").status == 200);
  CHECK(wait_for_pool(port, 1, 1, 2s));
  INFO("worker log:\n" << w.log_tail());
  CHECK(w.log().find("serve node lost") == std::string::npos);
  CHECK(srv.log().find("transcoder lost") == std::string::npos);
  check_converts(port, 4, 1);
  auto after = process_memory(pid);
  REQUIRE(after);
  INFO("VmRSS before " << before->rss_kib << " KiB, after " << after->rss_kib
                       << " KiB");
  CHECK(after->rss_kib < before->rss_kib + 64 * mib_in_kib);
}

TEST_CASE("cluster tls: a BASP header declaring a 4 GiB payload grows the "
          "serve node's RSS by less than 64 MiB",
          "[integration][cluster][tls]") {
  const auto& c = certs();
  auto cluster_port = pick_free_port();
  server_process srv;
  srv.start(serve_args(cluster_port, &c.serve));
  auto port = srv.port();
  auto pid = listener_pid(cluster_port);
  REQUIRE(pid > 0);
  // VmHWM from here on catches an allocation that is gone again by the
  // time it is read.
  CHECK(reset_peak_rss(pid));
  auto before = process_memory(pid);
  REQUIRE(before);

  raw_tcp_peer peer{cluster_port};
  CHECK(peer.send(basp_client_handshake_header(0xFFFFFFFFu)) == 32);
  // CAF 0.17 resizes (zero-fills) its read buffer as soon as it has parsed
  // the header; give it time before looking, with the connection open.
  std::this_thread::sleep_for(1s);
  auto during = process_memory(pid);
  auto got = peer.read_until_closed(3s);
  REQUIRE(during);
  auto peak = std::max(during->rss_kib, during->hwm_kib);
  INFO("VmRSS before " << before->rss_kib << " KiB; VmRSS/VmHWM after "
                       << during->rss_kib << "/" << during->hwm_kib
                       << " KiB");
  CHECK(peak < before->rss_kib + 64 * mib_in_kib);
  CHECK(peer.closed());
  CHECK(nothing_but_a_tls_alert(got));
  CHECK(srv.running());
  CHECK(http_get(port, "/healthz").status == 200);
}

TEST_CASE("cluster tls: the serve node keeps working when its certificate "
          "files go away",
          "[integration][cluster][tls]") {
  // CAF reads the files for every new connection and aborts the process
  // when that fails; the node must have loaded them once, at start.
  const auto& c = certs();
  temp_dir dir{"phonon-it-moved-certs"};
  node_tls moved{(dir / "serve.pem").string(), (dir / "serve.key").string(),
                 (dir / "ca.pem").string()};
  write_file(moved.certificate, read_file(c.serve.certificate));
  write_file(moved.key, read_file(c.serve.key));
  write_file(moved.ca, read_file(c.serve.ca));
  auto cluster_port = pick_free_port();
  server_process srv;
  srv.start(serve_args(cluster_port, &moved));
  auto port = srv.port();
  fs::remove(moved.certificate);
  fs::remove(moved.key);
  fs::remove(moved.ca);

  {
    raw_tcp_peer stranger{cluster_port};
    stranger.send("hello");
    stranger.read_until_closed(3s);
    CHECK(stranger.closed());
  }
  REQUIRE(srv.running());
  worker_process w{cluster_port, 1, tls_env(c.worker)};
  w.start();
  CHECK(wait_for_pool(port, 1, 1, 15s));
  CHECK(srv.running());
}

TEST_CASE("cluster tls: isolated transcoders join over loopback with TLS",
          "[integration][cluster][tls][isolate]") {
  const auto& c = certs();
  server_process srv;
  auto args = tls_flags(c.serve);
  args.insert(args.end(), {"--workers", "1", "--set",
                           "transcoder.isolate=true"});
  srv.start(args);
  auto port = srv.port();
  REQUIRE(wait_for_pool(port, 1, 1, 15s));
  check_converts(port, 5, 1);

  // The children's port is on loopback and speaks TLS only.
  auto children_port = logged_port(
    srv.log(), "isolated transcoders port host=127.0.0.1 port=");
  REQUIRE(children_port != 0);
  auto addresses = listen_addresses(children_port);
  CHECK(addresses == std::vector<std::string>{"127.0.0.1"});
  CHECK(tls_handshake(children_port, c.worker).ok());
  raw_tcp_peer peer{children_port};
  peer.send(basp_client_handshake_header(0));
  auto got = peer.read_until_closed(5s);
  CHECK(peer.closed());
  CHECK(nothing_but_a_tls_alert(got));
}

TEST_CASE("cluster: without TLS the port is bound to cluster.host, loopback "
          "by default, and a wider bind is warned about",
          "[integration][cluster][tls]") {
  constexpr std::string_view warning = "cluster port reachable beyond "
                                        "loopback without TLS";
  SECTION("the default is 127.0.0.1, with no warning") {
    auto cluster_port = pick_free_port();
    server_process srv;
    srv.start(serve_args(cluster_port, nullptr));
    CHECK(listen_addresses(cluster_port)
          == std::vector<std::string>{"127.0.0.1"});
    CHECK(srv.log().find(warning) == std::string::npos);
  }
  SECTION("cluster.host decides, not server.host") {
    // Another loopback address: still nothing beyond this machine.
    auto cluster_port = pick_free_port();
    server_process srv;
    srv.start(serve_args(cluster_port, nullptr,
                         {"--set", "cluster.host=127.0.0.2"}));
    CHECK(listen_addresses(cluster_port)
          == std::vector<std::string>{"127.0.0.2"});
    CHECK(srv.log().find(warning) == std::string::npos);
  }
  SECTION("cluster.host=0.0.0.0 without TLS logs the warning") {
    auto cluster_port = pick_free_port();
    server_process srv;
    srv.start(serve_args(cluster_port, nullptr,
                         {"--set", "cluster.host=0.0.0.0"}));
    auto log = srv.log();
    srv.stop();
    INFO(log);
    CHECK(log.find(warning) != std::string::npos);
  }
}
