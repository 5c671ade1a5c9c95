#pragma once

#include <memory>

extern "C" { // FFmpeg headers have no C++ guards
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/audio_fifo.h>
#include <libavutil/mem.h>
#include <libswresample/swresample.h>
}

namespace phonon::media {

/// Closes a demuxer opened with avformat_open_input.
struct input_closer {
  void operator()(AVFormatContext* p) const noexcept {
    avformat_close_input(&p);
  }
};

/// Frees a muxer context (never closes a custom pb).
struct output_deleter {
  void operator()(AVFormatContext* p) const noexcept {
    avformat_free_context(p);
  }
};

/// Frees a codec context.
struct codec_deleter {
  void operator()(AVCodecContext* p) const noexcept {
    avcodec_free_context(&p);
  }
};

/// Frees a frame and its buffers.
struct frame_deleter {
  void operator()(AVFrame* p) const noexcept {
    av_frame_free(&p);
  }
};

/// Frees a packet and its buffers.
struct packet_deleter {
  void operator()(AVPacket* p) const noexcept {
    av_packet_free(&p);
  }
};

/// Frees a resampler.
struct swr_deleter {
  void operator()(SwrContext* p) const noexcept {
    swr_free(&p);
  }
};

/// Frees an audio FIFO.
struct fifo_deleter {
  void operator()(AVAudioFifo* p) const noexcept {
    av_audio_fifo_free(p);
  }
};

/// Frees a custom AVIOContext and its (possibly reallocated) buffer.
struct avio_deleter {
  void operator()(AVIOContext* p) const noexcept {
    if (p != nullptr)
      av_freep(&p->buffer);
    avio_context_free(&p);
  }
};

/// Owning demuxer context.
using input_ptr = std::unique_ptr<AVFormatContext, input_closer>;

/// Owning muxer context.
using output_ptr = std::unique_ptr<AVFormatContext, output_deleter>;

/// Owning codec context.
using codec_ptr = std::unique_ptr<AVCodecContext, codec_deleter>;

/// Owning frame.
using frame_ptr = std::unique_ptr<AVFrame, frame_deleter>;

/// Owning packet.
using packet_ptr = std::unique_ptr<AVPacket, packet_deleter>;

/// Owning resampler.
using swr_ptr = std::unique_ptr<SwrContext, swr_deleter>;

/// Owning audio FIFO.
using fifo_ptr = std::unique_ptr<AVAudioFifo, fifo_deleter>;

/// Owning custom I/O context.
using avio_ptr = std::unique_ptr<AVIOContext, avio_deleter>;

} // namespace phonon::media
