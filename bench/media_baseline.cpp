// The in-process baselines of issue 10's target table: what the raw libav
// work costs on this machine, without Phonon around it.
//
//   phonon_media_bench decode FILE [ITER]   decode FILE (from memory) to a
//                                          s16 WAV in memory, like a master
//   phonon_media_bench mp3 WAV [ITER]      encode WAV (from memory) to MP3
//                                          with libmp3lame, in memory
//
// Both use libav directly (not phonon_media), so the baseline does not move
// when Phonon's own transcoder changes. decode: probe + find_stream_info,
// decode every packet, convert to s16, a WAV in memory (what a master is).
// mp3: the master's samples straight into libmp3lame (no demuxer or probing),
// muxed with the Xing header the mp3 muxer writes on a seekable output, as
// Phonon's files have. MP3 settings are Phonon's (media/transcode.cpp
// `configure`): libmp3lame, source rate, 64 kbit/s mono / 128 kbit/s stereo.
//
// Why in-process and not `lame` or `ffmpeg -c:a libmp3lame` minus a null
// run: the `lame` CLI has its own resampling/VBR defaults and file I/O, and
// ffmpeg's process startup (70-150 ms here) is 4-8x the encode itself, so
// "ffmpeg minus a null ffmpeg" is a small difference of two large, noisy
// numbers. In-process, each iteration is timed alone (fresh contexts, as a
// Phonon job has), after WARMUP untimed ones.
//
// Prints one line: `<mode> n=.. median_ms=.. mean_ms=.. min_ms=..
// cpu_median_ms=.. out_bytes=..` (wall clock per operation; cpu is this
// thread's CPU time).

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>
#include <libswresample/swresample.h>
}

namespace {

constexpr int warmup = 3;

[[noreturn]] void fail(const char* what, int rc = 0) {
  char buf[128] = "";
  if (rc < 0)
    av_strerror(rc, buf, sizeof buf);
  throw std::runtime_error(std::string{what} + ": " + buf);
}

int check(int rc, const char* what) {
  if (rc < 0)
    fail(what, rc);
  return rc;
}

// -- memory input / output ----------------------------------------------------

struct mem_in {
  const std::string* data;
  int64_t pos = 0;
  static int read(void* o, uint8_t* buf, int size) {
    auto* s = static_cast<mem_in*>(o);
    auto left = static_cast<int64_t>(s->data->size()) - s->pos;
    if (left <= 0)
      return AVERROR_EOF;
    auto n = static_cast<int>(std::min<int64_t>(size, left));
    std::memcpy(buf, s->data->data() + s->pos, static_cast<size_t>(n));
    s->pos += n;
    return n;
  }
  static int64_t seek(void* o, int64_t off, int whence) {
    auto* s = static_cast<mem_in*>(o);
    auto size = static_cast<int64_t>(s->data->size());
    if (whence & AVSEEK_SIZE)
      return size;
    int64_t base = (whence & ~AVSEEK_FORCE) == SEEK_CUR   ? s->pos
                   : (whence & ~AVSEEK_FORCE) == SEEK_END ? size
                                                          : 0;
    if (base + off < 0 || base + off > size)
      return AVERROR(EINVAL);
    return s->pos = base + off;
  }
};

struct mem_out {
  std::string data;
  int64_t pos = 0;
  static int write(void* o, const uint8_t* buf, int size) {
    auto* s = static_cast<mem_out*>(o);
    auto end = s->pos + size;
    if (end > static_cast<int64_t>(s->data.size()))
      s->data.resize(static_cast<size_t>(end));
    std::memcpy(s->data.data() + s->pos, buf, static_cast<size_t>(size));
    s->pos = end;
    return size;
  }
  static int64_t seek(void* o, int64_t off, int whence) {
    auto* s = static_cast<mem_out*>(o);
    auto size = static_cast<int64_t>(s->data.size());
    if (whence & AVSEEK_SIZE)
      return size;
    int64_t base = (whence & ~AVSEEK_FORCE) == SEEK_CUR   ? s->pos
                   : (whence & ~AVSEEK_FORCE) == SEEK_END ? size
                                                          : 0;
    if (base + off < 0)
      return AVERROR(EINVAL);
    return s->pos = base + off;
  }
};

AVIOContext* make_avio(void* opaque, bool write) {
  constexpr int size = 32 * 1024;
  auto* buf = static_cast<unsigned char*>(av_malloc(size));
  return avio_alloc_context(
    buf, size, write ? 1 : 0, opaque, write ? nullptr : &mem_in::read,
#if LIBAVFORMAT_VERSION_MAJOR >= 61
    write ? &mem_out::write : nullptr,
#else
    write ? reinterpret_cast<int (*)(void*, uint8_t*, int)>(&mem_out::write)
          : nullptr,
#endif
    write ? &mem_out::seek : &mem_in::seek);
}

void free_avio(AVIOContext*& io) {
  if (io != nullptr)
    av_freep(&io->buffer);
  avio_context_free(&io);
}

// -- a decoder over an in-memory file -------------------------------------------

struct decoder {
  mem_in in;
  AVIOContext* io = nullptr;
  AVFormatContext* fmt = nullptr;
  AVCodecContext* dec = nullptr;
  AVPacket* pkt = av_packet_alloc();
  AVFrame* frame = av_frame_alloc();
  int stream = -1;

