#pragma once

// Internal to media/: encoding decoded PCM to a target format following
// API.md's rules (codec, rate, channels and muxer per format).

#include "media/demux.hpp"
#include "media/formats.hpp"

namespace phonon::media::detail {

/// Encodes `src` to `target`; the bytes and their facts.
/// @throws media_error
encoded_audio encode_pcm(const pcm& src, format target, const limits& lim);

} // namespace phonon::media::detail
