// Cluster mode against the real binaries: a serve node with no local
// transcoders (`--workers 0`) publishes its supervisor on cluster.port and
// `phonon worker` processes join it. Workers die (SIGKILL), join late,
// reconnect after a serve-node restart, and run transcoders that crash
// (PHONON_TEST_FAULT).

#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/cluster_support.hpp"
#include "tests/integration/support.hpp"

using namespace phonon::integration;
using namespace std::chrono_literals;

namespace {

using clock_type = std::chrono::steady_clock;

/// The two clips every upload of these tests reuses.
struct clips {
  /// 1.5 s, 500 Hz, 16 kHz mono PCM WAV.
  std::string wav;
  /// 1 s, 700 Hz, 44.1 kHz mono AAC in M4A.
  std::string m4a;
};

const clips& cluster_clips() {
  static std::unique_ptr<temp_dir> dir;
  static std::unique_ptr<clips> result;
  if (result)
    return *result;
  dir = std::make_unique<temp_dir>("phonon-it-clips");
  auto make = [&](const std::string& args, const std::string& name) {
    auto out = *dir / name;
    auto r = run("ffmpeg -nostdin -hide_banner -v error -y " + args + " "
                 + shell_quote(out.string()));
    if (!r.ok())
      throw std::runtime_error("ffmpeg failed: " + r.output);
    return read_file(out);
  };
  clips c;
  c.wav = make("-f lavfi -i sine=frequency=500:duration=1.5:sample_rate=16000 "
               "-ac 1 -c:a pcm_s16le",
               "clip.wav");
  c.m4a = make("-f lavfi -i sine=frequency=700:duration=1:sample_rate=44100 "
               "-ac 1 -c:a aac -b:a 64k",
               "clip.m4a");
  result = std::make_unique<clips>(std::move(c));
  return *result;
}

std::string recording_path(int user, int phrase) {
  return "/audio/user/" + std::to_string(user) + "/phrase/"
         + std::to_string(phrase);
}

/// What happened to one upload, as seen by a client thread (Catch's
/// assertions are for the test thread only).
struct upload_outcome {
  /// Final status; 0 when the client itself failed (see `error`).
  unsigned status = 0;
  /// Answers 503 that were retried.
  int overloaded = 0;
  /// Time from the first request to the final answer.
  std::chrono::milliseconds took{0};
  std::string error;
};

/// POSTs `bytes`; a 503 (queue full) is retried after its Retry-After
/// (1..3 s), at most 8 times.
upload_outcome upload_with_retry(uint16_t port, const std::string& target,
                                 const std::string& bytes,
                                 const std::string& filename,
                                 const std::string& content_type) {
  upload_outcome out;
  auto started = clock_type::now();
  auto stop_clock = [&] {
    out.took = std::chrono::duration_cast<std::chrono::milliseconds>(
      clock_type::now() - started);
  };
  for (int attempt = 0; attempt < 8; ++attempt) {
    try {
      auto res = upload_file(port, target, bytes, filename, content_type);
      out.status = res.status;
      if (res.status != 503) {
        stop_clock();
        return out;
      }
      ++out.overloaded;
      auto wait = std::clamp(std::atoi(res.header("Retry-After").c_str()), 1,
                             3);
      std::this_thread::sleep_for(std::chrono::seconds{wait});
    } catch (const std::exception& e) {
      out.status = 0;
      out.error = e.what();
      stop_clock();
      return out;
    }
  }
  stop_clock();
  return out;
}

/// Arguments of a serve node without local transcoders publishing its
/// supervisor on `cluster_port`.
std::vector<std::string> serve_args(uint16_t cluster_port) {
  return {"--workers", "0", "--set",
          "cluster.port=" + std::to_string(cluster_port)};
}

/// Waits until the serve node counts `transcoders` remote transcoders on
/// `nodes` worker nodes.
bool wait_for_pool(uint16_t port, double transcoders, double nodes,
                   std::chrono::milliseconds limit = 10s) {
  return wait_for_metric(port, "phonon_transcoders", {{"kind", "remote"}},
                         transcoders, limit)
         && wait_for_metric(port, "phonon_cluster_nodes",
                            {{"kind", "worker"}}, nodes, limit);
}

/// Polls the metadata of every phrase in [1, count] of `user` until none is
/// `processing` (all within `limit`); returns the last metadata of each.
std::vector<nlohmann::json> settle_all(uint16_t port, int user, int count,
                                       std::chrono::milliseconds limit) {
  std::vector<nlohmann::json> result;
  auto deadline = clock_type::now() + limit;
  for (int phrase = 1; phrase <= count; ++phrase) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - clock_type::now());
    result.push_back(wait_until_settled(port, recording_path(user, phrase),
                                        std::max(left, 100ms)));
  }
  return result;
}

} // namespace

