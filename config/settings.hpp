#pragma once

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace phonon::config {

/// HTTP listener settings (`server.*`).
struct server_settings {
  std::string host = "0.0.0.0";
  uint16_t port = 8080;
  /// Number of io_context threads Beast runs on.
  int threads = 2;
  /// Largest accepted upload body in bytes (`413` above it).
  uint64_t max_upload_size = 10 * 1024 * 1024;
  /// Seconds the work behind one request may take (the actors); reading
  /// and writing are bounded by header_timeout and idle_timeout.
  int request_timeout = 30;
  /// Longest audio an upload may decode to, in seconds (`413 too_long`
  /// above it, found while decoding).
  int max_duration = 600;
  /// Largest accepted request head in bytes (`431` above it).
  uint32_t max_header_size = 16 * 1024;
  /// Seconds a client has to send a whole request head (`408` when part
  /// of one arrived, a silent close when nothing did).
  int header_timeout = 10;
  /// Seconds without a byte, while reading a request body or writing an
  /// answer, before the connection is closed (`408` while reading).
  int idle_timeout = 30;
  /// Open connections at most; beyond them new ones are accepted and
  /// closed at once.
  int max_connections = 10000;
  /// Origins that may read answers from a browser page (CORS): each
  /// `scheme://host[:port]`, or the single entry `*`. Empty: no CORS
  /// headers at all.
  std::vector<std::string> cors_origins;
  /// `/` serves the web console (README "Console"); false: 404 there.
  bool console = true;
};

/// MySQL connection settings (`database.mysql.*`).
struct mysql_settings {
  std::string host = "127.0.0.1";
  uint16_t port = 3306;
  std::string database = "phonon";
  std::string username = "phonon";
  std::string password;
  int pool_size = 4;
};

/// Recording store settings (`database.*`).
struct database_settings {
  /// `sqlite` or `mysql`.
  std::string driver = "sqlite";
  std::string sqlite_path = "./data/phonon.db";
  mysql_settings mysql;
};

/// An S3-compatible bucket (`storage.s3.*`). The secret is read only from
/// the environment or `secret_key_file` and never shown.
struct s3_storage_settings {
  /// "http://127.0.0.1:9000", "https://s3.eu-west-1.amazonaws.com".
  std::string endpoint;
  std::string region = "us-east-1";
  std::string bucket;
  /// Prepended to every object key ("phonon" -> "phonon/...").
  std::string prefix;
  std::string access_key;
  std::string secret_key;
  std::string secret_key_file;
  /// true: http://host/bucket/key (MinIO, Ceph); false: virtual host,
  /// http://bucket.host/key (AWS).
  bool path_style = true;
  /// Objects larger than this go up as multipart uploads (at least 5MiB).
  uint64_t part_size = 16ull * 1024 * 1024;
  /// GETs of audio objects of at least redirect_min_bytes are answered
  /// `302 Found` to a presigned URL of the object (README "Redirects to the
  /// bucket"). Needs storage.type s3.
  bool redirect = false;
  /// Smallest object a GET is redirected for; smaller ones are served by
  /// the node as before.
  uint64_t redirect_min_bytes = 1024ull * 1024;
  /// Seconds a presigned URL lives, 1..604800 (S3's limit).
  int redirect_ttl = 300;
  /// The endpoint clients reach the bucket at (scheme://host[:port]); it
  /// is what a presigned URL names and signs. Empty: `endpoint`.
  std::string public_endpoint;
};

/// Blob store settings (`storage.*`).
struct storage_settings {
  /// `local` (files under local.base_path) or `s3` (the bucket below, with
  /// local.base_path holding this node's copies and temp files).
  std::string type = "local";
  s3_storage_settings s3;
  std::string local_base_path = "./data/audio";
  /// Upper bound of the derived-format cache in bytes.
  uint64_t cache_max_bytes = 512ull * 1024 * 1024;
  /// Free space kept in reserve on the storage's file system: an upload
  /// that would leave less is refused with `507`, and /readyz answers `503`
  /// below it. The reserve leaves room for masters, the database and
  /// deletes when the disk fills up. 0 turns the reserve off.
  uint64_t min_free_bytes = 64ull * 1024 * 1024;
  /// Bytes of small stored files the HTTP layer keeps in memory (LRU,
  /// shared by every connection); 0 turns the memory cache off.
  uint64_t memory_cache_bytes = 64ull * 1024 * 1024;
  /// Largest file kept in the memory cache; larger files are sent with
  /// sendfile(2). At most 64 MiB.
  uint64_t memory_cache_item_max = 1024ull * 1024;
  /// Recordings whose row and file facts the read model keeps for GETs
  /// without the actors (DESIGN.md "Read path"); 0 turns it off. -1 (the
  /// default) means 65536 with SQLite and off with MySQL: several HTTP
  /// nodes may share a MySQL database, and one node's read model does not
  /// see the changes made through another.
  int read_model_entries = -1;
};

/// Transcoder pool settings (`transcoder.*`).
struct transcoder_settings {
  /// Local transcoder actors; 0 makes the node HTTP-only.
  int workers = 2;
  /// Jobs waiting or running before uploads get `503`.
  int queue_limit = 64;
  /// Input bytes of the jobs waiting or running before new ones get `503`
  /// (one job alone is always taken).
  uint64_t queue_limit_bytes = 256ull * 1024 * 1024;
  /// Transcoder deaths one job may cause before it is marked failed.
  int max_attempts = 3;
  /// Run local transcoders as child processes.
  bool isolate = false;
};

/// CAF cluster settings (`cluster.*`).
/// TLS between the nodes of a cluster (`cluster.tls.*`): PEM files. All
/// three set: peers must present a certificate the CA signed; none set:
/// plain TCP.
struct cluster_tls_settings {
  std::string certificate;
  std::string key;
  std::string ca;

  bool enabled() const {
    return !certificate.empty();
  }
};

/// CAF cluster settings (`cluster.*`).
struct cluster_settings {
  /// Address the cluster port is bound to.
  std::string host = "127.0.0.1";
  /// Port the serve node publishes its supervisor on; 0 = not published.
  uint16_t port = 0;
  /// `host:port` of the serve node a worker joins.
  std::string join;
  /// A worker on the serve node's own machine that may open the files of
  /// its data folder (set for transcoder.isolate's children): its jobs name
  /// files and stream between them instead of carrying bytes in messages.
  bool shared_files = false;
  cluster_tls_settings tls;
};

/// Authentication settings (`auth.*`).
struct auth_settings {
  /// `none` or `token`.
  std::string mode = "none";
  /// The one algorithm tokens must be signed with: HS256, RS256 or ES256.
  std::string algorithm = "HS256";
  /// HS256 key (at least 32 bytes). A secret: from APP_AUTH_SECRET or
  /// auth.secret_file only.
  std::string secret;
  /// File holding the HS256 secret (read at start, one trailing newline
  /// dropped).
  std::string secret_file;
  /// PEM public key for RS256 / ES256.
  std::string public_key_file;
  /// Required `iss` / `aud` of tokens when not empty.
  std::string issuer;
  std::string audience;
  /// Clock leeway in seconds for exp / nbf / iat.
  int leeway = 30;
  /// HMAC key of signed links (at least 32 bytes). A secret: from
  /// APP_AUTH_LINK_SECRET or auth.link_secret_file only.
  std::string link_secret;
  /// File holding the link secret.
  std::string link_secret_file;
  /// Seconds a signed link stays valid.
  int link_ttl = 3600;

  bool enabled() const {
    return mode == "token";
  }
};

/// Metrics endpoint settings (`metrics.*`).
struct metrics_settings {
  /// Static bearer token of the scraper when auth is on. A secret: from
  /// APP_METRICS_TOKEN or metrics.token_file only.
  std::string token;
  /// File holding the scraper's token.
  std::string token_file;
  /// `phonon worker` only: address and port of its own metrics listener
  /// (GET /metrics, Prometheus text). Port 0 (the default): no listener.
  /// `phonon serve` answers /metrics on server.port and ignores these.
  std::string host = "127.0.0.1";
  uint16_t port = 0;
};

/// Per-user bounds (`limits.*`, API.md "Limits").
struct limits_settings {
  /// Uploads and conversions one user may have in flight on one node at
  /// once (`429` + Retry-After beyond it); 0 = no bound.
  int per_user_inflight = 8;
};

/// Logging settings (`log.*`).
struct log_settings {
  /// trace, debug, info, warn, error.
  std::string level = "info";
  /// `text` or `json`.
  std::string format = "text";
};

/// Every setting of one Phonon process.
struct settings {
  server_settings server;
  database_settings database;
  storage_settings storage;
  transcoder_settings transcoder;
  cluster_settings cluster;
  auth_settings auth;
  metrics_settings metrics;
  limits_settings limits;
  log_settings log;
};

/// Raised for an unreadable file or a bad value; `what()` names the key.
class config_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// Looks up one environment variable; returns nullptr when unset.
using env_lookup = std::function<const char*(const char*)>;

/// Builds the settings: compiled defaults < YAML file < `APP_*` environment
/// < command-line flags. The YAML file is `--config PATH` when given, else
/// `APP_CONFIG`, else `config/phonon.yaml` when that file exists.
/// `args` are the flags after the role (`serve`, `worker`, ...); flags this
/// loader does not know are returned in `rest` when it is not null, otherwise
/// they are an error.
/// @throws config_error naming the offending key or flag.
settings load_settings(const std::vector<std::string>& args,
                       const env_lookup& env,
                       std::vector<std::string>* rest = nullptr);

/// Checks ranges and enumerations; throws config_error naming the key.
void validate(const settings& s);

} // namespace phonon::config
