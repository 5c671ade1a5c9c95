#include "media/file_io.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "media/transcode.hpp"

namespace phonon::media {

namespace {

/// Bytes libav reads from or writes to a file per call.
constexpr int io_buffer_size = 64 * 1024;

[[noreturn]] void fail_errno(const char* call, const std::string& path) {
  auto code = errno == ENOSPC || errno == EDQUOT ? media_errc::no_space
                                                 : media_errc::internal;
  throw media_error(code,
                    std::string{call} + " " + path + ": "
                      + std::strerror(errno));
}

} // namespace

// -- file_reader --------------------------------------------------------------

file_reader::file_reader(const std::string& path) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0 && errno == ENOENT)
    throw media_error(media_errc::input_missing, "no such file " + path);
  if (fd_ < 0)
    fail_errno("open", path);
  struct stat st;
  if (::fstat(fd_, &st) != 0) {
    ::close(fd_);
    fail_errno("fstat", path);
  }
  size_ = static_cast<int64_t>(st.st_size);
  auto* buf = static_cast<unsigned char*>(av_malloc(io_buffer_size));
  auto* raw = buf == nullptr
                ? nullptr
                : avio_alloc_context(buf, io_buffer_size, 0, this,
                                     &file_reader::read, nullptr,
                                     &file_reader::seek);
  if (raw == nullptr) {
    av_free(buf);
    ::close(fd_);
    throw media_error(media_errc::internal, "avio_alloc_context failed");
  }
  ctx_.reset(raw);
}

file_reader::~file_reader() {
  ctx_.reset();
  ::close(fd_);
}

std::string file_reader::read_at(uint64_t offset, size_t n) const {
  auto size = static_cast<uint64_t>(size_);
  auto avail = offset < size ? size - offset : 0;
  std::string out(static_cast<size_t>(std::min<uint64_t>(n, avail)), '\0');
  size_t done = 0;
  while (done < out.size()) {
    auto got = ::pread(fd_, &out[done], out.size() - done,
                       static_cast<off_t>(offset + done));
    if (got < 0 && errno == EINTR)
      continue;
    if (got <= 0)
      break;
    done += static_cast<size_t>(got);
  }
  out.resize(done);
  return out;
}

int file_reader::read(void* opaque, uint8_t* buf, int size) {
  auto* self = static_cast<file_reader*>(opaque);
  if (size <= 0 || self->pos_ >= self->size_)
    return AVERROR_EOF;
  auto want = static_cast<size_t>(std::min<int64_t>(size, self->size_
                                                            - self->pos_));
  for (;;) {
    auto got = ::pread(self->fd_, buf, want, static_cast<off_t>(self->pos_));
    if (got < 0 && errno == EINTR)
      continue;
    if (got < 0)
      return AVERROR(errno);
    if (got == 0)
      return AVERROR_EOF;
    self->pos_ += got;
    return static_cast<int>(got);
  }
}

int64_t file_reader::seek(void* opaque, int64_t offset, int whence) {
  auto* self = static_cast<file_reader*>(opaque);
  if (whence & AVSEEK_SIZE)
    return self->size_;
  int64_t base = 0;
  switch (whence & ~AVSEEK_FORCE) {
    case SEEK_SET:
      base = 0;
      break;
    case SEEK_CUR:
      base = self->pos_;
      break;
    case SEEK_END:
      base = self->size_;
      break;
    default:
      return AVERROR(EINVAL);
  }
  if (offset > self->size_ || offset < -self->size_)
    return AVERROR(EINVAL);
  auto target = base + offset;
  // Past the end is refused, as memory_reader does.
  if (target < 0 || target > self->size_)
    return AVERROR(EINVAL);
  self->pos_ = target;
  return target;
}

// -- output_file --------------------------------------------------------------

output_file::output_file(std::string path) : path_(std::move(path)) {
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
               0644);
  if (fd_ < 0)
    fail_errno("open", path_);
}

output_file::~output_file() {
  if (fd_ >= 0)
    ::close(fd_);
  if (!keep_)
    ::unlink(path_.c_str());
}

void output_file::write(const void* data, size_t n) {
  auto* p = static_cast<const char*>(data);
  while (n > 0) {
    auto got = ::write(fd_, p, n);
    if (got < 0 && errno == EINTR)
      continue;
    if (got < 0)
      fail_errno("write", path_);
    p += got;
    n -= static_cast<size_t>(got);
  }
}

void output_file::write_at(const void* data, size_t n, uint64_t offset) {
  auto* p = static_cast<const char*>(data);
  while (n > 0) {
    auto got = ::pwrite(fd_, p, n, static_cast<off_t>(offset));
    if (got < 0 && errno == EINTR)
      continue;
    if (got < 0)
      fail_errno("pwrite", path_);
    p += got;
    n -= static_cast<size_t>(got);
    offset += static_cast<uint64_t>(got);
  }
}

void output_file::sync() {
  int rc;
  do {
    rc = ::fsync(fd_);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0)
    fail_errno("fsync", path_);
}

void output_file::keep() {
  auto fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0)
    fail_errno("close", path_);
  keep_ = true;
}

} // namespace phonon::media
