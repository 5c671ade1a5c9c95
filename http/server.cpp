// The HTTP side: Beast's listener/session skeleton (as in Beast's advanced
// server example) with the requests handed to actors. A session serves one
// request at a time: it reads the next request only after the answer to the
// previous one is written, so pipelined requests queue in its read buffer.

#include "http/server.hpp"

#include <atomic>
#include <chrono>
#include <limits>
#include <optional>
#include <thread>
#include <vector>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "actors/log.hpp"
#include "actors/metrics.hpp"
#include "http/bodies.hpp"
#include "http/file_plan.hpp"
#include "http/handlers.hpp"
#include "http/multipart.hpp"
#include "http/router.hpp"
#include "http/status_map.hpp"

namespace phonon::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
using tcp = boost::asio::ip::tcp;

namespace {

/// Extra bytes a multipart body may carry around the file part (framing,
/// other small fields) on top of server.max_upload_size.
constexpr uint64_t multipart_allowance = 64 * 1024;

/// Body limit of requests that carry no upload.
constexpr uint64_t small_body_limit = 64 * 1024;

/// Bytes a lingering close reads and discards at most.
constexpr uint64_t linger_limit = 64ull * 1024 * 1024;

std::atomic<uint64_t> request_counter{0};

void describe_metrics() {
  auto& m = actors::metrics::global();
  m.describe("phonon_http_requests_total", "counter",
             "HTTP requests by route, method and status.");
  m.describe("phonon_http_request_duration_seconds", "histogram",
             "HTTP request latency in seconds by route and status.",
             {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
              1, 2.5, 5, 10});
  m.describe("phonon_http_response_bytes_total", "counter",
             "Bytes written in HTTP responses.");
}

/// Per-server state shared by the listener and every session.
struct context {
  server_options opts;
  services svc;
};

class session : public std::enable_shared_from_this<session> {
public:
  session(tcp::socket&& socket, std::shared_ptr<const context> ctx)
    : stream_(std::move(socket)), ctx_(std::move(ctx)) {
    // nop
  }

  void run() {
    net::dispatch(stream_.get_executor(),
                  beast::bind_front_handler(&session::do_read,
                                            shared_from_this()));
  }

  /// Called from any thread (CAF workers included) with the answer.
  void respond(reply r) {
    net::post(stream_.get_executor(),
              [self = shared_from_this(), r = std::move(r)]() mutable {
                self->write(std::move(r));
              });
  }

private:
  // -- reading ---------------------------------------------------------------

  void do_read() {
    head_.emplace();
    head_->header_limit(ctx_->opts.max_header_size);
    // The real body limit is set once the route is known; the head parser
    // would otherwise refuse a large Content-Length with its 1 MiB default.
    head_->body_limit(std::numeric_limits<std::uint64_t>::max());
    upload_.reset();
    small_.reset();
    sink_.reset();
    stream_.expires_after(ctx_->opts.request_timeout);
    bhttp::async_read_header(stream_, buffer_, *head_,
                             beast::bind_front_handler(&session::on_header,
                                                       shared_from_this()));
  }

  void on_header(beast::error_code ec, std::size_t) {
    if (ec == bhttp::error::end_of_stream || ec == net::error::eof
        || ec == net::error::operation_aborted
        || ec == beast::error::timeout || ec == net::error::connection_reset)
      return do_close();
    started_ = std::chrono::steady_clock::now();
    req_id_ = ++request_counter;
    if (ec) {
      method_ = "-";
      target_ = "-";
      route_name_ = "invalid";
      version_ = 11;
      keep_alive_ = false;
      head_only_ = false;
      auto status = ec == bhttp::error::header_limit ? 431u : 400u;
      auto r = error_reply(status,
                           status == 431 ? "request header fields too large"
                                         : "malformed HTTP request",
                           "bad_request");
      r.close = true;
      return write(std::move(r));
    }
    auto& req = head_->get();
    method_ = std::string{req.method_string()};
    target_ = std::string{req.target()};
    version_ = req.version();
    keep_alive_ = req.keep_alive();
    head_only_ = req.method() == bhttp::verb::head;
    range_ = std::string{req[bhttp::field::range]};
    if_none_match_ = std::string{req[bhttp::field::if_none_match]};
    if_modified_since_ = std::string{req[bhttp::field::if_modified_since]};
    if_range_ = std::string{req[bhttp::field::if_range]};
    auto [path, query] = split_target(target_);
    query_ = std::string{query};
    route_ = match_route(path);
    route_name_ = route_.name;
    std::optional<reply> early;
    if (target_.empty() || target_.front() != '/') {
      early = error_reply(400, "bad request target", "bad_request");
    } else if (route_.kind == route_kind::not_found) {
      early = error_reply(404, "not found", "not_found");
    } else if (!allows(route_, method_)) {
      early = error_reply(405, "method not allowed", "method_not_allowed");
      early->headers.emplace_back("Allow", route_.allow);
    } else if (route_.kind == route_kind::bad_id) {
      early = error_reply(400,
                          "user_id and phrase_id must be positive decimal "
                          "integers",
                          "bad_id");
    }
    if (!early && route_.kind == route_kind::recording
        && (req.method() == bhttp::verb::post
            || req.method() == bhttp::verb::put))
      return begin_upload();
    read_small_body(std::move(early));
  }

