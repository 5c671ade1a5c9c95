// Helpers of the format, cache, lifecycle and browser integration tests, on
// top of tests/integration/support.hpp: audio made with the ffmpeg CLI, MP4
// box and MP3 header inspection, and Prometheus text parsing.

#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/integration/support.hpp"

namespace phonon::integration {

/// Runs `ffmpeg -nostdin -v error -y ARGS OUT`; throws std::runtime_error
/// with ffmpeg's output when it fails or writes nothing.
void make_media(const std::string& args, const std::filesystem::path& out);

/// One top-level ISO BMFF box.
struct mp4_box {
  /// Four-character type, e.g. "moov".
  std::string type;
  /// Byte offset of the box header in the file.
  uint64_t offset = 0;
  /// Size of the whole box in bytes.
  uint64_t size = 0;
};

/// The top-level boxes of an MP4 file in file order (stops at the first
/// malformed header).
std::vector<mp4_box> mp4_top_level_boxes(std::string_view bytes);

/// Offset of the first top-level box of `type`, or std::nullopt.
std::optional<uint64_t> mp4_box_offset(std::string_view bytes,
                                       std::string_view type);

/// True when the first MPEG audio frame (after an optional ID3v2 tag)
/// carries a Xing or Info header.
bool mp3_has_xing_or_info(std::string_view bytes);

/// Labels of one Prometheus sample, name to value.
using metric_labels = std::map<std::string, std::string>;

/// The value of the sample `name` whose label set equals `labels` exactly
/// (order does not matter) in a Prometheus text exposition; std::nullopt
/// when there is no such line.
std::optional<double> metric_value(std::string_view text,
                                   std::string_view name,
                                   const metric_labels& labels = {});

/// Like metric_value, but a missing sample counts as 0 (a counter that has
/// not been incremented yet is not printed).
double counter_value(std::string_view text, std::string_view name,
                     const metric_labels& labels = {});

/// Every sample line of `name` (exactly that metric name, any labels).
std::vector<std::pair<metric_labels, double>>
metric_samples(std::string_view text, std::string_view name);

/// GET /metrics; REQUIREs a 200 and returns the body.
std::string fetch_metrics(uint16_t port);

/// Checks the contract's error body: JSON content type and a non-empty
/// string "message".
void expect_json_error(const http_response& res);

/// Waits (bounded) until the recording's metadata leaves "processing" and
/// REQUIREs that it is "ready"; returns the metadata.
nlohmann::json require_ready(uint16_t port, const std::string& target,
                             std::chrono::milliseconds limit
                             = std::chrono::milliseconds{15000});

/// Total size of the regular files below `dir` (recursively); 0 when it
/// does not exist.
uint64_t bytes_below(const std::filesystem::path& dir);

/// Sizes of the files in every `cache` folder below `dir`.
uint64_t cache_bytes_below(const std::filesystem::path& dir);

} // namespace phonon::integration
