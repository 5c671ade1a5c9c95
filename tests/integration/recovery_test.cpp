// Crash recovery and startup housekeeping of the real `phonon` binary.

#include <catch2/catch.hpp>

#include <filesystem>
#include <string>

#include "tests/integration/support.hpp"

using namespace phonon::integration;

TEST_CASE("an upload acknowledged right before a crash ends ready",
          "[integration]") {
  const auto& fx = audio_fixtures();
  // The faststart AAC fixture: its m4a is the original bytes, served even
  // before the master exists.
  auto src = read_file(fx.m4a_faststart);
  auto src_info = probe_file(fx.m4a_faststart);
  REQUIRE(src_info);
  server_process srv;
  srv.start({"--workers", "1"});
  const std::string target = "/audio/user/21/phrase/1";
  auto res = upload_file(srv.port(), target, src, "crash.m4a");
  // 201 promises durability: the original and, installed with it, the
  // master (the row is ready at once); kill before anything else runs.
  srv.kill_hard();
  REQUIRE(res.status == 201);
  srv.restart();
  auto meta = wait_until_settled(srv.port(), target);
  REQUIRE(meta.is_object());
  CHECK(meta.value("status", "") == "ready");
  CHECK(meta.value("sample_rate", 0) == src_info->sample_rate);
  CHECK(meta.value("channels", 0) == src_info->channels);
  CHECK(meta.value("duration_ms", 0.0)
        == Approx(src_info->duration * 1000).margin(100));
  auto m4a = http_get(srv.port(), target + "/m4a");
  REQUIRE(m4a.status == 200);
  CHECK(m4a.body == src);
  CHECK(decoded_seconds_of(m4a.body)
        == Approx(src_info->duration).margin(0.1));
  // The WAV master exists too: formats made from it decode in full.
  auto wav = http_get(srv.port(), target + "/wav");
  REQUIRE(wav.status == 200);
  CHECK(wav.header("Content-Type") == "audio/wav");
  auto info = probe_bytes(wav.body);
  REQUIRE(info);
  CHECK(info->codec_name == "pcm_s16le");
  CHECK(info->sample_rate == src_info->sample_rate);
  CHECK(decoded_seconds_of(wav.body) == Approx(src_info->duration).margin(0.1));
}

TEST_CASE("an upload committed processing right before a crash is "
          "finished by startup recovery",
          "[integration]") {
  // The master is not installed with the original (test hook: made 60 s
  // after the answer, the path a failed install takes), so the row is
  // committed `processing`; the crash comes before the master is written.
  const auto& fx = audio_fixtures();
  auto src_info = probe_file(fx.m4a);
  REQUIRE(src_info);
  server_process srv;
  srv.set_env({{"PHONON_TEST_MASTER_DELAY_MS", "60000"}});
  srv.start({"--workers", "1"});
  const std::string target = "/audio/user/23/phrase/1";
  auto res = upload_file(srv.port(), target, read_file(fx.m4a), "late.m4a");
  REQUIRE(res.status == 201);
  REQUIRE(res.json()["data"].value("status", "") == "processing");
  srv.kill_hard();
  srv.restart();
  auto meta = wait_until_settled(srv.port(), target);
  REQUIRE(meta.is_object());
  CHECK(meta.value("status", "") == "ready");
  CHECK(meta.value("sample_rate", 0) == src_info->sample_rate);
  auto wav = http_get(srv.port(), target + "/wav");
  REQUIRE(wav.status == 200);
  CHECK(decoded_seconds_of(wav.body) == Approx(src_info->duration).margin(0.1));
}

TEST_CASE("stray temp files are swept at startup, recordings are kept",
          "[integration]") {
  const auto& fx = audio_fixtures();
  server_process srv;
  srv.start();
  const std::string target = "/audio/user/22/phrase/1";
  REQUIRE(upload_file(srv.port(), target, read_file(fx.m4a)).status == 201);
  REQUIRE(wait_until_settled(srv.port(), target).value("status", "")
          == "ready");
  srv.stop();
  auto tmp = srv.data_dir() / "audio" / "tmp";
  REQUIRE(std::filesystem::is_directory(tmp));
  auto stray = tmp / "upload-42-stray";
  write_file(stray, "left over by a crash");
  auto stray_dir = tmp / "put-dir";
  std::filesystem::create_directories(stray_dir);
  write_file(stray_dir / "part", "x");
  srv.restart();
  CHECK_FALSE(std::filesystem::exists(stray));
  CHECK_FALSE(std::filesystem::exists(stray_dir));
  auto meta = http_get(srv.port(), target);
  REQUIRE(meta.status == 200);
  CHECK(meta.json().value("status", "") == "ready");
  CHECK(http_get(srv.port(), target + "/m4a").status == 200);
}
