#include "media/transcode.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace phonon::media;

namespace fs = std::filesystem;

namespace {

// -- test inputs, made with the ffmpeg CLI once per run ----------------------

class temp_dir {
public:
  temp_dir() {
    auto tmpl = (fs::temp_directory_path() / "phonon_media_XXXXXX").string();
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (mkdtemp(buf.data()) == nullptr)
      throw std::runtime_error("mkdtemp failed");
    path_ = buf.data();
  }

  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }

  const fs::path& path() const {
    return path_;
  }

private:
  fs::path path_;
};

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// Runs ffmpeg with `args` writing `name` in the temp dir; caches the bytes.
const std::string& generate(const std::string& name, const std::string& args) {
  static temp_dir dir;
  static std::map<std::string, std::string> cache;
  auto i = cache.find(name);
  if (i != cache.end())
    return i->second;
  auto out = dir.path() / name;
  auto cmd = "ffmpeg -nostdin -hide_banner -loglevel error -y " + args + " '"
             + out.string() + "'";
  INFO(cmd);
  REQUIRE(std::system(cmd.c_str()) == 0);
  auto bytes = read_file(out);
  REQUIRE_FALSE(bytes.empty());
  return cache.emplace(name, std::move(bytes)).first->second;
}

// A 3 s 440 Hz tone input; `channels` is an output option, so it goes last
// among the inputs (see the cover-art case).
std::string sine(int rate) {
  return "-f lavfi -i sine=frequency=440:duration=3:sample_rate="
         + std::to_string(rate);
}

std::string sine(int rate, int channels) {
  return sine(rate) + " -ac " + std::to_string(channels);
}

constexpr int64_t source_ms = 3000;

struct sample {
  const char* file;
  std::string args;
  const char* format;
  const char* codec;
  int rate;
  int channels;
  int64_t tolerance_ms;
};

// One AAC frame at 44.1/48 kHz; 60 ms for other lossy codecs and for
// fragmented MP4, whose encoder priming has no edit list to trim it.
constexpr int64_t aac_tol = 24;
constexpr int64_t lossy_tol = 60;
constexpr int64_t lossless_tol = 5;

const std::vector<sample>& samples() {
  static const std::vector<sample> all = {
    {"aac_faststart.m4a", sine(44100, 2) + " -c:a aac -movflags +faststart",
     "m4a", "aac", 44100, 2, aac_tol},
    {"aac_moov_end.m4a", sine(48000, 1) + " -c:a aac", "m4a", "aac", 48000,
     1, aac_tol},
    {"fragmented.mp4",
     sine(48000, 1) + " -c:a aac -movflags frag_keyframe+empty_moov", "m4a",
     "aac", 48000, 1, lossy_tol},
    {"alac.m4a", sine(44100, 2) + " -c:a alac", "m4a", "alac", 44100, 2,
     lossless_tol},
    {"pcm.wav", sine(44100, 2) + " -c:a pcm_s16le", "wav", "pcm_s16le",
     44100, 2, lossless_tol},
    {"lame.mp3", sine(24000, 1) + " -c:a libmp3lame", "mp3", "mp3", 24000, 1,
     lossy_tol},
    {"vorbis.ogg", sine(32000, 2) + " -c:a libvorbis", "ogg", "vorbis", 32000,
     2, lossy_tol},
    {"ogg.opus", sine(48000, 2) + " -c:a libopus", "opus", "opus", 48000, 2,
     lossy_tol},
    {"native.flac", sine(16000, 1) + " -c:a flac", "flac", "flac", 16000, 1,
     lossless_tol},
    {"opus.webm", sine(48000, 1) + " -c:a libopus", "webm", "opus", 48000, 1,
     lossy_tol},
    // Written to a pipe like a MediaRecorder stream: no Duration element.
    {"streamed.webm", sine(48000, 2) + " -c:a libopus -f webm pipe:1 >",
     "webm", "opus", 48000, 2, lossy_tol},
    {"cover.m4a",
     sine(44100)
       + " -f lavfi -i color=red:s=64x64:d=1 -map 0:a -map 1:v -frames:v 1"
         " -ac 2 -c:a aac -c:v mjpeg -disposition:v:0 attached_pic",
     "m4a", "aac", 44100, 2, aac_tol},
  };
  return all;
}

const std::string& input(const sample& s) {
  return generate(s.file, s.args);
}

