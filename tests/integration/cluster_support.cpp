#include "tests/integration/cluster_support.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace phonon::integration {

namespace {

using clock_type = std::chrono::steady_clock;

void sleep_ms(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds{ms});
}

} // namespace

// -- worker_process -----------------------------------------------------------

worker_process::worker_process(uint16_t join_port, int transcoders,
                               env_list env)
  : dir_("phonon-it-worker"),
    child_("phonon worker", dir_.path(), dir_ / "worker.log",
           std::chrono::seconds{3}, 15),
    join_port_(join_port),
    transcoders_(transcoders),
    env_(std::move(env)) {}

void worker_process::start() {
  if (child_.pid() > 0)
    throw std::runtime_error("worker_process::start: already running");
  // The working dir is the worker's own: no config/phonon.yaml applies.
  child_.spawn({phonon_binary(), "worker", "--join",
                "127.0.0.1:" + std::to_string(join_port_), "--workers",
                std::to_string(transcoders_)},
               env_);
  child_.await_log(
    [](const std::string& text) {
      return text.find("worker started") != std::string::npos;
    },
    "start", std::chrono::seconds{10}, 30);
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

// -- raw peers of the cluster port ----------------------------------------------

namespace {

/// Milliseconds left until `deadline` (0 when passed), for poll().
int ms_left(clock_type::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
    deadline - clock_type::now());
  return static_cast<int>(std::max<int64_t>(0, left.count()));
}

} // namespace

raw_tcp_peer::raw_tcp_peer(uint16_t port) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0)
    throw std::runtime_error("socket failed: "
                             + std::string{std::strerror(errno)});
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    auto why = std::string{std::strerror(errno)};
    ::close(fd_);
    fd_ = -1;
    throw std::runtime_error("cannot connect to 127.0.0.1:"
                             + std::to_string(port) + ": " + why);
  }
}

raw_tcp_peer::~raw_tcp_peer() {
  if (fd_ >= 0)
    ::close(fd_);
}

size_t raw_tcp_peer::send(std::string_view bytes,
                          std::chrono::milliseconds limit) {
  auto deadline = clock_type::now() + limit;
  size_t sent = 0;
  while (sent < bytes.size()) {
    pollfd p{fd_, POLLOUT, 0};
    if (::poll(&p, 1, ms_left(deadline)) <= 0)
      break;
    auto n = ::send(fd_, bytes.data() + sent, bytes.size() - sent,
                    MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        continue;
      break; // EPIPE, ECONNRESET: the peer is gone
    }
    sent += static_cast<size_t>(n);
  }
  return sent;
}

std::string raw_tcp_peer::read_until_closed(std::chrono::milliseconds limit) {
  auto deadline = clock_type::now() + limit;
  std::string received;
  char buf[4096];
  while (!closed_) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, ms_left(deadline)) <= 0)
      break;
    auto n = ::recv(fd_, buf, sizeof(buf), MSG_DONTWAIT);
    if (n > 0) {
      received.append(buf, static_cast<size_t>(n));
    } else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK
                          && errno != EINTR)) {
      closed_ = true;
    }
  }
  return received;
}

std::string basp_client_handshake_header(uint32_t payload_len) {
  // operation, two padding bytes, flags, payload_len, operation_data,
  // source_actor, dest_actor (libcaf_io/caf/io/basp/header.hpp). A
  // client_handshake is valid with both actor ids 0, whatever its size.
  std::string hdr(32, '\0');
  hdr[0] = 0x01;
  for (int i = 0; i < 4; ++i)
    hdr[4 + i] = static_cast<char>((payload_len >> (24 - 8 * i)) & 0xFF);
  return hdr;
}

// -- /proc ----------------------------------------------------------------------

