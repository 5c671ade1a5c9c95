// cache_charge(): what a cached file counts against storage.cache_max_bytes
// (whole 4 KiB blocks, at least one), so that tiny files are bounded in
// number too.

#include "actors/format_cache_actor.hpp"

#include <catch2/catch.hpp>

using phonon::actors::cache_block_bytes;
using phonon::actors::cache_charge;

TEST_CASE("a cached file counts whole 4 KiB blocks, at least one",
          "[unit][cache]") {
  CHECK(cache_block_bytes == 4096);
  CHECK(cache_charge(0) == 4096);
  CHECK(cache_charge(1) == 4096);
  CHECK(cache_charge(70) == 4096);
  CHECK(cache_charge(4095) == 4096);
  CHECK(cache_charge(4096) == 4096);
  CHECK(cache_charge(4097) == 8192);
  CHECK(cache_charge(1000000) == 1003520);
  // 40,000 tiny waveforms no longer look like ~3 MB: they count 156 MiB.
  CHECK(40000 * cache_charge(76) == 40000ull * 4096);
}
