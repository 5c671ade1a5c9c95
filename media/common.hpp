#pragma once

// Internal to media/: the limits, errors and helpers that the demux/decode,
// WAV and encode parts share. Not part of the library's public surface
// (that is media/transcode.hpp).

#include <cstddef>
#include <cstdint>
#include <new>
#include <stdexcept>
#include <string>

#include "media/transcode.hpp"

namespace phonon::media::detail {

// -- limits -------------------------------------------------------------------

/// Bytes of the input handed to the content prober (libavformat's own cap).
constexpr size_t max_probe_bytes = size_t{1} << 20;

/// Decoded PCM is kept in pieces of about this size: one growing string
/// would copy itself at each doubling and hold old and new copies at once.
constexpr size_t pcm_chunk_bytes = size_t{1} << 20;

/// Input samples converted per step while encoding.
constexpr int encode_chunk = 4096;

/// A decode is refused when it yields less than this share of the duration
/// the container declares (a truncated file).
constexpr double min_decoded_share = 0.9;

// -- logging ------------------------------------------------------------------

/// Makes libav quiet unless a sink asks for its lines; runs once.
void init_once();

// -- errors -------------------------------------------------------------------

/// libav's text for an AVERROR code.
std::string av_err(int rc);

/// Throws media_error{code, what}.
[[noreturn]] void fail(media_errc code, const std::string& what);

/// Throws media_error{code, "call: <libav's text for rc>"}; no_space
/// instead of `code` when rc is ENOSPC or EDQUOT.
[[noreturn]] void fail(media_errc code, const char* call, int rc);

/// Wall clock in ms since the Unix epoch (limits::deadline_unix_ms).
int64_t now_unix_ms();

/// Throws deadline_exceeded once lim.deadline_unix_ms has passed. Called
/// between packets and frames: nobody waits for a late result.
void check_deadline(const limits& lim);

/// Throws too_long with the duration limit in words for the client.
[[noreturn]] void fail_too_long(const limits& lim);

/// Returns `ptr`, or throws internal ("<what>: out of memory") when null.
template <class T>
T* check_alloc(T* ptr, const char* what) {
  if (ptr == nullptr)
    fail(media_errc::internal, std::string{what} + ": out of memory");
  return ptr;
}

/// Runs `f`, turning stray allocation failures into media_error{internal}.
template <class F>
auto guarded(F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const media_error&) {
    throw;
  } catch (const std::bad_alloc&) {
    fail(media_errc::internal, "out of memory");
  } catch (const std::length_error&) {
    fail(media_errc::internal, "out of memory");
  }
}

} // namespace phonon::media::detail
