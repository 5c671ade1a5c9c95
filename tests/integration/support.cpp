#include "tests/integration/support.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

// Listeners need Catch's reporter interfaces outside the main file.
#define CATCH_CONFIG_EXTERNAL_INTERFACES
#include <catch2/catch.hpp>

extern char** environ;

namespace phonon::integration {

namespace fs = std::filesystem;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
using tcp = boost::asio::ip::tcp;

namespace {

using clock_type = std::chrono::steady_clock;

void sleep_ms(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds{ms});
}

bool iequal(std::string_view a, std::string_view b) {
  if (a.size() != b.size())
    return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i]))
        != std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

std::string tail_lines(const std::string& text, size_t lines) {
  // Walk back over `lines` line breaks, ignoring a final one.
  size_t end = text.size();
  if (end > 0 && text[end - 1] == '\n')
    --end;
  size_t pos = end;
  for (size_t seen = 0; pos > 0; --pos) {
    if (text[pos - 1] == '\n' && ++seen == lines)
      break;
  }
  return text.substr(pos);
}

/// Children alive right now, so that a failing assertion can show their
/// logs.
std::vector<const child_process*>& live_children() {
  static std::vector<const child_process*> result;
  return result;
}

/// Prints the log tail of every live child (serve nodes and workers) once
/// per test case, at the first failed assertion: the processes' view is what
/// explains most failures.
class child_log_listener : public Catch::TestEventListenerBase {
public:
  using TestEventListenerBase::TestEventListenerBase;

  void testCaseStarting(const Catch::TestCaseInfo& info) override {
    TestEventListenerBase::testCaseStarting(info);
    printed_ = false;
  }

  bool assertionEnded(const Catch::AssertionStats& stats) override {
    if (!printed_ && !stats.assertionResult.isOk()
        && !live_children().empty()) {
      printed_ = true;
      for (auto* child : live_children())
        std::cerr << "---- " << child->label() << " log tail (pid "
                  << child->pid() << ", " << child->log_path().string()
                  << ") ----\n"
                  << child->log_tail(child->failure_tail())
                  << "---- end of " << child->label() << " log ----\n";
    }
    return TestEventListenerBase::assertionEnded(stats);
  }

private:
  bool printed_ = false;
};

CATCH_REGISTER_LISTENER(child_log_listener)

} // namespace

// -- files and child commands -------------------------------------------------

temp_dir::temp_dir(std::string_view prefix) {
  auto pattern = (fs::temp_directory_path()
                  / (std::string{prefix} + "-XXXXXX"))
                   .string();
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr)
    throw std::runtime_error("mkdtemp failed: "
                             + std::string{std::strerror(errno)});
  path_ = buf.data();
}

temp_dir::~temp_dir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

run_result run(const std::string& cmd) {
  run_result result;
  // The braces let `cmd` redirect its own stderr (e.g. 2>/dev/null).
  auto full = "{ " + cmd + " ; } 2>&1";
  FILE* pipe = ::popen(full.c_str(), "r");
  if (pipe == nullptr) {
    result.output = "popen failed";
    return result;
  }
  char buf[4096];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof(buf), pipe)) > 0)
    result.output.append(buf, n);
  int status = ::pclose(pipe);
  if (status != -1 && WIFEXITED(status))
    result.exit_code = WEXITSTATUS(status);
  return result;
}

std::string shell_quote(std::string_view text) {
  std::string result = "'";
  for (char c : text) {
    if (c == '\'')
      result += "'\\''";
    else
      result += c;
  }
  result += '\'';
  return result;
}

std::string read_file(const fs::path& path) {
  std::ifstream in{path, std::ios::binary};
  if (!in)
    throw std::runtime_error("cannot read " + path.string());
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void write_file(const fs::path& path, std::string_view bytes) {
  std::ofstream out{path, std::ios::binary | std::ios::trunc};
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out)
    throw std::runtime_error("cannot write " + path.string());
}

// -- audio fixtures and ffprobe -----------------------------------------------

