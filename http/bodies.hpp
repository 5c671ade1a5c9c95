#pragma once

// Two Beast body types: one that spools an upload through an upload_sink
// while it is read, and one that sends a byte window of a file.

#include <algorithm>
#include <cstdint>
#include <memory>
#include <utility>

#include <boost/asio/buffer.hpp>
#include <boost/beast/core/buffers_range.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/file_posix.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/optional.hpp>

#include "http/upload_sink.hpp"

namespace phonon::http {

/// Request body that hands every received piece to an upload_sink, so an
/// upload is never held in memory. A sink error stops the read.
struct spool_body {
  using value_type = std::shared_ptr<upload_sink>;

  class reader {
  public:
    template <bool IsRequest, class Fields>
    reader(boost::beast::http::header<IsRequest, Fields>&, value_type& sink)
      : sink_(sink) {
      // nop
    }

    void init(const boost::optional<std::uint64_t>&,
              boost::beast::error_code& ec) {
      ec = {};
    }

    template <class ConstBufferSequence>
    std::size_t put(const ConstBufferSequence& buffers,
                    boost::beast::error_code& ec) {
      std::size_t n = 0;
      for (auto b : boost::beast::buffers_range_ref(buffers)) {
        if (!sink_->write(static_cast<const char*>(b.data()), b.size())) {
          // The session reads the reason from the sink.
          ec = boost::beast::http::error::body_limit;
          return n;
        }
        n += b.size();
      }
      ec = {};
      return n;
    }

    void finish(boost::beast::error_code& ec) {
      ec = {};
    }

  private:
    value_type& sink_;
  };
};

/// Response body that sends `length` bytes of an open file from `offset`.
struct file_window_body {
  struct value_type {
    boost::beast::file_posix file;
    std::uint64_t offset = 0;
    std::uint64_t length = 0;
  };

  static std::uint64_t size(const value_type& v) {
    return v.length;
  }

  class writer {
  public:
    using const_buffers_type = boost::asio::const_buffer;

    template <bool IsRequest, class Fields>
    writer(const boost::beast::http::header<IsRequest, Fields>&,
           value_type& body)
      : body_(body) {
      // nop
    }

    void init(boost::beast::error_code& ec) {
      remain_ = body_.length;
      body_.file.seek(body_.offset, ec);
    }

    boost::optional<std::pair<const_buffers_type, bool>>
    get(boost::beast::error_code& ec) {
      auto amount = static_cast<std::size_t>(
        std::min<std::uint64_t>(remain_, sizeof(buf_)));
      if (amount == 0) {
        ec = {};
        return boost::none;
      }
      auto n = body_.file.read(buf_, amount, ec);
      if (ec)
        return boost::none;
      if (n == 0) {
        ec = boost::beast::http::error::short_read;
        return boost::none;
      }
      remain_ -= n;
      return {{const_buffers_type{buf_, n}, remain_ > 0}};
    }

  private:
    value_type& body_;
    std::uint64_t remain_ = 0;
    char buf_[64 * 1024];
  };
};

} // namespace phonon::http
