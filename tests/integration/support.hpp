// Harness of the integration tests: runs the real `phonon` binary as a child
// process on an ephemeral port and talks to it over real sockets.
//
// Everything here is used from the test thread only. Every wait is bounded.

#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace phonon::integration {

// -- files and child commands -------------------------------------------------

/// A fresh directory under the system temp dir, removed with its contents
/// when the object dies.
class temp_dir {
public:
  /// Creates the directory; throws std::runtime_error when it cannot.
  explicit temp_dir(std::string_view prefix = "phonon-it");

  /// Removes the directory tree (best effort, never throws).
  ~temp_dir();

  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  /// The absolute path of the directory.
  const std::filesystem::path& path() const noexcept {
    return path_;
  }

  /// Shortcut for `path() / name`.
  std::filesystem::path operator/(std::string_view name) const {
    return path_ / std::string{name};
  }

private:
  std::filesystem::path path_;
};

/// Exit status and merged stdout + stderr of a shell command.
struct run_result {
  /// Exit code of the command, or -1 when it did not exit normally.
  int exit_code = -1;
  /// Everything the command wrote to stdout and stderr.
  std::string output;

  /// True when the command exited with 0.
  bool ok() const noexcept {
    return exit_code == 0;
  }
};

/// Runs `cmd` through `/bin/sh -c` (with stderr merged into stdout) and
/// waits for it.
run_result run(const std::string& cmd);

/// Quotes `text` for a POSIX shell command line.
std::string shell_quote(std::string_view text);

/// Reads a whole file; throws std::runtime_error when it cannot.
std::string read_file(const std::filesystem::path& path);

/// Writes (replaces) a whole file; throws std::runtime_error when it cannot.
void write_file(const std::filesystem::path& path, std::string_view bytes);

// -- audio fixtures and ffprobe -----------------------------------------------

/// What ffprobe says about a media file (its first audio stream).
struct media_info {
  /// Container duration in seconds (0 when unknown).
  double duration = 0;
  /// ffprobe's format_name, e.g. "mov,mp4,m4a,3gp,3g2,mj2" or "wav".
  std::string format_name;
  /// Codec of the first audio stream, e.g. "aac"; empty when none.
  std::string codec_name;
  /// Sample rate of the first audio stream in Hz.
  int sample_rate = 0;
  /// Channel count of the first audio stream.
  int channels = 0;
};

/// Probes the file at `path` with ffprobe; std::nullopt when ffprobe
/// refuses it or finds no audio stream.
std::optional<media_info> probe_file(const std::filesystem::path& path);

/// Writes `bytes` to a scratch file and probes it (see probe_file).
std::optional<media_info> probe_bytes(std::string_view bytes);

/// Seconds of audio ffmpeg actually decodes from `path` (-1 on failure).
/// Unlike the container duration this catches truncated payloads.
double decoded_seconds(const std::filesystem::path& path);

/// Same as decoded_seconds for bytes in memory.
double decoded_seconds_of(std::string_view bytes);

/// Audio made once per test run with the ffmpeg CLI (3 s sine tones) and a
/// small PNG, kept in a temp dir that lives until the process exits.
struct fixtures {
  /// 3 s, 440 Hz, 44.1 kHz stereo AAC in M4A (moov at the end, as
  /// ffmpeg writes it by default).
  std::filesystem::path m4a;
  /// 3 s, 660 Hz, 22.05 kHz mono PCM s16le WAV.
  std::filesystem::path wav;
  /// 2 s, 880 Hz, 48 kHz mono AAC in M4A with the moov atom first.
  std::filesystem::path m4a_faststart;
  /// A 16x16 PNG image.
  std::filesystem::path png;
};

/// Returns the shared fixtures, generating them on first use; throws
/// std::runtime_error when ffmpeg fails.
const fixtures& audio_fixtures();

// -- child processes ----------------------------------------------------------

/// Environment entries a child gets on top of (or instead of) the parent's.
using env_list = std::vector<std::pair<std::string, std::string>>;

/// A `phonon` child process whose stdout and stderr are appended to a log
/// file and whose stdin is /dev/null. While it exists, the first failed
/// assertion of a test case prints the tail of its log.
class child_process {
public:
  /// Prepares a child called `label` in messages (e.g. "phonon worker")
  /// that runs in `work_dir` and logs to `log_path`. stop() waits
  /// `stop_limit` after SIGTERM; a failed assertion shows `failure_tail`
  /// lines of the log. Nothing is started yet.
  child_process(std::string label, std::filesystem::path work_dir,
                std::filesystem::path log_path,
                std::chrono::milliseconds stop_limit,
                size_t failure_tail);

