// API.md "Every answer" against the real binaries: the X-Request-Id of a
// request is in every log line it caused, on the serve node and on the
// worker that converted for it; an insane client id is replaced; the
// conditional headers read every HTTP date form of RFC 9110.

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/integration/cluster_support.hpp"
#include "tests/integration/support.hpp"

using namespace phonon::integration;
using namespace std::chrono_literals;

namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in{text};
  for (std::string line; std::getline(in, line);)
    out.push_back(line);
  return out;
}

/// Lines of `text` that contain every one of `parts`.
std::vector<std::string> lines_with(const std::string& text,
                                    std::vector<std::string_view> parts) {
  std::vector<std::string> out;
  for (auto& line : lines_of(text))
    if (std::all_of(parts.begin(), parts.end(), [&](std::string_view p) {
          return line.find(p) != std::string::npos;
        }))
      out.push_back(line);
  return out;
}

bool has_line(const std::string& text, std::vector<std::string_view> parts) {
  return !lines_with(text, std::move(parts)).empty();
}

/// An upload of `bytes` as the audio_file part with extra headers.
http_response upload_with(uint16_t port, const std::string& target,
                          const std::string& bytes, header_list headers) {
  auto mp = make_multipart({{"audio_file", "clip.wav", "audio/wav", bytes}});
  headers.emplace_back("Content-Type", mp.content_type);
  return http_request(port, "POST", target, mp.body, headers);
}

/// True for an id API.md calls sane: 1..128 visible ASCII characters, no
/// quote or backslash.
bool sane_id(const std::string& id) {
  if (id.empty() || id.size() > 128)
    return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return c > 0x20 && c < 0x7f && c != '"' && c != '\\';
  });
}

// -- HTTP dates, written here by hand (the test links no Phonon code) ---------

constexpr const char* short_days[] = {"Sun", "Mon", "Tue", "Wed",
                                      "Thu", "Fri", "Sat"};
constexpr const char* long_days[] = {"Sunday",   "Monday", "Tuesday",
                                     "Wednesday", "Thursday", "Friday",
                                     "Saturday"};
constexpr const char* months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/// Reads the IMF-fixdate the server wrote ("Sun, 06 Nov 1994 08:49:37
/// GMT"); -1 when it is not one.
std::time_t read_imf_fixdate(const std::string& text) {
  char day[4] = {};
  char mon[4] = {};
  int d = 0;
  int y = 0;
  int h = 0;
  int mi = 0;
  int s = 0;
  if (std::sscanf(text.c_str(), "%3[A-Za-z], %d %3s %d %d:%d:%d GMT", day,
                  &d, mon, &y, &h, &mi, &s)
      != 7)
    return -1;
  std::tm tm{};
  tm.tm_mday = d;
  tm.tm_year = y - 1900;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  tm.tm_mon = -1;
  for (int i = 0; i < 12; ++i)
    if (std::string_view{mon} == months[i])
      tm.tm_mon = i;
  if (tm.tm_mon < 0)
    return -1;
  return timegm(&tm);
}

/// The obsolete RFC 850 form: "Sunday, 06-Nov-94 08:49:37 GMT".
std::string rfc850_date(std::time_t t) {
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%s, %02d-%s-%02d %02d:%02d:%02d GMT",
                long_days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon],
                (tm.tm_year + 1900) % 100, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

/// The asctime form: "Sun Nov  6 08:49:37 1994".
std::string asctime_date(std::time_t t) {
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%s %s %2d %02d:%02d:%02d %04d",
                short_days[tm.tm_wday], months[tm.tm_mon], tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, tm.tm_year + 1900);
  return buf;
}

} // namespace