namespace {

/// Scratch space for probe_bytes() and friends; lives until exit.
const temp_dir& scratch_dir() {
  static temp_dir dir{"phonon-it-scratch"};
  return dir;
}

fs::path scratch_file(std::string_view stem) {
  static std::atomic<unsigned> counter{0};
  return scratch_dir() / (std::string{stem} + "-"
                          + std::to_string(++counter));
}

int json_int(const nlohmann::json& obj, const char* key) {
  auto i = obj.find(key);
  if (i == obj.end())
    return 0;
  if (i->is_number_integer())
    return i->get<int>();
  if (i->is_string())
    return std::atoi(i->get<std::string>().c_str());
  return 0;
}

void ffmpeg(const std::string& args, const fs::path& out) {
  auto r = run("ffmpeg -nostdin -hide_banner -v error -y " + args + " "
               + shell_quote(out.string()));
  if (!r.ok() || !fs::exists(out))
    throw std::runtime_error("ffmpeg failed making " + out.string() + ": "
                             + r.output);
}

} // namespace

std::optional<media_info> probe_file(const fs::path& path) {
  auto r = run("ffprobe -v error -show_entries "
               "format=duration,format_name:"
               "stream=codec_type,codec_name,sample_rate,channels "
               "-of json "
               + shell_quote(path.string()) + " 2>/dev/null");
  if (!r.ok())
    return std::nullopt;
  auto doc = nlohmann::json::parse(r.output, nullptr, false);
  if (!doc.is_object())
    return std::nullopt;
  media_info info;
  if (auto f = doc.find("format"); f != doc.end() && f->is_object()) {
    info.format_name = f->value("format_name", "");
    if (auto d = f->find("duration"); d != f->end() && d->is_string())
      info.duration = std::atof(d->get<std::string>().c_str());
  }
  auto streams = doc.find("streams");
  if (streams == doc.end() || !streams->is_array())
    return std::nullopt;
  for (auto& s : *streams) {
    if (s.value("codec_type", "") != "audio")
      continue;
    info.codec_name = s.value("codec_name", "");
    info.sample_rate = json_int(s, "sample_rate");
    info.channels = json_int(s, "channels");
    return info;
  }
  return std::nullopt;
}

std::optional<media_info> probe_bytes(std::string_view bytes) {
  auto path = scratch_file("probe");
  write_file(path, bytes);
  auto result = probe_file(path);
  std::error_code ec;
  fs::remove(path, ec);
  return result;
}

double decoded_seconds(const fs::path& path) {
  // Decoding to 8 kHz mono s16 makes the byte count a sample clock.
  auto out = scratch_file("decoded");
  auto r = run("ffmpeg -nostdin -hide_banner -v error -y -i "
               + shell_quote(path.string())
               + " -map 0:a:0 -ac 1 -ar 8000 -f s16le -c:a pcm_s16le "
               + shell_quote(out.string()));
  std::error_code ec;
  auto size = fs::file_size(out, ec);
  fs::remove(out, ec);
  if (!r.ok() || size == static_cast<uintmax_t>(-1))
    return -1;
  return static_cast<double>(size) / 16000.0;
}

double decoded_seconds_of(std::string_view bytes) {
  auto path = scratch_file("decode-in");
  write_file(path, bytes);
  auto result = decoded_seconds(path);
  std::error_code ec;
  fs::remove(path, ec);
  return result;
}

const fixtures& audio_fixtures() {
  static std::unique_ptr<temp_dir> dir;
  static std::unique_ptr<fixtures> result;
  if (result)
    return *result;
  dir = std::make_unique<temp_dir>("phonon-it-fixtures");
  fixtures fx;
  fx.m4a = *dir / "sine-440-44k-stereo.m4a";
  ffmpeg("-f lavfi -i sine=frequency=440:duration=3:sample_rate=44100 "
         "-ac 2 -c:a aac -b:a 96k",
         fx.m4a);
  fx.wav = *dir / "sine-660-22k-mono.wav";
  ffmpeg("-f lavfi -i sine=frequency=660:duration=3:sample_rate=22050 "
         "-ac 1 -c:a pcm_s16le",
         fx.wav);
  fx.m4a_faststart = *dir / "sine-880-48k-mono-faststart.m4a";
  ffmpeg("-f lavfi -i sine=frequency=880:duration=2:sample_rate=48000 "
         "-ac 1 -c:a aac -b:a 64k -movflags +faststart",
         fx.m4a_faststart);
  fx.png = *dir / "red.png";
  ffmpeg("-f lavfi -i color=c=red:s=16x16 -frames:v 1", fx.png);
  result = std::make_unique<fixtures>(std::move(fx));
  return *result;
}

