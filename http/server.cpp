// The HTTP side: Beast's listener/session skeleton (as in Beast's advanced
// server example) with the requests handed to actors. A session serves one
// request at a time: it reads the next request only after the answer to the
// previous one is written, so pipelined requests queue in its read buffer.
//
// The session only reads, writes and times out; admit() (admission.hpp)
// decides what a request head means and how its body is read.
//
// Threads: `server.threads` io threads, each running its own io_context
// (like nginx's workers): a connection is handed to one of them in turn
// when accepted and stays there, so its handlers never wake another thread
// and need no strand. The actors' answers are posted to that context.
//
// Time limits, one watchdog timer per session:
//   reading a head     server.header_timeout for the whole head (408 when
//                      some of it arrived, a silent close when nothing did)
//   reading a body     server.idle_timeout between bytes (408)
//   waiting for actors none here: the actors answer within request_timeout
//                      (handlers.cpp) and the recordings actor always
//                      answers an upload, so the session waits for it
//   writing an answer  server.idle_timeout between bytes
//   lingering          2 s after a closing answer
//
// Stored files (audio) are written in one of two ways, never with Beast's
// file_body (4 KiB reads, no sendfile on Linux), their heads written by
// hand (wire.hpp), not by Beast's serializer:
//   small files        from the memory cache (response_cache.hpp): the
//                      head and a window of the shared bytes in one gather
//                      write; a plain GET's file fields were made when the
//                      file was cached
//   the others         the head, then the window with sendfile(2) on the
//                      socket, waiting for room in the send buffer with
//                      async_wait

#include "http/server.hpp"

#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <ctime>
#include <limits>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "actors/errors.hpp"
#include "actors/log.hpp"
#include "actors/metrics.hpp"
#include "http/admission.hpp"
#include "http/auth.hpp"
#include "http/console.hpp"
#include "http/cors.hpp"
#include "http/bodies.hpp"
#include "http/file_plan.hpp"
#include "http/handlers.hpp"
#include "http/head_facts_of.hpp"
#include "http/multipart.hpp"
#include "http/response_cache.hpp"
#include "http/router.hpp"
#include "http/status_map.hpp"
#include "http/wire.hpp"

namespace phonon::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
using tcp = boost::asio::ip::tcp;
using clock_type = std::chrono::steady_clock;

namespace {

/// Bytes a session's read buffer holds at most (see session::buffer_).
constexpr std::size_t read_buffer_limit = 64 * 1024 - 4;

/// Bytes a lingering close reads and discards at most.
constexpr uint64_t linger_limit = 64ull * 1024 * 1024;

/// How long a lingering close waits for the client to finish sending.
constexpr auto linger_time = std::chrono::seconds{2};

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
  m.describe("phonon_http_connections_refused_total", "counter",
             "Connections closed at once because server.max_connections "
             "were open.");
  m.describe("phonon_http_sendfile_bytes_total", "counter",
             "Bytes of stored files sent with sendfile(2).");
  m.describe("phonon_http_memory_cache_bytes", "gauge",
             "Bytes of stored files held in the memory cache.");
  m.describe("phonon_http_memory_cache_entries", "gauge",
             "Stored files held in the memory cache.");
  m.describe("phonon_http_memory_cache_hits_total", "counter",
             "File bodies served from the memory cache.");
  m.describe("phonon_http_memory_cache_misses_total", "counter",
             "File bodies small enough for the memory cache that were not "
             "in it (read from disk and added).");
  m.describe("phonon_http_memory_cache_evictions_total", "counter",
             "Files dropped from the memory cache to keep its bound.");
  m.describe("phonon_s3_redirects_total", "counter",
             "GETs of audio files answered 302 with a presigned URL of the "
             "bucket (storage.s3.redirect).");
  // Exported at 0 from the start (dashboards, rate()).
  m.counter("phonon_s3_redirects_total");
  m.describe("phonon_read_model_entries", "gauge",
             "Recordings whose row and file facts the read model holds.");
  m.describe("phonon_read_model_hits_total", "counter",
             "Lookups answered by the read model without the actors.");
  m.describe("phonon_read_model_misses_total", "counter",
             "Lookups the read model could not answer (sent to the "
             "actors).");
}

/// Copies the memory cache's gauges and counters (hits excepted, which are
/// counted as they happen) into the metrics. One publisher at a time, and
/// the snapshot is taken inside: the last one written is the newest.
void publish_cache_metrics(const response_cache& cache) {
  static std::mutex mtx;
  std::lock_guard<std::mutex> guard{mtx};
  auto st = cache.snapshot();
  auto& m = actors::metrics::global();
  m.set("phonon_http_memory_cache_bytes", {}, static_cast<double>(st.bytes));
  m.set("phonon_http_memory_cache_entries", {},
        static_cast<double>(st.entries));
  m.set("phonon_http_memory_cache_misses_total", {},
        static_cast<double>(st.misses));
  m.set("phonon_http_memory_cache_evictions_total", {},
        static_cast<double>(st.evictions));
}

/// An open file descriptor, closed when it dies.
class unique_fd {
public:
  unique_fd() = default;
  explicit unique_fd(int fd) : fd_(fd) {
    // nop
  }
  unique_fd(unique_fd&& other) noexcept : fd_(other.release()) {
    // nop
  }
  unique_fd& operator=(unique_fd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = other.release();
    }
    return *this;
  }
  ~unique_fd() {
    reset();
  }
  int get() const noexcept {
    return fd_;
  }
  explicit operator bool() const noexcept {
    return fd_ >= 0;
  }
  int release() noexcept {
    auto fd = fd_;
    fd_ = -1;
    return fd;
  }
  void reset() noexcept {
    if (fd_ >= 0)
      ::close(fd_);
    fd_ = -1;
  }

private:
  int fd_ = -1;
};

/// Opens a stored file for reading and checks it still is the file the
/// actors described: an empty fd when it is gone or its size changed (it
/// was evicted or replaced since). `same_mtime` tells whether the mtime
/// matches too (only then may its bytes be cached under those facts).
unique_fd open_stored(const actors::file_ref& file, bool& same_mtime) {
  unique_fd fd{::open(file.path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (!fd)
    return {};
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)
      || static_cast<uint64_t>(st.st_size) != file.size)
    return {};
  same_mtime = static_cast<int64_t>(st.st_mtim.tv_sec) == file.mtime;
  return fd;
}