const sample& sample_named(const std::string& file) {
  for (const auto& s : samples())
    if (file == s.file)
      return s;
  throw std::logic_error("no such sample: " + file);
}

const std::string& wav_master_44k_stereo() {
  static const std::string wav
    = decode_to_wav(input(sample_named("pcm.wav"))).wav;
  return wav;
}

const std::string& wav_master_16k_mono() {
  static const std::string wav
    = decode_to_wav(input(sample_named("native.flac"))).wav;
  return wav;
}

// -- byte helpers -------------------------------------------------------------

uint32_t le(const std::string& b, size_t at, int n) {
  uint32_t v = 0;
  for (int i = n - 1; i >= 0; --i)
    v = (v << 8) | static_cast<uint8_t>(b.at(at + static_cast<size_t>(i)));
  return v;
}

std::string random_bytes(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string out(n, '\0');
  for (auto& c : out)
    c = static_cast<char>(rng() & 0xFF);
  return out;
}

media_errc error_of(void (*fn)(const std::string&), const std::string& b) {
  try {
    fn(b);
  } catch (const media_error& e) {
    return e.code();
  }
  FAIL_CHECK("no media_error was thrown");
  return media_errc{};
}

void call_probe(const std::string& b) {
  probe(b);
}

void call_decode(const std::string& b) {
  decode_to_wav(b);
}

void call_encode(const std::string& b) {
  encode(b, format::mp3);
}

std::atomic<int> log_lines{0};

void count_log_line(int, const char* text) {
  if (text != nullptr && *text != '\0')
    ++log_lines;
}

} // namespace

// -- probing and decoding -----------------------------------------------------

TEST_CASE("the inputs have the layout each case claims", "[unit][media]") {
  const auto& faststart = input(sample_named("aac_faststart.m4a"));
  CHECK(faststart.find("moov") < faststart.find("mdat"));
  const auto& moov_end = input(sample_named("aac_moov_end.m4a"));
  CHECK(moov_end.find("moov") > moov_end.find("mdat"));
  CHECK(input(sample_named("fragmented.mp4")).find("moof")
        != std::string::npos);
  // No EBML Duration (0x4489) in the header before the first Cluster
  // (0x1F43B675): probe has to count the samples.
  const auto& streamed = input(sample_named("streamed.webm"));
  auto cluster = streamed.find("\x1F\x43\xB6\x75");
  REQUIRE(cluster != std::string::npos);
  CHECK(streamed.substr(0, cluster).find("\x44\x89") == std::string::npos);
}

TEST_CASE("probe recognises every accepted upload by its content",
          "[unit][media]") {
  for (const auto& s : samples()) {
    INFO(s.file);
    auto info = probe(input(s));
    CHECK(info.format == s.format);
    CHECK(info.codec == s.codec);
    CHECK(info.sample_rate == s.rate);
    CHECK(info.channels == s.channels);
    CHECK(std::abs(info.duration_ms - source_ms) <= lossy_tol);
  }
}

TEST_CASE("decode_to_wav keeps rate, channels and duration",
          "[unit][media]") {
  for (const auto& s : samples()) {
    INFO(s.file);
    auto out = decode_to_wav(input(s));
    CHECK(out.source.format == s.format);
    CHECK(out.source.codec == s.codec);
    CHECK(out.source.sample_rate == s.rate);
    CHECK(out.source.channels == s.channels);
    CHECK(std::abs(out.source.duration_ms - source_ms) <= s.tolerance_ms);
    // The master is a plain RIFF WAVE, PCM s16le, same rate and channels.
    const auto& w = out.wav;
    REQUIRE(w.size() >= 44);
    CHECK(w.compare(0, 4, "RIFF") == 0);
    CHECK(w.compare(8, 8, "WAVEfmt ") == 0);
    CHECK(le(w, 20, 2) == 1);
    CHECK(le(w, 22, 2) == static_cast<uint32_t>(s.channels));
    CHECK(le(w, 24, 4) == static_cast<uint32_t>(s.rate));
    CHECK(le(w, 34, 2) == 16);
    CHECK(w.compare(36, 4, "data") == 0);
    CHECK(le(w, 40, 4) == w.size() - 44);
    CHECK(le(w, 4, 4) == w.size() - 8);
    auto frames = (w.size() - 44) / (2 * static_cast<size_t>(s.channels));
    CHECK(static_cast<int64_t>(frames) * 1000 / s.rate
          == out.source.duration_ms);
    // And it is itself an accepted upload.
    auto again = probe(w);
    CHECK(again.format == "wav");
    CHECK(again.sample_rate == s.rate);
    CHECK(std::abs(again.duration_ms - out.source.duration_ms) <= 1);
  }
}

