#pragma once

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include <sys/types.h>

namespace phonon::app {

/// `transcoder.isolate`: the serve node's transcoders run in child
/// `phonon worker` processes joined over loopback, so a decoder crash
/// cannot take the HTTP node down. A child that exits is started again
/// (with a pause, so a crash loop does not spin). Only this object's own
/// thread forks and waits.
///
/// The serve node publishes a port of their own on 127.0.0.1 for them; with
/// `cluster.tls.*` that port is TLS too and the serve node passes its own
/// certificate, key and CA in `extra_args` (`--set cluster.tls...=`), so the
/// children authenticate like any worker (app/serve.cpp).
class child_workers {
public:
  /// Starts `count` children running `phonon worker --join 127.0.0.1:PORT
  /// --workers 1` plus `extra_args`.
  child_workers(int count, uint16_t cluster_port,
                std::vector<std::string> extra_args);

  /// Stops the children (SIGTERM, then SIGKILL) and joins the thread.
  ~child_workers();

  child_workers(const child_workers&) = delete;
  child_workers& operator=(const child_workers&) = delete;

private:
  pid_t spawn_one();
  void watch();

  std::vector<std::string> argv_;
  std::vector<pid_t> pids_;
  std::atomic<bool> stopping_{false};
  std::thread watcher_;
};

} // namespace phonon::app