TEST_CASE("cluster: uploads survive a killed worker and a late worker "
          "takes jobs",
          "[integration][cluster]") {
  const auto& clip = cluster_clips();
  auto cluster_port = pick_free_port();
  server_process srv;
  srv.start(serve_args(cluster_port));
  auto port = srv.port();

  // No transcoder anywhere yet: not ready.
  CHECK(http_get(port, "/readyz").status == 503);
  CHECK(scrape_or_zero(port, "phonon_transcoders", {{"kind", "local"}})
        == 0);

  // w1 registers first, so its idle transcoders come first in the
  // supervisor's dispatch order.
  worker_process w1{cluster_port, 2};
  worker_process w2{cluster_port, 2};
  w1.start();
  REQUIRE(wait_for_pool(port, 2, 1, 15s));
  w2.start();
  REQUIRE(wait_for_pool(port, 4, 2, 15s));
  CHECK(http_get(port, "/readyz").status == 200);

  // 50 uploads from 4 client threads; one worker is SIGKILLed while they
  // run. It is frozen (SIGSTOP) a moment before, so that the decodes
  // dispatched to its two transcoders are certainly still in flight when it
  // dies: they must be re-dispatched to the other worker.
  constexpr int user = 3;
  constexpr int uploads = 50;
  std::vector<upload_outcome> outcomes(uploads);
  std::atomic<int> next{0};
  std::atomic<int> done{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t)
    clients.emplace_back([&] {
      for (int i = next++; i < uploads; i = next++) {
        bool wav = i % 2 == 0;
        outcomes[i] = upload_with_retry(
          port, recording_path(user, i + 1), wav ? clip.wav : clip.m4a,
          wav ? "clip.wav" : "clip.m4a", wav ? "audio/wav" : "audio/mp4");
        ++done;
      }
    });
  auto stop_deadline = clock_type::now() + 30s;
  while (done < 10 && clock_type::now() < stop_deadline)
    std::this_thread::sleep_for(2ms);
  ::kill(w1.pid(), SIGSTOP);
  constexpr auto frozen = 800ms;
  std::this_thread::sleep_for(frozen);
  auto done_at_kill = done.load();
  w1.kill_hard();
  for (auto& c : clients)
    c.join();
  INFO("uploads answered before the SIGKILL: " << done_at_kill);
  CHECK(done_at_kill < uploads);

  int overloaded = 0;
  auto slowest = 0ms;
  for (int i = 0; i < uploads; ++i) {
    INFO("upload " << i + 1 << ": " << outcomes[i].error);
    CHECK(outcomes[i].status == 201);
    overloaded += outcomes[i].overloaded;
    if (outcomes[i].overloaded == 0)
      slowest = std::max(slowest, outcomes[i].took);
  }
  INFO("503 answers retried: " << overloaded);
  // At least one upload waited on the frozen worker, whose decode could
  // only finish by being re-dispatched, and still got 201.
  INFO("slowest upload took " << slowest.count() << " ms");
  CHECK(slowest >= frozen / 2);

  // The serve node noticed the loss of both transcoders of the dead node.
  CHECK(wait_for_pool(port, 2, 1, 5s));
  CHECK(scrape_or_zero(port, "phonon_transcoder_deaths_total",
                       {{"kind", "remote"}})
        == 2);
  // Every upload was decoded exactly once (a re-dispatched job counts once).
  CHECK(scrape_or_zero(port, "phonon_conversions_total",
                       {{"format", "master"}, {"outcome", "ok"}})
        == uploads);

  auto metas = settle_all(port, user, uploads, 20s);
  for (int i = 0; i < uploads; ++i) {
    INFO("phrase " << i + 1 << " metadata " << metas[i].dump());
    REQUIRE(metas[i].is_object());
    CHECK(metas[i].value("status", "") == "ready");
    // WAV uploads need a conversion (on the surviving worker) for m4a.
    auto res = http_get(port, recording_path(user, i + 1) + "/m4a");
    REQUIRE(res.status == 200);
    double expected = i % 2 == 0 ? 1.5 : 1.0;
    CHECK(std::abs(decoded_seconds_of(res.body) - expected) < 0.2);
  }

  // A third worker joins late; then the last original worker goes away, so
  // only the late worker can run the conversions that follow.
  worker_process w3{cluster_port, 2};
  w3.start();
  REQUIRE(wait_for_pool(port, 4, 2));
  w2.kill_hard();
  REQUIRE(wait_for_pool(port, 2, 1));
  CHECK(scrape_or_zero(port, "phonon_transcoders", {{"kind", "local"}})
        == 0);
  auto flac_before = scrape_or_zero(port, "phonon_conversions_total",
                                    {{"format", "flac"}, {"outcome", "ok"}});
  CHECK(flac_before == 0);
  constexpr int late = 10;
  for (int phrase = 1; phrase <= late; ++phrase) {
    auto res = http_get(port, recording_path(user, phrase) + "/flac");
    INFO("flac of phrase " << phrase);
    REQUIRE(res.status == 200);
    auto info = probe_bytes(res.body);
    REQUIRE(info);
    CHECK(info->codec_name == "flac");
  }
  CHECK(scrape_or_zero(port, "phonon_conversions_total",
                       {{"format", "flac"}, {"outcome", "ok"}})
        == flac_before + late);
  CHECK(w3.running());
  CHECK(http_get(port, "/readyz").status == 200);
}

