#pragma once

namespace phonon::app {

/// Sets glibc malloc's mmap threshold to a fixed 1 MiB (bench/README.md,
/// "Memory returned"), before any thread starts. Call first in main().
///
/// glibc's threshold is dynamic: after the first large block is freed it
/// rises up to 32 MiB, so upload spools, PCM and encoded outputs of a few
/// MiB are then carved from per-thread arenas and stay there after free
/// (measured: ~300 MiB still held 10 s after 32 concurrent 9 MiB uploads
/// were finished and deleted). A fixed threshold keeps every block of 1 MiB
/// or more in its own mapping, returned to the kernel by free(); smaller
/// blocks stay in the arenas. Measured after the same burst: RSS back
/// within 8 MiB of idle, and a lower peak.
///
/// Left alone when MALLOC_MMAP_THRESHOLD_ is in the environment (glibc's
/// own setting wins) or PHONON_MMAP_THRESHOLD=0 (glibc's dynamic default);
/// PHONON_MMAP_THRESHOLD=BYTES sets another value. No effect when another
/// allocator is preloaded.
void tune_malloc() noexcept;

} // namespace phonon::app
