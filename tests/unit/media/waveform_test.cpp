#include "media/waveform.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/unit/temp_dir.hpp"

using namespace phonon::media;

namespace {

// -- an independent reference, written apart from media/waveform.cpp -------

/// The 8-bit min,max values audiowaveform writes for `pcm` (interleaved,
/// `ch` channels) at `spp` samples per pixel: per window, per output
/// channel, the min and max divided by 256 (merged channels: their sum
/// divided by the count first).
std::vector<int> reference(const std::vector<int16_t>& pcm, int ch, int spp,
                           bool mono) {
  std::vector<int> out;
  size_t frames = pcm.size() / ch;
  int outs = mono ? 1 : ch;
  for (size_t start = 0; start < frames; start += spp) {
    size_t end = std::min(frames, start + spp);
    for (int c = 0; c < outs; ++c) {
      int lo = 32767;
      int hi = -32768;
      for (size_t i = start; i < end; ++i) {
        int v = 0;
        if (mono) {
          for (int k = 0; k < ch; ++k)
            v += pcm[i * ch + k];
          v /= ch;
        } else {
          v = pcm[i * ch + c];
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

uint32_t u32_at(const std::string& s, size_t pos) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i)
    v = v << 8 | static_cast<unsigned char>(s[pos + i]);
  return v;
}

/// Checks the .dat bytes field by field and returns its data values.
std::vector<int> check_dat(const std::string& dat, int channels, int rate,
                           int spp, uint32_t length) {
  size_t header = channels == 1 ? 20 : 24;
  REQUIRE(dat.size() == header + size_t{length} * channels * 2);
  CHECK(u32_at(dat, 0) == (channels == 1 ? 1u : 2u));
  CHECK(u32_at(dat, 4) == 1u);
  CHECK(u32_at(dat, 8) == static_cast<uint32_t>(rate));
  CHECK(u32_at(dat, 12) == static_cast<uint32_t>(spp));
  CHECK(u32_at(dat, 16) == length);
  if (channels != 1)
    CHECK(u32_at(dat, 20) == static_cast<uint32_t>(channels));
  std::vector<int> values;
  for (size_t i = header; i < dat.size(); ++i)
    values.push_back(static_cast<int8_t>(dat[i]));
  return values;
}

/// Checks the JSON fields and returns its data values.
std::vector<int> check_json(const std::string& text, int channels, int rate,
                            int spp, uint32_t length) {
  REQUIRE(!text.empty());
  CHECK(text.back() == '\n');
  auto j = nlohmann::json::parse(text);
  CHECK(j["version"] == 2);
  CHECK(j["channels"] == channels);
  CHECK(j["sample_rate"] == rate);
  CHECK(j["samples_per_pixel"] == spp);
  CHECK(j["bits"] == 8);
  CHECK(j["length"] == length);
  std::vector<int> values = j["data"].get<std::vector<int>>();
  CHECK(values.size() == size_t{length} * channels * 2);
  return values;
}

/// A 16-bit PCM WAV file, its 44-byte header written here by hand.
std::string wav_bytes(const std::vector<int16_t>& pcm, int ch, int rate) {
  auto le = [](std::string& s, uint32_t v, int n) {
    for (int i = 0; i < n; ++i)
      s.push_back(static_cast<char>(v >> (8 * i) & 0xFF));
  };
  uint32_t data = static_cast<uint32_t>(pcm.size() * 2);
  std::string s = "RIFF";
  le(s, 36 + data, 4);
  s += "WAVEfmt ";
  le(s, 16, 4);
  le(s, 1, 2);
  le(s, ch, 2);
  le(s, rate, 4);
  le(s, rate * ch * 2, 4);
  le(s, ch * 2, 2);
  le(s, 16, 2);
  s += "data";
  le(s, data, 4);
  for (auto v : pcm)
    le(s, static_cast<uint16_t>(v), 2);
  return s;
}

std::string read_all(const std::filesystem::path& p) {
  std::ifstream in{p, std::ios::binary};
  return {std::istreambuf_iterator<char>{in}, {}};
}

/// Runs both serializers on `pcm` and compares them with the reference.
void check_against_reference(const std::vector<int16_t>& pcm, int ch,
                             int rate, int spp, bool mono) {
  waveform_options opt;
  opt.samples_per_pixel = spp;
  opt.mono = mono;
  auto w = compute_waveform(pcm.data(), pcm.size() / ch, ch, rate, opt);
  auto expected = reference(pcm, ch, spp, mono);
  int outs = mono ? 1 : ch;
  uint32_t length = static_cast<uint32_t>(
    (pcm.size() / ch + static_cast<size_t>(spp) - 1) / spp);
  CHECK(w.length() == length);
  CHECK(check_dat(to_dat(w), outs, rate, spp, length) == expected);
  CHECK(check_json(to_json(w), outs, rate, spp, length) == expected);
}

} // namespace

TEST_CASE("a sine burst's peaks match a plain min/max per window",
          "[unit][media][waveform]") {
  const int rate = 44100;
  std::vector<int16_t> pcm(10000, 0);
  for (size_t i = 3000; i < 7000; ++i)
    pcm[i] = static_cast<int16_t>(
      std::lround(20000 * std::sin(2 * M_PI * 440.0 * i / rate)));
  check_against_reference(pcm, 1, rate, 256, false);
  check_against_reference(pcm, 1, rate, 32, false);
  // The burst shows: quiet pixels at the edges, loud ones in the middle.
  waveform_options opt;
  opt.samples_per_pixel = 1000;
  auto w = compute_waveform(pcm.data(), pcm.size(), 1, rate, opt);
  REQUIRE(w.length() == 10);
  CHECK(w.data[0] == 0);
  CHECK(w.data[1] == 0);
  CHECK(w.data[2 * 5] < -19000);
  CHECK(w.data[2 * 5 + 1] > 19000);
}

TEST_CASE("silence is all zeros", "[unit][media][waveform]") {
  std::vector<int16_t> pcm(4410 * 2, 0);
  check_against_reference(pcm, 2, 44100, 441, false);
  waveform_options opt;
  opt.samples_per_pixel = 441;
  auto w = compute_waveform(pcm.data(), 4410, 2, 44100, opt);
  CHECK(w.length() == 10);
  CHECK(std::all_of(w.data.begin(), w.data.end(),
                    [](int16_t v) { return v == 0; }));
}

TEST_CASE("stereo keeps its channels apart, or merges them as "
          "audiowaveform does",
          "[unit][media][waveform]") {
  const int rate = 48000;
  std::vector<int16_t> pcm;
  for (int i = 0; i < 5000; ++i) {
    // Left: a loud sine; right: a quiet, shifted square wave.
    pcm.push_back(static_cast<int16_t>(
      std::lround(30000 * std::sin(2 * M_PI * 100.0 * i / rate))));
    pcm.push_back(static_cast<int16_t>((i / 50) % 2 ? 3000 : -1000));
  }
  check_against_reference(pcm, 2, rate, 480, false);
  check_against_reference(pcm, 2, rate, 480, true);
  waveform_options opt;
  opt.samples_per_pixel = 5000;
  auto w = compute_waveform(pcm.data(), 5000, 2, rate, opt);
  REQUIRE(w.length() == 1);
  REQUIRE(w.channels == 2);
  CHECK(w.data[0] < -29000);          // left min
  CHECK(w.data[1] > 29000);           // left max
  CHECK(w.data[2] == -1000);          // right min
  CHECK(w.data[3] == 3000);           // right max
  // Merging: (l + r) / 2 truncated toward zero, as audiowaveform does.
  std::vector<int16_t> two{-3, 0, 1, 2, -32768, -32768, 32767, 32767};
  opt.samples_per_pixel = 2;
  opt.mono = true;
  auto m = compute_waveform(two.data(), 4, 2, rate, opt);
  REQUIRE(m.data.size() == 4);
  CHECK(m.data[0] == -1); // -3 / 2
  CHECK(m.data[1] == 1);  // 3 / 2
  CHECK(m.data[2] == -32768);
  CHECK(m.data[3] == 32767);
}

TEST_CASE("an odd length ends with a shorter last window",
          "[unit][media][waveform]") {
  std::vector<int16_t> pcm;
  for (int i = 0; i < 1001; ++i)
    pcm.push_back(static_cast<int16_t>((i * 7919) % 65536 - 32768));
  pcm.back() = -32768; // alone in the last window of 333
  check_against_reference(pcm, 1, 8000, 333, false);
  check_against_reference(pcm, 1, 8000, 1000, false);
  waveform_options opt;
  opt.samples_per_pixel = 1000;
  auto w = compute_waveform(pcm.data(), pcm.size(), 1, 8000, opt);
  REQUIRE(w.length() == 2);
  CHECK(w.data[2] == -32768);
  CHECK(w.data[3] == -32768);
  // Three channels, 7 frames, 3 per pixel.
  std::vector<int16_t> three(21);
  for (size_t i = 0; i < three.size(); ++i)
    three[i] = static_cast<int16_t>(i * 1000 - 9000);
  check_against_reference(three, 3, 8000, 3, false);
  check_against_reference(three, 3, 8000, 3, true);
  // No frames at all: no pixels.
  std::vector<int16_t> none;
  auto e = compute_waveform(none.data(), 0, 1, 8000, opt);
  CHECK(e.length() == 0);
  CHECK(to_json(e)
        == "{\"version\":2,\"channels\":1,\"sample_rate\":8000,"
           "\"samples_per_pixel\":1000,\"bits\":8,\"length\":0,"
           "\"data\":[]}\n");
  CHECK(to_dat(e).size() == 20);
}

TEST_CASE("16-bit peaks become 8-bit ones by division toward zero",
          "[unit][media][waveform]") {
  CHECK(to_8bit(0) == 0);
  CHECK(to_8bit(255) == 0);
  CHECK(to_8bit(256) == 1);
  CHECK(to_8bit(-1) == 0);
  CHECK(to_8bit(-255) == 0);
  CHECK(to_8bit(-256) == -1);
  CHECK(to_8bit(-257) == -1);
  CHECK(to_8bit(32767) == 127);
  CHECK(to_8bit(-32768) == -128);
}

TEST_CASE("the exact bytes of a small waveform", "[unit][media][waveform]") {
  waveform w;
  w.sample_rate = 44100;
  w.samples_per_pixel = 512;
  w.channels = 1;
  w.data = {-32768, 32767, -300, 1000};
  CHECK(to_json(w)
        == "{\"version\":2,\"channels\":1,\"sample_rate\":44100,"
           "\"samples_per_pixel\":512,\"bits\":8,\"length\":2,"
           "\"data\":[-128,127,-1,3]}\n");
  const unsigned char mono_dat[] = {1, 0, 0, 0,  1, 0, 0, 0,  0x44, 0xAC, 0, 0,
                                    0, 2, 0, 0,  2, 0, 0, 0,
                                    0x80, 0x7F, 0xFF, 0x03};
  CHECK(to_dat(w)
        == std::string(reinterpret_cast<const char*>(mono_dat),
                       sizeof(mono_dat)));
  w.channels = 2;
  w.data = {-256, 256, -512, 512};
  const unsigned char stereo_dat[] = {2, 0, 0, 0,  1, 0, 0, 0,
                                      0x44, 0xAC, 0, 0,  0, 2, 0, 0,
                                      1, 0, 0, 0,  2, 0, 0, 0,
                                      0xFF, 0x01, 0xFE, 0x02};
  CHECK(to_dat(w)
        == std::string(reinterpret_cast<const char*>(stereo_dat),
                       sizeof(stereo_dat)));
}

TEST_CASE("pixels_per_second becomes samples_per_pixel as audiowaveform "
          "computes it",
          "[unit][media][waveform]") {
  waveform_options opt;
  opt.pixels_per_second = 100;
  CHECK(effective_samples_per_pixel(opt, 44100) == 441);
  CHECK(effective_samples_per_pixel(opt, 22050) == 220);
  opt.pixels_per_second = 1000;
  CHECK(effective_samples_per_pixel(opt, 8000) == 8);
  CHECK(effective_samples_per_pixel(opt, 1000) == 2); // never below 2
  opt.pixels_per_second = 1;
  CHECK(effective_samples_per_pixel(opt, 48000) == 48000);
  opt.pixels_per_second = 0;
  opt.samples_per_pixel = 512;
  CHECK(effective_samples_per_pixel(opt, 48000) == 512);
}

TEST_CASE("a WAV file streamed block by block gives the same bytes as the "
          "whole in memory",
          "[unit][media][waveform]") {
  phonon::testing::temp_dir dir{"phonon-waveform"};
  // 40 001 stereo frames: several read blocks, a window size that does not
  // divide the block size, and a partial last window.
  std::vector<int16_t> pcm;
  for (int i = 0; i < 40001; ++i) {
    pcm.push_back(static_cast<int16_t>(
      std::lround(25000 * std::sin(2 * M_PI * 330.0 * i / 22050))));
    pcm.push_back(static_cast<int16_t>((i * 31337) % 65536 - 32768));
  }
  auto wav = wav_bytes(pcm, 2, 22050);
  auto in = dir.path / "master.wav";
  {
    std::ofstream out{in, std::ios::binary};
    out << wav;
  }
  for (bool mono : {false, true}) {
    for (int spp : {777, 32}) {
      INFO("mono=" << mono << " spp=" << spp);
      waveform_options opt;
      opt.samples_per_pixel = spp;
      opt.mono = mono;
      auto w = compute_waveform(std::string_view{wav}, opt);
      auto expected = reference(pcm, 2, spp, mono);
      auto length = static_cast<uint32_t>((40001 + spp - 1) / spp);
      auto json_path = (dir.path / "w.json").string();
      auto dat_path = (dir.path / "w.dat").string();
      auto rj = waveform_file(in.string(), json_path, opt,
                              waveform_container::json);
      auto rd = waveform_file(in.string(), dat_path, opt,
                              waveform_container::dat);
      CHECK(rj.length == length);
      CHECK(rd.length == length);
      CHECK(rj.channels == (mono ? 1 : 2));
      CHECK(rj.sample_rate == 22050);
      CHECK(rj.samples_per_pixel == spp);
      auto json = read_all(json_path);
      auto dat = read_all(dat_path);
      CHECK(json == to_json(w));
      CHECK(dat == to_dat(w));
      CHECK(check_json(json, mono ? 1 : 2, 22050, spp, length) == expected);
      CHECK(check_dat(dat, mono ? 1 : 2, 22050, spp, length) == expected);
    }
  }
  // pixels_per_second through a file: 22050 / 100 = 220 samples per pixel.
  waveform_options pps;
  pps.pixels_per_second = 100;
  auto r = waveform_file(in.string(), (dir.path / "p.dat").string(), pps,
                         waveform_container::dat);
  CHECK(r.samples_per_pixel == 220);
  CHECK(check_dat(read_all(dir.path / "p.dat"), 2, 22050, 220,
                  (40001 + 219) / 220)
        == reference(pcm, 2, 220, false));
}

TEST_CASE("a waveform of something that is not a 16-bit WAV is refused "
          "and leaves no output",
          "[unit][media][waveform]") {
  phonon::testing::temp_dir dir{"phonon-waveform"};
  auto in = dir.path / "junk";
  {
    std::ofstream out{in, std::ios::binary};
    out << "this is not a RIFF file at all";
  }
  auto out = (dir.path / "out.json").string();
  waveform_options opt;
  opt.pixels_per_second = 100;
  try {
    waveform_file(in.string(), out, opt, waveform_container::json);
    FAIL("no error");
  } catch (const media_error& e) {
    CHECK(e.code() == media_errc::corrupt);
  }
  CHECK(!std::filesystem::exists(out));
  try {
    waveform_file((dir.path / "missing.wav").string(), out, opt,
                  waveform_container::json);
    FAIL("no error");
  } catch (const media_error& e) {
    CHECK(e.code() == media_errc::input_missing);
  }
  // 8-bit PCM: a WAV, but not what a master is.
  auto wav = wav_bytes({0, 0, 0, 0}, 1, 8000);
  wav[34] = 8;
  {
    std::ofstream o{in, std::ios::binary};
    o << wav;
  }
  CHECK_THROWS_AS(waveform_file(in.string(), out, opt,
                                waveform_container::json),
                  media_error);
  CHECK(!std::filesystem::exists(out));
}

TEST_CASE("waveform_output_bound bounds the output by the zoom, not the "
          "master",
          "[unit][media][waveform]") {
  // 170 s of 7.1 at 192 kHz: the master of the report, 522 MB.
  const uint64_t master = 44 + uint64_t{170} * 192000 * 8 * 2;
  waveform_options spp;
  spp.samples_per_pixel = 1000;
  // .dat: 2 bytes per pixel and channel = master / spp, plus header and a
  // partial pixel.
  auto dat = waveform_output_bound(master, 192000, spp,
                                   waveform_container::dat);
  CHECK(dat >= master / 1000);
  CHECK(dat <= master / 1000 + 64);
  auto json = waveform_output_bound(master, 192000, spp,
                                    waveform_container::json);
  CHECK(json >= 5 * (master / 1000));
  CHECK(json <= 5 * (master / 1000) + 512);
  // pixels_per_second needs the rate: 100 px/s at 192 kHz = 1920 spp.
  waveform_options pps;
  pps.pixels_per_second = 100;
  CHECK(waveform_output_bound(master, 192000, pps, waveform_container::dat)
        == 24 + master / 1920 + 16);
  // Unknown rate: the finest zoom (2 samples per pixel) is assumed.
  CHECK(waveform_output_bound(master, 0, pps, waveform_container::dat)
        == 24 + master / 2 + 16);
}

TEST_CASE("waveform_output_bound is never below the real output",
          "[unit][media][waveform]") {
  // 3 channels, 8 kHz, 10007 frames (not a whole number of pixels).
  const int ch = 3;
  const size_t frames = 10007;
  std::vector<int16_t> pcm(frames * ch);
  for (size_t i = 0; i < pcm.size(); ++i)
    pcm[i] = static_cast<int16_t>((i * 7919) % 65536 - 32768);
  const uint64_t master = 44 + pcm.size() * 2;
  for (int32_t s : {32, 33, 1000, 20000})
    for (bool mono : {false, true}) {
      waveform_options opt;
      opt.samples_per_pixel = s;
      opt.mono = mono;
      auto w = compute_waveform(pcm.data(), frames, ch, 8000, opt);
      INFO("spp " << s << " mono " << mono);
      CHECK(to_dat(w).size()
            <= waveform_output_bound(master, 8000, opt,
                                     waveform_container::dat));
      CHECK(to_json(w).size()
            <= waveform_output_bound(master, 8000, opt,
                                     waveform_container::json));
    }
}
