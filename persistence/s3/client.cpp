#include "persistence/s3/client.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <utility>

#include <curl/curl.h>

#include "persistence/s3/sigv4.hpp"

namespace phonon::persistence::s3 {

namespace {

constexpr uint64_t min_part_size = 5ull * 1024 * 1024;
constexpr uint64_t max_parts = 10000;
/// Cap on a body kept in memory: error documents and listing pages (a page
/// of 1,000 keys is a few hundred KiB).
constexpr size_t max_buffered_body = 16 * 1024 * 1024;

// -- bodies to send -----------------------------------------------------------

/// Bytes to upload, readable at any offset (so a retry or a part can start
/// anywhere without holding the data in memory).
class body_source {
public:
  virtual ~body_source() = default;
  virtual uint64_t size() const = 0;
  /// Reads up to `n` bytes at `offset`; returns how many (0 only at end).
  virtual size_t read(uint64_t offset, char* buf, size_t n) const = 0;
};

class bytes_source final : public body_source {
public:
  explicit bytes_source(std::string_view bytes) : bytes_(bytes) {
    // nop
  }
  uint64_t size() const override {
    return bytes_.size();
  }
  size_t read(uint64_t offset, char* buf, size_t n) const override {
    if (offset >= bytes_.size())
      return 0;
    n = std::min<size_t>(n, bytes_.size() - offset);
    std::memcpy(buf, bytes_.data() + offset, n);
    return n;
  }

private:
  std::string_view bytes_;
};

class file_source final : public body_source {
public:
  explicit file_source(const std::filesystem::path& path) : path_(path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0)
      fail(errno, "open");
    struct stat st {};
    if (::fstat(fd_, &st) != 0) {
      auto err = errno;
      ::close(fd_);
      fail(err, "stat");
    }
    size_ = static_cast<uint64_t>(st.st_size);
  }
  ~file_source() override {
    ::close(fd_);
  }
  file_source(const file_source&) = delete;
  file_source& operator=(const file_source&) = delete;

  uint64_t size() const override {
    return size_;
  }
  size_t read(uint64_t offset, char* buf, size_t n) const override {
    for (;;) {
      auto got = ::pread(fd_, buf, n, static_cast<off_t>(offset));
      if (got >= 0)
        return static_cast<size_t>(got);
      if (errno != EINTR)
        fail(errno, "read");
    }
  }

private:
  [[noreturn]] void fail(int err, const char* what) const {
    throw error(errc::other, std::string{"s3 upload: "} + what + " "
                               + path_.string() + ": "
                               + std::generic_category().message(err));
  }

  std::filesystem::path path_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

/// Hex SHA-256 of `len` bytes of `src` from `offset`, read in pieces.
std::string hash_range(const body_source& src, uint64_t offset,
                       uint64_t len) {
  sha256_hasher h;
  std::string buf(256 * 1024, '\0');
  while (len > 0) {
    auto n = src.read(offset, buf.data(),
                      static_cast<size_t>(std::min<uint64_t>(len, buf.size())));
    if (n == 0)
      throw error(errc::other, "s3 upload: the file shrank while hashed");
    h.update({buf.data(), n});
    offset += n;
    len -= n;
  }
  return h.hex_digest();
}

// -- where to receive ---------------------------------------------------------

/// Where a 2xx answer's body goes, and whether a retry can start over.
struct sink_target {
  const byte_sink* write = nullptr;
  /// Called before a retry once bytes were delivered; false: impossible.
  std::function<bool()> rewind;
};

// -- one request --------------------------------------------------------------

struct call {
  std::string method;
  /// Full object key (settings prefix included); empty: the bucket itself.
  std::string key;
  query_list query;
  /// Sent and signed besides host and the signer's own (e.g. Range).
  header_list extra;
  const body_source* body = nullptr;
  uint64_t body_offset = 0;
  uint64_t body_length = 0;
  /// Payload hash to sign; computed from the body when empty.
  std::string payload_hash;
  /// 2xx bodies go here; when null they are kept in `result::body`.
  sink_target* sink = nullptr;
  bool head = false;
};

struct result {
  long status = 0;
  std::string body;
  /// Bytes handed to the sink.
  uint64_t delivered = 0;
  header_list headers; // names lower-cased

