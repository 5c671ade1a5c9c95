// An s3rver child process for the S3 tests (tests/integration/s3_*_test.cpp):
// @20minutes/s3rver (npm, pinned in package-lock.json) on 127.0.0.1, a free
// port, its own data folder and one bucket. Used from the test thread only.

#pragma once

#include <cstdint>
#include <string>

#include "tests/integration/support.hpp"

namespace phonon::integration {

/// s3rver's only key pair (lib/models/account.js): access key and secret.
inline constexpr const char* s3rver_key = "S3RVER";

/// The bucket every s3rver is started with.
inline constexpr const char* s3rver_bucket = "phonon";

/// An s3rver child with the bucket "phonon", stopped (SIGTERM) when the
/// object dies. Runs scripts/npm-ci.sh first (a no-op when node_modules is
/// current); throws std::runtime_error when node or the server fails.
/// Path-style requests only (README.md, "S3": s3rver checks virtual-host
/// signatures against the wrong resource).
class s3rver {
public:
  s3rver();

  s3rver(const s3rver&) = delete;
  s3rver& operator=(const s3rver&) = delete;

  uint16_t port() const noexcept {
    return port_;
  }

  /// The Host header value of path-style requests, which is signed.
  std::string host() const {
    return "127.0.0.1:" + std::to_string(port_);
  }

  /// "http://127.0.0.1:<port>".
  std::string origin() const {
    return "http://" + host();
  }

  /// The server's pid (-1 when not running), e.g. to SIGSTOP it: a bucket
  /// that hangs rather than refuses.
  pid_t pid() const noexcept {
    return child_.pid();
  }

  /// Stops the server (SIGTERM); the port is then closed.
  void stop() {
    child_.stop();
  }

  /// Starts the stopped server again on the same port and data folder
  /// (the objects stored before are there again); waits until it listens.
  void start_again();

private:
  /// Spawns node on port_ (0 the first time) and waits for the listening
  /// line, then reads the port back.
  void launch();

  std::string node_;
  temp_dir dir_;
  child_process child_;
  uint16_t port_ = 0;
};

} // namespace phonon::integration
