#include "actors/log.hpp"

#include <algorithm>
#include <mutex>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>

namespace phonon::log {

namespace {

constexpr const char* text_pattern
  = "%Y-%m-%dT%H:%M:%S.%e %^%l%$ [%n] [t%t] %v";

std::shared_ptr<spdlog::logger> make(const char* name) {
  if (auto existing = spdlog::get(name))
    return existing;
  auto lg = spdlog::stderr_color_mt(name);
  lg->set_pattern(text_pattern);
  return lg;
}

/// The `%*` flag: the message as the inside of a JSON string. A quote and a
/// backslash get a backslash, control bytes become \u00XX; other bytes
/// (UTF-8) stay as they are.
class json_message : public spdlog::custom_flag_formatter {
public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    static constexpr char hex[] = "0123456789abcdef";
    for (char ch : msg.payload) {
      auto c = static_cast<unsigned char>(ch);
      if (c == '"' || c == '\\') {
        dest.push_back('\\');
        dest.push_back(ch);
      } else if (c < 0x20 || c == 0x7f) {
        const char esc[] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xf]};
        dest.append(esc, esc + sizeof(esc));
      } else {
        dest.push_back(ch);
      }
    }
  }

  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<json_message>();
  }
};

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
  // In JSON the message goes through json_message (%*): a quote, a
  // backslash or a control byte in it (an error text, a file name) would
  // otherwise end the string early and break the line for a log shipper.
  const char* pattern
    = json ? R"({"time":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l","logger":"%n",)"
             R"("thread":%t,"msg":"%*"})"
           : text_pattern;
  for (auto* lg : {&all().actors, &all().http, &all().media}) {
    (*lg)->set_level(lvl);
    auto f = std::make_unique<spdlog::pattern_formatter>(
      spdlog::pattern_time_type::utc);
    f->add_flag<json_message>('*').set_pattern(pattern);
    (*lg)->set_formatter(std::move(f));
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

std::string to_string(request_id_text x) {
  static constexpr char hex[] = "0123456789abcdef";
  static constexpr size_t max_bytes = 128;
  if (x.id.empty())
    return "-";
  std::string out;
  auto n = std::min(x.id.size(), max_bytes);
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    auto c = static_cast<unsigned char>(x.id[i]);
    if (c > 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      out += "\\x";
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 0xf]);
    }
  }
  if (x.id.size() > max_bytes)
    out += "...";
  return out;
}

namespace {

thread_local std::string_view scoped_request_id;
thread_local uint64_t scoped_job = 0;

} // namespace

job_scope::job_scope(std::string_view request_id, uint64_t job) noexcept {
  scoped_request_id = request_id;
  scoped_job = job;
}

job_scope::~job_scope() {
  scoped_request_id = {};
  scoped_job = 0;
}

std::string_view current_request_id() noexcept {
  return scoped_request_id;
}

uint64_t current_job() noexcept {
  return scoped_job;
}

} // namespace phonon::log
