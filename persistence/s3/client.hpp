#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "persistence/blob_store.hpp"

// A blocking S3 client on libcurl and the SigV4 signer (sigv4.hpp): put
// (single PUT or multipart), get (whole or an explicit byte range, streamed
// to a file or a callback), head, list by prefix (ListObjectsV2), delete and
// delete-prefix. A plain library: no actors, no logging, no global state
// besides curl_global_init (done once).
//
// Retries: 5xx, 429 and connection-level failures (refused, reset, timed
// out) are retried with exponential backoff (settings::attempts tries,
// settings::retry_delay doubling); a 4xx other than 429 never is. Every try
// is signed again (fresh x-amz-date) and sends its body from the start
// again.
//
// Streaming: bodies are read from their file with pread while curl sends
// them (CURLOPT_READFUNCTION) and answers are handed to the sink as curl
// receives them, so no operation holds a whole object in memory. A file
// is read twice: once for its SHA-256 (the signed x-amz-content-sha256),
// once to send it.
//
// Secrets: `settings` has no operator<< and no error message contains the
// secret key or the Authorization header; messages name the operation, the
// bucket, the key, the HTTP status and S3's error code.

namespace phonon::persistence::s3 {

/// Where and how to reach one bucket. Not printable (holds the secret).
struct settings {
  /// "http://127.0.0.1:9000", "https://s3.eu-west-1.amazonaws.com"; no
  /// path (a trailing '/' is ignored).
  std::string endpoint;
  std::string region = "us-east-1";
  std::string bucket;
  /// Prepended to every key; a '/' is added when missing ("phonon" ->
  /// "phonon/"). Keys passed to and returned by the client exclude it.
  std::string prefix;
  std::string access_key;
  std::string secret_key;
  /// true: http://host/bucket/key (MinIO, s3rver, Ceph); false: virtual
  /// host, http://bucket.host/key (AWS's default).
  bool path_style = true;
  /// Objects larger than this go up in parts of this size (the last part
  /// smaller). At least 5 MiB, S3's minimum part size.
  uint64_t part_size = 16 * 1024 * 1024;
  /// Limit of one TCP (and TLS) connect.
  std::chrono::milliseconds connect_timeout{3000};
  /// A try fails when no byte moves in either direction for this long
  /// (there is no limit on a whole transfer, whose length depends on the
  /// object's size).
  std::chrono::milliseconds idle_timeout{15000};
  /// Tries per request, the first included (1 = no retry).
  int attempts = 3;
  /// Wait before the second try; doubled before each further one.
  std::chrono::milliseconds retry_delay{50};
};

/// The class of an S3 failure, what a caller decides on.
enum class errc : uint8_t {
  /// 404: no such key (NoSuchKey) or bucket (NoSuchBucket).
  not_found = 1,
  /// 403: refused credentials or signature (SignatureDoesNotMatch,
  /// InvalidAccessKeyId, AccessDenied).
  forbidden,
  /// Connection refused or reset, timeouts, 5xx/429 after the retries.
  unavailable,
  /// Everything else (other 4xx, malformed answers, local file errors).
  other,
};

/// "not_found", "forbidden", "unavailable", "other".
std::string to_string(errc x);

/// A failed S3 operation. `what()` names the operation, bucket, key, HTTP
/// status and S3 error code; never a secret.
class error : public storage_error {
public:
  error(errc code, const std::string& what, long http_status = 0,
        std::string s3_code = {});

  errc code() const noexcept {
    return code_;
  }

  /// The HTTP status of the last try (0 when none arrived).
  long http_status() const noexcept {
    return http_status_;
  }

  /// S3's <Code> ("NoSuchKey", "SignatureDoesNotMatch"), "" when none.
  const std::string& s3_code() const noexcept {
    return s3_code_;
  }

private:
  errc code_;
  long http_status_;
  std::string s3_code_;
};

/// What HEAD (and a finished GET) tells about an object.
struct object_info {
  uint64_t size = 0;
  /// As S3 sends it, quotes included ("\"9b2cf535f27731c974343645a3985328\"").
  std::string etag;
  /// The Last-Modified header (RFC 7231 date), as sent.
  std::string last_modified;
};

/// One object of a listing.
struct listed_object {
  /// Without settings::prefix.
  std::string key;
  uint64_t size = 0;
  std::string etag;
  /// ISO 8601, as in the listing ("2026-12-03T09:21:24.000Z").
  std::string last_modified;
};

/// Receives an object's bytes in order, in pieces of any size. May throw;
/// the operation then fails with that exception.
using byte_sink = std::function<void(std::string_view)>;

/// A connection to one bucket. Not thread-safe: each client owns one curl
/// handle (and so one reused connection); use one client per thread. Every
/// method blocks until done and throws `error` on failure.
class client {
public:
  /// Checks the settings (endpoint scheme, bucket, part size, attempts);
  /// throws std::invalid_argument naming the bad field. Connects lazily.
  explicit client(settings cfg);
  ~client();

