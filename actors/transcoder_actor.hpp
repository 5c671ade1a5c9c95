#pragma once

#include <functional>

#include <caf/actor_system.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/messages.hpp"

namespace phonon::actors {

/// A pure function from a source to a sink: (input, target) -> output and
/// facts, streaming from one file of its node to another (a job from a
/// node without shared files had its input moved here in chunks first:
/// remote_job_actor.hpp).
/// Runs detached because libav work is CPU-bound and blocking. Bad input
/// answers errc::unsupported_media or errc::corrupt_media; an unexpected
/// exception terminates the actor, which its supervisor notices.
using transcoder_actor = caf::typed_actor<
  caf::replies_to<transcode_atom, transcode_job>::with<transcode_output>>;

/// The work a transcoder does; media-backed by default, replaceable in tests.
using transcode_fn = std::function<transcode_output(const transcode_job&)>;

/// The default transcode function: "master" decodes to a WAV master, a
/// format name encodes to it; from file to file (media::decode_file_to_wav,
/// media::encode_file). On failure no output file is left. Throws
/// media::media_error.
transcode_output run_media_job(const transcode_job& job);

/// Spawns one detached transcoder running `fn`.
transcoder_actor spawn_transcoder(caf::actor_system& sys,
                                  transcode_fn fn = run_media_job);

} // namespace phonon::actors
