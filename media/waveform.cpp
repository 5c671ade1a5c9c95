#include "media/waveform.hpp"

#include <algorithm>
#include <limits>
#include <string_view>

#include "media/common.hpp"
#include "media/file_io.hpp"

namespace phonon::media {

namespace {

using detail::fail;

// -- WAV input ----------------------------------------------------------------

/// Where the PCM of a WAV file is and what it holds.
struct wav_layout {
  int32_t channels = 0;
  int32_t sample_rate = 0;
  uint64_t data_offset = 0;
  /// Bytes of whole frames in the data chunk (clamped to the file).
  uint64_t data_size = 0;

  uint32_t block_align() const {
    return static_cast<uint32_t>(channels) * 2;
  }

  uint64_t frames() const {
    return data_size / block_align();
  }
};

uint32_t le16(const unsigned char* p) {
  return uint32_t{p[0]} | uint32_t{p[1]} << 8;
}

uint32_t le32(const unsigned char* p) {
  return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16
         | uint32_t{p[3]} << 24;
}

/// Finds the fmt and data chunks of a RIFF/WAVE file of `total` bytes;
/// `read(offset, n)` returns up to n bytes at offset. Only 16-bit PCM is
/// accepted: it is what Phonon's masters are (media/wav.cpp).
template <class Read>
wav_layout parse_wav(uint64_t total, Read read) {
  auto head = read(0, 12);
  if (head.size() < 12 || head.compare(0, 4, "RIFF") != 0
      || head.compare(8, 4, "WAVE") != 0)
    fail(media_errc::corrupt, "the master is not a RIFF/WAVE file");
  wav_layout out;
  bool have_fmt = false;
  uint64_t pos = 12;
  // A master has two chunks; the bound stops a hostile file.
  for (int chunk = 0; chunk < 1024 && pos + 8 <= total; ++chunk) {
    auto ch = read(pos, 8);
    if (ch.size() < 8)
      break;
    auto* c = reinterpret_cast<const unsigned char*>(ch.data());
    std::string_view id{ch.data(), 4};
    uint64_t size = le32(c + 4);
    if (id == "fmt ") {
      auto fmt = read(pos + 8,
                      static_cast<size_t>(std::min<uint64_t>(size, 40)));
      if (fmt.size() < 16)
        fail(media_errc::corrupt, "the master's fmt chunk is too short");
      auto* f = reinterpret_cast<const unsigned char*>(fmt.data());
      auto tag = le16(f);
      if (tag == 0xFFFE && fmt.size() >= 26)
        tag = le16(f + 24); // WAVE_FORMAT_EXTENSIBLE: the sub-format's tag
      auto channels = static_cast<int32_t>(le16(f + 2));
      auto rate = le32(f + 4);
      auto bits = le16(f + 14);
      if (tag != 1 || bits != 16)
        fail(media_errc::corrupt, "the master is not 16-bit PCM");
      if (channels < 1 || channels > max_channels || rate < 1
          || rate > static_cast<uint32_t>(max_sample_rate))
        fail(media_errc::corrupt, "the master's channels or rate are out "
                                  "of range");
      out.channels = channels;
      out.sample_rate = static_cast<int32_t>(rate);
      have_fmt = true;
    } else if (id == "data") {
      if (!have_fmt)
        fail(media_errc::corrupt, "the master has data before its fmt chunk");
      out.data_offset = pos + 8;
      // A size beyond the file (a writer that never patched it) means
      // what is there.
      auto avail = total - out.data_offset;
      out.data_size = std::min<uint64_t>(size, avail);
      out.data_size -= out.data_size % out.block_align();
      return out;
    }
    pos += 8 + size + (size & 1); // chunks are padded to even sizes
  }
  fail(media_errc::corrupt, "the master has no data chunk");
}

// -- output -------------------------------------------------------------------

void put_le32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i)
    out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

/// Writes a waveform front to back into a string (flushed by the caller
/// whenever it likes): the header, the pixels, the tail. Used by both the
/// in-memory serializers and the streaming file writer, so they agree byte
/// for byte.
class serializer {
public:
  serializer(waveform_container c, int32_t rate, int32_t spp,
             int32_t channels, uint32_t length, std::string& out)
    : container_(c), channels_(channels), out_(out) {
    if (c == waveform_container::dat) {
      put_le32(out_, channels == 1 ? 1 : 2);           // version
      put_le32(out_, 1);                               // flags: 8-bit
      put_le32(out_, static_cast<uint32_t>(rate));
      put_le32(out_, static_cast<uint32_t>(spp));
      put_le32(out_, length);
      if (channels != 1)
        put_le32(out_, static_cast<uint32_t>(channels));
    } else {
      out_ += "{\"version\":2,\"channels\":";
      out_ += std::to_string(channels);
      out_ += ",\"sample_rate\":";
      out_ += std::to_string(rate);
      out_ += ",\"samples_per_pixel\":";
      out_ += std::to_string(spp);
      out_ += ",\"bits\":8,\"length\":";
      out_ += std::to_string(length);
      out_ += ",\"data\":[";
    }
  }

