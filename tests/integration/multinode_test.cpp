// Several HTTP nodes on one bucket and one database, against the real
// binaries: two `phonon serve` nodes (A with no transcoders of its own and
// `phonon worker` processes joined to it, B with one local transcoder)
// share a MariaDB database (scripts/with-mysql.sh) and an S3 bucket
// (s3rver on loopback, started here); nothing else is shared: each node
// has its own data folder. The workers get the same bucket settings, so
// they read and write the bucket themselves (bucket jobs); the last tests
// show that no job byte then passes through the serve node, that a worker
// killed mid-job loses nothing, and what a worker with other bucket
// settings does.
//
// "[.multinode]" needs MySQL: hidden from a run without filter, selected by
// "[multinode]" under scripts/with-mysql.sh (ctest's `multinode`). It
// FAILS without APP_DATABASE_DRIVER=mysql, never skips.

#include <catch2/catch.hpp>

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "persistence/s3/client.hpp"
#include "tests/integration/cluster_support.hpp"
#include "tests/integration/s3rver_support.hpp"
#include "tests/integration/support.hpp"

using namespace phonon::integration;
using namespace std::chrono_literals;

namespace {

using clock_type = std::chrono::steady_clock;

std::string recording_path(int user, int phrase) {
  return "/audio/user/" + std::to_string(user) + "/phrase/"
         + std::to_string(phrase);
}

/// The S3 settings of every node: the secret only from the environment.
env_list s3_env(const s3rver& s3) {
  return {{"APP_STORAGE_TYPE", "s3"},
          {"APP_STORAGE_S3_ENDPOINT", s3.origin()},
          {"APP_STORAGE_S3_BUCKET", s3rver_bucket},
          {"APP_STORAGE_S3_PREFIX", "deployment"},
          {"APP_STORAGE_S3_ACCESS_KEY", s3rver_key},
          {"APP_STORAGE_S3_SECRET_KEY", s3rver_key}};
}

/// `env` with `extra`'s entries replacing (or added to) its own.
env_list with(env_list env, const env_list& extra) {
  for (const auto& [name, value] : extra) {
    auto i = std::find_if(env.begin(), env.end(),
                          [&](const auto& e) { return e.first == name; });
    if (i != env.end())
      i->second = value;
    else
      env.emplace_back(name, value);
  }
  return env;
}

/// Bytes of remote jobs node `port` relayed in chunks (both directions).
double relayed_bytes(uint16_t port) {
  return scrape_or_zero(port, "phonon_job_relay_bytes_total",
                        {{"direction", "in"}})
         + scrape_or_zero(port, "phonon_job_relay_bytes_total",
                          {{"direction", "out"}});
}

/// Jobs node `port` sent to workers in `mode` ("bucket", "chunks").
double remote_jobs(uint16_t port, const std::string& mode,
                   const std::string& outcome = "dispatched") {
  return scrape_or_zero(port, "phonon_remote_jobs_total",
                        {{"mode", mode}, {"outcome", outcome}});
}

/// How many times `needle` occurs in `text`.
size_t count_of(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (auto pos = text.find(needle); pos != std::string::npos;
       pos = text.find(needle, pos + needle.size()))
    ++n;
  return n;
}

void require_mysql() {
  const char* driver = std::getenv("APP_DATABASE_DRIVER");
  if (driver == nullptr || std::string{driver} != "mysql")
    FAIL("[multinode] needs a shared MySQL database: run it as "
         "scripts/with-mysql.sh with APP_DATABASE_DRIVER=mysql");
}

/// Node A (no local transcoders, cluster.port published, `workers` worker
/// processes joined) and node B (one local transcoder, cluster.join
/// pointing at A), on one database and one bucket. Both keep a read model
/// (storage.read_model_entries), which only the change events between the
/// nodes keep current: a node that did not hear of a change would serve
/// the old version from it.
struct deployment {
  s3rver s3;
  uint16_t cluster_port = pick_free_port();
  server_process a;
  server_process b;
  std::vector<std::unique_ptr<worker_process>> workers;

