#include "config/settings.hpp"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

using namespace phonon::config;
using Catch::Matchers::Contains;

namespace fs = std::filesystem;

namespace {

/// A fake environment for load_settings.
struct fake_env {
  std::map<std::string, std::string> vars;

  env_lookup lookup() const {
    return [this](const char* name) -> const char* {
      auto i = vars.find(name);
      return i == vars.end() ? nullptr : i->second.c_str();
    };
  }
};

/// A fresh temporary directory, removed at scope exit.
struct temp_dir {
  fs::path path;

  temp_dir() {
    auto pattern = (fs::temp_directory_path() / "phonon-config-XXXXXX")
                     .string();
    REQUIRE(mkdtemp(pattern.data()) != nullptr);
    path = pattern;
  }

  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }

  std::string write(const std::string& name, const std::string& text) const {
    auto file = path / name;
    fs::create_directories(file.parent_path());
    std::ofstream out{file};
    out << text;
    return file.string();
  }
};

/// Switches the working directory for one scope (load_settings looks for
/// config/phonon.yaml relative to it).
struct cwd_guard {
  fs::path saved = fs::current_path();

  explicit cwd_guard(const fs::path& dir) {
    fs::current_path(dir);
  }

  ~cwd_guard() {
    std::error_code ec;
    fs::current_path(saved, ec);
  }
};

fs::path source_dir() {
  if (auto dir = std::getenv("PHONON_SOURCE_DIR"))
    return dir;
  // tests/unit/config/settings_test.cpp -> repository root.
  return fs::path{__FILE__}.parent_path().parent_path().parent_path()
    .parent_path();
}

settings load(const std::vector<std::string>& args,
              const fake_env& env = {}) {
  return load_settings(args, env.lookup());
}

/// Loads a YAML text through --config.
settings load_yaml(const std::string& yaml, const fake_env& env = {},
                   std::vector<std::string> extra = {}) {
  temp_dir dir;
  auto file = dir.write("phonon.yaml", yaml);
  std::vector<std::string> args{"--config", file};
  args.insert(args.end(), extra.begin(), extra.end());
  return load(args, env);
}

void check_equal(const settings& x, const settings& y) {
  CHECK(x.server.host == y.server.host);
  CHECK(x.server.port == y.server.port);
  CHECK(x.server.threads == y.server.threads);
  CHECK(x.server.max_upload_size == y.server.max_upload_size);
  CHECK(x.server.request_timeout == y.server.request_timeout);
  CHECK(x.server.max_header_size == y.server.max_header_size);
  CHECK(x.server.header_timeout == y.server.header_timeout);
  CHECK(x.server.idle_timeout == y.server.idle_timeout);
  CHECK(x.server.max_connections == y.server.max_connections);
  CHECK(x.database.driver == y.database.driver);
  CHECK(x.database.sqlite_path == y.database.sqlite_path);
  CHECK(x.database.mysql.host == y.database.mysql.host);
  CHECK(x.database.mysql.port == y.database.mysql.port);
  CHECK(x.database.mysql.database == y.database.mysql.database);
  CHECK(x.database.mysql.username == y.database.mysql.username);
  CHECK(x.database.mysql.password == y.database.mysql.password);
  CHECK(x.database.mysql.pool_size == y.database.mysql.pool_size);
  CHECK(x.storage.type == y.storage.type);
  CHECK(x.storage.local_base_path == y.storage.local_base_path);
  CHECK(x.storage.cache_max_bytes == y.storage.cache_max_bytes);
  CHECK(x.storage.min_free_bytes == y.storage.min_free_bytes);
  CHECK(x.storage.memory_cache_bytes == y.storage.memory_cache_bytes);
  CHECK(x.storage.memory_cache_item_max == y.storage.memory_cache_item_max);
  CHECK(x.storage.read_model_entries == y.storage.read_model_entries);
  CHECK(x.transcoder.workers == y.transcoder.workers);
  CHECK(x.transcoder.queue_limit == y.transcoder.queue_limit);
  CHECK(x.transcoder.max_attempts == y.transcoder.max_attempts);
  CHECK(x.transcoder.isolate == y.transcoder.isolate);
  CHECK(x.cluster.port == y.cluster.port);
  CHECK(x.cluster.join == y.cluster.join);
  CHECK(x.metrics.host == y.metrics.host);
  CHECK(x.metrics.port == y.metrics.port);
  CHECK(x.auth.mode == y.auth.mode);
  CHECK(x.auth.secret == y.auth.secret);
  CHECK(x.log.level == y.log.level);
  CHECK(x.log.format == y.log.format);
  CHECK(x.server.max_duration == y.server.max_duration);
  CHECK(x.transcoder.queue_limit_bytes == y.transcoder.queue_limit_bytes);
}

} // namespace

TEST_CASE("defaults apply without file, environment or flags",
          "[unit][config]") {
  temp_dir dir;
  cwd_guard cwd{dir.path};
  auto s = load({});
  check_equal(s, settings{});
  CHECK(s.server.host == "0.0.0.0");
  CHECK(s.server.port == 8080);
  CHECK(s.server.max_upload_size == 10u * 1024 * 1024);
  CHECK(s.database.driver == "sqlite");
  CHECK(s.database.sqlite_path == "./data/phonon.db");
  CHECK(s.storage.local_base_path == "./data/audio");
  CHECK(s.transcoder.workers == 2);
  CHECK(s.auth.mode == "none");
  CHECK(s.log.level == "info");
  CHECK_NOTHROW(validate(settings{}));
}

