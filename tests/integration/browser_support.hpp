// Headless Chromium (Debian's /usr/bin/chromium) driven by npm
// puppeteer-core from tests/browser/*.mjs, for the browser tests
// (auth_browser_test.cpp, console_test.cpp). Every run is bounded
// (`timeout` around node, a deadline inside the script) and every Chromium
// process of the run's profile is killed when it ends.

#pragma once

#include <chrono>
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "tests/integration/support.hpp"

namespace phonon::integration {

constexpr const char* chromium_path = "/usr/bin/chromium";

/// Installs the pinned npm packages unless they are there already
/// (scripts/npm-ci.sh is a no-op then).
void require_node_modules();

/// Gives the processes whose command line names `profile` (Chromium and
/// its helpers) 2 s to end by themselves, then SIGKILLs those left and
/// waits, at most 3 s, until none is. Returns how many had to be killed.
int kill_chromium_of(const std::filesystem::path& profile);

/// What a browser script did: its exit code, its stderr and stdout, and
/// the result JSON it wrote (discarded when none).
struct browser_run {
  int exit_code = -1;
  std::string output;
  nlohmann::json result;
  /// Chromium processes still alive after the script ended (killed).
  int leftovers = 0;
};

/// Runs tests/browser/`script` with `config` (plus chromium, profile,
/// result_path and timeout_ms filled in here) under `timeout`, then kills
/// whatever Chromium of that run is left.
browser_run run_browser(const std::string& script, nlohmann::json config,
                        const temp_dir& dir, std::chrono::seconds limit);

/// REQUIREs that the run ended cleanly with a result object.
void require_ran(const browser_run& run);

} // namespace phonon::integration
