#include "media/demux.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <optional>

extern "C" {
#include <libavutil/samplefmt.h>
}

namespace phonon::media::detail {

namespace {

// -- demuxing -----------------------------------------------------------------

// What open_input looks at before libav does: the input's head (all of
// an input in memory, the first max_probe_bytes of a file), its size and,
// for a file, a way to read a chunk header beyond the head.
struct input_view {
  std::string_view head;
  uint64_t size = 0;
  const file_reader* file = nullptr;
};

// Detects, opens and checks `in` through `pb` into `d` (open_audio and
// open_audio_file share it).
void open_input(demuxer& d, const input_view& in, AVIOContext* pb,
                const limits& lim);

enum class container { mov, wav, mp3, ogg, flac, matroska, other };

container classify(const AVInputFormat* ifmt) {
  std::string_view name = ifmt->name;
  if (name == "mov,mp4,m4a,3gp,3g2,mj2")
    return container::mov;
  if (name == "wav")
    return container::wav;
  if (name == "mp3")
    return container::mp3;
  if (name == "ogg")
    return container::ogg;
  if (name == "flac")
    return container::flac;
  if (name == "matroska,webm")
    return container::matroska;
  return container::other;
}

// Phonon's name for a container + codec pair, or nullptr if not accepted.
const char* phonon_name(container c, AVCodecID id) {
  switch (c) {
    case container::mov:
      return id == AV_CODEC_ID_AAC || id == AV_CODEC_ID_ALAC ? "m4a" : nullptr;
    case container::wav:
      return "wav";
    case container::mp3:
      return id == AV_CODEC_ID_MP3 ? "mp3" : nullptr;
    case container::ogg:
      if (id == AV_CODEC_ID_VORBIS)
        return "ogg";
      return id == AV_CODEC_ID_OPUS ? "opus" : nullptr;
    case container::flac:
      return id == AV_CODEC_ID_FLAC ? "flac" : nullptr;
    case container::matroska:
      return id == AV_CODEC_ID_OPUS || id == AV_CODEC_ID_VORBIS ? "webm"
                                                                : nullptr;
    default:
      return nullptr;
  }
}

// Refuses what no decoder can make sense of (`bad`: not_audio for
// headers, corrupt for decoded frames) and, with a message for the client,
// what voice does not need.
void check_params(int rate, int channels, media_errc bad) {
  if (rate <= 0 || channels <= 0)
    fail(bad, "no usable sample rate or channel count");
  if (channels > max_channels)
    fail(media_errc::out_of_range,
         "the audio has " + std::to_string(channels) + " channels; at most "
           + std::to_string(max_channels) + " are accepted");
  if (rate > max_sample_rate)
    fail(media_errc::out_of_range,
         "the audio's sample rate is " + std::to_string(rate)
           + " Hz; at most " + std::to_string(max_sample_rate)
           + " Hz is accepted");
}

// The size field of a RIFF WAVE's data chunk and the bytes after its
// header; nullopt when `bytes` are not a RIFF WAVE with a data chunk.
struct wav_data_chunk {
  uint64_t declared = 0;
  uint64_t present = 0;

  // 0 or 0xFFFFFFFF: written by a program that could not seek back, e.g.
  // `ffmpeg -f wav pipe:1`. The data runs to the end of the file.
  bool open_ended() const {
    return declared == 0 || declared == 0xFFFFFFFFu;
  }
};

std::optional<wav_data_chunk> find_wav_data(const input_view& in) {
  auto le32 = [](std::string_view b, size_t at) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; --i)
      v = (v << 8) | static_cast<uint8_t>(b[at + static_cast<size_t>(i)]);
    return v;
  };
  auto head = in.head;
  if (head.size() < 12 || head.substr(0, 4) != "RIFF"
      || head.substr(8, 4) != "WAVE")
    return std::nullopt;
  uint64_t pos = 12;
  std::string far; // a chunk header beyond `head` (files only)
  while (pos + 8 <= in.size) {
    std::string_view chunk;
    if (pos + 8 <= head.size()) {
      chunk = head.substr(static_cast<size_t>(pos), 8);
    } else {
      if (in.file == nullptr)
        break;
      far = in.file->read_at(pos, 8);
      if (far.size() < 8)
        break;
      chunk = far;
    }
    uint64_t size = le32(chunk, 4);
    if (chunk.substr(0, 4) == "data")
      return wav_data_chunk{size, in.size - (pos + 8)};
    pos += 8 + size + (size & 1);
  }
  return std::nullopt;
}