  /// Reads (and ignores) the body of a request that carries no upload.
  void read_small_body(std::optional<reply> early) {
    small_.emplace(std::move(*head_));
    small_->body_limit(small_body_limit);
    bhttp::async_read(
      stream_, buffer_, *small_,
      [self = shared_from_this(),
       early = std::move(early)](beast::error_code ec, std::size_t) mutable {
        self->stream_.expires_never();
        if (ec == bhttp::error::body_limit) {
          auto r = error_reply(413, "request body too large", "too_large");
          r.close = true;
          return self->write(std::move(r));
        }
        if (ec)
          return self->do_close();
        if (early)
          return self->write(std::move(*early));
        self->dispatch_request(std::nullopt);
      });
  }

  void begin_upload() {
    auto& req = head_->get();
    const auto& opts = ctx_->opts;
    auto boundary = std::optional<std::string>{};
    auto content_type = req[bhttp::field::content_type];
    bool multipart = content_type.size() >= 10
                     && beast::iequals(content_type.substr(0, 10),
                                       "multipart/");
    if (multipart) {
      boundary = multipart_boundary(
        std::string_view{content_type.data(), content_type.size()});
      if (!boundary) {
        auto r = error_reply(400,
                             "multipart/form-data needs a boundary parameter",
                             "bad_multipart");
        r.close = true;
        return write(std::move(r));
      }
    }
    uint64_t limit = opts.max_upload_size
                     + (multipart ? multipart_allowance : 0);
    if (auto n = head_->content_length(); n && *n > limit) {
      // Refused before a byte of the body is read.
      auto r = error_reply(413,
                           "upload is larger than the allowed maximum of "
                             + std::to_string(opts.max_upload_size)
                             + " bytes",
                           "too_large");
      r.close = true;
      return write(std::move(r));
    }
    auto spool = opts.spool_dir + "/upload-" + std::to_string(req_id_) + "-"
                 + std::to_string(reinterpret_cast<uintptr_t>(this));
    sink_ = std::make_shared<upload_sink>(spool, opts.max_upload_size,
                                          std::move(boundary));
    if (sink_->last_error() == upload_sink::error::io) {
      log::http()->error("cannot create spool file req_id={}",
                                 req_id_);
      auto r = error_reply(500, "the upload could not be stored",
                           "storage_failure");
      r.close = true;
      return write(std::move(r));
    }
    bool expect_continue = beast::iequals(req[bhttp::field::expect],
                                          "100-continue");
    upload_.emplace(std::move(*head_), sink_);
    upload_->body_limit(limit);
    if (expect_continue) {
      auto cont = std::make_shared<bhttp::response<bhttp::empty_body>>(
        bhttp::status::continue_, version_);
      bhttp::async_write(stream_, *cont,
                         [self = shared_from_this(),
                          cont](beast::error_code ec, std::size_t) {
                           if (ec)
                             return self->do_close();
                           self->read_upload_body();
                         });
      return;
    }
    read_upload_body();
  }

  void read_upload_body() {
    stream_.expires_after(ctx_->opts.request_timeout);
    bhttp::async_read(stream_, buffer_, *upload_,
                      beast::bind_front_handler(&session::on_upload_body,
                                                shared_from_this()));
  }

  void on_upload_body(beast::error_code ec, std::size_t) {
    stream_.expires_never();
    if (ec) {
      auto why = sink_->last_error();
      if (why == upload_sink::error::none && ec != bhttp::error::body_limit)
        return do_close(); // the client went away or timed out
      auto r = sink_error_reply(why);
      r.close = true; // the rest of the body is unread
      return write(std::move(r));
    }
    if (!sink_->finish())
      return write(sink_error_reply(sink_->last_error()));
    actors::upload_request up;
    up.user_id = route_.user_id;
    up.phrase_id = route_.phrase_id;
    up.replace = upload_->get().method() == bhttp::verb::put;
    up.spool_path = sink_->path();
    up.filename = sink_->filename();
    up.size = sink_->size();
    // From here on the actors own the spool file.
    sink_->release();
    dispatch_request(std::move(up));
  }

