#include "http/metrics_listener.hpp"

#include <atomic>
#include <chrono>
#include <optional>
#include <stdexcept>
#include <thread>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "actors/metrics.hpp"
#include "http/auth.hpp"

namespace phonon::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

constexpr const char* exposition_type
  = "text/plain; version=0.0.4; charset=utf-8";

metrics_answer json_error(unsigned status, std::string_view code,
                          std::string_view message) {
  metrics_answer a;
  a.status = status;
  a.content_type = "application/json";
  a.body = "{\"message\":\"" + std::string{message} + "\",\"code\":\""
           + std::string{code} + "\"}";
  return a;
}

/// Largest request head the listener reads.
constexpr uint32_t max_head = 8 * 1024;
/// Largest request body it reads (and drops) before answering.
constexpr uint64_t max_body = 64 * 1024;
/// Time a client has for its request and for reading the answer.
constexpr auto io_limit = std::chrono::seconds{10};
/// Connections open at once at most.
constexpr int max_open = 64;

} // namespace

metrics_answer answer_metrics_request(std::string_view method,
                                      std::string_view target,
                                      std::string_view authorization,
                                      const std::string& token,
                                      const std::function<std::string()>& render) {
  auto path = target.substr(0, target.find('?'));
  if (path != "/metrics" && path != "/healthz")
    return json_error(404, "not_found",
                      "only /metrics and /healthz are served here");
  if (method != "GET" && method != "HEAD") {
    auto a = json_error(405, "method_not_allowed",
                        std::string{path} + " takes GET and HEAD");
    a.allow = "GET, HEAD";
    return a;
  }
  // Liveness of the worker process (a container's HEALTHCHECK), open like
  // a serve node's /healthz: it tells nothing but that the process
  // answers.
  if (path == "/healthz") {
    metrics_answer a;
    a.content_type = "application/json";
    a.body = "{\"status\":\"ok\"}";
    return a;
  }
  if (!token.empty()) {
    auto given = bearer_token(authorization);
    if (!given || !equal_in_constant_time(*given, token)) {
      auto a = json_error(401,
                          authorization.empty() ? "missing_token"
                                                : "invalid_token",
                          "/metrics needs the metrics bearer token");
      a.www_authenticate = "Bearer";
      return a;
    }
  }
  metrics_answer a;
  a.content_type = exposition_type;
  a.body = render();
  return a;
}

namespace {

/// One connection: reads one request, writes the answer, closes.
class metrics_session : public std::enable_shared_from_this<metrics_session> {
public:
  metrics_session(tcp::socket socket, const std::string& token,
                  std::atomic<int>& open)
    : stream_(std::move(socket)), token_(token), open_(open) {
    // nop
  }

  ~metrics_session() {
    open_.fetch_sub(1, std::memory_order_relaxed);
  }

  void run() {
    parser_.header_limit(max_head);
    parser_.body_limit(max_body);
    stream_.expires_after(io_limit);
    bhttp::async_read(stream_, buffer_, parser_,
                      beast::bind_front_handler(&metrics_session::on_read,
                                                shared_from_this()));
  }

private:
  void on_read(beast::error_code ec, size_t) {
    if (ec == bhttp::error::end_of_stream)
      return close();
    metrics_answer a;
    bool head = false;
    if (ec) {
      // Bytes that are not a request we take (too large, garbage):
      // one short answer, then the connection is closed.
      if (ec == beast::error::timeout || ec == net::error::eof
          || ec == net::error::connection_reset)
        return close();
      if (ec == bhttp::error::body_limit)
        a = json_error(413, "payload_too_large", "request body too large");
      else if (ec == bhttp::error::header_limit)
        a = json_error(431, "header_too_large", "request head too large");
      else
        a = json_error(400, "bad_request",
                       "not a request this listener takes");
    } else {
      const auto& req = parser_.get();
      head = req.method() == bhttp::verb::head;
      auto auth_it = req.find(bhttp::field::authorization);
      std::string_view authorization;
      if (auth_it != req.end())
        authorization = {auth_it->value().data(), auth_it->value().size()};
      auto target = req.target();
      auto method = req.method_string();
      a = answer_metrics_request({method.data(), method.size()},
                                 {target.data(), target.size()},
                                 authorization, token_, [] {
                                   return actors::metrics::global().render();
                                 });
    }
    res_.result(a.status);
    res_.version(11);
    res_.set(bhttp::field::content_type, a.content_type);
    if (!a.allow.empty())
      res_.set(bhttp::field::allow, a.allow);
    if (!a.www_authenticate.empty())
      res_.set(bhttp::field::www_authenticate, a.www_authenticate);
    res_.keep_alive(false);
    res_.content_length(a.body.size());
    if (!head)
      res_.body() = std::move(a.body);
    sr_.emplace(res_);
    if (head)
      sr_->split(true);
    stream_.expires_after(io_limit);
    if (head)
      bhttp::async_write_header(
        stream_, *sr_,
        beast::bind_front_handler(&metrics_session::on_write,
                                  shared_from_this()));
    else
      bhttp::async_write(stream_, *sr_,
                         beast::bind_front_handler(&metrics_session::on_write,
                                                   shared_from_this()));
  }

  void on_write(beast::error_code, size_t) {
    close();
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.close();
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_{max_head + max_body};
  // A body (none is expected) is read and dropped, so that closing after
  // the answer does not reset the connection before the client reads it.
  bhttp::request_parser<bhttp::string_body> parser_;
  bhttp::response<bhttp::string_body> res_;
  std::optional<bhttp::response_serializer<bhttp::string_body>> sr_;
  const std::string& token_;
  std::atomic<int>& open_;
};

} // namespace

struct metrics_listener::impl {
  // Sessions refer to `token` and `open`; the io_context destroys the
  // sessions still pending when it dies, so both are declared before it.
  std::string token;
  std::atomic<int> open{0};
  net::io_context ioc{1};
  tcp::acceptor acceptor{ioc};
  std::thread thread;

  void accept() {
    acceptor.async_accept([this](beast::error_code ec, tcp::socket socket) {
      if (ec == net::error::operation_aborted)
        return;
      if (!ec) {
        if (open.fetch_add(1, std::memory_order_relaxed) >= max_open) {
          open.fetch_sub(1, std::memory_order_relaxed);
          beast::error_code ignored;
          socket.close(ignored);
        } else {
          std::make_shared<metrics_session>(std::move(socket), token, open)
            ->run();
        }
      }
      accept();
    });
  }
};

metrics_listener::metrics_listener(const std::string& host, uint16_t port,
                                   std::string token)
  : impl_(std::make_unique<impl>()) {
  impl_->token = std::move(token);
  beast::error_code ec;
  auto address = net::ip::make_address(host, ec);
  if (ec)
    throw std::runtime_error("metrics.host: not an IP address '" + host
                             + "'");
  tcp::endpoint ep{address, port};
  impl_->acceptor.open(ep.protocol(), ec);
  if (!ec)
    impl_->acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec)
    impl_->acceptor.bind(ep, ec);
  if (!ec)
    impl_->acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec)
    throw std::runtime_error("metrics listener: cannot listen on " + host
                             + ":" + std::to_string(port) + ": "
                             + ec.message());
  impl_->accept();
  impl_->thread = std::thread{[this] { impl_->ioc.run(); }};
}

metrics_listener::~metrics_listener() {
  impl_->ioc.stop();
  if (impl_->thread.joinable())
    impl_->thread.join();
}

uint16_t metrics_listener::port() const noexcept {
  return impl_->acceptor.local_endpoint().port();
}

} // namespace phonon::http