// Share of a RIFF WAVE's declared data chunk present in `bytes`; 1 when the
// data is open-ended or there is no chunk. The wav demuxer quietly clamps
// its duration to the file size, so this is how a WAV cut at a block
// boundary is still recognised as truncated.
double wav_data_share(const input_view& in) {
  auto data = find_wav_data(in);
  if (!data || data->open_ended())
    return 1.0;
  return std::min(1.0, static_cast<double>(data->present)
                         / static_cast<double>(data->declared));
}

// Detects the container by content, before opening anything, so that "not
// audio at all" (not_audio) and "an audio container that does not open"
// (corrupt) stay apart. Like libavformat, it probes a growing prefix and
// stops at the first confident answer: probing all of a large WAV costs
// more than decoding it.
const AVInputFormat* detect(std::string_view bytes) {
  auto limit = std::min(bytes.size(), max_probe_bytes);
  std::vector<uint8_t> buf;
  for (auto len = std::min<size_t>(2048, limit);;
       len = std::min(len * 2, limit)) {
    buf.assign(len + AVPROBE_PADDING_SIZE, 0);
    std::memcpy(buf.data(), bytes.data(), len);
    AVProbeData pd{};
    pd.filename = "";
    pd.buf = buf.data();
    pd.buf_size = static_cast<int>(len);
    int score = 0;
    auto* ifmt = av_probe_input_format3(&pd, 1, &score);
    bool last = len == limit;
    if (ifmt != nullptr
        && (score > AVPROBE_SCORE_RETRY
            || (last && score == AVPROBE_SCORE_RETRY)))
      return ifmt;
    if (last)
      fail(media_errc::not_audio, "unrecognised content");
  }
}

// Copies `src` to `dst`, replacing an unspecified order by the default
// layout of its channel count (swresample needs a real layout).
void usable_layout(AVChannelLayout& dst, const AVChannelLayout& src) {
  av_channel_layout_uninit(&dst);
  if (src.order == AV_CHANNEL_ORDER_UNSPEC
      || av_channel_layout_copy(&dst, &src) < 0)
    av_channel_layout_default(&dst, src.nb_channels);
}

class pcm_sink {
public:
  // With a `next` consumer the PCM is handed on frame by frame; without,
  // it is stored in `out`.
  pcm_sink(pcm& out, const limits& lim, pcm_consumer* next)
    : out_(out), lim_(lim), next_(next) {
    // nop
  }

