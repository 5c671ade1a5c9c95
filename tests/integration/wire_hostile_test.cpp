// Hostile tests of the read path as rewritten on 2026-12-03: hand-written
// file heads (http/wire.hpp), one gather write per memory-cache hit, one
// io_context per io thread, the send queue sampled only for answers over
// 64 KiB, per-thread metric series with atomics. Everything runs the real
// `phonon` binary over loopback; the byte stream is parsed here, not by a
// client library, so a badly framed answer cannot be hidden by one.

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/media_support.hpp"
#include "tests/integration/raw_conn.hpp"
#include "tests/integration/support.hpp"

using namespace phonon::integration;
namespace fs = std::filesystem;

namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::string lower(std::string s) {
  for (auto& c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

/// One answer as found in the raw byte stream.
struct wire_answer {
  std::string status_line;
  unsigned version = 0;
  unsigned status = 0;
  std::vector<std::pair<std::string, std::string>> fields;
  std::string body;
  /// Framing faults found while parsing (empty when well framed).
  std::vector<std::string> faults;

  std::vector<std::string> all(const std::string& name) const {
    std::vector<std::string> out;
    for (auto& [k, v] : fields)
      if (lower(k) == lower(name))
        out.push_back(v);
    return out;
  }
  std::string get(const std::string& name) const {
    auto v = all(name);
    return v.empty() ? std::string{} : v.front();
  }
};

/// Parses one answer at the front of `data` (a HEAD's answer if `head`);
/// nullopt while incomplete. Consumes it from `data`.
std::optional<wire_answer> take_answer(std::string& data, bool head) {
  auto end = data.find("\r\n\r\n");
  if (end == std::string::npos)
    return std::nullopt;
  wire_answer a;
  std::string head_text = data.substr(0, end + 2);
  size_t pos = head_text.find("\r\n");
  a.status_line = head_text.substr(0, pos);
  if (a.status_line.rfind("HTTP/1.1 ", 0) == 0)
    a.version = 11;
  else if (a.status_line.rfind("HTTP/1.0 ", 0) == 0)
    a.version = 10;
  else
    a.faults.push_back("bad status line: " + a.status_line);
  if (a.status_line.size() >= 12)
    a.status = static_cast<unsigned>(std::atoi(a.status_line.c_str() + 9));
  if (a.status_line.size() < 13 || a.status_line[12] != ' ')
    a.faults.push_back("no reason phrase: " + a.status_line);
  pos += 2;
  while (pos < head_text.size()) {
    auto eol = head_text.find("\r\n", pos);
    auto line = head_text.substr(pos, eol - pos);
    pos = eol + 2;
    auto colon = line.find(": ");
    if (colon == std::string::npos || colon == 0) {
      a.faults.push_back("bad field line: " + line);
      continue;
    }
    a.fields.emplace_back(line.substr(0, colon), line.substr(colon + 2));
  }
  std::map<std::string, int> seen;
  for (auto& [k, v] : a.fields)
    if (++seen[lower(k)] == 2)
      a.faults.push_back("duplicate field: " + k);
  auto lengths = a.all("Content-Length");
  size_t body_len = 0;
  bool no_body = head || a.status == 304 || a.status == 204;
  if (a.status != 304 && a.status != 204 && lengths.size() != 1)
    a.faults.push_back("Content-Length fields: "
                       + std::to_string(lengths.size()));
  if (!lengths.empty() && !no_body)
    body_len = std::stoul(lengths.front());
  if (data.size() < end + 4 + body_len)
    return std::nullopt;
  a.body = data.substr(end + 4, body_len);
  data.erase(0, end + 4 + body_len);
  return a;
}

/// Reads answers for requests whose HEAD-ness is `heads` (bounded: 15 s);
/// what arrived after them is left in `rest`.
std::vector<wire_answer> read_answers(raw_conn& c,
                                      const std::vector<bool>& heads,
                                      std::string& rest) {
  std::vector<wire_answer> out;
  auto deadline = clock_type::now() + 15s;
  while (out.size() < heads.size() && clock_type::now() < deadline) {
    while (out.size() < heads.size()) {
      auto a = take_answer(rest, heads[out.size()]);
      if (!a)
        break;
      out.push_back(std::move(*a));
    }
    if (out.size() == heads.size())
      break;
    auto more = c.read_some(500ms);
    if (c.eof())
      break;
    rest += more;
  }
  return out;
}

const std::string host = "Host: 127.0.0.1\r\n";

/// A 60 s mono AAC recording: about 480 KB, under the 1 MiB cache limit.
fs::path long_m4a(const temp_dir& dir) {
  auto m4a = dir / "long.m4a";
  make_media("-f lavfi -i sine=frequency=523:duration=60:sample_rate=44100 "
             "-ac 1 -c:a aac -b:a 64k",
             m4a);
  return m4a;
}

/// Uploads `bytes` at `rec` and waits until it is ready.
void store(uint16_t port, const std::string& rec, const std::string& bytes) {
  auto up = upload_file(port, rec, bytes);
  INFO("upload: " << up.body);
  REQUIRE(up.status == 201);
  require_ready(port, rec, 30000ms);
}

/// The `us=` of the access-log line of request `id` (-1 when not logged).
long long logged_us(const std::string& log, const std::string& id) {
  auto tag = "req_id=" + id + " ";
  auto at = log.find(tag);
  if (at == std::string::npos)
    return -1;
  auto us = log.find(" us=", at);
  auto eol = log.find('\n', at);
  if (us == std::string::npos || us > eol)
    return -1;
  return std::atoll(log.c_str() + us + 4);
}

/// The access-log line of request `id` ("" when not logged).
std::string logged_line(const std::string& log, const std::string& id) {
  auto at = log.find("req_id=" + id + " ");
  if (at == std::string::npos)
    return {};
  return log.substr(at, log.find('\n', at) - at);
}

/// One GET on a fresh connection; its latency, or -1 ms when it failed.
milliseconds timed_get(uint16_t port, const std::string& target,
                       size_t expect_size) {
  auto start = clock_type::now();
  try {
    auto res = http_get(port, target);
    if (res.status != 200 || res.body.size() != expect_size)
      return milliseconds{-1};
  } catch (const std::exception&) {
    return milliseconds{-1};
  }
  return std::chrono::duration_cast<milliseconds>(clock_type::now() - start);
}

/// Reads one answer slowly: `step` bytes, a pause, and again (bounded by
/// `limit`). Returns what arrived and the answer's full length (0 when no
/// head came).
std::pair<std::string, size_t> slow_read(uint16_t port,
                                         const std::string& target,
                                         const std::string& id, size_t step,
                                         milliseconds pause,
                                         std::chrono::seconds limit) {
  raw_conn c{port, 32 * 1024};
  if (!c.send_all("GET " + target + " HTTP/1.1\r\n" + host
                  + "X-Request-Id: " + id + "\r\n\r\n"))
    return {};
  auto start = clock_type::now();
  std::string data;
  size_t expected = 0;
  while (clock_type::now() - start < limit) {
    auto more = c.read_some(3000ms, step);
    if (more.empty())
      break;
    data += more;
    if (expected == 0) {
      auto end = data.find("\r\n\r\n");
      if (end != std::string::npos) {
        std::string copy = data.substr(0, end + 4);
        auto cl = copy.find("Content-Length: ");
        if (cl == std::string::npos)
          return {data, 0};
        expected = end + 4 + std::stoul(copy.substr(cl + 16));
      }
    }
    if (expected != 0 && data.size() >= expected)
      break;
    std::this_thread::sleep_for(pause);
  }
  return {data, expected};
}

/// A 60 s stereo 48 kHz recording: its `wav` format is ~11 MiB, more than
/// the kernel's send buffer (4 MiB at most) can take at once.
fs::path long_wav(const temp_dir& dir) {
  auto wav = dir / "long.wav";
  make_media("-f lavfi -i sine=frequency=300:sample_rate=48000:duration=60 "
             "-ac 2 -c:a pcm_s16le",
             wav);
  return wav;
}

} // namespace

TEST_CASE("wire: pipelined cached answers of every kind are each framed "
          "once, with CORS, Date and the request id",
          "[integration][wire-hostile]") {
  const std::string origin = "https://app.example.com";
  server_process srv;
  srv.start({"--set", "server.cors_origins=" + origin});
  const auto port = srv.port();
  const std::string rec = "/audio/user/81/phrase/1";
  const std::string target = rec + "/m4a";
  store(port, rec, read_file(audio_fixtures().m4a));
  auto whole = http_get(port, target);
  REQUIRE(whole.status == 200);
  const auto etag = whole.header("ETag");
  const auto& file = whole.body;
  REQUIRE(file.size() > 3000);
  const auto size = std::to_string(file.size());

  struct ask {
    std::string method;
    std::string extra;
    unsigned status;
    std::string body;
  };
  std::vector<ask> asks = {
    {"GET", "", 200, file},
    {"HEAD", "", 200, ""},
    {"GET", "Range: bytes=100-1099\r\n", 206, file.substr(100, 1000)},
    {"GET", "If-None-Match: " + etag + "\r\n", 304, ""},
    {"GET", "Range: bytes=5-14\r\nIf-Range: " + etag + "\r\n", 206,
     file.substr(5, 10)},
    {"GET", "Range: bytes=5-14\r\nIf-Range: \"nope\"\r\n", 200, file},
    {"GET", "Range: bytes=99999999-\r\n", 416, ""},
    {"HEAD", "Range: bytes=0-9\r\n", 206, ""},
    {"GET", "Range: bytes=-700\r\n", 206, file.substr(file.size() - 700)},
    {"GET", "", 200, file},
  };

  auto check_answers = [&](const std::vector<wire_answer>& got,
                           unsigned version, const std::string& prefix) {
    REQUIRE(got.size() == asks.size());
    for (size_t i = 0; i < got.size(); ++i) {
      const auto& a = got[i];
      INFO("answer " << i << ": " << a.status_line);
      for (auto& f : a.faults)
        FAIL_CHECK(f);
      CHECK(a.version == version);
      CHECK(a.status == asks[i].status);
      CHECK(a.get("X-Request-Id") == prefix + std::to_string(i));
      CHECK(!a.get("Date").empty());
      CHECK(a.get("Server") == "phonon");
      CHECK(a.get("Vary") == "Origin");
      CHECK(a.get("Access-Control-Allow-Origin") == origin);
      if (asks[i].status == 416) {
        CHECK(a.get("Content-Range") == "bytes */" + size);
        continue;
      }
      CHECK(a.get("ETag") == etag);
      if (asks[i].status != 304) {
        CHECK(a.get("Content-Type") == whole.header("Content-Type"));
        CHECK(a.get("Accept-Ranges") == "bytes");
      }
      if (asks[i].method == "GET")
        CHECK(a.body == asks[i].body);
      if (asks[i].status == 206 && asks[i].method == "HEAD")
        CHECK(a.get("Content-Length") == "10");
      if (asks[i].status == 200 && asks[i].method == "HEAD")
        CHECK(a.get("Content-Length") == size);
    }
  };

  SECTION("HTTP/1.1 keep-alive, all in one send") {
    raw_conn c{port};
    std::string all;
    std::vector<bool> heads;
    for (size_t i = 0; i < asks.size(); ++i) {
      all += asks[i].method + " " + target + " HTTP/1.1\r\n" + host
             + "Origin: " + origin + "\r\nX-Request-Id: p11-"
             + std::to_string(i) + "\r\n" + asks[i].extra + "\r\n";
      heads.push_back(asks[i].method == "HEAD");
    }
    REQUIRE(c.send_all(all));
    std::string rest;
    auto got = read_answers(c, heads, rest);
    check_answers(got, 11, "p11-");
    for (auto& a : got)
      CHECK(a.all("Connection").empty());
    CHECK(rest.empty());
    // Still open for one more.
    REQUIRE(c.send_all("GET " + target + " HTTP/1.1\r\n" + host + "\r\n"));
    auto again = read_answers(c, {false}, rest);
    REQUIRE(again.size() == 1);
    CHECK(again[0].body == file);
  }
  SECTION("HTTP/1.0 with keep-alive, all in one send") {
    raw_conn c{port};
    std::string all;
    std::vector<bool> heads;
    for (size_t i = 0; i < asks.size(); ++i) {
      all += asks[i].method + " " + target + " HTTP/1.0\r\n" + host
             + "Connection: keep-alive\r\nOrigin: " + origin
             + "\r\nX-Request-Id: p10-" + std::to_string(i) + "\r\n"
             + asks[i].extra + "\r\n";
      heads.push_back(asks[i].method == "HEAD");
    }
    REQUIRE(c.send_all(all));
    std::string rest;
    auto got = read_answers(c, heads, rest);
    check_answers(got, 10, "p10-");
    for (auto& a : got)
      CHECK(lower(a.get("Connection")) == "keep-alive");
    CHECK(rest.empty());
  }
  SECTION("HTTP/1.0 without keep-alive: one answer, then the close") {
    for (size_t i = 0; i < asks.size(); ++i) {
      raw_conn c{port};
      REQUIRE(c.send_all(asks[i].method + " " + target + " HTTP/1.0\r\n"
                         + "Origin: " + origin + "\r\nX-Request-Id: q10-"
                         + std::to_string(i) + "\r\n" + asks[i].extra
                         + "\r\n"));
      std::string data;
      auto deadline = clock_type::now() + 10s;
      while (!c.eof() && clock_type::now() < deadline)
        data += c.read_some(500ms);
      CHECK(c.eof());
      auto a = take_answer(data, asks[i].method == "HEAD");
      REQUIRE(a);
      INFO("answer " << i << ": " << a->status_line);
      for (auto& f : a->faults)
        FAIL_CHECK(f);
      CHECK(a->version == 10);
      CHECK(a->status == asks[i].status);
      CHECK(a->get("X-Request-Id") == "q10-" + std::to_string(i));
      CHECK(lower(a->get("Connection")) != "keep-alive");
      if (asks[i].method == "GET" && asks[i].status != 416)
        CHECK(a->body == asks[i].body);
      CHECK(data.empty());
    }
  }
  SECTION("HTTP/1.1 Connection: close in the middle of a pipeline") {
    raw_conn c{port};
    std::string all;
    for (int i = 0; i < 5; ++i)
      all += "GET " + target + " HTTP/1.1\r\n" + host + "X-Request-Id: c-"
             + std::to_string(i) + "\r\n"
             + (i == 2 ? "Connection: close\r\n" : "") + "\r\n";
    REQUIRE(c.send_all(all));
    std::string rest;
    auto got = read_answers(c, {false, false, false}, rest);
    REQUIRE(got.size() == 3);
    for (int i = 0; i < 3; ++i) {
      for (auto& f : got[static_cast<size_t>(i)].faults)
        FAIL_CHECK(f);
      CHECK(got[static_cast<size_t>(i)].body == file);
      CHECK(got[static_cast<size_t>(i)].get("X-Request-Id")
            == "c-" + std::to_string(i));
    }
    CHECK(got[0].all("Connection").empty());
    CHECK(lower(got[2].get("Connection")) == "close");
    auto deadline = clock_type::now() + 5s;
    while (!c.eof() && clock_type::now() < deadline)
      rest += c.read_some(500ms);
    CHECK(c.eof());
    CHECK(rest.empty()); // nothing after the closing answer
  }
}

TEST_CASE("wire: a slow but steady reader of a ~500 KB cached answer is "
          "not cut at idle_timeout",
          "[integration][wire-hostile]") {
  temp_dir dir{"phonon-it-wire"};
  auto m4a = read_file(long_m4a(dir));
  server_process srv;
  srv.start({"--set", "server.idle_timeout=1"});
  const auto port = srv.port();
  const std::string rec = "/audio/user/82/phrase/1";
  const std::string target = rec + "/m4a";
  store(port, rec, m4a);
  auto whole = http_get(port, target); // reads it into the memory cache
  REQUIRE(whole.status == 200);
  const auto size = whole.body.size();
  REQUIRE(size > 256 * 1024);
  REQUIRE(size < 1024 * 1024);
  auto before = fetch_metrics(port);
  auto start = clock_type::now();
  auto [data, expected] = slow_read(port, target, "slow-cached", 16 * 1024,
                                    100ms, 30s);
  auto took = clock_type::now() - start;
  auto after = fetch_metrics(port);
  INFO("read " << data.size() << " of " << expected << " bytes in "
               << std::chrono::duration_cast<milliseconds>(took).count()
               << " ms");
  CHECK(counter_value(after, "phonon_http_memory_cache_hits_total")
          - counter_value(before, "phonon_http_memory_cache_hits_total")
        >= 1);
  CHECK(took > 1500ms);
  REQUIRE(expected > size);
  CHECK(data.size() == expected);
  CHECK(data.substr(data.size() - size) == whole.body);
}

TEST_CASE("wire: a slow but steady reader of a cached answer larger than "
          "the send buffer is not cut at idle_timeout",
          "[integration][wire-hostile]") {
  // The sendfile path samples the send queue when it blocks and again at
  // every watchdog fire (hostile_http_test.cpp "a reader slower than the
  // kernel's wakeups"); a memory-cache hit is now one async_write armed
  // once, its queue sampled once, before the write.
  // With the cache off the same answer goes out with sendfile: the control.
  auto cache_bytes = GENERATE(as<std::string>{}, "64MiB", "0");
  INFO("storage.memory_cache_bytes=" << cache_bytes);
  temp_dir dir{"phonon-it-wire"};
  auto wav = read_file(long_wav(dir));
  server_process srv;
  srv.start({"--set", "server.idle_timeout=1", "--set",
             "server.max_upload_size=32MiB", "--set",
             "storage.memory_cache_bytes=" + cache_bytes, "--set",
             "storage.memory_cache_item_max=16MiB"});
  const auto port = srv.port();
  const std::string rec = "/audio/user/87/phrase/1";
  const std::string target = rec + "/wav";
  auto up = upload_file(port, rec, wav, "big.wav", "audio/wav");
  INFO("upload: " << up.body);
  REQUIRE(up.status == 201);
  require_ready(port, rec, 30000ms);
  auto whole = http_get(port, target); // reads it into the memory cache
  REQUIRE(whole.status == 200);
  const auto size = whole.body.size();
  REQUIRE(size > (8u << 20));
  auto before = fetch_metrics(port);
  // 64 KiB every 20 ms (~3 MB/s): ~4 s, never a gap over 20 ms.
  auto start = clock_type::now();
  auto [data, expected] = slow_read(port, target, "slow-big-cached",
                                    64 * 1024, 20ms, 40s);
  auto took = clock_type::now() - start;
  auto after = fetch_metrics(port);
  INFO("read " << data.size() << " of " << expected << " bytes in "
               << std::chrono::duration_cast<milliseconds>(took).count()
               << " ms; access log: "
               << logged_line(srv.log(), "slow-big-cached"));
  if (cache_bytes != "0")
    CHECK(counter_value(after, "phonon_http_memory_cache_hits_total")
            - counter_value(before, "phonon_http_memory_cache_hits_total")
          >= 1);
  CHECK(took > 1500ms);
  REQUIRE(expected > size);
  CHECK(data.size() == expected);
}

TEST_CASE("wire: a client that never reads cached answers is closed within "
          "the idle bound while others are served",
          "[integration][wire-hostile]") {
  temp_dir dir{"phonon-it-wire"};
  // The memory cache (one gather write) and, for comparison, sendfile.
  auto cache_bytes = GENERATE(as<std::string>{}, "64MiB", "0");
  INFO("storage.memory_cache_bytes=" << cache_bytes);
  server_process srv;
  srv.start({"--set", "server.idle_timeout=2", "--set", "server.threads=2",
             "--set", "storage.memory_cache_bytes=" + cache_bytes});
  const auto port = srv.port();
  const std::string small_rec = "/audio/user/83/phrase/1";
  const std::string large_rec = "/audio/user/83/phrase/2";
  store(port, small_rec, read_file(audio_fixtures().m4a));
  store(port, large_rec, read_file(long_m4a(dir)));
  auto small = http_get(port, small_rec + "/m4a");
  auto large = http_get(port, large_rec + "/m4a");
  REQUIRE(small.status == 200);
  REQUIRE(large.status == 200);
  REQUIRE(small.body.size() < 64 * 1024);
  REQUIRE(large.body.size() > 256 * 1024);

  struct stall_case {
    const char* name;
    std::string target;
    int pipelined;
    size_t body;
    // The bound on how long the server holds the stuck write: two idle
    // periods. Small answers: the first watchdog fire only samples the
    // send queue (server.cpp write_wire). Large ones: the receiving kernel
    // still takes (acks) a few bytes after the client stopped reading, so
    // the queue shrinks once; the sendfile path measures the same 2x.
    milliseconds bound;
  };
  for (auto sc : {stall_case{"small", small_rec + "/m4a", 400,
                             small.body.size(), 2 * 2000ms + 1500ms},
                  stall_case{"large", large_rec + "/m4a", 20,
                             large.body.size(), 2 * 2000ms + 1500ms}}) {
    INFO("stalled client: " << sc.name);
    raw_conn staller{port, 4096};
    std::string all;
    for (int i = 0; i < sc.pipelined; ++i)
      all += "GET " + sc.target + " HTTP/1.1\r\n" + host + "X-Request-Id: st-"
             + sc.name + "-" + std::to_string(i) + "\r\n\r\n";
    // The server stops reading once its answers pile up: send what fits.
    {
      pollfd p{staller.fd(), POLLOUT, 0};
      size_t off = 0;
      auto until = clock_type::now() + 3s;
      while (off < all.size() && clock_type::now() < until) {
        if (::poll(&p, 1, 100) <= 0)
          continue;
        auto n = ::send(staller.fd(), all.data() + off, all.size() - off,
                        MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0)
          off += static_cast<size_t>(n);
      }
    }
    // Others are served meanwhile, on every io thread.
    milliseconds worst{0};
    int failed = 0;
    auto start = clock_type::now();
    while (clock_type::now() - start < sc.bound + 1s) {
      auto t = timed_get(port, small_rec + "/m4a", small.body.size());
      if (t.count() < 0)
        ++failed;
      else
        worst = std::max(worst, t);
      std::this_thread::sleep_for(50ms);
    }
    CHECK(failed == 0);
    CHECK(worst < 1000ms);
    // The stuck answer's access-log line: written when the server gave up.
    auto log = srv.log();
    long long held_us = -1;
    std::string stuck;
    for (int i = 0; i < sc.pipelined; ++i) {
      auto id = std::string{"st-"} + sc.name + "-" + std::to_string(i);
      auto us = logged_us(log, id);
      if (us > held_us) {
        held_us = us;
        stuck = id;
      }
    }
    INFO("longest held answer " << stuck << " us=" << held_us);
    if (std::getenv("WIRE_VERBOSE"))
      WARN(cache_bytes << " " << sc.name << ": longest held answer " << stuck << " us=" << held_us
                   << ", worst other GET " << worst.count() << " ms");
    REQUIRE(held_us >= 0);
    CHECK(held_us
          <= std::chrono::duration_cast<std::chrono::microseconds>(sc.bound)
               .count());
    CHECK(held_us >= 1'500'000); // it did wait an idle period
    // The connection is gone: what the kernel holds, then the end.
    size_t drained = 0;
    auto until = clock_type::now() + 10s;
    while (!staller.eof() && clock_type::now() < until)
      drained += staller.read_some(500ms).size();
    CHECK(staller.eof());
    CHECK(drained < static_cast<size_t>(sc.pipelined) * (sc.body + 400));
  }
  CHECK(http_get(port, "/healthz").status == 200);
}

TEST_CASE("wire: 200 connections over the io threads, a quarter stalled: "
          "nobody starves",
          "[integration][wire-hostile]") {
  auto threads = GENERATE(1, 4);
  INFO("server.threads=" << threads);
  server_process srv;
  srv.start({"--set", "server.threads=" + std::to_string(threads), "--set",
             "server.idle_timeout=30"});
  const auto port = srv.port();
  const std::string rec = "/audio/user/84/phrase/1";
  const std::string target = rec + "/m4a";
  store(port, rec, read_file(audio_fixtures().m4a));
  auto whole = http_get(port, target);
  REQUIRE(whole.status == 200);

  std::vector<std::unique_ptr<raw_conn>> conns;
  for (int i = 0; i < 200; ++i)
    conns.push_back(std::make_unique<raw_conn>(port, 4096));
  // Every 4th connection asks for 60 answers in one send and reads none:
  // its write stays pending (idle_timeout 30 s outlasts the test).
  std::string burst;
  for (int k = 0; k < 60; ++k)
    burst += "GET " + target + " HTTP/1.1\r\n" + host + "\r\n";
  for (size_t i = 0; i < conns.size(); i += 4) {
    pollfd p{conns[i]->fd(), POLLOUT, 0};
    if (::poll(&p, 1, 100) > 0)
      (void)::send(conns[i]->fd(), burst.data(), burst.size(),
                   MSG_NOSIGNAL | MSG_DONTWAIT);
  }
  std::this_thread::sleep_for(300ms);
  // The others: three keep-alive GETs each, every answer whole and quick.
  milliseconds worst{0};
  int bad = 0;
  auto begin = clock_type::now();
  for (int round = 0; round < 3; ++round)
    for (size_t i = 0; i < conns.size(); ++i) {
      if (i % 4 == 0)
        continue;
      auto t0 = clock_type::now();
      auto& c = *conns[i];
      if (!c.send_all("GET " + target + " HTTP/1.1\r\n" + host + "\r\n")) {
        ++bad;
        continue;
      }
      std::string rest;
      auto got = read_answers(c, {false}, rest);
      if (got.size() != 1 || got[0].status != 200
          || got[0].body != whole.body || !got[0].faults.empty())
        ++bad;
      worst = std::max(worst, std::chrono::duration_cast<milliseconds>(
                                clock_type::now() - t0));
      if (clock_type::now() - begin > 60s)
        break;
    }
  INFO("worst latency " << worst.count() << " ms");
  CHECK(bad == 0);
  CHECK(worst < 2000ms);
  // Stalled clients can still take their answers when they read again.
  for (size_t i = 0; i < conns.size(); i += 16) {
    std::string rest;
    auto got = read_answers(*conns[i], std::vector<bool>(60, false), rest);
    CHECK(got.size() == 60);
    for (auto& a : got)
      if (a.body != whole.body || !a.faults.empty()) {
        FAIL_CHECK("stalled connection " << i << " got a bad answer");
        break;
      }
  }
}

TEST_CASE("wire: resets mid-write of cached answers under load; /metrics "
          "stays consistent while scraped",
          "[integration][wire-hostile]") {
  temp_dir dir{"phonon-it-wire"};
  server_process srv;
  srv.start({"--set", "server.threads=4"});
  const auto port = srv.port();
  const std::string small_rec = "/audio/user/85/phrase/1";
  const std::string large_rec = "/audio/user/85/phrase/2";
  store(port, small_rec, read_file(audio_fixtures().m4a));
  store(port, large_rec, read_file(long_m4a(dir)));
  auto small = http_get(port, small_rec + "/m4a");
  auto large = http_get(port, large_rec + "/m4a");
  REQUIRE(small.status == 200);
  REQUIRE(large.status == 200);

  std::atomic<bool> stop{false};
  std::atomic<int> small_ok{0};
  std::atomic<int> small_bad{0};
  std::atomic<int> resets{0};
  std::vector<std::thread> load;
  auto load_end = clock_type::now() + 8s;
  for (int t = 0; t < 4; ++t)
    load.emplace_back([&, t] {
      for (int i = 0; i < 2000 && !stop && clock_type::now() < load_end;
           ++i) {
        try {
          if ((i + t) % 3 == 0) {
            // Ask for the large answer, take a little, reset.
            raw_conn c{port, 4096};
            c.send_all("GET " + large_rec + "/m4a HTTP/1.1\r\n" + host
                       + "\r\n");
            c.read_some(200ms, 2048);
            c.reset();
            ++resets;
          } else {
            auto res = http_get(port, small_rec + "/m4a");
            if (res.status == 200 && res.body == small.body)
              ++small_ok;
            else
              ++small_bad;
          }
        } catch (const std::exception&) {
          ++small_bad;
        }
      }
    });

  using series_key = std::map<std::string, std::string>;
  std::map<series_key, double> last_requests;
  int scrapes = 0;
  int faults = 0;
  std::string first_fault;
  auto note = [&](const std::string& what) {
    if (faults++ == 0)
      first_fault = what;
  };
  auto check_scrape = [&](const std::string& text, bool quiet) {
    const std::string h = "phonon_http_request_duration_seconds";
    // Buckets of each series, in order of appearance (ascending le).
    std::map<series_key, std::vector<std::pair<std::string, double>>> buckets;
    for (auto& [ls, v] : metric_samples(text, h + "_bucket")) {
      auto key = ls;
      auto le = key["le"];
      key.erase("le");
      buckets[key].emplace_back(le, v);
    }
    std::map<series_key, double> counts;
    for (auto& [ls, v] : metric_samples(text, h + "_count"))
      counts[ls] = v;
    if (buckets.empty())
      note("no histogram series");
    for (auto& [key, bs] : buckets) {
      for (size_t i = 1; i < bs.size(); ++i)
        if (bs[i].second < bs[i - 1].second)
          note("bucket le=" + bs[i].first + " below the one before");
      if (bs.empty() || bs.back().first != "+Inf")
        note("no +Inf bucket last");
      else if (counts[key] != bs.back().second)
        note("_count " + std::to_string(counts[key]) + " != +Inf "
             + std::to_string(bs.back().second));
    }
    // Requests per (route, status), summed over methods.
    std::map<series_key, double> per_route;
    for (auto& [ls, v] : metric_samples(text, "phonon_http_requests_total")) {
      auto it = last_requests.find(ls);
      if (it != last_requests.end() && v < it->second)
        note("phonon_http_requests_total went down");
      last_requests[ls] = v;
      auto key = ls;
      key.erase("method");
      per_route[key] += v;
    }
    for (auto& [key, n] : counts) {
      // Counted before observed: never fewer requests than observations,
      // and the same once quiet.
      if (per_route[key] < n)
        note("fewer requests than duration observations");
      if (quiet && per_route[key] != n)
        note("quiet: requests " + std::to_string(per_route[key])
             + " != observations " + std::to_string(n));
    }
  };
  auto scrape_end = clock_type::now() + 9s;
  while (scrapes < 200 && clock_type::now() < scrape_end) {
    try {
      check_scrape(fetch_metrics(port), false);
      ++scrapes;
    } catch (const std::exception& e) {
      note(std::string{"scrape failed: "} + e.what());
    }
    std::this_thread::sleep_for(20ms);
  }
  stop = true;
  for (auto& th : load)
    th.join();
  std::this_thread::sleep_for(500ms);
  // The last scrape's own request is counted after it is written: scrape
  // twice, check the second.
  fetch_metrics(port);
  std::this_thread::sleep_for(200ms);
  auto text = fetch_metrics(port);
  INFO("scrapes " << scrapes << ", small ok " << small_ok << ", bad "
                  << small_bad << ", resets " << resets << "; first fault: "
                  << first_fault);
  if (std::getenv("WIRE_VERBOSE"))
    WARN("scrapes " << scrapes << ", small ok " << small_ok << ", resets "
                    << resets);
  CHECK(scrapes > 20);
  CHECK(resets > 10);
  CHECK(small_ok > 100);
  CHECK(small_bad == 0);
  CHECK(faults == 0);
  // The final check: everything but /metrics itself (still being counted
  // for this very scrape) must match exactly.
  auto before_faults = faults;
  check_scrape(text, true);
  CHECK(faults == before_faults);
  CHECK(http_get(port, "/healthz").status == 200);
  CHECK(srv.running());
}

TEST_CASE("wire: SIGTERM with connections open on every io thread exits "
          "promptly",
          "[integration][wire-hostile]") {
  temp_dir dir{"phonon-it-wire"};
  server_process srv;
  srv.start({"--set", "server.threads=4"});
  const auto port = srv.port();
  const std::string rec = "/audio/user/86/phrase/1";
  store(port, rec, read_file(long_m4a(dir)));
  REQUIRE(http_get(port, rec + "/m4a").status == 200);
  std::vector<std::unique_ptr<raw_conn>> conns;
  for (int i = 0; i < 16; ++i) {
    conns.push_back(std::make_unique<raw_conn>(port, 4096));
    auto& c = *conns.back();
    switch (i % 4) {
      case 0: // idle, nothing sent
        break;
      case 1: // half a head
        c.send_all("GET /healthz HTTP/1.1\r\nHos");
        break;
      case 2: // a stuck large cached answer
        c.send_all("GET " + rec + "/m4a HTTP/1.1\r\n" + host + "\r\n");
        break;
      case 3: { // keep-alive after one answer
        c.send_all("GET /healthz HTTP/1.1\r\n" + host + "\r\n");
        std::string rest;
        CHECK(read_answers(c, {false}, rest).size() == 1);
        break;
      }
    }
  }
  std::this_thread::sleep_for(300ms);
  auto start = clock_type::now();
  int status = srv.stop();
  auto took = std::chrono::duration_cast<milliseconds>(clock_type::now()
                                                       - start);
  INFO("stop took " << took.count() << " ms, wait status " << status);
  CHECK(WIFEXITED(status));
  CHECK(took < 3000ms);
}

TEST_CASE("wire: SIGTERM while answers wait on the actors exits promptly "
          "and cleanly",
          "[.][shutdown-hang]") {
  // Skipped by default: a known defect older than the read-path changes of
  // 2026-12-03 (the binary built from 2ab42c3^ hangs the same way). With
  // conversions in flight at SIGTERM, srv.stop() returns but
  // caf::actor_system::~actor_system() (app/serve.cpp, end of run_serve)
  // waits in await_running_count_equal for an idle detached actor that
  // was never told to exit; the harness kills it with SIGKILL after 5 s.
  temp_dir dir{"phonon-it-wire"};
  server_process srv;
  srv.start({"--set", "server.threads=4", "--set",
             "server.max_upload_size=32MiB"});
  const auto port = srv.port();
  const std::string rec = "/audio/user/88/phrase/1";
  auto up = upload_file(port, rec, read_file(long_wav(dir)), "big.wav",
                        "audio/wav");
  REQUIRE(up.status == 201);
  require_ready(port, rec, 30000ms);
  // Conversions of a 60 s stereo recording: seconds of work each, one
  // waiting request per io thread and format.
  std::vector<std::unique_ptr<raw_conn>> conns;
  for (const char* format : {"opus", "mp3", "flac", "ogg", "webm", "m4a"})
    for (int i = 0; i < 2; ++i) {
      conns.push_back(std::make_unique<raw_conn>(port));
      conns.back()->send_all("GET " + rec + "/" + format + " HTTP/1.1\r\n"
                             + host + "\r\n");
    }
  std::this_thread::sleep_for(300ms);
  auto start = clock_type::now();
  int status = srv.stop();
  auto took = std::chrono::duration_cast<milliseconds>(clock_type::now()
                                                       - start);
  INFO("stop took " << took.count() << " ms, wait status " << status
                    << "; log: " << srv.log_tail(15));
  CHECK(WIFEXITED(status));
  CHECK(took < 3000ms);
}

TEST_CASE("wire: clients that reset mid-sendfile do not kill the server",
          "[integration][wire-hostile]") {
  // sendfile(2) has no MSG_NOSIGNAL: a write to a connection the peer
  // reset raises SIGPIPE, whose default action ends the process (found by
  // `wrk` stopping mid-download of a 5 MiB wav in bench/read_path.sh).
  temp_dir dir{"phonon-it-wire"};
  server_process srv;
  // The 60 s recording's wav master (~5 MiB) goes out with sendfile (the
  // memory cache is off), more than a small receive window takes at once.
  srv.start({"--set", "storage.memory_cache_bytes=0"});
  const auto port = srv.port();
  const std::string rec = "/audio/user/86/phrase/1";
  store(port, rec, read_file(long_m4a(dir)));
  for (int i = 0; i < 20; ++i) {
    raw_conn c{port, 4096};
    REQUIRE(c.send_all("GET " + rec + "/wav HTTP/1.1\r\n" + host + "\r\n"));
    // Some of the answer arrived, so the server is inside sendfile.
    REQUIRE_FALSE(c.read_some(2000ms, 2048).empty());
    c.reset();
    std::this_thread::sleep_for(20ms);
  }
  std::this_thread::sleep_for(200ms);
  auto health = http_get(port, "/healthz");
  CHECK(health.status == 200);
  CHECK(srv.running());
}
