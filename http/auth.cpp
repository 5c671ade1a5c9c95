#include "http/auth.hpp"

#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>
#include <vector>

#include <jwt/jwt.hpp>
#include <nlohmann/json.hpp>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

namespace phonon::http {

namespace {

using nlohmann::json;

/// The longest token looked at; a request head is bounded anyway.
constexpr size_t max_token_size = 8192;

const char* const realm_header
  = "Bearer realm=\"phonon\", error=\"invalid_token\"";

auth_decision allow(std::string subject = {}) {
  auth_decision d;
  d.subject = std::move(subject);
  return d;
}

auth_decision unauthorized(std::string code, std::string message) {
  auth_decision d;
  d.status = 401;
  d.code = std::move(code);
  d.message = std::move(message);
  return d;
}

auth_decision forbidden(std::string code, std::string message,
                        std::string subject) {
  auth_decision d;
  d.status = 403;
  d.code = std::move(code);
  d.message = std::move(message);
  d.subject = std::move(subject);
  return d;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size())
    return false;
  for (size_t i = 0; i < a.size(); ++i) {
    auto x = a[i] >= 'A' && a[i] <= 'Z' ? a[i] - 'A' + 'a' : a[i];
    auto y = b[i] >= 'A' && b[i] <= 'Z' ? b[i] - 'A' + 'a' : b[i];
    if (x != y)
      return false;
  }
  return true;
}

} // namespace

std::optional<std::string_view> bearer_token(std::string_view field) {
  auto space = field.find(' ');
  if (space == std::string_view::npos
      || !iequals(field.substr(0, space), "bearer"))
    return std::nullopt;
  auto token = field.substr(space + 1);
  while (!token.empty() && token.front() == ' ')
    token.remove_prefix(1);
  while (!token.empty() && token.back() == ' ')
    token.remove_suffix(1);
  if (token.empty() || token.size() > max_token_size)
    return std::nullopt;
  for (char c : token)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_'
          || c == '.' || c == '~' || c == '+' || c == '/' || c == '='))
      return std::nullopt;
  return token;
}

namespace {

/// A NumericDate claim (RFC 7519): a JSON number. nullopt when absent;
/// throws json::type_error when present but not a number.
std::optional<double> numeric_date(const json& claims, const char* name) {
  auto it = claims.find(name);
  if (it == claims.end())
    return std::nullopt;
  if (!it->is_number())
    throw std::invalid_argument{name};
  return it->get<double>();
}

/// True when `aud` (a string or a list of strings) names `audience`.
bool audience_matches(const json& claims, const std::string& audience) {
  auto it = claims.find("aud");
  if (it == claims.end())
    return false;
  if (it->is_string())
    return it->get<std::string>() == audience;
  if (it->is_array()) {
    for (auto& x : *it)
      if (x.is_string() && x.get<std::string>() == audience)
        return true;
  }
  return false;
}

/// What a request does: read (GET, HEAD, and asking for links) or write.
bool is_read(const auth_request& req) {
  if (req.where->kind == route_kind::links)
    return true;
  return req.method == "GET" || req.method == "HEAD";
}

/// True when `scope` (space-separated, RFC 8693) lists `wanted`.
bool scope_has(std::string_view scope, std::string_view wanted) {
  while (!scope.empty()) {
    auto space = scope.find(' ');
    if (scope.substr(0, space) == wanted)
      return true;
    if (space == std::string_view::npos)
      break;
    scope.remove_prefix(space + 1);
  }
  return false;
}

std::string read_file(const std::string& path) {
  std::ifstream in{path, std::ios::binary};
  if (!in)
    throw config::config_error{"auth.public_key_file: cannot read '" + path
                               + "'"};
  return {std::istreambuf_iterator<char>{in},
          std::istreambuf_iterator<char>{}};
}

/// Checks that `pem` holds a public key of the type `algorithm` needs.
void check_public_key(const std::string& pem, const std::string& algorithm) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio{
    BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free};
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key{
    bio ? PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr)
        : nullptr,
    &EVP_PKEY_free};
  if (!key)
    throw config::config_error{"auth.public_key_file: not a PEM public key "
                               "(-----BEGIN PUBLIC KEY-----)"};
  auto type = EVP_PKEY_base_id(key.get());
  if (algorithm == "RS256" && type != EVP_PKEY_RSA)
    throw config::config_error{"auth.public_key_file: RS256 needs an RSA "
                               "public key"};
  if (algorithm == "ES256"
      && (type != EVP_PKEY_EC || EVP_PKEY_bits(key.get()) != 256))
    throw config::config_error{"auth.public_key_file: ES256 needs an EC "
                               "P-256 public key"};
}

