#include "persistence/s3/sigv4.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <map>
#include <stdexcept>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

namespace phonon::persistence::s3 {

namespace {

constexpr std::string_view algorithm = "AWS4-HMAC-SHA256";
constexpr char hex_upper[] = "0123456789ABCDEF";
constexpr char hex_lower[] = "0123456789abcdef";

std::string to_hex(const unsigned char* bytes, size_t n) {
  std::string out;
  out.reserve(2 * n);
  for (size_t i = 0; i < n; ++i) {
    out += hex_lower[bytes[i] >> 4];
    out += hex_lower[bytes[i] & 0x0f];
  }
  return out;
}

bool is_unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
         || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_'
         || c == '~';
}

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

std::string lower(std::string_view s) {
  std::string out{s};
  for (auto& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

/// Trims `value` and makes every inner run of whitespace one space.
std::string squeeze(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  bool pending_space = false;
  for (char c : value) {
    if (is_space(c)) {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space)
      out += ' ';
    pending_space = false;
    out += c;
  }
  return out;
}

std::string hmac_sha256(std::string_view key, std::string_view message) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(message.data()),
           message.size(), mac, &len)
      == nullptr)
    throw std::runtime_error("sigv4: HMAC-SHA256 failed");
  std::string out(reinterpret_cast<const char*>(mac), len);
  OPENSSL_cleanse(mac, sizeof(mac));
  return out;
}

/// Overwrites a string that held key material before it is freed.
void wipe(std::string& s) {
  if (!s.empty())
    OPENSSL_cleanse(s.data(), s.size());
  s.clear();
}

std::string date8_of(std::string_view amz) {
  return std::string{amz.substr(0, 8)};
}

bool is_signers_header(std::string_view lowered) {
  return lowered == "x-amz-date" || lowered == "x-amz-content-sha256"
         || lowered == "x-amz-security-token" || lowered == "authorization";
}

void check_scope(const std::string& method, const scope_params& scope) {
  if (method.empty())
    throw std::invalid_argument("sigv4: empty method");
  if (scope.region.empty() || scope.service.empty())
    throw std::invalid_argument("sigv4: empty region or service");
}

bool has_host(const header_list& headers) {
  return std::any_of(headers.begin(), headers.end(), [](const header& h) {
    return lower(h.name) == "host";
  });
}

} // namespace

// -- building blocks ----------------------------------------------------------

std::string uri_encode(std::string_view bytes, bool keep_slash) {
  std::string out;
  out.reserve(bytes.size());
  for (char ch : bytes) {
    auto c = static_cast<unsigned char>(ch);
    if (is_unreserved(c) || (keep_slash && c == '/')) {
      out += ch;
    } else {
      out += '%';
      out += hex_upper[c >> 4];
      out += hex_upper[c & 0x0f];
    }
  }
  return out;
}

std::string encode_path(std::string_view decoded_path) {
  return uri_encode(decoded_path, true);
}

std::string normalize_path(std::string_view path) {
  std::vector<std::string_view> kept;
  bool trailing_slash = false;
  size_t pos = 0;
  while (pos <= path.size()) {
    auto end = path.find('/', pos);
    if (end == std::string_view::npos)
      end = path.size();
    auto seg = path.substr(pos, end - pos);
    bool last = end == path.size();
    if (seg == "..") {
      if (!kept.empty())
        kept.pop_back();
      trailing_slash = last;
    } else if (seg == ".") {
      trailing_slash = last;
    } else if (seg.empty()) {
      // "//" merges; an empty last segment is a trailing slash.
      trailing_slash = last ? true : trailing_slash;
    } else {
      kept.push_back(seg);
      trailing_slash = false;
    }
    pos = end + 1;
  }
  std::string out = "/";
  for (size_t i = 0; i < kept.size(); ++i) {
    if (i > 0)
      out += '/';
    out += kept[i];
  }
  if (trailing_slash && !kept.empty())
    out += '/';
  return out;
}

std::string canonical_uri(std::string_view path, path_rule rule) {
  if (path.empty())
    return "/";
  switch (rule) {
    case path_rule::s3:
      return std::string{path};
    case path_rule::generic:
      return uri_encode(path, true);
    case path_rule::generic_normalized:
      return uri_encode(normalize_path(path), true);
  }
  return std::string{path};
}

