#include "media/wav.hpp"

#include <cstdint>
#include <limits>

namespace phonon::media::detail {

namespace {

// Appends `value` as `bytes` little-endian bytes.
void put_le(std::string& out, uint32_t value, int bytes) {
  for (int i = 0; i < bytes; ++i)
    out.push_back(static_cast<char>((value >> (8 * i)) & 0xFF));
}

// PCM bytes collected before one write(2) to the master file.
constexpr size_t write_buffer_size = 256 * 1024;

} // namespace

std::string wav_header(int channels, int rate, uint64_t data_size) {
  if (data_size > std::numeric_limits<uint32_t>::max() - 36)
    fail(media_errc::too_long, "the audio is too long for a WAV master");
  auto ch = static_cast<uint32_t>(channels);
  auto hz = static_cast<uint32_t>(rate);
  std::string out;
  out.reserve(wav_header_size);
  out += "RIFF";
  put_le(out, static_cast<uint32_t>(36 + data_size), 4);
  out += "WAVEfmt ";
  put_le(out, 16, 4);            // fmt chunk size
  put_le(out, 1, 2);             // WAVE_FORMAT_PCM
  put_le(out, ch, 2);
  put_le(out, hz, 4);
  put_le(out, hz * ch * 2, 4);   // byte rate
  put_le(out, ch * 2, 2);        // block align
  put_le(out, 16, 2);            // bits per sample
  out += "data";
  put_le(out, static_cast<uint32_t>(data_size), 4);
  return out;
}

std::string make_wav(pcm& p) {
  auto data_size = p.bytes();
  auto header = wav_header(p.channels(), p.rate, data_size);
  std::string out;
  out.reserve(header.size() + data_size);
  out += header;
  for (auto& chunk : p.chunks) {
    out += chunk;
    std::string{}.swap(chunk);
  }
  p.chunks.clear();
  return out;
}

// -- wav_file_writer ----------------------------------------------------------

wav_file_writer::wav_file_writer(output_file& out) : out_(out) {
  buf_.reserve(write_buffer_size);
}

void wav_file_writer::consume(const pcm& format, const uint8_t* data,
                              int samples) {
  if (!started_) {
    // Rewritten by finish() once the size is known.
    std::string placeholder(wav_header_size, '\0');
    out_.write(placeholder.data(), placeholder.size());
    started_ = true;
  }
  auto n = static_cast<size_t>(samples) * format.frame_bytes();
  if (buf_.size() + n > write_buffer_size)
    flush();
  if (n >= write_buffer_size) {
    out_.write(data, n);
    return;
  }
  auto* p = reinterpret_cast<const char*>(data);
  buf_.insert(buf_.end(), p, p + n);
}

void wav_file_writer::flush() {
  if (!buf_.empty())
    out_.write(buf_.data(), buf_.size());
  buf_.clear();
}

void wav_file_writer::finish(const pcm& p) {
  flush();
  auto header = wav_header(p.channels(), p.rate, p.bytes());
  out_.write_at(header.data(), header.size(), 0);
}

} // namespace phonon::media::detail