// -- encoding -----------------------------------------------------------------

TEST_CASE("a WAV master encodes to every format and decodes back",
          "[unit][media]") {
  struct target {
    format f;
    const char* codec;
    bool resample_48k;
    int64_t tolerance_ms;
  };
  const target targets[] = {
    {format::m4a, "aac", false, lossy_tol},
    {format::wav, "pcm_s16le", false, lossless_tol},
    {format::mp3, "mp3", false, lossy_tol},
    {format::ogg, "vorbis", false, lossy_tol},
    {format::opus, "opus", true, lossy_tol},
    {format::flac, "flac", false, lossless_tol},
    {format::webm, "opus", true, lossy_tol},
  };
  struct master {
    const std::string* wav;
    int rate;
    int channels;
  };
  const master masters[] = {{&wav_master_44k_stereo(), 44100, 2},
                            {&wav_master_16k_mono(), 16000, 1}};
  for (const auto& m : masters) {
    for (const auto& t : targets) {
      INFO(to_string(t.f) << " from " << m.rate << " Hz x " << m.channels);
      auto out = encode(*m.wav, t.f);
      auto rate = t.resample_48k ? 48000 : m.rate;
      CHECK(out.info.format == to_string(t.f));
      CHECK(out.info.codec == t.codec);
      CHECK(out.info.sample_rate == rate);
      CHECK(out.info.channels == m.channels);
      CHECK(std::abs(out.info.duration_ms - source_ms) <= lossless_tol);
      auto back = decode_to_wav(out.bytes);
      CHECK(back.source.format == to_string(t.f));
      CHECK(back.source.codec == t.codec);
      CHECK(back.source.sample_rate == rate);
      CHECK(back.source.channels == m.channels);
      CHECK(std::abs(back.source.duration_ms - source_ms) <= t.tolerance_ms);
    }
  }
}

TEST_CASE("m4a output is AAC-LC with moov before mdat", "[unit][media]") {
  auto out = encode(wav_master_44k_stereo(), format::m4a);
  const auto& b = out.bytes;
  REQUIRE(b.size() > 16);
  CHECK(b.compare(4, 4, "ftyp") == 0);
  auto moov = b.find("moov");
  auto mdat = b.find("mdat");
  REQUIRE(moov != std::string::npos);
  REQUIRE(mdat != std::string::npos);
  CHECK(moov < mdat);
  CHECK(probe(b).codec == "aac");
}

TEST_CASE("mp3 output carries a Xing or Info header in its first frame",
          "[unit][media]") {
  for (const auto* wav : {&wav_master_44k_stereo(), &wav_master_16k_mono()}) {
    auto b = encode(*wav, format::mp3).bytes;
    size_t frame = 0;
    if (b.compare(0, 3, "ID3") == 0) {
      REQUIRE(b.size() > 10);
      uint32_t size = 0;
      for (size_t i = 6; i < 10; ++i)
        size = (size << 7) | (static_cast<uint8_t>(b[i]) & 0x7F);
      frame = 10 + size;
    }
    REQUIRE(b.size() > frame + 64);
    // Frame sync (11 set bits), then the tag right after the side info.
    CHECK(static_cast<uint8_t>(b[frame]) == 0xFF);
    CHECK((static_cast<uint8_t>(b[frame + 1]) & 0xE0) == 0xE0);
    auto head = b.substr(frame, 64);
    auto tag = head.find("Xing");
    if (tag == std::string::npos)
      tag = head.find("Info");
    REQUIRE(tag != std::string::npos);
    // The tag's frame count gives the stream's length: flags bit 0 says it
    // is present; MPEG-1 frames hold 1152 samples, MPEG-2/2.5 frames 576.
    auto at = frame + tag;
    REQUIRE(b.size() > at + 12);
    auto be32 = [&](size_t i) {
      uint32_t v = 0;
      for (size_t k = 0; k < 4; ++k)
        v = (v << 8) | static_cast<uint8_t>(b[i + k]);
      return v;
    };
    CHECK((be32(at + 4) & 1) == 1);
    auto frames = static_cast<int64_t>(be32(at + 8));
    bool mpeg1 = ((static_cast<uint8_t>(b[frame + 1]) >> 3) & 3) == 3;
    auto rate = wav == &wav_master_16k_mono() ? 16000 : 44100;
    auto ms = frames * (mpeg1 ? 1152 : 576) * 1000 / rate;
    // Whole frames, plus the encoder's delay and padding.
    CHECK(ms >= source_ms);
    CHECK(ms <= source_ms + 150);
  }
}