  explicit decoder(const std::string& bytes) : in{&bytes} {
    io = make_avio(&in, false);
    fmt = avformat_alloc_context();
    fmt->pb = io;
    fmt->flags |= AVFMT_FLAG_CUSTOM_IO;
    check(avformat_open_input(&fmt, "", nullptr, nullptr),
          "avformat_open_input");
    check(avformat_find_stream_info(fmt, nullptr), "find_stream_info");
    const AVCodec* codec = nullptr;
    stream = check(av_find_best_stream(fmt, AVMEDIA_TYPE_AUDIO, -1, -1,
                                       &codec, 0),
                   "av_find_best_stream");
    dec = avcodec_alloc_context3(codec);
    check(avcodec_parameters_to_context(dec, fmt->streams[stream]->codecpar),
          "parameters_to_context");
    check(avcodec_open2(dec, codec, nullptr), "avcodec_open2");
  }
  ~decoder() {
    av_frame_free(&frame);
    av_packet_free(&pkt);
    avcodec_free_context(&dec);
    avformat_close_input(&fmt);
    free_avio(io);
  }
  // Calls f(frame) for every decoded frame, then once with nullptr.
  template <class F>
  void run(F&& f) {
    auto drain = [&] {
      for (;;) {
        auto rc = avcodec_receive_frame(dec, frame);
        if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF)
          return;
        check(rc, "avcodec_receive_frame");
        f(frame);
        av_frame_unref(frame);
      }
    };
    while (av_read_frame(fmt, pkt) >= 0) {
      if (pkt->stream_index == stream) {
        check(avcodec_send_packet(dec, pkt), "avcodec_send_packet");
        drain();
      }
      av_packet_unref(pkt);
    }
    check(avcodec_send_packet(dec, nullptr), "flush");
    drain();
    f(nullptr);
  }
};