TEST_CASE("the shipped config/phonon.yaml loads and equals the defaults",
          "[unit][config]") {
  auto file = source_dir() / "config" / "phonon.yaml";
  INFO("file: " << file);
  REQUIRE(fs::exists(file));
  check_equal(load({"--config", file.string()}), settings{});
  fake_env env;
  env.vars["APP_CONFIG"] = file.string();
  check_equal(load({}, env), settings{});
  // It is also picked up from the working directory.
  cwd_guard cwd{source_dir()};
  check_equal(load({}), settings{});
}

TEST_CASE("config/phonon.yaml in the working directory is the fallback",
          "[unit][config]") {
  temp_dir dir;
  dir.write("config/phonon.yaml", "server:\n  port: 9999\n");
  auto other = dir.write("other.yaml", "server:\n  port: 7777\n");
  cwd_guard cwd{dir.path};
  CHECK(load({}).server.port == 9999);
  fake_env env;
  env.vars["APP_CONFIG"] = other;
  CHECK(load({}, env).server.port == 7777);
  // --config beats APP_CONFIG.
  CHECK(load({"--config", "config/phonon.yaml"}, env).server.port == 9999);
}

TEST_CASE("file < environment < command line", "[unit][config]") {
  const std::string yaml = "server:\n  port: 1111\nlog:\n  level: debug\n"
                           "transcoder:\n  workers: 5\n";
  fake_env env;
  CHECK(load_yaml(yaml).server.port == 1111);
  CHECK(load_yaml(yaml).log.level == "debug");
  env.vars["APP_SERVER_PORT"] = "2222";
  env.vars["APP_LOG_LEVEL"] = "warn";
  auto s = load_yaml(yaml, env);
  CHECK(s.server.port == 2222);
  CHECK(s.log.level == "warn");
  CHECK(s.transcoder.workers == 5);
  s = load_yaml(yaml, env,
                {"--port", "3333", "--log-level=error", "--workers", "7"});
  CHECK(s.server.port == 3333);
  CHECK(s.log.level == "error");
  CHECK(s.transcoder.workers == 7);
  s = load_yaml(yaml, env, {"--set", "server.port=4444"});
  CHECK(s.server.port == 4444);
  // Among flags the last one wins.
  s = load_yaml(yaml, env, {"--port=1", "--set=server.port=2"});
  CHECK(s.server.port == 2);
}

TEST_CASE("every key has its APP_ variable", "[unit][config]") {
  temp_dir dir;
  cwd_guard cwd{dir.path};
  fake_env env;
  env.vars = {
    {"APP_SERVER_HOST", "127.0.0.1"},
    {"APP_SERVER_PORT", "0"},
    {"APP_SERVER_THREADS", "3"},
    {"APP_SERVER_MAX_UPLOAD_SIZE", "1MiB"},
    {"APP_SERVER_REQUEST_TIMEOUT", "12"},
    {"APP_SERVER_MAX_HEADER_SIZE", "8192"},
    {"APP_DATABASE_DRIVER", "mysql"},
    {"APP_DATABASE_SQLITE_PATH", "/tmp/x.db"},
    {"APP_DATABASE_MYSQL_HOST", "db"},
    {"APP_DATABASE_MYSQL_PORT", "3307"},
    {"APP_DATABASE_MYSQL_DATABASE", "voices"},
    {"APP_DATABASE_MYSQL_USERNAME", "me"},
    {"APP_DATABASE_MYSQL_PASSWORD", "pw"},
    {"APP_DATABASE_MYSQL_POOL_SIZE", "8"},
    {"APP_STORAGE_TYPE", "local"},
    {"APP_STORAGE_LOCAL_BASE_PATH", "/srv/audio"},
    {"APP_STORAGE_CACHE_MAX_BYTES", "0"},
    {"APP_TRANSCODER_WORKERS", "0"},
    {"APP_TRANSCODER_QUEUE_LIMIT", "9"},
    {"APP_TRANSCODER_MAX_ATTEMPTS", "4"},
    {"APP_TRANSCODER_ISOLATE", "yes"},
    {"APP_CLUSTER_PORT", "4242"},
    {"APP_CLUSTER_JOIN", "serve:4242"},
    {"APP_AUTH_MODE", "token"},
    {"APP_AUTH_SECRET", "s3cret-s3cret-s3cret-s3cret-s3cret"},
    {"APP_AUTH_LINK_SECRET", "l1nk-l1nk-l1nk-l1nk-l1nk-l1nk-l1nk"},
    {"APP_LOG_LEVEL", "trace"},
    {"APP_LOG_FORMAT", "json"},
    {"APP_METRICS_HOST", "0.0.0.0"},
    {"APP_METRICS_PORT", "9464"},
  };
  auto s = load({}, env);
  CHECK(s.server.host == "127.0.0.1");
  CHECK(s.server.port == 0);
  CHECK(s.server.threads == 3);
  CHECK(s.server.max_upload_size == 1024u * 1024);
  CHECK(s.server.request_timeout == 12);
  CHECK(s.server.max_header_size == 8192u);
  CHECK(s.database.driver == "mysql");
  CHECK(s.database.sqlite_path == "/tmp/x.db");
  CHECK(s.database.mysql.host == "db");
  CHECK(s.database.mysql.port == 3307);
  CHECK(s.database.mysql.database == "voices");
  CHECK(s.database.mysql.username == "me");
  CHECK(s.database.mysql.password == "pw");
  CHECK(s.database.mysql.pool_size == 8);
  CHECK(s.storage.type == "local");
  CHECK(s.storage.local_base_path == "/srv/audio");
  CHECK(s.storage.cache_max_bytes == 0u);
  CHECK(s.transcoder.workers == 0);
  CHECK(s.transcoder.queue_limit == 9);
  CHECK(s.transcoder.max_attempts == 4);
  CHECK(s.transcoder.isolate);
  CHECK(s.cluster.port == 4242);
  CHECK(s.cluster.join == "serve:4242");
  CHECK(s.auth.mode == "token");
  CHECK(s.auth.secret == "s3cret-s3cret-s3cret-s3cret-s3cret");
  CHECK(s.auth.link_secret == "l1nk-l1nk-l1nk-l1nk-l1nk-l1nk-l1nk");
  CHECK(s.log.level == "trace");
  CHECK(s.log.format == "json");
  CHECK(s.metrics.host == "0.0.0.0");
  CHECK(s.metrics.port == 9464);
}