TEST_CASE("webm output declares its Duration in the container",
          "[unit][media]") {
  auto b = encode(wav_master_44k_stereo(), format::webm).bytes;
  CHECK(b.compare(0, 4, "\x1A\x45\xDF\xA3") == 0);
  // EBML Duration (0x4489) as an 8-byte float in TimecodeScale units (ms).
  auto at = b.find("\x44\x89\x88");
  REQUIRE(at != std::string::npos);
  REQUIRE(b.size() >= at + 11);
  uint64_t raw = 0;
  for (size_t i = 0; i < 8; ++i)
    raw = (raw << 8) | static_cast<uint8_t>(b[at + 3 + i]);
  double duration = 0;
  std::memcpy(&duration, &raw, sizeof(duration));
  CHECK(std::abs(duration - static_cast<double>(source_ms)) <= lossy_tol);
  auto info = probe(b);
  CHECK(info.format == "webm");
  CHECK(info.duration_ms > 0);
  CHECK(std::abs(info.duration_ms - source_ms) <= lossy_tol);
}

TEST_CASE("encode accepts any accepted upload, not only WAV",
          "[unit][media]") {
  auto out = encode(input(sample_named("ogg.opus")), format::mp3);
  CHECK(out.info.sample_rate == 48000);
  CHECK(out.info.channels == 2);
  auto back = decode_to_wav(out.bytes);
  CHECK(back.source.format == "mp3");
  CHECK(std::abs(back.source.duration_ms - source_ms) <= lossy_tol);
}

// -- hostile input ------------------------------------------------------------

TEST_CASE("bytes that are not audio are refused as not_audio",
          "[unit][media]") {
  std::map<std::string, std::string> cases = {
    {"empty", std::string{}},
    {"1 KiB of random bytes", random_bytes(1024, 7)},
    {"64 KiB of random bytes", random_bytes(64 * 1024, 11)},
    {"text", std::string(2000, 'a') + "\nhello, this is not audio\n"},
    {"png",
     generate("red.png", "-f lavfi -i color=red:s=8x8 -frames:v 1")},
    {"video-only mp4",
     generate("video.mp4", "-f lavfi -i color=red:s=32x32:d=1 -c:v mpeg4")},
  };
  for (const auto& [name, bytes] : cases) {
    INFO(name);
    CHECK(error_of(call_probe, bytes) == media_errc::not_audio);
    CHECK(error_of(call_decode, bytes) == media_errc::not_audio);
    CHECK(error_of(call_encode, bytes) == media_errc::not_audio);
  }
}

TEST_CASE("truncated audio is refused as corrupt", "[unit][media]") {
  auto half = [](const char* file) {
    const auto& b = input(sample_named(file));
    return b.substr(0, b.size() / 2);
  };
  // Our own master has a plain 44-byte header (ffmpeg's adds a LIST chunk).
  const auto& wav = wav_master_44k_stereo();
  std::map<std::string, std::string> cases = {
    {"m4a (moov first) cut in half", half("aac_faststart.m4a")},
    {"m4a (moov at end) cut in half", half("aac_moov_end.m4a")},
    {"fragmented mp4 cut in half", half("fragmented.mp4")},
    {"wav cut to its header", wav.substr(0, 44)},
    {"wav cut in half", half("pcm.wav")},
    {"wav cut at a packet boundary", wav.substr(0, 44 + 4096 * 20)},
    {"mp3 cut in half", half("lame.mp3")},
    {"flac cut in half", half("native.flac")},
    {"webm cut in half", half("opus.webm")},
  };
  for (const auto& [name, bytes] : cases) {
    INFO(name);
    CHECK(error_of(call_decode, bytes) == media_errc::corrupt);
    CHECK(error_of(call_encode, bytes) == media_errc::corrupt);
  }
}