TEST_CASE("cluster: workers rejoin a restarted serve node by themselves",
          "[integration][cluster]") {
  const auto& clip = cluster_clips();
  auto cluster_port = pick_free_port();
  server_process srv;
  srv.start(serve_args(cluster_port));
  worker_process w1{cluster_port, 2};
  worker_process w2{cluster_port, 2};
  w1.start();
  w2.start();
  REQUIRE(wait_for_pool(srv.port(), 4, 2, 15s));

  constexpr int user = 4;
  auto first = upload_file(srv.port(), recording_path(user, 1), clip.m4a,
                           "clip.m4a", "audio/mp4");
  REQUIRE(first.status == 201);
  CHECK(wait_until_settled(srv.port(), recording_path(user, 1))
          .value("status", "")
        == "ready");

  // SIGTERM, then the same data dir and the same cluster port.
  auto status = srv.stop();
  INFO("serve node wait status " << status);
  CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 0));
  auto restarted = clock_type::now();
  srv.restart();
  auto port = srv.port();
  CHECK(wait_for_pool(port, 4, 2, 10s));
  auto rejoin_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                     clock_type::now() - restarted)
                     .count();
  INFO("workers rejoined after " << rejoin_ms << " ms");
  CHECK(w1.running());
  CHECK(w2.running());
  CHECK(http_get(port, "/readyz").status == 200);

  auto second = upload_file(port, recording_path(user, 2), clip.wav,
                            "clip.wav", "audio/wav");
  REQUIRE(second.status == 201);
  CHECK(wait_until_settled(port, recording_path(user, 2)).value("status", "")
        == "ready");
  // The recording from before the restart is still served, and converting
  // it works on the rejoined workers.
  auto mp3 = http_get(port, recording_path(user, 1) + "/mp3");
  REQUIRE(mp3.status == 200);
  CHECK(std::abs(decoded_seconds_of(mp3.body) - 1.0) < 0.2);
}