/// HMAC-SHA256 of `message` with `key`, base64url without padding.
std::string hmac_sha256(std::string_view key, std::string_view message) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(),
       mac, &len);
  return base64url({reinterpret_cast<const char*>(mac), len});
}

} // namespace

bool equal_in_constant_time(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size())
    return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string without_credentials(std::string_view target) {
  auto q = target.find('?');
  if (q == std::string_view::npos)
    return std::string{target};
  std::string out{target.substr(0, q + 1)};
  auto query = target.substr(q + 1);
  bool first = true;
  while (true) {
    auto amp = query.find('&');
    auto item = query.substr(0, amp);
    if (!first)
      out += '&';
    first = false;
    auto eq = item.find('=');
    auto key = url_decode(item.substr(0, eq));
    if (eq != std::string_view::npos
        && (key == "sig" || key == "access_token" || key == "token")) {
      out.append(item.data(), eq);
      out += "=-";
    } else {
      out.append(item.data(), item.size());
    }
    if (amp == std::string_view::npos)
      break;
    query.remove_prefix(amp + 1);
  }
  return out;
}

std::string base64url(std::string_view bytes) {
  static constexpr char alphabet[]
    = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  auto at = [&](size_t k) { return static_cast<unsigned char>(bytes[k]); };
  for (; i + 3 <= bytes.size(); i += 3) {
    uint32_t n = (at(i) << 16) | (at(i + 1) << 8) | at(i + 2);
    out += alphabet[(n >> 18) & 63];
    out += alphabet[(n >> 12) & 63];
    out += alphabet[(n >> 6) & 63];
    out += alphabet[n & 63];
  }
  if (bytes.size() - i == 1) {
    uint32_t n = at(i) << 16;
    out += alphabet[(n >> 18) & 63];
    out += alphabet[(n >> 12) & 63];
  } else if (bytes.size() - i == 2) {
    uint32_t n = (at(i) << 16) | (at(i + 1) << 8);
    out += alphabet[(n >> 18) & 63];
    out += alphabet[(n >> 12) & 63];
    out += alphabet[(n >> 6) & 63];
  }
  return out;
}

authenticator::authenticator(const config::auth_settings& auth,
                             const config::metrics_settings& metrics)
  : enabled_(auth.enabled()),
    algorithm_(auth.algorithm),
    issuer_(auth.issuer),
    audience_(auth.audience),
    leeway_(auth.leeway),
    link_secret_(auth.link_secret),
    link_ttl_(auth.link_ttl),
    metrics_token_(metrics.token) {
  if (!enabled_)
    return;
  if (algorithm_ == "HS256") {
    key_ = auth.secret;
  } else {
    key_ = read_file(auth.public_key_file);
    check_public_key(key_, algorithm_);
  }
}