  reply sink_error_reply(upload_sink::error why) {
    switch (why) {
      case upload_sink::error::none:
      case upload_sink::error::too_large:
        return error_reply(413,
                           "upload is larger than the allowed maximum of "
                             + std::to_string(ctx_->opts.max_upload_size)
                             + " bytes",
                           "too_large");
      case upload_sink::error::io:
        return error_reply(500, sink_->message(), "storage_failure");
      case upload_sink::error::empty:
      case upload_sink::error::missing_part:
        return error_reply(400, sink_->message(), "missing_file");
      default:
        return error_reply(400, sink_->message(), "bad_multipart");
    }
  }

  void dispatch_request(std::optional<actors::upload_request> up) {
    incoming in;
    in.method = method_;
    in.query = query_;
    in.where = route_;
    in.upload = std::move(up);
    auto self = shared_from_this();
    handle(ctx_->svc, in, [self](reply r) { self->respond(std::move(r)); });
  }

  // -- writing ---------------------------------------------------------------

  template <class Body>
  void prepare(bhttp::response<Body>& res, const reply& r) {
    res.set(bhttp::field::server, "phonon");
    res.set("X-Request-Id", std::to_string(req_id_));
    for (auto& [k, v] : r.headers)
      res.set(k, v);
    res.keep_alive(keep_alive_ && !r.close);
  }

  void write(reply r) {
    stream_.expires_after(ctx_->opts.request_timeout);
    close_after_ = !keep_alive_ || r.close;
    status_ = r.status;
    if (r.file)
      return write_file(std::move(r));
    bool no_body = head_only_ || r.status == 204 || r.status == 304;
    if (no_body) {
      auto res = std::make_shared<bhttp::response<bhttp::empty_body>>(
        static_cast<bhttp::status>(r.status), version_);
      prepare(*res, r);
      if (!r.content_type.empty())
        res->set(bhttp::field::content_type, r.content_type);
      if (r.status != 204 && r.status != 304)
        res->content_length(r.body.size());
      send(std::move(res));
      return;
    }
    auto res = std::make_shared<bhttp::response<bhttp::string_body>>(
      static_cast<bhttp::status>(r.status), version_);
    prepare(*res, r);
    res->set(bhttp::field::content_type, r.content_type);
    res->body() = std::move(r.body);
    res->prepare_payload();
    send(std::move(res));
  }

  void write_file(reply r) {
    file_request fr;
    fr.head = head_only_;
    fr.range = range_;
    fr.if_none_match = if_none_match_;
    fr.if_modified_since = if_modified_since_;
    fr.if_range = if_range_;
    auto plan = plan_file(*r.file, fr);
    r.headers.insert(r.headers.end(), plan.headers.begin(),
                     plan.headers.end());
    status_ = plan.status;
    if (plan.status == 416) {
      // Errors are JSON everywhere, this one included.
      auto err = error_reply(416, "the requested range is not satisfiable",
                             "range_not_satisfiable");
      for (auto& [k, v] : plan.headers)
        if (k == "Content-Range" || k == "Accept-Ranges")
          err.headers.emplace_back(k, v);
      return write(std::move(err));
    }
    if (!plan.send_body) {
      auto res = std::make_shared<bhttp::response<bhttp::empty_body>>(
        static_cast<bhttp::status>(plan.status), version_);
      prepare(*res, r);
      if (plan.status != 304)
        res->content_length(plan.length);
      send(std::move(res));
      return;
    }
    file_window_body::value_type body;
    beast::error_code ec;
    body.file.open(r.file->path.c_str(), beast::file_mode::scan, ec);
    if (ec) {
      // Evicted or replaced between the lookup and now: the client retries.
      auto err = error_reply(503, "the file changed while it was requested; "
                                  "retry",
                             "retry");
      err.headers.emplace_back("Retry-After", "1");
      return write(std::move(err));
    }
    body.offset = plan.offset;
    body.length = plan.length;
    auto res = std::make_shared<bhttp::response<file_window_body>>(
      std::piecewise_construct, std::make_tuple(std::move(body)),
      std::make_tuple(static_cast<bhttp::status>(plan.status), version_));
    prepare(*res, r);
    res->content_length(plan.length);
    send(std::move(res));
  }

  template <class Message>
  void send(std::shared_ptr<Message> res) {
    res_ = res;
    bhttp::async_write(stream_, *res,
                       [self = shared_from_this()](beast::error_code ec,
                                                   std::size_t bytes) {
                         self->on_write(ec, bytes);
                       });
  }