  /// `worker_env` is added to the workers' bucket settings (e.g.
  /// PHONON_TEST_FAULT).
  explicit deployment(int worker_count = 1, const env_list& worker_env = {}) {
    require_mysql();
    a.set_env(s3_env(s3));
    a.start({"--workers", "0", "--set",
             "cluster.port=" + std::to_string(cluster_port), "--set",
             "storage.read_model_entries=1024"});
    for (int i = 0; i < worker_count; ++i) {
      workers.push_back(
        std::make_unique<worker_process>(cluster_port, 2,
                                         with(s3_env(s3), worker_env)));
      workers.back()->start();
    }
    REQUIRE(wait_for_metric(a.port(), "phonon_transcoders",
                            {{"kind", "remote"}}, 2.0 * worker_count, 15s));
    b.share_storage_with(a);
    b.set_env(s3_env(s3));
    b.start({"--workers", "1", "--set",
             "cluster.join=127.0.0.1:" + std::to_string(cluster_port), "--set",
             "storage.read_model_entries=1024"});
    REQUIRE(wait_for_metric(a.port(), "phonon_cluster_nodes",
                            {{"kind", "serve"}}, 1, 15s));
    REQUIRE(wait_for_metric(b.port(), "phonon_cluster_nodes",
                            {{"kind", "serve"}}, 1, 15s));
    REQUIRE(http_get(a.port(), "/readyz").status == 200);
    REQUIRE(http_get(b.port(), "/readyz").status == 200);
  }
};

/// Polls GET `target` on `port` until `pred(response)` holds or `limit`
/// passed; returns how long it took, or -1 ms when it never held.
template <class Pred>
std::chrono::milliseconds time_until(uint16_t port, const std::string& target,
                                     Pred pred,
                                     std::chrono::milliseconds limit) {
  auto start = clock_type::now();
  while (clock_type::now() - start < limit) {
    if (pred(http_get(port, target)))
      return std::chrono::duration_cast<std::chrono::milliseconds>(
        clock_type::now() - start);
    std::this_thread::sleep_for(20ms);
  }
  return -1ms;
}

} // namespace

TEST_CASE("several nodes: an upload on A is served by B; a replacement on B "
          "and a delete on A are seen by the other node within 1 s",
          "[integration][.multinode]") {
  deployment d;
  const auto& fx = audio_fixtures();
  auto m4a = read_file(fx.m4a);
  auto wav = read_file(fx.wav);
  auto path = recording_path(7, 1);

  // Upload on A; B serves the same bytes (from the bucket: B's folder has
  // nothing of it).
  REQUIRE(upload_file(d.a.port(), path, m4a).status == 201);
  auto meta = wait_until_settled(d.a.port(), path, 20s);
  REQUIRE(meta.value("status", "") == "ready");
  auto from_b = http_get(d.b.port(), path + "/wav");
  REQUIRE(from_b.status == 200);
  auto from_a = http_get(d.a.port(), path + "/wav");
  REQUIRE(from_a.status == 200);
  CHECK(from_a.body.size() == from_b.body.size());
  CHECK((from_a.body == from_b.body));
  CHECK(from_a.header("ETag") == from_b.header("ETag"));
  auto meta_b = http_get(d.b.port(), path);
  REQUIRE(meta_b.status == 200);
  CHECK(nlohmann::json::parse(meta_b.body).value("size_bytes", 0)
        == static_cast<int64_t>(m4a.size()));

  // Replace on B: A serves the new version within 1 s of B's answer.
  REQUIRE(upload_file(d.b.port(), path, wav, "new.wav", "audio/wav", "PUT")
            .status
          == 200);
  auto seen = time_until(
    d.a.port(), path,
    [&](const http_response& r) {
      return r.status == 200
             && nlohmann::json::parse(r.body).value("original_filename", "")
                  == "new.wav";
    },
    5s);
  INFO("A saw the replacement after " << seen.count() << " ms");
  CHECK(seen >= 0ms);
  CHECK(seen <= 1000ms);
  REQUIRE(wait_until_settled(d.b.port(), path, 20s).value("status", "")
          == "ready");
  auto new_a = http_get(d.a.port(), path + "/wav");
  auto new_b = http_get(d.b.port(), path + "/wav");
  REQUIRE(new_a.status == 200);
  CHECK((new_a.body == new_b.body));
  CHECK((new_a.body != from_a.body));

  // Delete on A: B answers 404 within 1 s, for the metadata and the audio.
  REQUIRE(http_request(d.a.port(), "DELETE", path).status == 204);
  auto gone = time_until(
    d.b.port(), path + "/wav",
    [](const http_response& r) { return r.status == 404; }, 5s);
  INFO("B saw the delete after " << gone.count() << " ms");
  CHECK(gone >= 0ms);
  CHECK(gone <= 1000ms);
  CHECK(http_get(d.b.port(), path).status == 404);
}