auth_decision authenticator::check(const auth_request& req,
                                   int64_t now) const {
  if (!enabled_)
    return allow();
  switch (req.where->kind) {
    case route_kind::metrics:
      return check_metrics(req, now);
    case route_kind::user_list:
    case route_kind::recording:
    case route_kind::audio:
    case route_kind::links:
      break;
    default:
      // /healthz, /readyz and paths answered 400/404 stay open.
      return allow();
  }
  // A preflight carries no credentials (browsers never send them there);
  // it reveals nothing and is answered by the CORS rules.
  if (req.method == "OPTIONS")
    return allow();
  if (!req.authorization.empty()) {
    auto token = bearer_token(req.authorization);
    if (!token)
      return unauthorized("invalid_token",
                          "Authorization must be: Bearer <token>");
    return check_token(*token, req, now);
  }
  if (req.where->kind == route_kind::audio
      && (query_param(req.query, "sig") || query_param(req.query, "expires")))
    return check_link(req, now);
  return unauthorized("missing_token",
                      "this request needs a bearer token or a signed link");
}

auth_decision authenticator::check_token(std::string_view token,
                                         const auth_request& req,
                                         int64_t now) const {
  const auto invalid = [] {
    return unauthorized("invalid_token", "the bearer token is not valid");
  };
  // The compact form, strictly: three parts of base64url characters
  // (no padding, no '+' or '/'), so that one token has one spelling.
  auto first_dot = token.find('.');
  auto last_dot = token.rfind('.');
  if (first_dot == std::string_view::npos || first_dot == last_dot
      || token.find('.', first_dot + 1) != last_dot
      || last_dot + 1 == token.size())
    return invalid();
  for (char c : token)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_'
          || c == '.'))
      return invalid();
  auto signed_part = token.substr(0, last_dot);
  auto signature = token.substr(last_dot + 1);
  json claims;
  try {
    auto header = json::parse(
      jwt::base64_uri_decode(token.data(), first_dot));
    // One algorithm only, spelled exactly: a token naming any other (none,
    // or HS256 signed with an RSA public key as the secret) fails here.
    if (!header.is_object() || !header.contains("alg")
        || !header["alg"].is_string()
        || header["alg"].get<std::string>() != algorithm_)
      return invalid();
    // Critical header parameters this verifier does not know (RFC 7515
    // 4.1.11) make the token unusable. `typ` is informational: "JWT" and
    // RFC 9068's "at+jwt" are both fine.
    if (header.contains("crit"))
      return invalid();
    if (!verify_signature(signed_part, signature))
      return invalid();
    claims = json::parse(jwt::base64_uri_decode(
      token.data() + first_dot + 1, last_dot - first_dot - 1));
  } catch (...) {
    // Malformed base64 or JSON, or key material OpenSSL refuses.
    return invalid();
  }
  if (!claims.is_object())
    return invalid();
  try {
    auto exp = numeric_date(claims, "exp");
    if (!exp)
      return unauthorized("invalid_token", "the bearer token has no exp");
    auto t = static_cast<double>(now);
    if (t > *exp + static_cast<double>(leeway_))
      return unauthorized("token_expired", "the bearer token has expired");
    auto nbf = numeric_date(claims, "nbf");
    if (nbf && t + static_cast<double>(leeway_) < *nbf)
      return unauthorized("token_not_yet_valid",
                          "the bearer token is not valid yet");
    auto iat = numeric_date(claims, "iat");
    if (iat && *iat > t + static_cast<double>(leeway_))
      return invalid();
  } catch (const std::invalid_argument&) {
    return invalid();
  }
  if (!issuer_.empty()) {
    auto it = claims.find("iss");
    if (it == claims.end() || !it->is_string()
        || it->get<std::string>() != issuer_)
      return invalid();
  }
  if (!audience_.empty() && !audience_matches(claims, audience_))
    return invalid();
  // sub is a string (RFC 7519 StringOrURI): a number there is a malformed
  // token, not another user.
  auto sub_it = claims.find("sub");
  if (sub_it != claims.end() && !sub_it->is_string())
    return invalid();
  std::string sub = sub_it == claims.end() ? "" : sub_it->get<std::string>();
  bool admin = false;
  if (auto it = claims.find("admin"); it != claims.end()) {
    if (!it->is_boolean())
      return invalid();
    admin = it->get<bool>();
  }
  std::optional<std::string> scope;
  if (auto it = claims.find("scope"); it != claims.end()) {
    if (!it->is_string())
      return invalid();
    scope = it->get<std::string>();
  }
  auto who = (admin ? "admin:" : "user:") + sub;
  if (req.where->kind == route_kind::metrics)
    return admin ? allow(who)
                 : forbidden("forbidden", "/metrics needs an admin token",
                             who);
  if (!admin && sub != std::to_string(req.where->user_id))
    return forbidden("forbidden",
                     "this token may not act on another user's recordings",
                     who);
  if (scope) {
    auto wanted = is_read(req) ? "audio:read" : "audio:write";
    if (!scope_has(*scope, wanted))
      return forbidden("insufficient_scope",
                       std::string{"this token's scope lacks "} + wanted,
                       who);
  }
  auto d = allow(who);
  d.may_read = !scope || scope_has(*scope, "audio:read");
  return d;
}

