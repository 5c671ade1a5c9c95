#pragma once

// A raw HTTP client for hostile tests: it speaks bytes, not HTTP, so tests
// can send what a well-behaved client library would refuse to send, read
// answers byte by byte, stall, or reset. Used by hostile_http_test.cpp and
// wire_hostile_test.cpp.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace phonon::integration {

/// What the raw client read back: one response, or nothing.
struct raw_response {
  unsigned status = 0;
  std::string head;
  std::string body;

  std::string header(std::string_view name) const {
    auto lower = [](std::string s) {
      for (auto& c : s)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      return s;
    };
    auto text = lower(head);
    auto key = "\r\n" + lower(std::string{name}) + ":";
    auto pos = text.find(key);
    if (pos == std::string::npos)
      return {};
    pos += key.size();
    auto end = text.find("\r\n", pos);
    auto value = head.substr(pos, end - pos);
    while (!value.empty() && value.front() == ' ')
      value.erase(0, 1);
    return value;
  }

  nlohmann::json json() const {
    return nlohmann::json::parse(body, nullptr, false);
  }
};

/// A blocking TCP client socket to 127.0.0.1 that never raises SIGPIPE.
class raw_conn {
public:
  /// Connects; `rcvbuf` > 0 shrinks the receive buffer first (slow
  /// readers). Throws std::runtime_error when it cannot connect.
  explicit raw_conn(uint16_t port, int rcvbuf = 0) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd_ < 0)
      throw std::runtime_error("socket: " + std::string{std::strerror(errno)});
    if (rcvbuf > 0)
      ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr))
        != 0) {
      auto why = std::string{std::strerror(errno)};
      ::close(fd_);
      throw std::runtime_error("connect: " + why);
    }
  }

  ~raw_conn() {
    close();
  }

  raw_conn(const raw_conn&) = delete;
  raw_conn& operator=(const raw_conn&) = delete;

  void close() {
    if (fd_ >= 0)
      ::close(fd_);
    fd_ = -1;
  }

  /// Sends everything; false when the peer closed or reset (a server that
  /// refuses a body may stop reading it).
  bool send_all(std::string_view bytes) {
    while (!bytes.empty()) {
      pollfd p{fd_, POLLOUT, 0};
      if (::poll(&p, 1, 10000) <= 0)
        return false;
      auto n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0)
        return false;
      bytes.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  /// Reads at most `max` bytes, waiting up to `limit`; "" on EOF, error
  /// or timeout (eof() tells which).
  std::string read_some(std::chrono::milliseconds limit, size_t max = 64 * 1024) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(limit.count())) <= 0)
      return {};
    std::string buf(max, '\0');
    auto n = ::recv(fd_, buf.data(), buf.size(), 0);
    if (n <= 0) {
      eof_ = true;
      return {};
    }
    buf.resize(static_cast<size_t>(n));
    return buf;
  }

  /// Reads one response (head + Content-Length body) within `limit`;
  /// nullopt when the connection closed or timed out before a whole one.
  std::optional<raw_response> read_response(std::chrono::milliseconds limit
                                            = std::chrono::milliseconds{10000}) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    auto left = [&] {
      return std::chrono::duration_cast<std::chrono::milliseconds>(deadline
                                                      - std::chrono::steady_clock::now());
    };
    size_t head_end;
    while ((head_end = pending_.find("\r\n\r\n")) == std::string::npos) {
      if (left().count() <= 0 || eof_)
        return std::nullopt;
      auto more = read_some(left());
      if (more.empty() && !eof_ && left().count() <= 0)
        return std::nullopt;
      pending_ += more;
    }
    raw_response res;
    res.head = pending_.substr(0, head_end + 2);
    if (res.head.size() < 12 || res.head.rfind("HTTP/1.", 0) != 0)
      return std::nullopt;
    res.status = static_cast<unsigned>(std::stoul(res.head.substr(9, 3)));
    size_t length = 0;
    if (auto cl = res.header("Content-Length"); !cl.empty())
      length = std::stoul(cl);
    while (pending_.size() < head_end + 4 + length) {
      if (left().count() <= 0 || eof_)
        return std::nullopt;
      pending_ += read_some(left());
    }
    res.body = pending_.substr(head_end + 4, length);
    pending_.erase(0, head_end + 4 + length);
    return res;
  }

  /// True when the peer closes (EOF or reset) within `limit` without
  /// sending anything more.
  bool closed_by_peer(std::chrono::milliseconds limit = std::chrono::milliseconds{3000}) {
    if (!pending_.empty())
      return false;
    if (eof_)
      return true;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(limit.count())) <= 0)
      return false;
    char byte;
    auto n = ::recv(fd_, &byte, 1, 0);
    return n == 0 || (n < 0 && errno == ECONNRESET);
  }

  int fd() const noexcept {
    return fd_;
  }

  /// True once a read met the end of the stream (or a reset).
  bool eof() const noexcept {
    return eof_;
  }

  /// Aborts the connection with a reset (SO_LINGER 0) instead of a FIN.
  void reset() {
    linger lg{1, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close();
  }

private:
  int fd_ = -1;
  bool eof_ = false;
  std::string pending_;
};

} // namespace phonon::integration
