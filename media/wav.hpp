#pragma once

// Internal to media/: the WAV master format (RIFF, PCM s16le).

#include <string>

#include "media/demux.hpp"

namespace phonon::media::detail {

/// Moves the PCM into a WAV file, freeing each piece once it is copied;
/// too_long when it does not fit a RIFF file's 4 GiB.
/// @throws media_error
std::string make_wav(pcm& p);

} // namespace phonon::media::detail