TEST_CASE("a worker's metrics listener: off by default, on loopback",
          "[unit][config]") {
  temp_dir dir;
  cwd_guard cwd{dir.path};
  auto s = load({});
  CHECK(s.metrics.port == 0);
  CHECK(s.metrics.host == "127.0.0.1");
  CHECK(load({"--set", "metrics.port=9464"}).metrics.port == 9464);
  CHECK_THROWS_WITH(load({"--set", "metrics.port=70000"}),
                    Contains("metrics.port"));
  CHECK_THROWS_WITH(load({"--set", "metrics.host="}),
                    Contains("metrics.host"));
}

TEST_CASE("a full YAML file sets every key", "[unit][config]") {
  auto s = load_yaml(R"(
server:
  host: "::1"
  port: 9000
  threads: 4
  max_upload_size: 512KiB
  request_timeout: 5
  max_header_size: 32KiB
database:
  driver: sqlite
  sqlite: {path: /var/lib/phonon/db.sqlite}
  mysql:
    host: mysql
    port: 3310
    database: d
    username: u
    password:
    pool_size: 2
storage:
  type: local
  local:
    base_path: /var/lib/phonon/audio
  cache_max_bytes: 1GiB
transcoder: {workers: 1, queue_limit: 2, max_attempts: 1, isolate: "true"}
cluster: {port: 5000, join: ""}
auth: {mode: none, secret: ""}
log: {level: warn, format: json}
)");
  CHECK(s.server.host == "::1");
  CHECK(s.server.port == 9000);
  CHECK(s.server.threads == 4);
  CHECK(s.server.max_upload_size == 512u * 1024);
  CHECK(s.server.request_timeout == 5);
  CHECK(s.server.max_header_size == 32u * 1024);
  CHECK(s.database.sqlite_path == "/var/lib/phonon/db.sqlite");
  CHECK(s.database.mysql.host == "mysql");
  CHECK(s.database.mysql.port == 3310);
  CHECK(s.database.mysql.password.empty());
  CHECK(s.database.mysql.pool_size == 2);
  CHECK(s.storage.local_base_path == "/var/lib/phonon/audio");
  CHECK(s.storage.cache_max_bytes == 1024ull * 1024 * 1024);
  CHECK(s.transcoder.workers == 1);
  CHECK(s.transcoder.queue_limit == 2);
  CHECK(s.transcoder.max_attempts == 1);
  CHECK(s.transcoder.isolate);
  CHECK(s.cluster.port == 5000);
  CHECK(s.auth.secret.empty());
  CHECK(s.log.level == "warn");
  CHECK(s.log.format == "json");
}

TEST_CASE("sizes take units", "[unit][config]") {
  temp_dir dir;
  cwd_guard cwd{dir.path};
  auto size = [](const std::string& text) {
    return load({"--set", "server.max_upload_size=" + text})
      .server.max_upload_size;
  };
  CHECK(size("1") == 1u);
  CHECK(size("1048576") == 1048576u);
  CHECK(size("10MiB") == 10u * 1024 * 1024);
  CHECK(size("512KiB") == 512u * 1024);
  CHECK(size("1GiB") == 1024u * 1024 * 1024);
  CHECK(size("2TiB") == 2ull << 40);
  CHECK(size("10MB") == 10u * 1000 * 1000);
  CHECK(size("3kb") == 3000u);
  CHECK(size("7 mib") == 7u * 1024 * 1024);
  CHECK(size("100B") == 100u);
  CHECK(load({"--set", "storage.min_free_bytes=8MiB"})
          .storage.min_free_bytes
        == 8ull * 1024 * 1024);
  CHECK(load({"--set", "storage.cache_max_bytes=2GiB"})
          .storage.cache_max_bytes == 2ull << 30);
  for (auto bad : {"-1", "-1MiB", "", "MiB", "10XB", "1.5MiB", "0x10",
                   "99999999999999999999", "20000000TiB"}) {
    INFO("size: '" << bad << "'");
    CHECK_THROWS_WITH(size(bad), Contains("server.max_upload_size"));
  }
  CHECK_THROWS_WITH(size("0"), Contains("server.max_upload_size"));
  CHECK_THROWS_WITH(load({"--set", "server.max_header_size=8GiB"}),
                    Contains("server.max_header_size"));
}

