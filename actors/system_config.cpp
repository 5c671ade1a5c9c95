#include "actors/system_config.hpp"

#include <dlfcn.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <caf/io/middleman.hpp>
#include <caf/openssl/manager.hpp>

#include "actors/errors.hpp"
#include "actors/log.hpp"
#include "actors/messages.hpp"

// -- CAF 0.17 and OpenSSL's error queue ----------------------------------------
//
// OpenSSL's SSL_get_error() reports SSL_ERROR_SSL whenever the calling
// thread's error queue holds an entry, so the queue must be empty before
// each SSL_read/SSL_write/SSL_accept/SSL_connect. CAF 0.17.6's
// caf::openssl::session never clears it, and drains it only inside
// CAF_LOG_INFO, which Debian's build (CAF_LOG_LEVEL_QUIET) compiles away.
// So on CAF's single I/O thread one failed handshake (a stranger sending
// random bytes, a worker with the wrong certificate) leaves an error behind,
// and the next SSL_read of an authenticated worker's connection that would
// merely block is taken for a failure: the serve node drops that worker. A
// stranger could keep every worker off the cluster that way (found by
// cluster_tls_test's random-bytes case). CAF 1.x clears the queue before
// each call (libcaf_net/caf/net/ssl/connection.cpp); until then this
// executable interposes the four functions: a definition here takes
// precedence over libssl's for libcaf_openssl's calls (ELF symbol
// interposition; the linker exports them because a shared library of the
// link uses them), clears the queue and calls libssl's function.

namespace {

template <class Fn>
Fn next_symbol(const char* name) {
  auto fn = reinterpret_cast<Fn>(::dlsym(RTLD_NEXT, name));
  if (fn == nullptr) {
    std::fprintf(stderr, "phonon: libssl has no %s\n", name);
    std::abort();
  }
  return fn;
}

} // namespace

extern "C" {

int SSL_read(SSL* ssl, void* buf, int num) {
  static auto next = next_symbol<int (*)(SSL*, void*, int)>("SSL_read");
  ERR_clear_error();
  return next(ssl, buf, num);
}

int SSL_write(SSL* ssl, const void* buf, int num) {
  static auto next
    = next_symbol<int (*)(SSL*, const void*, int)>("SSL_write");
  ERR_clear_error();
  return next(ssl, buf, num);
}

int SSL_accept(SSL* ssl) {
  static auto next = next_symbol<int (*)(SSL*)>("SSL_accept");
  ERR_clear_error();
  return next(ssl);
}

int SSL_connect(SSL* ssl) {
  static auto next = next_symbol<int (*)(SSL*)>("SSL_connect");
  ERR_clear_error();
  return next(ssl);
}

} // extern "C"

namespace phonon::actors {

namespace {

/// OpenSSL's queued error strings, oldest first; clears the queue.
std::string openssl_errors() {
  std::string result;
  while (auto code = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof(buf));
    if (!result.empty())
      result += "; ";
    result += buf;
  }
  return result.empty() ? "no reason given" : result;
}

/// Password callback that gives none: an encrypted key fails to load
/// instead of OpenSSL asking for its passphrase on the terminal.
int no_passphrase(char*, int, int, void*) {
  return 0;
}

[[noreturn]] void refuse(const char* key, const std::string& path,
                         const char* what) {
  throw config::config_error(std::string{key} + ": " + what + " '" + path
                             + "': " + openssl_errors());
}

/// Warns when the CA of `ctx` does not verify the node's own certificate.
void warn_unless_signed_by_ca(SSL_CTX* ctx,
                              const config::cluster_tls_settings& tls) {
  STACK_OF(X509)* chain = nullptr;
  SSL_CTX_get0_chain_certs(ctx, &chain);
  std::unique_ptr<X509_STORE_CTX, decltype(&X509_STORE_CTX_free)> vctx{
    X509_STORE_CTX_new(), X509_STORE_CTX_free};
  if (!vctx
      || X509_STORE_CTX_init(vctx.get(), SSL_CTX_get_cert_store(ctx),
                             SSL_CTX_get0_certificate(ctx), chain)
           != 1) {
    ERR_clear_error();
    return;
  }
  X509_STORE_CTX_set_purpose(vctx.get(), X509_PURPOSE_ANY);
  if (X509_verify_cert(vctx.get()) != 1)
    log::actors()->warn(
      "cluster.tls.certificate does not verify against cluster.tls.ca, so "
      "every peer will refuse this node certificate={} ca={} reason={}",
      tls.certificate, tls.ca,
      X509_verify_cert_error_string(X509_STORE_CTX_get_error(vctx.get())));
  ERR_clear_error();
}

/// Copies the file at `path` into an anonymous in-memory file (memfd, never
/// closed) and returns a path that opens that copy.
std::string pin_file(const char* key, const std::string& path) {
  // PEM certificates, keys and CA bundles are a few KiB; a large CA
  // bundle stays far below this.
  constexpr std::streamsize max_size = 4 * 1024 * 1024;
  std::ifstream in{path, std::ios::binary};
  if (!in)
    throw config::config_error(std::string{key} + ": cannot read '" + path
                               + "': " + std::strerror(errno));
  std::string bytes;
  bytes.resize(static_cast<size_t>(max_size) + 1);
  in.read(bytes.data(), max_size + 1);
  if (in.bad())
    throw config::config_error(std::string{key} + ": cannot read '" + path
                               + "'");
  bytes.resize(static_cast<size_t>(in.gcount()));
  if (bytes.size() > static_cast<size_t>(max_size))
    throw config::config_error(std::string{key} + ": '" + path
                               + "' is larger than 4 MiB");
  int fd = ::memfd_create("phonon-cluster-tls", MFD_CLOEXEC);
  if (fd < 0)
    throw std::runtime_error(std::string{"memfd_create: "}
                             + std::strerror(errno));
  size_t done = 0;
  while (done < bytes.size()) {
    auto n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      auto why = std::string{std::strerror(errno)};
      ::close(fd);
      throw std::runtime_error("cannot copy " + std::string{key} + ": " + why);
    }
    done += static_cast<size_t>(n);
  }
  return "/proc/self/fd/" + std::to_string(fd);
}