TEST_CASE("cluster: a decode that crashes remote transcoders fails the "
          "recording, not the workers",
          "[integration][cluster]") {
  const auto& clip = cluster_clips();
  auto cluster_port = pick_free_port();
  server_process srv;
  srv.start(serve_args(cluster_port));
  auto port = srv.port();
  std::vector<std::pair<std::string, std::string>> fault{
    {"PHONON_TEST_FAULT", "throw:master"}};
  worker_process f1{cluster_port, 2, fault};
  worker_process f2{cluster_port, 2, fault};
  f1.start();
  f2.start();
  REQUIRE(wait_for_pool(port, 4, 2, 15s));

  constexpr int user = 5;
  auto res = upload_file(port, recording_path(user, 1), clip.wav, "clip.wav",
                         "audio/wav");
  INFO("answer " << res.body);
  REQUIRE(res.status == 201);
  auto answer = res.json();
  REQUIRE(answer.is_object());
  CHECK(answer["data"].value("status", "") == "failed");
  CHECK_FALSE(answer["data"].value("error", "").empty());

  auto meta = http_get(port, recording_path(user, 1)).json();
  REQUIRE(meta.is_object());
  CHECK(meta.value("status", "") == "failed");
  CHECK_FALSE(meta.value("error", "").empty());
  CHECK(http_get(port, recording_path(user, 1) + "/wav").status == 422);

  // transcoder.max_attempts (3) transcoders died on that one job ...
  CHECK(scrape_or_zero(port, "phonon_transcoder_deaths_total",
                       {{"kind", "remote"}})
        == 3);
  CHECK(scrape_or_zero(port, "phonon_conversions_total",
                       {{"format", "master"}, {"outcome", "crashed"}})
        == 1);
  // ... but not their processes: they replaced the transcoders and
  // registered them again.
  CHECK(f1.running());
  CHECK(f2.running());
  CHECK(wait_for_pool(port, 4, 2, 5s));

  // The faulty workers leave (with them attached, dispatch would keep
  // picking them first); a healthy one joins and a new upload works.
  f1.stop();
  f2.stop();
  REQUIRE(wait_for_pool(port, 0, 0, 5s));
  worker_process good{cluster_port, 2};
  good.start();
  REQUIRE(wait_for_pool(port, 2, 1));
  auto ok = upload_file(port, recording_path(user, 2), clip.wav, "clip.wav",
                        "audio/wav");
  REQUIRE(ok.status == 201);
  CHECK(wait_until_settled(port, recording_path(user, 2)).value("status", "")
        == "ready");
  auto m4a = http_get(port, recording_path(user, 2) + "/m4a");
  REQUIRE(m4a.status == 200);
  CHECK(std::abs(decoded_seconds_of(m4a.body) - 1.5) < 0.2);
}

// With no transcoder anywhere, an upload is answered 503 + Retry-After at
// once (not after the request timeout) and nothing of it is kept.
TEST_CASE("cluster: an upload with no transcoder anywhere is refused with "
          "503 and not stored later",
          "[integration][cluster]") {
  const auto& clip = cluster_clips();
  auto cluster_port = pick_free_port();
  server_process srv;
  auto args = serve_args(cluster_port);
  args.insert(args.end(), {"--set", "server.request_timeout=2"});
  srv.start(args);
  auto port = srv.port();
  REQUIRE(http_get(port, "/readyz").status == 503);

  constexpr int user = 6;
  auto res = upload_file(port, recording_path(user, 1), clip.wav, "clip.wav",
                         "audio/wav");
  INFO("answer " << res.status << " " << res.body);
  CHECK(res.status == 503);
  CHECK(res.has("Retry-After"));

  // Whatever the answer was, a refused upload must not appear later.
  worker_process w{cluster_port, 1};
  w.start();
  REQUIRE(wait_for_pool(port, 1, 1));
  std::this_thread::sleep_for(1s);
  CHECK(http_get(port, recording_path(user, 1)).status == 404);
}