TEST_CASE("booleans", "[unit][config]") {
  temp_dir dir;
  cwd_guard cwd{dir.path};
  auto isolate = [](const std::string& text) {
    return load({"--set", "transcoder.isolate=" + text}).transcoder.isolate;
  };
  for (auto yes : {"true", "1", "yes", "TRUE", "Yes"})
    CHECK(isolate(yes));
  for (auto no : {"false", "0", "no", "False", "NO"})
    CHECK_FALSE(isolate(no));
  CHECK_THROWS_WITH(isolate("maybe"), Contains("transcoder.isolate"));
  CHECK_THROWS_WITH(isolate(""), Contains("transcoder.isolate"));
}

TEST_CASE("--data-dir sets both data paths", "[unit][config]") {
  temp_dir dir;
  cwd_guard cwd{dir.path};
  auto s = load({"--data-dir", "/var/phonon"});
  CHECK(s.database.sqlite_path == "/var/phonon/phonon.db");
  CHECK(s.storage.local_base_path == "/var/phonon/audio");
  s = load({"--data-dir=/tmp/x/"});
  CHECK(s.database.sqlite_path == "/tmp/x/phonon.db");
  CHECK(s.storage.local_base_path == "/tmp/x/audio");
  CHECK_THROWS_AS(load({"--data-dir"}), config_error);
}

TEST_CASE("host and join flags", "[unit][config]") {
  temp_dir dir;
  cwd_guard cwd{dir.path};
  auto s = load({"--host", "127.0.0.1", "--join=10.0.0.1:4242"});
  CHECK(s.server.host == "127.0.0.1");
  CHECK(s.cluster.join == "10.0.0.1:4242");
  CHECK_THROWS_WITH(load({"--join", "nohost"}), Contains("cluster.join"));
  CHECK_THROWS_WITH(load({"--join", "h:99999"}), Contains("cluster.join"));
}

TEST_CASE("unknown flags go to rest or are an error", "[unit][config]") {
  temp_dir dir;
  cwd_guard cwd{dir.path};
  std::vector<std::string> rest;
  auto s = load_settings({"--port", "81", "--verbose", "extra", "--x=1"},
                         fake_env{}.lookup(), &rest);
  CHECK(s.server.port == 81);
  CHECK(rest == std::vector<std::string>{"--verbose", "extra", "--x=1"});
  CHECK_THROWS_WITH(load({"--verbose"}), Contains("--verbose"));
  CHECK_THROWS_WITH(load({"--port"}), Contains("--port"));
  CHECK_THROWS_WITH(load({"--set", "novalue"}), Contains("--set"));
  CHECK_THROWS_WITH(load({"--set", "server.prot=1"}), Contains("server.prot"));
}

TEST_CASE("bad values name their key", "[unit][config]") {
  temp_dir dir;
  cwd_guard cwd{dir.path};
  struct bad_case {
    std::vector<std::string> args;
    const char* key;
  };
  const bad_case cases[] = {
    {{"--port", "abc"}, "server.port"},
    {{"--port", "65536"}, "server.port"},
    {{"--port", "-1"}, "server.port"},
    {{"--port", ""}, "server.port"},
    {{"--set", "server.threads=0"}, "server.threads"},
    {{"--set", "server.threads=257"}, "server.threads"},
    {{"--set", "server.threads=two"}, "server.threads"},
    {{"--set", "server.request_timeout=0"}, "server.request_timeout"},
    {{"--set", "server.max_duration=0"}, "server.max_duration"},
    {{"--set", "server.max_header_size=1MiB"}, "server.max_header_size"},
    {{"--set", "server.max_duration=86401"}, "server.max_duration"},
    {{"--set", "transcoder.queue_limit_bytes=0"},
     "transcoder.queue_limit_bytes"},
    {{"--set", "server.header_timeout=0"}, "server.header_timeout"},
    {{"--set", "server.header_timeout=ten"}, "server.header_timeout"},
    {{"--set", "server.idle_timeout=0"}, "server.idle_timeout"},
    {{"--set", "server.idle_timeout=86401"}, "server.idle_timeout"},
    {{"--set", "server.max_connections=0"}, "server.max_connections"},
    {{"--set", "server.max_connections=-1"}, "server.max_connections"},
    {{"--set", "database.driver=postgres"}, "database.driver"},
    {{"--set", "database.mysql.port=0"}, "database.mysql.port"},
    {{"--set", "database.mysql.pool_size=0"}, "database.mysql.pool_size"},
    {{"--set", "database.sqlite.path="}, "database.sqlite.path"},
    {{"--set", "storage.type=gcs"}, "storage.type"},
    {{"--set", "storage.type=s3"}, "storage.s3.endpoint"},
    {{"--set", "storage.cache_max_bytes=-5"}, "storage.cache_max_bytes"},
    {{"--workers", "-1"}, "transcoder.workers"},
    {{"--workers", "257"}, "transcoder.workers"},
    {{"--set", "transcoder.queue_limit=0"}, "transcoder.queue_limit"},
    {{"--set", "transcoder.max_attempts=0"}, "transcoder.max_attempts"},
    {{"--set", "cluster.port=70000"}, "cluster.port"},
    {{"--set", "auth.mode=basic"}, "auth.mode"},
    {{"--set", "auth.mode=token"}, "auth.secret"},
    {{"--log-level", "verbose"}, "log.level"},
    {{"--set", "log.format=xml"}, "log.format"},
  };
  for (auto& c : cases) {
    INFO(c.args[0] << " " << c.args[1]);
    CHECK_THROWS_WITH(load(c.args), Contains(c.key));
  }
  CHECK_THROWS_WITH(load({"--port", "abc"}),
                    Contains("server.port: expected an integer 0..65535, "
                             "got 'abc'"));
  // Secrets are never taken from the command line (`ps` shows it).
  CHECK_THROWS_WITH(load({"--set", "auth.secret=k"}),
                    Contains("APP_AUTH_SECRET") && !Contains("=k"));
}

