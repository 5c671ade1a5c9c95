#include "app/allocator.hpp"

#include <cstdlib>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace phonon::app {

void tune_malloc() noexcept {
#if defined(__GLIBC__)
  if (std::getenv("MALLOC_MMAP_THRESHOLD_") != nullptr)
    return;
  long bytes = 1L << 20;
  if (const char* env = std::getenv("PHONON_MMAP_THRESHOLD")) {
    char* end = nullptr;
    long v = std::strtol(env, &end, 10);
    if (end == env || *end != '\0' || v < 0)
      return; // not a number: leave glibc's default
    if (v == 0)
      return;
    bytes = v;
  }
  // Setting M_MMAP_THRESHOLD also fixes M_TRIM_THRESHOLD at its default
  // (128 KiB): free space at the top of the main heap goes back too.
  // glibc refuses more than 32 MiB (HEAP_MAX_SIZE / 2 on 64-bit).
  constexpr long most = 32L << 20;
  mallopt(M_MMAP_THRESHOLD, static_cast<int>(bytes > most ? most : bytes));
#endif
}

} // namespace phonon::app
