// The supervisor with stand-in transcoders: the transcode function is the
// one thing replaced, the actors, monitors and messages are real.

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>

#include "actors/errors.hpp"
#include "actors/remote_job_actor.hpp"
#include "actors/system_config.hpp"
#include "actors/transcode_supervisor.hpp"
#include "media/transcode.hpp"
#include "tests/unit/actors/log_capture.hpp"

using namespace phonon;
using namespace phonon::actors;

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in{path, std::ios::binary};
  return std::string{std::istreambuf_iterator<char>{in},
                     std::istreambuf_iterator<char>{}};
}

/// A fresh folder under /tmp, removed at the end of the test.
struct scratch_dir {
  std::filesystem::path path;

  scratch_dir() {
    char tmpl[] = "/tmp/phonon-sup-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }

  ~scratch_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

/// What a job produced, with its output file read back.
struct ran : transcode_output {
  std::string bytes;
};

struct fixture {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  /// Inputs and outputs of the jobs of a test.
  scratch_dir files;
  int inputs = 0;

  fixture() {
    configure(cfg, config::settings{});
    sys = std::make_unique<caf::actor_system>(cfg);
  }

  /// `settings` with the outputs going to this test's folder.
  /// Settings with `workers` local transcoders, `queue_limit` and
  /// `max_attempts`, the rest default.
  static supervisor_settings sized(int workers, int queue_limit,
                                   int max_attempts) {
    supervisor_settings settings;
    settings.workers = workers;
    settings.queue_limit = queue_limit;
    settings.max_attempts = max_attempts;
    return settings;
  }

  supervisor_settings in_files(supervisor_settings settings) {
    settings.temp_dir = files.path.string();
    return settings;
  }

  /// A new input file holding `input`.
  std::string input_file(const std::string& input) {
    auto path = (files.path / ("input-" + std::to_string(inputs++))).string();
    std::ofstream{path, std::ios::binary} << input;
    return path;
  }

  /// Sends one job with `input` in a file, not waiting for the answer.
  void send_job(caf::scoped_actor& self, const supervisor_actor& sup,
                std::string target, const std::string& input) {
    self->send(sup, transcode_atom_v, std::move(target), input_file(input),
               static_cast<uint64_t>(input.size()), std::string{"test-req"});
  }

  /// Runs one job with `input` in a file and returns the output (read back
  /// from its file) or the error.
  caf::expected<ran> run(const supervisor_actor& sup, std::string target,
                         const std::string& input,
                         std::string request_id = "test-req") {
    caf::scoped_actor self{*sys};
    caf::expected<ran> result{caf::error{}};
    self
      ->request(sup, std::chrono::seconds(10), transcode_atom_v,
                std::move(target), input_file(input),
                static_cast<uint64_t>(input.size()), std::move(request_id))
      .receive(
        [&](transcode_output& out) {
          ran r;
          static_cast<transcode_output&>(r) = out;
          r.bytes = slurp(out.output_path);
          result = std::move(r);
        },
        [&](caf::error& err) { result = std::move(err); });
    return result;
  }

  pool_status status(const supervisor_actor& sup) {
    caf::scoped_actor self{*sys};
    pool_status result;
    self->request(sup, std::chrono::seconds(5), status_atom_v)
      .receive([&](pool_status& ps) { result = ps; }, [&](caf::error&) {});
    return result;
  }
};

/// The contents of a job's input file.
std::string input_of(const transcode_job& job) {
  return slurp(job.input_path);
}

/// Writes `text` to the job's output file and answers like a transcoder.
transcode_output write_output(const transcode_job& job,
                              const std::string& text) {
  std::ofstream{job.output_path, std::ios::binary} << text;
  transcode_output out;
  out.output_path = job.output_path;
  out.size = text.size();
  return out;
}

/// A transcode function for file jobs: the output file gets target + ":" +
/// the input file's contents.
transcode_output echo(const transcode_job& job) {
  return write_output(job, job.target + ":" + input_of(job));
}

} // namespace

TEST_CASE_METHOD(fixture, "supervisor runs a job on a transcoder",
                 "[unit][actors]") {
  auto sup = spawn_supervisor(*sys, in_files(sized(2, 8, 3)),
                              [](caf::actor_system& s) {
    return spawn_transcoder(s, echo);
  });
  auto res = run(sup, "mp3", "abc");
  REQUIRE(res);
  CHECK(res->bytes == "mp3:abc");
  CHECK(status(sup).local_transcoders == 2);
  caf::anon_send_exit(sup, caf::exit_reason::user_shutdown);
}

TEST_CASE_METHOD(fixture,
                 "a transcoder that throws is respawned and the job still "
                 "finishes",
                 "[unit][actors]") {
  // The first call anywhere throws (killing that transcoder); later calls
  // work. The job must be re-dispatched and succeed.
  auto calls = std::make_shared<std::atomic<int>>(0);
  auto sup = spawn_supervisor(*sys, in_files(sized(1, 8, 3)),
                              [calls](caf::actor_system& s) {
    return spawn_transcoder(s, [calls](const transcode_job& job) {
      if (calls->fetch_add(1) == 0)
        throw std::runtime_error("decoder crashed");
      return echo(job);
    });
  });
  auto res = run(sup, "wav", "xyz");
  REQUIRE(res);
  CHECK(res->bytes == "wav:xyz");
  CHECK(calls->load() == 2);
  // The dead transcoder was replaced: the pool is back to its size.
  CHECK(status(sup).local_transcoders == 1);
  auto again = run(sup, "ogg", "q");
  REQUIRE(again);
  CHECK(again->bytes == "ogg:q");
  caf::anon_send_exit(sup, caf::exit_reason::user_shutdown);
}

TEST_CASE_METHOD(fixture,
                 "a job that kills max_attempts transcoders fails for good",
                 "[unit][actors]") {
  auto calls = std::make_shared<std::atomic<int>>(0);
  auto sup = spawn_supervisor(*sys, in_files(sized(2, 8, 3)),
                              [calls](caf::actor_system& s) {
    return spawn_transcoder(s, [calls](const transcode_job& job) {
      if (input_of(job) == "poison") {
        calls->fetch_add(1);
        throw std::runtime_error("decoder crashed");
      }
      return echo(job);
    });
  });
  auto res = run(sup, "mp3", "poison");
  REQUIRE(!res);
  CHECK(is(res.error(), errc::transcoder_crashed));
  CHECK(calls->load() == 3);
  // The pool survives and keeps working.
  auto ok = run(sup, "mp3", "fine");
  REQUIRE(ok);
  CHECK(status(sup).local_transcoders == 2);
  caf::anon_send_exit(sup, caf::exit_reason::user_shutdown);
}

TEST_CASE_METHOD(fixture, "media errors are answered, not retried",
                 "[unit][actors]") {
  auto calls = std::make_shared<std::atomic<int>>(0);
  auto sup = spawn_supervisor(*sys, in_files(sized(1, 8, 3)),
                              [calls](caf::actor_system& s) {
    return spawn_transcoder(s, [calls](const transcode_job&)
                                 -> transcode_output {
      calls->fetch_add(1);
      throw media::media_error(media::media_errc::not_audio, "not audio");
    });
  });
  auto res = run(sup, "master", "garbage");
  REQUIRE(!res);
  CHECK(is(res.error(), errc::unsupported_media));
  CHECK(calls->load() == 1);
  caf::anon_send_exit(sup, caf::exit_reason::user_shutdown);
}

TEST_CASE_METHOD(fixture, "a full queue answers overloaded",
                 "[unit][actors]") {
  // One transcoder blocked until released; queue_limit 2.
  auto gate = std::make_shared<std::atomic<bool>>(false);
  auto sup = spawn_supervisor(*sys, in_files(sized(1, 2, 3)),
                              [gate](caf::actor_system& s) {
    return spawn_transcoder(s, [gate](const transcode_job& job) {
      for (int i = 0; i < 500 && !gate->load(); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      return echo(job);
    });
  });
  caf::scoped_actor self{*sys};
  for (int i = 0; i < 2; ++i)
    send_job(self, sup, "mp3", "a");
  // Both accepted jobs are in the supervisor before the third arrives
  // (messages from one sender arrive in order).
  auto third = run(sup, "mp3", "b");
  REQUIRE(!third);
  CHECK(is(third.error(), errc::overloaded));
  gate->store(true);
  caf::anon_send_exit(sup, caf::exit_reason::user_shutdown);
}

// -- limits and deadlines (issue 8, item 11) ---------------------------------

namespace {

int64_t unix_ms_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

/// Stops the supervisor when the test case ends, also after a failed
/// REQUIRE (the actor system would wait for it forever).
struct stop_at_exit {
  supervisor_actor sup;
  ~stop_at_exit() {
    caf::anon_send_exit(sup, caf::exit_reason::user_shutdown);
  }
};

supervisor_settings limited(int workers, int queue_limit,
                            uint64_t queue_limit_bytes,
                            std::chrono::milliseconds request_timeout) {
  supervisor_settings cfg;
  cfg.workers = workers;
  cfg.queue_limit = queue_limit;
  cfg.queue_limit_bytes = queue_limit_bytes;
  cfg.request_timeout = request_timeout;
  cfg.max_duration_ms = 90000;
  return cfg;
}

} // namespace

TEST_CASE_METHOD(fixture,
                 "jobs carry the upload duration limit and a wall-clock "
                 "deadline",
                 "[unit][actors][limits]") {
  auto sup = spawn_supervisor(
    *sys, in_files(limited(1, 8, 1 << 20, std::chrono::seconds(30))),
    [](caf::actor_system& s) {
      return spawn_transcoder(s, [](const transcode_job& job) {
        auto out = write_output(job, std::to_string(job.deadline_unix_ms));
        out.duration_ms = job.max_duration_ms;
        return out;
      });
    });
  stop_at_exit stop{sup};
  auto before = unix_ms_now();
  auto master = run(sup, "master", "abc");
  auto mp3 = run(sup, "mp3", "abc");
  auto after = unix_ms_now();
  REQUIRE(master);
  REQUIRE(mp3);
  // Uploads are held to server.max_duration; conversions of a master
  // Phonon wrote itself are not (the limit may have been raised since).
  CHECK(master->duration_ms == 90000);
  CHECK(mp3->duration_ms == 0);
  for (auto* out : {&*master, &*mp3}) {
    auto deadline = std::stoll(out->bytes);
    CHECK(deadline >= before + 30000);
    CHECK(deadline <= after + 30000);
  }
}

TEST_CASE_METHOD(fixture,
                 "a job whose deadline passed while queued is not started",
                 "[unit][actors][limits]") {
  auto started = std::make_shared<std::atomic<int>>(0);
  auto sup = spawn_supervisor(
    *sys, in_files(limited(1, 8, 1 << 20, std::chrono::milliseconds(200))),
    [started](caf::actor_system& s) {
      return spawn_transcoder(s, [started](const transcode_job& job) {
        started->fetch_add(1);
        if (input_of(job) == "slow")
          std::this_thread::sleep_for(std::chrono::milliseconds(600));
        return echo(job);
      });
    });
  stop_at_exit stop{sup};
  caf::scoped_actor self{*sys};
  send_job(self, sup, "mp3", "slow");
  auto queued = run(sup, "mp3", "late");
  REQUIRE(!queued);
  CHECK(is(queued.error(), errc::deadline_exceeded));
  CHECK(started->load() == 1);
  // The pool keeps working for jobs that are still wanted.
  auto fresh = run(sup, "mp3", "fresh");
  REQUIRE(fresh);
  CHECK(fresh->bytes == "mp3:fresh");
}

TEST_CASE_METHOD(fixture,
                 "the queue is bounded by input bytes as well as by jobs",
                 "[unit][actors][limits]") {
  auto gate = std::make_shared<std::atomic<bool>>(false);
  auto sup = spawn_supervisor(
    *sys, in_files(limited(1, 64, 10, std::chrono::seconds(30))),
    [gate](caf::actor_system& s) {
      return spawn_transcoder(s, [gate](const transcode_job& job) {
        for (int i = 0; i < 500 && !gate->load(); ++i)
          std::this_thread::sleep_for(std::chrono::milliseconds(10));
        return echo(job);
      });
    });
  stop_at_exit stop{sup};
  caf::scoped_actor self{*sys};
  send_job(self, sup, "mp3", std::string(6, 'a'));
  // 6 + 6 bytes is over the bound of 10.
  auto over = run(sup, "mp3", std::string(6, 'b'));
  REQUIRE(!over);
  CHECK(is(over.error(), errc::overloaded));
  gate->store(true);
  for (int i = 0; i < 200 && status(sup).running > 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  REQUIRE(status(sup).running == 0);
  // Alone, a job larger than the bound still runs (or it never could).
  auto big = run(sup, "mp3", std::string(20, 'c'));
  REQUIRE(big);
  CHECK(big->bytes == "mp3:" + std::string(20, 'c'));
}

// -- request ids (issue 9) ----------------------------------------------------

TEST_CASE("the request id travels with the job and into every log line "
          "about it",
          "[unit][actors]") {
  testing::log_capture logs;
  fixture fx;
  auto sup = spawn_supervisor(*fx.sys, fx.in_files(fixture::sized(1, 8, 2)),
                              [](caf::actor_system& s) {
    return spawn_transcoder(s, [](const transcode_job& job) {
      if (job.target == "crash")
        throw std::runtime_error("boom");
      return write_output(job, job.request_id);
    });
  });
  auto res = fx.run(sup, "mp3", "abc", "rid-42");
  REQUIRE(res);
  // The transcoder saw the id.
  CHECK(res->bytes == "rid-42");
  auto text = logs.text();
  for (auto line : {"job queued req_id=rid-42 ",
                    "job dispatched req_id=rid-42 ",
                    "transcode started req_id=rid-42 ",
                    "transcode done req_id=rid-42 ",
                    "job done req_id=rid-42 "}) {
    INFO(line);
    CHECK(text.find(line) != std::string::npos);
  }
  // A job that kills its transcoders: every line about it has its id.
  auto crashed = fx.run(sup, "crash", "x", "rid-43");
  REQUIRE(!crashed);
  CHECK(is(crashed.error(), errc::transcoder_crashed));
  text = logs.text();
  for (auto line : {"transcoder crashed req_id=rid-43 job=",
                    "job queued again after its transcoder was lost "
                    "req_id=rid-43 ",
                    "job failed for good req_id=rid-43 "}) {
    INFO(line);
    CHECK(text.find(line) != std::string::npos);
  }
  // A job of no request (startup recovery) is logged with "-".
  REQUIRE(fx.run(sup, "mp3", "abc", ""));
  CHECK(logs.text().find("job queued req_id=- ") != std::string::npos);
  caf::anon_send_exit(sup, caf::exit_reason::user_shutdown);
}

TEST_CASE("the request id survives serialization to another node",
          "[unit][actors]") {
  fixture fx;
  transcode_job job;
  job.id = 7;
  job.target = "mp3";
  job.input_path = "/in";
  job.output_path = "/out";
  job.max_duration_ms = 1000;
  job.deadline_unix_ms = 2000;
  job.request_id = "test-abc-123";
  std::vector<char> buf;
  caf::binary_serializer sink{*fx.sys, buf};
  REQUIRE(!sink(job));
  transcode_job back;
  caf::binary_deserializer source{*fx.sys, buf};
  REQUIRE(!source(back));
  CHECK(back.id == 7);
  CHECK(back.target == "mp3");
  CHECK(back.input_path == "/in");
  CHECK(back.output_path == "/out");
  CHECK(back.max_duration_ms == 1000);
  CHECK(back.deadline_unix_ms == 2000);
  CHECK(back.request_id == "test-abc-123");

  upload_request up;
  up.request_id = "up-1";
  up.user_id = 3;
  up.phrase_id = 4;
  up.spool_path = "/tmp/x";
  buf.clear();
  caf::binary_serializer sink2{*fx.sys, buf};
  REQUIRE(!sink2(up));
  upload_request up_back;
  caf::binary_deserializer source2{*fx.sys, buf};
  REQUIRE(!source2(up_back));
  CHECK(up_back.request_id == "up-1");
  CHECK(up_back.user_id == 3);
  CHECK(up_back.phrase_id == 4);
  CHECK(up_back.spool_path == "/tmp/x");
}

// -- file jobs and shared inputs ----------------------------------------------

namespace {

/// Runs one file job and returns the output or the error.
caf::expected<transcode_output> run_file(caf::actor_system& sys,
                                         const supervisor_actor& sup,
                                         const std::string& target,
                                         const std::string& path,
                                         uint64_t size) {
  caf::scoped_actor self{sys};
  caf::expected<transcode_output> result{caf::error{}};
  self->request(sup, std::chrono::seconds(10), transcode_atom_v, target,
                path, size, std::string{"file-req"})
    .receive([&](transcode_output& out) { result = std::move(out); },
             [&](caf::error& err) { result = std::move(err); });
  return result;
}

} // namespace

TEST_CASE_METHOD(fixture,
                 "a file job streams from its input file to a fresh file in "
                 "the temp folder",
                 "[unit][actors]") {
  scratch_dir dir;
  auto in = (dir.path / "input").string();
  std::ofstream{in} << "pcm";
  auto cfg = supervisor_settings{};
  cfg.workers = 1;
  cfg.temp_dir = dir.path.string();
  auto seen = std::make_shared<transcode_job>();
  auto sup = spawn_supervisor(*sys, cfg, [seen](caf::actor_system& s) {
    return spawn_transcoder(s, [seen](const transcode_job& job) {
      *seen = job;
      return echo(job);
    });
  });
  auto res = run_file(*sys, sup, "mp3", in, 3);
  REQUIRE(res);
  CHECK(seen->input_path == in);
  CHECK(std::filesystem::path{res->output_path}.parent_path() == dir.path);
  CHECK(slurp(res->output_path) == "mp3:pcm");
  CHECK(res->size == 7);
  caf::anon_send_exit(sup, caf::exit_reason::user_shutdown);
}

TEST_CASE_METHOD(fixture,
                 "a file job for a remote transcoder without the files goes "
                 "in chunks and its answer lands in the output file",
                 "[unit][actors]") {
  scratch_dir dir;
  auto in = (dir.path / "input").string();
  // Four chunks and a bit, every byte value: the chunks must carry the
  // input and the output whole and in order.
  std::string input;
  for (size_t i = 0; i < 4 * transfer_chunk_bytes + 7; ++i)
    input.push_back(static_cast<char>((i * 131) % 251));
  std::ofstream{in, std::ios::binary} << input;
  auto cfg = supervisor_settings{};
  cfg.workers = 0;
  cfg.temp_dir = dir.path.string();
  auto sup = spawn_supervisor(*sys, cfg);
  // A worker node's parts, in this process: a transcoder and the job host
  // that opens remote jobs in its own folder.
  remote_job_settings jobs;
  jobs.temp_dir = (dir.path / "worker-tmp").string();
  auto host = spawn_job_host(*sys, jobs);
  auto seen = std::make_shared<transcode_job>();
  auto remote = spawn_transcoder(*sys, [seen](const transcode_job& job) {
    *seen = job;
    return echo(job);
  });
  caf::anon_send(sup, join_atom_v, caf::actor_cast<caf::actor>(remote),
                 int32_t{1}, false, host);
  for (int i = 0; i < 100 && status(sup).remote_transcoders == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  auto res = run_file(*sys, sup, "ogg", in, input.size());
  REQUIRE(res);
  // The transcoder streamed between the worker's own files.
  CHECK(std::filesystem::path{seen->input_path}.parent_path()
        == jobs.temp_dir);
  CHECK(std::filesystem::path{res->output_path}.parent_path() == dir.path);
  CHECK(slurp(res->output_path) == "ogg:" + input);
  CHECK(res->size == input.size() + 4);
  // The worker removed both of its files when the job was closed.
  bool empty = false;
  for (int i = 0; i < 100 && !empty; ++i) {
    empty = std::filesystem::is_empty(jobs.temp_dir);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  CHECK(empty);
  caf::anon_send_exit(sup, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(remote, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(host, caf::exit_reason::user_shutdown);
}

TEST_CASE_METHOD(fixture,
                 "a remote transcoder that shares this node's files gets "
                 "file jobs as they are",
                 "[unit][actors]") {
  scratch_dir dir;
  auto in = (dir.path / "input").string();
  std::ofstream{in} << "pcm";
  auto cfg = supervisor_settings{};
  cfg.workers = 0;
  cfg.temp_dir = dir.path.string();
  auto sup = spawn_supervisor(*sys, cfg);
  auto seen = std::make_shared<transcode_job>();
  auto child = spawn_transcoder(*sys, [seen](const transcode_job& job) {
    *seen = job;
    return echo(job);
  });
  caf::anon_send(sup, join_atom_v, caf::actor_cast<caf::actor>(child),
                 int32_t{1}, true, caf::actor{});
  for (int i = 0; i < 100 && status(sup).remote_transcoders == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  auto res = run_file(*sys, sup, "flac", in, 3);
  REQUIRE(res);
  CHECK(seen->input_path == in);
  CHECK(slurp(res->output_path) == "flac:pcm");
  caf::anon_send_exit(sup, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(child, caf::exit_reason::user_shutdown);
}

namespace {

/// Runs one job naming its objects (input and output keys) with `input`
/// in a file; the output read back when it is a file.
caf::expected<ran> run_keyed(caf::actor_system& sys,
                             const supervisor_actor& sup,
                             const std::string& in, uint64_t size) {
  caf::scoped_actor self{sys};
  caf::expected<ran> result{caf::error{}};
  self
    ->request(sup, std::chrono::seconds(10), transcode_atom_v,
              std::string{"ogg"}, in, size, std::string{"test-req"},
              blob_ref{1, 2, 3, "master.wav"}, blob_ref{1, 2, 3, "cache/ogg"})
    .receive(
      [&](transcode_output& out) {
        ran r;
        static_cast<transcode_output&>(r) = out;
        if (!out.output_path.empty())
          r.bytes = slurp(out.output_path);
        result = std::move(r);
      },
      [&](caf::error& err) { result = std::move(err); });
  return result;
}

} // namespace

TEST_CASE_METHOD(fixture,
                 "a job naming its objects goes to a worker on the same "
                 "bucket as a bucket job; one that fails for the bucket's "
                 "sake runs again in chunks; a worker naming another bucket "
                 "gets chunks",
                 "[unit][actors]") {
  scratch_dir dir;
  auto in = (dir.path / "input").string();
  std::ofstream{in} << "pcm";
  auto cfg = supervisor_settings{};
  cfg.workers = 0;
  cfg.temp_dir = dir.path.string();
  cfg.bucket = "http://s3.test phonon/p/";
  auto sup = spawn_supervisor(*sys, cfg);
  // A worker node's parts in this process: a transcoder, the real job host
  // for chunks, and in front of it a stand-in that answers bucket jobs as
  // the test says (the bucket itself is the integration tests' part).
  remote_job_settings jobs;
  jobs.temp_dir = (dir.path / "worker-tmp").string();
  auto real_host = spawn_job_host(*sys, jobs);
  auto remote = spawn_transcoder(*sys, echo);
  struct script {
    std::atomic<int> bucket_jobs{0};
    std::atomic<int> chunk_jobs{0};
    std::atomic<bool> bucket_down{false};
    blob_ref output_key;
  };
  auto sc = std::make_shared<script>();
  auto host = sys->spawn([=](caf::event_based_actor* self) -> caf::behavior {
    return {
      [=](bucket_job_atom, transcode_job& job,
          caf::actor) -> caf::result<transcode_output> {
        ++sc->bucket_jobs;
        sc->output_key = job.output_key;
        if (sc->bucket_down)
          return caf::error{errc::storage_unavailable, "bucket down"};
        transcode_output out;
        out.stored = true;
        out.size = 42;
        return out;
      },
      [=](open_job_atom a, transcode_job& job, uint64_t size,
          caf::actor t) {
        ++sc->chunk_jobs;
        return self->delegate(real_host, a, std::move(job), size,
                              std::move(t));
      },
    };
  });
  caf::anon_send(sup, join_atom_v, caf::actor_cast<caf::actor>(remote),
                 int32_t{1}, false, host, cfg.bucket);
  for (int i = 0; i < 100 && status(sup).remote_transcoders == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));

  // The same bucket: a bucket job, answered without bytes.
  auto res = run_keyed(*sys, sup, in, 3);
  REQUIRE(res);
  CHECK(res->stored);
  CHECK(res->size == 42);
  CHECK(res->output_path.empty());
  CHECK(sc->bucket_jobs == 1);
  CHECK(sc->chunk_jobs == 0);
  CHECK(sc->output_key.name == "cache/ogg");

  // The bucket fails on the worker: the job runs again in chunks, and its
  // output is a file again.
  sc->bucket_down = true;
  res = run_keyed(*sys, sup, in, 3);
  REQUIRE(res);
  CHECK_FALSE(res->stored);
  CHECK(res->bytes == "ogg:pcm");
  CHECK(sc->bucket_jobs == 2);
  CHECK(sc->chunk_jobs == 1);

  // A job without keys (an upload's decode) always goes in chunks.
  sc->bucket_down = false;
  auto plain = run_file(*sys, sup, "ogg", in, 3);
  REQUIRE(plain);
  CHECK_FALSE(plain->stored);
  CHECK(sc->bucket_jobs == 2);
  CHECK(sc->chunk_jobs == 2);

  // A worker naming another bucket (another prefix) gets chunks even for
  // keyed jobs.
  caf::anon_send_exit(remote, caf::exit_reason::user_shutdown);
  for (int i = 0; i < 100 && status(sup).remote_transcoders != 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  auto other = spawn_transcoder(*sys, echo);
  caf::anon_send(sup, join_atom_v, caf::actor_cast<caf::actor>(other),
                 int32_t{1}, false, host,
                 std::string{"http://s3.test phonon/other/"});
  for (int i = 0; i < 100 && status(sup).remote_transcoders == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  res = run_keyed(*sys, sup, in, 3);
  REQUIRE(res);
  CHECK_FALSE(res->stored);
  CHECK(res->bytes == "ogg:pcm");
  CHECK(sc->bucket_jobs == 2);
  CHECK(sc->chunk_jobs == 3);
  caf::anon_send_exit(sup, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(other, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(host, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(real_host, caf::exit_reason::user_shutdown);
}
