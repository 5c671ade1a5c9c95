// transcoder.isolate: the serve node's transcoders run as child `phonon
// worker` processes, so a crashing decoder cannot take the HTTP node down,
// and a child that dies is started again.

#include <catch2/catch.hpp>

#include <algorithm>
#include <csignal>
#include <string>
#include <thread>

#include "tests/integration/support.hpp"

using namespace phonon::integration;
using namespace std::chrono_literals;

namespace {

/// Value of `phonon_transcoders{kind="remote"}` in /metrics (-1 if absent).
int remote_transcoders(uint16_t port) {
  auto text = http_get(port, "/metrics").body;
  const std::string key = "phonon_transcoders{kind=\"remote\"} ";
  auto pos = text.find(key);
  if (pos == std::string::npos)
    return -1;
  return std::stoi(text.substr(pos + key.size()));
}

bool wait_remote(uint16_t port, int n) {
  for (int i = 0; i < 150; ++i) {
    if (remote_transcoders(port) == n)
      return true;
    std::this_thread::sleep_for(100ms);
  }
  return false;
}

/// PIDs of the serve node's children (`phonon worker`), via /proc.
std::vector<int> child_workers(int parent) {
  auto res = run("pgrep -P " + std::to_string(parent) + " -f 'phonon worker'");
  std::vector<int> pids;
  size_t pos = 0;
  while (pos < res.output.size()) {
    auto nl = res.output.find('\n', pos);
    auto line = res.output.substr(pos, nl - pos);
    if (!line.empty())
      pids.push_back(std::stoi(line));
    if (nl == std::string::npos)
      break;
    pos = nl + 1;
  }
  return pids;
}

int serve_pid(uint16_t port) {
  auto res = run("ss -Hltnp 'sport = :" + std::to_string(port)
                 + "' | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2");
  return res.output.empty() ? -1 : std::stoi(res.output);
}

} // namespace

TEST_CASE("isolated transcoders run as child processes and are restarted",
          "[integration][isolate]") {
  server_process srv;
  srv.start({"--workers", "2", "--set", "transcoder.isolate=true"});
  auto port = srv.port();
  // Both children joined over loopback; the node has no local transcoder.
  REQUIRE(wait_remote(port, 2));
  CHECK(http_get(port, "/readyz").status == 200);
  auto pid = serve_pid(port);
  REQUIRE(pid > 0);
  auto children = child_workers(pid);
  REQUIRE(children.size() == 2);

  auto audio = read_file(audio_fixtures().wav);
  REQUIRE(upload_file(port, "/audio/user/1/phrase/1", audio, "a.wav",
                      "audio/wav")
            .status
          == 201);
  CHECK(wait_until_settled(port, "/audio/user/1/phrase/1")["status"]
        == "ready");

  // A child that dies (as a decoder crash would kill it) is replaced, and
  // the HTTP node never stopped serving.
  ::kill(children.front(), SIGKILL);
  CHECK(http_get(port, "/healthz").status == 200);
  std::vector<int> now;
  for (int i = 0; i < 150; ++i) {
    now = child_workers(pid);
    if (now.size() == 2
        && std::find(now.begin(), now.end(), children.front()) == now.end())
      break;
    std::this_thread::sleep_for(100ms);
  }
  CHECK(now.size() == 2);
  CHECK(std::find(now.begin(), now.end(), children.front()) == now.end());
  // The supervisor saw the death and the replacement registered.
  for (int i = 0; i < 150; ++i) {
    if (http_get(port, "/metrics").body.find(
          "phonon_transcoder_deaths_total{kind=\"remote\"} 1")
        != std::string::npos)
      break;
    std::this_thread::sleep_for(100ms);
  }
  CHECK(http_get(port, "/metrics").body.find(
          "phonon_transcoder_deaths_total{kind=\"remote\"} 1")
        != std::string::npos);
  REQUIRE(wait_remote(port, 2));
  REQUIRE(upload_file(port, "/audio/user/1/phrase/2", audio, "b.wav",
                      "audio/wav")
            .status
          == 201);
  CHECK(wait_until_settled(port, "/audio/user/1/phrase/2")["status"]
        == "ready");

  // Stopping the serve node stops its children too.
  srv.stop();
  std::this_thread::sleep_for(200ms);
  for (auto c : now)
    CHECK(::kill(c, 0) != 0);
}