std::string canonical_query_string(const query_list& query) {
  std::vector<std::pair<std::string, std::string>> encoded;
  encoded.reserve(query.size());
  for (const auto& p : query)
    encoded.emplace_back(uri_encode(p.name, false),
                         uri_encode(p.value, false));
  // std::string compares bytes as unsigned char: the order AWS specifies
  // (by code point, so "Param-3" < "Param2" < "param1").
  std::sort(encoded.begin(), encoded.end());
  std::string out;
  for (const auto& [name, value] : encoded) {
    if (!out.empty())
      out += '&';
    out += name;
    out += '=';
    out += value;
  }
  return out;
}

canonical_header_block canonical_headers(const header_list& headers) {
  std::map<std::string, std::string> merged; // sorted by lower-cased name
  for (const auto& h : headers) {
    auto name = lower(squeeze(h.name));
    auto value = squeeze(h.value);
    auto [it, fresh] = merged.try_emplace(std::move(name), value);
    if (!fresh) {
      it->second += ',';
      it->second += value;
    }
  }
  canonical_header_block out;
  for (const auto& [name, value] : merged) {
    out.lines += name;
    out.lines += ':';
    out.lines += value;
    out.lines += '\n';
    if (!out.names.empty())
      out.names += ';';
    out.names += name;
  }
  return out;
}

std::string amz_date(std::time_t t) {
  std::tm tm{};
  if (gmtime_r(&t, &tm) == nullptr)
    throw std::invalid_argument("sigv4: time out of range");
  char buf[32];
  auto n = std::strftime(buf, sizeof(buf), "%Y%m%dT%H%M%SZ", &tm);
  if (n != 16)
    throw std::invalid_argument("sigv4: time out of range");
  return std::string(buf, n);
}

std::string credential_scope(std::string_view date8, std::string_view region,
                             std::string_view service) {
  std::string out;
  out.reserve(date8.size() + region.size() + service.size() + 16);
  out += date8;
  out += '/';
  out += region;
  out += '/';
  out += service;
  out += "/aws4_request";
  return out;
}

std::string canonical_request(std::string_view method,
                              std::string_view canonical_uri,
                              std::string_view canonical_query,
                              const canonical_header_block& headers,
                              std::string_view payload_hash) {
  std::string out;
  out += method;
  out += '\n';
  out += canonical_uri;
  out += '\n';
  out += canonical_query;
  out += '\n';
  out += headers.lines; // each line ends in '\n' already
  out += '\n';
  out += headers.names;
  out += '\n';
  out += payload_hash;
  return out;
}

std::string string_to_sign(std::string_view amz_date, std::string_view scope,
                           std::string_view canonical_request) {
  std::string out{algorithm};
  out += '\n';
  out += amz_date;
  out += '\n';
  out += scope;
  out += '\n';
  out += sha256_hex(canonical_request);
  return out;
}

std::string signing_key(std::string_view secret_access_key,
                        std::string_view date8, std::string_view region,
                        std::string_view service) {
  std::string k_secret = "AWS4";
  k_secret += secret_access_key;
  auto k_date = hmac_sha256(k_secret, date8);
  wipe(k_secret);
  auto k_region = hmac_sha256(k_date, region);
  wipe(k_date);
  auto k_service = hmac_sha256(k_region, service);
  wipe(k_region);
  auto k_signing = hmac_sha256(k_service, "aws4_request");
  wipe(k_service);
  return k_signing;
}

std::string signature(std::string_view signing_key,
                      std::string_view string_to_sign) {
  auto mac = hmac_sha256(signing_key, string_to_sign);
  auto out = to_hex(reinterpret_cast<const unsigned char*>(mac.data()),
                    mac.size());
  return out;
}

std::string sha256_hex(std::string_view bytes) {
  sha256_hasher h;
  h.update(bytes);
  return h.hex_digest();
}

sha256_hasher::sha256_hasher() : ctx_(EVP_MD_CTX_new()) {
  auto* ctx = static_cast<EVP_MD_CTX*>(ctx_);
  if (ctx == nullptr || EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr) != 1) {
    EVP_MD_CTX_free(ctx);
    throw std::runtime_error("sigv4: SHA-256 init failed");
  }
}

sha256_hasher::~sha256_hasher() {
  EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_));
}

