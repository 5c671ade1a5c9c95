#pragma once

#include "media/waveform.hpp"
#include "persistence/blob_layout.hpp"

namespace phonon::actors {

/// The computation options a waveform target's parameters name (the zoom
/// and the channel choice), for the transcoder that computes it and the
/// format cache that weighs its job.
inline media::waveform_options waveform_options_of(
  const persistence::waveform_params& w) {
  media::waveform_options opt;
  opt.mono = w.mono;
  if (w.per_second)
    opt.pixels_per_second = w.value;
  else
    opt.samples_per_pixel = w.value;
  return opt;
}

} // namespace phonon::actors
