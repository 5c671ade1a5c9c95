// The storage actor's install of an upload (store_atom) over a real blob
// store in a temp folder: the original and its master in one request, the
// original alone when the master cannot go in, and the reserve check.

#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>

#include "actors/errors.hpp"
#include "actors/storage_actor.hpp"
#include "actors/system_config.hpp"
#include "persistence/local_blob_store.hpp"
#include "tests/unit/temp_dir.hpp"

using namespace phonon;
using namespace phonon::actors;

namespace fs = std::filesystem;

namespace {

constexpr auto reply_timeout = std::chrono::seconds{10};

struct storage_fixture {
  testing::temp_dir dir{"phonon-storage-test"};
  std::shared_ptr<persistence::local_blob_store> store
    = std::make_shared<persistence::local_blob_store>(dir.path);
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  storage_actor storage;

  explicit storage_fixture(uint64_t min_free = 0) {
    configure(cfg, config::settings{});
    sys = std::make_unique<caf::actor_system>(cfg);
    storage = spawn_storage(*sys, store, min_free);
  }

  ~storage_fixture() {
    caf::anon_send_exit(storage, caf::exit_reason::user_shutdown);
    // The last handle goes first: a detached actor's thread ends only once
    // the actor is destroyed, and ~actor_system waits for that thread
    // (before the folder goes).
    storage = storage_actor{};
    sys.reset();
  }

  /// A new file in the temp folder holding `bytes`.
  std::string temp_file(const std::string& prefix, const std::string& bytes) {
    auto path = store->make_temp_path(prefix);
    std::ofstream out{path, std::ios::binary};
    out << bytes;
    REQUIRE(out.good());
    return path.string();
  }

  /// Sends store_atom and waits: the bool answer, or the error.
  caf::expected<bool> install(const std::string& spool,
                              const std::string& master, bool synced,
                              uint64_t master_bytes) {
    caf::scoped_actor self{*sys};
    caf::expected<bool> result{false};
    self
      ->request(storage, reply_timeout, store_atom_v,
                blob_ref{3, 4, 100, "original"}, spool, master, synced,
                master_bytes, std::string{"test"})
      .receive([&](bool with_master) { result = with_master; },
               [&](caf::error& err) { result = std::move(err); });
    return result;
  }

  bool stored(const std::string& name) {
    return store->stat({3, 4, 100, name}).has_value();
  }
};

} // namespace

TEST_CASE("storage: store_atom installs the original and the master in one "
          "request",
          "[unit][actors]") {
  storage_fixture fx;
  auto spool = fx.temp_file("upload", "original bytes");
  auto master = fx.temp_file("job", std::string(5000, 'w'));
  auto res = fx.install(spool, master, true, 5000);
  REQUIRE(res);
  CHECK(*res);
  CHECK(fx.stored("original"));
  CHECK(fx.stored("master.wav"));
  CHECK(fx.store->read({3, 4, 100, "master.wav"}) == std::string(5000, 'w'));
  CHECK_FALSE(fs::exists(spool));
  CHECK_FALSE(fs::exists(master));
}

TEST_CASE("storage: store_atom without a master stores the original alone",
          "[unit][actors]") {
  storage_fixture fx;
  auto spool = fx.temp_file("upload", "original bytes");
  auto res = fx.install(spool, "", false, 5000);
  REQUIRE(res);
  CHECK_FALSE(*res);
  CHECK(fx.stored("original"));
  CHECK_FALSE(fx.stored("master.wav"));
}

TEST_CASE("storage: a master that cannot be installed leaves the original "
          "alone and the master for later",
          "[unit][actors]") {
  storage_fixture fx;
  auto spool = fx.temp_file("upload", "original bytes");
  // A master path in the temp folder with no file behind it: the rename
  // fails, as any failure of the master would.
  auto gone = fx.store->make_temp_path("job").string();
  auto res = fx.install(spool, gone, true, 5000);
  REQUIRE(res);
  CHECK_FALSE(*res);
  CHECK(fx.stored("original"));
  CHECK_FALSE(fx.stored("master.wav"));
  // The fallback: the master is adopted after the answer.
  auto master = fx.temp_file("job", "late master");
  caf::scoped_actor self{*fx.sys};
  bool adopted = false;
  self
    ->request(fx.storage, reply_timeout, adopt_atom_v,
              blob_ref{3, 4, 100, "master.wav"}, master, std::string{"test"})
    .receive([&](const blob_stat&) { adopted = true; },
             [&](caf::error& err) { FAIL(caf::to_string(err)); });
  CHECK(adopted);
  CHECK(fx.store->read({3, 4, 100, "master.wav"}) == "late master");
}

