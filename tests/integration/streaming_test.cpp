// Streaming transcoders against the real `phonon` binary: converting a
// 10-minute recording must not make the server's memory grow with the
// recording's length. The decode of the upload (original -> WAV master) and
// the first GET of a derived format (master -> mp3) go packet by packet
// between files, so the process's peak RSS (VmHWM) grows by a few frames
// and libav's buffers, not by the 55 MiB of the master's PCM. The same
// holds for a `phonon worker` that does not share the serve node's files:
// the input and the output travel in 256 KiB chunks (job_relay_actor.hpp),
// so neither the serve node nor the worker holds a whole file.

#include <catch2/catch.hpp>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "tests/integration/media_support.hpp"
#include "tests/integration/support.hpp"

using namespace phonon::integration;
namespace fs = std::filesystem;

namespace {

using namespace std::chrono_literals;

/// Bound on the growth of the server's peak RSS over the upload and the
/// first mp3 GET of a 10-minute 48 kHz mono recording, after a warm-up
/// conversion. The master alone is 55 MiB of PCM; holding it (or the
/// decoded PCM) once in memory passes the bound. What a streaming job
/// holds is a few frames, the demuxer's and muxer's I/O buffers and the
/// encoder's state (well under 8 MiB); the rest is headroom for allocator
/// arenas of threads that the warm-up did not touch yet.
constexpr uint64_t max_growth_kib = 24 * 1024;

/// Bound on the growth of each node's peak RSS when a remote worker without
/// the serve node's files converts the same 10-minute recording (after a
/// warm-up). Whole files in messages (the way before chunks) cost the serve
/// node the 16 MiB FLAC and the 55 MiB master in and out of CAF's
/// serialization buffers, several times over, and the worker the same: far
/// past the bound. In chunks each node holds at most a chunk or two
/// (256 KiB each, plus CAF's buffers of them) besides a streaming job's
/// few frames; the rest is the local bound's allocator headroom.
constexpr uint64_t max_remote_growth_kib = 24 * 1024;

/// VmHWM (peak resident set size) of process `pid`, in KiB.
uint64_t peak_rss_kib(pid_t pid) {
  std::ifstream in{"/proc/" + std::to_string(pid) + "/status"};
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmHWM:", 0) == 0)
      return std::stoull(line.substr(6));
  FAIL("no VmHWM in /proc/" << pid << "/status");
  return 0;
}

/// Makes the two recordings of these tests: a 20 s warm-up clip and ten
/// minutes of a tone with a little noise (so FLAC cannot shrink it to
/// nothing): mono 48 kHz, 55 MiB as PCM.
void make_recordings(const fs::path& warm, const fs::path& long_file) {
  make_media("-f lavfi -i sine=frequency=300:duration=20:sample_rate=48000 "
             "-ac 1 -c:a flac",
             warm);
  make_media("-f lavfi -i sine=frequency=440:duration=600:sample_rate=48000 "
             "-f lavfi -i anoisesrc=amplitude=0.01:duration=600:"
             "sample_rate=48000 -filter_complex amix=inputs=2 -ac 1 "
             "-c:a flac",
             long_file);
}

/// Settings of a serve node taking the 10-minute recording.
std::vector<std::string> long_recording_args() {
  // The recording is exactly the default limit long; allow a little more
  // so the last frame is not refused.
  return {"--set", "server.max_duration=660", "--set",
          "server.max_upload_size=64MiB", "--set",
          "server.request_timeout=120"};
}

/// A `phonon worker` joining 127.0.0.1:`cluster_port` without
/// cluster.shared_files, in its own dir (cluster_support.hpp's
/// worker_process, whose metric helpers clash with media_support.hpp's).
struct remote_worker {
  temp_dir dir{"phonon-stream-worker"};
  child_process child{"phonon worker", dir.path(), dir / "worker.log",
                      std::chrono::seconds{3}, 30};

