#pragma once

#include <memory>

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

} // namespace phonon::log