std::optional<memory_usage> process_memory(pid_t pid) {
  std::ifstream in{"/proc/" + std::to_string(pid) + "/status"};
  if (!in)
    return std::nullopt;
  memory_usage result;
  bool rss = false;
  bool hwm = false;
  std::string line;
  while (std::getline(in, line)) {
    auto value = [&] {
      return std::stoull(line.substr(line.find(':') + 1));
    };
    if (line.rfind("VmRSS:", 0) == 0) {
      result.rss_kib = value();
      rss = true;
    } else if (line.rfind("VmHWM:", 0) == 0) {
      result.hwm_kib = value();
      hwm = true;
    }
  }
  if (!rss || !hwm)
    return std::nullopt;
  return result;
}

bool reset_peak_rss(pid_t pid) {
  std::ofstream out{"/proc/" + std::to_string(pid) + "/clear_refs"};
  out << "5";
  out.flush();
  return static_cast<bool>(out);
}

namespace {

/// A listening socket from /proc/net/tcp or tcp6.
struct listen_entry {
  std::string address;
  std::string inode;
};

/// The sockets in state LISTEN (0A) on `port` from one /proc/net file.
void read_listeners(const char* file, bool v6, uint16_t port,
                    std::vector<listen_entry>& out) {
  std::ifstream in{file};
  std::string line;
  std::getline(in, line); // the column titles
  while (std::getline(in, line)) {
    std::istringstream fields{line};
    std::string sl, local, remote, state, queues, timer, retr, uid, timeout,
      inode;
    if (!(fields >> sl >> local >> remote >> state >> queues >> timer >> retr
          >> uid >> timeout >> inode))
      continue;
    auto colon = local.find(':');
    if (state != "0A" || colon == std::string::npos
        || std::stoul(local.substr(colon + 1), nullptr, 16) != port)
      continue;
    // Each 32-bit word is printed as a host-order number.
    auto hex = local.substr(0, colon);
    unsigned char bytes[16] = {};
    size_t words = v6 ? 4 : 1;
    if (hex.size() != words * 8)
      continue;
    for (size_t w = 0; w < words; ++w) {
      auto word = static_cast<uint32_t>(
        std::stoul(hex.substr(w * 8, 8), nullptr, 16));
      std::memcpy(bytes + 4 * w, &word, 4);
    }
    char text[INET6_ADDRSTRLEN] = {};
    if (::inet_ntop(v6 ? AF_INET6 : AF_INET, bytes, text, sizeof(text))
        == nullptr)
      continue;
    out.push_back({text, inode});
  }
}

std::vector<listen_entry> listeners(uint16_t port) {
  std::vector<listen_entry> result;
  read_listeners("/proc/net/tcp", false, port, result);
  read_listeners("/proc/net/tcp6", true, port, result);
  return result;
}

} // namespace

std::vector<std::string> listen_addresses(uint16_t port) {
  std::vector<std::string> result;
  for (auto& entry : listeners(port))
    result.push_back(entry.address);
  return result;
}

pid_t listener_pid(uint16_t port) {
  namespace fs = std::filesystem;
  std::vector<std::string> wanted;
  for (auto& entry : listeners(port))
    wanted.push_back("socket:[" + entry.inode + "]");
  if (wanted.empty())
    return -1;
  std::error_code ec;
  for (fs::directory_iterator proc{"/proc", ec}, end; !ec && proc != end;
       proc.increment(ec)) {
    auto name = proc->path().filename().string();
    if (name.empty()
        || !std::all_of(name.begin(), name.end(),
                        [](char c) { return c >= '0' && c <= '9'; }))
      continue;
    std::error_code fd_ec;
    for (fs::directory_iterator fd{proc->path() / "fd", fd_ec}, fd_end;
         !fd_ec && fd != fd_end; fd.increment(fd_ec)) {
      std::error_code link_ec;
      auto target = fs::read_symlink(fd->path(), link_ec).string();
      if (!link_ec
          && std::find(wanted.begin(), wanted.end(), target) != wanted.end())
        return static_cast<pid_t>(std::stol(name));
    }
  }
  return -1;
}

} // namespace phonon::integration
