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
  auto node_path = node.output.substr(0, node.output.find('\n'));
  auto data = dir_ / "data";
  fs::create_directories(data);
  // --openssl-legacy-provider: s3rver makes ListObjectsV2 continuation
  // tokens with DES, which OpenSSL 3 keeps in its legacy provider; without
  // it every truncated listing answers 500 InternalError.
  child_.spawn({node_path, "--openssl-legacy-provider",
                (source_dir() / "scripts" / "s3rver.js").string(),
                "-d", data.string(), "-a", "127.0.0.1", "-p", "0",
                "--silent", "--no-vhost-buckets", "--configure-bucket",
                s3rver_bucket});
  const std::string marker = "S3rver listening on 127.0.0.1:";
  child_.await_log(
    [&](const std::string& log) {
      auto at = log.find(marker);
      return at != std::string::npos
             && log.find('\n', at) != std::string::npos;
    },
    "log 'S3rver listening'", std::chrono::seconds{30}, 20);
  auto log = child_.log();
  port_ = static_cast<uint16_t>(
    std::stoi(log.substr(log.find(marker) + marker.size())));
}

} // namespace phonon::integration