TEST_CASE("bad environment values name their key", "[unit][config]") {
  temp_dir dir;
  cwd_guard cwd{dir.path};
  fake_env env;
  env.vars["APP_SERVER_PORT"] = "http";
  CHECK_THROWS_WITH(load({}, env), Contains("server.port")
                                     && Contains("APP_SERVER_PORT"));
  env.vars = {{"APP_DATABASE_MYSQL_POOL_SIZE", "many"}};
  CHECK_THROWS_WITH(load({}, env), Contains("database.mysql.pool_size"));
  env.vars = {{"APP_CONFIG", (dir.path / "missing.yaml").string()}};
  CHECK_THROWS_WITH(load({}, env), Contains("missing.yaml"));
}

TEST_CASE("a key with control bytes is shown escaped, never empty",
          "[unit][config]") {
  // Found by the config fuzzer: a NUL-led key gave an empty message.
  CHECK_THROWS_WITH(load_yaml(std::string{"\"\\0ab\": 1\n"}),
                    Contains("\\x00ab") && Contains("unknown key"));
  CHECK_THROWS_WITH(load_yaml(std::string{"\"a\\tb\": 1\n"}),
                    Contains("a\\x09b"));
}

TEST_CASE("YAML errors name the key", "[unit][config]") {
  CHECK_THROWS_WITH(load_yaml("server:\n  prot: 1\n"),
                    Contains("server.prot") && Contains("unknown"));
  CHECK_THROWS_WITH(load_yaml("srever:\n  port: 1\n"), Contains("srever"));
  CHECK_THROWS_WITH(load_yaml("database:\n  sqlite:\n    pth: x\n"),
                    Contains("database.sqlite.pth"));
  CHECK_THROWS_WITH(load_yaml("server: 5\n"), Contains("server"));
  CHECK_THROWS_WITH(load_yaml("server:\n  port: [1, 2]\n"),
                    Contains("server.port"));
  CHECK_THROWS_WITH(load_yaml("server:\n  port: {a: 1}\n"),
                    Contains("server.port"));
  CHECK_THROWS_WITH(load_yaml("server:\n  port:\n"), Contains("server.port"));
  CHECK_THROWS_WITH(load_yaml("server:\n  port: 80.5\n"),
                    Contains("server.port"));
  CHECK_THROWS_WITH(load_yaml("transcoder:\n  isolate: sometimes\n"),
                    Contains("transcoder.isolate"));
  CHECK_THROWS_WITH(load_yaml("log:\n  level: loud\n"), Contains("log.level"));
  CHECK_THROWS_AS(load_yaml("server: [\n"), config_error);
  CHECK_THROWS_AS(load_yaml("- 1\n- 2\n"), config_error);
  CHECK_THROWS_WITH(load({"--config", "/nonexistent/phonon.yaml"}),
                    Contains("/nonexistent/phonon.yaml"));
  // An empty file or section leaves the defaults.
  check_equal(load_yaml(""), settings{});
  check_equal(load_yaml("auth:\n"), settings{});
}

TEST_CASE("validate checks ranges directly", "[unit][config]") {
  settings s;
  CHECK_NOTHROW(validate(s));
  s.server.port = 0;
  CHECK_NOTHROW(validate(s));
  s.transcoder.workers = 0;
  CHECK_NOTHROW(validate(s));
  s.storage.cache_max_bytes = 0;
  CHECK_NOTHROW(validate(s));
  s.server.threads = 0;
  CHECK_THROWS_WITH(validate(s), Contains("server.threads"));
  s = settings{};
  s.server.max_upload_size = 0;
  CHECK_THROWS_WITH(validate(s), Contains("server.max_upload_size"));
  s = settings{};
  s.auth.mode = "token";
  CHECK_THROWS_WITH(validate(s), Contains("auth.secret"));
  s.auth.secret = std::string(32, 'k');
  CHECK_THROWS_WITH(validate(s), Contains("auth.link_secret"));
  s.auth.link_secret = std::string(32, 'l');
  CHECK_NOTHROW(validate(s));
}

