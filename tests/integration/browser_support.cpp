#include "tests/integration/browser_support.hpp"

#include <catch2/catch.hpp>

#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <stdexcept>
#include <thread>
#include <vector>

namespace phonon::integration {

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

fs::path source_dir() {
  const char* root = std::getenv("PHONON_SOURCE_DIR");
  if (root == nullptr || *root == '\0')
    throw std::runtime_error("set PHONON_SOURCE_DIR to the repository root");
  return root;
}

} // namespace

/// Installs the pinned npm packages unless they are there already
/// (scripts/npm-ci.sh is a no-op then).
void require_node_modules() {
  auto out = run("timeout 700 " + shell_quote((source_dir() / "scripts"
                                               / "npm-ci.sh")
                                                .string()));
  INFO("scripts/npm-ci.sh: " << out.output);
  REQUIRE(out.ok());
}

/// Gives the processes whose command line names `profile` (Chromium and
/// its helpers) 2 s to end by themselves (a helper may still be on its way
/// out when browser.close() returns, more so on a loaded machine), then
/// SIGKILLs those left and waits, at most 3 s, until none is. Returns how
/// many had to be killed.
int kill_chromium_of(const fs::path& profile) {
  auto needle = profile.string();
  auto scan = [&] {
    std::vector<pid_t> found;
    DIR* proc = ::opendir("/proc");
    if (proc == nullptr)
      return found;
    while (dirent* e = ::readdir(proc)) {
      char* end = nullptr;
      long pid = std::strtol(e->d_name, &end, 10);
      if (*end != '\0' || pid <= 0 || pid == ::getpid())
        continue;
      std::string cmdline;
      try {
        cmdline = read_file(fs::path{"/proc"} / e->d_name / "cmdline");
      } catch (const std::exception&) {
        continue; // gone meanwhile
      }
      if (cmdline.find(needle) != std::string::npos)
        found.push_back(static_cast<pid_t>(pid));
    }
    ::closedir(proc);
    return found;
  };
  auto first = scan();
  for (int i = 0; i < 40 && !first.empty(); ++i) {
    std::this_thread::sleep_for(50ms);
    first = scan();
  }
  for (auto pid : first)
    ::kill(pid, SIGKILL);
  for (int i = 0; i < 60 && !scan().empty(); ++i)
    std::this_thread::sleep_for(50ms);
  return static_cast<int>(first.size());
}


/// Runs tests/browser/`script` with `config` (plus chromium, profile,
/// result_path and timeout_ms filled in here) under `timeout`, then kills
/// whatever Chromium of that run is left.
browser_run run_browser(const std::string& script, nlohmann::json config,
                        const temp_dir& dir, std::chrono::seconds limit) {
  REQUIRE(::access(chromium_path, X_OK) == 0);
  require_node_modules();
  static int runs = 0;
  auto name = script.substr(0, script.find('.')) + std::to_string(++runs);
  auto profile = dir / (name + "-profile");
  auto result_path = dir / (name + "-result.json");
  auto config_path = dir / (name + "-config.json");
  fs::create_directories(profile);
  config["chromium"] = chromium_path;
  config["profile"] = profile.string();
  config["result_path"] = result_path.string();
  // The script's own deadline comes first, so that it closes the browser
  // and says what it waited for.
  config["timeout_ms"] = (limit.count() - 10) * 1000;
  write_file(config_path, config.dump(1));
  browser_run out;
  auto cmd = "timeout -k 5 " + std::to_string(limit.count()) + " node "
             + shell_quote((source_dir() / "tests" / "browser" / script)
                             .string())
             + " " + shell_quote(config_path.string());
  auto res = run(cmd);
  out.exit_code = res.exit_code;
  out.output = res.output;
  out.leftovers = kill_chromium_of(profile);
  if (fs::exists(result_path))
    out.result = nlohmann::json::parse(read_file(result_path), nullptr, false);
  else
    out.result = nlohmann::json::value_t::discarded;
  return out;
}

/// REQUIREs that the run ended cleanly with a result object.
void require_ran(const browser_run& run) {
  INFO("node exit " << run.exit_code << ", output:\n"
                    << run.output.substr(0, 6000));
  REQUIRE(run.exit_code == 0);
  REQUIRE(run.result.is_object());
  // puppeteer's close() took them all.
  CHECK(run.leftovers == 0);
}

} // namespace phonon::integration