  /// Stops the child (see stop()).
  ~child_process();

  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;

  /// Forks and execs `argv` (argv[0] is the binary's path) with `env`
  /// applied to the parent's environment, and returns at once. Throws
  /// std::runtime_error when a child still runs, the log cannot be opened
  /// or fork fails.
  void spawn(const std::vector<std::string>& argv, const env_list& env = {});

  /// Polls the log every 20 ms until `ready` accepts its text. Throws
  /// std::runtime_error with the last `tail` log lines when the child exits
  /// first, or kills it and throws likewise when `limit` passed; `what`
  /// names the awaited event in that message (e.g. "log 'listening'").
  void await_log(const std::function<bool(const std::string&)>& ready,
                 std::string_view what, std::chrono::seconds limit,
                 size_t tail);

  /// Sends SIGTERM and reaps the child (SIGKILL after the stop limit).
  /// Returns the wait status, or -1 when no child was running.
  int stop();

  /// Sends SIGKILL and reaps the child: a crash as the OS sees it.
  void kill_hard();

  /// True while the child process exists (not yet reaped).
  bool running();

  /// The child's pid (-1 when not running).
  pid_t pid() const noexcept {
    return pid_;
  }

  /// The name used in messages, e.g. "phonon".
  const std::string& label() const noexcept {
    return label_;
  }

  /// The file that receives the child's stdout and stderr.
  const std::filesystem::path& log_path() const noexcept {
    return log_path_;
  }

  /// Lines of log shown at a failed assertion.
  size_t failure_tail() const noexcept {
    return failure_tail_;
  }

  /// Full text of the log (every run so far); "" when there is none.
  std::string log() const;

  /// The last `lines` lines of the log.
  std::string log_tail(size_t lines) const;

private:
  std::string label_;
  std::filesystem::path work_dir_;
  std::filesystem::path log_path_;
  std::chrono::milliseconds stop_limit_;
  size_t failure_tail_;
  pid_t pid_ = -1;
};

/// A port that was free on 127.0.0.1 a moment ago: bound to port 0, read
/// back and closed. Throws std::runtime_error when no socket can be made.
uint16_t pick_free_port();

// -- the server process -------------------------------------------------------

/// A `phonon serve` child process with its own temp data dir. The child's
/// stdout and stderr go to `<data dir>/server.log`.
class server_process {
public:
  /// Creates the data dir; the server is not started yet.
  server_process();

  /// Stops the server (SIGTERM, SIGKILL after 5 s) and removes the data dir.
  ~server_process();

  server_process(const server_process&) = delete;
  server_process& operator=(const server_process&) = delete;

  /// Starts `phonon serve --host 127.0.0.1 --port 0 --data-dir DIR` plus
  /// `extra_args` and waits (at most 15 s) for its "listening" log line.
  /// Throws std::runtime_error with the log tail when it does not come up.
  void start(std::vector<std::string> extra_args = {});

  /// Makes this server share `first`'s database (with
  /// APP_DATABASE_DRIVER=mysql) and S3 prefix (with APP_STORAGE_TYPE=s3)
  /// instead of getting its own: several HTTP nodes of one deployment.
  /// Call after first.start() and before start().
  void share_storage_with(const server_process& first) {
    mysql_db_ = first.mysql_db_;
    s3_prefix_ = first.s3_prefix_;
  }

  /// Environment entries every later start() adds for the child (for
  /// example PHONON_TEST_FAULT); kept across restart().
  void set_env(env_list env) {
    env_ = std::move(env);
  }

  /// Sends SIGTERM and reaps the child (SIGKILL after 5 s). Returns the
  /// wait status, or -1 when no child was running.
  int stop() {
    return child_.stop();
  }

  /// Sends SIGKILL and reaps the child: a crash as the OS sees it.
  void kill_hard() {
    child_.kill_hard();
  }

  /// Starts the server again on the same data dir with the arguments of the
  /// last start(); stops it first when it still runs.
  void restart();

  /// True while the child process exists (not yet reaped).
  bool running() {
    return child_.running();
  }

  /// The ephemeral port of the current (or last) run.
  uint16_t port() const noexcept {
    return port_;
  }

  /// The server's pid (-1 when not running), e.g. to read
  /// /proc/<pid>/status.
  pid_t pid() const noexcept {
    return child_.pid();
  }

  /// The data dir handed to --data-dir.
  const std::filesystem::path& data_dir() const noexcept {
    return dir_.path();
  }

