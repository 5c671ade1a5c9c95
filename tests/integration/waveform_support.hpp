// Helpers of the waveform integration tests: the PCM of a WAV file parsed
// in the test, audiowaveform's peaks computed from it independently of
// Phonon's code (a few plain loops), and checks of a served waveform.json
// or waveform.dat against them.

#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tests/integration/support.hpp"

namespace phonon::integration {

/// The little-endian uint32 at `pos` of `s`.
uint32_t u32_at(const std::string& s, size_t pos);

/// The PCM of a 16-bit WAV file.
struct pcm16 {
  int channels = 0;
  int rate = 0;
  /// Interleaved samples.
  std::vector<int16_t> samples;
};

/// Parses a RIFF/WAVE file of 16-bit PCM chunk by chunk; REQUIREs that it
/// is one.
pcm16 parse_wav(const std::string& wav);

/// audiowaveform's 8-bit min,max per window of `spp` frames (the last one
/// shorter) and per output channel of `p` (merged when `mono`: the frame's
/// channel sum divided by the channel count), each divided by 256.
std::vector<int> expected_peaks(const pcm16& p, int spp, bool mono);

/// Stereo test audio whose channels differ, made with ffmpeg in `dir`: a
/// loud 440 Hz left, a quiet 97 Hz right that starts at 0.5 s, 22.05 kHz,
/// 1.3 s (not a whole number of pixels at most zooms). Returns the bytes.
std::string stereo_wav(const temp_dir& dir);

/// One zoom and channel choice and what it must give.
struct waveform_ask {
  /// The query after '?', "" for none.
  std::string query;
  /// Samples per pixel this means for the master's rate.
  int spp;
  bool mono;
};

/// CHECKs a waveform.json answer against expected_peaks of `master`.
void check_waveform_json(const http_response& res, const pcm16& master,
                         const waveform_ask& a);

/// CHECKs a waveform.dat answer (header field by field, then the values)
/// against expected_peaks of `master`.
void check_waveform_dat(const http_response& res, const pcm16& master,
                        const waveform_ask& a);

} // namespace phonon::integration