/// check_cluster_tls of `files`, naming `shown` in messages.
void check_files(const config::cluster_tls_settings& files,
                 const config::cluster_tls_settings& shown) {
  ERR_clear_error();
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx{
    SSL_CTX_new(TLS_method()), SSL_CTX_free};
  if (!ctx)
    throw config::config_error("cluster.tls: cannot create an OpenSSL "
                               "context: "
                               + openssl_errors());
  SSL_CTX_set_default_passwd_cb(ctx.get(), no_passphrase);
  // The same calls, in the same order, as caf::openssl::session.
  if (SSL_CTX_use_certificate_chain_file(ctx.get(),
                                         files.certificate.c_str())
      != 1)
    refuse("cluster.tls.certificate", shown.certificate,
           "cannot load the PEM certificate");
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), files.key.c_str(),
                                  SSL_FILETYPE_PEM)
      != 1)
    refuse("cluster.tls.key", shown.key,
           "cannot load the PEM private key (unencrypted, and the one of "
           "cluster.tls.certificate)");
  if (SSL_CTX_check_private_key(ctx.get()) != 1)
    refuse("cluster.tls.key", shown.key,
           "the key does not belong to cluster.tls.certificate");
  if (SSL_CTX_load_verify_locations(ctx.get(), files.ca.c_str(), nullptr)
      != 1)
    refuse("cluster.tls.ca", shown.ca, "cannot load the PEM CA certificates");
  warn_unless_signed_by_ca(ctx.get(), shown);
}

} // namespace

void check_cluster_tls(const config::cluster_tls_settings& tls) {
  if (tls.enabled())
    check_files(tls, tls);
}

void configure(caf::actor_system_config& cfg, const config::settings& s) {
  cfg.add_message_types<caf::id_block::phonon>();
  cfg.add_error_category(phonon_category, render_error);
  cfg.load<caf::io::middleman>();
  if (const auto& tls = s.cluster.tls; tls.enabled()) {
    // CAF's session loads the three files again for every new connection,
    // and throws on its I/O thread when one fails to load: a file moved or
    // half-rewritten while the node runs would let the next stranger who
    // connects abort the process. So CAF gets in-memory copies made now
    // (and checked now); replacing the files takes effect at a restart.
    config::cluster_tls_settings pinned;
    pinned.certificate = pin_file("cluster.tls.certificate", tls.certificate);
    pinned.key = pin_file("cluster.tls.key", tls.key);
    pinned.ca = pin_file("cluster.tls.ca", tls.ca);
    check_files(pinned, tls);
    // With any of these set, CAF's session requires a certificate from the
    // peer on both sides (SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT)
    // and verifies it against the CA file; without them it would fall back
    // to anonymous ECDH, i.e. encryption without authentication. There is
    // no host name check: any certificate the CA signed is a cluster node.
    cfg.load<caf::openssl::manager>();
    cfg.openssl_certificate = pinned.certificate;
    cfg.openssl_key = pinned.key;
    cfg.openssl_cafile = pinned.ca;
  }
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
