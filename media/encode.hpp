#pragma once

// Internal to media/: encoding decoded PCM to a target format following
// API.md's rules (codec, rate, channels and muxer per format).

#include <string>

#include "media/demux.hpp"
#include "media/formats.hpp"

namespace phonon::media::detail {

/// Decodes `d` and encodes its audio to `target` as it decodes, a frame at
/// a time: the PCM is never held whole. The output goes to memory
/// (`out_path` empty; encoded_audio::bytes) or to the file `out_path`
/// (bytes left empty).
/// @throws media_error
encoded_audio encode_stream(demuxer& d, format target, const limits& lim,
                            const std::string& out_path = {});

} // namespace phonon::media::detail
