#include "app/child_workers.hpp"

#include <cerrno>
#include <cstring>
#include <chrono>
#include <csignal>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include "actors/log.hpp"

extern char** environ;

namespace phonon::app {

namespace {

std::string self_exe() {
  char buf[4096];
  auto n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0)
    return "phonon";
  buf[n] = '\0';
  return buf;
}

} // namespace

child_workers::child_workers(int count, uint16_t cluster_port,
                             std::vector<std::string> extra_args) {
  argv_ = {self_exe(), "worker", "--join",
           "127.0.0.1:" + std::to_string(cluster_port), "--workers", "1"};
  argv_.insert(argv_.end(), extra_args.begin(), extra_args.end());
  for (int i = 0; i < count; ++i)
    pids_.push_back(spawn_one());
  watcher_ = std::thread{[this] { watch(); }};
}

child_workers::~child_workers() {
  stopping_ = true;
  for (auto pid : pids_)
    if (pid > 0)
      ::kill(pid, SIGTERM);
  watcher_.join();
}

pid_t child_workers::spawn_one() {
  std::vector<char*> args;
  for (auto& a : argv_)
    args.push_back(a.data());
  args.push_back(nullptr);
  // The child must not inherit the blocked SIGINT/SIGTERM mask.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, args[0], nullptr, &attr, args.data(), environ);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    log::actors()->error("cannot start isolated transcoder error={}",
                         std::strerror(rc));
    return -1;
  }
  log::actors()->info("isolated transcoder started pid={}", pid);
  return pid;
}

void child_workers::watch() {
  using namespace std::chrono_literals;
  auto deadline = std::chrono::steady_clock::time_point::max();
  while (true) {
    bool any = false;
    for (auto& pid : pids_) {
      if (pid <= 0) {
        if (!stopping_)
          pid = spawn_one();
        continue;
      }
      any = true;
      int status = 0;
      auto rc = ::waitpid(pid, &status, WNOHANG);
      if (rc == pid) {
        if (!stopping_)
          log::actors()->warn("isolated transcoder exited pid={} status={}; "
                              "restarting",
                              pid, status);
        pid = stopping_ ? 0 : spawn_one();
      }
    }
    if (stopping_) {
      if (!any)
        return;
      if (deadline == std::chrono::steady_clock::time_point::max())
        deadline = std::chrono::steady_clock::now() + 5s;
      if (std::chrono::steady_clock::now() > deadline)
        for (auto pid : pids_)
          if (pid > 0)
            ::kill(pid, SIGKILL);
    }
    std::this_thread::sleep_for(stopping_ ? 20ms : 200ms);
  }
}

} // namespace phonon::app