/// Reads a whole stored file of `size` bytes; false on an error or a short
/// read (the file shrank meanwhile).
bool read_all(int fd, uint64_t size, std::string& out) {
  out.resize(static_cast<std::size_t>(size));
  std::size_t done = 0;
  while (done < out.size()) {
    auto n = ::pread(fd, out.data() + done, out.size() - done,
                     static_cast<off_t>(done));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

/// Bytes one sendfile(2) call is asked for at most: large enough to fill
/// any socket send buffer, small enough to keep the io thread fair.
constexpr std::size_t sendfile_chunk = 4 * 1024 * 1024;

/// sendfile(2) calls in a row before other work on the io thread gets a
/// turn.
constexpr int sendfile_burst = 8;

/// Per-server state shared by the listener and every session.
struct context {
  server_options opts;
  services svc;
  /// Open connections (sessions alive).
  std::shared_ptr<std::atomic<uint64_t>> connections
    = std::make_shared<std::atomic<uint64_t>>(0);
  /// Small stored files in memory, shared by every session.
  std::shared_ptr<response_cache> cache;
};

/// A request body that is counted and dropped: requests that carry no
/// upload are read to their end (to find the next request) but never
/// kept. More than small_body_limit bytes stop the read.
struct discard_body {
  struct value_type {
    uint64_t size = 0;
  };

  class reader {
  public:
    template <bool IsRequest, class Fields>
    reader(bhttp::header<IsRequest, Fields>&, value_type& v) : v_(v) {
      // nop
    }

    void init(const boost::optional<std::uint64_t>&, beast::error_code& ec) {
      ec = {};
    }

    template <class ConstBufferSequence>
    std::size_t put(const ConstBufferSequence& buffers,
                    beast::error_code& ec) {
      auto n = net::buffer_size(buffers);
      v_.size += n;
      if (v_.size > small_body_limit)
        ec = bhttp::error::body_limit;
      else
        ec = {};
      return n;
    }

    void finish(beast::error_code& ec) {
      ec = {};
    }

  private:
    value_type& v_;
  };
};

/// A response and its serializer, kept together while it is written.
template <class Body>
struct outgoing {
  bhttp::response<Body> res;
  std::optional<bhttp::response_serializer<Body>> sr;
};

/// The Date field's value for now, formatted once per second per thread.
const std::string& date_now() {
  thread_local int64_t second = -1;
  thread_local std::string text;
  auto now = static_cast<int64_t>(std::time(nullptr));
  if (now != second) {
    second = now;
    text = http_date(now);
  }
  return text;
}

/// The metrics series an answer is counted in.
struct answer_series {
  actors::metrics::cell* requests = nullptr;
  actors::metrics::histogram_cell* duration = nullptr;
};

/// The series of answers with this route, method label and status, found
/// in the registry once per io thread: counting a request then takes no
/// lock and makes no label strings. Bounded: routes, method labels and
/// statuses are few.
answer_series& series_of(const std::string& route, std::string_view method,
                         unsigned status) {
  thread_local std::unordered_map<std::string, answer_series> known;
  thread_local std::string key;
  key.assign(route);
  key += ' ';
  key.append(method);
  key += ' ';
  key += std::to_string(status);
  auto it = known.find(key);
  if (it != known.end())
    return it->second;
  auto& m = actors::metrics::global();
  auto code = std::to_string(status);
  answer_series s;
  s.requests = &m.counter("phonon_http_requests_total",
                          {{"route", route},
                           {"method", std::string{method}},
                           {"status", code}});
  s.duration = &m.histogram("phonon_http_request_duration_seconds",
                            {{"route", route}, {"status", code}});
  return known.emplace(key, s).first->second;
}

/// Seconds since the Unix epoch.
int64_t unix_now() {
  return static_cast<int64_t>(std::time(nullptr));
}

/// True for errors that mean the peer went away (nothing to answer).
bool peer_gone(const beast::error_code& ec) {
  return ec == bhttp::error::end_of_stream || ec == net::error::eof
         || ec == net::error::connection_reset
         || ec == net::error::broken_pipe
         || ec == net::error::operation_aborted;
}

class session : public std::enable_shared_from_this<session> {
public:
  session(tcp::socket&& socket, std::shared_ptr<const context> ctx)
    : stream_(std::move(socket)),
      timer_(stream_.get_executor()),
      ctx_(std::move(ctx)) {
    // nop
  }

  ~session() {
    --*ctx_->connections;
  }

  void run() {
    net::dispatch(stream_.get_executor(),
                  beast::bind_front_handler(&session::start,
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
  // -- the watchdog ----------------------------------------------------------

  void start() {
    watch();
    do_read();
  }

  /// Keeps one wait on the timer pending while the session lives. It holds
  /// only a weak reference: the timer never keeps a session alive.
  void watch() {
    timer_.expires_at(deadline_);
    timer_.async_wait([weak = weak_from_this()](beast::error_code ec) {
      if (ec == net::error::operation_aborted)
        return; // replaced by an earlier deadline, or closing
      if (auto self = weak.lock())
        self->on_timer();
    });
  }

  void on_timer() {
    if (closed_)
      return;
    if (clock_type::now() < deadline_)
      return watch(); // the deadline moved on since this wait began
    if (writing_ && answer_moved()) {
      // A write is pending only because the kernel wakes a writer once a
      // third of its (up to 4 MiB) send buffer is free; the client did read
      // meanwhile, so it is slow, not idle.
      deadline_ = clock_type::now() + ctx_->opts.idle_timeout;
      return watch();
    }
    // Cancel whatever is pending; its handler sees timed_out_.
    timed_out_ = true;
    deadline_ = clock_type::time_point::max();
    beast::error_code ec;
    stream_.socket().cancel(ec);
    watch();
  }

  /// Bytes of the answer still in the kernel's send queue (Linux
  /// SIOCOUTQ); -1 when unknown.
  int unsent() {
    int n = 0;
    if (::ioctl(stream_.socket().native_handle(), SIOCOUTQ, &n) != 0)
      return -1;
    return n;
  }

  /// True when bytes left the send queue since the last look (or it was
  /// never looked at: see write_wire).
  bool answer_moved() {
    auto now = unsent();
    bool moved = now >= 0 && (unsent_ == queue_unknown || now < unsent_);
    unsent_ = now;
    return moved;
  }

  /// Sets the deadline of the next step to `limit` from now.
  void arm(clock_type::duration limit) {
    timed_out_ = false;
    auto next = clock_type::now() + limit;
    bool earlier = next < timer_.expiry();
    deadline_ = next;
    if (earlier)
      watch(); // the pending wait is aborted and ignored
  }

  /// No deadline: the next step is someone else's to bound.
  void disarm() {
    timed_out_ = false;
    deadline_ = clock_type::time_point::max();
  }

  // -- reading ---------------------------------------------------------------

  void do_read() {
    head_.emplace();
    head_->header_limit(ctx_->opts.max_header_size);
    // The body limit is the admission's business; without this the head
    // parser would refuse a large Content-Length with its 1 MiB default.
    head_->body_limit(std::numeric_limits<std::uint64_t>::max());
    upload_.reset();
    small_.reset();
    sink_.reset();
    arm(ctx_->opts.header_timeout);
    bhttp::async_read_header(stream_, buffer_, *head_,
                             beast::bind_front_handler(&session::on_header,
                                                       shared_from_this()));
  }

  /// Sets what the request log and metrics say about a request that did
  /// not get as far as a parsed head.
  void begin_unparsed() {
    started_ = clock_type::now();
    req_seq_ = ++request_counter;
    req_id_ = choose_request_id({}, req_seq_);
    method_ = "-";
    target_ = "-";
    route_name_ = "invalid";
    version_ = 11;
    keep_alive_ = false;
    head_only_ = false;
    origin_.clear();
    subject_.clear();
    preflight_ = false;
  }

  void on_header(beast::error_code ec, std::size_t) {
    if (ec && timed_out_) {
      // Nothing arrived: an idle connection, closed without a word.
      if (buffer_.size() == 0)
        return do_close();
      begin_unparsed();
      return write(closing(error_reply(408, "the request head took too long",
                                       "timeout")));
    }
    if (peer_gone(ec))
      return do_close();
    if (ec) {
      begin_unparsed();
      if (ec == bhttp::error::header_limit
          || ec == bhttp::error::buffer_overflow)
        return write(closing(error_reply(
          431, "request header fields too large", "bad_request")));
      // Beast refuses some framing itself (differing Content-Length,
      // Content-Length with chunked): as any framing error, the rest of
      // the connection cannot be trusted.
      return write(closing(error_reply(400, "malformed HTTP request",
                                       "bad_request")));
    }
    started_ = clock_type::now();
    auto& req = head_->get();
    {
      auto client_id = req["X-Request-Id"];
      req_seq_ = ++request_counter;
      req_id_ = choose_request_id({client_id.data(), client_id.size()},
                                  req_seq_);
    }
    method_ = std::string{req.method_string()};
    target_ = std::string{req.target()};
    version_ = req.version();
    keep_alive_ = req.keep_alive();
    head_only_ = req.method() == bhttp::verb::head;
    subject_.clear();
    preflight_ = false;
    may_read_ = true;
    range_ = std::string{req[bhttp::field::range]};
    if_none_match_ = std::string{req[bhttp::field::if_none_match]};
    if_modified_since_ = std::string{req[bhttp::field::if_modified_since]};
    if_range_ = std::string{req[bhttp::field::if_range]};
    origin_ = std::string{req[bhttp::field::origin]};

    auto facts = facts_of(req);
    admission_limits limits;
    limits.max_upload_size = ctx_->opts.max_upload_size;
    if (ctx_->opts.console)
      limits.is_console_file = &is_console_file;
    adm_ = admit(facts, limits);
    route_ = adm_.where;
    route_name_ = adm_.where.name;
    query_ = adm_.query;
    if (adm_.refused) {
      auto& why = *adm_.refused;
      auto r = error_reply(why.status, why.message, why.code);
      if (!why.allow.empty())
        r.headers.emplace_back("Allow", why.allow);
      r.close = why.close;
      return refuse(std::move(r), req);
    }
    if (auto early = options_or_auth(req))
      return refuse(std::move(*early), req);
    switch (adm_.body) {
      case body_kind::upload:
        // Counted from the head on: a user's slow uploads hold spool files
        // and connections before they reach the actors.
        if (!enter_user_gate())
          return refuse(too_many_in_flight(), req);
        return begin_upload();
      case body_kind::small:
        return read_small_body(std::nullopt);
      case body_kind::none:
        break;
    }
    dispatch_request(std::nullopt);
  }

  /// Answers a request from its head: a small body is read and dropped
  /// first so that the connection stays usable, any other body is left
  /// unread and the connection closes after the answer.
  void refuse(reply r, const bhttp::request<bhttp::empty_body>& req) {
    // A client that sent `Expect: 100-continue` waits for a word before it
    // sends the body: it gets the final answer now (RFC 9110 10.1.1), and
    // the connection closes since the body stays unread.
    bool waits = beast::iequals(req[bhttp::field::expect], "100-continue");
    if (adm_.body == body_kind::small && !waits)
      return read_small_body(std::move(r));
    if (adm_.body != body_kind::none)
      r.close = true;
    write(std::move(r));
  }

  /// The answer to an OPTIONS request (cors.hpp), or the refusal of a
  /// caller that may not do what the head asks (auth.hpp); nullopt when
  /// the request goes on. Decided before a byte of the body is read.
  std::optional<reply> options_or_auth(
    const bhttp::request<bhttp::empty_body>& req) {
    if (req.method() == bhttp::verb::options) {
      auto acrm = req[bhttp::field::access_control_request_method];
      auto a = answer_options(route_, origin_, {acrm.data(), acrm.size()},
                              ctx_->opts.cors_origins);
      reply r;
      if (a.status == 204) {
        r.status = 204;
        r.content_type.clear();
      } else {
        r = error_reply(a.status, a.message, "origin_not_allowed");
      }
      r.headers = std::move(a.headers);
      preflight_ = true;
      return r;
    }
    auto authorization = req[bhttp::field::authorization];
    auth_request ar;
    ar.method = method_;
    ar.where = &route_;
    ar.path = adm_.path;
    ar.query = adm_.query;
    ar.authorization = {authorization.data(), authorization.size()};
    auto d = ctx_->svc.auth->check(ar, unix_now());
    subject_ = std::move(d.subject);
    may_read_ = d.may_read;
    if (d.allowed())
      return std::nullopt;
    auto r = error_reply(d.status, d.message, d.code);
    if (d.status == 401)
      r.headers.emplace_back("WWW-Authenticate",
                             "Bearer realm=\"phonon\", "
                             "error=\"invalid_token\"");
    return r;
  }

  static reply closing(reply r) {
    r.close = true;
    return r;
  }

  /// Reads the body of a request that carries no upload and drops it;
  /// then answers `early` when set, else hands the request on.
  void read_small_body(std::optional<reply> early) {
    small_.emplace(std::move(*head_));
    // Chunked bodies are checked chunk by chunk against this limit, before
    // a chunk's data is read; Content-Length was checked by admit().
    small_->body_limit(small_body_limit);
    early_ = std::move(early);
    read_body(*small_, &session::on_small_body);
  }

  void on_small_body(beast::error_code ec) {
    if (ec)
      return on_body_error(ec, nullptr);
    if (early_) {
      auto r = std::move(*early_);
      early_.reset();
      return write(std::move(r));
    }
    dispatch_request(std::nullopt);
  }

  /// Reads the rest of a body piece by piece, `idle_timeout` at most
  /// between pieces (one absolute limit would cut slow, steady clients).
  template <class Parser>
  void read_body(Parser& parser, void (session::*done)(beast::error_code)) {
    if (parser.is_done())
      return (this->*done)({});
    arm(ctx_->opts.idle_timeout);
    bhttp::async_read_some(
      stream_, buffer_, parser,
      [self = shared_from_this(), &parser, done](beast::error_code ec,
                                                 std::size_t) {
        if (ec)
          return ((*self).*done)(self->timed_out_ ? net::error::timed_out
                                                  : ec);
        self->read_body(parser, done);
      });
  }

  /// Answers a body that could not be read to its end; the connection
  /// closes after the answer because the rest of the body is unread.
  void on_body_error(beast::error_code ec, const upload_sink* sink) {
    if (ec == net::error::timed_out)
      return write(closing(error_reply(
        408, "no request body bytes arrived for too long", "timeout")));
    if (sink != nullptr && sink->last_error() != upload_sink::error::none)
      return write(closing(sink_error_reply(sink->last_error())));
    if (ec == bhttp::error::body_limit) {
      if (sink != nullptr)
        return write(closing(sink_error_reply(upload_sink::error::too_large)));
      return write(closing(error_reply(413, "request body too large",
                                       "too_large")));
    }
    if (peer_gone(ec))
      return do_close();
    if (ec == bhttp::error::buffer_overflow)
      // A chunk header or a trailer section larger than the read buffer.
      return write(closing(error_reply(431, "chunk extensions or trailer "
                                            "fields too large",
                                       "bad_request")));
    if (ec.category() == bhttp::make_error_code(bhttp::error::bad_chunk)
                           .category())
      // A bad chunk size or an unexpected end: framing errors.
      return write(closing(error_reply(400, "malformed request body",
                                       "bad_request")));
    do_close();
  }

  void begin_upload() {
    auto& req = head_->get();
    const auto& opts = ctx_->opts;
    auto boundary = std::optional<std::string>{};
    if (adm_.multipart) {
      auto content_type = req[bhttp::field::content_type];
      boundary = multipart_boundary(
        std::string_view{content_type.data(), content_type.size()});
      if (!boundary)
        return write(closing(error_reply(
          400, "multipart/form-data needs a boundary parameter",
          "bad_multipart")));
    }
    auto spool = opts.spool_dir + "/upload-" + std::to_string(req_seq_) + "-"
                 + std::to_string(reinterpret_cast<uintptr_t>(this));
    sink_ = std::make_shared<upload_sink>(spool, opts.max_upload_size,
                                          std::move(boundary));
    if (auto why = sink_->last_error(); why != upload_sink::error::none) {
      log::http()->error("cannot create spool file req_id={}", req_id_);
      return write(closing(sink_error_reply(why)));
    }
    bool expect_continue = beast::iequals(req[bhttp::field::expect],
                                          "100-continue");
    upload_.emplace(std::move(*head_), sink_);
    upload_->body_limit(adm_.body_limit);
    if (expect_continue) {
      auto cont = std::make_shared<bhttp::response<bhttp::empty_body>>(
        bhttp::status::continue_, version_);
      arm(ctx_->opts.idle_timeout);
      bhttp::async_write(stream_, *cont,
                         [self = shared_from_this(),
                          cont](beast::error_code ec, std::size_t) {
                           if (ec || self->timed_out_)
                             return self->do_close();
                           self->read_body(*self->upload_,
                                           &session::on_upload_body);
                         });
      return;
    }
    read_body(*upload_, &session::on_upload_body);
  }

  void on_upload_body(beast::error_code ec) {
    if (ec)
      return on_body_error(ec, sink_.get());
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
      case upload_sink::error::no_space: {
        // The same answer as the actors give for a full disk.
        auto r = to_reply(caf::error{errc::storage_full});
        r.close = true;
        return r;
      }
      case upload_sink::error::empty:
      case upload_sink::error::missing_part:
        return error_reply(400, sink_->message(), "missing_file");
      default:
        return error_reply(400, sink_->message(), "bad_multipart");
    }
  }

  /// Answers the request: from the read model when it can (a GET of a
  /// known recording or of a file it knows, on this thread), else through
  /// the actors, which bound the work (request_timeout) and always answer.
  /// `use_model` is false for the second try of a request whose file was
  /// gone (write_file).
  void dispatch_request(std::optional<actors::upload_request> up,
                        bool use_model = true) {
    disarm();
    incoming in;
    in.request_id = req_id_;
    in.may_read = may_read_;
    in.method = method_;
    in.query = query_;
    in.if_none_match = if_none_match_;
    in.where = route_;
    in.upload = std::move(up);
    if (use_model && !in.upload) {
      std::optional<reply> r;
      try {
        r = answer_from_model(ctx_->svc, in);
      } catch (const std::exception& e) {
        // Never a dropped connection: the actors answer (or say why not).
        log::http()->warn("read model answer failed req_id={} error={}",
                          req_id_, e.what());
      }
      if (r)
        return write(std::move(*r));
    }
    auto self = shared_from_this();
    handle(ctx_->svc, in, [self](reply r) { self->respond(std::move(r)); });
  }

  /// Takes a place of the route's user in limits.per_user_inflight for the
  /// upload being served (given back when it is answered); false when
  /// the user has none left.
  bool enter_user_gate() {
    if (!ctx_->svc.gate)
      return true;
    inflight_ = ctx_->svc.gate->try_enter(route_.user_id);
    return inflight_.has_value();
  }

  static reply too_many_in_flight() {
    return to_reply(caf::error{errc::too_many_requests});
  }

  // -- writing ---------------------------------------------------------------

  template <class Body>
  void prepare(bhttp::response<Body>& res, const reply& r) {
    res.set(bhttp::field::server, "phonon");
    res.set(bhttp::field::date, date_now());
    res.set("X-Request-Id", req_id_);
    for (auto& [k, v] : r.headers)
      res.set(k, v);
    if (!preflight_)
      for (auto& [k, v] : cors_headers(origin_, ctx_->opts.cors_origins))
        res.set(k, v);
    res.keep_alive(keep_alive_ && !r.close);
  }

  template <class Body>
  std::shared_ptr<outgoing<Body>> make_response(unsigned status) {
    auto out = std::make_shared<outgoing<Body>>();
    out->res.result(status);
    out->res.version(version_);
    return out;
  }

  void write(reply r) {
    // The work behind the request is done: the user's place is free.
    inflight_.reset();
    close_after_ = !keep_alive_ || r.close;
    status_ = r.status;
    if (r.file)
      return write_file(std::move(r));
    bool no_body = head_only_ || r.status == 204 || r.status == 304;
    if (no_body) {
      auto out = make_response<bhttp::empty_body>(r.status);
      prepare(out->res, r);
      if (!r.content_type.empty())
        out->res.set(bhttp::field::content_type, r.content_type);
      if (r.status != 204 && r.status != 304)
        out->res.content_length(r.body.size());
      send(std::move(out));
      return;
    }
    auto out = make_response<bhttp::string_body>(r.status);
    prepare(out->res, r);
    // A redirect has no body and so no Content-Type.
    if (!r.content_type.empty())
      out->res.set(bhttp::field::content_type, r.content_type);
    out->res.body() = std::move(r.body);
    out->res.prepare_payload();
    send(std::move(out));
  }

  void write_file(reply r) {
    file_request fr;
    fr.head = head_only_;
    fr.range = range_;
    fr.if_none_match = if_none_match_;
    fr.if_modified_since = if_modified_since_;
    fr.if_range = if_range_;
    if (ctx_->opts.redirect.enabled && redirected(r, fr))
      return;
    auto& cache = *ctx_->cache;
    bool cacheable = cache.admits(r.file->size);
    bool plain = !fr.head && fr.range.empty() && fr.if_none_match.empty()
                 && fr.if_modified_since.empty();
    if (plain && cacheable) {
      // The common answer: a whole small file, head fields made when it
      // was cached.
      auto entry = cached(r);
      if (!entry)
        return file_gone(r);
      status_ = 200;
      begin_file_head(200, r);
      wire_ += entry->plain_fields;
      wire_ += "\r\n";
      net::const_buffer body{entry->bytes.data(), entry->bytes.size()};
      return write_wire(body, std::move(entry));
    }
    auto plan = plan_file(*r.file, fr);
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
    begin_file_head(plan.status, r);
    wire_ += file_fields(plan);
    wire_ += "\r\n";
    if (!plan.send_body)
      // HEAD and 304: the facts are enough, the bytes are not needed.
      return write_wire({}, nullptr);
    if (cacheable) {
      auto entry = cached(r);
      if (!entry)
        return file_gone(r);
      net::const_buffer body{entry->bytes.data() + plan.offset,
                             static_cast<std::size_t>(plan.length)};
      return write_wire(body, std::move(entry));
    }
    bool same_mtime = false;
    auto fd = open_stored(*r.file, same_mtime);
    if (!fd)
      return file_gone(r);
    // The head goes out first, then on_write() hands on to send_file().
    file_out_.emplace();
    file_out_->fd = std::move(fd);
    file_out_->offset = plan.offset;
    file_out_->length = plan.length;
    file_out_->remain = plan.length;
    // Corked until the body is sent: the head and the first body bytes
    // share a segment, and the last segment is not held back by Nagle.
    cork(true);
    write_wire({}, nullptr);
  }

  /// storage.s3.redirect: answers `302 Found` to the bucket when the pure
  /// decision (redirect.hpp) says so; true when it did. The node needs
  /// only the file's facts for it, never its bytes.
  bool redirected(const reply& r, const file_request& fr) {
    const auto& policy = ctx_->opts.redirect;
    auto plan = plan_file(*r.file, fr);
    if (!should_redirect(policy, *r.file, route_.format, fr, plan))
      return false;
    std::optional<reply> red;
    try {
      red = redirect_reply(policy, *r.file,
                           inline_disposition(route_.user_id,
                                              route_.phrase_id, route_.format),
                           std::time(nullptr));
    } catch (const std::exception& e) {
      log::http()->warn("redirect not made req_id={} error={}", req_id_,
                        e.what());
    }
    if (!red) {
      // Not an object of the bucket (should not happen): served as before.
      log::http()->debug("redirect skipped req_id={} path={}", req_id_,
                         r.file->path);
      return false;
    }
    static auto& redirects = actors::metrics::global().counter(
      "phonon_s3_redirects_total");
    redirects.add(1);
    red->close = r.close;
    write(std::move(*red));
    return true;
  }

  /// Starts the head of a file answer in wire_: the status line and the
  /// per-request fields; the file's own fields follow (wire.hpp).
  void begin_file_head(unsigned status, const reply& r) {
    wire_.clear();
    append_status_line(wire_, version_, status);
    append_field(wire_, "Server", "phonon");
    append_field(wire_, "Date", date_now());
    append_field(wire_, "X-Request-Id", req_id_);
    for (auto& [k, v] : r.headers)
      append_field(wire_, k, v);
    wire_ += "Content-Disposition: ";
    append_inline_disposition(wire_, route_.user_id, route_.phrase_id,
                              route_.format);
    wire_ += "\r\n";
    if (!preflight_)
      for (auto& [k, v] : cors_headers(origin_, ctx_->opts.cors_origins))
        append_field(wire_, k, v);
    append_connection(wire_, version_, keep_alive_ && !r.close);
  }

  /// The memory cache's bytes of the reply's file, read into it on a miss;
  /// nullptr when the file is gone or changed.
  cached_file_ptr cached(const reply& r) {
    auto& cache = *ctx_->cache;
    auto entry = cache.find(*r.file);
    if (entry) {
      static auto& hits = actors::metrics::global().counter(
        "phonon_http_memory_cache_hits_total");
      hits.add(1);
      return entry;
    }
    entry = load_small(*r.file);
    publish_cache_metrics(cache);
    return entry;
  }

  /// Writes the head in wire_ and then `body` (kept alive by `owner`) in
  /// one gather write, `idle_timeout` at most between progress (the
  /// watchdog looks at the send queue).
  void write_wire(net::const_buffer body, std::shared_ptr<const void> owner) {
    arm(ctx_->opts.idle_timeout);
    writing_ = true;
    // Looking at the send queue is a syscall per answer; a small answer is
    // in the kernel's hands at once, so its queue is only looked at if the
    // watchdog ever fires (one idle period more, at most, for a client
    // that reads nothing of at most 64 KiB).
    unsent_ = wire_.size() + body.size() <= unsampled_answer_max
                ? queue_unknown
                : unsent();
    std::array<net::const_buffer, 2> buffers{net::buffer(wire_), body};
    net::async_write(
      stream_, buffers,
      // As much per write as the kernel takes (asio's own transfer_all
      // stops each write at 64 KiB). Called after each partial write (not
      // for an answer the kernel takes at once): the kernel took more bytes,
      // so the idle limit starts again and the queue is looked at anew, as
      // write_some() and wait_writable() do between their writes. Armed
      // only once, before the write, a steady reader slower than the write
      // was cut one idle period after the answer began. The handler below
      // keeps the session, and so `this`, alive.
      [this, total = wire_.size() + body.size()](
        const beast::error_code& ec, std::size_t n) -> std::size_t {
        if (ec)
          return 0;
        if (n > 0 && n < total) {
          arm(ctx_->opts.idle_timeout);
          unsent_ = unsent();
        }
        return std::size_t{4} << 20;
      },
      [self = shared_from_this(), owner = std::move(owner)](
        beast::error_code ec, std::size_t n) {
        if (ec && self->timed_out_)
          ec = net::error::timed_out;
        self->on_write(ec, n);
      });
  }

  /// Sets TCP_CORK on the socket (Linux): while set, partial segments are
  /// held; clearing it sends what is held at once.
  void cork(bool on) {
    int v = on ? 1 : 0;
    ::setsockopt(stream_.socket().native_handle(), IPPROTO_TCP, TCP_CORK, &v,
                 sizeof(v));
  }

  /// The reply's file is gone or changed by now: a file the read model
  /// named is asked of the actors, one the actors named is a 503 retry.
  void file_gone(const reply& r) {
    if (r.from_model)
      return ask_actors_instead();
    write(retry_reply());
  }

  /// The read model named a file that is gone or changed by now (evicted,
  /// or replaced while this request was on its way): the key's view is
  /// dropped and the request goes to the actors.
  void ask_actors_instead() {
    ctx_->svc.model->invalidate(route_.user_id, route_.phrase_id);
    dispatch_request(std::nullopt, false);
  }

  /// The answer to a request whose file vanished or changed between the
  /// actors' look and now (evicted or replaced): the client retries.
  static reply retry_reply() {
    auto err = error_reply(503, "the file changed while it was requested; "
                                "retry",
                           "retry");
    err.headers.emplace_back("Retry-After", "1");
    return err;
  }

  /// Reads a small stored file into the memory cache; nullptr when it is
  /// gone or changed. The bytes are cached only when size and mtime are
  /// those the actors reported, so the cache never holds other contents
  /// under a file's facts. Blocks on a read of at most
  /// storage.memory_cache_item_max bytes (no lock held meanwhile).
  cached_file_ptr load_small(const actors::file_ref& file) {
    bool same_mtime = false;
    auto fd = open_stored(file, same_mtime);
    std::string bytes;
    if (!fd || !read_all(fd.get(), file.size, bytes))
      return nullptr;
    if (!same_mtime)
      return make_cached_file(file, std::move(bytes));
    return ctx_->cache->insert(file, std::move(bytes));
  }

  // -- sendfile --------------------------------------------------------------

  /// Sends the body window of file_out_ with sendfile(2), after its head.
  /// `sent` counts the bytes of the answer written so far.
  void send_file(std::size_t sent) {
    if (timed_out_) // the watchdog fired between two bursts
      return finish_file(net::error::timed_out, sent);
    auto& job = *file_out_;
    auto sock = stream_.socket().native_handle();
    for (int i = 0; i < sendfile_burst && job.remain > 0; ++i) {
      auto off = static_cast<off_t>(job.offset);
      auto want = static_cast<std::size_t>(
        std::min<uint64_t>(job.remain, sendfile_chunk));
      auto n = ::sendfile(sock, job.fd.get(), &off, want);
      if (n > 0) {
        job.offset += static_cast<uint64_t>(n);
        job.remain -= static_cast<uint64_t>(n);
        sent += static_cast<std::size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return wait_writable(sent);
      // 0: the file ended early (truncated under us); the head promised
      // more bytes, so the connection must close.
      auto ec = n == 0 ? beast::error_code{bhttp::error::short_read}
                       : beast::error_code{errno, beast::system_category()};
      return finish_file(ec, sent);
    }
    if (job.remain == 0)
      return finish_file({}, sent);
    // A long burst: let the other sessions of this io thread have a turn.
    // The client is reading, so its idle limit starts again.
    arm(ctx_->opts.idle_timeout);
    net::post(stream_.get_executor(),
              [self = shared_from_this(), sent] { self->send_file(sent); });
  }

  /// Waits for room in the send buffer, `idle_timeout` at most unless the
  /// client keeps reading (see on_timer).
  void wait_writable(std::size_t sent) {
    arm(ctx_->opts.idle_timeout);
    writing_ = true;
    unsent_ = unsent();
    stream_.socket().async_wait(
      tcp::socket::wait_write,
      [self = shared_from_this(), sent](beast::error_code ec) {
        if (ec && self->timed_out_)
          ec = net::error::timed_out;
        if (ec)
          return self->finish_file(ec, sent);
        self->send_file(sent);
      });
  }

  void finish_file(beast::error_code ec, std::size_t sent) {
    actors::metrics::global().inc(
      "phonon_http_sendfile_bytes_total", {},
      static_cast<double>(file_out_->length - file_out_->remain));
    file_out_.reset();
    cork(false);
    on_write(ec, sent);
  }
  template <class Body>
  void send(std::shared_ptr<outgoing<Body>> out) {
    out->sr.emplace(out->res);
    write_some(std::move(out), 0);
  }

  /// Writes the answer piece by piece, `idle_timeout` at most between
  /// pieces: a slow but steady reader gets a large file whole.
  template <class Body>
  void write_some(std::shared_ptr<outgoing<Body>> out, std::size_t sent) {
    arm(ctx_->opts.idle_timeout);
    writing_ = true;
    unsent_ = unsent();
    auto& sr = *out->sr;
    bhttp::async_write_some(
      stream_, sr,
      [self = shared_from_this(), out = std::move(out),
       sent](beast::error_code ec, std::size_t n) mutable {
        if (ec && self->timed_out_)
          ec = net::error::timed_out;
        if (!ec && !out->sr->is_done())
          return self->write_some(std::move(out), sent + n);
        self->on_write(ec, sent + n);
      });
  }

  void on_write(beast::error_code ec, std::size_t bytes) {
    if (file_out_ && !ec) {
      // The head of a file answer is out: now its body.
      beast::error_code nb;
      stream_.socket().native_non_blocking(true, nb);
      if (!nb)
        return send_file(bytes);
      ec = nb;
    }
    if (file_out_) {
      file_out_.reset();
      cork(false);
    }
    writing_ = false;
    auto elapsed = clock_type::now() - started_;
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(elapsed)
                .count();
    // The arguments cost more than a dropped line: made only when logged.
    if (const auto& lg = log::http(); lg->should_log(spdlog::level::info))
      lg->info("request req_id={} method={} target={} status={} bytes={} "
               "us={} subject={}",
               req_id_, log_text(method_, 32),
               log_text(without_credentials(target_)), status_, bytes, us,
               subject_.empty() ? "-" : log_text(subject_, 128));
    auto& series = series_of(route_name_, method_label(method_), status_);
    series.requests->add(1);
    series.duration->observe(static_cast<double>(us) / 1e6);
    static auto& response_bytes = actors::metrics::global().counter(
      "phonon_http_response_bytes_total");
    response_bytes.add(static_cast<double>(bytes));
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
    arm(linger_time);
    linger_buf_.resize(16 * 1024);
    linger_next();
  }

  void linger_next() {
    stream_.async_read_some(
      net::buffer(linger_buf_),
      [self = shared_from_this()](beast::error_code ec, std::size_t n) {
        self->lingered_ += n;
        if (ec || self->timed_out_ || self->lingered_ > linger_limit)
          return self->do_close();
        self->linger_next();
      });
  }

  void do_close() {
    closed_ = true;
    beast::error_code ec;
    timer_.cancel();
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.socket().close(ec);
  }

  beast::tcp_stream stream_;
  net::steady_timer timer_;
  std::shared_ptr<const context> ctx_;
  /// Bounded so that nothing the parser keeps (a head, a chunk header with
  /// its extensions, a trailer section) can grow past it: Beast's fields
  /// throw std::length_error for a field over 64 KiB, and trailers have no
  /// limit of their own. Past it a read fails with buffer_overflow.
  beast::flat_buffer buffer_{read_buffer_limit};
  std::optional<bhttp::request_parser<bhttp::empty_body>> head_;
  std::optional<bhttp::request_parser<discard_body>> small_;
  std::optional<bhttp::request_parser<spool_body>> upload_;
  std::shared_ptr<upload_sink> sink_;
  std::vector<char> linger_buf_;
  /// The head of a file answer being written (wire.hpp); reused, so its
  /// capacity stays with the connection.
  std::string wire_;
  uint64_t lingered_ = 0;
  // The watchdog (see the top of this file).
  clock_type::time_point deadline_ = clock_type::time_point::max();
  bool timed_out_ = false;
  /// An answer is being written (the idle check looks at the send queue).
  bool writing_ = false;
  /// The send queue's length when last looked at, or queue_unknown.
  int unsent_ = -1;
  static constexpr int queue_unknown = std::numeric_limits<int>::max();
  /// Answers up to this size do not look at the send queue when written.
  static constexpr std::size_t unsampled_answer_max = 64 * 1024;
  /// The body of a file answer that goes out with sendfile(2) once its
  /// head is written.
  struct file_window {
    unique_fd fd;
    uint64_t offset = 0;
    uint64_t length = 0;
    uint64_t remain = 0;
  };
  std::optional<file_window> file_out_;
  bool closed_ = false;
  // The request being served.
  admission adm_;
  /// An upload's place in limits.per_user_inflight (user_gate.hpp), held
  /// until it is answered.
  std::optional<actors::user_gate::ticket> inflight_;
  std::optional<reply> early_;
  /// This process's number of the request (spool file names).
  uint64_t req_seq_ = 0;
  /// X-Request-Id of the request.
  std::string req_id_;
  std::string method_;
  std::string target_;
  std::string query_;
  std::string range_;
  std::string if_none_match_;
  std::string if_modified_since_;
  std::string if_range_;
  /// The Origin field ("" when absent).
  std::string origin_;
  /// Who the request came from (auth.hpp), for the access log.
  std::string subject_;
  /// The request is an OPTIONS answered with its own CORS headers.
  bool preflight_ = false;
  /// The caller may read (auth.hpp): answers may carry signed links.
  bool may_read_ = true;
  route route_;
  std::string route_name_;
  unsigned version_ = 11;
  bool keep_alive_ = false;
  bool head_only_ = false;
  bool close_after_ = false;
  unsigned status_ = 0;
  clock_type::time_point started_;
};

class listener : public std::enable_shared_from_this<listener> {
public:
  /// Accepts on the first of `iocs` and hands connections to all of them
  /// in turn.
  listener(std::vector<net::io_context*> iocs, tcp::endpoint ep,
           std::shared_ptr<const context> ctx)
    : iocs_(std::move(iocs)),
      acceptor_(*iocs_.front()),
      pause_(acceptor_.get_executor()),
      ctx_(std::move(ctx)) {
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
      self->stopped_ = true;
      self->pause_.cancel();
      self->acceptor_.close(ec);
    });
  }

private:
  void do_accept() {
    if (stopped_)
      return;
    // Round robin: each connection lives on one io thread for its life.
    auto& ioc = *iocs_[next_++ % iocs_.size()];
    acceptor_.async_accept(ioc, beast::bind_front_handler(&listener::on_accept,
                                                          shared_from_this()));
  }

  void on_accept(beast::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted || stopped_)
      return;
    if (ec)
      return on_accept_error(ec);
    auto& open = *ctx_->connections;
    if (open.load() >= ctx_->opts.max_connections) {
      // Accepted and closed at once: the ones already open are unharmed.
      beast::error_code ignored;
      socket.close(ignored);
      actors::metrics::global().inc("phonon_http_connections_refused_total");
      if (auto held = refused_log_.admit(clock_type::now()))
        log::http()->warn("connection refused: server.max_connections={} "
                          "reached suppressed={}",
                          ctx_->opts.max_connections, *held);
      return do_accept();
    }
    ++open;
    std::make_shared<session>(std::move(socket), ctx_)->run();
    do_accept();
  }

  void on_accept_error(beast::error_code ec) {
    // Out of descriptors the same error repeats as fast as the loop runs:
    // one line a second, and a pause before the next try.
    if (auto held = error_log_.admit(clock_type::now()))
      log::http()->warn("accept failed error={} suppressed={}", ec.message(),
                        *held);
    auto pause = ec.category() == boost::system::system_category()
                   ? accept_pause(ec.value())
                   : std::chrono::milliseconds{0};
    if (pause.count() == 0)
      return do_accept();
    pause_.expires_after(pause);
    pause_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (!ec)
        self->do_accept();
    });
  }

  std::vector<net::io_context*> iocs_;
  std::size_t next_ = 0;
  tcp::acceptor acceptor_;
  net::steady_timer pause_;
  std::shared_ptr<const context> ctx_;
  log_throttle error_log_;
  log_throttle refused_log_;
  bool stopped_ = false;
};

} // namespace