bool authenticator::verify_signature(std::string_view signed_part,
                                     std::string_view signature) const {
  if (algorithm_ == "HS256") {
    // By hand with OpenSSL: cpp-jwt 1.4 compares HMACs with ==, which
    // leaks timing; this compares in constant time.
    return equal_in_constant_time(hmac_sha256(key_, signed_part), signature);
  }
  // RS256 / ES256: cpp-jwt verifies with OpenSSL (and turns ES256's raw
  // r||s into the DER form OpenSSL takes).
  jwt::jwt_header header{algorithm_ == "RS256" ? jwt::algorithm::RS256
                                               : jwt::algorithm::ES256};
  jwt::jwt_signature verifier{key_};
  auto verified = verifier.verify(
    header, jwt::string_view{signed_part.data(), signed_part.size()},
    jwt::string_view{signature.data(), signature.size()});
  return verified.first && !verified.second;
}

auth_decision authenticator::check_link(const auth_request& req,
                                        int64_t now) const {
  const auto invalid = [] {
    return unauthorized("invalid_link", "the signed link is not valid");
  };
  // A link grants reads only.
  if (req.method != "GET" && req.method != "HEAD")
    return invalid();
  auto expires_text = query_param(req.query, "expires");
  auto sig = query_param(req.query, "sig");
  // The expiry as it was signed: digits, no leading zero.
  if (!expires_text || !sig || expires_text->empty()
      || expires_text->size() > 18 || (*expires_text)[0] == '0')
    return invalid();
  int64_t expires = 0;
  for (char c : *expires_text) {
    if (c < '0' || c > '9')
      return invalid();
    expires = expires * 10 + (c - '0');
  }
  auto expected = link_signature(req.path, expires);
  if (!equal_in_constant_time(expected, *sig))
    return invalid();
  if (now > expires)
    return unauthorized("link_expired", "the signed link has expired");
  return allow("link");
}

auth_decision authenticator::check_metrics(const auth_request& req,
                                           int64_t now) const {
  auto token = bearer_token(req.authorization);
  if (!token)
    return unauthorized(req.authorization.empty() ? "missing_token"
                                                  : "invalid_token",
                        "/metrics needs a bearer token");
  if (!metrics_token_.empty() && equal_in_constant_time(*token, metrics_token_))
    return allow("metrics");
  return check_token(*token, req, now);
}

std::string authenticator::link_signature(std::string_view path,
                                          int64_t expires) const {
  // "read": the method class the link grants (API.md), then the exact
  // path and the expiry, one per line.
  std::string message = "read\n";
  message.append(path.data(), path.size());
  message += '\n';
  message += std::to_string(expires);
  return hmac_sha256(link_secret_, message);
}

std::string authenticator::sign_link(const std::string& path,
                                     int64_t now) const {
  auto expires = now + link_ttl_;
  return path + "?expires=" + std::to_string(expires)
         + "&sig=" + link_signature(path, expires);
}

} // namespace phonon::http
