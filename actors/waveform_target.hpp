#pragma once

#include <string>

#include "media/waveform.hpp"
#include "persistence/blob_layout.hpp"

namespace phonon::actors {

/// The value of a job's `format`/`target` label in metrics: its target,
/// except that every waveform counts as "waveform". A waveform's target
/// names its zoom and channel choice, which clients pick freely (millions
/// of values): as labels they would grow /metrics without bound.
inline std::string metric_target(const std::string& target) {
  return target.rfind("waveform-", 0) == 0 ? "waveform" : target;
}

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
