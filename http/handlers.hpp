#pragma once

#include <functional>
#include <optional>
#include <string>

#include "actors/messages.hpp"
#include "http/reply.hpp"
#include "http/router.hpp"
#include "http/services.hpp"

namespace phonon::http {

/// A routed request as the handlers see it (no Beast types).
struct incoming {
  /// X-Request-Id of the request (choose_request_id): every log line the
  /// request causes carries it, on every node.
  std::string request_id;
  std::string method;
  std::string query;
  /// The If-None-Match header (console files answer 304 themselves).
  std::string if_none_match;
  route where;
  /// The caller may read (auth_decision::may_read): answers carry signed
  /// read links only then.
  bool may_read = true;
  /// Set for POST/PUT uploads whose body is spooled.
  std::optional<actors::upload_request> upload;
};

/// Called exactly once with the answer, from any thread.
using respond_fn = std::function<void(reply)>;

/// Answers one routed request. Returns at once: work that needs actors runs
/// in a one-shot bridge actor that calls `respond` when the answer is there.
/// The route must already be known and allow the method.
void handle(const services& svc, const incoming& req, respond_fn respond);

/// The answer to a GET/HEAD of audio or metadata, or a POST of links, from
/// the read model (services::model) without any message, or nothing on a
/// miss (then handle() asks the actors). Runs on the io thread: a hash
/// lookup under a short lock, no I/O.
std::optional<reply> answer_from_model(const services& svc,
                                       const incoming& req);

/// JSON metadata of a recording as API.md defines it (with signed links
/// in `formats` when auth is on).
std::string recording_json(const persistence::recording& rec,
                           const authenticator& auth);

} // namespace phonon::http
