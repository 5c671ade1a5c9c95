#include "media/encode.hpp"

#include <algorithm>
#include <string>

#include "media/memory_io.hpp"

extern "C" {
#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>
#include <libavutil/samplefmt.h>
}

namespace phonon::media::detail {

namespace {

// What one target format is made of.
struct target_spec {
  const char* muxer;
  const char* encoder;
  int fixed_rate;   // 0: keep the source rate where the encoder allows
  int max_channels; // downmix above this
};

target_spec spec_of(format f) {
  switch (f) {
    case format::m4a:
      return {"ipod", "aac", 0, 2};
    case format::wav:
      return {"wav", "pcm_s16le", 0, max_channels};
    case format::mp3:
      return {"mp3", "libmp3lame", 0, 2};
    case format::ogg:
      return {"ogg", "libvorbis", 0, 2};
    case format::opus:
      return {"ogg", "libopus", 48000, 2};
    case format::flac:
      return {"flac", "flac", 0, max_channels};
    case format::webm:
      return {"webm", "libopus", 48000, 2};
  }
  fail(media_errc::internal, "unknown target format");
}

// The source rate if the encoder takes it, else the smallest supported
// rate above it, else the highest supported one (MP3 above 48 kHz -> 48k).
int choose_rate(const AVCodec* enc, int wanted) {
  if (enc->supported_samplerates == nullptr)
    return wanted;
  int above = 0;
  int highest = 0;
  for (auto* r = enc->supported_samplerates; *r != 0; ++r) {
    if (*r == wanted)
      return wanted;
    if (*r > wanted && (above == 0 || *r < above))
      above = *r;
    highest = std::max(highest, *r);
  }
  return above != 0 ? above : highest;
}

// Prefers 16-bit integer input (the master is s16), else the first format.
AVSampleFormat choose_sample_format(const AVCodec* enc) {
  if (enc->sample_fmts == nullptr)
    return AV_SAMPLE_FMT_S16;
  for (auto* f = enc->sample_fmts; *f != AV_SAMPLE_FMT_NONE; ++f)
    if (*f == AV_SAMPLE_FMT_S16 || *f == AV_SAMPLE_FMT_S16P)
      return *f;
  return enc->sample_fmts[0];
}

void configure(AVCodecContext* ctx, format target) {
  auto ch = static_cast<int64_t>(ctx->ch_layout.nb_channels);
  switch (target) {
    case format::m4a:
      ctx->bit_rate = 64000 * ch;
      ctx->profile = FF_PROFILE_AAC_LOW;
      break;
    case format::mp3:
      ctx->bit_rate = ch > 1 ? 128000 : 64000;
      break;
    case format::ogg:
      // Quality mode works at every rate, unlike fixed bitrates.
      ctx->flags |= AV_CODEC_FLAG_QSCALE;
      ctx->global_quality = 4 * FF_QP2LAMBDA;
      break;
    case format::opus:
    case format::webm:
      ctx->bit_rate = 48000 * ch;
      break;
    default:
      break;
  }
}

/// Closes a file AVIOContext opened with avio_open2 (encoder output).
struct file_avio {
  AVIOContext* pb = nullptr;

  file_avio() = default;
  file_avio(const file_avio&) = delete;
  file_avio& operator=(const file_avio&) = delete;

  ~file_avio() {
    avio_closep(&pb);
  }
};

/// Encodes PCM as it arrives (a pcm_consumer): the encoder, muxer and
/// resampler are set up at the first samples, when the source's rate and
/// layout are known; each piece is converted, encoded and muxed before the
/// next one is taken. The output goes to memory or to a file through
/// libav's file AVIO (bounded buffer; the muxer seeks back for headers and
/// the mp4 faststart pass re-opens the file by its URL).
class encoder_pipeline : public pcm_consumer {
public:
  /// Output to memory when `out_path` is empty, else to that file
  /// (created or truncated).
  encoder_pipeline(format target, const limits& lim, std::string out_path)
    : target_(target), lim_(lim), out_path_(std::move(out_path)) {
    // nop
  }

