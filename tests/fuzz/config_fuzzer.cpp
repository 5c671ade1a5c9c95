// fuzz-sources: config/settings.cpp

// The config loader (config/settings.*): a YAML file, APP_* variables and
// command-line flags, all from the input. Whatever they hold, load_settings()
// either returns settings that validate() accepts or throws config_error;
// any other exception (YAML::Exception, std::out_of_range, ...) escaping it
// would end `phonon serve` with an unexplained abort, so it is a finding
// (libFuzzer reports the uncaught exception as a crash).
//
// Input layout: the YAML text as a FuzzedDataProvider random-length string
// (a backslash escapes, "\\" ends it), then up to 8 (name, value) pairs for
// the environment and up to 8 command-line words, each the same way.
//
// The file is an in-memory file (memfd) read through /proc/self/fd, so a
// run writes nothing to disk. Fuzzed words never choose which file is read:
// `--config` and APP_CONFIG always name the memfd.

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include <fuzzer/FuzzedDataProvider.h>

#include "config/settings.hpp"

namespace {

using phonon::config::config_error;

// Names the loader knows, so that the fuzzer reaches their parsers.
constexpr const char* env_names[] = {
  "APP_SERVER_PORT",         "APP_SERVER_MAX_UPLOAD_SIZE",
  "APP_SERVER_THREADS",      "APP_SERVER_MAX_HEADER_SIZE",
  "APP_DATABASE_DRIVER",     "APP_DATABASE_MYSQL_PORT",
  "APP_TRANSCODER_ISOLATE",  "APP_STORAGE_CACHE_MAX_BYTES",
  "APP_CLUSTER_JOIN",        "APP_AUTH_MODE",
  "APP_LOG_LEVEL",           "APP_SERVER_REQUEST_TIMEOUT",
};
constexpr const char* flags[] = {
  "--port", "--host", "--workers", "--join", "--log-level", "--set",
  "--data-dir",
};

int memfd() {
  static int fd = [] {
    int x = memfd_create("phonon-config-fuzz", 0);
    if (x < 0) {
      std::perror("memfd_create");
      abort();
    }
    return x;
  }();
  return fd;
}

void write_file(const std::string& text) {
  int fd = memfd();
  if (ftruncate(fd, 0) != 0
      || pwrite(fd, text.data(), text.size(), 0)
           != static_cast<ssize_t>(text.size())) {
    std::perror("memfd write");
    abort();
  }
}

bool starts_with(const std::string& text, const char* prefix) {
  return text.rfind(prefix, 0) == 0;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider fdp{data, size};
  auto yaml = fdp.ConsumeRandomLengthString(16384);
  write_file(yaml);
  auto path = "/proc/self/fd/" + std::to_string(memfd());

  std::map<std::string, std::string> env;
  auto env_count = fdp.ConsumeIntegralInRange<int>(0, 8);
  for (int i = 0; i < env_count && fdp.remaining_bytes() > 0; ++i) {
    auto pick = fdp.ConsumeIntegral<uint8_t>();
    auto value = fdp.ConsumeRandomLengthString(64);
    std::string name = pick < 2 * std::size(env_names)
                         ? env_names[pick % std::size(env_names)]
                         : "APP_" + fdp.ConsumeRandomLengthString(32);
    if (name == "APP_CONFIG")
      continue;
    env[name] = value;
  }

  std::vector<std::string> args;
  // Where the file comes from: --config, --config=, APP_CONFIG.
  auto how = fdp.ConsumeIntegralInRange<int>(0, 2);
  if (how == 0) {
    args = {"--config", path};
  } else if (how == 1) {
    args = {"--config=" + path};
  } else {
    env["APP_CONFIG"] = path;
  }
  auto arg_count = fdp.ConsumeIntegralInRange<int>(0, 8);
  for (int i = 0; i < arg_count && fdp.remaining_bytes() > 0; ++i) {
    auto pick = fdp.ConsumeIntegral<uint8_t>();
    std::string word = pick < 2 * std::size(flags)
                         ? flags[pick % std::size(flags)]
                         : "";
    if (pick & 1 || word.empty())
      word += (word.empty() ? "" : "=") + fdp.ConsumeRandomLengthString(64);
    // Never let the input choose a file to read (/dev/zero would hang).
    if (starts_with(word, "--config"))
      continue;
    args.push_back(word);
  }

  auto lookup = [&](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  };
  std::vector<std::string> rest;
  try {
    auto s = phonon::config::load_settings(args, lookup,
                                           (size & 1) ? &rest : nullptr);
    // What the loader returns must be valid.
    phonon::config::validate(s);
  } catch (const config_error& e) {
    // The one exception the loader may throw, and it must say why (a
    // NUL-led YAML key once gave an empty message: corpus/config/
    // regress-nul-key-empty-message).
    if (*e.what() == '\0')
      abort();
  }
  return 0;
}
