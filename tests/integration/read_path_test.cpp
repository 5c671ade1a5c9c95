// The read path of stored files against the real `phonon` binary: small
// files from the memory cache (storage.memory_cache_bytes), larger ones
// with sendfile(2). Answers from the cache must equal, byte for byte, those
// of a server that sends the same stored file from disk.

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tests/integration/media_support.hpp"
#include "tests/integration/support.hpp"

using namespace phonon::integration;
namespace fs = std::filesystem;

namespace {

using namespace std::chrono_literals;

/// The header fields that must not differ between the two ways of serving.
const std::vector<std::string> compared_fields = {
  "ETag",          "Content-Range", "Content-Length", "Last-Modified",
  "Content-Type",  "Accept-Ranges", "Cache-Control",  "Content-Disposition",
};

/// One request of the comparison and what it answered.
struct probe {
  std::string name;
  std::string method;
  header_list headers;
  http_response res;
};

/// The requests compared between the cache and the disk, for a file whose
/// ETag is `etag` and Last-Modified is `last_modified`.
std::vector<probe> probes_of(const std::string& etag,
                             const std::string& last_modified) {
  return {
    {"full GET", "GET", {}, {}},
    {"closed range", "GET", {{"Range", "bytes=100-2099"}}, {}},
    {"open range", "GET", {{"Range", "bytes=1000-"}}, {}},
    {"suffix range", "GET", {{"Range", "bytes=-700"}}, {}},
    {"If-Range match", "GET",
     {{"Range", "bytes=5-10"}, {"If-Range", etag}}, {}},
    {"HEAD", "HEAD", {}, {}},
    {"HEAD of a range", "HEAD", {{"Range", "bytes=0-9"}}, {}},
    {"304 by ETag", "GET", {{"If-None-Match", etag}}, {}},
    {"304 by date", "GET", {{"If-Modified-Since", last_modified}}, {}},
    {"416", "GET", {{"Range", "bytes=99999999-"}}, {}},
  };
}

/// Sends every probe over one keep-alive connection.
void run_probes(uint16_t port, const std::string& target,
                std::vector<probe>& probes) {
  http_connection conn{port};
  for (auto& p : probes)
    p.res = conn.request(p.method, target, {}, p.headers);
}

uint64_t gauge(uint16_t port, const std::string& name) {
  return static_cast<uint64_t>(counter_value(fetch_metrics(port), name));
}

/// The only file called `name` below `dir`.
fs::path find_blob(const fs::path& dir, const std::string& name) {
  std::vector<fs::path> found;
  for (auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file() && e.path().filename() == name)
      found.push_back(e.path());
  REQUIRE(found.size() == 1);
  return found.front();
}

/// A 60 s mono 44.1 kHz AAC recording (its `wav` format is ~5 MiB).
fs::path long_recording(const temp_dir& dir) {
  auto m4a = dir / "long.m4a";
  make_media("-f lavfi -i sine=frequency=523:duration=60:sample_rate=44100 "
             "-ac 1 -c:a aac -b:a 48k",
             m4a);
  return m4a;
}

/// A GET read by a slow but steady client: `step` bytes, then a pause, with
/// a small receive buffer. Returns the status line + head and the body.
std::pair<std::string, std::string>
slow_get(uint16_t port, const std::string& target, std::size_t step,
         std::chrono::milliseconds pause, std::chrono::seconds limit) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    throw std::runtime_error("socket failed");
  struct closer {
    int fd;
    ~closer() {
      ::close(fd);
    }
  } guard{fd};
  int rcvbuf = 32 * 1024;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0)
    throw std::runtime_error("connect failed");
  auto req = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n"
             + "Connection: close\r\n\r\n";
  if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL)
      != static_cast<ssize_t>(req.size()))
    throw std::runtime_error("send failed");
  auto deadline = std::chrono::steady_clock::now() + limit;
  std::string data;
  std::vector<char> buf(step);
  while (std::chrono::steady_clock::now() < deadline) {
    // Fill one step (or up to the end), then pause.
    std::size_t got = 0;
    while (got < step) {
      auto n = ::recv(fd, buf.data() + got, step - got, 0);
      if (n <= 0)
        break;
      got += static_cast<std::size_t>(n);
    }
    data.append(buf.data(), got);
    if (got < step)
      break; // the server closed (or the 5 s receive timeout passed)
    std::this_thread::sleep_for(pause);
  }
  auto end = data.find("\r\n\r\n");
  if (end == std::string::npos)
    return {data, {}};
  return {data.substr(0, end), data.substr(end + 4)};
}

} // namespace