TEST_CASE("auth: secrets come from the environment or files only, are at "
          "least 32 bytes and never shown", "[unit][config][auth]") {
  temp_dir dir;
  cwd_guard cwd{dir.path};
  // In the config file: refused, naming the variable to use instead.
  std::ofstream{"inline.yaml"} << "auth:\n  secret: hunter2-hunter2\n";
  CHECK_THROWS_WITH(load({"--config", "inline.yaml"}),
                    Contains("auth.secret") && Contains("APP_AUTH_SECRET")
                      && !Contains("hunter2"));
  std::ofstream{"metrics.yaml"} << "metrics: {token: abc}\n";
  CHECK_THROWS_WITH(load({"--config", "metrics.yaml"}),
                    Contains("APP_METRICS_TOKEN"));
  // Too short: the message gives the length, never the secret.
  fake_env env;
  env.vars = {{"APP_AUTH_MODE", "token"}, {"APP_AUTH_SECRET", "shortsecret"}};
  CHECK_THROWS_WITH(load({}, env), Contains("auth.secret")
                                     && Contains("32") && !Contains("short"));
  // From files, one trailing newline dropped.
  std::ofstream{"secret"} << std::string(40, 's') << "\n";
  std::ofstream{"link"} << std::string(33, 'l');
  std::ofstream{"scrape"} << "scrape-token-0123456789-0123456789\n";
  auto s = load({"--set", "auth.mode=token", "--set",
                 "auth.secret_file=secret", "--set",
                 "auth.link_secret_file=link", "--set",
                 "metrics.token_file=scrape"});
  CHECK(s.auth.secret == std::string(40, 's'));
  CHECK(s.auth.link_secret == std::string(33, 'l'));
  CHECK(s.metrics.token == "scrape-token-0123456789-0123456789");
  CHECK_THROWS_WITH(load({"--set", "auth.secret_file=missing"}),
                    Contains("auth.secret_file"));
  // Both a variable and a file: ambiguous.
  env.vars = {{"APP_AUTH_SECRET", std::string(40, 'x')}};
  CHECK_THROWS_WITH(load({"--set", "auth.secret_file=secret"}, env),
                    Contains("not both"));
  // Asymmetric algorithms need a readable public key file.
  env.vars = {{"APP_AUTH_LINK_SECRET", std::string(40, 'x')}};
  CHECK_THROWS_WITH(load({"--set", "auth.mode=token", "--set",
                          "auth.algorithm=ES256"}, env),
                    Contains("auth.public_key_file"));
  // The scraper's token: as long as the other secrets, token68 characters.
  env.vars = {{"APP_AUTH_SECRET", std::string(40, 'x')},
              {"APP_AUTH_LINK_SECRET", std::string(40, 'y')},
              {"APP_METRICS_TOKEN", "a"}};
  CHECK_THROWS_WITH(load({"--set", "auth.mode=token"}, env),
                    Contains("metrics.token"));
  env.vars["APP_METRICS_TOKEN"] = std::string(20, 'm') + " " + std::string(20, 'm');
  CHECK_THROWS_WITH(load({"--set", "auth.mode=token"}, env),
                    Contains("metrics.token"));
  env.vars["APP_METRICS_TOKEN"] = std::string(40, 'm');
  CHECK_NOTHROW(load({"--set", "auth.mode=token"}, env));
  CHECK_THROWS_WITH(load({"--set", "auth.algorithm=none"}),
                    Contains("auth.algorithm"));
  CHECK_THROWS_WITH(load({"--set", "auth.algorithm=HS512"}),
                    Contains("auth.algorithm"));
}

