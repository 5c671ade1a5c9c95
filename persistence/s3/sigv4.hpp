#pragma once

#include <chrono>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

// AWS Signature Version 4 (AWS4-HMAC-SHA256), written by hand on OpenSSL's
// libcrypto: Debian 12's libs3 signs only SigV2, and curl 7.88's
// CURLOPT_AWS_SIGV4 mis-signs unsorted and valueless query parameters
// (`?uploads`) and sends no x-amz-content-sha256 header (README.md, "S3").
//
// Every step is a pure function so that the tests can hold each intermediate
// string (canonical request, string to sign, signature) against AWS's
// published vectors; `sign` and `presign` chain them. Nothing here does I/O
// and nothing keeps state: every function is thread-safe.
//
// Secrets: `credentials` has no operator<< and no to_string, and no result
// type below contains the secret key or the signing key, so a result may be
// logged (minus the session token, which `signed_headers` carries when set).

namespace phonon::persistence::s3 {

/// An access key pair and an optional STS session token. Deliberately not
/// printable: log `access_key_id` alone when a key must be named.
struct credentials {
  std::string access_key_id;
  std::string secret_access_key;
  /// Empty unless the keys are temporary (STS); then it is signed as
  /// x-amz-security-token (header) or X-Amz-Security-Token (query).
  std::string session_token;
};

/// One query parameter, decoded (raw bytes); the signer encodes it. An empty
/// value is a valueless parameter (`?uploads` -> `uploads=`).
struct query_param {
  std::string name;
  std::string value;
};

/// One request header as it will be sent; names compare case-insensitively.
struct header {
  std::string name;
  std::string value;
};

using query_list = std::vector<query_param>;
using header_list = std::vector<header>;

/// How the canonical URI is made from the request's path.
enum class path_rule {
  /// Amazon S3: the path as sent (already URI-encoded once, see
  /// `encode_path`) is the canonical URI; no second encoding and no
  /// normalization (an object key may contain "//" or "..").
  s3,
  /// Every other service (and AWS's generic SigV4 test suite): the path as
  /// sent is URI-encoded a second time, '/' kept.
  generic,
  /// `generic` after RFC 3986 dot-segment removal and merging of repeated
  /// slashes (the suite's "*-normalized" cases).
  generic_normalized,
};

/// The literal payload hash for a body that is not signed (presigned URLs,
/// streamed uploads).
inline constexpr std::string_view unsigned_payload = "UNSIGNED-PAYLOAD";

/// SHA-256 of the empty string, hex: the payload hash of a bodiless request.
inline constexpr std::string_view empty_payload_sha256
  = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// The request to sign. Nothing in it is secret.
struct request {
  std::string method;      ///< "GET", "PUT", ... (used as given)
  std::string path;        ///< as sent on the wire, e.g. "/bucket/a%20b"
  query_list query;        ///< decoded; order does not matter
  header_list headers;     ///< must contain host; x-amz-date and
                           ///< Authorization are the signer's to add
  std::string payload_hash = std::string{unsigned_payload};
};

/// Who signs, where and when.
struct scope_params {
  std::string region;   ///< "us-east-1"
  std::string service;  ///< "s3"
  std::time_t time = 0; ///< signing time, UTC seconds
};

/// What the signer did, step by step. Contains no secret.
struct signed_request {
  std::string canonical_request;
  std::string string_to_sign;
  std::string signature;        ///< 64 lowercase hex digits
  std::string signed_headers;   ///< "host;range;x-amz-date"
  std::string authorization;    ///< the Authorization header's value
  /// Headers to add to the request: x-amz-date, x-amz-content-sha256
  /// (when asked for), x-amz-security-token (when the credentials have
  /// one) and Authorization, in that order.
  header_list headers_to_add;
};

/// Options of header signing.
struct sign_options {
  path_rule path = path_rule::s3;
  /// Add and sign x-amz-content-sha256 (= the payload hash). S3 requires
  /// it; the generic test suite signs it only where the body is signed.
  bool content_sha256_header = true;
};

/// A presigned request: the query string to append to the path.
struct presigned_request {
  std::string canonical_request;
  std::string string_to_sign;
  std::string signature;
  /// The whole query string, with the request's own parameters, the
  /// X-Amz-* authentication parameters and X-Amz-Signature last.
  std::string query_string;
};

// -- building blocks ----------------------------------------------------------

/// AWS's UriEncode: every byte but A-Z a-z 0-9 - . _ ~ becomes %XY (upper
/// case hex); '/' is kept when `keep_slash`. A space is %20, never '+'.
std::string uri_encode(std::string_view bytes, bool keep_slash);

/// Encodes a decoded path (an object key with its leading "/bucket/" or
/// "/") for the request line and for S3's canonical URI: `uri_encode` with
/// '/' kept. "/test$file.text" -> "/test%24file.text".
std::string encode_path(std::string_view decoded_path);

/// RFC 3986 section 5.2.4 dot-segment removal plus merging of repeated
/// slashes; a trailing slash is kept. "//a/./b/../" -> "/a/".
std::string normalize_path(std::string_view path);

/// The canonical URI of `path` (as sent) under `rule`; "" becomes "/".
std::string canonical_uri(std::string_view path, path_rule rule);

/// Encoded "name=value" pairs joined by '&', sorted by encoded name then by
/// encoded value; a valueless parameter is "name=".
std::string canonical_query_string(const query_list& query);

/// The canonical headers block and the signed-headers list.
struct canonical_header_block {
  /// One "name:value\n" line per distinct lower-cased name, sorted; values
  /// trimmed, inner whitespace runs (folded lines too) made one space,
  /// repeated names joined with ',' in the order given.
  std::string lines;
  /// The names joined by ';' ("host;x-amz-date").
  std::string names;
};
canonical_header_block canonical_headers(const header_list& headers);

/// "YYYYMMDDTHHMMSSZ" for `t` in UTC.
std::string amz_date(std::time_t t);

/// "YYYYMMDD/region/service/aws4_request".
std::string credential_scope(std::string_view date8, std::string_view region,
                             std::string_view service);

/// method\ncanonical URI\ncanonical query\ncanonical headers\n
/// signed headers\npayload hash
std::string canonical_request(std::string_view method,
                              std::string_view canonical_uri,
                              std::string_view canonical_query,
                              const canonical_header_block& headers,
                              std::string_view payload_hash);

/// "AWS4-HMAC-SHA256\n" amz_date "\n" scope "\n" hex(SHA-256(canonical)).
std::string string_to_sign(std::string_view amz_date, std::string_view scope,
                           std::string_view canonical_request);

/// kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date8), region),
/// service), "aws4_request"), 32 raw bytes. Secret material: never log it.
std::string signing_key(std::string_view secret_access_key,
                        std::string_view date8, std::string_view region,
                        std::string_view service);

/// hex(HMAC-SHA256(signing_key, string_to_sign)).
std::string signature(std::string_view signing_key,
                      std::string_view string_to_sign);

/// Lowercase hex SHA-256 of `bytes`.
std::string sha256_hex(std::string_view bytes);

/// Incremental SHA-256 for payloads read in pieces.
class sha256_hasher {
public:
  sha256_hasher();
  ~sha256_hasher();
  sha256_hasher(const sha256_hasher&) = delete;
  sha256_hasher& operator=(const sha256_hasher&) = delete;

  void update(std::string_view bytes);
  /// The digest, lowercase hex; the hasher may not be updated afterwards.
  std::string hex_digest();

private:
  void* ctx_; // EVP_MD_CTX*, kept out of this header
};

// -- the whole signature ------------------------------------------------------

/// Signs `req` for the Authorization header (AWS's "single chunk" form).
/// Throws std::invalid_argument when `req` has no host header, sets one of
/// the signer's own headers (x-amz-date, x-amz-content-sha256,
/// x-amz-security-token, authorization), or has an empty method, region or
/// service.
signed_request sign(const request& req, const credentials& creds,
                    const scope_params& scope, const sign_options& opts = {});

/// Presigns `req` (query-string authentication) for `expires` (1 s to 7
/// days, else std::invalid_argument). Signs only the headers in `req`
/// (normally just host); the payload hash is `req.payload_hash`, which
/// S3 wants as UNSIGNED-PAYLOAD. `req.query` must not already hold X-Amz-*
/// authentication parameters.
presigned_request presign(const request& req, const credentials& creds,
                          const scope_params& scope,
                          std::chrono::seconds expires,
                          path_rule rule = path_rule::s3);

} // namespace phonon::persistence::s3
