#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "http/redirect.hpp"
#include "http/services.hpp"

namespace phonon::http {

/// Listener settings.
struct server_options {
  std::string host = "0.0.0.0";
  /// 0 picks an ephemeral port (tests); start() returns the real one.
  uint16_t port = 8080;
  int threads = 2;
  uint64_t max_upload_size = 10 * 1024 * 1024;
  uint32_t max_header_size = 16 * 1024;
  /// Time to send a whole request head (408 when part of one arrived).
  std::chrono::seconds header_timeout{10};
  /// Most time without a byte while reading a body or writing an answer.
  std::chrono::seconds idle_timeout{30};
  /// Open connections at most; beyond them new ones are closed at once.
  uint64_t max_connections = 10000;
  /// Folder for upload spool files (the blob store's temp folder).
  std::string spool_dir;
  /// server.cors_origins (cors.hpp).
  std::vector<std::string> cors_origins;
  /// server.console: `/` and `/console/*` serve the web console.
  bool console = true;
  /// storage.memory_cache_bytes: bytes of small stored files kept in memory
  /// for all connections (response_cache.hpp); 0 turns the cache off.
  uint64_t memory_cache_bytes = 64ull * 1024 * 1024;
  /// storage.memory_cache_item_max: larger files are never kept in memory;
  /// they (and every file when the cache is off) go out with sendfile(2).
  uint64_t memory_cache_item_max = 1024ull * 1024;
  /// storage.s3.redirect*: GETs of large audio files answered with a 302
  /// to the bucket (redirect.hpp); off when default-made.
  redirect_policy redirect;
};

/// The Beast HTTP server: one listener, one session per connection, all on
/// `threads` io_context threads. Sessions hand requests to the actors and
/// never block waiting for them.
class server {
public:
  server(server_options opts, services svc);
  ~server();

  server(const server&) = delete;
  server& operator=(const server&) = delete;

  /// Binds, starts the io threads and returns the bound port.
  /// @throws std::runtime_error when the address cannot be bound.
  uint16_t start();

  /// Stops accepting, closes every connection and joins the io threads.
  void stop();

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace phonon::http
