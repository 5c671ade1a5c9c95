#include "media/memory_io.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <limits>
#include <new>

#include "media/transcode.hpp"

namespace phonon::media {

namespace {

constexpr int io_buffer_size = 32 * 1024;

// Largest output we accept to build in memory (far above any recording).
constexpr int64_t max_output_size = int64_t{1} << 31;

// Resolves a seek request against a stream of `size` bytes at `pos`;
// returns the new position or a negative AVERROR.
int64_t resolve_seek(int64_t pos, int64_t size, int64_t offset, int whence,
                     int64_t limit) {
  if (whence & AVSEEK_SIZE)
    return size;
  int64_t base = 0;
  switch (whence & ~AVSEEK_FORCE) {
    case SEEK_SET:
      base = 0;
      break;
    case SEEK_CUR:
      base = pos;
      break;
    case SEEK_END:
      base = size;
      break;
    default:
      return AVERROR(EINVAL);
  }
  if (offset > limit || offset < -limit)
    return AVERROR(EINVAL);
  auto target = base + offset;
  if (target < 0 || target > limit)
    return AVERROR(EINVAL);
  return target;
}

avio_ptr make_context(int write_flag, void* opaque,
                      int (*read)(void*, uint8_t*, int),
                      int (*write)(void*, uint8_t*, int),
                      int64_t (*seek)(void*, int64_t, int)) {
  auto* buf = static_cast<unsigned char*>(av_malloc(io_buffer_size));
  if (buf == nullptr)
    throw media_error(media_errc::internal, "av_malloc: out of memory");
  auto* raw = avio_alloc_context(buf, io_buffer_size, write_flag, opaque,
                                 read, write, seek);
  if (raw == nullptr) {
    av_free(buf);
    throw media_error(media_errc::internal, "avio_alloc_context failed");
  }
  return avio_ptr{raw};
}

} // namespace

// -- memory_reader ------------------------------------------------------------

memory_reader::memory_reader(std::string_view bytes) : view_(bytes) {
  init();
}

memory_reader::memory_reader(const std::string* live) : live_(live) {
  init();
}

void memory_reader::init() {
  ctx_ = make_context(0, this, &memory_reader::read, nullptr,
                      &memory_reader::seek);
}

std::string_view memory_reader::bytes() const noexcept {
  return live_ != nullptr ? std::string_view{*live_} : view_;
}

int memory_reader::read(void* opaque, uint8_t* buf, int size) {
  auto* self = static_cast<memory_reader*>(opaque);
  auto data = self->bytes();
  auto total = static_cast<int64_t>(data.size());
  if (size <= 0 || self->pos_ >= total)
    return AVERROR_EOF;
  auto n = static_cast<int>(std::min<int64_t>(size, total - self->pos_));
  std::memcpy(buf, data.data() + self->pos_, static_cast<size_t>(n));
  self->pos_ += n;
  return n;
}

int64_t memory_reader::seek(void* opaque, int64_t offset, int whence) {
  auto* self = static_cast<memory_reader*>(opaque);
  auto size = static_cast<int64_t>(self->bytes().size());
  // Seeking past the end of an input is refused: a demuxer that wants data
  // beyond it (mov sample offsets of a truncated file) must see an error.
  auto target = resolve_seek(self->pos_, size, offset, whence, size);
  if (target >= 0 && !(whence & AVSEEK_SIZE))
    self->pos_ = target;
  return target;
}

// -- memory_writer ------------------------------------------------------------

memory_writer::memory_writer() {
  ctx_ = make_context(1, this, &memory_writer::read, &memory_writer::write,
                      &memory_writer::seek);
}

void memory_writer::allow_reopen(AVFormatContext* oc) noexcept {
  oc->opaque = this;
  oc->io_open = &memory_writer::open_for_read;
  oc->io_close2 = &memory_writer::close_reader;
}

std::string memory_writer::take() {
  avio_flush(ctx_.get());
  pos_ = 0;
  return std::move(data_);
}

int memory_writer::read(void* opaque, uint8_t* buf, int size) {
  auto* self = static_cast<memory_writer*>(opaque);
  auto total = static_cast<int64_t>(self->data_.size());
  if (size <= 0 || self->pos_ >= total)
    return AVERROR_EOF;
  auto n = static_cast<int>(std::min<int64_t>(size, total - self->pos_));
  std::memcpy(buf, self->data_.data() + self->pos_, static_cast<size_t>(n));
  self->pos_ += n;
  return n;
}

int memory_writer::write(void* opaque, uint8_t* buf, int size) {
  auto* self = static_cast<memory_writer*>(opaque);
  if (size < 0)
    return AVERROR(EINVAL);
  auto end = self->pos_ + size;
  if (end > max_output_size)
    return AVERROR(EFBIG);
  try {
    if (end > static_cast<int64_t>(self->data_.size()))
      self->data_.resize(static_cast<size_t>(end));
  } catch (const std::bad_alloc&) {
    return AVERROR(ENOMEM);
  }
  std::memcpy(self->data_.data() + self->pos_, buf, static_cast<size_t>(size));
  self->pos_ = end;
  return size;
}

int64_t memory_writer::seek(void* opaque, int64_t offset, int whence) {
  auto* self = static_cast<memory_writer*>(opaque);
  auto size = static_cast<int64_t>(self->data_.size());
  // A writer may seek past the end (the gap is zero-filled on write).
  auto target = resolve_seek(self->pos_, size, offset, whence,
                             max_output_size);
  if (target >= 0 && !(whence & AVSEEK_SIZE))
    self->pos_ = target;
  return target;
}

int memory_writer::open_for_read(AVFormatContext* s, AVIOContext** pb,
                                 const char*, int flags, AVDictionary**) {
  if ((flags & AVIO_FLAG_WRITE) || s->opaque == nullptr)
    return AVERROR(EPERM);
  auto* self = static_cast<memory_writer*>(s->opaque);
  try {
    // The muxer flushed its pb before re-opening, so data_ is current; the
    // reader indexes data_ on every call because the muxer keeps writing.
    auto* reader = new memory_reader(&self->data_);
    *pb = reader->context();
    return 0;
  } catch (const std::bad_alloc&) {
    return AVERROR(ENOMEM);
  } catch (const media_error&) {
    return AVERROR(ENOMEM);
  }
}

int memory_writer::close_reader(AVFormatContext*, AVIOContext* pb) {
  if (pb != nullptr)
    delete static_cast<memory_reader*>(pb->opaque);
  return 0;
}

} // namespace phonon::media
