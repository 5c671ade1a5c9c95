#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "media/av_ptr.hpp"

namespace phonon::media {

/// Serves bytes held in memory to libavformat through a seekable, read-only
/// AVIOContext. Not copyable: the context's callbacks point at `this`.
/// Any thread may use its own instance.
class memory_reader {
public:
  /// Reads a fixed view; the bytes must outlive the reader.
  explicit memory_reader(std::string_view bytes);

  /// Reads `*live` as it is at each call, for a buffer a muxer is still
  /// rewriting (the mp4 faststart second pass).
  explicit memory_reader(const std::string* live);

  memory_reader(const memory_reader&) = delete;
  memory_reader& operator=(const memory_reader&) = delete;

  /// The context to put into AVFormatContext::pb.
  AVIOContext* context() const noexcept {
    return ctx_.get();
  }

private:
  std::string_view bytes() const noexcept;

  static int read(void* opaque, uint8_t* buf, int size);

  static int64_t seek(void* opaque, int64_t offset, int whence);

  void init();

  std::string_view view_;
  const std::string* live_ = nullptr;
  int64_t pos_ = 0;
  avio_ptr ctx_;
};

/// Collects a muxer's output in a growing std::string through a seekable
/// read/write AVIOContext, so muxers can rewrite headers (WAV sizes, MP3
/// Xing, WebM Duration, MP4 faststart). Not copyable.
class memory_writer {
public:
  memory_writer();

  memory_writer(const memory_writer&) = delete;
  memory_writer& operator=(const memory_writer&) = delete;

  /// The context to put into AVFormatContext::pb.
  AVIOContext* context() const noexcept {
    return ctx_.get();
  }

  /// Lets the muxer `oc` re-open its own output for reading through
  /// io_open/io_close2 (movenc's faststart pass does that). The writer
  /// must outlive `oc`.
  void allow_reopen(AVFormatContext* oc) noexcept;

  /// Flushes the context and moves the bytes out.
  std::string take();

private:
  static int read(void* opaque, uint8_t* buf, int size);

  static int write(void* opaque, uint8_t* buf, int size);

  static int64_t seek(void* opaque, int64_t offset, int whence);

  static int open_for_read(AVFormatContext* s, AVIOContext** pb,
                           const char* url, int flags,
                           AVDictionary** options);

  static int close_reader(AVFormatContext* s, AVIOContext* pb);

  std::string data_;
  int64_t pos_ = 0;
  avio_ptr ctx_;
};

} // namespace phonon::media
