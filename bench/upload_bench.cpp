// Measures what a client sees: upload -> ready latency over one keep-alive
// connection (POST, then metadata polls until "ready"), the first GET of a
// derived format (one conversion each), and GET throughput of a stored
// file. Loopback only; every loop is bounded.
//
//   phonon_bench PORT FILE [COUNT] [FIRST_PHRASE] [FIRST_GETS] [FORMAT]
//     COUNT uploads -> ready (phrases FIRST_PHRASE...), then the first GET
//     of FORMAT (default mp3) of FIRST_GETS (default 0) of them, then 2000
//     GETs of the first stored original.
//   phonon_bench load PORT FILE CONNS SECONDS FIRST_PHRASE
//     CONNS keep-alive clients, each uploading FILE under a new phrase id
//     and polling (1 ms apart) until it is ready, for SECONDS: prints how
//     many became ready per second (sustained conversions under load).

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <atomic>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = boost::asio::ip::tcp;
using clock_type = std::chrono::steady_clock;

namespace {

struct client {
  boost::asio::io_context ioc;
  beast::tcp_stream stream{ioc};
  beast::flat_buffer buf;

  explicit client(unsigned short port) {
    stream.connect(tcp::endpoint{boost::asio::ip::make_address("127.0.0.1"),
                                 port});
  }

  http::response<http::string_body> send(http::verb verb,
                                         const std::string& target,
                                         std::string body = {},
                                         std::string type = {}) {
    http::request<http::string_body> req{verb, target, 11};
    req.set(http::field::host, "127.0.0.1");
    if (!type.empty())
      req.set(http::field::content_type, type);
    req.body() = std::move(body);
    req.prepare_payload();
    http::write(stream, req);
    http::response<http::string_body> res;
    http::read(stream, buf, res);
    return res;
  }
};

double ms_since(clock_type::time_point t) {
  return std::chrono::duration<double, std::milli>(clock_type::now() - t)
    .count();
}

std::string read_all(const char* path) {
  std::ifstream in{path, std::ios::binary};
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

bool is_ready(const http::response<http::string_body>& meta) {
  return meta.body().find("\"status\":\"ready\"") != std::string::npos;
}

// CONNS clients upload and wait for ready until the deadline; a recording
// counts when it is ready before the deadline.
int load(int argc, char** argv) {
  if (argc < 7) {
    std::cerr << "usage: phonon_bench load PORT FILE CONNS SECONDS FIRST\n";
    return 2;
  }
  auto port = static_cast<unsigned short>(std::stoi(argv[2]));
  auto audio = read_all(argv[3]);
  int conns = std::stoi(argv[4]);
  double seconds = std::stod(argv[5]);
  int first = std::stoi(argv[6]);
  std::atomic<int> ready{0}, failed{0}, refused{0};
  auto t0 = clock_type::now();
  auto deadline = t0 + std::chrono::duration_cast<clock_type::duration>(
                         std::chrono::duration<double>(seconds));
  std::vector<std::thread> threads;
  for (int c = 0; c < conns; ++c)
    threads.emplace_back([&, c] {
      try {
        client cl{port};
        // Each connection is its own user (1 + c), as many apps' users
        // are: one user's uploads in flight are bounded
        // (limits.per_user_inflight). Phrase ids: FIRST + c * 100000 + i,
        // i < 100000 (bounded).
        for (int i = 0; i < 100000 && clock_type::now() < deadline; ++i) {
          auto target = "/audio/user/" + std::to_string(1 + c) + "/phrase/"
                        + std::to_string(first + c * 100000 + i);
          auto res = cl.send(http::verb::post, target, audio,
                             "application/octet-stream");
          if (res.result_int() == 503 || res.result_int() == 429) {
            ++refused;
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
            continue;
          }
          if (res.result_int() != 201) {
            ++failed;
            continue;
          }
          while (clock_type::now() < deadline) {
            if (is_ready(cl.send(http::verb::get, target))) {
              ++ready;
              break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
          }
        }
      } catch (const std::exception& e) {
        std::cerr << "load client: " << e.what() << '\n';
        ++failed;
      }
    });
  for (auto& t : threads)
    t.join();
  double secs = ms_since(t0) / 1000;
  std::printf("load: conns=%d seconds=%.2f ready=%d refused=%d failed=%d "
              "rate=%.1f/s\n",
              conns, secs, ready.load(), refused.load(), failed.load(),
              ready / seconds);
  return failed > 0 ? 1 : 0;
}

} // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::string{argv[1]} == "load")
    return load(argc, argv);
  if (argc < 3) {
    std::cerr << "usage: phonon_bench PORT FILE [COUNT] [FIRST_PHRASE]\n";
    return 2;
  }
  auto port = static_cast<unsigned short>(std::stoi(argv[1]));
  auto audio = read_all(argv[2]);
  int count = argc > 3 ? std::stoi(argv[3]) : 100;
  int first = argc > 4 ? std::stoi(argv[4]) : 1;
  int first_gets = std::min(count, argc > 5 ? std::stoi(argv[5]) : 0);
  std::string format = argc > 6 ? argv[6] : "mp3";
  client c{port};
  std::vector<double> latencies;
  int polls = 0;
  for (int i = 0; i < count; ++i) {
    auto target = "/audio/user/1/phrase/" + std::to_string(first + i);
    auto t0 = clock_type::now();
    auto res = c.send(http::verb::post, target, audio,
                      "application/octet-stream");
    if (res.result_int() != 201) {
      std::cerr << "upload failed: " << res.result_int() << ' ' << res.body();
      return 1;
    }
    for (int p = 0; p < 100000; ++p) {
      ++polls;
      auto meta = c.send(http::verb::get, target);
      if (is_ready(meta))
        break;
    }
    latencies.push_back(ms_since(t0));
  }
  std::sort(latencies.begin(), latencies.end());
  double sum = 0;
  for (auto x : latencies)
    sum += x;
  std::printf("upload->ready: n=%d mean=%.2fms p50=%.2fms p95=%.2fms "
              "polls=%d\n",
              count, sum / count, latencies[latencies.size() / 2],
              latencies[latencies.size() * 95 / 100], polls);
  // The first GET of a derived format: one conversion of the master each.
  if (first_gets > 0) {
    std::vector<double> firsts;
    size_t bytes = 0;
    for (int i = 0; i < first_gets; ++i) {
      auto target = "/audio/user/1/phrase/" + std::to_string(first + i) + "/"
                    + format;
      auto t = clock_type::now();
      auto res = c.send(http::verb::get, target);
      firsts.push_back(ms_since(t));
      if (res.result_int() != 200) {
        std::cerr << "GET " << target << ": " << res.result_int() << '\n';
        return 1;
      }
      bytes = res.body().size();
    }
    std::sort(firsts.begin(), firsts.end());
    double fsum = 0;
    for (auto x : firsts)
      fsum += x;
    std::printf("first GET %s: n=%d mean=%.2fms p50=%.2fms p95=%.2fms "
                "bytes=%zu\n",
                format.c_str(), first_gets, fsum / first_gets,
                firsts[firsts.size() / 2], firsts[firsts.size() * 95 / 100],
                bytes);
  }
  // GET throughput of one stored original over the same connection.
  auto target = "/audio/user/1/phrase/" + std::to_string(first) + "/m4a";
  int gets = 2000;
  auto t0 = clock_type::now();
  for (int i = 0; i < gets; ++i)
    if (c.send(http::verb::get, target).result_int() != 200)
      return 1;
  std::printf("GET stored m4a (%zu bytes), one connection: %.0f req/s\n",
              audio.size(), gets / (ms_since(t0) / 1000));
  return 0;
}
