// A real browser plays Phonon's outputs: headless Chromium loads the m4a,
// mp3 and webm of recordings from the running server in <audio> elements,
// reads their duration, seeks near the end and plays to the end.

#include <catch2/catch.hpp>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/media_support.hpp"
#include "tests/integration/support.hpp"

using namespace phonon::integration;

namespace {

namespace fs = std::filesystem;

constexpr const char* chromium_path = "/usr/bin/chromium";

/// One <audio> element of the page.
struct media_case {
  /// Key in the page's result object.
  std::string key;
  /// Server path of the audio.
  std::string path;
  /// MIME type asked with canPlayType, for the report.
  std::string mime;
  /// Duration of the source in seconds.
  double expected = 0;
};

// The page: one <audio preload=metadata> per case. On loadedmetadata it
// records the duration and, when finite, seeks to 0.5 s before the end; on
// seeked it plays (muted); on ended it is done; on error it records the
// MediaError code and message. The browser's virtual time runs ahead of the
// real-time media pipeline, so the page spins in short busy chunks (a
// bounded count) until every element is done; the state is written to
// <pre id="out"> after every chunk.
std::string make_page(uint16_t port, const std::vector<media_case>& cases) {
  std::string list = "[";
  for (auto& c : cases)
    list += "{key:'" + c.key + "',src:'http://127.0.0.1:" + std::to_string(port)
            + c.path + "',mime:'" + c.mime + "'},";
  list += "]";
  return R"(<!doctype html>
<html><head><meta charset="utf-8"><title>phonon</title></head><body>
<pre id="out">{}</pre>
<script>
var cases = )" + list + R"(;
var state = {}; var left = cases.length; var chunks = 0;
function show() {
  document.getElementById('out').textContent =
    JSON.stringify({chunks: chunks, left: left, media: state});
}
function finish(r) { if (!r.done) { r.done = true; left--; } }
cases.forEach(function (c) {
  var r = {canPlayType: document.createElement('audio').canPlayType(c.mime),
           done: false};
  state[c.key] = r;
  var a = document.createElement('audio');
  a.preload = 'metadata';
  a.muted = true;
  a.addEventListener('loadedmetadata', function () {
    r.duration = String(a.duration);
    if (!isFinite(a.duration)) { finish(r); return; }
    a.currentTime = Math.max(0, a.duration - 0.5);
  });
  a.addEventListener('seeked', function () {
    r.seekedTo = a.currentTime;
    a.play().then(function () { r.played = true; },
                  function (e) { r.playError = String(e); finish(r); });
  });
  a.addEventListener('ended', function () {
    r.ended = true; r.endedAt = a.currentTime; finish(r);
  });
  a.addEventListener('error', function () {
    r.errorCode = a.error ? a.error.code : -1;
    r.errorMessage = a.error ? a.error.message : '';
    finish(r);
  });
  a.src = c.src;
  document.body.appendChild(a);
});
function spin() {
  chunks++;
  var x = 0;
  for (var i = 0; i < 2000000; i++) { x += i % 7; }
  show();
  if (left > 0 && chunks < 2500) setTimeout(spin, 0);
}
show();
spin();
</script></body></html>
)";
}

/// The JSON written into <pre id="out"> of a --dump-dom output.
nlohmann::json page_result(const std::string& dom) {
  const std::string open = "<pre id=\"out\">";
  auto begin = dom.find(open);
  if (begin == std::string::npos)
    return nlohmann::json::value_t::discarded;
  begin += open.size();
  auto end = dom.find("</pre>", begin);
  if (end == std::string::npos)
    return nlohmann::json::value_t::discarded;
  auto text = dom.substr(begin, end - begin);
  // Undo the serializer's text escapes.
  std::string plain;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text.compare(i, 5, "&amp;") == 0) {
      plain += '&';
      i += 4;
    } else if (text.compare(i, 4, "&lt;") == 0) {
      plain += '<';
      i += 3;
    } else if (text.compare(i, 4, "&gt;") == 0) {
      plain += '>';
      i += 3;
    } else if (text.compare(i, 6, "&nbsp;") == 0) {
      plain += ' ';
      i += 5;
    } else {
      plain += text[i];
    }
  }
  return nlohmann::json::parse(plain, nullptr, false);
}

/// Removes Chromium's profile dir; its helper processes may still be
/// writing there for a moment after the browser exits (bounded retries).
void remove_profile(const fs::path& profile) {
  for (int i = 0; i < 40; ++i) {
    std::error_code ec;
    fs::remove_all(profile, ec);
    if (!fs::exists(profile, ec))
      return;
    std::this_thread::sleep_for(std::chrono::milliseconds{50});
  }
}

} // namespace

