#include "tests/integration/cluster_support.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iostream>
#include <stdexcept>
#include <thread>

// Listeners need Catch's reporter interfaces outside the main file.
#define CATCH_CONFIG_EXTERNAL_INTERFACES
#include <catch2/catch.hpp>

extern char** environ;

namespace phonon::integration {

namespace {

using clock_type = std::chrono::steady_clock;

void sleep_ms(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds{ms});
}

std::string tail_of(const std::string& text, size_t lines) {
  size_t pos = text.size();
  size_t seen = 0;
  while (pos > 0) {
    auto nl = text.rfind('\n', pos - 1);
    if (nl == std::string::npos)
      return text;
    if (nl + 1 < text.size() && ++seen > lines)
      return text.substr(nl + 1);
    pos = nl;
  }
  return text;
}

/// Workers alive right now, so that a failing assertion can show their
/// logs (the harness shows the serve node's).
std::vector<const worker_process*>& live_workers() {
  static std::vector<const worker_process*> result;
  return result;
}

/// Prints the log tail of every live worker once per test case, at the
/// first failed assertion.
class worker_log_listener : public Catch::TestEventListenerBase {
public:
  using TestEventListenerBase::TestEventListenerBase;

  void testCaseStarting(const Catch::TestCaseInfo& info) override {
    TestEventListenerBase::testCaseStarting(info);
    printed_ = false;
  }

  bool assertionEnded(const Catch::AssertionStats& stats) override {
    if (!printed_ && !stats.assertionResult.isOk()
        && !live_workers().empty()) {
      printed_ = true;
      for (auto* w : live_workers())
        std::cerr << "---- phonon worker log tail (pid " << w->pid()
                  << ") ----\n"
                  << w->log_tail(15) << "---- end of worker log ----\n";
    }
    return TestEventListenerBase::assertionEnded(stats);
  }

private:
  bool printed_ = false;
};

CATCH_REGISTER_LISTENER(worker_log_listener)

/// Reaps `pid` within `limit`; SIGKILLs and reaps it after that. Returns
/// the wait status.
int reap(pid_t pid, std::chrono::milliseconds limit) {
  int status = 0;
  auto deadline = clock_type::now() + limit;
  while (clock_type::now() < deadline) {
    auto r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid)
      return status;
    if (r < 0)
      return -1;
    sleep_ms(10);
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
  return status;
}

} // namespace

uint16_t pick_free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    throw std::runtime_error("socket failed: "
                             + std::string{std::strerror(errno)});
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0
      || ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    auto why = std::string{std::strerror(errno)};
    ::close(fd);
    throw std::runtime_error("cannot bind 127.0.0.1:0: " + why);
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

// -- worker_process -----------------------------------------------------------

worker_process::worker_process(
  uint16_t join_port, int transcoders,
  std::vector<std::pair<std::string, std::string>> env)
  : dir_("phonon-it-worker"),
    join_port_(join_port),
    transcoders_(transcoders),
    env_(std::move(env)) {
  live_workers().push_back(this);
}

worker_process::~worker_process() {
  if (pid_ > 0)
    stop();
  auto& v = live_workers();
  v.erase(std::remove(v.begin(), v.end(), this), v.end());
}

void worker_process::start() {
  if (pid_ > 0)
    throw std::runtime_error("worker_process::start: already running");
  auto bin = phonon_binary();
  auto log_path = dir_ / "worker.log";
  std::vector<std::string> argv_text{
    bin,           "worker",
    "--join",      "127.0.0.1:" + std::to_string(join_port_),
    "--workers",   std::to_string(transcoders_),
  };
  std::vector<char*> argv;
  for (auto& a : argv_text)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  // The environment is built before fork: the child may only make
  // async-signal-safe calls.
  std::vector<std::string> env_text;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view entry{*e};
    auto replaced = std::any_of(env_.begin(), env_.end(), [&](auto& kv) {
      return entry.substr(0, kv.first.size() + 1) == kv.first + "=";
    });
    if (!replaced)
      env_text.emplace_back(entry);
  }
  for (auto& [k, v] : env_)
    env_text.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& e : env_text)
    envp.push_back(e.data());
  envp.push_back(nullptr);
  int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (log_fd < 0)
    throw std::runtime_error("cannot open " + log_path.string());
  int null_fd = ::open("/dev/null", O_RDONLY);
  auto dir_text = dir_.path().string();
  pid_t pid = ::fork();
  if (pid == 0) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    if (null_fd >= 0)
      ::dup2(null_fd, 0);
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    if (::chdir(dir_text.c_str()) != 0)
      ::_exit(126);
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  ::close(log_fd);
  if (null_fd >= 0)
    ::close(null_fd);
  if (pid < 0)
    throw std::runtime_error("fork failed: "
                             + std::string{std::strerror(errno)});
  pid_ = pid;
  auto deadline = clock_type::now() + std::chrono::seconds{10};
  while (clock_type::now() < deadline) {
    if (log().find("worker started") != std::string::npos)
      return;
    if (!running())
      throw std::runtime_error("phonon worker exited during startup; log:\n"
                               + log_tail());
    sleep_ms(20);
  }
  kill_hard();
  throw std::runtime_error("phonon worker did not start within 10 s; log:\n"
                           + log_tail());
}

