#include "media/transcode.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdarg>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <vector>

#include "media/av_ptr.hpp"
#include "media/memory_io.hpp"

extern "C" {
#include <libavutil/channel_layout.h>
#include <libavutil/log.h>
#include <libavutil/opt.h>
#include <libavutil/samplefmt.h>
}

namespace phonon::media {

namespace {

// -- limits -------------------------------------------------------------------


// Bytes of the input handed to the content prober (libavformat's own cap).
constexpr size_t max_probe_bytes = size_t{1} << 20;

// Decoded PCM is kept in pieces of about this size: one growing string
// would copy itself at each doubling and hold old and new copies at once.
constexpr size_t pcm_chunk_bytes = size_t{1} << 20;

// Input samples converted per step while encoding.
constexpr int encode_chunk = 4096;

// A decode is refused when it yields less than this share of the duration
// the container declares (a truncated file).
constexpr double min_decoded_share = 0.9;

// -- logging ------------------------------------------------------------------

std::atomic<void (*)(int, const char*)> log_sink{nullptr};

void forward_log(void* avcl, int level, const char* fmt, va_list vl) {
  if (level > av_log_get_level())
    return;
  auto sink = log_sink.load();
  if (sink == nullptr)
    return;
  thread_local int print_prefix = 1;
  char line[1024];
  av_log_format_line2(avcl, level, fmt, vl, line, sizeof(line),
                      &print_prefix);
  auto len = std::strlen(line);
  while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
    line[--len] = '\0';
  if (len > 0)
    sink(level, line);
}

// Makes libav quiet unless a sink asks for its lines; runs once.
void init_once() {
  static const bool done = [] {
    av_log_set_level(AV_LOG_QUIET);
    return true;
  }();
  static_cast<void>(done);
}

// -- errors -------------------------------------------------------------------

std::string av_err(int rc) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {0};
  av_strerror(rc, buf, sizeof(buf));
  return buf;
}

[[noreturn]] void fail(media_errc code, const std::string& what) {
  throw media_error(code, what);
}

[[noreturn]] void fail(media_errc code, const char* call, int rc) {
  throw media_error(code, std::string{call} + ": " + av_err(rc));
}

int64_t now_unix_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch())
    .count();
}

// Called between packets and frames: nobody waits for a late result.
void check_deadline(const limits& lim) {
  if (lim.deadline_unix_ms != 0 && now_unix_ms() > lim.deadline_unix_ms)
    fail(media_errc::deadline_exceeded, "the deadline passed");
}

[[noreturn]] void fail_too_long(const limits& lim) {
  fail(media_errc::too_long, "the audio is longer than the allowed "
                               + describe_duration(lim.max_duration_ms));
}

template <class T>
T* check_alloc(T* ptr, const char* what) {
  if (ptr == nullptr)
    fail(media_errc::internal, std::string{what} + ": out of memory");
  return ptr;
}

// -- demuxing -----------------------------------------------------------------

// An opened input with its chosen audio stream.
struct demuxer {
  explicit demuxer(std::string_view bytes) : io(bytes) {
    // nop
  }

  memory_reader io; // declared first: must outlive fmt
  input_ptr fmt;
  AVStream* stream = nullptr;
  const AVCodec* decoder = nullptr;
  std::string format_name;
  // A WAV whose data runs to the end of the file: its last packet is
  // short, which the demuxer flags as corrupt.
  bool open_ended_wav = false;
};

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

std::optional<wav_data_chunk> find_wav_data(std::string_view bytes) {
  auto le32 = [&](size_t at) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; --i)
      v = (v << 8) | static_cast<uint8_t>(bytes[at + static_cast<size_t>(i)]);
    return v;
  };
  if (bytes.size() < 12 || bytes.substr(0, 4) != "RIFF"
      || bytes.substr(8, 4) != "WAVE")
    return std::nullopt;
  uint64_t pos = 12;
  while (pos + 8 <= bytes.size()) {
    auto at = static_cast<size_t>(pos);
    auto id = bytes.substr(at, 4);
    uint64_t size = le32(at + 4);
    if (id == "data")
      return wav_data_chunk{size, bytes.size() - (pos + 8)};
    pos += 8 + size + (size & 1);
  }
  return std::nullopt;
}

