#include "http/admission.hpp"

#include <cstdio>
#include <random>

#include <algorithm>
#include <cerrno>
#include <limits>

namespace phonon::http {

namespace {

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size())
    return false;
  for (size_t i = 0; i < a.size(); ++i) {
    auto x = a[i];
    auto y = b[i];
    if (x >= 'A' && x <= 'Z')
      x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z')
      y = static_cast<char>(y - 'A' + 'a');
    if (x != y)
      return false;
  }
  return true;
}

std::string_view trim(std::string_view text) noexcept {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t'))
    text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t'))
    text.remove_suffix(1);
  return text;
}

std::optional<uint64_t> parse_decimal(std::string_view text) noexcept {
  if (text.empty())
    return std::nullopt;
  constexpr auto max = std::numeric_limits<uint64_t>::max();
  uint64_t result = 0;
  for (auto c : text) {
    if (c < '0' || c > '9')
      return std::nullopt;
    auto digit = static_cast<uint64_t>(c - '0');
    if (result > (max - digit) / 10)
      return std::nullopt;
    result = result * 10 + digit;
  }
  return result;
}

refusal make_refusal(unsigned status, std::string message, std::string code,
                     bool close) {
  refusal r;
  r.status = status;
  r.message = std::move(message);
  r.code = std::move(code);
  r.close = close;
  return r;
}

/// A framing error: nothing after this head can be trusted.
refusal bad_framing(std::string message) {
  return make_refusal(400, std::move(message), "bad_request", true);
}

} // namespace

std::optional<uint64_t> parse_content_length(
  const std::vector<std::string_view>& values) noexcept {
  std::optional<uint64_t> result;
  for (auto value : values) {
    for (;;) {
      auto comma = value.find(',');
      auto number = parse_decimal(trim(value.substr(0, comma)));
      if (!number || (result && *result != *number))
        return std::nullopt;
      result = number;
      if (comma == std::string_view::npos)
        break;
      value.remove_prefix(comma + 1);
    }
  }
  return result;
}

std::optional<std::pair<std::string_view, std::string_view>>
split_request_target(std::string_view target) noexcept {
  if (target.empty())
    return std::nullopt;
  if (target.front() != '/') {
    // RFC 9112 3.2.2: absolute-form, which a server must accept.
    auto colon = target.find("://");
    if (colon == std::string_view::npos)
      return std::nullopt;
    auto scheme = target.substr(0, colon);
    if (!iequals(scheme, "http") && !iequals(scheme, "https"))
      return std::nullopt;
    auto rest = target.substr(colon + 3);
    auto end = rest.find_first_of("/?");
    if (end == 0 || rest.empty())
      return std::nullopt; // no authority
    if (end == std::string_view::npos)
      return std::pair{std::string_view{"/"}, std::string_view{}};
    target = rest.substr(end);
    if (target.front() == '?')
      return std::pair{std::string_view{"/"}, target.substr(1)};
  }
  return split_target(target);
}

