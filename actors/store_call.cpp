#include "actors/store_call.hpp"

#include <caf/make_message.hpp>

#include "actors/errors.hpp"
#include "actors/log.hpp"

namespace phonon::actors {

const std::string no_request;

caf::error store_failure(const char* what, const std::string& rid,
                         const persistence::db_error& e) {
  log::actors()->warn("database failure req_id={} op={} error={}",
                      log::rid(rid), what, e.what());
  if (e.disk_full())
    return caf::error{errc::storage_full, std::string{e.what()}};
  return caf::error{errc::database_unavailable, std::string{e.what()}};
}

caf::error store_failure(const char* what, const std::string& rid,
                         const std::exception& e) {
  log::actors()->warn("database failure req_id={} op={} error={}",
                      log::rid(rid), what, e.what());
  return caf::error{errc::database_unavailable, std::string{e.what()}};
}

} // namespace phonon::actors
