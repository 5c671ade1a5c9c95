#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace phonon::persistence {

/// Lifecycle of a recording: `processing` until its WAV master is stored.
enum class recording_status { processing, ready, failed };

/// Returns "processing", "ready" or "failed".
const char* to_string(recording_status s);

/// Parses the text form; throws db_error on anything else.
recording_status status_from_string(const std::string& s);

/// One row of the `recordings` table.
struct recording {
  int64_t user_id = 0;
  int64_t phrase_id = 0;
  /// Changes on every (re)upload; names the blob folder and feeds the ETag.
  int64_t revision = 0;
  recording_status status = recording_status::processing;
  /// Format name of the upload as probed (`m4a`, `wav`, `mp3`, ...).
  std::string original_format;
  std::string original_filename;
  int64_t size_bytes = 0;
  int64_t duration_ms = 0;
  int32_t sample_rate = 0;
  int32_t channels = 0;
  /// Unix time in milliseconds.
  int64_t created_at = 0;
  int64_t updated_at = 0;
  /// Set when status is `failed`.
  std::string error;
  /// The original bytes are served for `original_format` as they are (an
  /// M4A upload that is AAC-LC with its moov atom first); otherwise that
  /// format is converted from the master like any other.
  bool serve_original = false;
};

/// A database failure (connection, constraint, SQL). `what()` is for logs,
/// never for clients.
class db_error : public std::runtime_error {
public:
  /// `disk_full`: the database could not write because its disk is full
  /// (SQLITE_FULL, MySQL's ER_RECORD_FILE_FULL / disk errors).
  explicit db_error(const std::string& what, bool disk_full = false)
    : std::runtime_error(what), disk_full_(disk_full) {
    // nop
  }

  /// True when the failure was a full disk rather than a broken database.
  bool disk_full() const noexcept {
    return disk_full_;
  }

private:
  bool disk_full_;
};

} // namespace phonon::persistence