TEST_CASE("S3 storage: every key from APP_STORAGE_S3_*, the secret only "
          "from the environment or a file, checked and never shown",
          "[unit][config][s3]") {
  temp_dir dir;
  cwd_guard cwd{dir.path};
  fake_env env;
  env.vars = {
    {"APP_STORAGE_TYPE", "s3"},
    {"APP_STORAGE_S3_ENDPOINT", "http://minio:9000"},
    {"APP_STORAGE_S3_REGION", "eu-west-3"},
    {"APP_STORAGE_S3_BUCKET", "voices"},
    {"APP_STORAGE_S3_PREFIX", "phonon"},
    {"APP_STORAGE_S3_ACCESS_KEY", "AKIDEXAMPLE"},
    {"APP_STORAGE_S3_SECRET_KEY", "wJalrXUtnFEMI-s3-secret"},
    {"APP_STORAGE_S3_PATH_STYLE", "false"},
    {"APP_STORAGE_S3_PART_SIZE", "8MiB"},
  };
  auto s = load({}, env);
  CHECK(s.storage.type == "s3");
  CHECK(s.storage.s3.endpoint == "http://minio:9000");
  CHECK(s.storage.s3.region == "eu-west-3");
  CHECK(s.storage.s3.bucket == "voices");
  CHECK(s.storage.s3.prefix == "phonon");
  CHECK(s.storage.s3.access_key == "AKIDEXAMPLE");
  CHECK(s.storage.s3.secret_key == "wJalrXUtnFEMI-s3-secret");
  CHECK_FALSE(s.storage.s3.path_style);
  CHECK(s.storage.s3.part_size == 8u * 1024 * 1024);
  // The secret in the config file or on the command line: refused, naming
  // the variable, never echoing the value.
  std::ofstream{"inline.yaml"} << "storage:\n  s3:\n    secret_key: hunter2\n";
  CHECK_THROWS_WITH(load({"--config", "inline.yaml"}),
                    Contains("storage.s3.secret_key")
                      && Contains("APP_STORAGE_S3_SECRET_KEY")
                      && !Contains("hunter2"));
  CHECK_THROWS_WITH(load({"--set", "storage.s3.secret_key=hunter2"}),
                    Contains("storage.s3.secret_key") && !Contains("hunter2"));
  // From a file.
  std::ofstream{"s3secret"} << "file-secret\n";
  auto without = env;
  without.vars.erase("APP_STORAGE_S3_SECRET_KEY");
  auto f = load({"--set", "storage.s3.secret_key_file=s3secret"}, without);
  CHECK(f.storage.s3.secret_key == "file-secret");
  // Missing pieces are named.
  CHECK_THROWS_WITH(load({}, without), Contains("storage.s3.secret_key"));
  auto no_bucket = env;
  no_bucket.vars.erase("APP_STORAGE_S3_BUCKET");
  CHECK_THROWS_WITH(load({}, no_bucket), Contains("storage.s3.bucket"));
  CHECK_THROWS_WITH(load({"--set", "storage.s3.part_size=1MiB"}, env),
                    Contains("storage.s3.part_size"));
  CHECK_THROWS_WITH(load({"--set", "storage.s3.endpoint=minio:9000"}, env),
                    Contains("storage.s3.endpoint"));
  for (const char* bad : {"http://user:pw@minio:9000", "http://minio/bucket",
                          "https://", "http://minio?x=1"})
    CHECK_THROWS_WITH(load({"--set", std::string{"storage.s3.endpoint="} + bad},
                           env),
                      Contains("storage.s3.endpoint"));
  CHECK(load({"--set", "storage.s3.endpoint=http://minio:9000/"}, env)
          .storage.s3.endpoint
        == "http://minio:9000/");
}

TEST_CASE("S3 redirects: storage.s3.redirect*, public_endpoint from "
          "APP_STORAGE_S3_*, checked; redirect with local storage refused",
          "[unit][config][s3][redirect]") {
  temp_dir dir;
  cwd_guard cwd{dir.path};
  auto d = load({});
  CHECK_FALSE(d.storage.s3.redirect);
  CHECK(d.storage.s3.redirect_min_bytes == 1024u * 1024);
  CHECK(d.storage.s3.redirect_ttl == 300);
  CHECK(d.storage.s3.public_endpoint.empty());
  fake_env env;
  env.vars = {
    {"APP_STORAGE_TYPE", "s3"},
    {"APP_STORAGE_S3_ENDPOINT", "http://minio:9000"},
    {"APP_STORAGE_S3_BUCKET", "voices"},
    {"APP_STORAGE_S3_ACCESS_KEY", "AKIDEXAMPLE"},
    {"APP_STORAGE_S3_SECRET_KEY", "wJalrXUtnFEMI-s3-secret"},
    {"APP_STORAGE_S3_REDIRECT", "true"},
    {"APP_STORAGE_S3_REDIRECT_MIN_BYTES", "64KiB"},
    {"APP_STORAGE_S3_REDIRECT_TTL", "60"},
    {"APP_STORAGE_S3_PUBLIC_ENDPOINT", "https://media.example.com"},
  };
  auto s = load({}, env);
  CHECK(s.storage.s3.redirect);
  CHECK(s.storage.s3.redirect_min_bytes == 64u * 1024);
  CHECK(s.storage.s3.redirect_ttl == 60);
  CHECK(s.storage.s3.public_endpoint == "https://media.example.com");
  for (const char* ttl : {"0", "604801", "-5"})
    CHECK_THROWS_WITH(
      load({"--set", std::string{"storage.s3.redirect_ttl="} + ttl}, env),
      Contains("storage.s3.redirect_ttl"));
  CHECK(load({"--set", "storage.s3.redirect_ttl=604800"}, env)
          .storage.s3.redirect_ttl
        == 604800);
  CHECK_THROWS_WITH(load({"--set", "storage.s3.redirect_min_bytes=0"}, env),
                    Contains("storage.s3.redirect_min_bytes"));
  for (const char* bad : {"media.example.com", "http://u:p@h", "http://h/x"})
    CHECK_THROWS_WITH(
      load({"--set", std::string{"storage.s3.public_endpoint="} + bad}, env),
      Contains("storage.s3.public_endpoint"));
  // With local storage there is no bucket to redirect to: a clear error.
  CHECK_THROWS_WITH(load({"--set", "storage.s3.redirect=true"}),
                    Contains("storage.s3.redirect")
                      && Contains("storage.type s3"));
}