// -- the server process -------------------------------------------------------

std::string phonon_binary() {
  if (auto env = std::getenv("PHONON_BIN"); env != nullptr && *env != '\0') {
    if (::access(env, X_OK) != 0)
      throw std::runtime_error(std::string{"PHONON_BIN="} + env
                               + " is not an executable file");
    return env;
  }
  std::error_code ec;
  auto self = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    auto candidate = self.parent_path() / "phonon";
    if (::access(candidate.c_str(), X_OK) == 0)
      return candidate.string();
  }
  throw std::runtime_error("set PHONON_BIN to the phonon binary");
}

// -- child processes ----------------------------------------------------------

child_process::child_process(std::string label, fs::path work_dir,
                             fs::path log_path,
                             std::chrono::milliseconds stop_limit,
                             size_t failure_tail)
  : label_(std::move(label)),
    work_dir_(std::move(work_dir)),
    log_path_(std::move(log_path)),
    stop_limit_(stop_limit),
    failure_tail_(failure_tail) {
  live_children().push_back(this);
}

child_process::~child_process() {
  if (pid_ > 0)
    stop();
  auto& v = live_children();
  v.erase(std::remove(v.begin(), v.end(), this), v.end());
}

void child_process::spawn(const std::vector<std::string>& argv,
                          const env_list& env) {
  if (pid_ > 0)
    throw std::runtime_error(label_ + ": already running");
  // Everything is built before fork: the child may only make
  // async-signal-safe calls.
  std::vector<std::string> argv_text{argv};
  std::vector<char*> argv_ptrs;
  for (auto& a : argv_text)
    argv_ptrs.push_back(a.data());
  argv_ptrs.push_back(nullptr);
  std::vector<std::string> env_text;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view entry{*e};
    auto replaced = std::any_of(env.begin(), env.end(), [&](auto& kv) {
      return entry.substr(0, kv.first.size() + 1) == kv.first + "=";
    });
    if (!replaced)
      env_text.emplace_back(entry);
  }
  for (auto& [k, v] : env)
    env_text.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& e : env_text)
    envp.push_back(e.data());
  envp.push_back(nullptr);
  int log_fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND,
                      0644);
  if (log_fd < 0)
    throw std::runtime_error("cannot open " + log_path_.string());
  int null_fd = ::open("/dev/null", O_RDONLY);
  auto dir_text = work_dir_.string();
  pid_t pid = ::fork();
  if (pid == 0) {
    // Child: only async-signal-safe calls until execve.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    if (null_fd >= 0)
      ::dup2(null_fd, 0);
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    if (::chdir(dir_text.c_str()) != 0)
      ::_exit(126);
    ::execve(argv_ptrs[0], argv_ptrs.data(), envp.data());
    ::_exit(127);
  }
  ::close(log_fd);
  if (null_fd >= 0)
    ::close(null_fd);
  if (pid < 0)
    throw std::runtime_error("fork failed: "
                             + std::string{std::strerror(errno)});
  pid_ = pid;
}

void child_process::await_log(
  const std::function<bool(const std::string&)>& ready, std::string_view what,
  std::chrono::seconds limit, size_t tail) {
  auto deadline = clock_type::now() + limit;
  while (clock_type::now() < deadline) {
    if (ready(log()))
      return;
    if (!running())
      throw std::runtime_error(label_ + " exited during startup; log:\n"
                               + log_tail(tail));
    sleep_ms(20);
  }
  kill_hard();
  throw std::runtime_error(label_ + " did not " + std::string{what}
                           + " within " + std::to_string(limit.count())
                           + " s; log:\n" + log_tail(tail));
}

bool child_process::running() {
  if (pid_ <= 0)
    return false;
  int status = 0;
  auto r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_ || (r < 0 && errno == ECHILD)) {
    pid_ = -1;
    return false;
  }
  return true;
}

