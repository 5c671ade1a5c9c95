#pragma once

// A fresh folder for one unit test, shared by the test files that need
// files on disk.

#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <system_error>

namespace phonon::testing {

/// A new folder under the system temp dir (mkdtemp), removed with its
/// contents at scope exit.
struct temp_dir {
  std::filesystem::path path;

  explicit temp_dir(const std::string& prefix = "phonon-test") {
    auto pattern = (std::filesystem::temp_directory_path()
                    / (prefix + "-XXXXXX"))
                     .string();
    if (mkdtemp(pattern.data()) == nullptr)
      throw std::runtime_error("mkdtemp failed for " + pattern);
    path = pattern;
  }

  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }

  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
};

} // namespace phonon::testing
