// Every accepted upload kind times every output format, against the real
// `phonon` binary: one server, each input uploaded once, every format
// fetched and checked with ffprobe.

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/media_support.hpp"
#include "tests/integration/support.hpp"

using namespace phonon::integration;

namespace {

namespace fs = std::filesystem;

/// How one accepted input kind is made.
struct input_kind {
  /// Short label for failure messages.
  std::string label;
  /// Phrase id used for it on the server.
  int phrase;
  /// ffmpeg arguments between the fixed prefix and the output path.
  std::string ffmpeg_args;
  /// File name (its extension tells ffmpeg the muxer).
  std::string filename;
  /// Client Content-Type of the multipart part.
  std::string content_type;
  /// `original_format` the metadata must report.
  std::string original_format;
};

/// One output format of the table in API.md.
struct output_kind {
  std::string name;
  std::string content_type;
  /// A substring of ffprobe's format_name.
  std::string container;
  std::string codec;
};

const std::vector<output_kind>& outputs() {
  static const std::vector<output_kind> result{
    {"m4a", "audio/mp4", "mp4", "aac"},
    {"wav", "audio/wav", "wav", "pcm_s16le"},
    {"mp3", "audio/mpeg", "mp3", "mp3"},
    {"ogg", "audio/ogg", "ogg", "vorbis"},
    {"opus", "audio/ogg; codecs=opus", "ogg", "opus"},
    {"flac", "audio/flac", "flac", "flac"},
    {"webm", "audio/webm", "webm", "opus"},
  };
  return result;
}

std::string sine(int rate, int freq = 440, double seconds = 3) {
  return "-f lavfi -i sine=frequency=" + std::to_string(freq)
         + ":duration=" + std::to_string(seconds)
         + ":sample_rate=" + std::to_string(rate) + " ";
}

/// The inputs; `pic` is a PNG for the cover-art case.
std::vector<input_kind> input_kinds(const fs::path& pic) {
  auto cover = "-i " + shell_quote(pic.string());
  return {
    {"m4a AAC 44.1k mono moov-first", 1,
     sine(44100) + "-ac 1 -c:a aac -b:a 64k -movflags +faststart",
     "aac-first.m4a", "audio/mp4", "m4a"},
    {"m4a AAC 32k stereo moov-at-end", 2,
     sine(32000, 550) + "-ac 2 -c:a aac -b:a 96k", "aac-last.m4a",
     "audio/mp4", "m4a"},
    {"fragmented mp4 AAC 48k mono", 3,
     sine(48000, 660)
       + "-ac 1 -c:a aac -b:a 64k -movflags frag_keyframe+empty_moov "
         "-f mp4",
     "fragmented.mp4", "video/mp4", "m4a"},
    {"m4a ALAC 44.1k stereo", 4, sine(44100, 770) + "-ac 2 -c:a alac",
     "alac.m4a", "audio/mp4", "m4a"},
    {"wav 22.05k stereo", 5, sine(22050, 880) + "-ac 2 -c:a pcm_s16le",
     "tone.wav", "audio/wav", "wav"},
    {"mp3 44.1k mono", 6,
     sine(44100, 990) + "-ac 1 -c:a libmp3lame -b:a 64k", "tone.mp3",
     "audio/mpeg", "mp3"},
    {"ogg vorbis 24k stereo", 7,
     sine(24000, 330) + "-ac 2 -c:a libvorbis", "tone.ogg", "audio/ogg",
     "ogg"},
    {"ogg opus 48k stereo", 8,
     sine(48000, 220) + "-ac 2 -c:a libopus -b:a 48k", "tone.opus",
     "audio/ogg", "opus"},
    {"flac 48k stereo", 9, sine(48000, 1100) + "-ac 2 -c:a flac",
     "tone.flac", "audio/flac", "flac"},
    {"webm opus 48k mono", 10,
     sine(48000, 1200) + "-ac 1 -c:a libopus -b:a 32k", "tone.webm",
     "audio/webm", "webm"},
    {"m4a AAC 44.1k stereo + cover art", 11,
     sine(44100, 1300) + cover
       + " -map 1:v -map 0:a -ac 2 -c:a aac -b:a 96k -c:v png "
         "-disposition:v:0 attached_pic",
     "cover.m4a", "audio/mp4", "m4a"},
    {"flac 96k mono", 12, sine(96000, 1400) + "-ac 1 -c:a flac",
     "hires.flac", "audio/flac", "flac"},
  };
}

/// Generates the inputs in two threads (2 cores); throws when ffmpeg fails.
void make_inputs(const std::vector<input_kind>& kinds, const temp_dir& dir) {
  std::atomic<size_t> next{0};
  std::vector<std::string> errors(kinds.size());
  auto work = [&] {
    for (size_t i = next++; i < kinds.size(); i = next++) {
      try {
        make_media(kinds[i].ffmpeg_args, dir / kinds[i].filename);
      } catch (const std::exception& e) {
        errors[i] = e.what();
      }
    }
  };
  std::thread t{work};
  work();
  t.join();
  for (auto& e : errors)
    if (!e.empty())
      throw std::runtime_error(e);
}

/// Probes every file of `paths` in two threads.
std::vector<std::optional<media_info>>
probe_all(const std::vector<fs::path>& paths) {
  std::vector<std::optional<media_info>> result(paths.size());
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i = next++; i < paths.size(); i = next++)
      result[i] = probe_file(paths[i]);
  };
  std::thread t{work};
  work();
  t.join();
  return result;
}

