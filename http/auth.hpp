#pragma once

// Who may do what (API.md "Authentication and authorization"), decided from
// a request head alone: before a byte of a body is read and before any
// actor, database or storage work. Pure apart from the clock, which the
// caller passes in.
//
// Tokens are JWTs verified by cpp-jwt (Debian's libcpp-jwt-dev) with one
// pinned algorithm; the claims Phonon relies on (exp required, nbf, iat,
// iss, aud as a string or a list, sub, admin, scope) are then read and
// checked here, so that a claim of the wrong type is a refusal and never a
// default. Signed links are HMAC-SHA256 (OpenSSL) over "read", the path and
// the expiry, compared in constant time.

#include <cstdint>
#include <ctime>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "config/settings.hpp"
#include "http/router.hpp"

namespace phonon::http {

/// What a request head says about its caller.
struct auth_request {
  /// The method as sent ("GET").
  std::string_view method;
  /// The routed path and its query (without '?').
  const route* where = nullptr;
  std::string_view path;
  std::string_view query;
  /// The Authorization field ("" when absent).
  std::string_view authorization;
};

/// The verdict: allowed (status 0) or a 401/403 to answer.
struct auth_decision {
  /// 0 when the request may go on; else 401 or 403.
  unsigned status = 0;
  /// The JSON error body's code and message (no detail beyond the code).
  std::string code;
  std::string message;
  /// Who asked, for the log: "user:<sub>", "admin:<sub>", "link",
  /// "metrics", or "" (auth off).
  std::string subject;
  /// The caller may read (auth off, a link, or a token whose scope allows
  /// reads): only then do answers carry signed read links.
  bool may_read = true;

  bool allowed() const {
    return status == 0;
  }
};

/// Signed links of one recording's formats.
struct signed_links {
  /// Format name -> path with `?expires=..&sig=..`.
  std::map<std::string, std::string> formats;
  /// Unix seconds the links stop working.
  int64_t expires = 0;
};

/// Checks requests against the auth settings. Immutable after
/// construction, shared by every io thread.
class authenticator {
public:
  /// Reads the verification key (the PEM file for RS256/ES256).
  /// @throws config::config_error when the key is unusable.
  authenticator(const config::auth_settings& auth,
                const config::metrics_settings& metrics);

  bool enabled() const {
    return enabled_;
  }

  /// Decides whether the request may go on, at time `now` (Unix seconds).
  auth_decision check(const auth_request& req, int64_t now) const;

  /// The signature of a read link to `path` valid until `expires`
  /// (base64url, no padding).
  std::string link_signature(std::string_view path, int64_t expires) const;

  /// `path?expires=..&sig=..`, valid for auth.link_ttl from `now`.
  std::string sign_link(const std::string& path, int64_t now) const;

  /// Seconds a link stays valid.
  int64_t link_ttl() const {
    return link_ttl_;
  }

private:
  auth_decision check_token(std::string_view token, const auth_request& req,
                            int64_t now) const;
  auth_decision check_link(const auth_request& req, int64_t now) const;
  bool verify_signature(std::string_view signed_part,
                        std::string_view signature) const;
  auth_decision check_metrics(const auth_request& req, int64_t now) const;

  bool enabled_ = false;
  std::string algorithm_;
  /// The HS256 secret or the PEM public key.
  std::string key_;
  std::string issuer_;
  std::string audience_;
  int64_t leeway_ = 30;
  std::string link_secret_;
  int64_t link_ttl_ = 3600;
  std::string metrics_token_;
};

/// The token of `Authorization: Bearer <token>` (scheme case-insensitive,
/// RFC 6750 token68 characters, at most 8 KiB); nullopt for any other form.
std::optional<std::string_view> bearer_token(std::string_view field);

/// True when `a` and `b` are equal, in time that depends only on their
/// lengths (OpenSSL's CRYPTO_memcmp).
bool equal_in_constant_time(std::string_view a, std::string_view b) noexcept;

/// A request target fit for a log: the value of every `sig` query
/// parameter (a signed link's credential) is replaced by "-".
std::string without_credentials(std::string_view target);

/// Base64url without padding (RFC 4648 section 5).
std::string base64url(std::string_view bytes);

} // namespace phonon::http