TEST_CASE("several nodes: 16 parallel first GETs of one mp3 over both nodes "
          "return identical bytes",
          "[integration][.multinode]") {
  deployment d;
  auto path = recording_path(8, 1);
  REQUIRE(upload_file(d.a.port(), path, read_file(audio_fixtures().m4a))
            .status
          == 201);
  REQUIRE(wait_until_settled(d.a.port(), path, 20s).value("status", "")
          == "ready");
  std::vector<http_response> answers(16);
  std::vector<std::thread> clients;
  for (size_t i = 0; i < answers.size(); ++i)
    clients.emplace_back([&, i] {
      auto port = i % 2 == 0 ? d.a.port() : d.b.port();
      try {
        answers[i] = http_get(port, path + "/mp3");
      } catch (const std::exception&) {
        answers[i].status = 0;
      }
    });
  for (auto& t : clients)
    t.join();
  std::set<std::string> bodies;
  for (auto& r : answers) {
    CHECK(r.status == 200);
    bodies.insert(r.body);
  }
  CHECK(bodies.size() == 1);
  REQUIRE_FALSE(bodies.begin()->empty());
  auto info = probe_bytes(*bodies.begin());
  REQUIRE(info);
  CHECK(info->codec_name == "mp3");
}

TEST_CASE("several nodes: a worker SIGKILLed while uploads run through both "
          "nodes loses nothing",
          "[integration][.multinode]") {
  deployment d{2};
  auto wav = read_file(audio_fixtures().wav);
  constexpr int uploads = 24;
  std::vector<unsigned> status(uploads, 0);
  std::atomic<int> next{0}, done{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t)
    clients.emplace_back([&] {
      for (int i = next++; i < uploads; i = next++) {
        auto port = i % 2 == 0 ? d.a.port() : d.b.port();
        for (int attempt = 0; attempt < 8; ++attempt) {
          try {
            status[i] = upload_file(port, recording_path(9, i + 1), wav,
                                    "clip.wav", "audio/wav")
                          .status;
          } catch (const std::exception&) {
            status[i] = 0;
          }
          if (status[i] != 503)
            break;
          std::this_thread::sleep_for(1s);
        }
        ++done;
      }
    });
  auto deadline = clock_type::now() + 30s;
  while (done < 4 && clock_type::now() < deadline)
    std::this_thread::sleep_for(2ms);
  d.workers.front()->kill_hard();
  for (auto& t : clients)
    t.join();
  for (int i = 0; i < uploads; ++i) {
    INFO("upload " << i + 1);
    CHECK(status[i] == 201);
    if (status[i] != 201)
      continue;
    auto meta = wait_until_settled(d.b.port(), recording_path(9, i + 1), 30s);
    CHECK(meta.value("status", "") == "ready");
  }
}

TEST_CASE("several nodes: PUTs of one key on both nodes at once, and a DELETE "
          "on one racing a PUT on the other, never lose what was committed",
          "[integration][.multinode]") {
  deployment d;
  const auto& fx = audio_fixtures();
  auto m4a = read_file(fx.m4a);
  auto wav = read_file(fx.wav);
  // Every node serves every format of whatever the row names: a format
  // made now needs the row's master in the bucket (the other node has no
  // copy of it), and the original must still be there.
  auto check_served = [&](const std::string& path, int round) {
    auto meta = wait_until_settled(d.a.port(), path, 30s);
    INFO("round " << round << " metadata " << meta.dump());
    REQUIRE(meta.value("status", "") == "ready");
    for (auto port : {d.a.port(), d.b.port()})
      for (const char* format : {"ogg", "flac"}) {
        INFO("port " << port << " format " << format);
        CHECK(http_get(port, path + "/" + format).status == 200);
      }
  };
  for (int round = 1; round <= 6; ++round) {
    auto path = recording_path(10, round);
    REQUIRE(upload_file(d.a.port(), path, m4a).status == 201);
    unsigned on_a = 0, on_b = 0;
    std::thread ta{[&] {
      on_a = upload_file(d.a.port(), path, m4a, "a.m4a", "audio/mp4", "PUT")
               .status;
    }};
    std::thread tb{[&] {
      on_b = upload_file(d.b.port(), path, wav, "b.wav", "audio/wav", "PUT")
               .status;
    }};
    ta.join();
    tb.join();
    REQUIRE(on_a == 200);
    REQUIRE(on_b == 200);
    check_served(path, round);
  }
  for (int round = 1; round <= 6; ++round) {
    auto path = recording_path(11, round);
    REQUIRE(upload_file(d.a.port(), path, m4a).status == 201);
    REQUIRE(wait_until_settled(d.a.port(), path, 20s).value("status", "")
            == "ready");
    unsigned deleted = 0, put = 0;
    std::thread ta{[&] {
      deleted = http_request(d.a.port(), "DELETE", path).status;
    }};
    std::thread tb{[&] {
      put = upload_file(d.b.port(), path, wav, "b.wav", "audio/wav", "PUT")
              .status;
    }};
    ta.join();
    tb.join();
    INFO("round " << round << " DELETE " << deleted << " PUT " << put);
    CHECK((deleted == 204 || deleted == 404));
    CHECK((put == 200 || put == 201));
    // Whichever came last, a recording that exists is whole.
    if (http_get(d.b.port(), path).status == 200)
      check_served(path, round);
  }
}