TEST_CASE("answers from the memory cache equal those sent from disk",
          "[integration][read-path]") {
  server_process srv;
  srv.start();
  const std::string rec = "/audio/user/71/phrase/1";
  const std::string target = rec + "/m4a";
  auto up = upload_file(srv.port(), rec, read_file(audio_fixtures().m4a));
  INFO("upload: " << up.body);
  REQUIRE(up.status == 201);
  require_ready(srv.port(), rec);

  // The first GET reads the file into the cache; every probe after it is
  // served from the cached bytes.
  auto first = http_get(srv.port(), target);
  REQUIRE(first.status == 200);
  const auto etag = first.header("ETag");
  const auto last_modified = first.header("Last-Modified");
  REQUIRE(!etag.empty());
  REQUIRE(first.body.size() > 3000);
  auto before = fetch_metrics(srv.port());
  auto cached = probes_of(etag, last_modified);
  run_probes(srv.port(), target, cached);
  auto after = fetch_metrics(srv.port());
  // Five probes send a body: all of them hits.
  CHECK(counter_value(after, "phonon_http_memory_cache_hits_total")
        - counter_value(before, "phonon_http_memory_cache_hits_total")
        == Approx(5));
  CHECK(counter_value(after, "phonon_http_memory_cache_misses_total")
        == counter_value(before, "phonon_http_memory_cache_misses_total"));
  CHECK(counter_value(after, "phonon_http_memory_cache_bytes")
        == Approx(static_cast<double>(first.body.size())));
  CHECK(counter_value(after, "phonon_http_memory_cache_entries")
        == Approx(1));

  // The same stored file, served with the cache off (sendfile).
  srv.stop();
  srv.start({"--set", "storage.memory_cache_bytes=0"});
  auto disk = probes_of(etag, last_modified);
  run_probes(srv.port(), target, disk);
  auto off = fetch_metrics(srv.port());
  CHECK(counter_value(off, "phonon_http_memory_cache_hits_total") == 0);
  CHECK(counter_value(off, "phonon_http_memory_cache_bytes") == 0);

  REQUIRE(cached.size() == disk.size());
  for (std::size_t i = 0; i < cached.size(); ++i) {
    const auto& a = cached[i].res;
    const auto& b = disk[i].res;
    INFO("probe: " << cached[i].name);
    CHECK(a.status == b.status);
    CHECK(a.body == b.body);
    for (auto& field : compared_fields) {
      INFO("field: " << field);
      CHECK(a.has(field) == b.has(field));
      CHECK(a.header(field) == b.header(field));
    }
  }
  // And the answers are what the file holds.
  const auto& full = disk[0].res.body;
  CHECK(full == first.body);
  CHECK(cached[0].res.status == 200);
  CHECK(cached[1].res.status == 206);
  CHECK(cached[1].res.body == full.substr(100, 2000));
  CHECK(cached[1].res.header("Content-Range")
        == "bytes 100-2099/" + std::to_string(full.size()));
  CHECK(cached[2].res.body == full.substr(1000));
  CHECK(cached[3].res.body == full.substr(full.size() - 700));
  CHECK(cached[4].res.body == full.substr(5, 6));
  CHECK(cached[5].res.header("Content-Length")
        == std::to_string(full.size()));
  CHECK(cached[5].res.body.empty());
  CHECK(cached[6].res.header("Content-Length") == "10");
  CHECK(cached[7].res.status == 304);
  CHECK(cached[8].res.status == 304);
  CHECK(cached[9].res.status == 416);
}

TEST_CASE("eviction keeps the memory cache under its bound",
          "[integration][read-path]") {
  constexpr uint64_t bound = 300 * 1024;
  server_process srv;
  srv.start({"--set", "storage.memory_cache_bytes=300KiB"});
  const auto port = srv.port();
  const auto bytes = read_file(audio_fixtures().m4a);
  REQUIRE(bytes.size() * 3 < bound); // several fit, not all of them
  constexpr int recordings = 16;
  std::vector<std::string> bodies;
  for (int i = 1; i <= recordings; ++i) {
    auto rec = "/audio/user/72/phrase/" + std::to_string(i);
    auto up = upload_file(port, rec, bytes);
    INFO("upload " << i << ": " << up.body);
    REQUIRE(up.status == 201);
  }
  for (int i = 1; i <= recordings; ++i) {
    auto rec = "/audio/user/72/phrase/" + std::to_string(i);
    require_ready(port, rec);
    auto res = http_get(port, rec + "/m4a");
    REQUIRE(res.status == 200);
    bodies.push_back(res.body);
    INFO("after recording " << i);
    CHECK(gauge(port, "phonon_http_memory_cache_bytes") <= bound);
  }
  // A second round in the same order: LRU evicts each before it is asked
  // for again, and the bodies stay the same.
  for (int i = 1; i <= recordings; ++i) {
    auto res = http_get(port, "/audio/user/72/phrase/" + std::to_string(i)
                                + "/m4a");
    REQUIRE(res.status == 200);
    CHECK(res.body == bodies[static_cast<std::size_t>(i - 1)]);
  }
  auto text = fetch_metrics(port);
  auto held = counter_value(text, "phonon_http_memory_cache_bytes");
  CHECK(held <= static_cast<double>(bound));
  CHECK(held > 0);
  CHECK(counter_value(text, "phonon_http_memory_cache_evictions_total")
        >= recordings);
  CHECK(counter_value(text, "phonon_http_memory_cache_entries")
        <= static_cast<double>(bound / bytes.size()));
}

