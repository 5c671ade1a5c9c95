#include "http/status_map.hpp"

#include <nlohmann/json.hpp>

#include <caf/sec.hpp>

#include "actors/errors.hpp"

namespace phonon::http {

reply error_reply(unsigned status, const std::string& message,
                  const std::string& code) {
  nlohmann::json body{{"message", message}};
  if (!code.empty())
    body["code"] = code;
  return json_reply(status, body.dump());
}

reply json_reply(unsigned status, std::string json) {
  reply r;
  r.status = status;
  r.body = std::move(json);
  r.body += '\n';
  return r;
}

namespace {

struct public_error {
  unsigned status;
  const char* message;
  const char* retry_after = nullptr;
};

public_error describe(const caf::error& err) {
  if (is_phonon_error(err)) {
    switch (static_cast<errc>(err.code())) {
      case errc::bad_request:
        return {400, "bad request"};
      case errc::not_found:
        return {404, "recording not found"};
      case errc::already_exists:
        return {409, "a recording already exists for this user and phrase; "
                     "use PUT to replace it"};
      case errc::payload_too_large:
        return {413, "upload is larger than the allowed maximum"};
      case errc::unsupported_media:
        return {415, "the upload is not audio in a supported format"};
      case errc::corrupt_media:
        return {415, "the audio could not be decoded (truncated or corrupt)"};
      case errc::not_ready:
        return {409, "the recording is still being processed; retry shortly",
                "1"};
      case errc::conversion_failed:
        return {422, "the recording's conversion failed"};
      case errc::overloaded:
        return {503, "the conversion queue is full; retry shortly", "2"};
      case errc::no_transcoder:
        return {503, "no transcoder is available; retry shortly", "5"};
      case errc::database_unavailable:
        return {503, "the database is unavailable; retry shortly", "5"};
      case errc::storage_failure:
        return {500, "storage failure"};
      case errc::transcode_failure:
        return {500, "conversion failure"};
      case errc::transcoder_crashed:
        return {422, "the conversion crashed repeatedly"};
      case errc::too_long:
        return {413, "the audio is longer than the allowed maximum"};
      case errc::audio_out_of_range:
        return {415, "the audio has more channels or a higher sample rate "
                     "than accepted"};
      case errc::storage_full:
        return {507, "the server's storage is full; nothing was stored, "
                     "retry later",
                "30"};
      case errc::storage_unavailable:
        return {503, "the storage is unavailable; nothing was stored, retry "
                     "shortly",
                "5"};
      case errc::recording_changed:
        return {503, "the file changed while it was requested; retry", "1"};
      case errc::too_many_requests:
        return {429, "too many uploads and conversions in flight for this "
                     "user (limits.per_user_inflight); retry after the "
                     "others are answered",
                "1"};
      case errc::deadline_exceeded:
        return {504, "the request took longer than the request timeout; "
                     "nothing was stored or changed, retry"};
    }
  }
  if (err == caf::sec::request_timeout)
    return {504, "the request timed out"};
  return {500, "internal error"};
}

} // namespace

unsigned to_http_status(const caf::error& err) {
  return describe(err).status;
}

reply to_reply(const caf::error& err) {
  auto d = describe(err);
  auto code = is_phonon_error(err) ? to_string(static_cast<errc>(err.code()))
               : err == caf::sec::request_timeout ? std::string{"timeout"}
                                                  : std::string{"internal"};
  std::string message = d.message;
  // These details are written for clients (media/transcode.hpp) and say
  // which limit was hit.
  if (is(err, errc::too_long) || is(err, errc::audio_out_of_range))
    if (auto detail = detail_of(err); !detail.empty())
      message = std::move(detail);
  auto r = error_reply(d.status, message, code);
  if (d.retry_after)
    r.headers.emplace_back("Retry-After", d.retry_after);
  return r;
}

} // namespace phonon::http