TEST_CASE("damaged audio never crashes and fails only with media_error",
          "[unit][media]") {
  std::mt19937 rng(1234);
  for (const auto& s : samples()) {
    const auto& good = input(s);
    for (int round = 0; round < 4; ++round) {
      auto bytes = good;
      for (int i = 0; i < 16; ++i)
        bytes[rng() % bytes.size()] = static_cast<char>(rng() & 0xFF);
      INFO(s.file << " round " << round);
      try {
        auto out = decode_to_wav(bytes);
        CHECK(out.source.duration_ms > 0);
        CHECK(out.wav.size() > 44);
      } catch (const media_error& e) {
        CHECK(e.code() != media_errc::internal);
      }
    }
  }
}

// -- threads and logging ------------------------------------------------------

TEST_CASE("every format is a deterministic function of the master",
          "[unit][media]") {
  // Two nodes that convert one (recording, format) at once must make the
  // same bytes: both serve them under the same strong ETag, and a client
  // may combine Range answers of both (no random Ogg serial numbers or
  // Matroska UIDs, no encoder version strings).
  const format formats[] = {format::m4a, format::wav,  format::mp3,
                            format::ogg, format::opus, format::flac,
                            format::webm};
  for (auto f : formats) {
    INFO("format " << static_cast<int>(f));
    auto first = encode(wav_master_44k_stereo(), f).bytes;
    auto second = encode(wav_master_44k_stereo(), f).bytes;
    CHECK(first.size() == second.size());
    CHECK((first == second));
  }
}

TEST_CASE("concurrent calls give the same results as sequential ones",
          "[unit][media]") {
  const auto& m4a = input(sample_named("aac_faststart.m4a"));
  const auto& flac = input(sample_named("native.flac"));
  auto expected_m4a = decode_to_wav(m4a).wav;
  auto expected_flac = decode_to_wav(flac).wav;
  std::atomic<int> mismatches{0};
  std::atomic<int> failures{0};
  auto work = [&](const std::string& in, const std::string& expected) {
    for (int i = 0; i < 4; ++i) {
      try {
        if (decode_to_wav(in).wav != expected)
          ++mismatches;
        if (decode_to_wav(encode(in, format::ogg).bytes).source.channels < 1)
          ++mismatches;
      } catch (const media_error&) {
        ++failures;
      }
    }
  };
  std::thread a{work, std::cref(m4a), std::cref(expected_m4a)};
  std::thread b{work, std::cref(flac), std::cref(expected_flac)};
  a.join();
  b.join();
  CHECK(mismatches == 0);
  CHECK(failures == 0);
}

TEST_CASE("set_log_sink routes libav's error lines", "[unit][media]") {
  log_lines = 0;
  set_log_sink(&count_log_line);
  const auto& b = input(sample_named("aac_moov_end.m4a"));
  CHECK(error_of(call_decode, b.substr(0, b.size() / 2))
        == media_errc::corrupt);
  set_log_sink(nullptr);
  CHECK(log_lines > 0);
  // Once removed, the sink hears nothing more.
  auto before = log_lines.load();
  CHECK(error_of(call_decode, b.substr(0, b.size() / 2))
        == media_errc::corrupt);
  CHECK(log_lines == before);
}

// -- limits (issue 8, items 11 and 12) ----------------------------------------

namespace {

// 11 minutes of 8 kHz mono silence: just over the default limit, cheap to
// make and decode.
const std::string& eleven_minutes_flac() {
  return generate("eleven_minutes.flac",
                  "-f lavfi -i anullsrc=r=8000:cl=mono -t 660 -c:a flac");
}

// The same FLAC with STREAMINFO's total-samples field zeroed (as a FLAC
// written to a pipe has it): nothing declares how long it is, so only
// counting while decoding can find out.
std::string undeclared(std::string flac) {
  REQUIRE(flac.compare(0, 4, "fLaC") == 0);
  REQUIRE((static_cast<uint8_t>(flac[4]) & 0x7F) == 0); // STREAMINFO first
  flac[21] = static_cast<char>(static_cast<uint8_t>(flac[21]) & 0xF0);
  for (size_t i = 22; i < 26; ++i)
    flac[i] = 0;
  for (size_t i = 26; i < 42; ++i) // MD5 of the samples: unknown too
    flac[i] = 0;
  return flac;
}

media_errc error_with(const std::function<void()>& fn, std::string* what) {
  try {
    fn();
  } catch (const media_error& e) {
    if (what != nullptr)
      *what = e.what();
    return e.code();
  }
  FAIL_CHECK("no media_error was thrown");
  return media_errc{};
}

int64_t unix_ms_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

// A short tone with `channels` channels (9 needs amerge: ffmpeg has no
// default 9-channel layout to upmix to).
std::string channels_args(int channels, int rate) {
  std::string args = "-f lavfi -i sine=frequency=440:duration=0.2:sample_rate="
                     + std::to_string(rate) + " -filter_complex \"[0]asplit="
                     + std::to_string(channels);
  std::string labels;
  for (int i = 0; i < channels; ++i)
    labels += "[a" + std::to_string(i) + "]";
  args += labels + ";" + labels + "amerge=inputs=" + std::to_string(channels)
          + "\" -c:a pcm_s16le";
  return args;
}

} // namespace

