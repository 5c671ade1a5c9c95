#pragma once

// Decisions made at the HTTP edge before a byte of a body is read: which
// route a request head names, how its body is framed and how much of it may
// be read, or which error answers it (and whether the connection must close
// after it). Also the accept loop's pauses and log throttle. Pure functions
// and plain types: the session only reads, writes and times out (as in
// Beast's advanced server), and everything here is unit-tested and fuzzed
// without a socket.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/router.hpp"

namespace phonon::http {

// -- request heads ------------------------------------------------------------

/// Most bytes a body may have on a route that takes none (API.md "Limits").
constexpr uint64_t small_body_limit = 64 * 1024;

/// Extra bytes a multipart upload may carry around the file part (framing,
/// other small fields) on top of server.max_upload_size.
constexpr uint64_t multipart_allowance = 64 * 1024;

/// What the parser saw in a request head, without Beast types. The views
/// point into the parser's head and must outlive the call to admit().
struct head_facts {
  /// The method as sent, e.g. "GET".
  std::string_view method;
  /// The request-target as sent.
  std::string_view target;
  /// HTTP version times ten: 10 or 11.
  unsigned version = 11;
  /// Number of Host fields.
  size_t host_count = 0;
  /// Value of every Content-Length field, in order.
  std::vector<std::string_view> content_length;
  /// Value of every Transfer-Encoding field, in order.
  std::vector<std::string_view> transfer_encoding;
  /// Value of the Content-Type field ("" when absent).
  std::string_view content_type;
};

/// The settings admit() applies.
struct admission_limits {
  /// server.max_upload_size: most audio bytes of one upload.
  uint64_t max_upload_size = 10 * 1024 * 1024;
  /// Names the console's files (console.hpp's is_console_file) while
  /// server.console is on; null: the console's paths are unknown paths
  /// like any other (404 whatever the method). A pointer, so that
  /// admission stays free of the embedded files (the fuzz targets link
  /// it alone).
  bool (*is_console_file)(std::string_view name) = nullptr;
};

/// How the session reads the body of an admitted request.
enum class body_kind {
  none,   ///< no body: nothing to read
  small,  ///< read and discard at most small_body_limit bytes
  upload, ///< spool through an upload_sink, at most body_limit bytes
};

/// An error answer decided from the head alone.
struct refusal {
  unsigned status = 400;
  /// Safe to show to the client.
  std::string message;
  /// The JSON error body's "code".
  std::string code;
  /// Close the connection after the answer: the framing cannot be trusted
  /// or the body is not going to be read.
  bool close = false;
  /// For 405: the methods the route takes (the Allow header).
  std::string allow;
};

/// What the session does with a request head.
///
/// Invariants: a refusal that closes has `body == none`; `body == upload`
/// only without a refusal; `chunked` and `content_length` never both set.
struct admission {
  /// The routed path (origin-form path or the path of an absolute-form
  /// target).
  route where;
  /// The target's path and query (query without the '?').
  std::string path;
  std::string query;
  /// How to read the body; with a refusal, `small` means "read and discard
  /// the body, then answer", `none` means "answer now".
  body_kind body = body_kind::none;
  /// Most body bytes to read (small_body_limit, or the upload limit).
  uint64_t body_limit = 0;
  /// The body is chunked (Transfer-Encoding: chunked).
  bool chunked = false;
  /// The body length when Content-Length gave one.
  std::optional<uint64_t> content_length;
  /// The upload is multipart/form-data.
  bool multipart = false;
  /// Set when the request is answered with an error.
  std::optional<refusal> refused;
};

/// Decides what to do with a request head (see admission). Never throws
/// for any input but std::bad_alloc.
admission admit(const head_facts& head, const admission_limits& limits);

/// Parses the Content-Length field values as RFC 9110 allows them: each a
/// comma-separated list of plain decimals (digits only, fits in 64 bits),
/// all equal. nullopt for anything else (a sign, hex, spaces inside a
/// number, differing values, an empty list).
std::optional<uint64_t> parse_content_length(
  const std::vector<std::string_view>& values) noexcept;

/// The path and query of a request-target in origin-form ("/p?q") or
/// absolute-form ("http://host/p?q", scheme http or https in any case;
/// an empty path is "/"). nullopt for any other form ("*", authority-form,
/// other schemes, a missing authority).
std::optional<std::pair<std::string_view, std::string_view>>
split_request_target(std::string_view target) noexcept;

// -- what the access log and metrics may show of a request -------------------

/// The method as a metrics label: the methods of RFC 9110 and PATCH as
/// they are, anything else "other", so that clients cannot make series
/// without end.
std::string_view method_label(std::string_view method) noexcept;

/// Client text (target, method) fit for one log line: printable ASCII
/// stays, a quote, a backslash and every other byte become `\xHH`, and
/// more than `max_bytes` of input is cut with "...". Nothing a client sends
/// can then forge fields of a text or JSON log line.
std::string log_text(std::string_view text, size_t max_bytes = 1024);

// -- request ids --------------------------------------------------------------

/// The id of a request (API.md "Every answer"): the client's X-Request-Id
/// when it is sane (1..128 visible ASCII characters, no quote or
/// backslash), else a fresh one made of this process's random prefix and
/// `counter`, unique across the nodes of a cluster.
std::string choose_request_id(std::string_view client, uint64_t counter);

// -- the accept loop ----------------------------------------------------------

/// How long the accept loop pauses after a failed accept: a pause for
/// errors that repeat at once while the cause lasts (no descriptors, no
/// memory), zero for one-off errors (a connection reset before accept).
std::chrono::milliseconds accept_pause(int error_number) noexcept;

/// Lets a repeated log line through at most once per interval and counts
/// the ones it held back. Not thread-safe: one owner (the accept strand).
class log_throttle {
public:
  explicit log_throttle(std::chrono::steady_clock::duration interval
                        = std::chrono::seconds{1})
    : interval_(interval) {
    // nop
  }

  /// Called for each event at time `now`: returns the number of events
  /// suppressed since the last line when a line may be written now,
  /// nullopt when this one is suppressed.
  std::optional<uint64_t> admit(std::chrono::steady_clock::time_point now);

private:
  std::chrono::steady_clock::duration interval_;
  std::optional<std::chrono::steady_clock::time_point> last_;
  uint64_t suppressed_ = 0;
};

} // namespace phonon::http