TEST_CASE("X-Request-Id is in every log line of an upload and a first GET, "
          "on the serve node and on the worker that converted",
          "[integration][request-id][cluster]") {
  auto clip = read_file(audio_fixtures().wav);
  // The serve node has no transcoder of its own: every conversion runs on
  // the worker. It logs text, the worker JSON; both at debug, where the
  // per-request lines are.
  auto cluster_port = pick_free_port();
  server_process srv;
  srv.start({"--workers", "0", "--set",
             "cluster.port=" + std::to_string(cluster_port), "--set",
             "log.level=debug"});
  auto port = srv.port();
  worker_process worker{cluster_port, 1,
                        {{"APP_LOG_LEVEL", "debug"},
                         {"APP_LOG_FORMAT", "json"}}};
  worker.start();
  REQUIRE(wait_for_metric(port, "phonon_transcoders", {{"kind", "remote"}},
                          1, 15s));

  const std::string up_id = "test-abc-123";
  const std::string get_id = "test-mp3-456";
  const std::string target = "/audio/user/9/phrase/1";
  auto up = upload_with(port, target, clip, {{"X-Request-Id", up_id}});
  REQUIRE(up.status == 201);
  CHECK(up.header("X-Request-Id") == up_id);
  auto meta = wait_until_settled(port, target, 15s);
  REQUIRE(meta.is_object());
  REQUIRE(meta["status"] == "ready");
  auto mp3 = http_get(port, target + "/mp3", {{"X-Request-Id", get_id}});
  REQUIRE(mp3.status == 200);
  CHECK(mp3.header("X-Request-Id") == get_id);
  CHECK(!mp3.body.empty());

  auto up_tag = "req_id=" + up_id + " ";
  auto get_tag = "req_id=" + get_id + " ";
  // The master is stored with the original, so the upload's row is
  // committed ready ("upload stored ... status=ready", before the answer).
  // An access line is logged once the answer is written, which the client
  // may see first.
  CHECK(wait_for(
    [&] {
      auto text = srv.log();
      return has_line(text, {"upload stored", up_tag, "status=ready"})
             && has_line(text, {"request " + up_tag})
             && has_line(text, {"request " + get_tag});
    },
    5s));
  auto serve_log = srv.log();

  {
    INFO("the serve node's lines about the upload carry its id\n"
         << srv.log_tail(80));
    // The access line, the recordings actor, the supervisor.
    CHECK(has_line(serve_log, {"[http]", "request " + up_tag,
                               "method=POST"}));
    CHECK(has_line(serve_log, {"upload received " + up_tag, "user=9",
                               "phrase=1"}));
    CHECK(has_line(serve_log, {"upload stored " + up_tag, "user=9",
                               "status=ready"}));
    CHECK(has_line(serve_log, {"job queued " + up_tag, "target=master"}));
    CHECK(has_line(serve_log, {"job dispatched " + up_tag, "local=false"}));
    CHECK(has_line(serve_log, {"job done " + up_tag, "outcome=ok"}));
  }

  {
    INFO("the serve node's lines about the first GET carry its id\n"
         << srv.log_tail(80));
    CHECK(has_line(serve_log, {"[http]", "request " + get_tag,
                               "method=GET", "status=200"}));
    CHECK(has_line(serve_log, {"fetch received " + get_tag, "format=mp3"}));
    CHECK(has_line(serve_log, {"converting for the cache " + get_tag,
                               "format=mp3"}));
    CHECK(has_line(serve_log, {"job queued " + get_tag, "target=mp3"}));
    CHECK(has_line(serve_log, {"job dispatched " + get_tag}));
    CHECK(has_line(serve_log, {"job done " + get_tag, "outcome=ok"}));
    CHECK(has_line(serve_log, {"cached " + get_tag, "format=mp3"}));
  }

  {
    INFO("every line of the serve node about a job names its request\n"
         << srv.log_tail(80));
    auto jobs = lines_with(serve_log, {" job="});
    CHECK(jobs.size() >= 6);
    for (auto& line : jobs) {
      INFO(line);
      CHECK((line.find(up_tag) != std::string::npos
             || line.find(get_tag) != std::string::npos));
    }
  }

  {
    INFO("the worker's lines about both jobs carry the ids, in valid JSON\n"
         << worker.log_tail(40));
    std::vector<std::string> messages;
    for (auto& line : lines_of(worker.log())) {
      if (line.find("req_id=") == std::string::npos)
        continue;
      INFO(line);
      auto doc = nlohmann::json::parse(line, nullptr, false);
      REQUIRE(doc.is_object());
      REQUIRE(doc.contains("msg"));
      messages.push_back(doc["msg"].get<std::string>());
    }
    auto has_msg = [&](std::vector<std::string_view> parts) {
      return std::any_of(messages.begin(), messages.end(),
                         [&](const std::string& m) {
                           return std::all_of(parts.begin(), parts.end(),
                                              [&](std::string_view p) {
                                                return m.find(p)
                                                       != std::string::npos;
                                              });
                         });
    };
    CHECK(has_msg({"transcode started " + up_tag, "target=master"}));
    CHECK(has_msg({"transcode done " + up_tag, "target=master"}));
    CHECK(has_msg({"transcode started " + get_tag, "target=mp3"}));
    CHECK(has_msg({"transcode done " + get_tag, "target=mp3"}));
    // Every line the worker wrote about a job names the request.
    for (auto& line : lines_with(worker.log(), {" job="})) {
      INFO(line);
      CHECK((line.find(up_tag) != std::string::npos
             || line.find(get_tag) != std::string::npos));
    }
  }
}

TEST_CASE("libav's own log lines name the request and the job",
          "[integration][request-id]") {
  // A truncated M4A (no moov atom) makes libav log an error from inside
  // the decode, on a transcoder thread that knows no request.
  auto clip = read_file(audio_fixtures().m4a);
  REQUIRE(clip.size() > 2000);
  clip.resize(clip.size() / 2);
  server_process srv;
  srv.start({"--workers", "1", "--set", "log.level=debug"});
  const std::string id = "libav-trunc-77";
  auto up = upload_with(srv.port(), "/audio/user/5/phrase/5", clip,
                        {{"X-Request-Id", id}});
  CHECK(up.status == 415);
  CHECK(wait_for([&] { return has_line(srv.log(), {"request req_id=" + id}); },
                 5s));
  auto libav = lines_with(srv.log(), {"[media]", "] libav"});
  INFO(srv.log_tail(40));
  REQUIRE(!libav.empty());
  for (auto& line : libav) {
    INFO(line);
    CHECK(line.find("req_id=" + id + " job=") != std::string::npos);
  }
}