int expected_rate(const std::string& format, int source_rate) {
  if (format == "opus" || format == "webm")
    return 48000;
  if (format == "mp3")
    return std::min(source_rate, 48000);
  return source_rate;
}

bool mp4_is_faststart(const std::string& bytes) {
  auto moov = mp4_box_offset(bytes, "moov");
  auto mdat = mp4_box_offset(bytes, "mdat");
  return moov && mdat && *moov < *mdat;
}

} // namespace

TEST_CASE("every accepted upload kind is served in every format",
          "[integration][formats]") {
  temp_dir dir{"phonon-it-formats"};
  auto pic = dir / "cover.png";
  make_media("-f lavfi -i color=c=blue:s=64x64 -frames:v 1", pic);
  auto kinds = input_kinds(pic);
  make_inputs(kinds, dir);
  std::vector<fs::path> sources;
  for (auto& k : kinds)
    sources.push_back(dir / k.filename);
  auto source_info = probe_all(sources);
  for (size_t i = 0; i < kinds.size(); ++i) {
    INFO("input: " << kinds[i].label);
    REQUIRE(source_info[i]);
    // The generator itself: 3 s of audio.
    REQUIRE(source_info[i]->duration == Approx(3.0).margin(0.05));
  }

  server_process srv;
  srv.start();
  const auto port = srv.port();
  auto base = [](int phrase) {
    return "/audio/user/42/phrase/" + std::to_string(phrase);
  };
  std::vector<std::string> originals;
  for (size_t i = 0; i < kinds.size(); ++i) {
    originals.push_back(read_file(sources[i]));
    INFO("input: " << kinds[i].label);
    auto res = upload_file(port, base(kinds[i].phrase), originals.back(),
                           kinds[i].filename, kinds[i].content_type);
    INFO("response: " << res.body);
    REQUIRE(res.status == 201);
  }

  // Metadata: master rate and channels are the source's.
  for (size_t i = 0; i < kinds.size(); ++i) {
    INFO("input: " << kinds[i].label);
    auto meta = require_ready(port, base(kinds[i].phrase));
    const auto& src = *source_info[i];
    CHECK(meta.value("original_format", "") == kinds[i].original_format);
    CHECK(meta.value("original_filename", "") == kinds[i].filename);
    CHECK(meta.value("size_bytes", uint64_t{0}) == originals[i].size());
    CHECK(meta.value("sample_rate", 0) == src.sample_rate);
    CHECK(meta.value("channels", 0) == src.channels);
    CHECK(meta.value("duration_ms", 0.0)
          == Approx(src.duration * 1000).margin(150));
    REQUIRE(meta.contains("formats"));
    for (auto& out : outputs())
      CHECK(meta["formats"].value(out.name, "")
            == base(kinds[i].phrase) + "/" + out.name);
  }

  // Fetch everything first, then probe in parallel.
  struct fetched {
    size_t input;
    const output_kind* out;
    http_response res;
    fs::path path;
  };
  std::vector<fetched> got;
  std::vector<fs::path> paths;
  for (size_t i = 0; i < kinds.size(); ++i) {
    for (auto& out : outputs()) {
      auto path = dir / ("out-" + std::to_string(kinds[i].phrase) + "."
                         + out.name);
      auto res = http_get(port, base(kinds[i].phrase) + "/" + out.name);
      if (res.status == 200)
        write_file(path, res.body);
      got.push_back({i, &out, std::move(res), path});
      paths.push_back(path);
    }
  }
  auto infos = probe_all(paths);

  for (size_t j = 0; j < got.size(); ++j) {
    const auto& g = got[j];
    const auto& kind = kinds[g.input];
    const auto& src = *source_info[g.input];
    const auto& fmt = g.out->name;
    INFO("input: " << kind.label << " -> " << fmt);
    INFO("source: " << src.format_name << " " << src.codec_name << " "
                    << src.sample_rate << " Hz " << src.channels << " ch "
                    << src.duration << " s");
    REQUIRE(g.res.status == 200);
    CHECK(g.res.header("Content-Type") == g.out->content_type);
    CHECK(g.res.header("Content-Length") == std::to_string(g.res.body.size()));
    REQUIRE(infos[j]);
    const auto& info = *infos[j];
    INFO("output: " << info.format_name << " " << info.codec_name << " "
                    << info.sample_rate << " Hz " << info.channels << " ch "
                    << info.duration << " s");
    CHECK(info.format_name.find(g.out->container) != std::string::npos);
    // Every output carries its true duration in its headers.
    CHECK(info.duration == Approx(src.duration).margin(0.15));
    CHECK(info.channels == src.channels);
    bool served_original = fmt == "m4a" && kind.original_format == "m4a"
                           && src.codec_name == "aac"
                           && mp4_is_faststart(originals[g.input]);
    if (served_original) {
      // API.md: the m4a of an M4A upload is the original bytes, when those
      // already are what `m4a` promises (AAC-LC, moov first); the test
      // below covers the other M4A uploads.
      CHECK(g.res.body == originals[g.input]);
      CHECK(info.codec_name == src.codec_name);
      CHECK(info.sample_rate == src.sample_rate);
      continue;
    }
    CHECK(info.codec_name == g.out->codec);
    CHECK(info.sample_rate == expected_rate(fmt, src.sample_rate));
    if (fmt == "m4a") {
      CHECK(mp4_is_faststart(g.res.body));
    } else if (fmt == "mp3") {
      CHECK(mp3_has_xing_or_info(g.res.body));
    } else if (fmt == "webm") {
      // A WebM (not generic Matroska) EBML DocType.
      CHECK(g.res.body.substr(0, 64).find("webm") != std::string::npos);
    } else if (fmt == "wav") {
      CHECK(g.res.body.substr(0, 4) == "RIFF");
      CHECK(g.res.body.substr(8, 4) == "WAVE");
    }
  }
}

