#include "persistence/recording.hpp"

namespace phonon::persistence {

const char* to_string(recording_status s) {
  switch (s) {
    case recording_status::processing:
      return "processing";
    case recording_status::ready:
      return "ready";
    case recording_status::failed:
      return "failed";
  }
  return "invalid"; // only for values outside the enum
}

recording_status status_from_string(const std::string& s) {
  if (s == "processing")
    return recording_status::processing;
  if (s == "ready")
    return recording_status::ready;
  if (s == "failed")
    return recording_status::failed;
  throw db_error("unknown recording status: '" + s + "'");
}

} // namespace phonon::persistence