/// Runs the io_context until it is stopped. A completion handler that
/// throws (a bug, or a library throwing where it should not) loses its own
/// connection, whose handlers and so whose last reference are dropped with
/// the exception, and never the whole process.
static void run_io(net::io_context& ioc) {
  for (;;) {
    try {
      ioc.run();
      return;
    } catch (const std::exception& e) {
      log::http()->error("io handler failed error={}", e.what());
    } catch (...) {
      log::http()->error("io handler failed error=unknown");
    }
  }
}

struct server::impl {
  std::shared_ptr<context> ctx;
  /// One io_context per io thread (see the top of this file).
  std::vector<std::unique_ptr<net::io_context>> iocs;
  /// Keeps each io thread running while its context has nothing to do.
  std::vector<net::executor_work_guard<net::io_context::executor_type>>
    guards;
  std::shared_ptr<listener> lst;
  std::vector<std::thread> threads;
};

server::server(server_options opts, services svc) : impl_(new impl) {
  impl_->ctx = std::make_shared<context>();
  impl_->ctx->opts = std::move(opts);
  impl_->ctx->svc = svc;
  impl_->ctx->cache = std::make_shared<response_cache>(
    impl_->ctx->opts.memory_cache_bytes,
    impl_->ctx->opts.memory_cache_item_max);
}