  std::string header(std::string_view name) const {
    for (const auto& h : headers)
      if (h.name == name)
        return h.value;
    return {};
  }
};

/// State of one try, shared with curl's callbacks.
struct transfer {
  const call* req = nullptr;
  result* out = nullptr;
  // upload
  uint64_t read_pos = 0;
  std::exception_ptr read_error;
  // download
  uint64_t delivered = 0;
  std::exception_ptr sink_error;
  bool body_too_large = false;
};

bool success(long status) {
  return status >= 200 && status < 300;
}

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<transfer*>(user);
  std::string_view line{data, size * n};
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r'))
    line.remove_suffix(1);
  if (line.rfind("HTTP/", 0) == 0) {
    // A new status line (after a 100 Continue, too): start over.
    t->out->headers.clear();
    auto sp = line.find(' ');
    t->out->status = sp == std::string_view::npos
                       ? 0
                       : std::strtol(std::string{line.substr(sp + 1, 3)}
                                       .c_str(),
                                     nullptr, 10);
    return size * n;
  }
  auto colon = line.find(':');
  if (colon == std::string_view::npos)
    return size * n;
  std::string name{line.substr(0, colon)};
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  auto value = line.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
    value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t'))
    value.remove_suffix(1);
  t->out->headers.push_back({std::move(name), std::string{value}});
  return size * n;
}

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<transfer*>(user);
  auto len = size * n;
  if (t->req->sink != nullptr && success(t->out->status)) {
    try {
      (*t->req->sink->write)({data, len});
      t->delivered += len;
      return len;
    } catch (...) {
      t->sink_error = std::current_exception();
      return 0; // CURLE_WRITE_ERROR
    }
  }
  if (t->out->body.size() + len > max_buffered_body) {
    t->body_too_large = true;
    return 0;
  }
  t->out->body.append(data, len);
  return len;
}

size_t on_read(char* buf, size_t size, size_t n, void* user) {
  auto* t = static_cast<transfer*>(user);
  const auto& req = *t->req;
  auto end = req.body_offset + req.body_length;
  auto want = std::min<uint64_t>(size * n, end - t->read_pos);
  if (want == 0)
    return 0;
  try {
    auto got = req.body->read(t->read_pos, buf, static_cast<size_t>(want));
    if (got == 0)
      throw error(errc::other, "s3 upload: the file shrank while sent");
    t->read_pos += got;
    return got;
  } catch (...) {
    t->read_error = std::current_exception();
    return CURL_READFUNC_ABORT;
  }
}

int on_seek(void* user, curl_off_t offset, int origin) {
  auto* t = static_cast<transfer*>(user);
  if (origin != SEEK_SET || offset < 0
      || static_cast<uint64_t>(offset) > t->req->body_length)
    return CURL_SEEKFUNC_FAIL;
  t->read_pos = t->req->body_offset + static_cast<uint64_t>(offset);
  return CURL_SEEKFUNC_OK;
}

/// Connection-level failures worth another try.
bool transient(CURLcode rc) {
  switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
      return true;
    default:
      return false;
  }
}

bool retryable_status(long status) {
  return status >= 500 || status == 429;
}

std::string strip_slash(std::string s) {
  while (!s.empty() && s.back() == '/')
    s.pop_back();
  return s;
}

/// Object info from a GET or HEAD answer.
object_info info_of(const result& r) {
  object_info info;
  info.etag = r.header("etag");
  info.last_modified = r.header("last-modified");
  auto range = r.header("content-range"); // "bytes 0-4/1234"
  auto slash = range.rfind('/');
  if (r.status == 206 && slash != std::string::npos)
    info.size = std::strtoull(range.c_str() + slash + 1, nullptr, 10);
  else if (auto length = r.header("content-length"); !length.empty())
    info.size = std::strtoull(length.c_str(), nullptr, 10);
  else // chunked: what arrived (S3 itself always sends a length)
    info.size = r.delivered;
  return info;
}

