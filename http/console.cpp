#include "http/console.hpp"

#include <string>

#include "http/console_assets.hpp"
#include "http/file_plan.hpp"

namespace phonon::http {

const char* const console_csp
  = "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; media-src 'self' blob:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

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
                                   std::string_view if_none_match) {
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
    {"Content-Security-Policy", console_csp},
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
