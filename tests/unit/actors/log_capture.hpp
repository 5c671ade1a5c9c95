// Captures the lines Phonon's loggers write, for tests that check what a
// log line says (request ids). Used from the test thread; the actors write
// from theirs.

#pragma once

#include <array>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <spdlog/sinks/base_sink.h>

#include "actors/log.hpp"

namespace phonon::testing {

/// A sink that keeps every formatted line in memory.
class memory_sink : public spdlog::sinks::base_sink<std::mutex> {
public:
  /// Everything written so far. Thread-safe.
  std::string text() {
    std::lock_guard<std::mutex> guard{mutex_};
    return text_;
  }

protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t buf;
    formatter_->format(msg, buf);
    text_.append(buf.data(), buf.size());
  }

  void flush_() override {
    // nop
  }

private:
  std::string text_;
};

/// While it exists, the `actors`, `http` and `media` loggers write to
/// memory instead of stderr, at debug level, in text or JSON; afterwards
/// they are back on their own sinks at info in text. Changing a logger's
/// sinks races with threads that log: make it before the actor system and
/// let it die after the system.
class log_capture {
public:
  explicit log_capture(bool json = false)
    : sink_(std::make_shared<memory_sink>()) {
    for (auto* lg : loggers()) {
      saved_.push_back(lg->sinks());
      lg->sinks() = {sink_};
    }
    log::init("debug", json);
  }

  ~log_capture() {
    size_t i = 0;
    for (auto* lg : loggers())
      lg->sinks() = saved_[i++];
    log::init("info", false);
  }

  log_capture(const log_capture&) = delete;
  log_capture& operator=(const log_capture&) = delete;

  /// Every line written since construction.
  std::string text() {
    return sink_->text();
  }

private:
  static std::array<spdlog::logger*, 3> loggers() {
    return {log::actors().get(), log::http().get(), log::media().get()};
  }

  std::shared_ptr<memory_sink> sink_;
  std::vector<std::vector<spdlog::sink_ptr>> saved_;
};

} // namespace phonon::testing
