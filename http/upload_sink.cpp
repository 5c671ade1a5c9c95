#include "http/upload_sink.hpp"

#include <cerrno>
#include <fcntl.h>
#include <unistd.h>

namespace phonon::http {

upload_sink::upload_sink(std::string path, uint64_t max_bytes,
                         std::optional<std::string> boundary)
  : path_(std::move(path)), max_bytes_(max_bytes) {
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
  if (fd_ < 0)
    error_ = errno == ENOSPC || errno == EDQUOT ? error::no_space
                                               : error::io;
  if (boundary)
    multipart_.emplace(std::move(*boundary), "audio_file",
                       [this](const char* data, size_t size) {
                         append(data, size);
                       });
}

upload_sink::~upload_sink() {
  if (fd_ >= 0)
    ::close(fd_);
  if (!released_)
    ::unlink(path_.c_str());
}

bool upload_sink::append(const char* data, size_t size) {
  if (error_ != error::none)
    return false;
  if (size_ + size > max_bytes_) {
    error_ = error::too_large;
    return false;
  }
  size_ += size;
  // Blocking writes on the io thread: they only reach the page cache (the
  // fsync happens later in the storage actor), so they are short.
  while (size > 0) {
    auto n = ::write(fd_, data, size);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      error_ = errno == ENOSPC || errno == EDQUOT ? error::no_space
                                                 : error::io;
      return false;
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

bool upload_sink::write(const char* data, size_t size) {
  if (error_ != error::none)
    return false;
  if (!multipart_)
    return append(data, size);
  if (!multipart_->feed(data, size) && error_ == error::none)
    error_ = multipart_->last_error()
                 == multipart_parser::error::duplicate_part
               ? error::duplicate_part
               : error::malformed;
  return error_ == error::none;
}

bool upload_sink::finish() {
  if (error_ == error::none && multipart_ && !multipart_->finish()) {
    switch (multipart_->last_error()) {
      case multipart_parser::error::missing_part:
        error_ = error::missing_part;
        break;
      case multipart_parser::error::duplicate_part:
        error_ = error::duplicate_part;
        break;
      default:
        error_ = error::malformed;
    }
  }
  if (error_ == error::none && size_ == 0)
    error_ = error::empty;
  if (fd_ >= 0) {
    if (::close(fd_) != 0 && error_ == error::none)
      error_ = error::io;
    fd_ = -1;
  }
  return error_ == error::none;
}

std::string upload_sink::message() const {
  switch (error_) {
    case error::none:
      return "ok";
    case error::too_large:
      return "upload is larger than the allowed maximum of "
             + std::to_string(max_bytes_) + " bytes";
    case error::malformed:
      return "malformed multipart/form-data body";
    case error::missing_part:
      return "the multipart body has no 'audio_file' part";
    case error::duplicate_part:
      return "the multipart body has more than one 'audio_file' part";
    case error::empty:
      return "the uploaded audio file is empty";
    case error::io:
      return "the upload could not be stored";
    case error::no_space:
      return "the server's storage is full; try again later";
  }
  return "bad upload";
}

const std::string& upload_sink::filename() const noexcept {
  return multipart_ ? multipart_->filename() : no_name_;
}

} // namespace phonon::http