/// Escapes text for an XML element (quotes may stay: element content).
std::string xml_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '&')
      out += "&amp;";
    else if (c == '<')
      out += "&lt;";
    else if (c == '>')
      out += "&gt;";
    else
      out += c;
  }
  return out;
}

} // namespace

// -- public helpers -----------------------------------------------------------

std::string to_string(errc x) {
  switch (x) {
    case errc::not_found:
      return "not_found";
    case errc::forbidden:
      return "forbidden";
    case errc::unavailable:
      return "unavailable";
    case errc::other:
      return "other";
  }
  return "other";
}

error::error(errc code, const std::string& what, long http_status,
             std::string s3_code)
  : storage_error(what, code == errc::unavailable
                          ? storage_error::kind::unavailable
                          : storage_error::kind::failure),
    code_(code),
    http_status_(http_status),
    s3_code_(std::move(s3_code)) {
  // nop
}

uint64_t effective_part_size(uint64_t size, uint64_t part_size) {
  if (part_size == 0)
    throw std::invalid_argument("part size 0");
  if ((size + part_size - 1) / part_size <= max_parts)
    return part_size;
  // Round up to whole MiB.
  constexpr uint64_t mib = 1024 * 1024;
  auto need = (size + max_parts - 1) / max_parts;
  return (need + mib - 1) / mib * mib;
}

std::chrono::milliseconds backoff_delay(std::chrono::milliseconds base,
                                        int next) {
  constexpr std::chrono::milliseconds cap{2000};
  auto d = base;
  for (int i = 2; i < next && d < cap; ++i)
    d *= 2;
  return std::min(d, cap);
}

// -- the client ---------------------------------------------------------------

struct client::impl {
  settings cfg;
  credentials creds;
  std::string scheme;    // "http" or "https"
  std::string authority; // host[:port] of the endpoint
  CURL* curl = nullptr;
  char curl_error[CURL_ERROR_SIZE] = {};

