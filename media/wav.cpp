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

} // namespace

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

} // namespace phonon::media::detail