int child_process::stop() {
  if (pid_ <= 0)
    return -1;
  ::kill(pid_, SIGTERM);
  int status = 0;
  auto deadline = clock_type::now() + stop_limit_;
  while (clock_type::now() < deadline) {
    auto r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_ || r < 0) {
      pid_ = -1;
      return r < 0 ? -1 : status;
    }
    sleep_ms(10);
  }
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  return status;
}

void child_process::kill_hard() {
  if (pid_ <= 0)
    return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
}

std::string child_process::log() const {
  try {
    return read_file(log_path_);
  } catch (const std::exception&) {
    return {};
  }
}

std::string child_process::log_tail(size_t lines) const {
  return tail_lines(log(), lines);
}

uint16_t pick_free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    throw std::runtime_error("socket failed: "
                             + std::string{std::strerror(errno)});
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0
      || ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    auto why = std::string{std::strerror(errno)};
    ::close(fd);
    throw std::runtime_error("cannot bind 127.0.0.1:0: " + why);
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

// -- the server process -------------------------------------------------------

server_process::server_process()
  : dir_("phonon-it-data"),
    child_("phonon", dir_.path(), dir_ / "server.log",
           std::chrono::seconds{5}, 30) {}

server_process::~server_process() = default;

namespace {

std::string env_or(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v != nullptr ? v : fallback;
}

/// Creates `<APP_DATABASE_MYSQL_DATABASE>_<pid>_<n>` on the test server.
std::string create_mysql_database() {
  static int counter = 0;
  auto name = env_or("APP_DATABASE_MYSQL_DATABASE", "phonon_test") + "_"
              + std::to_string(::getpid()) + "_" + std::to_string(++counter);
  auto cmd = "mariadb --protocol=TCP -h "
             + shell_quote(env_or("APP_DATABASE_MYSQL_HOST", "127.0.0.1"))
             + " -P " + shell_quote(env_or("APP_DATABASE_MYSQL_PORT", "3306"))
             + " -u " + shell_quote(env_or("APP_DATABASE_MYSQL_USERNAME", ""))
             + " -p"
             + shell_quote(env_or("APP_DATABASE_MYSQL_PASSWORD", ""))
             + " -e " + shell_quote("CREATE DATABASE `" + name + "`");
  auto res = run(cmd);
  if (!res.ok())
    throw std::runtime_error("cannot create MySQL database " + name + ": "
                             + res.output);
  return name;
}

} // namespace

void server_process::start(std::vector<std::string> extra_args) {
  if (child_.pid() > 0)
    throw std::runtime_error("server_process::start: already running");
  args_ = std::move(extra_args);
  auto log_path = child_.log_path();
  std::error_code ec;
  auto log_offset = fs::exists(log_path, ec) ? fs::file_size(log_path, ec)
                                             : uintmax_t{0};
  std::vector<std::string> argv{phonon_binary(), "serve",
                                "--host",        "127.0.0.1",
                                "--port",        "0",
                                "--data-dir",    dir_.path().string()};
  if (const char* driver = std::getenv("APP_DATABASE_DRIVER");
      driver != nullptr && std::string_view{driver} == "mysql") {
    // The same suite runs on MySQL (scripts/with-mysql.sh): every server
    // gets a database of its own, kept across restarts, so tests never see
    // each other's rows.
    if (mysql_db_.empty())
      mysql_db_ = create_mysql_database();
    argv.push_back("--set");
    argv.push_back("database.mysql.database=" + mysql_db_);
  }
  if (const char* type = std::getenv("APP_STORAGE_TYPE");
      type != nullptr && std::string_view{type} == "s3") {
    // The same suite runs on S3 (scripts/with-s3rver.sh): every server
    // gets a prefix of its own in the bucket, kept across restarts, so
    // tests never see (or reconcile away) each other's objects.
    if (s3_prefix_.empty()) {
      static int servers = 0;
      s3_prefix_ = "it-" + std::to_string(::getpid()) + "-"
                   + std::to_string(++servers);
    }
    argv.push_back("--set");
    argv.push_back("storage.s3.prefix=" + s3_prefix_);
  }
  argv.insert(argv.end(), args_.begin(), args_.end());
  // The working dir has no config/phonon.yaml: compiled defaults apply.
  child_.spawn(argv, env_);
  port_ = 0;
  constexpr std::string_view marker = "listening host=127.0.0.1 port=";
  auto listening = [&](const std::string& text) {
    if (text.size() <= log_offset)
      return false;
    auto pos = text.find(marker, log_offset);
    if (pos == std::string::npos)
      return false;
    pos += marker.size();
    unsigned value = 0;
    size_t digits = 0;
    while (pos < text.size()
           && std::isdigit(static_cast<unsigned char>(text[pos]))) {
      value = value * 10 + static_cast<unsigned>(text[pos++] - '0');
      ++digits;
    }
    if (digits == 0 || pos >= text.size() || value == 0 || value >= 65536)
      return false;
    port_ = static_cast<uint16_t>(value);
    return true;
  };
  child_.await_log(listening, "log 'listening'", std::chrono::seconds{15},
                   40);
}