void sha256_hasher::update(std::string_view bytes) {
  if (EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), bytes.data(),
                       bytes.size())
      != 1)
    throw std::runtime_error("sigv4: SHA-256 update failed");
}

std::string sha256_hasher::hex_digest() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(static_cast<EVP_MD_CTX*>(ctx_), md, &len) != 1)
    throw std::runtime_error("sigv4: SHA-256 final failed");
  return to_hex(md, len);
}

// -- the whole signature ------------------------------------------------------

signed_request sign(const request& req, const credentials& creds,
                    const scope_params& scope, const sign_options& opts) {
  check_scope(req.method, scope);
  if (!has_host(req.headers))
    throw std::invalid_argument("sigv4: the request has no host header");
  for (const auto& h : req.headers)
    if (is_signers_header(lower(h.name)))
      throw std::invalid_argument("sigv4: header " + h.name
                                  + " is set by the signer");

  const auto date = amz_date(scope.time);
  header_list added;
  added.push_back({"x-amz-date", date});
  if (opts.content_sha256_header)
    added.push_back({"x-amz-content-sha256", req.payload_hash});
  if (!creds.session_token.empty())
    added.push_back({"x-amz-security-token", creds.session_token});

  auto all = req.headers;
  all.insert(all.end(), added.begin(), added.end());
  auto block = canonical_headers(all);

  signed_request out;
  out.canonical_request = canonical_request(
    req.method, canonical_uri(req.path, opts.path),
    canonical_query_string(req.query), block, req.payload_hash);
  const auto scope_str = credential_scope(date8_of(date), scope.region,
                                          scope.service);
  out.string_to_sign = string_to_sign(date, scope_str, out.canonical_request);
  auto key = signing_key(creds.secret_access_key, date8_of(date),
                         scope.region, scope.service);
  out.signature = signature(key, out.string_to_sign);
  wipe(key);
  out.signed_headers = block.names;

  out.authorization = std::string{algorithm};
  out.authorization += " Credential=";
  out.authorization += creds.access_key_id;
  out.authorization += '/';
  out.authorization += scope_str;
  out.authorization += ", SignedHeaders=";
  out.authorization += block.names;
  out.authorization += ", Signature=";
  out.authorization += out.signature;

  out.headers_to_add = std::move(added);
  out.headers_to_add.push_back({"Authorization", out.authorization});
  return out;
}

presigned_request presign(const request& req, const credentials& creds,
                          const scope_params& scope,
                          std::chrono::seconds expires, path_rule rule) {
  check_scope(req.method, scope);
  if (expires.count() < 1 || expires.count() > 604800)
    throw std::invalid_argument(
      "sigv4: a presigned URL expires after 1 to 604800 seconds");
  if (!has_host(req.headers))
    throw std::invalid_argument("sigv4: the request has no host header");
  for (const auto& p : req.query)
    if (lower(p.name).rfind("x-amz-", 0) == 0)
      throw std::invalid_argument("sigv4: query parameter " + p.name
                                  + " is set by the signer");

  const auto date = amz_date(scope.time);
  const auto scope_str = credential_scope(date8_of(date), scope.region,
                                          scope.service);
  auto block = canonical_headers(req.headers);

  auto query = req.query;
  query.push_back({"X-Amz-Algorithm", std::string{algorithm}});
  query.push_back({"X-Amz-Credential", creds.access_key_id + "/" + scope_str});
  query.push_back({"X-Amz-Date", date});
  query.push_back({"X-Amz-Expires", std::to_string(expires.count())});
  if (!creds.session_token.empty())
    query.push_back({"X-Amz-Security-Token", creds.session_token});
  query.push_back({"X-Amz-SignedHeaders", block.names});
  const auto cqs = canonical_query_string(query);

  presigned_request out;
  out.canonical_request = canonical_request(
    req.method, canonical_uri(req.path, rule), cqs, block, req.payload_hash);
  out.string_to_sign = string_to_sign(date, scope_str, out.canonical_request);
  auto key = signing_key(creds.secret_access_key, date8_of(date),
                         scope.region, scope.service);
  out.signature = signature(key, out.string_to_sign);
  wipe(key);
  out.query_string = cqs + "&X-Amz-Signature=" + out.signature;
  return out;
}

} // namespace phonon::persistence::s3
