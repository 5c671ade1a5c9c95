#include "http/router.hpp"

#include <array>
#include <cstddef>

#include "http/ids.hpp"

namespace phonon::http {

namespace {

constexpr const char* get_head = "GET, HEAD";
constexpr const char* all_recording_methods = "GET, HEAD, POST, PUT, DELETE";

constexpr size_t max_segments = 6;

/// The non-empty segments of an absolute path; `ok` is false when the path
/// is not absolute, has an empty segment ("//", trailing '/') or has more
/// segments than any route.
struct segments {
  std::array<std::string_view, max_segments> items;
  size_t size = 0;
  bool ok = false;
};

segments split_path(std::string_view path) {
  segments result;
  if (path.empty() || path.front() != '/')
    return result;
  path.remove_prefix(1);
  for (;;) {
    auto slash = path.find('/');
    auto segment = path.substr(0, slash);
    // Strict: an empty segment ("//", a trailing slash) names nothing.
    if (segment.empty() || result.size == max_segments)
      return result;
    result.items[result.size++] = segment;
    if (slash == std::string_view::npos)
      break;
    path.remove_prefix(slash + 1);
  }
  result.ok = true;
  return result;
}

route make_route(route_kind kind, const char* name, const char* allow) {
  route result;
  result.kind = kind;
  result.name = name;
  result.allow = allow;
  return result;
}

} // namespace

// Matching is strict and byte-exact: no trailing slash ("/healthz/" is 404),
// no empty segments ("//"), no case folding and no percent-decoding (so
// "/audio/user/%31" is a bad id, never user 1).
route match_route(std::string_view path) {
  if (path == "/") {
    auto r = make_route(route_kind::console, "/", get_head);
    r.format = "index.html";
    return r;
  }
  auto segs = split_path(path);
  if (!segs.ok)
    return route{};
  auto& s = segs.items;
  if (segs.size == 1) {
    if (s[0] == "healthz")
      return make_route(route_kind::healthz, "/healthz", get_head);
    if (s[0] == "readyz")
      return make_route(route_kind::readyz, "/readyz", get_head);
    if (s[0] == "metrics")
      return make_route(route_kind::metrics, "/metrics", get_head);
    return route{};
  }
  if (segs.size == 2 && s[0] == "console") {
    auto r = make_route(route_kind::console, "/console/:file", get_head);
    r.format = std::string{s[1]};
    return r;
  }
  if (s[0] != "audio" || s[1] != "user")
    return route{};
  route result;
  switch (segs.size) {
    case 3:
      result = make_route(route_kind::user_list, "/audio/user/:user_id",
                          get_head);
      break;
    case 5:
      if (s[3] != "phrase")
        return route{};
      result = make_route(route_kind::recording,
                          "/audio/user/:user_id/phrase/:phrase_id",
                          all_recording_methods);
      break;
    case 6:
      if (s[3] != "phrase")
        return route{};
      if (s[5] == "links") {
        result = make_route(route_kind::links,
                            "/audio/user/:user_id/phrase/:phrase_id/links",
                            "POST");
        break;
      }
      result = make_route(route_kind::audio,
                          "/audio/user/:user_id/phrase/:phrase_id/:format",
                          get_head);
      result.format = std::string{s[5]};
      break;
    default:
      return route{};
  }
  // The path has the shape of an audio route: a bad id is a 400, not a 404.
  // The name and allow list of the shape are kept for metrics and logs.
  auto user = parse_id(s[2]);
  std::optional<int64_t> phrase;
  if (segs.size >= 5)
    phrase = parse_id(s[4]);
  if (!user || (segs.size >= 5 && !phrase)) {
    result.kind = route_kind::bad_id;
    result.format.clear();
    return result;
  }
  result.user_id = *user;
  if (phrase)
    result.phrase_id = *phrase;
  return result;
}

bool allows(const route& r, std::string_view method) {
  if (method.empty() || r.allow == nullptr)
    return false;
  std::string_view list{r.allow};
  while (!list.empty()) {
    auto comma = list.find(',');
    auto item = list.substr(0, comma);
    while (!item.empty() && item.front() == ' ')
      item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ')
      item.remove_suffix(1);
    if (item == method)
      return true;
    if (comma == std::string_view::npos)
      break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

std::pair<std::string_view, std::string_view> split_target(
  std::string_view target) {
  auto question = target.find('?');
  if (question == std::string_view::npos)
    return {target, std::string_view{}};
  return {target.substr(0, question), target.substr(question + 1)};
}

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

} // namespace

std::string url_decode(std::string_view text) {
  std::string result;
  result.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    auto c = text[i];
    if (c == '+') {
      result += ' ';
    } else if (c == '%' && i + 2 < text.size() && hex_value(text[i + 1]) >= 0
               && hex_value(text[i + 2]) >= 0) {
      result += static_cast<char>(hex_value(text[i + 1]) * 16
                                  + hex_value(text[i + 2]));
      i += 2;
    } else {
      result += c;
    }
  }
  return result;
}

std::optional<std::string> query_param(std::string_view query,
                                       std::string_view key) {
  while (!query.empty()) {
    auto amp = query.find('&');
    auto pair = query.substr(0, amp);
    if (!pair.empty()) {
      auto eq = pair.find('=');
      auto name = pair.substr(0, eq);
      if (url_decode(name) == key) {
        if (eq == std::string_view::npos)
          return std::string{};
        return url_decode(pair.substr(eq + 1));
      }
    }
    if (amp == std::string_view::npos)
      break;
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

} // namespace phonon::http
