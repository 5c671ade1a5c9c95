// Helpers of the cluster tests: `phonon worker` child processes, reading
// /metrics, raw TCP peers of the cluster port and the memory and sockets of
// a process as /proc shows them. (support.hpp has the rest, e.g.
// pick_free_port() for the serve node's published supervisor.)
//
// Everything here is used from the test thread only (metric_value is pure
// and may be called from any thread). Every wait is bounded.

#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tests/integration/support.hpp"

namespace phonon::integration {

/// A `phonon worker --join 127.0.0.1:PORT` child process with its own temp
/// dir (its working dir, so no config/phonon.yaml applies). Its stdout and
/// stderr go to `<dir>/worker.log`.
class worker_process {
public:
  /// Prepares a worker joining 127.0.0.1:`join_port` with `transcoders`
  /// transcoders; `env` is added to (or replaces in) the child's
  /// environment, e.g. {"PHONON_TEST_FAULT", "throw:master"}. The process
  /// is not started yet.
  worker_process(uint16_t join_port, int transcoders, env_list env = {});

  /// Stops the worker (SIGTERM, SIGKILL after 3 s) and removes its dir.
  ~worker_process() = default;

  worker_process(const worker_process&) = delete;
  worker_process& operator=(const worker_process&) = delete;

  /// Starts the process and waits (at most 10 s) for its "worker started"
  /// log line. Throws std::runtime_error with the log tail when it exits or
  /// does not log it in time.
  void start();

  /// Sends SIGTERM and reaps the child (SIGKILL after 3 s). Returns the
  /// wait status, or -1 when no child was running.
  int stop() {
    return child_.stop();
  }

  /// Sends SIGKILL and reaps the child.
  void kill_hard() {
    child_.kill_hard();
  }

  /// True while the child process exists (not yet reaped).
  bool running() {
    return child_.running();
  }

  /// The child's pid (-1 when not running).
  pid_t pid() const noexcept {
    return child_.pid();
  }

  /// The worker's own dir (its working dir); remote jobs keep their files
  /// in `dir()/data/audio/worker-tmp`.
  const std::filesystem::path& dir() const noexcept {
    return dir_.path();
  }

  /// Full text of worker.log.
  std::string log() const {
    return child_.log();
  }

  /// The last `lines` lines of worker.log.
  std::string log_tail(size_t lines = 30) const {
    return child_.log_tail(lines);
  }

private:
  temp_dir dir_;
  child_process child_;
  uint16_t join_port_;
  int transcoders_;
  env_list env_;
};

/// Label name and value pairs of one sample.
using metric_labels = std::vector<std::pair<std::string, std::string>>;

/// The value of the sample `name` whose labels include every pair of
/// `labels`, in Prometheus text `exposition`; std::nullopt when no sample
/// matches. Pure: safe from any thread.
std::optional<double> metric_value(std::string_view exposition,
                                   std::string_view name,
                                   const metric_labels& labels = {});

/// GETs /metrics and returns metric_value of it; std::nullopt when the
/// sample is absent or the request failed.
std::optional<double> scrape(uint16_t port, std::string_view name,
                             const metric_labels& labels = {});

/// Like scrape, with 0 for an absent sample (counters and gauges appear
/// on first use).
double scrape_or_zero(uint16_t port, std::string_view name,
                      const metric_labels& labels = {});

/// Polls `pred` every 50 ms until it returns true or `limit` passed;
/// returns the last result.
bool wait_for(const std::function<bool()>& pred,
              std::chrono::milliseconds limit);

/// Polls /metrics until the sample equals `expected` (absent counts as 0)
/// or `limit` passed; returns whether it did.
bool wait_for_metric(uint16_t port, std::string_view name,
                     const metric_labels& labels, double expected,
                     std::chrono::milliseconds limit);

// -- raw peers of the cluster port --------------------------------------------

/// A plain TCP connection to 127.0.0.1:port that writes whatever it is
/// given (no protocol): a stranger on the cluster port. Closed when the
/// object dies.
class raw_tcp_peer {
public:
  /// Connects; throws std::runtime_error when it cannot.
  explicit raw_tcp_peer(uint16_t port);

  ~raw_tcp_peer();

  raw_tcp_peer(const raw_tcp_peer&) = delete;
  raw_tcp_peer& operator=(const raw_tcp_peer&) = delete;

  /// Writes `bytes` (blocking, SIGPIPE suppressed) until all are written,
  /// the peer closes or resets, or `limit` passed; returns the bytes
  /// written.
  size_t send(std::string_view bytes, std::chrono::milliseconds limit
                                      = std::chrono::milliseconds{5000});

  /// Reads until the peer closes (EOF or reset) or `limit` passed. Returns
  /// everything that arrived; closed() tells which of the two happened.
  std::string read_until_closed(std::chrono::milliseconds limit);

  /// True once read_until_closed saw EOF or a reset.
  bool closed() const noexcept {
    return closed_;
  }

private:
  int fd_ = -1;
  bool closed_ = false;
};

/// A BASP header (CAF 0.17, 32 bytes, network byte order) of a
/// client_handshake declaring a payload of `payload_len` bytes: what the
/// cluster port's BASP broker reads first on a new connection.
std::string basp_client_handshake_header(uint32_t payload_len);

// -- /proc ----------------------------------------------------------------------

/// Resident memory of a process in KiB, from /proc/<pid>/status.
struct memory_usage {
  /// VmRSS: resident now.
  uint64_t rss_kib = 0;
  /// VmHWM: peak resident size (since start or reset_peak_rss).
  uint64_t hwm_kib = 0;
};

/// VmRSS and VmHWM of `pid`; std::nullopt when the process is gone.
std::optional<memory_usage> process_memory(pid_t pid);

/// Resets VmHWM of `pid` to its current RSS (writes 5 to
/// /proc/<pid>/clear_refs); false when the kernel refused.
bool reset_peak_rss(pid_t pid);

/// The addresses (e.g. "127.0.0.1", "0.0.0.0", "::") of the TCP sockets
/// listening on `port`, from /proc/net/tcp and /proc/net/tcp6.
std::vector<std::string> listen_addresses(uint16_t port);

/// The pid of the process holding a TCP socket that listens on `port`
/// (/proc/net/tcp* and /proc/<pid>/fd); -1 when none is found.
pid_t listener_pid(uint16_t port);

} // namespace phonon::integration
