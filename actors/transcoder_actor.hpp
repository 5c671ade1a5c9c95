#pragma once

#include <functional>

#include <caf/actor_system.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/messages.hpp"

namespace phonon::actors {

/// A pure function over bytes: (input, target) -> output bytes and facts.
/// Runs detached because libav work is CPU-bound and blocking. Bad input
/// answers errc::unsupported_media or errc::corrupt_media; an unexpected
/// exception terminates the actor, which its supervisor notices.
using transcoder_actor = caf::typed_actor<
  caf::replies_to<transcode_atom, transcode_job>::with<transcode_output>>;

/// The work a transcoder does; media-backed by default, replaceable in tests.
using transcode_fn = std::function<transcode_output(const transcode_job&)>;

/// The default transcode function: media::decode_to_wav for "master",
/// media::encode for a format name. Throws media::media_error.
transcode_output run_media_job(const transcode_job& job);

/// Spawns one detached transcoder running `fn`.
transcoder_actor spawn_transcoder(caf::actor_system& sys,
                                  transcode_fn fn = run_media_job);

} // namespace phonon::actors
