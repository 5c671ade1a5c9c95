// The blob-store contract (tests/contract/blob_store_contract.hpp) on S3:
// s3_blob_store against s3rver on loopback (one server per case), each node
// view with its own local folder. The same cases run on local files in
// tests/unit/persistence/local_blob_store_contract_test.cpp.

#include "tests/contract/blob_store_contract.hpp"

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
