#pragma once

#include <string>
#include <vector>

namespace phonon::persistence {

/// One numbered schema step from sql/<dialect>/NNN_name.sql.
struct migration {
  int version;
  const char* name;
  const char* sql;
};

/// The SQLite migrations in version order (embedded at build time).
const std::vector<migration>& sqlite_migrations();

/// The MySQL migrations in version order (embedded at build time).
const std::vector<migration>& mysql_migrations();

} // namespace phonon::persistence