TEST_CASE("headless Chromium plays the m4a, mp3 and webm outputs",
          "[integration][browser]") {
  REQUIRE(::access(chromium_path, X_OK) == 0);
  temp_dir dir{"phonon-it-browser"};
  // A plain WAV: m4a, mp3 and webm are all derived.
  auto wav = dir / "tone.wav";
  make_media("-f lavfi -i sine=frequency=440:duration=3.7:sample_rate=44100 "
             "-ac 2 -c:a pcm_s16le",
             wav);
  // WebM as MediaRecorder writes it: no Duration element, no cues.
  auto live = dir / "live.webm";
  make_media("-f lavfi -i sine=frequency=500:duration=2.6:sample_rate=48000 "
             "-ac 1 -c:a libopus -live 1 -f webm",
             live);
  // The seed's case: an M4A upload with its moov at the end, served as is.
  auto m4a = dir / "phone.m4a";
  make_media("-f lavfi -i sine=frequency=600:duration=3.1:sample_rate=44100 "
             "-ac 1 -c:a aac -b:a 64k",
             m4a);
  REQUIRE(probe_file(live));
  REQUIRE(probe_file(live)->duration == 0); // really no Duration element

  server_process srv;
  srv.start();
  const auto port = srv.port();
  const std::string r1 = "/audio/user/21/phrase/1";
  const std::string r2 = "/audio/user/21/phrase/2";
  const std::string r3 = "/audio/user/21/phrase/3";
  REQUIRE(upload_file(port, r1, read_file(wav), "tone.wav", "audio/wav")
            .status
          == 201);
  REQUIRE(upload_file(port, r2, read_file(live), "rec.webm", "audio/webm")
            .status
          == 201);
  REQUIRE(upload_file(port, r3, read_file(m4a), "phone.m4a", "audio/mp4")
            .status
          == 201);
  for (auto& t : {r1, r2, r3})
    require_ready(port, t);

  const std::string aac = "audio/mp4; codecs=\"mp4a.40.2\"";
  const std::string mp3 = "audio/mpeg";
  const std::string opus = "audio/webm; codecs=\"opus\"";
  std::vector<media_case> cases{
    {"wav_to_m4a", r1 + "/m4a", aac, 3.7},
    {"wav_to_mp3", r1 + "/mp3", mp3, 3.7},
    {"wav_to_webm", r1 + "/webm", opus, 3.7},
    {"live_webm_to_webm", r2 + "/webm", opus, 2.6},
    {"live_webm_to_m4a", r2 + "/m4a", aac, 2.6},
    {"m4a_original", r3 + "/m4a", aac, 3.1},
  };
  // The page carries the double quotes of the MIME types in JS strings.
  auto page = dir / "page.html";
  write_file(page, make_page(port, cases));
  auto profile = dir / "profile";
  fs::create_directories(profile);
  auto cmd = "timeout 60 " + std::string{chromium_path}
             + " --headless --no-sandbox --disable-gpu --disable-quic"
               " --no-first-run --disable-background-networking"
               " --disable-component-update --disable-sync"
               " --user-data-dir="
             + shell_quote(profile.string())
             + " --autoplay-policy=no-user-gesture-required"
               " --virtual-time-budget=15000 --dump-dom "
             + shell_quote("file://" + page.string()) + " 2>/dev/null";
  auto out = run(cmd);
  remove_profile(profile);
  INFO("chromium exit " << out.exit_code << ", output:\n"
                        << out.output.substr(0, 4000));
  REQUIRE(out.exit_code == 0);
  auto doc = page_result(out.output);
  REQUIRE(doc.is_object());
  REQUIRE(doc.contains("media"));
  INFO("page result: " << doc.dump());
  CHECK(doc.value("left", -1) == 0);
  for (auto& c : cases) {
    INFO("case " << c.key << " (" << c.path << ")");
    REQUIRE(doc["media"].contains(c.key));
    const auto& r = doc["media"][c.key];
    // What this Chromium build says about the codec, to tell a licensing
    // gap from a bad file.
    CHECK(r.value("canPlayType", "") == "probably");
    CHECK_FALSE(r.contains("errorCode"));
    REQUIRE(r.contains("duration"));
    // "Infinity" (no duration in the headers) or "NaN" fail here.
    auto text = r.value("duration", "");
    auto duration = std::strtod(text.c_str(), nullptr);
    CHECK(text != "Infinity");
    CHECK(duration == Approx(c.expected).margin(0.25));
    // Seeking near the end works and playback reaches the end.
    CHECK(r.value("seekedTo", -1.0)
          == Approx(std::max(0.0, duration - 0.5)).margin(0.1));
    CHECK(r.value("ended", false));
    CHECK(r.value("endedAt", -1.0) == Approx(duration).margin(0.1));
  }
}