TEST_CASE("audio longer than max_duration is refused as too_long",
          "[unit][media][limits]") {
  limits two_seconds;
  two_seconds.max_duration_ms = 2000;
  limits four_seconds;
  four_seconds.max_duration_ms = 4000;
  // Every container, with and without a declared duration: 3 s is over 2 s.
  for (const auto& s : samples()) {
    INFO(s.file);
    std::string what;
    CHECK(error_with([&] { decode_to_wav(input(s), two_seconds); }, &what)
          == media_errc::too_long);
    CHECK(what.find("longer than the allowed 2 seconds") != std::string::npos);
    CHECK(error_with([&] { probe(input(s), two_seconds); }, nullptr)
          == media_errc::too_long);
    CHECK(decode_to_wav(input(s), four_seconds).source.duration_ms > 2000);
  }
}

TEST_CASE("the default limit is 10 minutes and is counted while decoding",
          "[unit][media][limits]") {
  const auto& declared = eleven_minutes_flac();
  const auto hidden = undeclared(declared);
  for (const std::string* bytes : {&declared, &hidden}) {
    INFO((bytes == &declared ? "declared" : "undeclared"));
    std::string what;
    CHECK(error_with([&] { decode_to_wav(*bytes); }, &what)
          == media_errc::too_long);
    // Honest text, never "truncated or corrupt".
    CHECK(what == "the audio is longer than the allowed 10 minutes");
    CHECK(error_with([&] { probe(*bytes); }, nullptr)
          == media_errc::too_long);
  }
  // 0 lifts the duration limit (masters Phonon wrote itself).
  limits none;
  none.max_duration_ms = 0;
  auto out = decode_to_wav(hidden, none);
  CHECK(out.source.duration_ms == 660000);
  CHECK(out.wav.size() == 44 + 660u * 8000 * 2);
}

TEST_CASE("describe_duration renders limits for people", "[unit][media]") {
  CHECK(describe_duration(600000) == "10 minutes");
  CHECK(describe_duration(60000) == "1 minute");
  CHECK(describe_duration(90000) == "90 seconds");
  CHECK(describe_duration(1000) == "1 second");
  CHECK(describe_duration(1500) == "1.5 seconds");
  CHECK(describe_duration(250) == "0.25 seconds");
}

TEST_CASE("more than 8 channels or more than 192 kHz is out_of_range",
          "[unit][media][limits]") {
  const auto& nine = generate("nine.wav", channels_args(9, 48000));
  const auto& eight = generate("eight.wav", channels_args(8, 48000));
  const auto& hi = generate(
    "384k.flac",
    "-f lavfi -i sine=frequency=440:duration=0.2:sample_rate=384000 "
    "-c:a flac");
  const auto& ok = generate(
    "192k.flac",
    "-f lavfi -i sine=frequency=440:duration=0.2:sample_rate=192000 "
    "-c:a flac");
  std::string what;
  CHECK(error_with([&] { decode_to_wav(nine); }, &what)
        == media_errc::out_of_range);
  CHECK(what == "the audio has 9 channels; at most 8 are accepted");
  CHECK(error_with([&] { probe(nine); }, nullptr) == media_errc::out_of_range);
  CHECK(error_with([&] { decode_to_wav(hi); }, &what)
        == media_errc::out_of_range);
  CHECK(what
        == "the audio's sample rate is 384000 Hz; at most 192000 Hz is "
           "accepted");
  CHECK(decode_to_wav(eight).source.channels == 8);
  CHECK(decode_to_wav(ok).source.sample_rate == 192000);
}