// Share of a RIFF WAVE's declared data chunk present in `bytes`; 1 when the
// data is open-ended or there is no chunk. The wav demuxer quietly clamps
// its duration to the file size, so this is how a WAV cut at a block
// boundary is still recognised as truncated.
double wav_data_share(std::string_view bytes) {
  auto data = find_wav_data(bytes);
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

int64_t declared_duration_ms(const demuxer& d, bool& trusted);

std::unique_ptr<demuxer> open_audio(std::string_view bytes,
                                    const limits& lim) {
  init_once();
  check_deadline(lim);
  if (bytes.empty())
    fail(media_errc::not_audio, "empty input");
  auto* ifmt = detect(bytes);
  auto kind = classify(ifmt);
  if (kind == container::other)
    fail(media_errc::not_audio,
         std::string{"unsupported container: "} + ifmt->name);
  auto d = std::make_unique<demuxer>(bytes);
  auto* raw = check_alloc(avformat_alloc_context(), "avformat_alloc_context");
  raw->pb = d->io.context();
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
  if (kind == container::wav && wav_data_share(bytes) < min_decoded_share)
    fail(media_errc::corrupt, "WAV data chunk is truncated");
  if (kind == container::wav) {
    auto data = find_wav_data(bytes);
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
  return d;
}

// The duration the container declares, in ms; 0 when unknown. Sets
// `trusted` when it comes from headers rather than a bitrate guess.
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

// Decoded audio: interleaved s16 at the source rate and channel count.
struct pcm {
  // Whole sample frames, in pieces of about pcm_chunk_bytes.
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

  // Appends `n` bytes (to be filled by the caller) and returns them.
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

  // Gives back the last `n` bytes of what grow() appended.
  void shrink(size_t n) {
    chunks.back().resize(chunks.back().size() - n);
  }

  int64_t duration_ms() const {
    return rate > 0 ? samples * 1000 / rate : 0;
  }
};

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
  pcm_sink(pcm& out, const limits& lim) : out_(out), lim_(lim) {
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

// Decodes the chosen stream end to end; throws corrupt on any error,
// too_long as soon as the audio passes lim.max_duration_ms.
void decode_all(demuxer& d, pcm& out, const limits& lim) {
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
  pcm_sink sink{out, lim};
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

// -- WAV ----------------------------------------------------------------------

void put_le(std::string& out, uint32_t value, int bytes) {
  for (int i = 0; i < bytes; ++i)
    out.push_back(static_cast<char>((value >> (8 * i)) & 0xFF));
}

// Moves the PCM into a WAV file, freeing each piece once it is copied.
std::string make_wav(pcm& p) {
  auto data_size = p.bytes();
  if (data_size > std::numeric_limits<uint32_t>::max() - 36)
    fail(media_errc::too_long, "the audio is too long for a WAV master");
  auto channels = static_cast<uint32_t>(p.channels());
  auto rate = static_cast<uint32_t>(p.rate);
  std::string out;
  out.reserve(44 + data_size);
  out += "RIFF";
  put_le(out, static_cast<uint32_t>(36 + data_size), 4);
  out += "WAVEfmt ";
  put_le(out, 16, 4);              // fmt chunk size
  put_le(out, 1, 2);               // WAVE_FORMAT_PCM
  put_le(out, channels, 2);
  put_le(out, rate, 4);
  put_le(out, rate * channels * 2, 4); // byte rate
  put_le(out, channels * 2, 2);    // block align
  put_le(out, 16, 2);              // bits per sample
  out += "data";
  put_le(out, static_cast<uint32_t>(data_size), 4);
  for (auto& chunk : p.chunks) {
    out += chunk;
    std::string{}.swap(chunk);
  }
  p.chunks.clear();
  return out;
}

// -- encoding -----------------------------------------------------------------

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

class encoder_pipeline {
public:
  encoder_pipeline(const pcm& src, format target, const limits& lim)
    : src_(src), target_(target), lim_(lim) {
    // nop
  }

  encoded_audio run() {
    setup_encoder();
    setup_muxer();
    setup_resampler();
    feed_all();
    finish();
    encoded_audio result;
    result.bytes = out_.take();
    result.info.format = to_string(target_);
    result.info.codec = avcodec_get_name(enc_->codec_id);
    result.info.duration_ms = src_.duration_ms();
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
                          : choose_rate(codec_, src_.rate);
    enc_->sample_fmt = choose_sample_format(codec_);
    av_channel_layout_default(&enc_->ch_layout,
                              std::min(src_.channels(), spec_.max_channels));
    enc_->time_base = AVRational{1, enc_->sample_rate};
    configure(enc_.get(), target_);
  }

  void setup_muxer() {
    AVFormatContext* raw = nullptr;
    auto rc = avformat_alloc_output_context2(&raw, nullptr, spec_.muxer,
                                             nullptr);
    if (rc < 0 || raw == nullptr)
      fail(media_errc::internal, "avformat_alloc_output_context2", rc);
    oc_.reset(raw);
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
    raw->pb = out_.context();
    raw->flags |= AVFMT_FLAG_CUSTOM_IO;
    AVDictionary* opts = nullptr;
    if (target_ == format::m4a) {
      // faststart re-reads the output in a second pass through io_open.
      out_.allow_reopen(raw);
      av_dict_set(&opts, "movflags", "+faststart", 0);
    }
    rc = avformat_write_header(raw, &opts);
    av_dict_free(&opts);
    if (rc < 0)
      fail(media_errc::internal, "avformat_write_header", rc);
  }

  void setup_resampler() {
    SwrContext* raw = nullptr;
    // 5.1 takes the layouts by non-const pointer but only reads them.
    auto* in_layout = const_cast<AVChannelLayout*>(&src_.layout);
    auto rc = swr_alloc_set_opts2(&raw, &enc_->ch_layout, enc_->sample_fmt,
                                  enc_->sample_rate, in_layout,
                                  AV_SAMPLE_FMT_S16, src_.rate, 0, nullptr);
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

  void feed_all() {
    auto frame_bytes = src_.frame_bytes();
    for (const auto& chunk : src_.chunks) {
      auto* data = reinterpret_cast<const uint8_t*>(chunk.data());
      auto samples = static_cast<int64_t>(chunk.size() / frame_bytes);
      for (int64_t done = 0; done < samples;) {
        check_deadline(lim_);
        auto n = static_cast<int>(
          std::min<int64_t>(encode_chunk, samples - done));
        convert(data + static_cast<size_t>(done) * frame_bytes, n);
        done += n;
        send_full_frames();
      }
    }
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

  void finish() {
    if (auto rc = avcodec_send_frame(enc_.get(), nullptr); rc < 0)
      fail(media_errc::internal, "avcodec_send_frame(flush)", rc);
    write_packets();
    if (auto rc = av_write_trailer(oc_.get()); rc < 0)
      fail(media_errc::internal, "av_write_trailer", rc);
  }

  const pcm& src_;
  format target_;
  const limits& lim_;
  target_spec spec_{};
  const AVCodec* codec_ = nullptr;
  codec_ptr enc_;
  memory_writer out_; // declared before oc_: must outlive it
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

// Runs `f`, turning stray allocation failures into media_error{internal}.
template <class F>
auto guarded(F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const media_error&) {
    throw;
  } catch (const std::bad_alloc&) {
    fail(media_errc::internal, "out of memory");
  } catch (const std::length_error&) {
    fail(media_errc::internal, "out of memory");
  }
}

} // namespace

std::string describe_duration(int64_t ms) {
  auto plural = [](int64_t n, const char* unit) {
    return std::to_string(n) + " " + unit + (n == 1 ? "" : "s");
  };
  if (ms > 0 && ms % 60000 == 0)
    return plural(ms / 60000, "minute");
  if (ms % 1000 == 0)
    return plural(ms / 1000, "second");
  auto frac = std::to_string(1000 + ms % 1000).substr(1);
  while (frac.back() == '0')
    frac.pop_back();
  return std::to_string(ms / 1000) + "." + frac + " seconds";
}

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
    encoder_pipeline pipeline{p, target, lim};
    return pipeline.run();
  });
}

void set_log_sink(void (*sink)(int level, const char* text)) {
  init_once();
  log_sink.store(sink);
  if (sink != nullptr) {
    av_log_set_callback(&forward_log);
    av_log_set_level(AV_LOG_ERROR);
  } else {
    av_log_set_callback(&av_log_default_callback);
    av_log_set_level(AV_LOG_QUIET);
  }
}

} // namespace phonon::media