  /// One pixel: min, max per channel.
  void pixel(const int16_t* values) {
    auto n = 2 * static_cast<size_t>(channels_);
    if (container_ == waveform_container::dat) {
      for (size_t i = 0; i < n; ++i)
        out_.push_back(static_cast<char>(to_8bit(values[i])));
      return;
    }
    for (size_t i = 0; i < n; ++i) {
      if (!first_)
        out_.push_back(',');
      first_ = false;
      append_int(to_8bit(values[i]));
    }
  }

  void finish() {
    if (container_ == waveform_container::json)
      out_ += "]}\n";
  }

private:
  void append_int(int v) {
    if (v < 0) {
      out_.push_back('-');
      v = -v;
    }
    if (v >= 100)
      out_.push_back(static_cast<char>('0' + v / 100));
    if (v >= 10)
      out_.push_back(static_cast<char>('0' + v / 10 % 10));
    out_.push_back(static_cast<char>('0' + v % 10));
  }

  waveform_container container_;
  int32_t channels_;
  std::string& out_;
  bool first_ = true;
};

std::string serialize(const waveform& w, waveform_container c) {
  std::string out;
  serializer s{c, w.sample_rate, w.samples_per_pixel, w.channels, w.length(),
               out};
  auto n = 2 * static_cast<size_t>(w.channels);
  for (size_t i = 0; i + n <= w.data.size(); i += n)
    s.pixel(w.data.data() + i);
  s.finish();
  return out;
}

/// Pixels a waveform of `frames` frames has.
uint64_t pixels_of(uint64_t frames, int32_t spp) {
  return (frames + static_cast<uint64_t>(spp) - 1) / static_cast<uint64_t>(spp);
}

/// Interleaved frames per block read from a file.
constexpr size_t frames_per_block = 16384;

/// Decodes `n` little-endian s16 samples.
void decode_s16le(const char* bytes, size_t n, int16_t* out) {
  auto* p = reinterpret_cast<const unsigned char*>(bytes);
  for (size_t i = 0; i < n; ++i)
    out[i] = static_cast<int16_t>(static_cast<uint16_t>(
      uint16_t{p[2 * i]} | uint16_t(uint16_t{p[2 * i + 1]} << 8)));
}

} // namespace

int32_t effective_samples_per_pixel(const waveform_options& opt,
                                    int32_t sample_rate) {
  int32_t spp = opt.samples_per_pixel;
  if (spp <= 0)
    spp = sample_rate / std::max(opt.pixels_per_second, int32_t{1});
  return std::max(spp, min_effective_samples_per_pixel);
}

// -- peak_builder -------------------------------------------------------------

peak_builder::peak_builder(int32_t channels, int32_t samples_per_pixel,
                           bool mono, emit_fn emit)
  : channels_(channels),
    spp_(samples_per_pixel),
    out_channels_(mono ? 1 : channels),
    min_(static_cast<size_t>(out_channels_)),
    max_(static_cast<size_t>(out_channels_)),
    pixel_(2 * static_cast<size_t>(out_channels_)),
    emit_(std::move(emit)) {
  reset();
}

void peak_builder::reset() {
  std::fill(min_.begin(), min_.end(), std::numeric_limits<int16_t>::max());
  std::fill(max_.begin(), max_.end(), std::numeric_limits<int16_t>::min());
  count_ = 0;
}

void peak_builder::flush() {
  for (int32_t c = 0; c < out_channels_; ++c) {
    pixel_[2 * static_cast<size_t>(c)] = static_cast<int16_t>(min_[c]);
    pixel_[2 * static_cast<size_t>(c) + 1] = static_cast<int16_t>(max_[c]);
  }
  emit_(pixel_.data());
  reset();
}

void peak_builder::add(const int16_t* in, size_t frames) {
  auto ch = static_cast<size_t>(channels_);
  for (size_t i = 0; i < frames; ++i) {
    const int16_t* frame = in + i * ch;
    if (out_channels_ == 1) {
      // audiowaveform: the channel sum divided by the channel count
      // (integer division, toward zero).
      int32_t sum = 0;
      for (size_t c = 0; c < ch; ++c)
        sum += frame[c];
      int32_t v = sum / channels_;
      min_[0] = std::min(min_[0], v);
      max_[0] = std::max(max_[0], v);
    } else {
      for (size_t c = 0; c < ch; ++c) {
        min_[c] = std::min<int32_t>(min_[c], frame[c]);
        max_[c] = std::max<int32_t>(max_[c], frame[c]);
      }
    }
    if (++count_ == spp_)
      flush();
  }
}

void peak_builder::finish() {
  if (count_ > 0)
    flush();
}

// -- in memory ----------------------------------------------------------------

