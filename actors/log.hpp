#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace phonon::log {

/// Creates the named loggers (`http`, `actors`, `persistence`, `media`) with
/// one pattern; `level` is spdlog's name ("info", ...), `json` selects one
/// JSON object per line. Safe to call more than once (tests).
void init(const std::string& level, bool json);

/// The logger of actors/ (never null: falls back to a default one).
const std::shared_ptr<spdlog::logger>& actors();

/// The logger of http/.
const std::shared_ptr<spdlog::logger>& http();

/// The logger of media/ output routed through libav's log callback.
const std::shared_ptr<spdlog::logger>& media();

// -- request ids --------------------------------------------------------------

/// A request id (X-Request-Id) as log lines show it: write `req_id={}` with
/// `log::rid(id)` in every line about work a request caused, on every node
/// (the id travels in the messages: upload_request, transcode_job, ...).
/// Work no request caused (startup reconciliation and recovery, the format
/// cache's startup scan) has an empty id, shown as "-". The HTTP side only
/// lets sane ids in (http::choose_request_id), but a job may come from
/// another node: bytes outside visible ASCII, a quote and a backslash are
/// written as `\xHH` and more than 128 bytes are cut with "...", so no id
/// can forge a field of a text or JSON line. Formatting happens only when
/// the line is written.
struct request_id_text {
  std::string_view id;
};

/// Wraps `id` for a log argument (see request_id_text). `id` must outlive
/// the log call.
inline request_id_text rid(std::string_view id) noexcept {
  return request_id_text{id};
}

/// The text `rid(id)` writes.
std::string to_string(request_id_text x);

/// Names the request and job a thread works on while it lives, for lines
/// written by code that knows neither: libav's log callback runs deep
/// inside a decode, so the transcoder opens a scope around each job and the
/// callback reads current_request_id() and current_job(). Scopes do not
/// nest; the id must outlive the scope.
class job_scope {
public:
  job_scope(std::string_view request_id, uint64_t job) noexcept;
  ~job_scope();
  job_scope(const job_scope&) = delete;
  job_scope& operator=(const job_scope&) = delete;
};

/// The request id of the job this thread runs ("" outside a job_scope).
std::string_view current_request_id() noexcept;

/// The id of the job this thread runs (0 outside a job_scope).
uint64_t current_job() noexcept;

} // namespace phonon::log

template <>
struct fmt::formatter<phonon::log::request_id_text>
  : fmt::formatter<std::string_view> {
  template <class FormatContext>
  auto format(const phonon::log::request_id_text& x,
              FormatContext& ctx) const {
    auto text = phonon::log::to_string(x);
    return fmt::formatter<std::string_view>::format(text, ctx);
  }
};
