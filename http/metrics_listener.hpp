#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace phonon::http {

/// What the metrics listener answers to one request.
struct metrics_answer {
  unsigned status = 200;
  std::string content_type;
  std::string body;
  /// The Allow field of a 405, else "".
  std::string allow;
  /// The WWW-Authenticate field of a 401, else "".
  std::string www_authenticate;
};

/// Decides the answer of a worker's metrics listener to one request (pure
/// but for calling `render`, which gives the exposition text): GET or HEAD
/// of /metrics (any query string) is 200 with Prometheus text (no body for
/// HEAD: the session drops it); another method on /metrics is 405; any
/// other path is 404. With a non-empty `token` /metrics also needs
/// `Authorization: Bearer <token>` (401 without or with another one).
/// Errors are JSON `{"message", "code"}` as everywhere in Phonon.
metrics_answer answer_metrics_request(std::string_view method,
                                      std::string_view target,
                                      std::string_view authorization,
                                      const std::string& token,
                                      const std::function<std::string()>& render);

/// A minimal HTTP/1.1 listener that serves only the process's metrics
/// (actors::metrics::global()), for `phonon worker`, which has no HTTP
/// server of its own. One io thread; one request per connection (closed
/// after the answer); request heads above 8 KiB (431), bodies above 64 KiB
/// (413) and clients slower than 10 s are refused; at most 64 connections at once (more are
/// closed at once). Beast, as the main server.
class metrics_listener {
public:
  /// Binds `host`:`port` (0: an ephemeral port) and starts serving on its
  /// own thread. Throws std::runtime_error when it cannot bind.
  metrics_listener(const std::string& host, uint16_t port, std::string token);
  /// Stops accepting, closes open connections and joins the thread.
  ~metrics_listener();
  metrics_listener(const metrics_listener&) = delete;
  metrics_listener& operator=(const metrics_listener&) = delete;

  /// The bound port (the real one when 0 was asked for).
  uint16_t port() const noexcept;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace phonon::http