waveform compute_waveform(const int16_t* interleaved, size_t frames,
                          int32_t channels, int32_t sample_rate,
                          const waveform_options& opt) {
  waveform w;
  w.sample_rate = sample_rate;
  w.samples_per_pixel = effective_samples_per_pixel(opt, sample_rate);
  w.channels = opt.mono ? 1 : channels;
  auto n = 2 * static_cast<size_t>(w.channels);
  w.data.reserve(pixels_of(frames, w.samples_per_pixel) * n);
  peak_builder b{channels, w.samples_per_pixel, opt.mono,
                 [&](const int16_t* v) {
                   w.data.insert(w.data.end(), v, v + n);
                 }};
  b.add(interleaved, frames);
  b.finish();
  return w;
}

waveform compute_waveform(std::string_view wav, const waveform_options& opt) {
  auto layout = parse_wav(wav.size(), [&](uint64_t off, size_t n) {
    if (off >= wav.size())
      return std::string{};
    return std::string{wav.substr(static_cast<size_t>(off), n)};
  });
  std::vector<int16_t> pcm(layout.frames()
                           * static_cast<size_t>(layout.channels));
  decode_s16le(wav.data() + layout.data_offset, pcm.size(), pcm.data());
  return compute_waveform(pcm.data(), layout.frames(), layout.channels,
                          layout.sample_rate, opt);
}

int8_t to_8bit(int16_t value) {
  return static_cast<int8_t>(value / 256);
}

std::string to_dat(const waveform& w) {
  return serialize(w, waveform_container::dat);
}

std::string to_json(const waveform& w) {
  return serialize(w, waveform_container::json);
}

// -- streaming from a file ----------------------------------------------------

waveform_result waveform_file(const std::string& in_path,
                              const std::string& out_path,
                              const waveform_options& opt,
                              waveform_container container,
                              const limits& lim) {
  return detail::guarded([&] {
    file_reader in{in_path};
    auto total = static_cast<uint64_t>(in.size());
    auto layout = parse_wav(total, [&](uint64_t off, size_t n) {
      return in.read_at(off, n);
    });
    waveform_result res;
    res.sample_rate = layout.sample_rate;
    res.samples_per_pixel =
      effective_samples_per_pixel(opt, layout.sample_rate);
    res.channels = opt.mono ? 1 : layout.channels;
    auto frames = layout.frames();
    auto pixels = pixels_of(frames, res.samples_per_pixel);
    if (pixels > std::numeric_limits<uint32_t>::max())
      fail(media_errc::too_long, "the waveform would have too many pixels");
    res.length = static_cast<uint32_t>(pixels);
    res.duration_ms = static_cast<int64_t>(
      frames * 1000 / static_cast<uint64_t>(layout.sample_rate));

    output_file out{out_path};
    std::string buf;
    constexpr size_t flush_at = 256 * 1024;
    buf.reserve(flush_at + 4096);
    serializer s{container, res.sample_rate, res.samples_per_pixel,
                 res.channels, res.length, buf};
    uint64_t emitted = 0;
    peak_builder b{layout.channels, res.samples_per_pixel, opt.mono,
                   [&](const int16_t* v) {
                     s.pixel(v);
                     ++emitted;
                     if (buf.size() >= flush_at) {
                       out.write(buf.data(), buf.size());
                       buf.clear();
                     }
                   }};
    std::vector<int16_t> pcm(frames_per_block
                             * static_cast<size_t>(layout.channels));
    uint64_t done = 0;
    while (done < frames) {
      detail::check_deadline(lim);
      auto n = static_cast<size_t>(
        std::min<uint64_t>(frames_per_block, frames - done));
      auto bytes = in.read_at(layout.data_offset + done * layout.block_align(),
                              n * layout.block_align());
      if (bytes.size() != n * layout.block_align())
        fail(media_errc::corrupt, "the master ended early");
      decode_s16le(bytes.data(), n * static_cast<size_t>(layout.channels),
                   pcm.data());
      b.add(pcm.data(), n);
      done += n;
    }
    b.finish();
    s.finish();
    if (emitted != pixels)
      fail(media_errc::internal, "waveform length mismatch");
    out.write(buf.data(), buf.size());
    out.keep();
    return res;
  });
}

uint64_t waveform_output_bound(uint64_t master_bytes, int32_t sample_rate,
                               const waveform_options& opt,
                               waveform_container container) {
  int32_t spp = opt.samples_per_pixel > 0 ? opt.samples_per_pixel
                : sample_rate > 0 ? effective_samples_per_pixel(opt, sample_rate)
                                  : min_effective_samples_per_pixel;
  spp = std::max(spp, min_effective_samples_per_pixel);
  // Values (bytes in .dat): 2 per pixel and channel; master_bytes / 2
  // samples make at most master_bytes / spp of them, plus a last partial
  // pixel of every channel.
  uint64_t values = master_bytes / static_cast<uint64_t>(spp)
                    + 2 * static_cast<uint64_t>(max_channels);
  if (container == waveform_container::dat)
    return 24 + values;
  // "-128," per value, and a header well under 256 characters.
  return 256 + 5 * values;
}

} // namespace phonon::media
