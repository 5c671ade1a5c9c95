#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "actors/messages.hpp"

namespace phonon::http {

/// What a handler answers, independent of Beast: either a text body or a
/// stored file that the session streams (with Range, HEAD and conditional
/// requests applied there).
struct reply {
  unsigned status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  /// When set, the body is this file and `body` is ignored.
  std::optional<actors::file_ref> file;
  /// Close the connection after this answer.
  bool close = false;
  /// `file` comes from the read model, not from the actors: when the file
  /// is gone by the time it is opened (evicted, replaced), the request goes
  /// to the actors instead of failing.
  bool from_model = false;
};

/// A JSON error body `{"message": ..., "code": ...}` with `status`.
reply error_reply(unsigned status, const std::string& message,
                  const std::string& code = {});

/// A JSON body with `status`.
reply json_reply(unsigned status, std::string json);

} // namespace phonon::http