TEST_CASE("a 60 s recording is sent with sendfile, whole and in ranges",
          "[integration][read-path]") {
  temp_dir dir{"phonon-it-read"};
  auto m4a = long_recording(dir);
  server_process srv;
  // A short idle limit: the slow reader below must outlast it.
  srv.start({"--set", "server.idle_timeout=1"});
  const auto port = srv.port();
  const std::string rec = "/audio/user/73/phrase/1";
  auto up = upload_file(port, rec, read_file(m4a));
  INFO("upload: " << up.body);
  REQUIRE(up.status == 201);
  require_ready(port, rec, 30000ms);
  const std::string target = rec + "/wav";

  auto before = fetch_metrics(port);
  auto res = http_get(port, target);
  REQUIRE(res.status == 200);
  const auto stored = read_file(find_blob(srv.data_dir(), "master.wav"));
  REQUIRE(stored.size() > (4u << 20)); // past the 1 MiB cache item limit
  CHECK(res.body.size() == stored.size());
  CHECK(res.body == stored);
  CHECK(res.header("Content-Length") == std::to_string(stored.size()));
  auto after = fetch_metrics(port);
  CHECK(counter_value(after, "phonon_http_sendfile_bytes_total")
          - counter_value(before, "phonon_http_sendfile_bytes_total")
        == Approx(static_cast<double>(stored.size())));
  CHECK(counter_value(after, "phonon_http_memory_cache_bytes") == 0);

  const auto size = stored.size();
  const auto total = "/" + std::to_string(size);
  struct range_case {
    std::string range;
    std::size_t first;
    std::size_t length;
  };
  const std::size_t mid = size / 2;
  std::vector<range_case> ranges = {
    {"bytes=0-65535", 0, 65536},
    {"bytes=" + std::to_string(mid) + "-" + std::to_string(mid + 1000000),
     mid, 1000001},
    {"bytes=-1000", size - 1000, 1000},
    {"bytes=" + std::to_string(mid + 7) + "-", mid + 7, size - mid - 7},
    {"bytes=" + std::to_string(size - 1) + "-" + std::to_string(size + 50),
     size - 1, 1},
  };
  http_connection conn{port};
  for (auto& r : ranges) {
    INFO("range: " << r.range);
    auto part = conn.request("GET", target, {}, {{"Range", r.range}});
    REQUIRE(part.status == 206);
    CHECK(part.body.size() == r.length);
    CHECK(part.body == stored.substr(r.first, r.length));
    CHECK(part.header("Content-Range")
          == "bytes " + std::to_string(r.first) + "-"
               + std::to_string(r.first + r.length - 1) + total);
    CHECK(part.header("Content-Length") == std::to_string(r.length));
  }
  auto head = conn.request("HEAD", target);
  CHECK(head.status == 200);
  CHECK(head.body.empty());
  CHECK(head.header("Content-Length") == std::to_string(size));
  CHECK(head.header("ETag") == res.header("ETag"));
  // The connection is still good after all that.
  auto again = conn.request("GET", target, {}, {{"Range", "bytes=10-19"}});
  CHECK(again.body == stored.substr(10, 10));

  // A slow but steady reader (64 KiB, a pause, ...) for longer than
  // server.idle_timeout gets the whole file.
  auto start = std::chrono::steady_clock::now();
  auto [slow_head, slow_body] = slow_get(port, target, 64 * 1024, 40ms, 60s);
  auto took = std::chrono::steady_clock::now() - start;
  INFO("head: " << slow_head);
  CHECK(slow_head.rfind("HTTP/1.1 200", 0) == 0);
  CHECK(slow_body.size() == size);
  CHECK(slow_body == stored);
  CHECK(took > 1500ms);
}

TEST_CASE("a file that changed after the lookup is never sent short",
          "[integration][read-path]") {
  // An answer can not be taken back once its head is out, so the file is
  // opened and checked against the actors' facts first. The actors keep
  // the facts of a master they looked at (a stat cache); here the master is
  // truncated behind the server's back after the first GET.
  for (std::string cache : {"64MiB", "0"}) {
    INFO("memory_cache_bytes=" << cache);
    server_process srv;
    srv.start({"--set", "storage.memory_cache_bytes=" + cache});
    const std::string rec = "/audio/user/74/phrase/1";
    auto up = upload_file(srv.port(), rec, read_file(audio_fixtures().wav),
                          "tone.wav", "audio/wav");
    REQUIRE(up.status == 201);
    require_ready(srv.port(), rec);
    auto ok = http_get(srv.port(), rec + "/wav");
    REQUIRE(ok.status == 200);
    auto master = find_blob(srv.data_dir(), "master.wav");
    write_file(master, "RIFF");
    auto res = http_get(srv.port(), rec + "/wav");
    if (cache == "0") {
      // From disk: the size no longer matches, the client retries.
      CHECK(res.status == 503);
      CHECK(res.header("Retry-After") == "1");
      expect_json_error(res);
    } else {
      // From memory: the bytes cached under exactly these facts.
      CHECK(res.status == 200);
      CHECK(res.body == ok.body);
    }
  }
}
