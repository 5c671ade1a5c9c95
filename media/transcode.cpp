#include "media/transcode.hpp"

#include "media/common.hpp"
#include "media/demux.hpp"
#include "media/encode.hpp"
#include "media/file_io.hpp"
#include "media/wav.hpp"

namespace phonon::media {

using namespace detail;

namespace {

/// Counts decoded PCM and drops it (probe only needs the duration).
class pcm_counter : public pcm_consumer {
public:
  void consume(const pcm&, const uint8_t*, int) override {
    // nop
  }
};

/// The source facts of a finished decode.
audio_info source_info(const demuxer& d, const pcm& p) {
  audio_info info;
  info.format = d.format_name;
  info.codec = avcodec_get_name(d.stream->codecpar->codec_id);
  info.duration_ms = p.duration_ms();
  info.sample_rate = p.rate;
  info.channels = p.channels();
  return info;
}

} // namespace

audio_info probe(std::string_view bytes, const limits& lim) {
  return guarded([&] {
    auto d = open_audio(bytes, lim);
    audio_info info;
    info.format = d->format_name;
    info.codec = avcodec_get_name(d->stream->codecpar->codec_id);
    info.sample_rate = d->stream->codecpar->sample_rate;
    info.channels = d->stream->codecpar->ch_layout.nb_channels;
    bool trusted = false;
    info.duration_ms = declared_duration_ms(*d, trusted);
    // No duration in the headers (MediaRecorder WebM, fragmented MP4), or
    // only a bitrate guess above the limit: decode to count the samples.
    if (info.duration_ms <= 0
        || (!trusted && lim.max_duration_ms > 0
            && info.duration_ms > lim.max_duration_ms)) {
      pcm p;
      pcm_counter counter;
      decode_all(*d, p, lim, &counter);
      info.duration_ms = p.duration_ms();
    }
    return info;
  });
}

decoded_audio decode_to_wav(std::string_view bytes, const limits& lim) {
  return guarded([&] {
    auto d = open_audio(bytes, lim);
    pcm p;
    decode_all(*d, p, lim);
    decoded_audio result;
    result.source = source_info(*d, p);
    result.wav = make_wav(p);
    return result;
  });
}

encoded_audio encode(std::string_view bytes, format target,
                     const limits& lim) {
  return guarded([&] {
    auto d = open_audio(bytes, lim);
    return encode_stream(*d, target, lim);
  });
}

audio_info decode_file_to_wav(const std::string& in_path,
                              const std::string& out_path,
                              const limits& lim) {
  return guarded([&] {
    auto d = open_audio_file(in_path, lim);
    output_file out{out_path}; // removed again unless kept
    wav_file_writer writer{out};
    pcm p;
    decode_all(*d, p, lim, &writer);
    writer.finish(p);
    // Durable before it is handed on: the storage actor then only renames
    // it into place (one fsync of the folder for the original and the
    // master together), and this wait runs on the transcoder's thread.
    out.sync();
    out.keep();
    return source_info(*d, p);
  });
}

encoded_audio encode_file(const std::string& in_path,
                          const std::string& out_path, format target,
                          const limits& lim) {
  return guarded([&] {
    auto d = open_audio_file(in_path, lim);
    output_file out{out_path}; // removed again unless kept
    auto res = encode_stream(*d, target, lim, out_path);
    out.keep();
    return res;
  });
}

} // namespace phonon::media