  void consume(const pcm& src, const uint8_t* data, int samples) override {
    if (src_ == nullptr) {
      src_ = &src;
      setup_encoder();
      setup_muxer();
      setup_resampler();
    }
    feed(data, samples);
  }

  /// Drains the resampler and encoder, writes the trailer and closes the
  /// output; `src` is the PCM's format and count (the whole decode).
  encoded_audio finish(const pcm& src) {
    if (src_ == nullptr)
      fail(media_errc::corrupt, "no audio samples decoded");
    drain();
    finish_stream();
    encoded_audio result;
    if (out_path_.empty()) {
      result.bytes = out_.take();
    } else if (auto rc = avio_closep(&file_.pb); rc < 0) {
      fail(media_errc::internal, "avio_closep", rc);
    }
    result.info.format = to_string(target_);
    result.info.codec = avcodec_get_name(enc_->codec_id);
    result.info.duration_ms = src.duration_ms();
    result.info.sample_rate = enc_->sample_rate;
    result.info.channels = enc_->ch_layout.nb_channels;
    return result;
  }

private:
  void setup_encoder() {
    spec_ = spec_of(target_);
    codec_ = avcodec_find_encoder_by_name(spec_.encoder);
    if (codec_ == nullptr)
      fail(media_errc::internal,
           std::string{"encoder not available: "} + spec_.encoder);
    enc_.reset(check_alloc(avcodec_alloc_context3(codec_),
                           "avcodec_alloc_context3"));
    enc_->sample_rate = spec_.fixed_rate != 0
                          ? spec_.fixed_rate
                          : choose_rate(codec_, src_->rate);
    enc_->sample_fmt = choose_sample_format(codec_);
    av_channel_layout_default(&enc_->ch_layout,
                              std::min(src_->channels(), spec_.max_channels));
    enc_->time_base = AVRational{1, enc_->sample_rate};
    configure(enc_.get(), target_);
  }

  void setup_muxer() {
    AVFormatContext* raw = nullptr;
    auto url = out_path_.empty() ? std::string{} : "file:" + out_path_;
    auto rc = avformat_alloc_output_context2(
      &raw, nullptr, spec_.muxer, url.empty() ? nullptr : url.c_str());
    if (rc < 0 || raw == nullptr)
      fail(media_errc::internal, "avformat_alloc_output_context2", rc);
    oc_.reset(raw);
    // The output is a function of the master alone: no random Ogg serial
    // numbers or Matroska UIDs, no libav version strings. Two conversions
    // of one (recording, format), on one node after an eviction or on two
    // nodes at once, give the same bytes under the same strong ETag.
    raw->flags |= AVFMT_FLAG_BITEXACT;
    enc_->flags |= AV_CODEC_FLAG_BITEXACT;
    if (raw->oformat->flags & AVFMT_GLOBALHEADER)
      enc_->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    if (rc = avcodec_open2(enc_.get(), codec_, nullptr); rc < 0)
      fail(media_errc::internal, "avcodec_open2", rc);
    stream_ = check_alloc(avformat_new_stream(raw, nullptr),
                          "avformat_new_stream");
    if (rc = avcodec_parameters_from_context(stream_->codecpar, enc_.get());
        rc < 0)
      fail(media_errc::internal, "avcodec_parameters_from_context", rc);
    stream_->time_base = enc_->time_base;
    if (out_path_.empty()) {
      raw->pb = out_.context();
      raw->flags |= AVFMT_FLAG_CUSTOM_IO;
      // faststart re-reads the output in a second pass through io_open.
      if (target_ == format::m4a)
        out_.allow_reopen(raw);
    } else {
      // Only the file protocol: the URL is ours, never the client's.
      AVDictionary* io_opts = nullptr;
      av_dict_set(&io_opts, "protocol_whitelist", "file", 0);
      rc = avio_open2(&file_.pb, url.c_str(), AVIO_FLAG_WRITE, nullptr,
                      &io_opts);
      av_dict_free(&io_opts);
      if (rc < 0)
        fail(media_errc::internal, "avio_open2", rc);
      raw->pb = file_.pb;
      if (rc = av_opt_set(raw, "protocol_whitelist", "file", 0); rc < 0)
        fail(media_errc::internal, "av_opt_set(protocol_whitelist)", rc);
    }
    AVDictionary* opts = nullptr;
    if (target_ == format::m4a)
      av_dict_set(&opts, "movflags", "+faststart", 0);
    rc = avformat_write_header(raw, &opts);
    av_dict_free(&opts);
    if (rc < 0)
      fail(media_errc::internal, "avformat_write_header", rc);
  }

