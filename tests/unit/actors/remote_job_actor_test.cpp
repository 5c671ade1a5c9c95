// The worker side of a remote job (actors/remote_job_actor.hpp) driven by
// hand, as a relay would: what it refuses, and that its files go away
// however the job ends.

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include <unistd.h>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>

#include "actors/errors.hpp"
#include "actors/remote_job_actor.hpp"
#include "actors/system_config.hpp"

using namespace phonon;
using namespace phonon::actors;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

struct fixture {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  fs::path dir;
  remote_job_settings jobs;
  caf::actor host;
  transcoder_actor transcoder;

  fixture() {
    configure(cfg, config::settings{});
    sys = std::make_unique<caf::actor_system>(cfg);
    char tmpl[] = "/tmp/phonon-rjob-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    dir = tmpl;
    jobs.temp_dir = (dir / "jobs").string();
    jobs.max_input_bytes = 1000;
    jobs.idle_timeout = 300ms;
    transcoder = spawn_transcoder(*sys, [](const transcode_job& job) {
      std::ofstream{job.output_path} << "out";
      transcode_output out;
      out.size = 3;
      return out;
    });
  }

  ~fixture() {
    caf::anon_send_exit(transcoder, caf::exit_reason::user_shutdown);
    if (host)
      caf::anon_send_exit(host, caf::exit_reason::user_shutdown);
    std::error_code ec;
    fs::remove_all(dir, ec);
  }

  void start_host() {
    host = spawn_job_host(*sys, jobs);
  }

  /// Opens a job announcing `size` input bytes.
  caf::expected<caf::actor> open(caf::scoped_actor& self, uint64_t size) {
    caf::expected<caf::actor> result{caf::error{}};
    transcode_job job;
    job.id = 1;
    job.target = "mp3";
    self
      ->request(host, 5s, open_job_atom_v, job, size,
                caf::actor_cast<caf::actor>(transcoder))
      .receive([&](caf::actor& rjob) { result = std::move(rjob); },
               [&](caf::error& err) { result = std::move(err); });
    return result;
  }

  caf::expected<uint64_t> put(caf::scoped_actor& self, const caf::actor& rjob,
                              uint64_t offset, std::string bytes) {
    caf::expected<uint64_t> result{caf::error{}};
    self->request(rjob, 5s, put_chunk_atom_v, offset, std::move(bytes))
      .receive([&](uint64_t n) { result = n; },
               [&](caf::error& err) { result = std::move(err); });
    return result;
  }

  /// Waits (at most 2 s) until the jobs folder holds no file.
  bool jobs_dir_empty() {
    for (int i = 0; i < 200; ++i) {
      std::error_code ec;
      if (!fs::exists(jobs.temp_dir) || fs::is_empty(jobs.temp_dir, ec))
        return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }
};

} // namespace

TEST_CASE_METHOD(fixture,
                 "a remote job runs on chunks and serves its output by "
                 "offset, then removes its files",
                 "[unit][actors]") {
  start_host();
  caf::scoped_actor self{*sys};
  auto rjob = open(self, 6);
  REQUIRE(rjob);
  CHECK(put(self, *rjob, 0, "abc") == uint64_t{3});
  CHECK(put(self, *rjob, 3, "def") == uint64_t{6});
  caf::expected<transcode_output> out{caf::error{}};
  self->request(*rjob, 5s, run_job_atom_v)
    .receive([&](transcode_output& x) { out = std::move(x); },
             [&](caf::error& err) { out = std::move(err); });
  REQUIRE(out);
  CHECK(out->size == 3);
  CHECK(out->output_path.empty());
  std::string chunk;
  self->request(*rjob, 5s, get_chunk_atom_v, uint64_t{1})
    .receive([&](std::string& x) { chunk = std::move(x); },
             [&](caf::error&) {});
  CHECK(chunk == "ut");
  self->send(*rjob, close_job_atom_v);
  CHECK(jobs_dir_empty());
}

TEST_CASE_METHOD(fixture,
                 "a remote job announcing more than the bound is refused "
                 "before anything is written",
                 "[unit][actors]") {
  start_host();
  caf::scoped_actor self{*sys};
  auto rjob = open(self, 1001);
  REQUIRE(!rjob);
  CHECK(is(rjob.error(), errc::payload_too_large));
  CHECK(jobs_dir_empty());
}

TEST_CASE_METHOD(fixture,
                 "a chunk past the announced size or out of order ends the "
                 "job and removes its file",
                 "[unit][actors]") {
  start_host();
  caf::scoped_actor self{*sys};
  SECTION("overrun") {
    auto rjob = open(self, 4);
    REQUIRE(rjob);
    CHECK(put(self, *rjob, 0, "abc") == uint64_t{3});
    auto res = put(self, *rjob, 3, "de");
    REQUIRE(!res);
    CHECK(is(res.error(), errc::payload_too_large));
  }
  SECTION("out of order") {
    auto rjob = open(self, 10);
    REQUIRE(rjob);
    auto res = put(self, *rjob, 5, "abc");
    REQUIRE(!res);
    CHECK(is(res.error(), errc::bad_request));
  }
  CHECK(jobs_dir_empty());
}

TEST_CASE_METHOD(fixture,
                 "a remote job whose relay falls silent or goes away removes "
                 "its files",
                 "[unit][actors]") {
  start_host();
  SECTION("silent: the idle timeout") {
    caf::scoped_actor self{*sys};
    auto rjob = open(self, 10);
    REQUIRE(rjob);
    CHECK(put(self, *rjob, 0, "abc") == uint64_t{3});
    CHECK(!fs::is_empty(jobs.temp_dir));
    // The relay (this scoped actor) stays alive but says nothing.
    std::this_thread::sleep_for(jobs.idle_timeout);
    CHECK(jobs_dir_empty());
  }
  SECTION("gone: the relay's down message") {
    {
      caf::scoped_actor self{*sys};
      REQUIRE(open(self, 10));
    }
    CHECK(jobs_dir_empty());
  }
}

TEST_CASE_METHOD(fixture,
                 "a job host sweeps the files of dead processes at start, "
                 "not those of live ones",
                 "[unit][actors]") {
  fs::create_directories(jobs.temp_dir);
  // A pid above the kernel's limit is never alive.
  auto dead = fs::path{jobs.temp_dir} / "rjob-99999999-1.in";
  auto live = fs::path{jobs.temp_dir}
              / ("rjob-" + std::to_string(::getpid()) + "-1.in");
  auto foreign = fs::path{jobs.temp_dir} / "notes.txt";
  for (auto& p : {dead, live, foreign})
    std::ofstream{p} << "x";
  CHECK(sweep_remote_job_files(jobs.temp_dir) == 1);
  CHECK(!fs::exists(dead));
  CHECK(fs::exists(live));
  CHECK(fs::exists(foreign));
}

TEST_CASE_METHOD(fixture,
                 "a job host without a bucket refuses bucket jobs with a "
                 "storage error (the serve node then sends chunks)",
                 "[unit][actors]") {
  start_host();
  caf::scoped_actor self{*sys};
  transcode_job job;
  job.id = 1;
  job.target = "mp3";
  job.input_key = blob_ref{1, 2, 3, "master.wav"};
  job.output_key = blob_ref{1, 2, 3, "cache/mp3"};
  caf::error got;
  self
    ->request(host, 5s, bucket_job_atom_v, job,
              caf::actor_cast<caf::actor>(transcoder))
    .receive([&](transcode_output&) { FAIL("a bucket job ran"); },
             [&](caf::error& err) { got = std::move(err); });
  CHECK(is(got, errc::storage_failure));
  CHECK(jobs_dir_empty());
}