  void push(const AVFrame* frame) {
    if (frame->nb_samples <= 0)
      return;
    if (!swr_)
      start(frame);
    else if (frame->sample_rate != out_.rate
             || frame->ch_layout.nb_channels != out_.channels()
             || frame->format != in_format_)
      fail(media_errc::corrupt, "audio parameters change mid-stream");
    // Counted before the samples are stored: the decode stops as soon as
    // the audio passes the limit, holding at most the limit's worth of PCM.
    if (out_.samples + frame->nb_samples > max_samples_)
      refuse_too_long();
    auto frame_bytes = out_.frame_bytes();
    auto room = swr_get_out_samples(swr_.get(), frame->nb_samples);
    if (room < 0)
      fail(media_errc::internal, "swr_get_out_samples", room);
    auto room_bytes = static_cast<size_t>(room) * frame_bytes;
    if (next_ != nullptr) {
      // One frame's worth, reused: the memory does not grow with the
      // recording.
      if (scratch_.size() < room_bytes)
        scratch_.resize(room_bytes);
      auto* dst = scratch_.data();
      auto got = swr_convert(swr_.get(), &dst, room,
                             const_cast<const uint8_t**>(
                               frame->extended_data),
                             frame->nb_samples);
      if (got < 0)
        fail(media_errc::internal, "swr_convert", got);
      if (got > 0)
        next_->consume(out_, scratch_.data(), got);
      out_.samples += got;
      return;
    }
    auto* dst = reinterpret_cast<uint8_t*>(out_.grow(room_bytes));
    auto got = swr_convert(swr_.get(), &dst, room,
                           const_cast<const uint8_t**>(frame->extended_data),
                           frame->nb_samples);
    if (got < 0) {
      out_.shrink(room_bytes);
      fail(media_errc::internal, "swr_convert", got);
    }
    out_.shrink(static_cast<size_t>(room - got) * frame_bytes);
    out_.samples += got;
  }

private:
  void start(const AVFrame* frame) {
    check_params(frame->sample_rate, frame->ch_layout.nb_channels,
                 media_errc::corrupt);
    out_.rate = frame->sample_rate;
    // The WAV master's data chunk holds at most 4 GiB.
    max_samples_ = static_cast<int64_t>(
      (std::numeric_limits<uint32_t>::max() - 36)
      / (static_cast<size_t>(frame->ch_layout.nb_channels) * 2));
    if (lim_.max_duration_ms > 0) {
      max_samples_ = std::min(max_samples_,
                              av_rescale(lim_.max_duration_ms, out_.rate,
                                         1000));
      budget_ = lim_.max_pcm_bytes;
      if (budget_ == 0)
        budget_ = std::max(default_pcm_budget,
                           static_cast<uint64_t>(lim_.max_duration_ms) * 48
                             * 2 * 2);
    } else {
      budget_ = lim_.max_pcm_bytes;
    }
    if (budget_ != 0) {
      auto frame_bytes = static_cast<uint64_t>(
        frame->ch_layout.nb_channels * 2);
      auto budget_samples = static_cast<int64_t>(budget_ / frame_bytes);
      budget_binds_ = budget_samples < max_samples_;
      max_samples_ = std::min(max_samples_, budget_samples);
    }
    in_format_ = frame->format;
    usable_layout(out_.layout, frame->ch_layout);
    SwrContext* raw = nullptr;
    auto rc = swr_alloc_set_opts2(&raw, &out_.layout, AV_SAMPLE_FMT_S16,
                                  out_.rate, &out_.layout,
                                  static_cast<AVSampleFormat>(in_format_),
                                  out_.rate, 0, nullptr);
    swr_.reset(raw);
    if (rc < 0)
      fail(media_errc::internal, "swr_alloc_set_opts2", rc);
    if (rc = swr_init(raw); rc < 0)
      fail(media_errc::internal, "swr_init", rc);
  }

  pcm& out_;
  const limits& lim_;
  pcm_consumer* next_;
  std::vector<uint8_t> scratch_;
  swr_ptr swr_;
  // Says which bound was passed, in words for the client.
  [[noreturn]] void refuse_too_long() const {
    if (budget_binds_) {
      auto ms = max_samples_ * 1000 / out_.rate / 1000 * 1000;
      fail(media_errc::too_long,
           "the audio is longer than the " + describe_duration(ms)
             + " allowed for " + std::to_string(out_.channels())
             + " channels at " + std::to_string(out_.rate) + " Hz ("
             + std::to_string(budget_ >> 20) + " MiB decoded)");
    }
    if (lim_.max_duration_ms > 0)
      fail_too_long(lim_);
    fail(media_errc::too_long, "the audio is too long for a WAV master");
  }

  int in_format_ = -1;
  int64_t max_samples_ = 0;
  uint64_t budget_ = 0;
  bool budget_binds_ = false;
};

