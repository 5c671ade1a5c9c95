#pragma once

// The Beast body type that spools an upload through an upload_sink while
// it is read. (Stored files go out from the memory cache or with
// sendfile(2), server.cpp.)

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

} // namespace phonon::http