  client(const client&) = delete;
  client& operator=(const client&) = delete;

  /// The settings' bucket.
  const std::string& bucket() const noexcept;

  /// Uploads the file at `path` under `key`: one PUT when it is at most
  /// part_size bytes, else a multipart upload (aborted on failure). Returns
  /// the new object's ETag.
  std::string put_file(std::string_view key, const std::filesystem::path& path);

  /// Uploads `bytes` under `key` (multipart above part_size, like
  /// put_file). Returns the ETag.
  std::string put_bytes(std::string_view key, std::string_view bytes);

  /// Streams the object into `sink`. A retry after bytes were delivered
  /// is impossible (the sink cannot take them back): it fails instead.
  object_info get(std::string_view key, const byte_sink& sink);

  /// Writes the object to `path` (created or truncated; on a retry
  /// truncated again). On failure `path` may hold part of the object.
  object_info get_to_file(std::string_view key,
                          const std::filesystem::path& path);

  /// Streams bytes `first`..`last` (inclusive, `first <= last`) into
  /// `sink`. Only explicit ranges are sent: s3rver answers suffix ranges
  /// (`bytes=-N`) wrongly, so callers resolve them against the size (see
  /// get_last). The returned size is the whole object's.
  object_info get_range(std::string_view key, uint64_t first, uint64_t last,
                        const byte_sink& sink);

  /// The last `n` bytes (all when the object is shorter): HEAD, then an
  /// explicit range. Not atomic: a concurrent replacement between the two
  /// requests is not detected.
  object_info get_last(std::string_view key, uint64_t n,
                       const byte_sink& sink);

  /// Size, ETag and Last-Modified; nullopt when there is no such object.
  std::optional<object_info> head(std::string_view key);

  /// Every object whose key starts with `prefix`, in key order, one
  /// ListObjectsV2 page of at most `page_size` (1..1000) keys at a time.
  void list(std::string_view prefix,
            const std::function<void(const listed_object&)>& each,
            int page_size = 1000);

  /// Shortcut: list() into a vector.
  std::vector<listed_object> list(std::string_view prefix,
                                  int page_size = 1000);

  /// One listing request of at most one key under the prefix: returns when
  /// the bucket answers and accepts the credentials, throws `error` saying
  /// why not (forbidden: a wrong key or secret; not_found: no such
  /// bucket; unavailable: no answer). Readiness and startup checks.
  void probe();

  /// Deletes one object; deleting a missing object succeeds (S3 says 204).
  void remove(std::string_view key);

  /// Deletes every object under `prefix` (list, then one DELETE each);
  /// returns how many were listed. An empty prefix is refused
  /// (std::invalid_argument): it would empty the whole prefix space.
  size_t remove_prefix(std::string_view prefix, int page_size = 1000);

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

// -- pure parts, exposed for the unit tests -----------------------------------

/// A minimal XML element: name (namespace prefix dropped), text (entities
/// decoded, children's text excluded) and children. Attributes are skipped.
struct xml_node {
  std::string name;
  std::string text;
  std::vector<xml_node> children;

  /// The first child called `name`, nullptr when none.
  const xml_node* child(std::string_view name) const;

  /// The text of the first child called `name`, "" when none.
  std::string child_text(std::string_view name) const;
};

/// Parses one XML document (S3's answers): prolog, comments, CDATA,
/// character and the five predefined entity references, self-closing tags.
/// Throws std::runtime_error on malformed input or a DOCTYPE.
xml_node parse_xml(std::string_view doc);

/// The part size a multipart upload of `size` bytes uses: `part_size`, or
/// more when that would need over 10,000 parts (S3's limit).
uint64_t effective_part_size(uint64_t size, uint64_t part_size);

/// Base delay times 2^(try-1), at most 2 s: the wait before try `next`
/// (2, 3, ...).
std::chrono::milliseconds backoff_delay(std::chrono::milliseconds base,
                                        int next);

} // namespace phonon::persistence::s3