  void on_write(beast::error_code ec, std::size_t bytes) {
    res_.reset();
    auto elapsed = std::chrono::steady_clock::now() - started_;
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(elapsed)
                .count();
    log::http()->info("request req_id={} method={} target={} "
                              "status={} bytes={} us={}",
                              req_id_, method_, target_, status_, bytes, us);
    auto& m = actors::metrics::global();
    m.inc("phonon_http_requests_total", {{"route", route_name_},
                                         {"method", method_},
                                         {"status", std::to_string(status_)}});
    m.observe("phonon_http_request_duration_seconds",
              {{"route", route_name_}, {"status", std::to_string(status_)}},
              static_cast<double>(us) / 1e6);
    m.inc("phonon_http_response_bytes_total", {},
          static_cast<double>(bytes));
    if (ec)
      return do_close();
    if (close_after_)
      return do_linger();
    do_read();
  }

  // -- closing ---------------------------------------------------------------

  /// Half-closes, then reads and discards what the client still sends for a
  /// short while, so it sees the answer instead of a connection reset.
  void do_linger() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.expires_after(std::chrono::seconds(2));
    linger_buf_.resize(16 * 1024);
    linger_next();
  }

  void linger_next() {
    stream_.async_read_some(
      net::buffer(linger_buf_),
      [self = shared_from_this()](beast::error_code ec, std::size_t n) {
        self->lingered_ += n;
        if (ec || self->lingered_ > linger_limit)
          return self->do_close();
        self->linger_next();
      });
  }

  void do_close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.socket().close(ec);
  }

  beast::tcp_stream stream_;
  std::shared_ptr<const context> ctx_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::empty_body>> head_;
  std::optional<bhttp::request_parser<bhttp::string_body>> small_;
  std::optional<bhttp::request_parser<spool_body>> upload_;
  std::shared_ptr<upload_sink> sink_;
  std::shared_ptr<void> res_;
  std::vector<char> linger_buf_;
  uint64_t lingered_ = 0;
  // The request being served.
  uint64_t req_id_ = 0;
  std::string method_;
  std::string target_;
  std::string query_;
  std::string range_;
  std::string if_none_match_;
  std::string if_modified_since_;
  std::string if_range_;
  route route_;
  std::string route_name_;
  unsigned version_ = 11;
  bool keep_alive_ = false;
  bool head_only_ = false;
  bool close_after_ = false;
  unsigned status_ = 0;
  std::chrono::steady_clock::time_point started_;
};

class listener : public std::enable_shared_from_this<listener> {
public:
  listener(net::io_context& ioc, tcp::endpoint ep,
           std::shared_ptr<const context> ctx)
    : ioc_(ioc), acceptor_(net::make_strand(ioc)), ctx_(std::move(ctx)) {
    acceptor_.open(ep.protocol());
    acceptor_.set_option(net::socket_base::reuse_address(true));
    acceptor_.bind(ep);
    acceptor_.listen(net::socket_base::max_listen_connections);
  }

  uint16_t port() const {
    return acceptor_.local_endpoint().port();
  }

  void run() {
    do_accept();
  }

  void stop() {
    net::post(acceptor_.get_executor(), [self = shared_from_this()] {
      beast::error_code ec;
      self->acceptor_.close(ec);
    });
  }

private:
  void do_accept() {
    acceptor_.async_accept(net::make_strand(ioc_),
                           beast::bind_front_handler(&listener::on_accept,
                                                     shared_from_this()));
  }

  void on_accept(beast::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted)
      return;
    if (!ec)
      std::make_shared<session>(std::move(socket), ctx_)->run();
    else
      log::http()->warn("accept failed error={}", ec.message());
    do_accept();
  }

  net::io_context& ioc_;
  tcp::acceptor acceptor_;
  std::shared_ptr<const context> ctx_;
};

} // namespace

struct server::impl {
  std::shared_ptr<context> ctx;
  net::io_context ioc;
  std::shared_ptr<listener> lst;
  std::vector<std::thread> threads;
};

server::server(server_options opts, services svc) : impl_(new impl) {
  impl_->ctx = std::make_shared<context>(context{std::move(opts), svc});
}

server::~server() {
  stop();
}

uint16_t server::start() {
  describe_metrics();
  const auto& opts = impl_->ctx->opts;
  auto addr = net::ip::make_address(opts.host);
  impl_->lst = std::make_shared<listener>(impl_->ioc,
                                          tcp::endpoint{addr, opts.port},
                                          impl_->ctx);
  impl_->lst->run();
  for (int i = 0; i < std::max(1, opts.threads); ++i)
    impl_->threads.emplace_back([this] { impl_->ioc.run(); });
  return impl_->lst->port();
}

void server::stop() {
  if (impl_->threads.empty())
    return;
  impl_->lst->stop();
  impl_->ioc.stop();
  for (auto& t : impl_->threads)
    t.join();
  impl_->threads.clear();
}

} // namespace phonon::http
