#pragma once

#include <caf/error.hpp>

#include "http/reply.hpp"

namespace phonon::http {

/// The one mapping from an actor error to an HTTP answer: status, a short
/// public message (never paths, SQL or internals) and extra headers such as
/// Retry-After. Unknown errors become 500; request timeouts 504.
reply to_reply(const caf::error& err);

/// Just the status part of to_reply.
unsigned to_http_status(const caf::error& err);

} // namespace phonon::http
