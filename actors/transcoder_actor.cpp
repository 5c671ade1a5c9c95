#include "actors/transcoder_actor.hpp"

#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>

#include <caf/sec.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/waveform_target.hpp"
#include "actors/errors.hpp"
#include "actors/log.hpp"
#include "actors/metrics.hpp"
#include "media/transcode.hpp"
#include "media/waveform.hpp"
#include "persistence/blob_layout.hpp"

namespace phonon::actors {

transcode_output run_media_job(const transcode_job& job) {
  transcode_output out;
  out.job_id = job.id;
  media::limits lim;
  lim.max_duration_ms = job.max_duration_ms;
  lim.deadline_unix_ms = job.deadline_unix_ms;
  // Every job streams from file to file: a job for a node without the
  // files gets them there in chunks first (remote_job_actor.hpp).
  if (job.input_path.empty() || job.output_path.empty())
    throw media::media_error(media::media_errc::internal,
                             "a job without an input or output file");
  if (job.target == "master") {
    // fsync'd by the decode itself (on this thread): see `synced`.
    auto src = media::decode_file_to_wav(job.input_path, job.output_path, lim);
    out.synced = true;
    out.serve_as_is = media::moov_before_mdat_file(job.input_path)
                      && src.format == "m4a" && src.codec == "aac";
    out.format = src.format;
    out.codec = src.codec;
    out.duration_ms = src.duration_ms;
    out.sample_rate = src.sample_rate;
    out.channels = src.channels;
  } else if (auto w = persistence::blob_layout::parse_waveform_format(
               job.target)) {
    // Peaks of the master (media/waveform.hpp): one pass over its PCM.
    auto opt = waveform_options_of(*w);
    if (w->per_second ? (w->value < media::min_pixels_per_second
                         || w->value > media::max_pixels_per_second)
                      : (w->value < media::min_samples_per_pixel
                         || w->value > media::max_samples_per_pixel))
      throw media::media_error(media::media_errc::internal,
                               "waveform zoom out of range " + job.target);
    auto res = media::waveform_file(
      job.input_path, job.output_path, opt,
      w->json ? media::waveform_container::json
              : media::waveform_container::dat,
      lim);
    out.format = "waveform";
    out.duration_ms = res.duration_ms;
    out.sample_rate = res.sample_rate;
    out.channels = res.channels;
  } else {
    auto fmt = media::parse_format(job.target);
    if (!fmt)
      throw media::media_error(media::media_errc::internal,
                               "unknown target format " + job.target);
    auto res = media::encode_file(job.input_path, job.output_path, *fmt, lim);
    out.format = res.info.format;
    out.codec = res.info.codec;
    out.duration_ms = res.info.duration_ms;
    out.sample_rate = res.info.sample_rate;
    out.channels = res.info.channels;
  }
  out.output_path = job.output_path;
  std::error_code ec;
  out.size = std::filesystem::file_size(job.output_path, ec);
  return out;
}

namespace {

errc to_errc(media::media_errc code) {
  switch (code) {
    case media::media_errc::not_audio:
      return errc::unsupported_media;
    case media::media_errc::corrupt:
      return errc::corrupt_media;
    case media::media_errc::too_long:
      return errc::too_long;
    case media::media_errc::out_of_range:
      return errc::audio_out_of_range;
    case media::media_errc::deadline_exceeded:
      return errc::deadline_exceeded;
    case media::media_errc::no_space:
      return errc::storage_full;
    case media::media_errc::input_missing:
      return errc::not_found;
    default:
      return errc::transcode_failure;
  }
}

using clock_type = std::chrono::steady_clock;

/// Counts one finished job of this process's transcoders; `outcome` is ok,
/// refused (bad or too long media, a deadline) or crashed.
void count_job(const std::string& target, const char* outcome) {
  metrics::global().inc("phonon_transcoder_jobs_total",
                        {{"target", metric_target(target)},
                         {"outcome", outcome}});
}

void describe_transcoder_metrics() {
  static std::once_flag once;
  std::call_once(once, [] {
    auto& m = metrics::global();
    m.describe("phonon_transcoder_jobs_total", "counter",
               "Jobs this process's transcoders finished, by target "
               "(master or a format) and outcome (ok, refused, crashed).");
    m.describe("phonon_transcoder_job_seconds", "histogram",
               "Time this process's transcoders spent on a job that "
               "succeeded, by target.",
               {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                2.5, 5, 10, 30});
  });
}

/// The job a transcoder runs, for its crash handler's log line.
struct running_job {
  uint64_t id = 0;
  std::string target;
  std::string request_id;
};

transcoder_actor::behavior_type transcoder_impl(transcoder_actor::pointer self,
                                                transcode_fn fn) {
  // Detached: the handler and the exception handler run on this actor's
  // own thread, one after the other, so they share `current` unguarded.
  auto current = std::make_shared<running_job>();
  // Log the crash through spdlog (instead of CAF's stderr print) and let the
  // actor terminate: the supervisor's monitor takes it from there.
  self->set_exception_handler([current](caf::scheduled_actor*,
                                        std::exception_ptr& ep) {
    auto& job = *current;
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      count_job(job.target, "crashed");
      log::actors()->error("transcoder crashed req_id={} job={} target={} "
                           "error={}",
                           log::rid(job.request_id), job.id, job.target,
                           e.what());
    } catch (...) {
      count_job(job.target, "crashed");
      log::actors()->error("transcoder crashed req_id={} job={} target={} "
                           "error=unknown",
                           log::rid(job.request_id), job.id, job.target);
    }
    return caf::error{caf::sec::runtime_error};
  });
  return {
    [=](transcode_atom,
        const transcode_job& job) -> caf::result<transcode_output> {
      *current = running_job{job.id, job.target, job.request_id};
      auto req = log::rid(job.request_id);
      log::actors()->debug("transcode started req_id={} job={} target={}",
                           req, job.id, job.target);
      auto started = clock_type::now();
      // libav's own lines (app::route_libav_logs) name the job too.
      log::job_scope scope{job.request_id, job.id};
      try {
        auto out = fn(job);
        auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                    clock_type::now() - started)
                    .count();
        count_job(job.target, "ok");
        metrics::global().observe("phonon_transcoder_job_seconds",
                                  {{"target", metric_target(job.target)}},
                                  static_cast<double>(us) / 1e6);
        log::actors()->debug("transcode done req_id={} job={} target={} "
                             "bytes={} us={}",
                             req, job.id, job.target, out.size, us);
        return out;
      } catch (const media::media_error& e) {
        count_job(job.target, "refused");
        if (e.code() == media::media_errc::deadline_exceeded)
          log::media()->info("transcode stopped at its deadline: nobody "
                             "waits for it req_id={} job={} target={}",
                             req, job.id, job.target);
        else
          log::media()->debug("transcode refused req_id={} job={} target={} "
                              "error={}",
                              req, job.id, job.target, e.what());
        return caf::error{to_errc(e.code()), std::string{e.what()}};
      }
      // Anything else escapes on purpose: the actor dies, its supervisor
      // sees the down message, respawns it and retries the job elsewhere.
    },
  };
}

} // namespace

transcoder_actor spawn_transcoder(caf::actor_system& sys, transcode_fn fn) {
  describe_transcoder_metrics();
  return sys.spawn<caf::detached>(transcoder_impl, std::move(fn));
}

} // namespace phonon::actors
