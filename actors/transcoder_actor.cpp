#include "actors/transcoder_actor.hpp"

#include <caf/sec.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/errors.hpp"
#include "actors/log.hpp"
#include "media/transcode.hpp"

namespace phonon::actors {

transcode_output run_media_job(const transcode_job& job) {
  transcode_output out;
  out.job_id = job.id;
  media::limits lim;
  lim.max_duration_ms = job.max_duration_ms;
  lim.deadline_unix_ms = job.deadline_unix_ms;
  if (job.target == "master") {
    auto res = media::decode_to_wav(job.input, lim);
    out.bytes = std::move(res.wav);
    out.format = res.source.format;
    out.codec = res.source.codec;
    out.duration_ms = res.source.duration_ms;
    out.sample_rate = res.source.sample_rate;
    out.channels = res.source.channels;
    out.serve_as_is = res.source.format == "m4a" && res.source.codec == "aac"
                      && media::moov_before_mdat(job.input);
    return out;
  }
  auto fmt = media::parse_format(job.target);
  if (!fmt)
    throw media::media_error(media::media_errc::internal,
                             "unknown target format " + job.target);
  auto res = media::encode(job.input, *fmt, lim);
  out.bytes = std::move(res.bytes);
  out.format = res.info.format;
  out.codec = res.info.codec;
  out.duration_ms = res.info.duration_ms;
  out.sample_rate = res.info.sample_rate;
  out.channels = res.info.channels;
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
    default:
      return errc::transcode_failure;
  }
}

transcoder_actor::behavior_type transcoder_impl(transcoder_actor::pointer self,
                                                transcode_fn fn) {
  // Log the crash through spdlog (instead of CAF's stderr print) and let the
  // actor terminate: the supervisor's monitor takes it from there.
  self->set_exception_handler([](caf::scheduled_actor*, std::exception_ptr& ep) {
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      log::actors()->error("transcoder crashed error={}", e.what());
    } catch (...) {
      log::actors()->error("transcoder crashed error=unknown");
    }
    return caf::error{caf::sec::runtime_error};
  });
  return {
    [=](transcode_atom,
        const transcode_job& job) -> caf::result<transcode_output> {
      try {
        return fn(job);
      } catch (const media::media_error& e) {
        if (e.code() == media::media_errc::deadline_exceeded)
          log::media()->info("transcode stopped at its deadline: nobody "
                             "waits for it job={} target={}",
                             job.id, job.target);
        else
          log::media()->debug("transcode refused job={} target={} error={}",
                              job.id, job.target, e.what());
        return caf::error{to_errc(e.code()), std::string{e.what()}};
      }
      // Anything else escapes on purpose: the actor dies, its supervisor
      // sees the down message, respawns it and retries the job elsewhere.
    },
  };
}

} // namespace

transcoder_actor spawn_transcoder(caf::actor_system& sys, transcode_fn fn) {
  return sys.spawn<caf::detached>(transcoder_impl, std::move(fn));
}

} // namespace phonon::actors
