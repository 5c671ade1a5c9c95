// The repository over real stores: the single writer, the readers beside it
// and the order between them.
//
// - "sqlite repository: ..." cases carry [unit][actors] and run with the
//   unit tests (SQLite allows no concurrent readers: the writer answers
//   the reads itself).
// - "mysql repository: ..." cases carry [.mysql][actors]: hidden from a run
//   without filter, selected by "[mysql]" (ctest's unit_mysql runs them
//   against a MariaDB that scripts/with-mysql.sh starts). They need the
//   APP_DATABASE_MYSQL_* variables and FAIL without them (never skip).

#include <catch2/catch.hpp>

#include <cppconn/connection.h>
#include <cppconn/exception.h>
#include <cppconn/resultset.h>
#include <cppconn/statement.h>
#include <mysql_driver.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>

#include "actors/errors.hpp"
#include "actors/repository_actor.hpp"
#include "actors/system_config.hpp"
#include "persistence/recording_store.hpp"
#include "tests/unit/temp_dir.hpp"

using namespace phonon;
using namespace phonon::actors;
using namespace std::chrono_literals;
using persistence::recording;

namespace {

/// How long a request of these tests may take unless it is meant to wait.
constexpr auto reply_timeout = std::chrono::seconds{10};

struct fixture {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;

  fixture() {
    configure(cfg, config::settings{});
    sys = std::make_unique<caf::actor_system>(cfg);
  }
};

recording make_recording(int64_t user, int64_t phrase, int64_t revision) {
  recording r;
  r.user_id = user;
  r.phrase_id = phrase;
  r.revision = revision;
  r.status = persistence::recording_status::processing;
  r.original_format = "m4a";
  r.original_filename = "phrase.m4a";
  r.size_bytes = 1000 + revision;
  r.created_at = 1700000000000;
  r.updated_at = 1700000000000 + revision;
  return r;
}

/// What a get answered: the row, or the error.
struct get_reply {
  bool found = false;
  recording row;
  caf::error err;
};

/// Receives the answer of a get sent earlier.
template <class Handle>
get_reply receive_get(Handle&& h) {
  get_reply reply;
  h.receive(
    [&](recording& r) {
      reply.found = true;
      reply.row = std::move(r);
    },
    [&](caf::error& err) { reply.err = std::move(err); });
  return reply;
}

bool is_not_found(const caf::error& err) {
  return err.category() == caf::atom("phonon")
         && static_cast<errc>(err.code()) == errc::not_found;
}

/// One client's read-after-write round on (user, phrase 1..rounds): each
/// write is followed by a get, both sent before either is answered, so the
/// get only sees the write because the repository keeps their order; then
/// a get after the write was answered. Returns the number of rounds that
/// saw every write.
int read_after_write_rounds(caf::actor_system& sys,
                            const repository_actor& repo, int64_t user,
                            int rounds) {
  caf::scoped_actor self{sys};
  int good = 0;
  for (int64_t phrase = 1; phrase <= rounds; ++phrase) {
    bool ok = true;
    auto fail = [&](const char* what) {
      UNSCOPED_INFO("user " << user << " phrase " << phrase << ": " << what);
      ok = false;
    };
    // Upsert, then a get sent right behind it.
    auto first = make_recording(user, phrase, phrase * 10);
    auto up = self->request(repo, reply_timeout, upsert_atom_v, first,
                            std::string{"raw-up"});
    auto got = self->request(repo, reply_timeout, caf::get_atom_v, user,
                             phrase, std::string{"raw-get-1"});
    auto seen = receive_get(got);
    if (!seen.found || seen.row.revision != first.revision)
      fail("get right behind the upsert missed it");
    up.receive([](std::vector<recording>&) {},
               [&](caf::error&) { fail("upsert failed"); });
    // Ready, then a list sent right behind it.
    auto ready = self->request(repo, reply_timeout, ready_atom_v, first,
                               std::string{"raw-ready"});
    auto listed = self->request(repo, reply_timeout, list_atom_v, user,
                                phrase - 1, int32_t{1},
                                std::string{"raw-list"});
    listed.receive(
      [&](std::vector<recording>& xs) {
        if (xs.size() != 1
            || xs[0].status != persistence::recording_status::ready)
          fail("list right behind ready missed it");
      },
      [&](caf::error&) { fail("list failed"); });
    ready.receive([&](bool done) { if (!done) fail("ready was stale"); },
                  [&](caf::error&) { fail("ready failed"); });
    // A replacement, answered first, then read.
    auto second = make_recording(user, phrase, phrase * 10 + 1);
    self->request(repo, reply_timeout, upsert_atom_v, second,
                  std::string{"raw-up-2"})
      .receive([](std::vector<recording>&) {},
               [&](caf::error&) { fail("second upsert failed"); });
    seen = receive_get(self->request(repo, reply_timeout, caf::get_atom_v,
                                     user, phrase, std::string{"raw-get-2"}));
    if (!seen.found || seen.row.revision != second.revision
        || seen.row.status != persistence::recording_status::processing)
      fail("get after the answered upsert saw an older row");
    // A delete, then a get sent right behind it.
    auto removed = self->request(repo, reply_timeout, remove_atom_v, user,
                                 phrase, std::string{"raw-rm"});
    auto gone = self->request(repo, reply_timeout, caf::get_atom_v, user,
                              phrase, std::string{"raw-get-3"});
    seen = receive_get(gone);
    if (seen.found || !is_not_found(seen.err))
      fail("get right behind the delete still found the row");
    removed.receive([](std::vector<recording>&) {},
                    [&](caf::error&) { fail("remove failed"); });
    if (ok)
      ++good;
  }
  return good;
}

/// Runs read_after_write_rounds for `clients` users at once.
void check_read_after_write(caf::actor_system& sys,
                            const repository_actor& repo, int clients,
                            int rounds) {
  std::vector<int> good(static_cast<size_t>(clients), 0);
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c)
    threads.emplace_back([&, c] {
      good[static_cast<size_t>(c)]
        = read_after_write_rounds(sys, repo, 100 + c, rounds);
    });
  for (auto& t : threads)
    t.join();
  for (int c = 0; c < clients; ++c) {
    INFO("client " << c);
    CHECK(good[static_cast<size_t>(c)] == rounds);
  }
}