  explicit remote_worker(uint16_t cluster_port) {
    child.spawn({phonon_binary(), "worker", "--join",
                 "127.0.0.1:" + std::to_string(cluster_port), "--workers",
                 "1"});
    child.await_log(
      [](const std::string& text) {
        return text.find("worker started") != std::string::npos;
      },
      "start", std::chrono::seconds{10}, 30);
  }

  /// Where the worker's remote jobs keep their files.
  fs::path job_dir() const {
    return dir.path() / "data" / "audio" / "worker-tmp";
  }
};

/// Uploads `file` to `target`, waits until ready and GETs its mp3.
/// Returns the mp3's size.
size_t upload_and_convert(uint16_t port, const std::string& target,
                          const fs::path& file) {
  auto up = upload_file(port, target, read_file(file), "long.flac",
                        "audio/flac");
  INFO("upload: " << up.body);
  REQUIRE(up.status == 201);
  require_ready(port, target, 120s);
  // The conversion takes seconds; on a busy machine more than the
  // client's 10 s read timeout. It goes on when the client gives up, and
  // the next GET joins it (or finds it cached).
  http_response mp3;
  for (int attempt = 1;; ++attempt) {
    try {
      mp3 = http_get(port, target + "/mp3");
      break;
    } catch (const std::exception& e) {
      if (attempt == 6)
        throw;
      WARN("GET " << target << "/mp3 attempt " << attempt << ": "
                  << e.what());
    }
  }
  INFO("mp3: " << mp3.body.substr(0, 200));
  REQUIRE(mp3.status == 200);
  return mp3.body.size();
}

} // namespace

TEST_CASE("converting a 10-minute recording keeps the peak RSS flat",
          "[integration][streaming]") {
  temp_dir dir{"phonon-stream"};
  auto warm = dir.path() / "warm.flac";
  auto long_file = dir.path() / "long.flac";
  make_media("-f lavfi -i sine=frequency=300:duration=20:sample_rate=48000 "
             "-ac 1 -c:a flac",
             warm);
  // Ten minutes of a tone with a little noise (so FLAC cannot shrink it to
  // nothing): mono 48 kHz, 55 MiB as PCM.
  make_media("-f lavfi -i sine=frequency=440:duration=600:sample_rate=48000 "
             "-f lavfi -i anoisesrc=amplitude=0.01:duration=600:"
             "sample_rate=48000 -filter_complex amix=inputs=2 -ac 1 "
             "-c:a flac",
             long_file);
  // In-process transcoders, and transcoder.isolate's child processes
  // (which open the same files: cluster.shared_files).
  auto isolate = GENERATE(false, true);
  INFO("transcoder.isolate=" << isolate);
  server_process srv;
  // The recording is exactly the default limit long; allow a little more
  // so the last frame is not refused.
  srv.start({"--set", "server.max_duration=660", "--set",
             "server.max_upload_size=64MiB", "--set",
             "server.request_timeout=120", "--set",
             std::string{"transcoder.isolate="} + (isolate ? "true" : "false")});
  auto port = srv.port();
  // Isolated children join a moment after the start.
  for (int i = 0; i < 150 && http_get(port, "/readyz").status != 200; ++i)
    std::this_thread::sleep_for(100ms);
  REQUIRE(http_get(port, "/readyz").status == 200);
  // Warm-up: every transcoder thread, libmp3lame and the allocator's arenas
  // have run once before the measurement starts.
  for (int i = 1; i <= 2; ++i)
    upload_and_convert(port, "/audio/user/1/phrase/" + std::to_string(i),
                       warm);
  auto before = peak_rss_kib(srv.pid());
  auto mp3_size = upload_and_convert(port, "/audio/user/1/phrase/9",
                                     long_file);
  auto after = peak_rss_kib(srv.pid());
  auto growth = after - before;
  WARN("isolate=" << isolate << " peak RSS before=" << before << " KiB after=" << after
                          << " KiB growth=" << growth << " KiB (bound "
                          << max_growth_kib << " KiB); mp3 bytes="
                          << mp3_size);
  // 64 kbit/s mono for ten minutes: about 4.8 MB.
  CHECK(mp3_size > 4'000'000);
  CHECK(growth <= max_growth_kib);
}

