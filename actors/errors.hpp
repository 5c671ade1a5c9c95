#pragma once

#include <cstdint>
#include <string>

#include <caf/atom.hpp>
#include <caf/error.hpp>
#include <caf/fwd.hpp>
#include <caf/message.hpp>

namespace phonon {

/// Phonon's own error codes, carried between actors as `caf::error` with the
/// category `phonon_category`. http/status_map.cpp is the one place that maps
/// them to HTTP statuses.
enum class errc : uint8_t {
  /// The request itself is wrong (bad multipart, empty file, ...).
  bad_request = 1,
  /// No such recording or file.
  not_found,
  /// A recording already exists for the pair (POST).
  already_exists,
  /// The upload is larger than server.max_upload_size.
  payload_too_large,
  /// The bytes are not audio in an accepted container.
  unsupported_media,
  /// The audio is recognised but does not decode end to end.
  corrupt_media,
  /// The WAV master a format needs is not written yet.
  not_ready,
  /// The recording's conversion failed for good.
  conversion_failed,
  /// The conversion queue is full (backpressure).
  overloaded,
  /// No transcoder is available at all.
  no_transcoder,
  /// The database cannot be reached or refused the statement.
  database_unavailable,
  /// Reading or writing stored files failed.
  storage_failure,
  /// An unexpected failure inside a transcoder (libav, out of memory).
  transcode_failure,
  /// A job killed transcoders transcoder.max_attempts times.
  transcoder_crashed,
  /// The disk (or the database's disk) has no room: 507 for uploads.
  storage_full,
  /// An upload ran past server.request_timeout before its commit point and
  /// was abandoned: nothing of it is stored (504).
  deadline_exceeded,
  /// The audio decodes to more than server.max_duration (413); the detail
  /// text says so in words fit for the client.
  too_long,
  /// More channels or a higher sample rate than voice needs (415); the
  /// detail text says which, in words fit for the client.
  audio_out_of_range,
  /// The blob store did not answer (an S3 bucket that is down): 503, the
  /// same request may succeed later.
  storage_unavailable,
  /// The revision a GET was serving was replaced twice while it was
  /// requested (or it ran out of time): 503, the client retries.
  recording_changed,
  /// The user has limits.per_user_inflight uploads and conversions in
  /// flight (user_gate.hpp): 429, retry shortly.
  too_many_requests,
};

/// Returns the enumerator's name ("not_found", ...).
std::string to_string(errc x);

/// The category atom of every Phonon error (at most 10 characters).
constexpr caf::atom_value phonon_category = caf::atom("phonon");

/// True when `err` is the Phonon error `code`.
bool is(const caf::error& err, errc code);

/// True when `err` belongs to Phonon's category.
bool is_phonon_error(const caf::error& err);

/// The detail text of a Phonon error (empty when there is none).
std::string detail_of(const caf::error& err);

/// Renders a Phonon error for `caf::actor_system_config::add_error_category`.
std::string render_error(uint8_t code, caf::atom_value,
                         const caf::message& context);

} // namespace phonon

CAF_ERROR_CODE_ENUM(phonon::errc, "phonon")