// API.md's format table says `m4a` is AAC-LC with the moov atom first, and
// also that the m4a of an M4A upload is the original bytes. An upload that
// is ALAC, or has its moov at the end (ffmpeg's and many phones' default),
// cannot satisfy both when served as is: Phonon converts those.
TEST_CASE("m4a output is AAC-LC with moov first whatever the M4A upload",
          "[integration][formats]") {
  temp_dir dir{"phonon-it-formats-m4a"};
  auto pic = dir / "cover.png";
  make_media("-f lavfi -i color=c=blue:s=64x64 -frames:v 1", pic);
  std::vector<input_kind> kinds;
  for (auto& k : input_kinds(pic))
    if (k.phrase == 2 || k.phrase == 4 || k.phrase == 11)
      kinds.push_back(k);
  make_inputs(kinds, dir);
  server_process srv;
  srv.start();
  for (auto& k : kinds) {
    auto target = "/audio/user/43/phrase/" + std::to_string(k.phrase);
    auto res = upload_file(srv.port(), target,
                           read_file(dir / k.filename), k.filename,
                           k.content_type);
    REQUIRE(res.status == 201);
  }
  for (auto& k : kinds) {
    INFO("input: " << k.label);
    auto target = "/audio/user/43/phrase/" + std::to_string(k.phrase);
    require_ready(srv.port(), target);
    auto res = http_get(srv.port(), target + "/m4a");
    REQUIRE(res.status == 200);
    auto info = probe_bytes(res.body);
    REQUIRE(info);
    CHECK(info->codec_name == "aac");
    CHECK(mp4_is_faststart(res.body));
  }
}

TEST_CASE("a text file and a PNG are refused with 415",
          "[integration][formats]") {
  const auto& fx = audio_fixtures();
  server_process srv;
  srv.start();
  std::string text = "This is not audio at all, just a line of text.\n";
  for (int i = 0; i < 40; ++i)
    text += "Lorem ipsum dolor sit amet, consectetur adipiscing elit.\n";
  struct refused {
    std::string label;
    std::string bytes;
    std::string filename;
    std::string content_type;
  };
  std::vector<refused> cases{
    {"text", text, "speech.m4a", "audio/mp4"},
    {"png", read_file(fx.png), "image.mp3", "audio/mpeg"},
  };
  int phrase = 1;
  for (auto& c : cases) {
    INFO("payload: " << c.label);
    auto target = "/audio/user/44/phrase/" + std::to_string(phrase++);
    auto res = upload_file(srv.port(), target, c.bytes, c.filename,
                           c.content_type);
    CHECK(res.status == 415);
    expect_json_error(res);
    // A raw body is judged by content too.
    auto raw = http_request(srv.port(), "PUT", target, c.bytes,
                            {{"Content-Type", "application/octet-stream"}});
    CHECK(raw.status == 415);
    expect_json_error(raw);
    // Nothing was stored.
    CHECK(http_get(srv.port(), target).status == 404);
  }
}