  void setup_resampler() {
    SwrContext* raw = nullptr;
    // 5.1 takes the layouts by non-const pointer but only reads them.
    auto* in_layout = const_cast<AVChannelLayout*>(&src_->layout);
    auto rc = swr_alloc_set_opts2(&raw, &enc_->ch_layout, enc_->sample_fmt,
                                  enc_->sample_rate, in_layout,
                                  AV_SAMPLE_FMT_S16, src_->rate, 0, nullptr);
    swr_.reset(raw);
    if (rc < 0)
      fail(media_errc::internal, "swr_alloc_set_opts2", rc);
    if (rc = swr_init(raw); rc < 0)
      fail(media_errc::internal, "swr_init", rc);
    fifo_.reset(check_alloc(av_audio_fifo_alloc(enc_->sample_fmt,
                                                enc_->ch_layout.nb_channels,
                                                encode_chunk),
                            "av_audio_fifo_alloc"));
    auto caps = codec_->capabilities;
    variable_ = (caps & AV_CODEC_CAP_VARIABLE_FRAME_SIZE)
                || enc_->frame_size <= 0;
    frame_size_ = variable_ ? encode_chunk : enc_->frame_size;
    conv_.reset(check_alloc(av_frame_alloc(), "av_frame_alloc"));
    frame_.reset(check_alloc(av_frame_alloc(), "av_frame_alloc"));
    pkt_.reset(check_alloc(av_packet_alloc(), "av_packet_alloc"));
  }

  // Converts `count` input samples (nullptr: flush the resampler) into the
  // FIFO; returns how many samples came out.
  int convert(const uint8_t* in, int count) {
    auto room = swr_get_out_samples(swr_.get(), count);
    if (room < 0)
      fail(media_errc::internal, "swr_get_out_samples", room);
    if (room == 0)
      return 0;
    if (room > conv_->nb_samples) {
      av_frame_unref(conv_.get());
      conv_->format = enc_->sample_fmt;
      conv_->nb_samples = room;
      if (auto rc = av_channel_layout_copy(&conv_->ch_layout,
                                           &enc_->ch_layout);
          rc < 0)
        fail(media_errc::internal, "av_channel_layout_copy", rc);
      if (auto rc = av_frame_get_buffer(conv_.get(), 0); rc < 0)
        fail(media_errc::internal, "av_frame_get_buffer", rc);
    }
    const uint8_t* const* in_planes = in != nullptr ? &in : nullptr;
    auto got = swr_convert(swr_.get(), conv_->data, conv_->nb_samples,
                           const_cast<const uint8_t**>(in_planes), count);
    if (got < 0)
      fail(media_errc::internal, "swr_convert", got);
    if (got > 0
        && av_audio_fifo_write(fifo_.get(),
                               reinterpret_cast<void**>(conv_->data), got)
             < got)
      fail(media_errc::internal, "av_audio_fifo_write failed");
    return got;
  }

  // Converts and encodes `samples` input samples, encode_chunk at a time.
  void feed(const uint8_t* data, int64_t samples) {
    auto frame_bytes = src_->frame_bytes();
    for (int64_t done = 0; done < samples;) {
      check_deadline(lim_);
      auto n = static_cast<int>(
        std::min<int64_t>(encode_chunk, samples - done));
      convert(data + static_cast<size_t>(done) * frame_bytes, n);
      done += n;
      send_full_frames();
    }
  }