/// The files named `name` anywhere under `dir`.
size_t files_named(const std::filesystem::path& dir, const std::string& name) {
  size_t n = 0;
  std::error_code ec;
  for (std::filesystem::recursive_directory_iterator
         i{dir, std::filesystem::directory_options::skip_permission_denied,
           ec},
       end;
       i != end; i.increment(ec))
    if (i->path().filename() == name)
      ++n;
  return n;
}

TEST_CASE("several nodes: a worker with the bucket's settings converts from "
          "and to the bucket; no job byte passes through the serve node, and "
          "the bytes equal a local conversion",
          "[integration][.multinode]") {
  deployment d;
  auto m4a = read_file(audio_fixtures().m4a);
  // Two recordings of the same audio: one converted by the worker for A,
  // one by B's local transcoder (B would serve the worker's object of the
  // same recording from the bucket instead of converting it).
  auto by_worker = recording_path(12, 1);
  auto by_b = recording_path(12, 2);
  auto uploaded = upload_file(d.a.port(), by_worker, m4a);
  REQUIRE(uploaded.status == 201);
  // The upload's decode was a bucket job too: A stored the original in
  // the bucket first, the worker decoded it from there and stored the
  // master there itself; A checked the master's size in the bucket and
  // committed the row ready, without ever holding the master's bytes.
  CHECK(uploaded.json()["data"].value("status", "") == "ready");
  CHECK(remote_jobs(d.a.port(), "bucket") == 1);
  CHECK(remote_jobs(d.a.port(), "chunks") == 0);
  CHECK(relayed_bytes(d.a.port()) == 0);
  CHECK(d.workers.front()->log().find("target=master")
        != std::string::npos);
  CHECK(files_named(d.a.data_dir(), "master.wav") == 0);
  REQUIRE(upload_file(d.b.port(), by_b, m4a).status == 201);
  REQUIRE(wait_until_settled(d.a.port(), by_worker, 20s).value("status", "")
          == "ready");
  REQUIRE(wait_until_settled(d.b.port(), by_b, 20s).value("status", "")
          == "ready");

  auto relayed_before = relayed_bytes(d.a.port());
  auto bucket_before = remote_jobs(d.a.port(), "bucket");
  auto chunks_before = remote_jobs(d.a.port(), "chunks");
  auto local_before = scrape_or_zero(d.b.port(), "phonon_conversions_total",
                                     {{"format", "mp3"}, {"outcome", "ok"}});
  auto from_worker = http_get(d.a.port(), by_worker + "/mp3");
  REQUIRE(from_worker.status == 200);
  auto from_b = http_get(d.b.port(), by_b + "/mp3");
  REQUIRE(from_b.status == 200);

  // One bucket job on A, no chunk, not a byte relayed.
  CHECK(remote_jobs(d.a.port(), "bucket") == bucket_before + 1);
  CHECK(remote_jobs(d.a.port(), "chunks") == chunks_before);
  CHECK(relayed_bytes(d.a.port()) == relayed_before);
  // The worker did it from and to the bucket (its log says so), and B
  // converted its recording itself.
  auto worker_log = d.workers.front()->log();
  INFO(d.workers.front()->log_tail());
  // Two jobs: the upload's decode (target=master) and the mp3.
  CHECK(count_of(worker_log, "bucket job done") == 2);
  CHECK(worker_log.find("target=mp3") != std::string::npos);
  CHECK(scrape_or_zero(d.b.port(), "phonon_conversions_total",
                       {{"format", "mp3"}, {"outcome", "ok"}})
        == local_before + 1);

  // Byte-identical to the local conversion (bit-exact encoders), and mp3.
  REQUIRE_FALSE(from_worker.body.empty());
  CHECK(from_worker.body.size() == from_b.body.size());
  CHECK((from_worker.body == from_b.body));
  auto info = probe_bytes(from_worker.body);
  REQUIRE(info);
  CHECK(info->codec_name == "mp3");
  // B serves the worker's object (from the bucket) with the same bytes.
  auto worker_object_on_b = http_get(d.b.port(), by_worker + "/mp3");
  REQUIRE(worker_object_on_b.status == 200);
  CHECK((worker_object_on_b.body == from_worker.body));
  // The worker kept no files of the job.
  auto tmp = d.workers.front()->dir() / "data/audio/worker-tmp";
  CHECK(wait_for(
    [&] {
      std::error_code ec;
      return std::filesystem::is_empty(tmp, ec) || ec;
    },
    2s));
}