TEST_CASE("a PCM budget bounds many channels at high rates",
          "[unit][media][limits]") {
  // 2 s of 8 channels at 48 kHz decode to 1.5 MiB; the budget is 1 MiB.
  const auto& wide = generate(
    "eight_2s.wav", [] {
      auto args = channels_args(8, 48000);
      return args.replace(args.find("duration=0.2"), 12, "duration=2");
    }());
  limits lim;
  lim.max_pcm_bytes = 1 << 20;
  std::string what;
  CHECK(error_with([&] { decode_to_wav(wide, lim); }, &what)
        == media_errc::too_long);
  CHECK(what
        == "the audio is longer than the 1 second allowed for 8 channels at "
           "48000 Hz (1 MiB decoded)");
  // 3 s of 44.1 kHz stereo fit in it.
  CHECK(decode_to_wav(input(sample_named("pcm.wav")), lim).source.channels
        == 2);
}

TEST_CASE("a passed deadline stops probe, decode and encode",
          "[unit][media][limits]") {
  limits late;
  late.deadline_unix_ms = unix_ms_now() - 1;
  const auto& flac = input(sample_named("native.flac"));
  CHECK(error_with([&] { decode_to_wav(flac, late); }, nullptr)
        == media_errc::deadline_exceeded);
  CHECK(error_with([&] { encode(flac, format::mp3, late); }, nullptr)
        == media_errc::deadline_exceeded);
  CHECK(error_with([&] { probe(input(sample_named("streamed.webm")), late); },
                   nullptr)
        == media_errc::deadline_exceeded);
  // A deadline in the future changes nothing.
  limits soon;
  soon.deadline_unix_ms = unix_ms_now() + 60000;
  CHECK(decode_to_wav(flac, soon).wav == decode_to_wav(flac).wav);
  // A long decode is cut mid-way: 11 minutes of FLAC with 1 ms to go.
  limits tight;
  tight.max_duration_ms = 0;
  tight.deadline_unix_ms = unix_ms_now() + 1;
  auto started = std::chrono::steady_clock::now();
  CHECK(error_with([&] { decode_to_wav(eleven_minutes_flac(), tight); },
                   nullptr)
        == media_errc::deadline_exceeded);
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(2));
}

TEST_CASE("a WAV written to a pipe (sizes 0xFFFFFFFF) decodes to its end",
          "[unit][media][limits]") {
  const auto& piped = generate("pipe.wav", sine(44100, 2) + " -f wav pipe:1 >");
  REQUIRE(le(piped, 4, 4) == 0xFFFFFFFFu);
  auto data = piped.find("data");
  REQUIRE(data != std::string::npos);
  REQUIRE(le(piped, data + 4, 4) == 0xFFFFFFFFu);
  auto out = decode_to_wav(piped);
  CHECK(out.source.format == "wav");
  CHECK(out.source.sample_rate == 44100);
  CHECK(out.source.channels == 2);
  CHECK(std::abs(out.source.duration_ms - source_ms) <= lossless_tol);
  CHECK(out.wav.size() - 44 == piped.size() - (data + 8));
  auto info = probe(piped);
  CHECK(std::abs(info.duration_ms - source_ms) <= lossless_tol);
  // Some streaming writers put 0 instead of 0xFFFFFFFF: the same rule.
  auto zeroed = piped;
  for (size_t i = 0; i < 4; ++i) {
    zeroed[4 + i] = 0;
    zeroed[data + 4 + i] = 0;
  }
  CHECK(decode_to_wav(zeroed).wav == out.wav);
  // Nothing says where such data should end: a cut one is what it is.
  auto half = decode_to_wav(piped.substr(0, data + 8 + 44100 * 4));
  CHECK(half.source.duration_ms == 1000);
}

// -- streaming between files --------------------------------------------------

namespace {

// A file holding `bytes` in a fresh temp dir (one per test run).
fs::path as_file(const std::string& name, const std::string& bytes) {
  static temp_dir dir;
  auto path = dir.path() / name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  return path;
}

// Where a streaming function writes (never created by the test).
fs::path output_path(const std::string& name) {
  return as_file(name + ".in", "").parent_path() / (name + ".out");
}

} // namespace

TEST_CASE("decode_file_to_wav writes the same master as decode_to_wav",
          "[unit][media]") {
  for (const auto& s : samples()) {
    INFO(s.file);
    auto in = as_file(s.file, input(s));
    auto out = output_path(s.file);
    auto streamed = decode_file_to_wav(in.string(), out.string());
    auto held = decode_to_wav(input(s));
    CHECK(streamed.format == held.source.format);
    CHECK(streamed.codec == held.source.codec);
    CHECK(streamed.duration_ms == held.source.duration_ms);
    CHECK(streamed.sample_rate == held.source.sample_rate);
    CHECK(streamed.channels == held.source.channels);
    // Byte for byte, header included.
    CHECK(read_file(out) == held.wav);
  }
}

