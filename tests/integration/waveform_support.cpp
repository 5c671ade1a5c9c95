#include "tests/integration/waveform_support.hpp"

#include <catch2/catch.hpp>

#include <algorithm>

#include <nlohmann/json.hpp>

#include "tests/integration/media_support.hpp"

namespace phonon::integration {

uint32_t u32_at(const std::string& s, size_t pos) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i)
    v = v << 8 | static_cast<unsigned char>(s[pos + i]);
  return v;
}

pcm16 parse_wav(const std::string& wav) {
  REQUIRE(wav.size() >= 12);
  REQUIRE(wav.compare(0, 4, "RIFF") == 0);
  REQUIRE(wav.compare(8, 4, "WAVE") == 0);
  pcm16 out;
  size_t pos = 12;
  while (pos + 8 <= wav.size()) {
    auto id = wav.substr(pos, 4);
    size_t size = u32_at(wav, pos + 4);
    if (id == "fmt ") {
      out.channels = static_cast<unsigned char>(wav[pos + 10])
                     | static_cast<unsigned char>(wav[pos + 11]) << 8;
      out.rate = static_cast<int>(u32_at(wav, pos + 12));
      REQUIRE((static_cast<unsigned char>(wav[pos + 22])) == 16);
    } else if (id == "data") {
      size = std::min(size, wav.size() - pos - 8);
      for (size_t i = 0; i + 1 < size; i += 2)
        out.samples.push_back(static_cast<int16_t>(
          static_cast<unsigned char>(wav[pos + 8 + i])
          | static_cast<unsigned char>(wav[pos + 9 + i]) << 8));
      return out;
    }
    pos += 8 + size + (size & 1);
  }
  FAIL("no data chunk");
  return out;
}

std::vector<int> expected_peaks(const pcm16& p, int spp, bool mono) {
  std::vector<int> out;
  size_t ch = static_cast<size_t>(p.channels);
  size_t frames = p.samples.size() / ch;
  size_t outs = mono ? 1 : ch;
  for (size_t start = 0; start < frames; start += spp) {
    size_t end = std::min(frames, start + static_cast<size_t>(spp));
    for (size_t c = 0; c < outs; ++c) {
      int lo = 32767;
      int hi = -32768;
      for (size_t i = start; i < end; ++i) {
        int v = 0;
        if (mono) {
          for (size_t k = 0; k < ch; ++k)
            v += p.samples[i * ch + k];
          v /= p.channels;
        } else {
          v = p.samples[i * ch + c];
        }
        lo = std::min(lo, v);
        hi = std::max(hi, v);
      }
      out.push_back(lo / 256);
      out.push_back(hi / 256);
    }
  }
  return out;
}

std::string stereo_wav(const temp_dir& dir) {
  auto path = dir / "stereo.wav";
  make_media("-f lavfi -i "
             "\"aevalsrc=0.8*sin(2*PI*440*t)|0.3*sin(2*PI*97*t)*gt(t\\,0.5)"
             ":s=22050:d=1.3\" -c:a pcm_s16le",
             path);
  return read_file(path);
}

void check_waveform_json(const http_response& res, const pcm16& master,
                         const waveform_ask& a) {
  INFO("json ?" << a.query);
  REQUIRE(res.status == 200);
  CHECK(res.header("Content-Type") == "application/json");
  REQUIRE(!res.body.empty());
  CHECK(res.body.back() == '\n');
  auto j = nlohmann::json::parse(res.body);
  int outs = a.mono ? 1 : master.channels;
  size_t frames = master.samples.size() / master.channels;
  auto length = (frames + a.spp - 1) / a.spp;
  CHECK(j["version"] == 2);
  CHECK(j["channels"] == outs);
  CHECK(j["sample_rate"] == master.rate);
  CHECK(j["samples_per_pixel"] == a.spp);
  CHECK(j["bits"] == 8);
  CHECK(j["length"] == length);
  CHECK(j["data"].get<std::vector<int>>()
        == expected_peaks(master, a.spp, a.mono));
}

void check_waveform_dat(const http_response& res, const pcm16& master,
                        const waveform_ask& a) {
  INFO("dat ?" << a.query);
  REQUIRE(res.status == 200);
  CHECK(res.header("Content-Type") == "application/octet-stream");
  int outs = a.mono ? 1 : master.channels;
  size_t frames = master.samples.size() / master.channels;
  auto length = (frames + a.spp - 1) / a.spp;
  size_t header = outs == 1 ? 20 : 24;
  REQUIRE(res.body.size() == header + length * outs * 2);
  CHECK(u32_at(res.body, 0) == (outs == 1 ? 1u : 2u));
  CHECK(u32_at(res.body, 4) == 1u); // 8-bit
  CHECK(u32_at(res.body, 8) == static_cast<uint32_t>(master.rate));
  CHECK(u32_at(res.body, 12) == static_cast<uint32_t>(a.spp));
  CHECK(u32_at(res.body, 16) == length);
  if (outs != 1)
    CHECK(u32_at(res.body, 20) == static_cast<uint32_t>(outs));
  std::vector<int> values;
  for (size_t i = header; i < res.body.size(); ++i)
    values.push_back(static_cast<int8_t>(res.body[i]));
  CHECK(values == expected_peaks(master, a.spp, a.mono));
}

} // namespace phonon::integration
