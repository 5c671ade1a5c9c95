#include "http/waveform_query.hpp"

#include "http/ids.hpp"
#include "http/router.hpp"
#include "media/waveform.hpp"
#include "persistence/blob_layout.hpp"

namespace phonon::http {

namespace {

waveform_query refuse(std::string why) {
  waveform_query q;
  q.error = std::move(why);
  return q;
}

} // namespace

bool is_waveform_route(std::string_view route_format) noexcept {
  return route_format == "waveform.json" || route_format == "waveform.dat";
}

std::optional<waveform_query> parse_waveform_query(
  std::string_view route_format, std::string_view query) {
  if (!is_waveform_route(route_format))
    return std::nullopt;
  std::optional<std::string> pps;
  std::optional<std::string> spp;
  std::optional<std::string> channels;
  while (!query.empty()) {
    auto amp = query.find('&');
    auto pair = query.substr(0, amp);
    query.remove_prefix(amp == std::string_view::npos ? query.size()
                                                      : amp + 1);
    if (pair.empty())
      continue;
    auto eq = pair.find('=');
    auto key = url_decode(pair.substr(0, eq));
    auto value = eq == std::string_view::npos
                   ? std::string{}
                   : url_decode(pair.substr(eq + 1));
    std::optional<std::string>* slot = nullptr;
    if (key == "pixels_per_second")
      slot = &pps;
    else if (key == "samples_per_pixel")
      slot = &spp;
    else if (key == "channels")
      slot = &channels;
    else
      continue;
    if (*slot)
      return refuse(key + " is given more than once");
    *slot = std::move(value);
  }
  if (pps && spp)
    return refuse("give pixels_per_second or samples_per_pixel, not both");
  persistence::waveform_params p;
  p.json = route_format == "waveform.json";
  if (spp) {
    auto n = parse_id(*spp);
    if (!n || *n < media::min_samples_per_pixel
        || *n > media::max_samples_per_pixel)
      return refuse("samples_per_pixel must be an integer from "
                    + std::to_string(media::min_samples_per_pixel) + " to "
                    + std::to_string(media::max_samples_per_pixel));
    p.per_second = false;
    p.value = static_cast<int32_t>(*n);
  } else {
    p.per_second = true;
    p.value = media::default_pixels_per_second;
    if (pps) {
      auto n = parse_id(*pps);
      if (!n || *n < media::min_pixels_per_second
          || *n > media::max_pixels_per_second)
        return refuse("pixels_per_second must be an integer from "
                      + std::to_string(media::min_pixels_per_second) + " to "
                      + std::to_string(media::max_pixels_per_second));
      p.value = static_cast<int32_t>(*n);
    }
  }
  if (channels) {
    if (*channels == "mono")
      p.mono = true;
    else if (*channels == "all")
      p.mono = false;
    else
      return refuse("channels must be mono or all");
  }
  waveform_query q;
  q.format = persistence::blob_layout::waveform_format(p);
  return q;
}

} // namespace phonon::http
