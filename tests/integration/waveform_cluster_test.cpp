// Waveforms made on a worker node: a serve node without local transcoders
// (`--workers 0`) hands the job to a `phonon worker`, which gets the master
// through the job relay and sends the peaks back; the answer must be what
// audiowaveform makes of the master (computed in the test).

#include <catch2/catch.hpp>

#include <chrono>
#include <string>

#include "tests/integration/cluster_support.hpp"
#include "tests/integration/support.hpp"
#include "tests/integration/waveform_support.hpp"

using namespace phonon::integration;
using namespace std::chrono_literals;

TEST_CASE("a waveform made by a worker node is the same as audiowaveform's",
          "[integration][waveform][cluster]") {
  temp_dir dir;
  auto wav = stereo_wav(dir);
  auto cluster_port = pick_free_port();
  server_process srv;
  srv.start({"--workers", "0", "--set",
             "cluster.port=" + std::to_string(cluster_port)});
  auto port = srv.port();
  worker_process worker{cluster_port, 1};
  worker.start();
  REQUIRE(wait_for_metric(port, "phonon_transcoders", {{"kind", "remote"}}, 1,
                          10s));
  const std::string target = "/audio/user/44/phrase/1";
  REQUIRE(upload_file(port, target, wav, "stereo.wav", "audio/wav").status
          == 201);
  auto meta = wait_until_settled(port, target);
  REQUIRE(meta.value("status", "") == "ready");
  auto master = parse_wav(http_get(port, target + "/wav").body);
  check_waveform_json(http_get(port, target + "/waveform.json"), master,
                      {"", master.rate / 100, false});
  check_waveform_dat(
    http_get(port, target + "/waveform.dat?samples_per_pixel=50&channels=mono"),
    master, {"samples_per_pixel=50&channels=mono", 50, true});
  // Both ran on the worker: this node has no transcoder of its own.
  CHECK(scrape_or_zero(port, "phonon_conversions_total",
                       {{"format", "waveform"}, {"outcome", "ok"}})
        == 2);
  CHECK(scrape_or_zero(port, "phonon_transcoders", {{"kind", "local"}}) == 0);
}
