// Measures what a client sees: upload -> ready latency over one keep-alive
// connection (POST, then metadata polls until "ready"), and GET throughput
// of a stored file. Loopback only; every loop is bounded.
//
//   phonon_bench PORT FILE [COUNT] [FIRST_PHRASE]

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
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

} // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: phonon_bench PORT FILE [COUNT] [FIRST_PHRASE]\n";
    return 2;
  }
  auto port = static_cast<unsigned short>(std::stoi(argv[1]));
  std::ifstream in{argv[2], std::ios::binary};
  std::ostringstream os;
  os << in.rdbuf();
  auto audio = os.str();
  int count = argc > 3 ? std::stoi(argv[3]) : 100;
  int first = argc > 4 ? std::stoi(argv[4]) : 1;
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
      if (meta.body().find("\"status\":\"ready\"") != std::string::npos)
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