admission admit(const head_facts& head, const admission_limits& limits) {
  admission result;
  // Framing first: when it cannot be trusted, the connection closes after
  // the answer and nothing after this head is read as a request.
  bool has_te = !head.transfer_encoding.empty();
  bool has_cl = !head.content_length.empty();
  if (has_te) {
    if (head.version < 11) {
      result.refused = bad_framing("Transfer-Encoding needs HTTP/1.1");
      return result;
    }
    if (has_cl) {
      result.refused = bad_framing(
        "Content-Length together with Transfer-Encoding");
      return result;
    }
    // Only "chunked" alone: any other coding (or a list) would leave the
    // body's end to a guess.
    if (head.transfer_encoding.size() != 1
        || !iequals(trim(head.transfer_encoding.front()), "chunked")) {
      result.refused = bad_framing(
        "Transfer-Encoding other than chunked is not supported");
      return result;
    }
    result.chunked = true;
  }
  if (has_cl) {
    result.content_length = parse_content_length(head.content_length);
    if (!result.content_length) {
      result.refused = bad_framing(
        "Content-Length must be one plain decimal number");
      return result;
    }
  }
  bool has_body = result.chunked
                  || (result.content_length && *result.content_length > 0);
  bool fits_small = !result.chunked
                    && result.content_length.value_or(0) <= small_body_limit;
  // A refusal decided from the head: a small body is read and dropped so
  // the connection stays usable; a larger one is not read at all.
  auto refuse = [&](refusal r) {
    if (!has_body) {
      result.body = body_kind::none;
    } else if (fits_small && !r.close) {
      result.body = body_kind::small;
      result.body_limit = small_body_limit;
    } else {
      result.body = body_kind::none;
      r.close = true;
    }
    result.refused = std::move(r);
    return result;
  };
  if (head.version >= 11 && head.host_count != 1)
    return refuse(make_refusal(400,
                               head.host_count == 0
                                 ? "an HTTP/1.1 request needs a Host header"
                                 : "more than one Host header",
                               "bad_request", true));
  auto parts = split_request_target(head.target);
  if (!parts)
    return refuse(make_refusal(400, "bad request target", "bad_request",
                               false));
  result.path = std::string{parts->first};
  result.query = std::string{parts->second};
  result.where = match_route(parts->first);
  // A console path names one of the console's files, and only while the
  // console is on; anything else there is an unknown path.
  if (result.where.kind == route_kind::console
      && (limits.is_console_file == nullptr
          || !limits.is_console_file(result.where.format)))
    result.where = route{};
  const auto& where = result.where;
  if (where.kind == route_kind::not_found)
    return refuse(make_refusal(404, "not found", "not_found", false));
  // OPTIONS is taken on every known path (CORS preflights, cors.hpp).
  if (!allows(where, head.method) && head.method != "OPTIONS") {
    auto r = make_refusal(405, "method not allowed", "method_not_allowed",
                          false);
    r.allow = std::string{where.allow} + ", OPTIONS";
    return refuse(std::move(r));
  }
  if (where.kind == route_kind::bad_id)
    return refuse(make_refusal(400,
                               "user_id and phrase_id must be positive "
                               "decimal integers",
                               "bad_id", false));
  bool upload = where.kind == route_kind::recording
                && (head.method == "POST" || head.method == "PUT");
  if (upload) {
    auto& type = head.content_type;
    result.multipart = type.size() >= 10
                       && iequals(type.substr(0, 10), "multipart/");
    result.body_limit = limits.max_upload_size
                        + (result.multipart ? multipart_allowance : 0);
    if (result.content_length && *result.content_length > result.body_limit)
      // Refused before a byte of the body is read.
      return refuse(make_refusal(413,
                                 "upload is larger than the allowed maximum "
                                 "of "
                                   + std::to_string(limits.max_upload_size)
                                   + " bytes",
                                 "too_large", true));
    result.body = body_kind::upload;
    return result;
  }
  if (!has_body)
    return result;
  if (result.content_length && *result.content_length > small_body_limit)
    return refuse(make_refusal(413, "request body too large", "too_large",
                               true));
  result.body = body_kind::small;
  result.body_limit = small_body_limit;
  return result;
}

// -- the accept loop ----------------------------------------------------------

std::chrono::milliseconds accept_pause(int error_number) noexcept {
  switch (error_number) {
    case EMFILE:
    case ENFILE:
    case ENOBUFS:
    case ENOMEM:
      // The pending connection stays queued and the listening socket stays
      // readable: accepting again at once would spin until a descriptor is
      // free.
      return std::chrono::milliseconds{100};
    default:
      return std::chrono::milliseconds{0};
  }
}

std::optional<uint64_t> log_throttle::admit(
  std::chrono::steady_clock::time_point now) {
  if (last_ && now - *last_ < interval_) {
    ++suppressed_;
    return std::nullopt;
  }
  last_ = now;
  auto n = suppressed_;
  suppressed_ = 0;
  return n;
}

std::string_view method_label(std::string_view method) noexcept {
  for (std::string_view known : {"GET", "HEAD", "POST", "PUT", "DELETE",
                                 "OPTIONS", "PATCH", "CONNECT", "TRACE"})
    if (method == known)
      return known;
  return "other";
}

std::string log_text(std::string_view text, size_t max_bytes) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  auto n = std::min(text.size(), max_bytes);
  out.reserve(n + 8);
  for (size_t i = 0; i < n; ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c > 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      out += "\\x";
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 0xf]);
    }
  }
  if (text.size() > max_bytes)
    out += "...";
  return out;
}

std::string choose_request_id(std::string_view client, uint64_t counter) {
  bool sane = !client.empty() && client.size() <= 128;
  for (char c : client)
    sane = sane && c > 0x20 && c < 0x7f && c != '"' && c != '\\';
  if (sane)
    return std::string{client};
  // 48 random bits per process: ids of two nodes (or two runs) do not meet.
  static const std::string prefix = [] {
    std::random_device rd;
    uint64_t bits = (static_cast<uint64_t>(rd()) << 16) ^ rd();
    char buf[16];
    std::snprintf(buf, sizeof(buf), "%012llx",
                  static_cast<unsigned long long>(bits & 0xffffffffffffull));
    return std::string{buf};
  }();
  return prefix + "-" + std::to_string(counter);
}

} // namespace phonon::http