int worker_process::stop() {
  if (pid_ <= 0)
    return -1;
  ::kill(pid_, SIGTERM);
  auto status = reap(pid_, std::chrono::seconds{3});
  pid_ = -1;
  return status;
}

void worker_process::kill_hard() {
  if (pid_ <= 0)
    return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
}

bool worker_process::running() {
  if (pid_ <= 0)
    return false;
  int status = 0;
  auto r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_ || (r < 0 && errno == ECHILD)) {
    pid_ = -1;
    return false;
  }
  return true;
}

std::string worker_process::log() const {
  try {
    return read_file(dir_ / "worker.log");
  } catch (const std::exception&) {
    return {};
  }
}

std::string worker_process::log_tail(size_t lines) const {
  return tail_of(log(), lines);
}

// -- metrics ------------------------------------------------------------------

std::optional<double> metric_value(std::string_view exposition,
                                   std::string_view name,
                                   const metric_labels& labels) {
  size_t pos = 0;
  while (pos < exposition.size()) {
    auto nl = exposition.find('\n', pos);
    auto line = exposition.substr(pos, nl == std::string_view::npos
                                         ? std::string_view::npos
                                         : nl - pos);
    pos = nl == std::string_view::npos ? exposition.size() : nl + 1;
    if (line.empty() || line.front() == '#')
      continue;
    auto name_end = line.find_first_of("{ ");
    if (name_end == std::string_view::npos || line.substr(0, name_end) != name)
      continue;
    // The label set, e.g. {kind="remote",format="m4a"}.
    metric_labels have;
    auto rest = line.substr(name_end);
    if (rest.front() == '{') {
      auto close = rest.find('}');
      if (close == std::string_view::npos)
        continue;
      auto body = rest.substr(1, close - 1);
      rest = rest.substr(close + 1);
      while (!body.empty()) {
        auto eq = body.find("=\"");
        if (eq == std::string_view::npos)
          break;
        auto end = body.find('"', eq + 2);
        if (end == std::string_view::npos)
          break;
        have.emplace_back(std::string{body.substr(0, eq)},
                          std::string{body.substr(eq + 2, end - eq - 2)});
        body = body.substr(end + 1);
        if (!body.empty() && body.front() == ',')
          body.remove_prefix(1);
      }
    }
    auto all = std::all_of(labels.begin(), labels.end(), [&](auto& want) {
      return std::find(have.begin(), have.end(), want) != have.end();
    });
    if (!all)
      continue;
    auto value = std::string{rest};
    try {
      return std::stod(value);
    } catch (const std::exception&) {
      return std::nullopt;
    }
  }
  return std::nullopt;
}

std::optional<double> scrape(uint16_t port, std::string_view name,
                             const metric_labels& labels) {
  try {
    auto res = http_get(port, "/metrics");
    if (res.status != 200)
      return std::nullopt;
    return metric_value(res.body, name, labels);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

double scrape_or_zero(uint16_t port, std::string_view name,
                      const metric_labels& labels) {
  return scrape(port, name, labels).value_or(0);
}

bool wait_for(const std::function<bool()>& pred,
              std::chrono::milliseconds limit) {
  auto deadline = clock_type::now() + limit;
  for (;;) {
    if (pred())
      return true;
    if (clock_type::now() >= deadline)
      return false;
    sleep_ms(50);
  }
}

bool wait_for_metric(uint16_t port, std::string_view name,
                     const metric_labels& labels, double expected,
                     std::chrono::milliseconds limit) {
  return wait_for(
    [&] {
      try {
        auto res = http_get(port, "/metrics");
        return res.status == 200
               && metric_value(res.body, name, labels).value_or(0)
                    == expected;
      } catch (const std::exception&) {
        return false;
      }
    },
    limit);
}

} // namespace phonon::integration