TEST_CASE("storage: store_atom refuses files outside the temp folder and "
          "uploads over the reserve",
          "[unit][actors]") {
  SECTION("a master outside the temp folder") {
    storage_fixture fx;
    auto spool = fx.temp_file("upload", "original bytes");
    auto outside = (fx.dir.path / "elsewhere.wav").string();
    std::ofstream{outside} << "x";
    auto res = fx.install(spool, outside, true, 1);
    REQUIRE_FALSE(res);
    CHECK(is(res.error(), errc::storage_failure));
    CHECK_FALSE(fx.stored("original"));
    CHECK(fs::exists(outside));
  }
  SECTION("the reserve counts the master") {
    // More than any disk has free: nothing is installed, storage_full.
    storage_fixture fx{uint64_t{1} << 62};
    auto spool = fx.temp_file("upload", "original bytes");
    auto master = fx.temp_file("job", "master");
    auto res = fx.install(spool, master, true, 6);
    REQUIRE_FALSE(res);
    CHECK(is(res.error(), errc::storage_full));
    CHECK_FALSE(fx.stored("original"));
    CHECK_FALSE(fx.stored("master.wav"));
    CHECK(fs::exists(master));
  }
}

namespace {

/// Sends claim_atom for (3, 4, 100, name) of `size` bytes and waits;
/// `copy`: make this node's copy.
caf::expected<blob_stat> claim(storage_fixture& fx, const std::string& name,
                               uint64_t size, bool copy = true) {
  caf::scoped_actor self{*fx.sys};
  caf::expected<blob_stat> result{caf::error{}};
  self
    ->request(fx.storage, reply_timeout, claim_atom_v,
              blob_ref{3, 4, 100, name}, size, copy, std::string{"test"})
    .receive([&](blob_stat& st) { result = std::move(st); },
             [&](caf::error& err) { result = std::move(err); });
  return result;
}

} // namespace

TEST_CASE("storage: claim_atom takes over an object another node stored, "
          "only while its revision exists and at the size it was reported",
          "[unit][actors]") {
  storage_fixture fx;
  // What a worker's bucket job leaves: the object under its final key
  // (here written straight into the store, as the worker's PUT would).
  fx.store->put_bytes({3, 4, 100, "original"}, "original bytes");
  fx.store->put_bytes({3, 4, 100, "cache/mp3"}, "mp3 bytes");
  auto ok = claim(fx, "cache/mp3", 9);
  REQUIRE(ok);
  CHECK(ok->size == 9);
  CHECK(fs::exists(ok->path));

  // Without a copy (a master a worker wrote): the size is checked, no
  // path is answered.
  fx.store->put_bytes({3, 4, 100, "master.wav"}, "master bytes");
  auto checked = claim(fx, "master.wav", 12, false);
  REQUIRE(checked);
  CHECK(checked->size == 12);
  CHECK(checked->path.empty());
  auto short_master = claim(fx, "master.wav", 13, false);
  REQUIRE_FALSE(short_master);
  CHECK(is(short_master.error(), errc::storage_failure));
  CHECK_FALSE(fx.stored("master.wav"));

  // Not the size the worker reported: neither served nor kept.
  fx.store->put_bytes({3, 4, 100, "cache/ogg"}, "ogg bytes!");
  auto wrong = claim(fx, "cache/ogg", 9);
  REQUIRE_FALSE(wrong);
  CHECK(is(wrong.error(), errc::storage_failure));
  CHECK_FALSE(fx.stored("cache/ogg"));

  // Missing altogether.
  auto missing = claim(fx, "cache/flac", 9);
  REQUIRE_FALSE(missing);
  CHECK(is(missing.error(), errc::storage_failure));

  // The revision went away meanwhile: not_found, and the object goes too.
  fx.store->put_bytes({3, 4, 100, "cache/opus"}, "opus");
  fx.store->remove({3, 4, 100, "original"});
  auto gone = claim(fx, "cache/opus", 4);
  REQUIRE_FALSE(gone);
  CHECK(is(gone.error(), errc::not_found));
  CHECK_FALSE(fx.stored("cache/opus"));
}