  // Flushes the resampler and sends what the FIFO still holds.
  void drain() {
    while (convert(nullptr, 0) > 0)
      send_full_frames();
    send_full_frames();
    auto rest = av_audio_fifo_size(fifo_.get());
    if (rest > 0)
      send_frame(rest);
  }

  void send_full_frames() {
    while (av_audio_fifo_size(fifo_.get()) >= frame_size_)
      send_frame(frame_size_);
  }

  void send_frame(int count) {
    auto* f = frame_.get();
    av_frame_unref(f);
    // A short last frame is padded with silence for encoders that need
    // whole frames.
    bool pad = count < frame_size_ && !variable_
               && !(codec_->capabilities & AV_CODEC_CAP_SMALL_LAST_FRAME);
    f->nb_samples = pad ? frame_size_ : count;
    f->format = enc_->sample_fmt;
    f->sample_rate = enc_->sample_rate;
    if (auto rc = av_channel_layout_copy(&f->ch_layout, &enc_->ch_layout);
        rc < 0)
      fail(media_errc::internal, "av_channel_layout_copy", rc);
    if (auto rc = av_frame_get_buffer(f, 0); rc < 0)
      fail(media_errc::internal, "av_frame_get_buffer", rc);
    if (pad)
      av_samples_set_silence(f->data, count, frame_size_ - count,
                             enc_->ch_layout.nb_channels, enc_->sample_fmt);
    if (av_audio_fifo_read(fifo_.get(), reinterpret_cast<void**>(f->data),
                           count)
        < count)
      fail(media_errc::internal, "av_audio_fifo_read failed");
    f->pts = next_pts_;
    next_pts_ += count;
    if (auto rc = avcodec_send_frame(enc_.get(), f); rc < 0)
      fail(media_errc::internal, "avcodec_send_frame", rc);
    write_packets();
  }

  void write_packets() {
    for (;;) {
      auto rc = avcodec_receive_packet(enc_.get(), pkt_.get());
      if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF)
        return;
      if (rc < 0)
        fail(media_errc::internal, "avcodec_receive_packet", rc);
      av_packet_rescale_ts(pkt_.get(), enc_->time_base, stream_->time_base);
      pkt_->stream_index = stream_->index;
      rc = av_interleaved_write_frame(oc_.get(), pkt_.get());
      av_packet_unref(pkt_.get());
      if (rc < 0)
        fail(media_errc::internal, "av_interleaved_write_frame", rc);
    }
  }

  void finish_stream() {
    if (auto rc = avcodec_send_frame(enc_.get(), nullptr); rc < 0)
      fail(media_errc::internal, "avcodec_send_frame(flush)", rc);
    write_packets();
    if (auto rc = av_write_trailer(oc_.get()); rc < 0)
      fail(media_errc::internal, "av_write_trailer", rc);
  }

  const pcm* src_ = nullptr;
  format target_;
  const limits& lim_;
  std::string out_path_;
  target_spec spec_{};
  const AVCodec* codec_ = nullptr;
  codec_ptr enc_;
  memory_writer out_; // declared before oc_: must outlive it
  file_avio file_;    // likewise
  output_ptr oc_;
  AVStream* stream_ = nullptr;
  swr_ptr swr_;
  fifo_ptr fifo_;
  frame_ptr conv_;
  frame_ptr frame_;
  packet_ptr pkt_;
  bool variable_ = false;
  int frame_size_ = 0;
  int64_t next_pts_ = 0;
};

} // namespace

encoded_audio encode_stream(demuxer& d, format target, const limits& lim,
                            const std::string& out_path) {
  pcm p;
  encoder_pipeline pipeline{target, lim, out_path};
  decode_all(d, p, lim, &pipeline);
  return pipeline.finish(p);
}


} // namespace phonon::media::detail
