#include "http/console.hpp"

#include <string>

#include "http/console_assets.hpp"
#include "http/file_plan.hpp"

namespace phonon::http {

const char* const console_csp
  = "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; media-src 'self' blob:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

std::string console_csp_with(std::string_view media_origin) {
  std::string csp = console_csp;
  if (media_origin.empty())
    return csp;
  constexpr std::string_view media = "media-src 'self' blob:";
  auto at = csp.find(media);
  // An origin is scheme://host[:port]: nothing in it can end a directive
  // or start another (';' ',' and blanks are refused).
  if (at == std::string::npos
      || media_origin.find_first_of("; ,\t\r\n'\"") != std::string::npos)
    return csp;
  csp.insert(at + media.size(), " " + std::string{media_origin});
  return csp;
}

namespace {

const console_asset* find_asset(std::string_view name) {
  for (const auto& a : console_assets())
    if (a.name == name)
      return &a;
  return nullptr;
}

} // namespace

bool is_console_file(std::string_view name) {
  return find_asset(name) != nullptr;
}

std::optional<reply> console_reply(std::string_view name,
                                   std::string_view if_none_match,
                                   std::string_view media_origin) {
  const auto* found = find_asset(name);
  if (found == nullptr)
    return std::nullopt;
  reply r;
  std::string etag{found->etag};
  r.headers = {
    {"ETag", etag},
    // Revalidated on every load (a 304 costs a round trip, and an upgraded
    // server's console is never mixed with the old one's script).
    {"Cache-Control", "no-cache"},
    {"Content-Security-Policy", console_csp_with(media_origin)},
    {"X-Content-Type-Options", "nosniff"},
    {"X-Frame-Options", "DENY"},
    {"Referrer-Policy", "no-referrer"},
    {"Cross-Origin-Opener-Policy", "same-origin"},
    {"Permissions-Policy", "microphone=(self), camera=(), geolocation=()"},
  };
  if (!if_none_match.empty() && etag_matches(if_none_match, etag)) {
    r.status = 304;
    r.content_type.clear();
    return r;
  }
  r.content_type = std::string{found->content_type};
  r.body = std::string{found->body};
  return r;
}

} // namespace phonon::http