  explicit impl(settings s) : cfg(std::move(s)) {
    auto sep = cfg.endpoint.find("://");
    if (sep == std::string::npos)
      throw std::invalid_argument("s3 endpoint: no scheme (http:// or "
                                  "https://)");
    scheme = cfg.endpoint.substr(0, sep);
    if (scheme != "http" && scheme != "https")
      throw std::invalid_argument("s3 endpoint: scheme must be http or "
                                  "https");
    authority = strip_slash(cfg.endpoint.substr(sep + 3));
    if (authority.empty() || authority.find('/') != std::string::npos
        || authority.find('?') != std::string::npos
        || authority.find('@') != std::string::npos)
      throw std::invalid_argument("s3 endpoint: host[:port] only, no path");
    if (cfg.bucket.empty())
      throw std::invalid_argument("s3 bucket: empty");
    if (!cfg.path_style && cfg.bucket.find('.') != std::string::npos
        && scheme == "https")
      throw std::invalid_argument("s3 bucket: a name with '.' needs "
                                  "path_style over https (certificate)");
    if (cfg.region.empty())
      throw std::invalid_argument("s3 region: empty");
    if (cfg.part_size < min_part_size)
      throw std::invalid_argument("s3 part_size: below 5 MiB, S3's minimum");
    if (cfg.attempts < 1)
      throw std::invalid_argument("s3 attempts: below 1");
    if (!cfg.prefix.empty() && cfg.prefix.back() != '/')
      cfg.prefix += '/';
    creds = {cfg.access_key, cfg.secret_key, ""};

    static std::once_flag once;
    static CURLcode init_rc = CURLE_OK;
    std::call_once(once,
                   [] { init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); });
    if (init_rc != CURLE_OK)
      throw std::runtime_error("curl_global_init failed");
    curl = curl_easy_init();
    if (curl == nullptr)
      throw std::runtime_error("curl_easy_init failed");
  }

  ~impl() {
    curl_easy_cleanup(curl);
  }

  std::string full_key(std::string_view key) const {
    if (key.empty())
      throw std::invalid_argument("s3: empty object key");
    return cfg.prefix + std::string{key};
  }

  /// "bucket/key" for messages.
  std::string where(const call& c) const {
    return cfg.bucket + "/" + c.key;
  }

  std::string host() const {
    return cfg.path_style ? authority : cfg.bucket + "." + authority;
  }

  /// The path as sent (encoded once).
  std::string path_of(const call& c) const {
    std::string decoded = cfg.path_style ? "/" + cfg.bucket : "";
    if (!c.key.empty())
      decoded += "/" + c.key;
    if (decoded.empty())
      decoded = "/";
    return encode_path(decoded);
  }

  /// One try. Fills `out`; returns curl's code.
  CURLcode perform(const call& c, transfer& t) {
    auto* h = curl;
    curl_easy_reset(h); // keeps the connection cache
    curl_error[0] = '\0';

    request req;
    req.method = c.method;
    req.path = path_of(c);
    req.query = c.query;
    req.headers = {{"Host", host()}};
    req.headers.insert(req.headers.end(), c.extra.begin(), c.extra.end());
    req.payload_hash = c.payload_hash;
    auto sig = sign(req, creds,
                    {cfg.region, "s3", std::time(nullptr)});

    curl_slist* list = nullptr;
    for (const auto* hs : {&req.headers, &sig.headers_to_add})
      for (const auto& hd : *hs)
        list = curl_slist_append(list, (hd.name + ": " + hd.value).c_str());
    // No Expect: 100-continue (a second's wait on servers that never
    // answer it) and no Content-Type of curl's choosing.
    list = curl_slist_append(list, "Expect:");
    list = curl_slist_append(list, "Content-Type:");
    std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> guard{
      list, &curl_slist_free_all};

    auto qs = canonical_query_string(req.query);
    auto url = scheme + "://" + host() + req.path
               + (qs.empty() ? "" : "?" + qs);
    curl_easy_setopt(h, CURLOPT_URL, url.c_str());
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, curl_error);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(cfg.connect_timeout.count()));
    auto idle_s = std::max<long>(
      1, static_cast<long>((cfg.idle_timeout.count() + 999) / 1000));
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, idle_s);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &t);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &t);

    if (c.head) {
      curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (c.body != nullptr) {
      t.read_pos = c.body_offset;
      curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
      if (c.method != "PUT")
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, c.method.c_str());
      curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE,
                       static_cast<curl_off_t>(c.body_length));
      curl_easy_setopt(h, CURLOPT_READFUNCTION, &on_read);
      curl_easy_setopt(h, CURLOPT_READDATA, &t);
      curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, &on_seek);
      curl_easy_setopt(h, CURLOPT_SEEKDATA, &t);
    } else if (c.method == "GET") {
      curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else {
      curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, c.method.c_str());
    }
    return curl_easy_perform(h);
  }

  /// Runs `c` with retries; returns the 2xx result or throws `error`.
  result execute(call c) {
    if (c.body != nullptr && c.payload_hash.empty())
      c.payload_hash = hash_range(*c.body, c.body_offset, c.body_length);
    if (c.payload_hash.empty())
      c.payload_hash = c.body == nullptr ? std::string{empty_payload_sha256}
                                         : std::string{unsigned_payload};
    auto what = "s3 " + c.method + " " + where(c);
    std::optional<error> last;
    uint64_t delivered = 0;
    for (int attempt = 1; attempt <= cfg.attempts; ++attempt) {
      if (attempt > 1) {
        if (delivered > 0 && !(c.sink->rewind && c.sink->rewind()))
          throw error(last->code(),
                      std::string{last->what()}
                        + " (not retried: bytes already delivered)",
                      last->http_status(), last->s3_code());
        std::this_thread::sleep_for(
          backoff_delay(cfg.retry_delay, attempt));
      }
      result r;
      transfer t;
      t.req = &c;
      t.out = &r;
      auto rc = perform(c, t);
      delivered = t.delivered;
      if (t.read_error)
        std::rethrow_exception(t.read_error);
      if (t.sink_error)
        std::rethrow_exception(t.sink_error);
      if (t.body_too_large)
        throw error(errc::other, what + ": answer over 16 MiB", r.status);
      if (rc != CURLE_OK) {
        auto detail = curl_error[0] != '\0' ? std::string{curl_error}
                                            : curl_easy_strerror(rc);
        if (!transient(rc))
          throw error(errc::other, what + ": " + detail);
        last.emplace(errc::unavailable,
                     what + ": " + detail + " (" + std::to_string(attempt)
                       + " of " + std::to_string(cfg.attempts) + " tries)");
        continue;
      }
      if (success(r.status)) {
        r.delivered = t.delivered;
        return r;
      }
      auto code = error_code(r);
      auto msg = what + ": HTTP " + std::to_string(r.status)
                 + (code.first.empty() ? "" : " " + code.first)
                 + (code.second.empty() ? "" : ": " + code.second);
      if (r.status == 404)
        throw error(errc::not_found, msg, r.status, code.first);
      if (r.status == 403)
        throw error(errc::forbidden, msg, r.status, code.first);
      if (!retryable_status(r.status))
        throw error(errc::other, msg, r.status, code.first);
      last.emplace(errc::unavailable,
                   msg + " (" + std::to_string(attempt) + " of "
                     + std::to_string(cfg.attempts) + " tries)",
                   r.status, code.first);
    }
    throw *last;
  }

  /// S3's <Code> and <Message> from an error body ("" when none: HEAD).
  static std::pair<std::string, std::string> error_code(const result& r) {
    if (r.body.empty())
      return {};
    try {
      auto doc = parse_xml(r.body);
      if (doc.name == "Error")
        return {doc.child_text("Code"), doc.child_text("Message")};
    } catch (const std::exception&) {
      // not XML (a proxy's HTML page): no code
    }
    return {};
  }

  xml_node parse_answer(const call& c, const result& r) {
    try {
      return parse_xml(r.body);
    } catch (const std::exception& e) {
      throw error(errc::other,
                  "s3 " + c.method + " " + where(c) + ": " + e.what(),
                  r.status);
    }
  }

  std::string put(std::string_view key, const body_source& src) {
    call c;
    c.method = "PUT";
    c.key = full_key(key);
    auto size = src.size();
    if (size > cfg.part_size)
      return put_multipart(c.key, src);
    c.body = &src;
    c.body_length = size;
    return execute(std::move(c)).header("etag");
  }

  std::string put_multipart(const std::string& key, const body_source& src) {
    call init;
    init.method = "POST";
    init.key = key;
    init.query = {{"uploads", ""}};
    auto r = execute(init);
    auto upload_id = parse_answer(init, r).child_text("UploadId");
    if (upload_id.empty())
      throw error(errc::other, "s3 POST " + where(init)
                                 + "?uploads: no UploadId in the answer");
    try {
      auto size = src.size();
      auto part = effective_part_size(size, cfg.part_size);
      std::string complete = "<CompleteMultipartUpload>";
      int number = 1;
      for (uint64_t off = 0; off < size; off += part, ++number) {
        call p;
        p.method = "PUT";
        p.key = key;
        p.query = {{"partNumber", std::to_string(number)},
                   {"uploadId", upload_id}};
        p.body = &src;
        p.body_offset = off;
        p.body_length = std::min(part, size - off);
        auto etag = execute(std::move(p)).header("etag");
        if (etag.empty())
          throw error(errc::other, "s3 PUT " + where(init) + " part "
                                     + std::to_string(number)
                                     + ": no ETag in the answer");
        complete += "<Part><PartNumber>" + std::to_string(number)
                    + "</PartNumber><ETag>" + xml_escape(etag)
                    + "</ETag></Part>";
      }
      complete += "</CompleteMultipartUpload>";
      bytes_source body{complete};
      call done;
      done.method = "POST";
      done.key = key;
      done.query = {{"uploadId", upload_id}};
      done.body = &body;
      done.body_length = body.size();
      auto answer = execute(done);
      // S3 may answer 200 and still fail: the error is then the body.
      auto doc = parse_answer(done, answer);
      if (doc.name == "Error") {
        auto code = doc.child_text("Code");
        throw error(code == "InternalError" || code == "SlowDown"
                      ? errc::unavailable
                      : errc::other,
                    "s3 POST " + where(done) + "?uploadId: " + code + ": "
                      + doc.child_text("Message"),
                    answer.status, code);
      }
      auto etag = doc.child_text("ETag");
      return etag.empty() ? answer.header("etag") : etag;
    } catch (...) {
      abort_upload(key, upload_id);
      throw;
    }
  }

  /// Best effort: the original failure is what the caller must see. (s3rver
  /// does not implement the abort and answers 405; its parts stay on disk.)
  void abort_upload(const std::string& key, const std::string& upload_id) {
    try {
      call c;
      c.method = "DELETE";
      c.key = key;
      c.query = {{"uploadId", upload_id}};
      execute(std::move(c));
    } catch (const std::exception&) {
      // nop: a bucket lifecycle rule cleans up abandoned uploads
    }
  }

  object_info get(std::string_view key, sink_target& sink,
                  std::optional<std::pair<uint64_t, uint64_t>> range) {
    call c;
    c.method = "GET";
    c.key = full_key(key);
    c.sink = &sink;
    if (range) {
      if (range->first > range->second)
        throw std::invalid_argument("s3 range: first > last");
      c.extra.push_back({"Range", "bytes=" + std::to_string(range->first)
                                    + "-" + std::to_string(range->second)});
    }
    return info_of(execute(std::move(c)));
  }
};