void put_le(std::string& s, uint32_t v, int bytes) {
  for (int i = 0; i < bytes; ++i)
    s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// The master: the source decoded and converted to interleaved s16 WAV.
std::string decode_to_wav(const std::string& bytes) {
  decoder d{bytes};
  SwrContext* swr = nullptr;
  check(swr_alloc_set_opts2(&swr, &d.dec->ch_layout, AV_SAMPLE_FMT_S16,
                            d.dec->sample_rate, &d.dec->ch_layout,
                            d.dec->sample_fmt, d.dec->sample_rate, 0, nullptr),
        "swr_alloc_set_opts2");
  check(swr_init(swr), "swr_init");
  int ch = d.dec->ch_layout.nb_channels;
  std::string pcm;
  d.run([&](AVFrame* f) {
    if (f == nullptr)
      return;
    auto old = pcm.size();
    pcm.resize(old + static_cast<size_t>(f->nb_samples) * ch * 2);
    auto* out = reinterpret_cast<uint8_t*>(pcm.data() + old);
    auto n = check(swr_convert(swr, &out, f->nb_samples,
                               const_cast<const uint8_t**>(f->extended_data),
                               f->nb_samples),
                   "swr_convert");
    pcm.resize(old + static_cast<size_t>(n) * ch * 2);
  });
  swr_free(&swr);
  std::string wav;
  wav.reserve(44 + pcm.size());
  auto rate = static_cast<uint32_t>(d.dec->sample_rate);
  wav += "RIFF";
  put_le(wav, static_cast<uint32_t>(36 + pcm.size()), 4);
  wav += "WAVEfmt ";
  put_le(wav, 16, 4);
  put_le(wav, 1, 2);
  put_le(wav, static_cast<uint32_t>(ch), 2);
  put_le(wav, rate, 4);
  put_le(wav, rate * static_cast<uint32_t>(ch) * 2, 4);
  put_le(wav, static_cast<uint32_t>(ch) * 2, 2);
  put_le(wav, 16, 2);
  wav += "data";
  put_le(wav, static_cast<uint32_t>(pcm.size()), 4);
  wav += pcm;
  return wav;
}

uint32_t get_le(const std::string& s, size_t at, int bytes) {
  uint32_t v = 0;
  for (int i = 0; i < bytes; ++i)
    v |= static_cast<uint32_t>(static_cast<uint8_t>(s[at + i])) << (8 * i);
  return v;
}

// The master encoded to MP3 with libmp3lame, muxed in memory. "Bare": the
// master's RIFF header is read here and its s16 samples go straight to the
// encoder (no demuxer, no probing, no resampler: the master is already s16
// at a rate MP3 takes); the mp3 muxer adds the Xing header, as Phonon's
// output has.
std::string encode_mp3(const std::string& wav) {
  if (wav.size() < 44 || wav.compare(0, 4, "RIFF") != 0
      || wav.compare(8, 4, "WAVE") != 0)
    fail("not a RIFF/WAVE master");
  int src_ch = 0;
  int rate = 0;
  size_t data = 0;
  size_t data_size = 0;
  for (size_t at = 12; at + 8 <= wav.size();) {
    auto size = get_le(wav, at + 4, 4);
    if (wav.compare(at, 4, "fmt ") == 0) {
      if (get_le(wav, at + 8, 2) != 1 || get_le(wav, at + 22, 2) != 16)
        fail("master is not PCM s16");
      src_ch = static_cast<int>(get_le(wav, at + 10, 2));
      rate = static_cast<int>(get_le(wav, at + 12, 4));
    } else if (wav.compare(at, 4, "data") == 0) {
      data = at + 8;
      data_size = std::min<size_t>(size, wav.size() - data);
      break;
    }
    at += 8 + size + (size & 1);
  }
  if (src_ch < 1 || src_ch > 2 || rate <= 0 || data == 0)
    fail("master: mono or stereo s16 expected");
  const AVCodec* codec = avcodec_find_encoder_by_name("libmp3lame");
  if (codec == nullptr)
    fail("libmp3lame not available");
  AVCodecContext* enc = avcodec_alloc_context3(codec);
  av_channel_layout_default(&enc->ch_layout, src_ch);
  enc->sample_rate = rate; // the phrase's master is 22.05 kHz
  enc->sample_fmt = AV_SAMPLE_FMT_S16P;
  enc->time_base = AVRational{1, rate};
  enc->bit_rate = src_ch > 1 ? 128000 : 64000;
  mem_out out;
  AVIOContext* io = make_avio(&out, true);
  AVFormatContext* oc = nullptr;
  check(avformat_alloc_output_context2(&oc, nullptr, "mp3", nullptr),
        "alloc_output_context2");
  check(avcodec_open2(enc, codec, nullptr), "avcodec_open2 libmp3lame");
  AVStream* st = avformat_new_stream(oc, nullptr);
  check(avcodec_parameters_from_context(st->codecpar, enc),
        "parameters_from_context");
  st->time_base = enc->time_base;
  oc->pb = io;
  oc->flags |= AVFMT_FLAG_CUSTOM_IO;
  check(avformat_write_header(oc, nullptr), "write_header");
  AVFrame* ef = av_frame_alloc();
  AVPacket* pkt = av_packet_alloc();
  auto drain = [&] {
    for (;;) {
      auto rc = avcodec_receive_packet(enc, pkt);
      if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF)
        return;
      check(rc, "avcodec_receive_packet");
      pkt->stream_index = 0;
      av_packet_rescale_ts(pkt, enc->time_base, st->time_base);
      check(av_interleaved_write_frame(oc, pkt), "write_frame");
    }
  };
  auto* samples = reinterpret_cast<const int16_t*>(wav.data() + data);
  auto total = static_cast<int64_t>(data_size / (2 * src_ch));
  for (int64_t pos = 0; pos < total; pos += enc->frame_size) {
    auto n = static_cast<int>(std::min<int64_t>(enc->frame_size, total - pos));
    av_frame_unref(ef);
    ef->nb_samples = n;
    ef->format = enc->sample_fmt;
    ef->sample_rate = rate;
    av_channel_layout_copy(&ef->ch_layout, &enc->ch_layout);
    check(av_frame_get_buffer(ef, 0), "frame_get_buffer");
    for (int c = 0; c < src_ch; ++c) {
      auto* dst = reinterpret_cast<int16_t*>(ef->extended_data[c]);
      for (int i = 0; i < n; ++i)
        dst[i] = samples[(pos + i) * src_ch + c];
    }
    ef->pts = pos;
    check(avcodec_send_frame(enc, ef), "avcodec_send_frame");
    drain();
  }
  check(avcodec_send_frame(enc, nullptr), "flush");
  drain();
  check(av_write_trailer(oc), "write_trailer");
  av_packet_free(&pkt);
  av_frame_free(&ef);
  avformat_free_context(oc);
  free_avio(io);
  avcodec_free_context(&enc);
  return std::move(out.data);
}

