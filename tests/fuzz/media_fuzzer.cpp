// The media probe and decode on in-memory input (media/transcode.*), in the
// spirit of FFmpeg's tools/target_dem_fuzzer.c but through Phonon's own
// entry points, so only the containers Phonon accepts are opened (M4A/MP4,
// WAV, MP3, Ogg, FLAC, WebM) and Phonon's own checks run as in production.
//
// The whole input is the uploaded file. media_error is the one accepted
// failure; any other exception, a crash or a sanitizer report is a finding,
// and so is a success that breaks what decode_to_wav promises (a plain
// 44-byte WAV header over exactly the decoded samples, within the limits).
// The same input is also decoded by the streaming decode_file_to_wav (from
// a file in the temp folder to another): it must give the same master, byte
// for byte, or fail with the same code and leave no output.
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
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>

#include <unistd.h>

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

/// The input and output files of the streaming decode, one pair per
/// process (libFuzzer runs inputs one after the other).
struct stream_files {
  std::string in;
  std::string out;

  stream_files() {
    auto base = std::string{"/tmp/phonon-media-fuzz-"}
                + std::to_string(::getpid());
    in = base + ".in";
    out = base + ".out";
  }

  ~stream_files() {
    ::unlink(in.c_str());
    ::unlink(out.c_str());
  }
};

/// Decodes `bytes` from a file with decode_file_to_wav and checks it
/// against the in-memory result: `held` (the master) or `held_code` (the
/// error) when `held_ok` is false.
void check_streamed(std::string_view bytes, const limits& lim, bool held_ok,
                    const std::string& held, media_errc held_code) {
  static stream_files files;
  {
    std::ofstream f{files.in, std::ios::binary | std::ios::trunc};
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  ::unlink(files.out.c_str());
  try {
    decode_file_to_wav(files.in, files.out, lim);
  } catch (const media_error& e) {
    if (held_ok)
      finding("the streaming decode failed where the in-memory one did not");
    if (e.code() != held_code)
      finding("the streaming decode failed with another code");
    if (::access(files.out.c_str(), F_OK) == 0)
      finding("a failed streaming decode left its output");
    return;
  }
  if (!held_ok)
    finding("the streaming decode accepted what the in-memory one refused");
  std::ifstream f{files.out, std::ios::binary};
  std::string streamed{std::istreambuf_iterator<char>{f},
                       std::istreambuf_iterator<char>{}};
  if (streamed != held)
    finding("the streamed master differs from the in-memory one");
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
  std::string held;
  media_errc held_code{};
  bool held_ok = false;
  try {
    auto out = decode_to_wav(bytes, lim);
    check_decoded(out);
    held = std::move(out.wav);
    held_ok = true;
  } catch (const media_error& e) {
    // Running out of memory is the only internal error bad input may cause;
    // libFuzzer's own -rss_limit_mb reports real memory blow-ups.
    if (e.code() == media_errc::internal
        && std::string_view{e.what()} != "out of memory")
      finding(e.what());
    held_code = e.code();
  }
  // "out of memory" may strike one and not the other: not comparable.
  if (held_ok || held_code != media_errc::internal)
    check_streamed(bytes, lim, held_ok, held, held_code);
  return 0;
}