client::client(settings cfg) : impl_(std::make_unique<impl>(std::move(cfg))) {
  // nop
}

client::~client() = default;

const std::string& client::bucket() const noexcept {
  return impl_->cfg.bucket;
}

std::string client::put_file(std::string_view key,
                             const std::filesystem::path& path) {
  file_source src{path};
  return impl_->put(key, src);
}

std::string client::put_bytes(std::string_view key, std::string_view bytes) {
  bytes_source src{bytes};
  return impl_->put(key, src);
}

object_info client::get(std::string_view key, const byte_sink& sink) {
  sink_target t{&sink, nullptr};
  return impl_->get(key, t, std::nullopt);
}

object_info client::get_to_file(std::string_view key,
                                const std::filesystem::path& path) {
  auto fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                   0644);
  auto fail = [&](int err, const char* what) {
    return error(errc::other, std::string{"s3 GET: "} + what + " "
                                + path.string() + ": "
                                + std::generic_category().message(err));
  };
  if (fd < 0)
    throw fail(errno, "open");
  std::unique_ptr<int, void (*)(int*)> closer{&fd, [](int* p) {
                                                if (*p >= 0)
                                                  ::close(*p);
                                              }};
  uint64_t offset = 0;
  byte_sink write = [&](std::string_view bytes) {
    while (!bytes.empty()) {
      auto n = ::pwrite(fd, bytes.data(), bytes.size(),
                        static_cast<off_t>(offset));
      if (n < 0) {
        if (errno == EINTR)
          continue;
        throw fail(errno, "write");
      }
      offset += static_cast<uint64_t>(n);
      bytes.remove_prefix(static_cast<size_t>(n));
    }
  };
  sink_target t{&write, [&] {
                  offset = 0;
                  return ::ftruncate(fd, 0) == 0;
                }};
  auto info = impl_->get(key, t, std::nullopt);
  auto rc = ::close(fd);
  fd = -1;
  if (rc != 0)
    throw fail(errno, "close");
  return info;
}

