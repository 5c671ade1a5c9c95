#include "media/transcode.hpp"

#include "media/common.hpp"
#include "media/demux.hpp"
#include "media/encode.hpp"
#include "media/wav.hpp"

namespace phonon::media {

using namespace detail;

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
      decode_all(*d, p, lim);
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
    result.source.format = d->format_name;
    result.source.codec = avcodec_get_name(d->stream->codecpar->codec_id);
    result.source.duration_ms = p.duration_ms();
    result.source.sample_rate = p.rate;
    result.source.channels = p.channels();
    result.wav = make_wav(p);
    return result;
  });
}

encoded_audio encode(std::string_view bytes, format target,
                     const limits& lim) {
  return guarded([&] {
    pcm p;
    {
      auto d = open_audio(bytes, lim);
      decode_all(*d, p, lim);
    }
    return encode_pcm(p, target, lim);
  });
}

} // namespace phonon::media
