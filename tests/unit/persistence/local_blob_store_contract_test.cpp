// The blob-store contract (tests/contract/blob_store_contract.hpp) on local
// files; the same cases run on S3 in
// tests/integration/s3_blob_store_contract_test.cpp.

#include "tests/contract/blob_store_contract.hpp"

#include "persistence/local_blob_store.hpp"
#include "tests/unit/temp_dir.hpp"

namespace {

struct local_backend : phonon::contract::blob_store_backend {
  phonon::testing::temp_dir dir{"phonon-blob-contract"};

  local_backend() {
    store = std::make_shared<phonon::persistence::local_blob_store>(dir.path);
  }

  std::shared_ptr<phonon::persistence::blob_store> other() override {
    return std::make_shared<phonon::persistence::local_blob_store>(dir.path);
  }
};

} // namespace

PHONON_BLOB_STORE_CONTRACT(local_backend, "local blob store contract",
                           "[unit][persistence][blob-contract]")