// (No colon late in a test name: Catch2 2.13 indents wrapped lines after
// it and loops forever when the rest does not fit.)
TEST_CASE("a remote worker without shared files converts a 10-minute "
          "recording in chunks, keeping both nodes' peak RSS flat, and the "
          "output equals a local conversion",
          "[integration][streaming][cluster]") {
  temp_dir dir{"phonon-stream-remote"};
  auto warm = dir.path() / "warm.flac";
  auto long_file = dir.path() / "long.flac";
  make_recordings(warm, long_file);
  const auto target = std::string{"/audio/user/1/phrase/9"};

  // The serve node has no transcoder of its own: every job goes to the
  // worker, which joins without cluster.shared_files (its own folder).
  auto cluster_port = pick_free_port();
  server_process srv;
  auto args = long_recording_args();
  args.insert(args.end(), {"--workers", "0", "--set",
                           "cluster.port=" + std::to_string(cluster_port)});
  srv.start(args);
  auto port = srv.port();
  remote_worker worker{cluster_port};
  for (int i = 0; i < 150 && http_get(port, "/readyz").status != 200; ++i)
    std::this_thread::sleep_for(100ms);
  REQUIRE(http_get(port, "/readyz").status == 200);
  for (int i = 1; i <= 2; ++i)
    upload_and_convert(port, "/audio/user/1/phrase/" + std::to_string(i),
                       warm);
  auto serve_before = peak_rss_kib(srv.pid());
  auto worker_before = peak_rss_kib(worker.child.pid());
  auto mp3_size = upload_and_convert(port, target, long_file);
  auto serve_growth = peak_rss_kib(srv.pid()) - serve_before;
  auto worker_growth = peak_rss_kib(worker.child.pid()) - worker_before;
  WARN("remote worker: serve node peak RSS before=" << serve_before
       << " KiB growth=" << serve_growth << " KiB; worker before="
       << worker_before << " KiB growth=" << worker_growth << " KiB (bound "
       << max_remote_growth_kib << " KiB each); mp3 bytes=" << mp3_size);
  CHECK(mp3_size > 4'000'000);
  CHECK(serve_growth <= max_remote_growth_kib);
  CHECK(worker_growth <= max_remote_growth_kib);
  // Both jobs were the worker's, and it removed its files after each.
  auto worker_tmp = worker.job_dir();
  CHECK(fs::exists(worker_tmp));
  for (int i = 0; i < 100 && !fs::is_empty(worker_tmp); ++i)
    std::this_thread::sleep_for(50ms);
  CHECK(fs::is_empty(worker_tmp));
  // The mp3 is the master's encode, so it carries both transfers (the
  // upload to the worker, the master back, the master to the worker, the
  // mp3 back). (The 55 MiB master itself is too large for the tests' HTTP
  // client.)
  auto remote_mp3 = http_get(port, target + "/mp3");
  REQUIRE(remote_mp3.status == 200);
  auto remote_meta = nlohmann::json::parse(http_get(port, target).body);
  CHECK(std::abs(decoded_seconds_of(remote_mp3.body) - 600.0) < 1.0);
  srv.stop();
  worker.child.stop();

  // The same conversions by a serve node's own transcoder, from file to
  // file: the chunks must have carried every byte, in order.
  server_process local;
  local.start(long_recording_args());
  upload_and_convert(local.port(), target, long_file);
  auto local_mp3 = http_get(local.port(), target + "/mp3");
  REQUIRE(local_mp3.status == 200);
  auto local_meta = nlohmann::json::parse(http_get(local.port(), target).body);
  INFO("remote " << remote_meta.dump() << "\nlocal " << local_meta.dump());
  CHECK(remote_meta.value("duration_ms", 0)
        == local_meta.value("duration_ms", -1));
  CHECK(remote_meta.value("sample_rate", 0)
        == local_meta.value("sample_rate", -1));
  CHECK(remote_mp3.body.size() == local_mp3.body.size());
  CHECK(remote_mp3.body == local_mp3.body);
}