object_info client::get_range(std::string_view key, uint64_t first,
                              uint64_t last, const byte_sink& sink) {
  sink_target t{&sink, nullptr};
  return impl_->get(key, t, std::make_pair(first, last));
}

object_info client::get_last(std::string_view key, uint64_t n,
                             const byte_sink& sink) {
  auto info = head(key);
  if (!info)
    throw error(errc::not_found, "s3 HEAD " + impl_->cfg.bucket + "/"
                                   + impl_->full_key(key) + ": HTTP 404",
                404);
  if (n == 0 || info->size == 0)
    return *info;
  auto first = info->size > n ? info->size - n : 0;
  return get_range(key, first, info->size - 1, sink);
}

std::optional<object_info> client::head(std::string_view key) {
  call c;
  c.method = "HEAD";
  c.key = impl_->full_key(key);
  c.head = true;
  try {
    return info_of(impl_->execute(std::move(c)));
  } catch (const error& e) {
    if (e.code() == errc::not_found)
      return std::nullopt;
    throw;
  }
}

namespace {

/// One ListObjectsV2 request: `max_keys` keys under `full_prefix` (the
/// settings' prefix included) after `token` ("" for the first page).
/// Throws unless the answer is a ListBucketResult.
template <class Impl>
xml_node list_page(Impl& impl, const std::string& full_prefix, int max_keys,
                   const std::string& token) {
  call c;
  c.method = "GET";
  c.query = {{"list-type", "2"}, {"max-keys", std::to_string(max_keys)}};
  if (!full_prefix.empty())
    c.query.push_back({"prefix", full_prefix});
  if (!token.empty())
    c.query.push_back({"continuation-token", token});
  auto r = impl.execute(c);
  auto doc = impl.parse_answer(c, r);
  if (doc.name != "ListBucketResult")
    throw error(errc::other, "s3 GET " + impl.cfg.bucket
                               + "?list-type=2: unexpected <" + doc.name
                               + ">");
  return doc;
}

} // namespace

