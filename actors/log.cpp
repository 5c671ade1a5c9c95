#include "actors/log.hpp"

#include <mutex>

#include <spdlog/sinks/stdout_color_sinks.h>

namespace phonon::log {

namespace {

std::shared_ptr<spdlog::logger> make(const char* name) {
  if (auto existing = spdlog::get(name))
    return existing;
  auto lg = spdlog::stderr_color_mt(name);
  lg->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ [%n] [t%t] %v");
  return lg;
}

struct loggers {
  std::shared_ptr<spdlog::logger> actors = make("actors");
  std::shared_ptr<spdlog::logger> http = make("http");
  std::shared_ptr<spdlog::logger> media = make("media");
};

loggers& all() {
  static loggers instance;
  return instance;
}

} // namespace

void init(const std::string& level, bool json) {
  auto lvl = spdlog::level::from_str(level);
  const char* pattern
    = json ? R"({"time":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l","logger":"%n",)"
             R"("thread":%t,"msg":"%v"})"
           : "%Y-%m-%dT%H:%M:%S.%e %^%l%$ [%n] [t%t] %v";
  for (auto* lg : {&all().actors, &all().http, &all().media}) {
    (*lg)->set_level(lvl);
    (*lg)->set_pattern(pattern, spdlog::pattern_time_type::utc);
  }
}

const std::shared_ptr<spdlog::logger>& actors() {
  return all().actors;
}

const std::shared_ptr<spdlog::logger>& http() {
  return all().http;
}

const std::shared_ptr<spdlog::logger>& media() {
  return all().media;
}

} // namespace phonon::log