// -- MySQL --------------------------------------------------------------------

/// Reads the APP_DATABASE_MYSQL_* variables that scripts/with-mysql.sh
/// exports; fails the case when they are missing or name no test database.
persistence::mysql_options mysql_options_from_env() {
  auto env = [](const char* name) -> std::string {
    auto value = std::getenv(name);
    return value != nullptr ? value : "";
  };
  persistence::mysql_options opts;
  opts.host = env("APP_DATABASE_MYSQL_HOST");
  if (opts.host.empty())
    FAIL("APP_DATABASE_MYSQL_HOST is not set: the [mysql] cases need a "
         "server; run them as scripts/with-mysql.sh phonon_unit_tests "
         "\"[mysql]\"");
  auto port = env("APP_DATABASE_MYSQL_PORT");
  if (!port.empty())
    opts.port = static_cast<uint16_t>(std::stoi(port));
  opts.database = env("APP_DATABASE_MYSQL_DATABASE");
  opts.username = env("APP_DATABASE_MYSQL_USERNAME");
  opts.password = env("APP_DATABASE_MYSQL_PASSWORD");
  // The cases empty `recordings`: never near a database that is not a test
  // one.
  if (opts.database.find("test") == std::string::npos)
    FAIL("APP_DATABASE_MYSQL_DATABASE='" << opts.database
                                         << "' does not look like a test "
                                            "database (no 'test' in it)");
  return opts;
}

/// The test's own connection, beside the repository's.
class raw_mysql {
public:
  explicit raw_mysql(const persistence::mysql_options& opts) {
    sql::ConnectOptionsMap props;
    props["hostName"] = sql::SQLString{"tcp://" + opts.host + ":"
                                       + std::to_string(opts.port)};
    props["userName"] = sql::SQLString{opts.username};
    props["password"] = sql::SQLString{opts.password};
    props["schema"] = sql::SQLString{opts.database};
    props["OPT_CONNECT_TIMEOUT"] = 3;
    try {
      conn_.reset(sql::mysql::get_mysql_driver_instance()->connect(props));
    } catch (const sql::SQLException& e) {
      FAIL("cannot connect to MySQL at " << opts.host << ":" << opts.port
                                         << ": " << e.what());
    }
  }

  void execute(const std::string& sql) {
    std::unique_ptr<sql::Statement> st{conn_->createStatement()};
    st->execute(sql);
  }

  int64_t count(const std::string& sql) {
    std::unique_ptr<sql::Statement> st{conn_->createStatement()};
    std::unique_ptr<sql::ResultSet> rs{st->executeQuery(sql)};
    return rs->next() ? rs->getInt64(1) : -1;
  }

  /// Statements of other connections waiting for a table's metadata lock
  /// (what LOCK TABLES ... WRITE makes every other reader of it do).
  int64_t waiting_for_lock() {
    return count("SELECT COUNT(*) FROM information_schema.PROCESSLIST "
                 "WHERE ID <> CONNECTION_ID() "
                 "AND STATE LIKE '%metadata lock%'");
  }

private:
  std::unique_ptr<sql::Connection> conn_;
};

/// A migrated MySQL store with an empty `recordings` table.
std::unique_ptr<persistence::recording_store>
fresh_mysql_store(const persistence::mysql_options& opts, raw_mysql& raw) {
  auto store = persistence::open_mysql_store(opts);
  store->migrate();
  raw.execute("DELETE FROM recordings");
  return store;
}

/// Polls (bounded) until `n` statements wait for the locked table.
bool wait_for_waiters(raw_mysql& raw, int64_t n,
                      std::chrono::milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    auto waiting = raw.waiting_for_lock();
    if (waiting >= n)
      return true;
    if (std::chrono::steady_clock::now() >= deadline) {
      UNSCOPED_INFO("statements waiting for the lock: " << waiting);
      return false;
    }
    std::this_thread::sleep_for(20ms);
  }
}

} // namespace