void drain_decoder(AVCodecContext* dec, AVFrame* frame, pcm_sink& sink) {
  for (;;) {
    auto rc = avcodec_receive_frame(dec, frame);
    if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF)
      return;
    if (rc < 0)
      fail(media_errc::corrupt, "avcodec_receive_frame", rc);
    if (frame->decode_error_flags != 0
        || (frame->flags & AV_FRAME_FLAG_CORRUPT))
      fail(media_errc::corrupt, "decoder flagged a corrupt frame");
    sink.push(frame);
    av_frame_unref(frame);
  }
}

} // namespace

// -- demuxing -----------------------------------------------------------------

std::unique_ptr<demuxer> open_audio(std::string_view bytes,
                                    const limits& lim) {
  init_once();
  check_deadline(lim);
  if (bytes.empty())
    fail(media_errc::not_audio, "empty input");
  auto d = std::make_unique<demuxer>();
  d->memory = std::make_unique<memory_reader>(bytes);
  open_input(*d, input_view{bytes, bytes.size(), nullptr},
             d->memory->context(), lim);
  return d;
}

std::unique_ptr<demuxer> open_audio_file(const std::string& path,
                                         const limits& lim) {
  init_once();
  check_deadline(lim);
  auto d = std::make_unique<demuxer>();
  d->file = std::make_unique<file_reader>(path);
  if (d->file->size() == 0)
    fail(media_errc::not_audio, "empty input");
  // Only the head is held in memory: what detection and the WAV checks
  // read; libav reads the rest through the file's context.
  auto head = d->file->head(max_probe_bytes);
  open_input(*d,
             input_view{head, static_cast<uint64_t>(d->file->size()),
                        d->file.get()},
             d->file->context(), lim);
  return d;
}

namespace {

void open_input(demuxer& dm, const input_view& in, AVIOContext* pb,
                const limits& lim) {
  auto* d = &dm;
  auto* ifmt = detect(in.head);
  auto kind = classify(ifmt);
  if (kind == container::other)
    fail(media_errc::not_audio,
         std::string{"unsupported container: "} + ifmt->name);
  auto* raw = check_alloc(avformat_alloc_context(), "avformat_alloc_context");
  raw->pb = pb;
  raw->flags |= AVFMT_FLAG_CUSTOM_IO;
  // The wav demuxer asks to sniff PCM packets for S/PDIF-wrapped AC-3/DTS
  // (up to a megabyte, most of a decode's cost); PCM stays PCM here.
  if (kind == container::wav)
    raw->max_probe_packets = 1;
  // On failure avformat_open_input frees raw itself.
  if (auto rc = avformat_open_input(&raw, "", ifmt, nullptr); rc < 0)
    fail(media_errc::corrupt, "avformat_open_input", rc);
  d->fmt.reset(raw);
  if (auto rc = avformat_find_stream_info(raw, nullptr); rc < 0)
    fail(media_errc::corrupt, "avformat_find_stream_info", rc);
  const AVCodec* dec = nullptr;
  auto idx = av_find_best_stream(raw, AVMEDIA_TYPE_AUDIO, -1, -1, &dec, 0);
  if (idx < 0 || dec == nullptr)
    fail(media_errc::not_audio, "no decodable audio stream");
  auto* st = raw->streams[idx];
  auto* name = phonon_name(kind, st->codecpar->codec_id);
  if (name == nullptr)
    fail(media_errc::not_audio,
         std::string{"unsupported codec "}
           + avcodec_get_name(st->codecpar->codec_id) + " in " + ifmt->name);
  check_params(st->codecpar->sample_rate,
               st->codecpar->ch_layout.nb_channels, media_errc::not_audio);
  // Cover art and other streams are skipped by the demuxer.
  for (unsigned i = 0; i < raw->nb_streams; ++i)
    if (static_cast<int>(i) != idx)
      raw->streams[i]->discard = AVDISCARD_ALL;
  if (kind == container::wav && wav_data_share(in) < min_decoded_share)
    fail(media_errc::corrupt, "WAV data chunk is truncated");
  if (kind == container::wav) {
    auto data = find_wav_data(in);
    d->open_ended_wav = data && data->open_ended();
  }
  d->stream = st;
  d->decoder = dec;
  d->format_name = name;
  // A container that says it is too long is refused before any decoding
  // (a bitrate guess proves nothing either way); one that says less is
  // still counted while decoding.
  bool trusted = false;
  auto declared = declared_duration_ms(*d, trusted);
  if (lim.max_duration_ms > 0 && trusted && declared > lim.max_duration_ms)
    fail_too_long(lim);
}

} // namespace

