#pragma once

// Two Beast body types: one that spools an upload through an upload_sink
// while it is read, and one that sends a byte window of a shared buffer.
// (Stored files that are not cached go out with sendfile(2), server.cpp.)

#include <algorithm>
#include <cstdint>
#include <memory>
#include <utility>

#include <boost/asio/buffer.hpp>
#include <boost/beast/core/buffers_range.hpp>
#include <boost/beast/core/error.hpp>
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

/// Response body that sends a window of a shared immutable buffer (a
/// cached file, response_cache.hpp) without copying it: the answer holds a
/// reference, so the bytes outlive an eviction until they are written.
struct shared_window_body {
  struct value_type {
    /// Keeps `data` alive.
    std::shared_ptr<const void> owner;
    const char* data = nullptr;
    std::size_t length = 0;
  };

  static std::uint64_t size(const value_type& v) {
    return v.length;
  }

  class writer {
  public:
    using const_buffers_type = boost::asio::const_buffer;

    template <bool IsRequest, class Fields>
    writer(const boost::beast::http::header<IsRequest, Fields>&,
           const value_type& body)
      : body_(body) {
      // nop
    }

    void init(boost::beast::error_code& ec) {
      ec = {};
    }

    boost::optional<std::pair<const_buffers_type, bool>>
    get(boost::beast::error_code& ec) {
      ec = {};
      if (done_ || body_.length == 0)
        return boost::none;
      done_ = true;
      return {{const_buffers_type{body_.data, body_.length}, false}};
    }

  private:
    const value_type& body_;
    bool done_ = false;
  };
};

} // namespace phonon::http
