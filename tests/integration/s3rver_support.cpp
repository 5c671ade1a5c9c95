#include "tests/integration/s3rver_support.hpp"

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>

namespace phonon::integration {

namespace {

namespace fs = std::filesystem;

fs::path source_dir() {
  const char* root = std::getenv("PHONON_SOURCE_DIR");
  if (root == nullptr || *root == '\0')
    throw std::runtime_error("set PHONON_SOURCE_DIR to the repository root");
  return root;
}

} // namespace

s3rver::s3rver()
  : dir_("phonon-s3rver"),
    child_("s3rver", dir_.path(), dir_ / "s3rver.log",
           std::chrono::milliseconds{3000}, 40) {
  auto npm = run("timeout 700 "
                 + shell_quote((source_dir() / "scripts" / "npm-ci.sh")
                                 .string()));
  if (!npm.ok())
    throw std::runtime_error("scripts/npm-ci.sh failed: " + npm.output);
  auto node = run("command -v node");
  if (!node.ok())
    throw std::runtime_error("node is missing (scripts/setup.sh)");
  node_ = node.output.substr(0, node.output.find('\n'));
  fs::create_directories(dir_ / "data");
  launch();
}

void s3rver::start_again() {
  if (child_.running())
    throw std::runtime_error("s3rver::start_again: still running");
  launch();
}

void s3rver::launch() {
  // --openssl-legacy-provider: s3rver makes ListObjectsV2 continuation
  // tokens with DES, which OpenSSL 3 keeps in its legacy provider; without
  // it every truncated listing answers 500 InternalError.
  child_.spawn({node_, "--openssl-legacy-provider",
                (source_dir() / "scripts" / "s3rver.js").string(),
                "-d", (dir_ / "data").string(), "-a", "127.0.0.1", "-p",
                std::to_string(port_), "--silent", "--no-vhost-buckets",
                "--configure-bucket", s3rver_bucket});
  const std::string marker = "S3rver listening on 127.0.0.1:";
  auto count = [&](const std::string& log) {
    size_t n = 0;
    for (auto at = log.find(marker); at != std::string::npos;
         at = log.find(marker, at + 1))
      if (log.find('\n', at) != std::string::npos)
        ++n;
    return n;
  };
  auto before = count(child_.log());
  child_.await_log([&](const std::string& log) { return count(log) > before; },
                   "log 'S3rver listening'", std::chrono::seconds{30}, 20);
  auto log = child_.log();
  port_ = static_cast<uint16_t>(
    std::stoi(log.substr(log.rfind(marker) + marker.size())));
}

} // namespace phonon::integration
