#include "actors/errors.hpp"

#include <caf/message.hpp>

namespace phonon {

std::string to_string(errc x) {
  switch (x) {
    case errc::bad_request:
      return "bad_request";
    case errc::not_found:
      return "not_found";
    case errc::already_exists:
      return "already_exists";
    case errc::payload_too_large:
      return "payload_too_large";
    case errc::unsupported_media:
      return "unsupported_media";
    case errc::corrupt_media:
      return "corrupt_media";
    case errc::not_ready:
      return "not_ready";
    case errc::conversion_failed:
      return "conversion_failed";
    case errc::overloaded:
      return "overloaded";
    case errc::no_transcoder:
      return "no_transcoder";
    case errc::database_unavailable:
      return "database_unavailable";
    case errc::storage_failure:
      return "storage_failure";
    case errc::transcode_failure:
      return "transcode_failure";
    case errc::transcoder_crashed:
      return "transcoder_crashed";
    case errc::too_long:
      return "too_long";
    case errc::audio_out_of_range:
      return "audio_out_of_range";
    case errc::storage_full:
      return "storage_full";
    case errc::storage_unavailable:
      return "storage_unavailable";
    case errc::deadline_exceeded:
      return "deadline_exceeded";
    case errc::recording_changed:
      return "recording_changed";
    case errc::too_many_requests:
      return "too_many_requests";
  }
  return "unknown";
}

bool is_phonon_error(const caf::error& err) {
  return err && err.category() == phonon_category;
}

bool is(const caf::error& err, errc code) {
  return is_phonon_error(err) && err.code() == static_cast<uint8_t>(code);
}

std::string detail_of(const caf::error& err) {
  const auto& ctx = err.context();
  if (ctx.size() == 1 && ctx.match_element<std::string>(0))
    return ctx.get_as<std::string>(0);
  return {};
}

std::string render_error(uint8_t code, caf::atom_value,
                         const caf::message& context) {
  auto result = "phonon::" + to_string(static_cast<errc>(code));
  if (context.size() == 1 && context.match_element<std::string>(0))
    result += ": " + context.get_as<std::string>(0);
  return result;
}

} // namespace phonon