TEST_CASE("an insane X-Request-Id is replaced by a fresh one, a sane one is "
          "kept",
          "[integration][request-id]") {
  server_process srv;
  srv.start();
  auto port = srv.port();
  const std::string quote = "abc\"def";
  const std::string space = "abc def";
  const std::string backslash = "abc\\def";
  const std::string too_long(200, 'x');
  std::vector<std::string> fresh;
  for (auto& insane : {quote, space, backslash, too_long}) {
    INFO("X-Request-Id: " << insane);
    auto res = http_get(port, "/healthz", {{"X-Request-Id", insane}});
    CHECK(res.status == 200);
    auto id = res.header("X-Request-Id");
    CHECK(id != insane);
    CHECK(sane_id(id));
    fresh.push_back(id);
  }
  // Fresh ids differ from each other.
  std::sort(fresh.begin(), fresh.end());
  CHECK(std::unique(fresh.begin(), fresh.end()) == fresh.end());
  // Without a header the server makes one too.
  auto none = http_get(port, "/healthz");
  CHECK(sane_id(none.header("X-Request-Id")));
  // The longest sane id, every visible character but quote and backslash.
  std::string longest;
  for (int c = 0x21; longest.size() < 128; c = c == 0x7e ? 0x21 : c + 1)
    if (c != '"' && c != '\\')
      longest.push_back(static_cast<char>(c));
  auto kept = http_get(port, "/healthz", {{"X-Request-Id", longest}});
  CHECK(kept.header("X-Request-Id") == longest);

  // The access log shows the fresh ids, never the client's insane text.
  // (An access line is written once its answer is, which the client may
  // see first.)
  auto logged = [&](const std::string& id) {
    return has_line(srv.log(), {"request req_id=" + id + " "});
  };
  CHECK(wait_for(
    [&] { return std::all_of(fresh.begin(), fresh.end(), logged); }, 5s));
  for (auto& id : fresh) {
    INFO(id);
    CHECK(logged(id));
  }
  CHECK(wait_for([&] { return logged(longest); }, 5s));
  auto log = srv.log();
  CHECK(log.find(too_long) == std::string::npos);
  CHECK(log.find("abc\"def") == std::string::npos);
  CHECK(log.find("req_id=abc def") == std::string::npos);
}

TEST_CASE("If-Modified-Since and If-Range in RFC 850 and asctime form",
          "[integration][request-id]") {
  auto clip = read_file(audio_fixtures().wav);
  server_process srv;
  srv.start();
  auto port = srv.port();
  const std::string target = "/audio/user/4/phrase/2";
  REQUIRE(upload_file(port, target, clip, "clip.wav", "audio/wav").status
          == 201);
  REQUIRE(wait_until_settled(port, target)["status"] == "ready");
  auto wav = target + "/wav";
  auto first = http_get(port, wav);
  REQUIRE(first.status == 200);
  auto last_modified = first.header("Last-Modified");
  auto mtime = read_imf_fixdate(last_modified);
  REQUIRE(mtime > 0);

  for (auto& since : {last_modified, rfc850_date(mtime), asctime_date(mtime),
                      rfc850_date(mtime + 3600), asctime_date(mtime + 3600)}) {
    INFO("If-Modified-Since: " << since);
    auto res = http_get(port, wav, {{"If-Modified-Since", since}});
    CHECK(res.status == 304);
    CHECK(res.body.empty());
  }
  // Older than the file: sent in full.
  for (auto& since : {rfc850_date(mtime - 1), asctime_date(mtime - 1)}) {
    INFO("If-Modified-Since: " << since);
    CHECK(http_get(port, wav, {{"If-Modified-Since", since}}).status == 200);
  }
  // A date that does not parse is ignored.
  for (auto& bad : std::vector<std::string>{"yesterday",
                                            asctime_date(mtime) + " GMT",
                                            "Sun, 6 Nov 1994 08:49:37 GMT"}) {
    INFO("If-Modified-Since: " << bad);
    auto res = http_get(port, wav, {{"If-Modified-Since", bad}});
    CHECK(res.status == 200);
    CHECK(res.body == first.body);
  }
  // If-Range with the same date in the other forms keeps the range.
  for (auto& when : {rfc850_date(mtime), asctime_date(mtime)}) {
    INFO("If-Range: " << when);
    auto res = http_get(port, wav,
                        {{"Range", "bytes=0-9"}, {"If-Range", when}});
    CHECK(res.status == 206);
    CHECK(res.body == first.body.substr(0, 10));
  }
}
