// The media probe and decode on in-memory input (media/transcode.*), in the
// spirit of FFmpeg's tools/target_dem_fuzzer.c but through Phonon's own
// entry points, so only the containers Phonon accepts are opened (M4A/MP4,
// WAV, MP3, Ogg, FLAC, WebM) and Phonon's own checks run as in production.
//
// The whole input is the uploaded file. media_error is the one accepted
// failure; any other exception, a crash or a sanitizer report is a finding,
// and so is a success that breaks what decode_to_wav promises (a plain
// 44-byte WAV header over exactly the decoded samples, within the limits).
//
// A 30 s duration limit keeps one execution short and its memory small
// (at most 30 s x 192 kHz x 8 channels x 2 bytes = 88 MiB of PCM); the
// limit itself is part of what is tested. No deadline: the outcome must
// not depend on the machine's speed.
//
// Build on its own:
//   clang++-14 -std=c++17 -fsanitize=fuzzer,address,undefined -I. \
//     tests/fuzz/media_fuzzer.cpp media/*.cpp \
//     $(pkg-config --cflags --libs libavformat libavcodec libavutil \
//       libswresample) -o media_fuzzer
//   ./media_fuzzer tests/fuzz/corpus/media

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "media/transcode.hpp"

namespace {

using namespace phonon::media;

constexpr int64_t limit_ms = 30000;

[[noreturn]] void finding(const char* what) {
  std::fprintf(stderr, "media_fuzzer: %s\n", what);
  std::abort();
}

uint32_t le(const std::string& b, size_t at, int n) {
  uint32_t v = 0;
  for (int i = n - 1; i >= 0; --i)
    v = (v << 8) | static_cast<uint8_t>(b[at + static_cast<size_t>(i)]);
  return v;
}

void check_info(const audio_info& info) {
  if (info.channels < 1 || info.channels > max_channels)
    finding("channel count outside 1..max_channels");
  if (info.sample_rate < 1 || info.sample_rate > max_sample_rate)
    finding("sample rate outside 1..max_sample_rate");
  if (info.format.empty() || info.codec.empty())
    finding("no format or codec name");
}

void check_decoded(const decoded_audio& out) {
  check_info(out.source);
  const auto& w = out.wav;
  if (w.size() < 44 || w.compare(0, 4, "RIFF") != 0
      || w.compare(8, 8, "WAVEfmt ") != 0 || w.compare(36, 4, "data") != 0)
    finding("the master is not a plain RIFF WAVE");
  if (le(w, 40, 4) != w.size() - 44 || le(w, 4, 4) != w.size() - 8)
    finding("the master's sizes do not match its bytes");
  auto channels = static_cast<uint32_t>(out.source.channels);
  auto rate = static_cast<uint32_t>(out.source.sample_rate);
  if (le(w, 22, 2) != channels || le(w, 24, 4) != rate)
    finding("the master's header disagrees with the reported facts");
  auto frames = (w.size() - 44) / (2 * channels);
  if ((w.size() - 44) % (2 * channels) != 0 || frames == 0)
    finding("the master holds a partial or no sample frame");
  if (static_cast<int64_t>(frames) > limit_ms * out.source.sample_rate / 1000)
    finding("decoded past the duration limit");
  if (static_cast<int64_t>(frames) * 1000 / out.source.sample_rate
      != out.source.duration_ms)
    finding("reported duration differs from the samples");
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes{reinterpret_cast<const char*>(data), size};
  limits lim;
  lim.max_duration_ms = limit_ms;
  try {
    check_info(probe(bytes, lim));
  } catch (const media_error&) {
    // Refused: the expected outcome for most inputs.
  }
  try {
    check_decoded(decode_to_wav(bytes, lim));
  } catch (const media_error& e) {
    // Running out of memory is the only internal error bad input may cause;
    // libFuzzer's own -rss_limit_mb reports real memory blow-ups.
    if (e.code() == media_errc::internal
        && std::string_view{e.what()} != "out of memory")
      finding(e.what());
  }
  return 0;
}