// A worker without the serve node's files gets a job's input in 256 KiB
// chunks (job_relay_actor.hpp). Killing it while they are on their way must
// neither wedge the serve node nor lose the upload nor leave files: the
// relay ends at once (it monitors the worker's job) and removes its output
// file, the job waits in the queue for the next transcoder, and a worker
// started on the dead one's folder removes what the dead one left.
TEST_CASE("cluster: a worker killed while a job's input is on its way "
          "wedges nothing and loses nothing",
          "[integration][cluster]") {
  namespace fs = std::filesystem;
  temp_dir dir{"phonon-it-transfer"};
  // 4 minutes of 48 kHz mono PCM: 22 MiB, 88 chunks.
  auto wav_path = dir / "long.wav";
  auto made = run("ffmpeg -nostdin -hide_banner -v error -y -f lavfi -i "
                  "anoisesrc=amplitude=0.2:duration=240:sample_rate=48000 "
                  "-ac 1 -c:a pcm_s16le "
                  + shell_quote(wav_path.string()));
  REQUIRE(made.ok());
  auto wav = read_file(wav_path);
  auto cluster_port = pick_free_port();
  server_process srv;
  auto args = serve_args(cluster_port);
  args.insert(args.end(), {"--set", "server.max_upload_size=64MiB", "--set",
                           "server.request_timeout=60"});
  srv.start(args);
  auto port = srv.port();
  worker_process w{cluster_port, 1};
  w.start();
  REQUIRE(wait_for_pool(port, 1, 1, 15s));
  auto job_dir = w.dir() / "data" / "audio" / "worker-tmp";
  auto job_input = [&]() -> std::optional<fs::path> {
    std::error_code ec;
    for (fs::directory_iterator it{job_dir, ec}, end; !ec && it != end;
         it.increment(ec))
      if (it->path().extension() == ".in")
        return it->path();
    return std::nullopt;
  };

  upload_outcome outcome;
  std::thread client{[&] {
    outcome = upload_with_retry(port, recording_path(7, 1), wav, "long.wav",
                                "audio/wav");
  }};
  // The job's input file on the worker appears when the relay opened the
  // job; once the first chunks are in it, freeze the worker and kill it.
  bool opened = false;
  for (auto until = clock_type::now() + 30s;
       !opened && clock_type::now() < until;
       std::this_thread::sleep_for(1ms)) {
    std::error_code size_ec;
    auto file = job_input();
    opened = file && fs::file_size(*file, size_ec) > 0 && !size_ec;
  }
  ::kill(w.pid(), SIGSTOP);
  std::error_code ec;
  auto in_file = job_input();
  auto arrived = in_file ? fs::file_size(*in_file, ec) : 0;
  w.kill_hard();
  INFO("input bytes on the worker when it was killed: "
       << arrived << " of " << wav.size());
  CHECK(opened);
  CHECK(arrived > 0);
  CHECK(arrived < wav.size());

  // The serve node noticed at once and still answers.
  CHECK(wait_for_pool(port, 0, 0, 10s));
  CHECK(http_get(port, "/readyz").status == 503);
  // The relay removed the output file of the lost attempt.
  auto stray_outputs = [&] {
    int n = 0;
    for (auto& e : fs::recursive_directory_iterator{srv.data_dir(), ec})
      if (e.path().filename().string().rfind("job-", 0) == 0)
        ++n;
    return n;
  };
  CHECK(stray_outputs() == 0);

  // The worker comes back on its folder: it sweeps the dead process's
  // files and takes the job, which waited in the queue.
  w.start();
  client.join();
  INFO("upload: " << outcome.error);
  CHECK(outcome.status == 201);
  auto meta = wait_until_settled(port, recording_path(7, 1), 20s);
  CHECK(meta.value("status", "") == "ready");
  auto flac = http_get(port, recording_path(7, 1) + "/flac");
  REQUIRE(flac.status == 200);
  CHECK(std::abs(decoded_seconds_of(flac.body) - 240.0) < 0.5);
  CHECK(wait_for([&] { return fs::is_empty(job_dir, ec); }, 5s));
  CHECK(stray_outputs() == 0);
  CHECK(w.log().find("swept files of dead remote jobs")
        != std::string::npos);
}

// The other side of the same transfer: a serve node that dies while a
// job's input is on its way must not leave the job's files on the worker
// (its remote job monitors the relay; the idle timeout is the backstop).
TEST_CASE("cluster: a serve node killed while a job's input is on its way "
          "leaves no files on the worker",
          "[integration][cluster]") {
  namespace fs = std::filesystem;
  temp_dir dir{"phonon-it-transfer"};
  auto wav_path = dir / "long.wav";
  auto made = run("ffmpeg -nostdin -hide_banner -v error -y -f lavfi -i "
                  "anoisesrc=amplitude=0.2:duration=240:sample_rate=48000 "
                  "-ac 1 -c:a pcm_s16le "
                  + shell_quote(wav_path.string()));
  REQUIRE(made.ok());
  auto wav = read_file(wav_path);
  auto cluster_port = pick_free_port();
  server_process srv;
  auto args = serve_args(cluster_port);
  args.insert(args.end(), {"--set", "server.max_upload_size=64MiB"});
  srv.start(args);
  auto port = srv.port();
  worker_process w{cluster_port, 1};
  w.start();
  REQUIRE(wait_for_pool(port, 1, 1, 15s));
  auto job_dir = w.dir() / "data" / "audio" / "worker-tmp";
  auto has_input = [&] {
    std::error_code ec;
    for (fs::directory_iterator it{job_dir, ec}, end; !ec && it != end;
         it.increment(ec))
      if (it->path().extension() == ".in" && it->file_size(ec) > 0 && !ec)
        return true;
    return false;
  };
  std::thread client{[&] {
    upload_with_retry(port, recording_path(8, 1), wav, "long.wav",
                      "audio/wav");
  }};
  bool opened = false;
  for (auto until = clock_type::now() + 30s;
       !opened && clock_type::now() < until;
       std::this_thread::sleep_for(1ms))
    opened = has_input();
  srv.kill_hard();
  client.join();
  CHECK(opened);
  std::error_code ec;
  CHECK(wait_for([&] { return fs::is_empty(job_dir, ec) && !ec; }, 10s));
  CHECK(w.running());
}