  /// Full text of server.log (every run so far).
  std::string log() const {
    return child_.log();
  }

  /// The last `lines` lines of server.log.
  std::string log_tail(size_t lines = 40) const {
    return child_.log_tail(lines);
  }

private:
  temp_dir dir_;
  child_process child_;
  std::vector<std::string> args_;
  env_list env_;
  /// With APP_DATABASE_DRIVER=mysql: this server's own database.
  std::string mysql_db_;
  /// With APP_STORAGE_TYPE=s3: this server's storage.s3.prefix.
  std::string s3_prefix_;
  uint16_t port_ = 0;
};

/// Path of the phonon binary: $PHONON_BIN, else `phonon` beside the test
/// binary. Throws std::runtime_error when neither exists.
std::string phonon_binary();

// -- HTTP client --------------------------------------------------------------

/// A header field as sent or received.
using header_list = std::vector<std::pair<std::string, std::string>>;

/// One HTTP response as the client saw it.
struct http_response {
  /// Status code, e.g. 200.
  unsigned status = 0;
  /// HTTP version times ten (11 for HTTP/1.1).
  unsigned version = 0;
  /// Every header field in order of arrival.
  header_list headers;
  /// The body (empty for HEAD, 204 and 304).
  std::string body;
  /// Whether the response allows the connection to stay open.
  bool keep_alive = false;

  /// True when a header called `name` (case-insensitive) is present.
  bool has(std::string_view name) const;

  /// Value of the first header called `name` (case-insensitive), or "".
  std::string header(std::string_view name) const;

  /// The body parsed as JSON; a discarded value when it is not JSON.
  nlohmann::json json() const;
};

/// Per-operation time limit of the client.
constexpr std::chrono::seconds io_timeout{10};

/// A client connection to 127.0.0.1:port. Each operation gives up after
/// io_timeout and then throws std::runtime_error.
class http_connection {
public:
  /// Connects; throws std::runtime_error on failure.
  explicit http_connection(uint16_t port);

  ~http_connection();

  http_connection(const http_connection&) = delete;
  http_connection& operator=(const http_connection&) = delete;

  /// Writes a request and reads its response. The response is read while
  /// the body is still being written, so an early answer (413) is seen.
  http_response request(const std::string& method, const std::string& target,
                        const std::string& body = {},
                        const header_list& headers = {});

  /// Writes `bytes` as they are (for pipelining and hand-made requests).
  void send_raw(std::string_view bytes);

  /// Reads one response; `head_request` says it answers a HEAD (no body).
  http_response read_response(bool head_request = false);

  /// Waits (bounded) for the server to close the connection. True on EOF
  /// or reset with no further bytes, false when data arrived or it timed
  /// out.
  bool wait_closed_by_peer(std::chrono::milliseconds limit
                           = std::chrono::milliseconds{3000});

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// Opens a connection, sends one request and returns its response.
http_response http_request(uint16_t port, const std::string& method,
                           const std::string& target,
                           const std::string& body = {},
                           const header_list& headers = {});

/// Shortcut for a GET with no body.
http_response http_get(uint16_t port, const std::string& target,
                       const header_list& headers = {});

// -- multipart ----------------------------------------------------------------

/// One part of a multipart/form-data body.
struct form_part {
  /// The form field name, e.g. "audio_file".
  std::string name;
  /// File name; no filename parameter when empty.
  std::string filename;
  /// Content-Type of the part; no header when empty.
  std::string content_type;
  /// The part's bytes.
  std::string data;
};

/// A ready multipart/form-data body with its Content-Type header value.
struct multipart_body {
  /// "multipart/form-data; boundary=..."
  std::string content_type;
  /// The encoded body.
  std::string body;
};

/// Encodes `parts` with a boundary that none of them contains.
multipart_body make_multipart(const std::vector<form_part>& parts);

/// POSTs `bytes` as the `audio_file` part, like the seed's
/// `curl -F audio_file=@file`.
http_response upload_file(uint16_t port, const std::string& target,
                          const std::string& bytes,
                          const std::string& filename = "recording.m4a",
                          const std::string& content_type = "audio/mp4",
                          const std::string& method = "POST");

/// Polls GET `target` (metadata) every 50 ms until its status is not
/// "processing" or `limit` passed; returns the last metadata (a discarded
/// value when the server never answered 200 with JSON).
nlohmann::json wait_until_settled(uint16_t port, const std::string& target,
                                  std::chrono::milliseconds limit
                                  = std::chrono::milliseconds{10000});

} // namespace phonon::integration