void server_process::restart() {
  if (child_.pid() > 0)
    stop();
  start(args_);
}

// -- HTTP client --------------------------------------------------------------

bool http_response::has(std::string_view name) const {
  for (auto& [k, v] : headers)
    if (iequal(k, name))
      return true;
  return false;
}

std::string http_response::header(std::string_view name) const {
  for (auto& [k, v] : headers)
    if (iequal(k, name))
      return v;
  return {};
}

nlohmann::json http_response::json() const {
  return nlohmann::json::parse(body, nullptr, false);
}

struct http_connection::impl {
  net::io_context ioc;
  beast::tcp_stream stream{ioc};
  beast::flat_buffer buffer;
  uint16_t port = 0;

  /// Runs the io_context until the started operations finished; the
  /// stream's own timer bounds them, run_for() bounds everything else.
  void run_io() {
    ioc.restart();
    ioc.run_for(io_timeout + std::chrono::seconds{5});
    if (!ioc.stopped()) {
      stream.cancel();
      ioc.restart();
      ioc.run_for(std::chrono::seconds{1});
      throw std::runtime_error("HTTP client: operation did not finish");
    }
  }

  static http_response convert(bhttp::response<bhttp::string_body>&& res) {
    http_response result;
    result.status = res.result_int();
    result.version = res.version();
    result.keep_alive = res.keep_alive();
    for (auto& field : res)
      result.headers.emplace_back(std::string{field.name_string()},
                                  std::string{field.value()});
    result.body = std::move(res.body());
    return result;
  }
};

http_connection::http_connection(uint16_t port) : impl_(new impl) {
  impl_->port = port;
  beast::error_code result = net::error::would_block;
  impl_->stream.expires_after(io_timeout);
  impl_->stream.async_connect(
    tcp::endpoint{net::ip::make_address("127.0.0.1"), port},
    [&result](beast::error_code ec) { result = ec; });
  impl_->run_io();
  if (result)
    throw std::runtime_error("connect to 127.0.0.1:" + std::to_string(port)
                             + " failed: " + result.message());
}

http_connection::~http_connection() {
  beast::error_code ec;
  impl_->stream.socket().shutdown(tcp::socket::shutdown_both, ec);
  impl_->stream.socket().close(ec);
}

http_response http_connection::request(const std::string& method,
                                       const std::string& target,
                                       const std::string& body,
                                       const header_list& headers) {
  bhttp::request<bhttp::string_body> req;
  req.method_string(method);
  req.target(target);
  req.version(11);
  req.set(bhttp::field::host, "127.0.0.1:" + std::to_string(impl_->port));
  req.set(bhttp::field::user_agent, "phonon-integration-tests");
  for (auto& [k, v] : headers)
    req.set(k, v);
  req.body() = body;
  if (!body.empty() || method == "POST" || method == "PUT")
    req.prepare_payload();
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(256 * 1024 * 1024);
  if (method == "HEAD")
    parser.skip(true);
  auto& st = impl_->stream;
  beast::error_code write_ec = net::error::would_block;
  beast::error_code read_ec = net::error::would_block;
  bool write_done = false;
  st.expires_after(io_timeout);
  bhttp::async_write(st, req,
                     [&](beast::error_code ec, std::size_t) {
                       write_ec = ec;
                       write_done = true;
                     });
  bhttp::async_read(st, impl_->buffer, parser,
                    [&](beast::error_code ec, std::size_t) {
                      read_ec = ec;
                      // An early answer (413): stop pushing the body.
                      if (!ec && !write_done)
                        st.socket().cancel();
                    });
  impl_->run_io();
  if (read_ec)
    throw std::runtime_error(method + " " + target.substr(0, 80)
                             + ": reading the response failed: "
                             + read_ec.message()
                             + (write_ec ? " (write: " + write_ec.message()
                                             + ")"
                                         : std::string{}));
  return impl::convert(parser.release());
}