int64_t declared_duration_ms(const demuxer& d, bool& trusted) {
  trusted = d.fmt->duration_estimation_method != AVFMT_DURATION_FROM_BITRATE;
  auto* st = d.stream;
  if (st->duration != AV_NOPTS_VALUE && st->duration > 0)
    return av_rescale_q(st->duration, st->time_base, AVRational{1, 1000});
  if (d.fmt->duration != AV_NOPTS_VALUE && d.fmt->duration > 0)
    return av_rescale(d.fmt->duration, 1000, AV_TIME_BASE);
  trusted = false;
  return 0;
}

// -- decoding -----------------------------------------------------------------

void decode_all(demuxer& d, pcm& out, const limits& lim,
                pcm_consumer* next) {
  codec_ptr dec{check_alloc(avcodec_alloc_context3(d.decoder),
                            "avcodec_alloc_context3")};
  if (auto rc = avcodec_parameters_to_context(dec.get(), d.stream->codecpar);
      rc < 0)
    fail(media_errc::corrupt, "avcodec_parameters_to_context", rc);
  dec->pkt_timebase = d.stream->time_base;
  if (auto rc = avcodec_open2(dec.get(), d.decoder, nullptr); rc < 0)
    fail(media_errc::corrupt, "avcodec_open2", rc);
  packet_ptr pkt{check_alloc(av_packet_alloc(), "av_packet_alloc")};
  frame_ptr frame{check_alloc(av_frame_alloc(), "av_frame_alloc")};
  pcm_sink sink{out, lim, next};
  for (;;) {
    check_deadline(lim);
    auto rc = av_read_frame(d.fmt.get(), pkt.get());
    if (rc == AVERROR_EOF)
      break;
    if (rc < 0)
      fail(media_errc::corrupt, "av_read_frame", rc);
    if (pkt->stream_index != d.stream->index) {
      av_packet_unref(pkt.get());
      continue;
    }
    if ((pkt->flags & AV_PKT_FLAG_CORRUPT) && d.open_ended_wav) {
      // The short read at the end of open-ended WAV data: keep its whole
      // sample frames.
      auto align = std::max(1, d.stream->codecpar->block_align);
      pkt->size -= pkt->size % align;
      pkt->flags &= ~AV_PKT_FLAG_CORRUPT;
      if (pkt->size == 0) {
        av_packet_unref(pkt.get());
        continue;
      }
    }
    if (pkt->flags & AV_PKT_FLAG_CORRUPT) {
      av_packet_unref(pkt.get());
      fail(media_errc::corrupt, "demuxer flagged a corrupt packet");
    }
    rc = avcodec_send_packet(dec.get(), pkt.get());
    av_packet_unref(pkt.get());
    if (rc < 0)
      fail(media_errc::corrupt, "avcodec_send_packet", rc);
    drain_decoder(dec.get(), frame.get(), sink);
  }
  if (auto rc = avcodec_send_packet(dec.get(), nullptr); rc < 0)
    fail(media_errc::corrupt, "avcodec_send_packet(flush)", rc);
  drain_decoder(dec.get(), frame.get(), sink);
  if (out.samples == 0)
    fail(media_errc::corrupt, "no audio samples decoded");
  bool trusted = false;
  auto declared = declared_duration_ms(d, trusted);
  if (trusted && declared > 0
      && static_cast<double>(out.duration_ms())
           < min_decoded_share * static_cast<double>(declared))
    fail(media_errc::corrupt,
         "decoded " + std::to_string(out.duration_ms()) + " ms of "
           + std::to_string(declared) + " ms declared (truncated)");
}

} // namespace phonon::media::detail