void client::list(std::string_view prefix,
                  const std::function<void(const listed_object&)>& each,
                  int page_size) {
  if (page_size < 1 || page_size > 1000)
    throw std::invalid_argument("s3 list: page size outside 1..1000");
  auto full_prefix = impl_->cfg.prefix + std::string{prefix};
  // No encoding-type=url: s3rver ignores it (keys would come back raw and
  // be decoded twice); the XML escaping is decoded instead.
  std::string token;
  for (;;) {
    auto doc = list_page(*impl_, full_prefix, page_size, token);
    for (const auto& n : doc.children) {
      if (n.name != "Contents")
        continue;
      auto key = n.child_text("Key");
      if (key.compare(0, impl_->cfg.prefix.size(), impl_->cfg.prefix) != 0)
        continue; // cannot happen: the listing was by this prefix
      listed_object o;
      o.key = key.substr(impl_->cfg.prefix.size());
      o.size = std::strtoull(n.child_text("Size").c_str(), nullptr, 10);
      o.etag = n.child_text("ETag");
      o.last_modified = n.child_text("LastModified");
      each(o);
    }
    if (doc.child_text("IsTruncated") != "true")
      return;
    token = doc.child_text("NextContinuationToken");
    if (token.empty())
      throw error(errc::other, "s3 GET " + impl_->cfg.bucket
                                 + "?list-type=2: truncated listing "
                                   "without NextContinuationToken");
  }
}

void client::probe() {
  list_page(*impl_, impl_->cfg.prefix, 1, "");
}

std::vector<listed_object> client::list(std::string_view prefix,
                                        int page_size) {
  std::vector<listed_object> out;
  list(
    prefix, [&](const listed_object& o) { out.push_back(o); }, page_size);
  return out;
}

void client::remove(std::string_view key) {
  call c;
  c.method = "DELETE";
  c.key = impl_->full_key(key);
  impl_->execute(std::move(c));
}

size_t client::remove_prefix(std::string_view prefix, int page_size) {
  if (prefix.empty())
    throw std::invalid_argument("s3 remove_prefix: empty prefix");
  // List first, then delete: no listing runs over keys being deleted. One
  // DELETE per object rather than DeleteObjects (POST ?delete, 1,000 keys
  // per request): that one needs Content-MD5 and reports failures per key
  // inside a 200, and what Phonon deletes by prefix is one recording's
  // handful of objects.
  std::vector<std::string> keys;
  list(
    prefix, [&](const listed_object& o) { keys.push_back(o.key); },
    page_size);
  for (const auto& k : keys)
    remove(k);
  return keys.size();
}

} // namespace phonon::persistence::s3
