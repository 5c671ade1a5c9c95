// fuzz-sources: http/router.cpp http/ids.cpp

// Routing and ids (http/router.*, http/ids.*). The input is a request
// target as a client sends it. Checks:
// - split_target() cuts at the first '?' and loses nothing;
// - parse_id() agrees with a reference implementation of API.md
//   "Identifiers" written as differently as possible (string comparison
//   against INT64_MAX instead of overflow arithmetic);
// - match_route() agrees with a reference router built on the rules in
//   router.cpp's comment (strict segments, byte-exact names), and a matched
//   route prints back to exactly the path it came from;
// - allows() takes GET on every route shape but links (POST only), POST
//   only on recordings and links, and DELETE only on recordings;
// - query_param() never crashes, and finds a percent-encoded key=value pair
//   put after the fuzzed query.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/ids.hpp"
#include "http/router.hpp"

namespace {

using phonon::http::route_kind;

[[noreturn]] void fail(const char* what, std::string_view input) {
  std::fprintf(stderr, "router: %s for '%.*s'\n", what,
               static_cast<int>(input.size()), input.data());
  abort();
}

/// API.md: decimal digits only, 1 ... 9223372036854775807, no sign, no
/// whitespace, no leading zero.
std::optional<int64_t> reference_id(std::string_view text) {
  constexpr std::string_view max = "9223372036854775807";
  if (text.empty() || text[0] == '0' || text.size() > max.size())
    return std::nullopt;
  for (char c : text)
    if (c < '0' || c > '9')
      return std::nullopt;
  if (text.size() == max.size() && text > max)
    return std::nullopt;
  uint64_t value = 0;
  for (char c : text)
    value = value * 10 + static_cast<uint64_t>(c - '0');
  return static_cast<int64_t>(value);
}

std::vector<std::string_view> split_all(std::string_view path) {
  std::vector<std::string_view> result;
  for (;;) {
    auto slash = path.find('/');
    result.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos)
      return result;
    path.remove_prefix(slash + 1);
  }
}

route_kind reference_route(std::string_view path) {
  if (path.empty() || path[0] != '/')
    return route_kind::not_found;
  // The web console: "/" and "/console/<one segment>".
  if (path == "/")
    return route_kind::console;
  auto s = split_all(path.substr(1));
  for (auto seg : s)
    if (seg.empty())
      return route_kind::not_found;
  if (s.size() == 1) {
    if (s[0] == "healthz")
      return route_kind::healthz;
    if (s[0] == "readyz")
      return route_kind::readyz;
    if (s[0] == "metrics")
      return route_kind::metrics;
    return route_kind::not_found;
  }
  if (s.size() == 2 && s[0] == "console")
    return route_kind::console;
  if (s.size() != 3 && s.size() != 5 && s.size() != 6)
    return route_kind::not_found;
  if (s[0] != "audio" || s[1] != "user")
    return route_kind::not_found;
  if (s.size() >= 5 && s[3] != "phrase")
    return route_kind::not_found;
  if (!reference_id(s[2]) || (s.size() >= 5 && !reference_id(s[4])))
    return route_kind::bad_id;
  if (s.size() == 3)
    return route_kind::user_list;
  if (s.size() == 5)
    return route_kind::recording;
  return s[5] == "links" ? route_kind::links : route_kind::audio;
}

std::string percent_encode(std::string_view text) {
  static const char hex[] = "0123456789ABCDEF";
  std::string result;
  for (unsigned char c : text) {
    result += '%';
    result += hex[c >> 4];
    result += hex[c & 15];
  }
  return result;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view target{reinterpret_cast<const char*>(data), size};

  auto [path, query] = phonon::http::split_target(target);
  if (path.find('?') != std::string_view::npos)
    fail("path keeps a '?'", target);
  auto joined = std::string{path};
  if (path.size() < target.size())
    joined += "?" + std::string{query};
  if (joined != target)
    fail("split_target loses bytes", target);

  // Ids: the whole input and the path as they are.
  for (auto text : {target, path}) {
    auto got = phonon::http::parse_id(text);
    auto want = reference_id(text);
    if (got != want)
      fail("parse_id disagrees with API.md", text);
  }

  auto r = phonon::http::match_route(path);
  if (r.kind != reference_route(path))
    fail("match_route disagrees with the reference router", path);
  std::string printed;
  switch (r.kind) {
    case route_kind::healthz:
    case route_kind::readyz:
    case route_kind::metrics:
      printed = r.name;
      break;
    case route_kind::console:
      printed = r.format == "index.html" && path == "/"
                  ? std::string{"/"}
                  : "/console/" + r.format;
      break;
    case route_kind::user_list:
      printed = "/audio/user/" + std::to_string(r.user_id);
      break;
    case route_kind::recording:
    case route_kind::audio:
    case route_kind::links:
      printed = "/audio/user/" + std::to_string(r.user_id) + "/phrase/"
                + std::to_string(r.phrase_id);
      if (r.kind == route_kind::audio)
        printed += "/" + r.format;
      if (r.kind == route_kind::links)
        printed += "/links";
      break;
    case route_kind::not_found:
    case route_kind::bad_id:
      break;
  }
  if (!printed.empty() && printed != path)
    fail("the matched route does not print back to its path", path);
  if (r.kind != route_kind::not_found && r.name == nullptr)
    fail("route without a name", path);
  // A bad id keeps the method list of its shape: "/audio/user/x/phrase/1/links"
  // is POST only like the links it looks like.
  bool links_shape = r.kind == route_kind::links
                     || (r.kind == route_kind::bad_id && path.size() > 6
                         && path.substr(path.size() - 6) == "/links"
                         && split_all(path.substr(1)).size() == 6);
  bool get = phonon::http::allows(r, "GET");
  if (get != (r.kind != route_kind::not_found && !links_shape))
    fail("GET allowed where it should not be, or refused", path);
  if (links_shape && !phonon::http::allows(r, "POST"))
    fail("POST refused on links", path);
  if (phonon::http::allows(r, "POST") && r.kind != route_kind::recording
      && !links_shape && r.kind != route_kind::bad_id)
    fail("POST allowed outside recordings and links", path);
  if (phonon::http::allows(r, "DELETE")
      && r.kind != route_kind::recording && r.kind != route_kind::bad_id)
    fail("DELETE allowed outside recordings", path);
  if (phonon::http::allows(r, "") || phonon::http::allows(r, "GET, HEAD"))
    fail("allows() takes something that is not one method", path);

  // Queries: the fuzzed query as it is, then with a known pair after it.
  // The key and the value come from the input too (its first and second
  // half), percent-encoded byte by byte.
  phonon::http::query_param(query, "limit");
  phonon::http::query_param(query, "after");
  auto key = std::string{target.substr(0, size / 2)};
  auto value = std::string{target.substr(size / 2)};
  if (!key.empty()) {
    auto q = "z=1&" + percent_encode(key) + "=" + percent_encode(value);
    auto found = phonon::http::query_param(q, key);
    auto want = key == "z" ? std::string{"1"} : value;
    if (!found || *found != want)
      fail("query_param misses an encoded pair", q);
  }
  return 0;
}