void http_connection::send_raw(std::string_view bytes) {
  beast::error_code result = net::error::would_block;
  impl_->stream.expires_after(io_timeout);
  net::async_write(impl_->stream, net::buffer(bytes.data(), bytes.size()),
                   [&result](beast::error_code ec, std::size_t) {
                     result = ec;
                   });
  impl_->run_io();
  if (result)
    throw std::runtime_error("send_raw failed: " + result.message());
}

http_response http_connection::read_response(bool head_request) {
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(256 * 1024 * 1024);
  if (head_request)
    parser.skip(true);
  beast::error_code result = net::error::would_block;
  impl_->stream.expires_after(io_timeout);
  bhttp::async_read(impl_->stream, impl_->buffer, parser,
                    [&result](beast::error_code ec, std::size_t) {
                      result = ec;
                    });
  impl_->run_io();
  if (result)
    throw std::runtime_error("reading a response failed: "
                             + result.message());
  return impl::convert(parser.release());
}

bool http_connection::wait_closed_by_peer(std::chrono::milliseconds limit) {
  if (impl_->buffer.size() > 0)
    return false;
  char byte = 0;
  beast::error_code result = net::error::would_block;
  std::size_t got = 0;
  impl_->stream.expires_after(limit);
  impl_->stream.async_read_some(net::buffer(&byte, 1),
                                [&](beast::error_code ec, std::size_t n) {
                                  result = ec;
                                  got = n;
                                });
  impl_->run_io();
  if (got > 0)
    return false;
  return result == net::error::eof || result == net::error::connection_reset;
}

http_response http_request(uint16_t port, const std::string& method,
                           const std::string& target, const std::string& body,
                           const header_list& headers) {
  http_connection conn{port};
  return conn.request(method, target, body, headers);
}

http_response http_get(uint16_t port, const std::string& target,
                       const header_list& headers) {
  return http_request(port, "GET", target, {}, headers);
}

// -- multipart ----------------------------------------------------------------

multipart_body make_multipart(const std::vector<form_part>& parts) {
  std::string boundary = "phonon-it-7d1c0f";
  auto clashes = [&] {
    for (auto& p : parts)
      if (p.data.find(boundary) != std::string::npos)
        return true;
    return false;
  };
  while (clashes())
    boundary += "x";
  multipart_body result;
  result.content_type = "multipart/form-data; boundary=" + boundary;
  auto& out = result.body;
  for (auto& p : parts) {
    out += "--" + boundary + "\r\n";
    out += "Content-Disposition: form-data; name=\"" + p.name + "\"";
    if (!p.filename.empty())
      out += "; filename=\"" + p.filename + "\"";
    out += "\r\n";
    if (!p.content_type.empty())
      out += "Content-Type: " + p.content_type + "\r\n";
    out += "\r\n";
    out += p.data;
    out += "\r\n";
  }
  out += "--" + boundary + "--\r\n";
  return result;
}

http_response upload_file(uint16_t port, const std::string& target,
                          const std::string& bytes,
                          const std::string& filename,
                          const std::string& content_type,
                          const std::string& method) {
  auto mp = make_multipart({{"audio_file", filename, content_type, bytes}});
  return http_request(port, method, target, mp.body,
                      {{"Content-Type", mp.content_type}});
}

nlohmann::json wait_until_settled(uint16_t port, const std::string& target,
                                  std::chrono::milliseconds limit) {
  nlohmann::json last = nlohmann::json::value_t::discarded;
  auto deadline = clock_type::now() + limit;
  do {
    auto res = http_get(port, target);
    if (res.status == 200) {
      last = res.json();
      if (last.is_object() && last.value("status", "") != "processing")
        return last;
    }
    sleep_ms(50);
  } while (clock_type::now() < deadline);
  return last;
}

} // namespace phonon::integration