TEST_CASE("several nodes: a bucket worker SIGKILLed mid-job loses nothing",
          "[integration][.multinode]") {
  // Every mp3 takes 1.5 s on the workers, so the kill lands while the
  // workers' four transcoders each run one.
  deployment d{2, {{"PHONON_TEST_FAULT", "slow:mp3:1500"}}};
  auto m4a = read_file(audio_fixtures().m4a);
  constexpr int recordings = 4;
  for (int i = 1; i <= recordings; ++i) {
    REQUIRE(upload_file(d.a.port(), recording_path(13, i), m4a).status
            == 201);
    REQUIRE(wait_until_settled(d.a.port(), recording_path(13, i), 20s)
              .value("status", "")
            == "ready");
  }
  auto relayed_before = relayed_bytes(d.a.port());
  auto deaths_before = scrape_or_zero(d.a.port(),
                                      "phonon_transcoder_deaths_total",
                                      {{"kind", "remote"}});
  std::vector<http_response> answers(recordings);
  std::vector<std::thread> clients;
  for (int i = 0; i < recordings; ++i)
    clients.emplace_back([&, i] {
      try {
        answers[i] = http_get(d.a.port(), recording_path(13, i + 1) + "/mp3");
      } catch (const std::exception&) {
        answers[i].status = 0;
      }
    });
  // All four jobs are out (one per transcoder) before the kill.
  CHECK(wait_for(
    [&] { return remote_jobs(d.a.port(), "bucket") >= recordings; }, 5s));
  std::this_thread::sleep_for(500ms);
  d.workers.front()->kill_hard();
  for (auto& t : clients)
    t.join();
  // The killed worker's jobs ran again on the other worker: every GET
  // answered, with an mp3 equal to a local conversion of the same audio.
  auto local = recording_path(13, 99);
  REQUIRE(upload_file(d.b.port(), local, m4a).status == 201);
  REQUIRE(wait_until_settled(d.b.port(), local, 20s).value("status", "")
          == "ready");
  auto expected = http_get(d.b.port(), local + "/mp3");
  REQUIRE(expected.status == 200);
  for (int i = 0; i < recordings; ++i) {
    INFO("recording " << i + 1);
    CHECK(answers[i].status == 200);
    CHECK((answers[i].body == expected.body));
    // And B serves the same bytes from the bucket: whole objects only.
    auto on_b = http_get(d.b.port(), recording_path(13, i + 1) + "/mp3");
    CHECK(on_b.status == 200);
    CHECK((on_b.body == expected.body));
  }
  CHECK(scrape_or_zero(d.a.port(), "phonon_transcoder_deaths_total",
                       {{"kind", "remote"}})
        > deaths_before);
  CHECK(relayed_bytes(d.a.port()) == relayed_before);
}