server::~server() {
  stop();
}

uint16_t server::start() {
  describe_metrics();
  publish_cache_metrics(*impl_->ctx->cache);
  actors::metrics::global().inc("phonon_http_memory_cache_hits_total", {}, 0);
  actors::metrics::global().inc("phonon_http_sendfile_bytes_total", {}, 0);
  actors::metrics::global().inc("phonon_http_connections_refused_total", {},
                                0);
  actors::metrics::global().inc("phonon_http_response_bytes_total", {}, 0);
  const auto& opts = impl_->ctx->opts;
  auto addr = net::ip::make_address(opts.host);
  std::vector<net::io_context*> iocs;
  for (int i = 0; i < std::max(1, opts.threads); ++i) {
    // Run by one thread; others only post to it (answers from the actors).
    impl_->iocs.push_back(std::make_unique<net::io_context>(1));
    iocs.push_back(impl_->iocs.back().get());
    impl_->guards.push_back(net::make_work_guard(*iocs.back()));
  }
  impl_->lst = std::make_shared<listener>(iocs, tcp::endpoint{addr, opts.port},
                                          impl_->ctx);
  impl_->lst->run();
  for (auto* ioc : iocs)
    impl_->threads.emplace_back([ioc] { run_io(*ioc); });
  return impl_->lst->port();
}

void server::stop() {
  if (impl_->threads.empty())
    return;
  impl_->lst->stop();
  impl_->guards.clear();
  for (auto& ioc : impl_->iocs)
    ioc->stop();
  for (auto& t : impl_->threads)
    t.join();
  impl_->threads.clear();
}

} // namespace phonon::http
