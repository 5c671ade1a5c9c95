// Streaming transcoders against the real `phonon` binary: converting a
// 10-minute recording must not make the server's memory grow with the
// recording's length. The decode of the upload (original -> WAV master) and
// the first GET of a derived format (master -> mp3) go packet by packet
// between files, so the process's peak RSS (VmHWM) grows by a few frames
// and libav's buffers, not by the 55 MiB of the master's PCM.

#include <catch2/catch.hpp>

#include <chrono>
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

/// Uploads `file` to `target`, waits until ready and GETs its mp3.
/// Returns the mp3's size.
size_t upload_and_convert(uint16_t port, const std::string& target,
                          const fs::path& file) {
  auto up = upload_file(port, target, read_file(file), "long.flac",
                        "audio/flac");
  INFO("upload: " << up.body);
  REQUIRE(up.status == 201);
  require_ready(port, target, 120s);
  auto mp3 = http_get(port, target + "/mp3");
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