TEST_CASE("CORS origins and cluster TLS settings", "[unit][config]") {
  temp_dir dir;
  cwd_guard cwd{dir.path};
  CHECK(load({}).server.cors_origins.empty());
  CHECK(load({}).cluster.host == "127.0.0.1");
  std::ofstream{"cors.yaml"}
    << "server:\n  cors_origins: [\"http://a.example\", "
       "\"https://b.example:8443\"]\n";
  auto s = load({"--config", "cors.yaml"});
  REQUIRE(s.server.cors_origins.size() == 2);
  CHECK(s.server.cors_origins[1] == "https://b.example:8443");
  fake_env env;
  env.vars = {{"APP_SERVER_CORS_ORIGINS", "http://127.0.0.1:9, http://x"}};
  CHECK(load({}, env).server.cors_origins.size() == 2);
  CHECK_THROWS_WITH(load({"--set", "server.cors_origins=a.example"}),
                    Contains("server.cors_origins"));
  CHECK_THROWS_WITH(load({"--set", "server.cors_origins=*,http://a"}),
                    Contains("server.cors_origins"));
  CHECK_NOTHROW(load({"--set", "server.cors_origins=*"}));
  env.vars = {{"APP_AUTH_SECRET", std::string(40, 'x')},
              {"APP_AUTH_LINK_SECRET", std::string(40, 'y')}};
  CHECK_THROWS_WITH(load({"--set", "server.cors_origins=*", "--set",
                          "auth.mode=token"}, env),
                    Contains("server.cors_origins"));
  CHECK_THROWS_WITH(load({"--set", "cluster.tls.certificate=a.pem"}),
                    Contains("cluster.tls"));
  auto t = load({"--set", "cluster.tls.certificate=a.pem", "--set",
                 "cluster.tls.key=a.key", "--set", "cluster.tls.ca=ca.pem",
                 "--set", "cluster.host=0.0.0.0"});
  CHECK(t.cluster.tls.enabled());
  CHECK(t.cluster.host == "0.0.0.0");
}

TEST_CASE("the HTTP edge's time and connection limits: defaults and --set",
          "[unit][config]") {
  temp_dir dir;
  cwd_guard cwd{dir.path};
  auto d = load({});
  CHECK(d.server.header_timeout == 10);
  CHECK(d.server.idle_timeout == 30);
  CHECK(d.server.max_connections == 10000);
  auto s = load({"--set", "server.header_timeout=2", "--set",
                 "server.idle_timeout=3", "--set",
                 "server.max_connections=50"});
  CHECK(s.server.header_timeout == 2);
  CHECK(s.server.idle_timeout == 3);
  CHECK(s.server.max_connections == 50);
}

TEST_CASE("upload duration and queue bytes: defaults and --set",
          "[unit][config]") {
  temp_dir dir;
  cwd_guard cwd{dir.path};
  auto d = load({});
  CHECK(d.server.max_duration == 600);
  CHECK(d.transcoder.queue_limit_bytes == 256ull << 20);
  auto s = load({"--set", "server.max_duration=90", "--set",
                 "transcoder.queue_limit_bytes=1GiB"});
  CHECK(s.server.max_duration == 90);
  CHECK(s.transcoder.queue_limit_bytes == 1ull << 30);
}

TEST_CASE("the memory cache's bounds: defaults, --set, environment and "
          "validation",
          "[unit][config]") {
  temp_dir dir;
  cwd_guard cwd{dir.path};
  auto d = load({});
  CHECK(d.storage.memory_cache_bytes == 64ull << 20);
  CHECK(d.storage.memory_cache_item_max == 1ull << 20);
  CHECK(d.storage.read_model_entries == -1);
  CHECK(load({"--set", "storage.read_model_entries=0"})
          .storage.read_model_entries
        == 0);
  CHECK_THROWS(load({"--set", "storage.read_model_entries=-2"}));
  auto s = load({"--set", "storage.memory_cache_bytes=300KiB", "--set",
                 "storage.memory_cache_item_max=64KiB"});
  CHECK(s.storage.memory_cache_bytes == 300u * 1024);
  CHECK(s.storage.memory_cache_item_max == 64u * 1024);
  CHECK(load({"--set", "storage.memory_cache_bytes=0"})
          .storage.memory_cache_bytes == 0u);
  fake_env env;
  env.vars = {{"APP_STORAGE_MEMORY_CACHE_BYTES", "1MiB"},
              {"APP_STORAGE_MEMORY_CACHE_ITEM_MAX", "2048"}};
  auto e = load({}, env);
  CHECK(e.storage.memory_cache_bytes == 1u << 20);
  CHECK(e.storage.memory_cache_item_max == 2048u);
  auto y = load_yaml("storage:\n  memory_cache_bytes: 8MiB\n"
                     "  memory_cache_item_max: 512KiB\n");
  CHECK(y.storage.memory_cache_bytes == 8u << 20);
  CHECK(y.storage.memory_cache_item_max == 512u * 1024);
  for (auto bad : {"storage.memory_cache_item_max=0",
                   "storage.memory_cache_item_max=65MiB",
                   "storage.memory_cache_bytes=-1",
                   "storage.memory_cache_bytes=lots"}) {
    INFO(bad);
    std::string key{bad};
    key = key.substr(0, key.find('='));
    CHECK_THROWS_WITH(load({"--set", bad}), Contains(key));
  }
}
