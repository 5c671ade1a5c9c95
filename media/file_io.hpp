#pragma once

#include <cstdint>
#include <string>

#include "media/av_ptr.hpp"

namespace phonon::media {

/// Serves a file to libavformat through a seekable, read-only AVIOContext
/// with a fixed buffer (io_buffer_size), so a demuxer reads it piece by
/// piece instead of all at once. Like memory_reader, a seek past the end is
/// refused: a demuxer that wants data beyond it (mov sample offsets of a
/// truncated file) sees an error. Not copyable: the context's callbacks
/// point at `this`. Any thread may use its own instance.
class file_reader {
public:
  /// Opens `path`; media_error{internal} when it cannot be opened.
  explicit file_reader(const std::string& path);

  ~file_reader();

  file_reader(const file_reader&) = delete;
  file_reader& operator=(const file_reader&) = delete;

  /// The context to put into AVFormatContext::pb.
  AVIOContext* context() const noexcept {
    return ctx_.get();
  }

  /// The file's size when it was opened.
  int64_t size() const noexcept {
    return size_;
  }

  /// Reads up to `n` bytes from the start of the file (content detection),
  /// without moving the context's position.
  std::string head(size_t n) const {
    return read_at(0, n);
  }

  /// Reads up to `n` bytes at `offset` without moving the context's
  /// position; fewer at the end of the file.
  std::string read_at(uint64_t offset, size_t n) const;

private:
  static int read(void* opaque, uint8_t* buf, int size);

  static int64_t seek(void* opaque, int64_t offset, int whence);

  int fd_ = -1;
  int64_t size_ = 0;
  int64_t pos_ = 0;
  avio_ptr ctx_;
};

/// A file that is written by this process and removed again unless
/// keep() was called: the one cleanup path of a conversion's output when
/// anything fails half way.
class output_file {
public:
  /// Creates (or truncates) `path` for writing; media_error{internal}
  /// when it cannot.
  explicit output_file(std::string path);

  /// Closes the file and, unless kept, removes it.
  ~output_file();

  output_file(const output_file&) = delete;
  output_file& operator=(const output_file&) = delete;

  /// The open descriptor (O_WRONLY).
  int fd() const noexcept {
    return fd_;
  }

  const std::string& path() const noexcept {
    return path_;
  }

  /// Writes all of `n` bytes at the current position.
  void write(const void* data, size_t n);

  /// Writes all of `n` bytes at `offset`, leaving the position alone.
  void write_at(const void* data, size_t n, uint64_t offset);

  /// Makes what was written durable (fsync); media_error{no_space} on
  /// ENOSPC/EDQUOT, media_error{internal} on any other failure. The file
  /// stays open.
  void sync();

  /// Closes the file (reporting a failed close) and keeps it.
  void keep();

private:
  std::string path_;
  int fd_ = -1;
  bool keep_ = false;
};

} // namespace phonon::media
