#pragma once

// How the repository's actors (the writer in repository_actor.cpp and the
// readers in repository_reader.cpp) call the store: no exception ever
// leaves a handler, and every failure is logged with the request id and
// answered with the same error.

#include <exception>
#include <string>

#include <caf/error.hpp>
#include <caf/result.hpp>

#include "persistence/recording.hpp"

namespace phonon::actors {

/// The request id of statements no request caused (startup scans, the
/// pending rows at recovery).
extern const std::string no_request;

/// The error reply for a failed statement, logged: a full disk is
/// storage_full (507 for uploads; deletes free space and retry), anything
/// else database_unavailable (503). `rid` is the id of the request that
/// caused the statement.
caf::error store_failure(const char* what, const std::string& rid,
                         const persistence::db_error& e);

/// The error reply for any other exception from the store, logged:
/// database_unavailable.
caf::error store_failure(const char* what, const std::string& rid,
                         const std::exception& e);

/// Runs `f()` (a call of the store) and turns an exception into an error
/// reply, so that no exception ever leaves a handler.
template <class F>
auto store_call(const char* what, const std::string& rid, F f)
  -> caf::result<decltype(f())> {
  try {
    return f();
  } catch (const persistence::db_error& e) {
    return store_failure(what, rid, e);
  } catch (const std::exception& e) {
    return store_failure(what, rid, e);
  }
}

} // namespace phonon::actors
