#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace phonon::http {

/// Extracts the boundary from a `multipart/form-data; boundary=...`
/// Content-Type (quoted or not); nullopt when the type is not multipart
/// form data or has no usable boundary (RFC 2046: 1..70 characters).
std::optional<std::string> multipart_boundary(std::string_view content_type);

/// Incremental multipart/form-data parser (RFC 7578). It is fed the body in
/// arbitrary pieces and never buffers more than a header block (capped) plus
/// one boundary's length of data: the content of the part named
/// `field_name` is handed to `on_data` piece by piece as it arrives; other
/// parts are skipped. Not thread-safe; one parser per request.
class multipart_parser {
public:
  /// Called with consecutive pieces of the wanted part's content.
  using data_sink = std::function<void(const char* data, size_t size)>;

  /// Why parsing failed.
  enum class error {
    none,
    malformed,        ///< not valid multipart (bad framing, header too long)
    missing_part,     ///< body ended cleanly without the wanted part
    duplicate_part,   ///< the wanted part appeared twice
  };

  multipart_parser(std::string boundary, std::string field_name,
                   data_sink on_data);

  /// Feeds the next piece of the body; returns false once an error is set.
  bool feed(const char* data, size_t size);

  /// Call after the last piece; returns false (and sets error()) unless the
  /// closing boundary was seen and the wanted part was found.
  bool finish();

  error last_error() const noexcept {
    return error_;
  }

  /// The wanted part's `filename` parameter (empty when none was given).
  const std::string& filename() const noexcept {
    return filename_;
  }

  /// The wanted part's Content-Type header (empty when none was given).
  const std::string& part_content_type() const noexcept {
    return part_content_type_;
  }

  /// Bytes of the wanted part's content delivered so far.
  size_t part_size() const noexcept {
    return part_size_;
  }

private:
  enum class state { preamble, headers, body, epilogue, failed };

  bool fail(error e);
  bool parse_headers(std::string_view block);

  std::string delimiter_;   // "\r\n--" + boundary
  std::string field_name_;
  data_sink on_data_;
  state state_ = state::preamble;
  error error_ = error::none;
  std::string buf_;
  bool in_wanted_ = false;
  bool found_ = false;
  std::string filename_;
  std::string part_content_type_;
  size_t part_size_ = 0;
};

} // namespace phonon::http
