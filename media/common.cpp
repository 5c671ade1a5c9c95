#include "media/common.hpp"

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdarg>
#include <cstring>

#include "media/av_ptr.hpp"

extern "C" {
#include <libavutil/log.h>
}

namespace phonon::media {

namespace detail {

// -- logging ------------------------------------------------------------------

namespace {

// Where libav's lines go (set_log_sink); null: nowhere.
std::atomic<void (*)(int, const char*)> log_sink{nullptr};

// av_log callback: formats one line and hands it to log_sink.
void forward_log(void* avcl, int level, const char* fmt, va_list vl) {
  if (level > av_log_get_level())
    return;
  auto sink = log_sink.load();
  if (sink == nullptr)
    return;
  thread_local int print_prefix = 1;
  char line[1024];
  av_log_format_line2(avcl, level, fmt, vl, line, sizeof(line),
                      &print_prefix);
  auto len = std::strlen(line);
  while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
    line[--len] = '\0';
  if (len > 0)
    sink(level, line);
}

} // namespace

void init_once() {
  static const bool done = [] {
    av_log_set_level(AV_LOG_QUIET);
    return true;
  }();
  static_cast<void>(done);
}

// -- errors -------------------------------------------------------------------

std::string av_err(int rc) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {0};
  av_strerror(rc, buf, sizeof(buf));
  return buf;
}

[[noreturn]] void fail(media_errc code, const std::string& what) {
  throw media_error(code, what);
}

[[noreturn]] void fail(media_errc code, const char* call, int rc) {
  // A full disk under an output file is no_space whatever the call was.
  if (rc == AVERROR(ENOSPC) || rc == AVERROR(EDQUOT))
    code = media_errc::no_space;
  throw media_error(code, std::string{call} + ": " + av_err(rc));
}

int64_t now_unix_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch())
    .count();
}

// Called between packets and frames: nobody waits for a late result.
void check_deadline(const limits& lim) {
  if (lim.deadline_unix_ms != 0 && now_unix_ms() > lim.deadline_unix_ms)
    fail(media_errc::deadline_exceeded, "the deadline passed");
}

[[noreturn]] void fail_too_long(const limits& lim) {
  fail(media_errc::too_long, "the audio is longer than the allowed "
                               + describe_duration(lim.max_duration_ms));
}

} // namespace detail

std::string describe_duration(int64_t ms) {
  auto plural = [](int64_t n, const char* unit) {
    return std::to_string(n) + " " + unit + (n == 1 ? "" : "s");
  };
  if (ms > 0 && ms % 60000 == 0)
    return plural(ms / 60000, "minute");
  if (ms % 1000 == 0)
    return plural(ms / 1000, "second");
  auto frac = std::to_string(1000 + ms % 1000).substr(1);
  while (frac.back() == '0')
    frac.pop_back();
  return std::to_string(ms / 1000) + "." + frac + " seconds";
}

void set_log_sink(void (*sink)(int level, const char* text)) {
  detail::init_once();
  detail::log_sink.store(sink);
  if (sink != nullptr) {
    av_log_set_callback(&detail::forward_log);
    av_log_set_level(AV_LOG_ERROR);
  } else {
    av_log_set_callback(&av_log_default_callback);
    av_log_set_level(AV_LOG_QUIET);
  }
}

} // namespace phonon::media
