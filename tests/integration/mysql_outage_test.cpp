// A database outage is survivable: while MariaDB is down, /readyz and the
// requests that need the database answer 503 (never 500, never a crash);
// when it is back, Phonon recovers by itself and everything accepted ends
// ready. The test runs its own MariaDB through scripts/mysql-test-server.sh
// so that it can stop and start it.

#include <catch2/catch.hpp>

#include <cstdlib>
#include <string>
#include <thread>

#include "tests/integration/support.hpp"

using namespace phonon::integration;
using namespace std::chrono_literals;

namespace {

std::string source_dir() {
  const char* dir = std::getenv("PHONON_SOURCE_DIR");
  return dir != nullptr ? dir : ".";
}

/// A private MariaDB in a temp dir; stopped (and removed) by the destructor.
struct mariadb {
  temp_dir dir{"phonon-outage-db"};
  std::string script = source_dir() + "/scripts/mysql-test-server.sh";
  uint16_t port = 0;

  bool start() {
    auto res = run(shell_quote(script) + " start "
                   + shell_quote(dir.path().string()) + " "
                   + std::to_string(port));
    if (!res.ok())
      UNSCOPED_INFO("mariadb start failed: " << res.output);
    return res.ok();
  }

  bool stop() {
    return run(shell_quote(script) + " stop "
               + shell_quote(dir.path().string()))
      .ok();
  }

  ~mariadb() {
    stop();
  }
};

/// A loopback port nobody listens on right now.
uint16_t pick_port() {
  auto res = run("python3 -c 'import socket; s=socket.socket(); "
                 "s.bind((\"127.0.0.1\",0)); print(s.getsockname()[1])'");
  return static_cast<uint16_t>(std::stoi(res.output));
}

/// Scoped environment variable (the server child inherits it).
struct env_var {
  std::string name;
  env_var(std::string n, const std::string& value) : name(std::move(n)) {
    ::setenv(name.c_str(), value.c_str(), 1);
  }
  ~env_var() {
    ::unsetenv(name.c_str());
  }
};

bool wait_status(uint16_t port, const std::string& target, unsigned status,
                 std::chrono::seconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (http_get(port, target).status == status)
      return true;
    std::this_thread::sleep_for(100ms);
  }
  return false;
}

} // namespace

TEST_CASE("a MySQL outage answers 503 and heals by itself",
          "[integration][.mysql_outage]") {
  mariadb db;
  db.port = pick_port();
  REQUIRE(db.start());
  env_var driver{"APP_DATABASE_DRIVER", "mysql"};
  env_var host{"APP_DATABASE_MYSQL_HOST", "127.0.0.1"};
  env_var port{"APP_DATABASE_MYSQL_PORT", std::to_string(db.port)};
  env_var name{"APP_DATABASE_MYSQL_DATABASE", "phonon_test"};
  env_var user{"APP_DATABASE_MYSQL_USERNAME", "phonon"};
  env_var pass{"APP_DATABASE_MYSQL_PASSWORD", "phonon"};

  server_process server;
  server.start({"--workers", "1"});
  auto audio = read_file(audio_fixtures().m4a);

  // Accepted before the outage.
  for (int p = 1; p <= 3; ++p)
    REQUIRE(upload_file(server.port(), "/audio/user/1/phrase/"
                                         + std::to_string(p),
                        audio)
              .status
            == 201);
  // Accepted right before the database goes away: their completions may
  // have to wait for it.
  for (int p = 4; p <= 5; ++p)
    REQUIRE(upload_file(server.port(), "/audio/user/1/phrase/"
                                         + std::to_string(p),
                        audio)
              .status
            == 201);
  REQUIRE(db.stop());

  // During the outage.
  auto ready = http_get(server.port(), "/readyz");
  CHECK(ready.status == 503);
  CHECK(ready.json()["database"] == "unavailable");
  auto up = upload_file(server.port(), "/audio/user/1/phrase/6", audio);
  CHECK(up.status == 503);
  CHECK(up.json()["message"].is_string());
  CHECK(up.has("Retry-After"));
  auto meta = http_get(server.port(), "/audio/user/1/phrase/1",
                       {{"X-Request-Id", "outage-meta-1"}});
  CHECK(meta.status == 503);
  auto list = http_get(server.port(), "/audio/user/1",
                       {{"X-Request-Id", "outage-list-2"}});
  CHECK(list.status == 503);
  {
    // The repository's failure lines name the request that hit them.
    INFO(server.log_tail(40));
    auto log = server.log();
    CHECK(log.find("database failure req_id=outage-meta-1 op=get")
          != std::string::npos);
    CHECK(log.find("database failure req_id=outage-list-2 op=list")
          != std::string::npos);
  }
  CHECK(http_get(server.port(), "/healthz").status == 200);
  // Nothing of the refused upload was kept.
  std::error_code ec;
  CHECK_FALSE(std::filesystem::exists(
    server.data_dir() / "audio" / "1" / "6", ec));

  // The database comes back; Phonon notices without a restart.
  REQUIRE(db.start());
  CHECK(wait_status(server.port(), "/readyz", 200, 30s));
  for (int p = 1; p <= 5; ++p) {
    auto target = "/audio/user/1/phrase/" + std::to_string(p);
    auto settled = wait_until_settled(server.port(), target, 20000ms);
    CHECK(settled["status"] == "ready");
  }
  // And it takes new uploads again.
  REQUIRE(upload_file(server.port(), "/audio/user/1/phrase/6", audio).status
          == 201);
  CHECK(wait_until_settled(server.port(), "/audio/user/1/phrase/6")["status"]
        == "ready");
  CHECK(server.running());
}
