#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "http/multipart.hpp"

namespace phonon::http {

/// Receives an upload body piece by piece and spools the audio bytes to a
/// file: the whole body for a raw upload, only the `audio_file` part for
/// multipart/form-data. Counts as it goes, so an oversized upload is refused
/// as soon as the count passes the limit. The file is removed by the
/// destructor unless release() was called. Not thread-safe (one session).
class upload_sink {
public:
  enum class error {
    none,
    too_large,     ///< more than max_bytes of audio
    malformed,     ///< broken multipart framing
    missing_part,  ///< no `audio_file` part
    duplicate_part,
    empty,         ///< zero bytes of audio
    io,            ///< the spool file could not be written
    no_space,      ///< the disk (or quota) is full: 507, retry later
  };

  /// Opens `path` for writing; `boundary` is set for multipart bodies.
  upload_sink(std::string path, uint64_t max_bytes,
              std::optional<std::string> boundary);

  ~upload_sink();

  upload_sink(const upload_sink&) = delete;
  upload_sink& operator=(const upload_sink&) = delete;

  /// Takes the next piece of the body; false once an error is set.
  bool write(const char* data, size_t size);

  /// Call at the end of the body; false (with error()) when the upload is
  /// not usable. Closes the file.
  bool finish();

  error last_error() const noexcept {
    return error_;
  }

  /// Human-readable reason for last_error(), safe to show to clients.
  std::string message() const;

  /// The client's file name (multipart `filename`), else empty.
  const std::string& filename() const noexcept;

  /// Audio bytes written so far.
  uint64_t size() const noexcept {
    return size_;
  }

  const std::string& path() const noexcept {
    return path_;
  }

  /// Keeps the file: the caller now owns it.
  void release() noexcept {
    released_ = true;
  }

private:
  bool append(const char* data, size_t size);

  std::string path_;
  uint64_t max_bytes_;
  int fd_ = -1;
  uint64_t size_ = 0;
  error error_ = error::none;
  bool released_ = false;
  std::optional<multipart_parser> multipart_;
  std::string no_name_;
};

} // namespace phonon::http
