#pragma once

// Peak data ("waveforms") of a WAV master in the two formats of the BBC's
// audiowaveform tool (github.com/bbc/audiowaveform, src/WaveformGenerator.cpp
// and src/WaveformBuffer.cpp), so that peaks.js / waveform-data.js read them
// as they are:
//
// - JSON: {"version":2,"channels":C,"sample_rate":R,"samples_per_pixel":S,
//   "bits":8,"length":N,"data":[min,max,...]} plus a newline;
// - binary .dat: little-endian int32 version (1 for one channel, 2
//   otherwise), uint32 flags (bit 0 = 8-bit data), int32 sample rate,
//   int32 samples per pixel, uint32 length, int32 channels (version 2
//   only), then int8 min,max per channel per pixel.
//
// The numbers are audiowaveform's exactly: each pixel holds the min and max
// of `samples_per_pixel` frames (a last, shorter window when the frames do
// not divide evenly); a merged (mono) pixel is the min/max of the frames'
// channel sum divided by the channel count (C++ integer division); 16-bit
// values become 8-bit ones by C++ integer division by 256 (toward zero).
// pixels_per_second turns into samples_per_pixel = sample_rate /
// pixels_per_second (integer division), as audiowaveform's
// PixelsPerSecondScaleFactor does, but never below 2 (audiowaveform's own
// minimum, which it refuses instead).
//
// Everything here is pure except waveform_file(), which streams a WAV file
// block by block into an output file.

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "media/transcode.hpp"

namespace phonon::media {

/// Smallest `samples_per_pixel` a client may ask for (API.md).
constexpr int32_t min_samples_per_pixel = 32;
/// Largest `samples_per_pixel` a client may ask for: about 5 s per pixel at
/// 192 kHz, 23 s at 44.1 kHz (a whole 10-minute phrase in ~26 pixels).
constexpr int32_t max_samples_per_pixel = 1000000;
/// Range of `pixels_per_second` (API.md).
constexpr int32_t min_pixels_per_second = 1;
constexpr int32_t max_pixels_per_second = 1000;
/// Default `pixels_per_second` (API.md).
constexpr int32_t default_pixels_per_second = 100;
/// Never fewer samples per pixel than this (audiowaveform's minimum), even
/// when pixels_per_second asks for more pixels than a low rate has samples.
constexpr int32_t min_effective_samples_per_pixel = 2;

/// What a waveform is asked for: a zoom given by exactly one of
/// pixels_per_second and samples_per_pixel (the other 0), and whether the
/// channels are merged into one.
struct waveform_options {
  int32_t pixels_per_second = 0;
  int32_t samples_per_pixel = 0;
  bool mono = false;
};

/// The samples per pixel `opt` means at `sample_rate`.
int32_t effective_samples_per_pixel(const waveform_options& opt,
                                    int32_t sample_rate);

/// A computed waveform at 16-bit resolution: `data` holds, for each pixel,
/// for each output channel, the min and then the max sample.
struct waveform {
  int32_t sample_rate = 0;
  int32_t samples_per_pixel = 0;
  /// Output channels: 1 when merged, else the source's channels.
  int32_t channels = 0;
  std::vector<int16_t> data;

  /// Pixels.
  uint32_t length() const {
    return channels > 0
             ? static_cast<uint32_t>(data.size() / (2 * size_t(channels)))
             : 0;
  }
};

/// Accumulates interleaved s16 frames into pixels, emitting each finished
/// pixel (min, max per output channel) to a callback; holds one pixel.
class peak_builder {
public:
  /// Receives one pixel: 2 x output channels values (min, max, min, ...).
  using emit_fn = std::function<void(const int16_t* values)>;

  /// `channels` input channels (1..max_channels), `samples_per_pixel` >= 1;
  /// `mono` merges them into one output channel.
  peak_builder(int32_t channels, int32_t samples_per_pixel, bool mono,
               emit_fn emit);

  /// Adds `frames` interleaved frames.
  void add(const int16_t* interleaved, size_t frames);

  /// Emits the last, partial pixel if any frames are pending.
  void finish();

  int32_t output_channels() const {
    return out_channels_;
  }

private:
  void flush();
  void reset();

  int32_t channels_;
  int32_t spp_;
  int32_t out_channels_;
  int32_t count_ = 0;
  std::vector<int32_t> min_;
  std::vector<int32_t> max_;
  std::vector<int16_t> pixel_;
  emit_fn emit_;
};

/// The waveform of `frames` interleaved s16 frames, all in memory (tests,
/// small inputs).
waveform compute_waveform(const int16_t* interleaved, size_t frames,
                          int32_t channels, int32_t sample_rate,
                          const waveform_options& opt);

/// The waveform of a WAV file (RIFF, PCM 16-bit: what Phonon's masters are)
/// held in memory.
/// @throws media_error{corrupt} when it is not such a file
waveform compute_waveform(std::string_view wav, const waveform_options& opt);

/// A 16-bit peak as audiowaveform stores it in 8 bits (value / 256).
int8_t to_8bit(int16_t value);

/// The .dat bytes of `w` (8-bit).
std::string to_dat(const waveform& w);

/// The JSON text of `w` (8-bit), audiowaveform's exact spelling.
std::string to_json(const waveform& w);

/// Output containers of waveform_file().
enum class waveform_container { json, dat };

/// An upper bound of the bytes waveform_file() writes in `container` for a
/// WAV master of `master_bytes` (16-bit PCM, header included) at
/// `sample_rate` (0 when unknown: then the finest zoom, 2 samples per
/// pixel, is assumed). A waveform's cost is its output, not its input (the
/// master is streamed in fixed blocks), so this is a waveform job's weight
/// in the conversion queue's byte bound. Pure: .dat holds 2 bytes per
/// pixel and channel, i.e. at most master_bytes / samples_per_pixel plus a
/// partial pixel and the header; JSON at most 5 characters ("-128,") per
/// such byte plus its header.
uint64_t waveform_output_bound(uint64_t master_bytes, int32_t sample_rate,
                               const waveform_options& opt,
                               waveform_container container);

/// What waveform_file() produced.
struct waveform_result {
  int32_t sample_rate = 0;
  int32_t channels = 0;
  int32_t samples_per_pixel = 0;
  uint32_t length = 0;
  int64_t duration_ms = 0;
};

/// Streams the WAV master at `in_path` (read in fixed blocks, whatever its
/// length) into the waveform `opt` asks for, written to `out_path` (created
/// or truncated) as it is computed; the output is byte for byte
/// to_json()/to_dat() of compute_waveform(). On any error `out_path` is
/// removed. `lim.deadline_unix_ms` is honoured between blocks.
/// @throws media_error (input_missing, corrupt, no_space, internal,
/// deadline_exceeded)
waveform_result waveform_file(const std::string& in_path,
                              const std::string& out_path,
                              const waveform_options& opt,
                              waveform_container container,
                              const limits& lim = {});

} // namespace phonon::media