TEST_CASE("several nodes: a worker whose bucket refuses it does not start; "
          "one with another prefix takes its jobs in chunks",
          "[integration][.multinode]") {
  deployment d;
  // A wrong secret: the bucket refuses the worker, which says so and exits.
  const std::string secret = "not-the-S3RVER-secret-9f2c";
  worker_process refused{d.cluster_port, 1,
                         with(s3_env(d.s3),
                              {{"APP_STORAGE_S3_SECRET_KEY", secret}})};
  CHECK_THROWS(refused.start());
  CHECK(refused.log().find("the bucket refused this node")
        != std::string::npos);
  CHECK(refused.log().find(secret) == std::string::npos);

  // Another prefix: the worker joins, A does not trust its bucket (it
  // logs why) and sends it the bytes in chunks.
  worker_process other{d.cluster_port, 2,
                       with(s3_env(d.s3),
                            {{"APP_STORAGE_S3_PREFIX", "elsewhere"}})};
  other.start();
  REQUIRE(wait_for_metric(d.a.port(), "phonon_transcoders",
                          {{"kind", "remote"}}, 4, 15s));
  d.workers.front()->stop();
  REQUIRE(wait_for_metric(d.a.port(), "phonon_transcoders",
                          {{"kind", "remote"}}, 2, 15s));
  CHECK(wait_for(
    [&] {
      return d.a.log().find("names another bucket than this node's")
             != std::string::npos;
    },
    2s));
  auto path = recording_path(14, 1);
  REQUIRE(upload_file(d.a.port(), path, read_file(audio_fixtures().m4a))
            .status
          == 201);
  REQUIRE(wait_until_settled(d.a.port(), path, 20s).value("status", "")
          == "ready");
  auto relayed_before = relayed_bytes(d.a.port());
  auto chunks_before = remote_jobs(d.a.port(), "chunks");
  auto bucket_before = remote_jobs(d.a.port(), "bucket");
  auto ogg = http_get(d.a.port(), path + "/ogg");
  REQUIRE(ogg.status == 200);
  CHECK(remote_jobs(d.a.port(), "chunks") == chunks_before + 1);
  CHECK(remote_jobs(d.a.port(), "bucket") == bucket_before);
  CHECK(relayed_bytes(d.a.port()) > relayed_before + ogg.body.size());
  CHECK(other.log().find("bucket job") == std::string::npos);
}

TEST_CASE("several nodes: a bucket job that fails for the bucket's sake runs "
          "again in chunks and the GET is answered",
          "[integration][.multinode]") {
  deployment d;
  auto path = recording_path(15, 1);
  REQUIRE(upload_file(d.a.port(), path, read_file(audio_fixtures().m4a))
            .status
          == 201);
  REQUIRE(wait_until_settled(d.a.port(), path, 20s).value("status", "")
          == "ready");
  // A makes its copy of the master (the worker stored it), which it keeps
  // when the master then leaves the bucket behind A's back: the worker
  // cannot fetch the job's input, A can still convert it.
  REQUIRE(http_get(d.a.port(), path + "/wav").status == 200);
  REQUIRE(files_named(d.a.data_dir(), "master.wav") == 1);
  namespace s3 = phonon::persistence::s3;
  s3::settings cfg;
  cfg.endpoint = d.s3.origin();
  cfg.bucket = s3rver_bucket;
  cfg.prefix = "deployment";
  cfg.access_key = s3rver_key;
  cfg.secret_key = s3rver_key;
  s3::client bucket{cfg};
  auto objects = bucket.list("15/1/");
  auto master = std::find_if(objects.begin(), objects.end(), [](auto& o) {
    return o.key.size() > 11
           && o.key.compare(o.key.size() - 11, 11, "/master.wav") == 0;
  });
  REQUIRE(master != objects.end());
  bucket.remove(master->key);

  auto relayed_before = relayed_bytes(d.a.port());
  auto fallbacks_before = remote_jobs(d.a.port(), "bucket", "fallback");
  auto chunks_before = remote_jobs(d.a.port(), "chunks");
  auto flac = http_get(d.a.port(), path + "/flac");
  CHECK(flac.status == 200);
  CHECK(remote_jobs(d.a.port(), "bucket", "fallback") == fallbacks_before + 1);
  CHECK(remote_jobs(d.a.port(), "chunks") == chunks_before + 1);
  CHECK(relayed_bytes(d.a.port()) > relayed_before);
  CHECK(d.workers.front()->log().find("bucket job failed")
        != std::string::npos);
  CHECK(d.a.log().find("bucket job failed, running it without the bucket")
        != std::string::npos);
  // The worker kept nothing of the failed job.
  auto tmp = d.workers.front()->dir() / "data/audio/worker-tmp";
  CHECK(wait_for(
    [&] {
      std::error_code ec;
      return std::filesystem::is_empty(tmp, ec) || ec;
    },
    2s));
}