TEST_CASE("encode_file writes the same bytes as encode", "[unit][media]") {
  auto master = as_file("master.wav", wav_master_44k_stereo());
  for (auto f : {format::m4a, format::wav, format::mp3, format::ogg,
                 format::opus, format::flac, format::webm}) {
    INFO(to_string(f));
    auto out = output_path(std::string{"enc-"} + to_string(f));
    auto streamed = encode_file(master.string(), out.string(), f);
    auto held = encode(wav_master_44k_stereo(), f);
    CHECK(streamed.bytes.empty());
    CHECK(streamed.info.codec == held.info.codec);
    CHECK(streamed.info.duration_ms == held.info.duration_ms);
    CHECK(streamed.info.sample_rate == held.info.sample_rate);
    CHECK(streamed.info.channels == held.info.channels);
    auto bytes = read_file(out);
    if (f == format::ogg || f == format::opus || f == format::webm) {
      // Ogg's stream serial and Matroska's segment UID are random per
      // call (two in-memory encodes differ there too): same size, same
      // audio.
      CHECK(bytes.size() == held.bytes.size());
      CHECK(decode_to_wav(bytes).wav == decode_to_wav(held.bytes).wav);
    } else {
      CHECK(bytes == held.bytes);
    }
  }
  // From an upload straight to a format, too (decode and encode streamed).
  const auto& s = sample_named("aac_moov_end.m4a");
  auto in = as_file("enc-src.m4a", input(s));
  auto out = output_path("enc-src-mp3");
  encode_file(in.string(), out.string(), format::mp3);
  CHECK(read_file(out) == encode(input(s), format::mp3).bytes);
}

TEST_CASE("the streaming functions refuse what the in-memory ones refuse "
          "and leave no output behind",
          "[unit][media]") {
  auto refused = [](const std::string& name, const std::string& bytes,
                    const limits& lim) {
    auto in = as_file(name, bytes);
    auto out = output_path(name);
    media_errc code{};
    try {
      decode_file_to_wav(in.string(), out.string(), lim);
      FAIL("accepted " << name);
    } catch (const media_error& e) {
      code = e.code();
    }
    CHECK_FALSE(fs::exists(out));
    try {
      encode_file(in.string(), out.string(), format::mp3, lim);
      FAIL("accepted " << name);
    } catch (const media_error& e) {
      CHECK(e.code() == code);
    }
    CHECK_FALSE(fs::exists(out));
    return code;
  };
  CHECK(refused("random.bin", random_bytes(5000, 7), {}) == media_errc::not_audio);
  CHECK(refused("empty.bin", "", {}) == media_errc::not_audio);
  const auto& wav = input(sample_named("pcm.wav"));
  CHECK(refused("cut.wav", wav.substr(0, wav.size() / 2), {})
        == media_errc::corrupt);
  const auto& m4a = input(sample_named("aac_moov_end.m4a"));
  CHECK(refused("cut.m4a", m4a.substr(0, m4a.size() * 2 / 3), {})
        == media_errc::corrupt);
  limits short_limit;
  short_limit.max_duration_ms = 1000;
  CHECK(refused("long.flac", input(sample_named("native.flac")), short_limit)
        == media_errc::too_long);
  limits late;
  late.deadline_unix_ms = 1;
  CHECK(refused("late.wav", wav, late) == media_errc::deadline_exceeded);
  // A missing input is the caller's problem, not the content's.
  try {
    decode_file_to_wav("/nonexistent/in", output_path("missing").string());
    FAIL("decoded a missing file");
  } catch (const media_error& e) {
    CHECK(e.code() == media_errc::input_missing);
  }
  CHECK_FALSE(fs::exists(output_path("missing")));
}

TEST_CASE("moov_before_mdat_file agrees with moov_before_mdat",
          "[unit][media]") {
  for (const auto& s : samples()) {
    INFO(s.file);
    auto in = as_file(std::string{"moov-"} + s.file, input(s));
    CHECK(moov_before_mdat_file(in.string()) == moov_before_mdat(input(s)));
  }
  CHECK_FALSE(moov_before_mdat_file("/nonexistent/file.m4a"));
}