// -- SQLite -------------------------------------------------------------------

TEST_CASE_METHOD(fixture,
                 "sqlite repository: a read sees every write sent before it",
                 "[unit][actors]") {
  phonon::testing::temp_dir dir{"phonon-repository"};
  auto store = persistence::open_sqlite_store(
    (dir.path / "phonon.db").string());
  store->migrate();
  CHECK(store->concurrent_readers() == 0);
  auto repo = spawn_repository(*sys, std::move(store));
  check_read_after_write(*sys, repo, 3, 10);
  caf::anon_send_exit(repo, caf::exit_reason::user_shutdown);
}

// -- MySQL --------------------------------------------------------------------

TEST_CASE_METHOD(fixture,
                 "mysql repository: reads run beside a read that waits on "
                 "the server",
                 "[.mysql][actors]") {
  auto opts = mysql_options_from_env();
  opts.pool_size = 4;
  raw_mysql raw{opts};
  auto store = fresh_mysql_store(opts, raw);
  REQUIRE(store->concurrent_readers() == 3);
  auto repo = spawn_repository(*sys, std::move(store));
  caf::scoped_actor self{*sys};
  for (int64_t phrase = 1; phrase <= 2; ++phrase)
    self->request(repo, reply_timeout, insert_atom_v,
                  make_recording(1, phrase, phrase), std::string{"seed"})
      .receive([](recording&) {},
               [](caf::error& err) { FAIL(caf::to_string(err)); });

  // Every statement that touches `recordings` now waits for the test's
  // lock (a read stuck on a slow server, as far as the repository knows).
  // MySQL's read timeout (10 s) is far away: the lock is held for a few
  // seconds at most.
  raw.execute("LOCK TABLES recordings WRITE");
  auto blocked_1 = self->request(repo, reply_timeout, caf::get_atom_v,
                                 int64_t{1}, int64_t{1},
                                 std::string{"blocked-1"});
  auto blocked_2 = self->request(repo, reply_timeout, caf::get_atom_v,
                                 int64_t{1}, int64_t{2},
                                 std::string{"blocked-2"});
  // Both reads wait on the server at the same time, each on a connection
  // of its own: two readers are busy at once.
  CHECK(wait_for_waiters(raw, 2, 3000ms));
  // A third reader still answers meanwhile.
  auto t0 = std::chrono::steady_clock::now();
  bool pinged = false;
  self->request(repo, std::chrono::seconds{2}, ping_atom_v)
    .receive([&](bool ok) { pinged = ok; },
             [&](caf::error& err) {
               UNSCOPED_INFO("ping: " << caf::to_string(err));
             });
  CHECK(pinged);
  auto ping_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::steady_clock::now() - t0)
                   .count();
  CHECK(ping_ms < 1000);
  CHECK(raw.waiting_for_lock() >= 2);

  // Released, the waiting reads answer with their rows.
  raw.execute("UNLOCK TABLES");
  auto first = receive_get(blocked_1);
  auto second = receive_get(blocked_2);
  CHECK(first.found);
  CHECK(first.row.phrase_id == 1);
  CHECK(second.found);
  CHECK(second.row.phrase_id == 2);
  caf::anon_send_exit(repo, caf::exit_reason::user_shutdown);
}

TEST_CASE_METHOD(fixture,
                 "mysql repository: a read sees every write sent before it, "
                 "with reads running concurrently",
                 "[.mysql][actors]") {
  auto opts = mysql_options_from_env();
  opts.pool_size = 4;
  raw_mysql raw{opts};
  auto repo = spawn_repository(*sys, fresh_mysql_store(opts, raw));
  // Background load: scans keep the readers busy meanwhile.
  std::atomic<bool> stop{false};
  std::thread scanner{[&] {
    caf::scoped_actor self{*sys};
    for (int i = 0; i < 10000 && !stop; ++i)
      self->request(repo, reply_timeout, scan_atom_v, int64_t{0}, int64_t{0},
                    int32_t{100})
        .receive([](std::vector<recording>&) {}, [](caf::error&) {});
  }};
  check_read_after_write(*sys, repo, 4, 25);
  stop = true;
  scanner.join();
  caf::anon_send_exit(repo, caf::exit_reason::user_shutdown);
}

TEST_CASE_METHOD(fixture,
                 "mysql repository: a pool of one keeps every call on the "
                 "repository's thread",
                 "[.mysql][actors]") {
  auto opts = mysql_options_from_env();
  opts.pool_size = 1;
  raw_mysql raw{opts};
  auto store = fresh_mysql_store(opts, raw);
  CHECK(store->concurrent_readers() == 0);
  auto repo = spawn_repository(*sys, std::move(store));
  check_read_after_write(*sys, repo, 2, 5);
  caf::anon_send_exit(repo, caf::exit_reason::user_shutdown);
}