double thread_cpu_ms() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

} // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: phonon_media_bench decode|mp3 FILE [ITER]\n");
    return 2;
  }
  std::string mode = argv[1];
  std::ifstream file{argv[2], std::ios::binary};
  std::ostringstream os;
  os << file.rdbuf();
  auto bytes = os.str();
  int iter = argc > 3 ? std::max(1, std::stoi(argv[3])) : 50;
  av_log_set_level(AV_LOG_ERROR);
  auto once = [&] {
    return mode == "mp3" ? encode_mp3(bytes) : decode_to_wav(bytes);
  };
  if (mode != "decode" && mode != "mp3") {
    std::fprintf(stderr, "unknown mode %s\n", mode.c_str());
    return 2;
  }
  try {
    size_t out_bytes = 0;
    for (int i = 0; i < warmup; ++i)
      out_bytes = once().size();
    std::vector<double> wall, cpu;
    for (int i = 0; i < iter; ++i) {
      auto c0 = thread_cpu_ms();
      auto t0 = std::chrono::steady_clock::now();
      out_bytes = once().size();
      wall.push_back(std::chrono::duration<double, std::milli>(
                       std::chrono::steady_clock::now() - t0)
                       .count());
      cpu.push_back(thread_cpu_ms() - c0);
    }
    double sum = 0;
    for (auto w : wall)
      sum += w;
    std::sort(wall.begin(), wall.end());
    std::sort(cpu.begin(), cpu.end());
    std::printf("%s n=%d median_ms=%.3f mean_ms=%.3f min_ms=%.3f "
                "cpu_median_ms=%.3f out_bytes=%zu\n",
                mode.c_str(), iter, wall[wall.size() / 2], sum / iter,
                wall.front(), cpu[cpu.size() / 2], out_bytes);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "phonon_media_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
