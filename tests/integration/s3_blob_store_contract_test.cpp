// The blob-store contract (tests/contract/blob_store_contract.hpp) on S3:
// s3_blob_store against s3rver on loopback (one server per case), each node
// view with its own local folder. The same cases run on local files in
// tests/unit/persistence/local_blob_store_contract_test.cpp. Then what only
// the S3 store has: a worker's objects without local copies.

#include "tests/contract/blob_store_contract.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "persistence/s3_blob_store.hpp"
#include "tests/integration/s3rver_support.hpp"

namespace {

namespace p = phonon::persistence;
using phonon::integration::s3rver;

p::s3::settings bucket_of(const s3rver& srv) {
  p::s3::settings cfg;
  cfg.endpoint = srv.origin();
  cfg.bucket = phonon::integration::s3rver_bucket;
  cfg.prefix = "contract";
  cfg.access_key = phonon::integration::s3rver_key;
  cfg.secret_key = phonon::integration::s3rver_key;
  cfg.part_size = 5 * 1024 * 1024;
  return cfg;
}

struct s3_backend : phonon::contract::blob_store_backend {
  s3rver srv;
  phonon::integration::temp_dir dir{"phonon-s3-contract"};
  int nodes = 0;

  s3_backend() {
    // s3rver 4.0.4 writes an object in place (createWriteStream in
    // lib/stores/filesystem.js putContent): concurrent PUTs of one key
    // interleave into a mix of their bodies (seen here: a 205,000-byte
    // object equal to no writer's). S3 itself makes each PUT atomic.
    // Phonon writes one key from one node one write at a time (the storage
    // actor), and from two nodes only for a derived format, whose bytes
    // are equal.
    same_key_writers_atomic = false;
    store = other();
  }

  std::shared_ptr<p::blob_store> other() override {
    auto base = dir.path() / ("node" + std::to_string(++nodes));
    return std::make_shared<p::s3_blob_store>(bucket_of(srv), base);
  }
};

} // namespace

PHONON_BLOB_STORE_CONTRACT(s3_backend, "s3 blob store contract",
                           "[s3][blob-contract]")

// -- objects without local copies (a worker's bucket jobs) ----------------------

TEST_CASE("s3 blob store: a worker's put_object and get_object move whole "
          "objects without local copies; identity names endpoint, bucket "
          "and prefix",
          "[s3]") {
  s3rver srv;
  phonon::integration::temp_dir dir{"phonon-s3-objects"};
  auto cfg = bucket_of(srv);
  p::s3_blob_store worker{cfg, dir.path() / "worker"};
  p::s3_blob_store serve{cfg, dir.path() / "serve"};
  CHECK(worker.identity() == srv.origin() + " phonon/contract/");
  CHECK(worker.identity() == serve.identity());
  auto other_cfg = cfg;
  other_cfg.prefix = "elsewhere/";
  CHECK(p::s3_blob_store{other_cfg, dir.path() / "other"}.identity()
        != worker.identity());

  // The master a serve node stored, fetched by the worker into its file.
  serve.put_bytes({1, 2, 3, "original"}, "orig");
  serve.put_bytes({1, 2, 3, "master.wav"}, std::string(70000, 'w'));
  auto in = dir.path() / "job.in";
  worker.get_object({1, 2, 3, "master.wav"}, in);
  std::ifstream f{in, std::ios::binary};
  std::string got{std::istreambuf_iterator<char>{f}, {}};
  CHECK(got == std::string(70000, 'w'));
  // The worker's output, stored under its key: whole in the bucket, no
  // copy on the worker, the file left to the worker.
  auto out = dir.path() / "job.out";
  std::ofstream{out, std::ios::binary} << "mp3 bytes";
  CHECK(worker.put_object({1, 2, 3, "cache/mp3"}, out) == 9);
  CHECK(std::filesystem::exists(out));
  CHECK_FALSE(worker.local().stat({1, 2, 3, "cache/mp3"}));
  CHECK_FALSE(worker.local().stat({1, 2, 3, "master.wav"}));
  // The serve node has no copy either until it stats (claims) it.
  CHECK_FALSE(serve.local().stat({1, 2, 3, "cache/mp3"}));
  auto info = serve.stat({1, 2, 3, "cache/mp3"});
  REQUIRE(info);
  CHECK(info->size == 9);
  CHECK(serve.read({1, 2, 3, "cache/mp3"}) == "mp3 bytes");
  // A missing input is not_found.
  try {
    worker.get_object({1, 2, 3, "cache/flac"}, dir.path() / "missing.in");
    FAIL("a missing object was fetched");
  } catch (const p::s3::error& e) {
    CHECK(e.code() == p::s3::errc::not_found);
  }
}
