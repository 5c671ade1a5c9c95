#pragma once

// Internal to media/: opening an input (content detection, the accepted
// container and codec pairs, the declared duration) and decoding its audio
// stream to interleaved s16 PCM under media::limits.

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "media/av_ptr.hpp"
#include "media/common.hpp"
#include "media/file_io.hpp"
#include "media/memory_io.hpp"

extern "C" {
#include <libavutil/channel_layout.h>
}

namespace phonon::media::detail {

// -- demuxing -----------------------------------------------------------------

/// An opened input with its chosen audio stream.
struct demuxer {
  /// The input's I/O, in memory or a file; declared first: must outlive
  /// fmt.
  std::unique_ptr<memory_reader> memory;
  std::unique_ptr<file_reader> file;
  input_ptr fmt;
  AVStream* stream = nullptr;
  const AVCodec* decoder = nullptr;
  std::string format_name;
  /// A WAV whose data runs to the end of the file: its last packet is
  /// short, which the demuxer flags as corrupt.
  bool open_ended_wav = false;
};

/// Opens `bytes` (which must outlive the result) and picks its audio
/// stream: not_audio for content that is not an accepted audio container,
/// corrupt for one that does not open, too_long when the headers declare
/// more than lim.max_duration_ms.
/// @throws media_error
std::unique_ptr<demuxer> open_audio(std::string_view bytes,
                                    const limits& lim);

/// Like open_audio, for the file at `path`, read through a bounded buffer
/// (only the first max_probe_bytes are held for detection).
/// @throws media_error
std::unique_ptr<demuxer> open_audio_file(const std::string& path,
                                         const limits& lim);

/// The duration the container declares, in ms; 0 when unknown. Sets
/// `trusted` when it comes from headers rather than a bitrate guess.
int64_t declared_duration_ms(const demuxer& d, bool& trusted);

// -- decoding -----------------------------------------------------------------

/// Decoded audio: interleaved s16 at the source rate and channel count.
struct pcm {
  /// Whole sample frames, in pieces of about pcm_chunk_bytes.
  std::vector<std::string> chunks;
  int rate = 0;
  AVChannelLayout layout{};
  int64_t samples = 0;

  pcm() = default;
  pcm(const pcm&) = delete;
  pcm& operator=(const pcm&) = delete;

  ~pcm() {
    av_channel_layout_uninit(&layout);
  }

  int channels() const {
    return layout.nb_channels;
  }

  size_t frame_bytes() const {
    return static_cast<size_t>(channels()) * 2;
  }

  size_t bytes() const {
    return static_cast<size_t>(samples) * frame_bytes();
  }

  /// Appends `n` bytes (to be filled by the caller) and returns them.
  char* grow(size_t n) {
    if (chunks.empty()
        || chunks.back().capacity() - chunks.back().size() < n) {
      chunks.emplace_back();
      chunks.back().reserve(std::max(n, pcm_chunk_bytes));
    }
    auto& last = chunks.back();
    auto old = last.size();
    last.resize(old + n);
    return &last[old];
  }

  /// Gives back the last `n` bytes of what grow() appended.
  void shrink(size_t n) {
    chunks.back().resize(chunks.back().size() - n);
  }

  int64_t duration_ms() const {
    return rate > 0 ? samples * 1000 / rate : 0;
  }
};

/// Takes decoded PCM as the decoder makes it, a frame at a time: the WAV
/// master file writer and the encoder (streaming), or a counter (probe).
class pcm_consumer {
public:
  virtual ~pcm_consumer() = default;

  /// `samples` sample frames of interleaved s16 at `format`'s rate and
  /// layout (`format.samples` counts those consumed before).
  virtual void consume(const pcm& format, const uint8_t* data,
                       int samples) = 0;
};

/// Decodes the chosen stream end to end; throws corrupt on any error,
/// too_long as soon as the audio passes lim.max_duration_ms. The PCM goes
/// to `next` frame by frame when given (`out` then only counts it and
/// keeps its rate and layout), else it is stored in `out`.
/// @throws media_error
void decode_all(demuxer& d, pcm& out, const limits& lim,
                pcm_consumer* next = nullptr);

} // namespace phonon::media::detail
