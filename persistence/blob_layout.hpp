#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace phonon::persistence {

/// Names one stored object of one revision of one recording. Paths and
/// object keys are built from the integers and from `name`, which is one of
/// the names blob_layout makes ("original", "master.wav", "cache/mp3"),
/// never from client text.
struct blob_key {
  int64_t user_id = 0;
  int64_t phrase_id = 0;
  int64_t revision = 0;
  std::string name;
};

/// The parameters of a cached waveform (API.md, "Waveforms") as its
/// derived-format name carries them: one name per (container, zoom,
/// channels), so each combination a client asks for is its own cache file.
struct waveform_params {
  /// "json" (true) or "dat" (false).
  bool json = true;
  /// The zoom is pixels_per_second (true) or samples_per_pixel (false).
  bool per_second = true;
  /// The zoom's value: a positive integer.
  int32_t value = 100;
  /// The channels are merged into one.
  bool mono = false;
};

/// The one place that names stored objects. A recording's revision holds
/// its `original` (the uploaded bytes), its WAV master `master.wav` and
/// the derived formats `cache/<format>`; each lives under
/// `<user>/<phrase>/<revision>/<name>`, which is a path below the local
/// store's base folder and an object key below the S3 prefix alike.
/// Revisions are immutable: a replacement is a new revision, so a copy of
/// an object is never stale while its revision is current.
struct blob_layout {
  static constexpr std::string_view original_name = "original";
  static constexpr std::string_view master_name = "master.wav";
  /// Folder of the derived formats inside a revision.
  static constexpr std::string_view cache_folder = "cache";

  /// "cache/<format>"; `format` is a name from Phonon's format table.
  static std::string derived_name(std::string_view format);

  /// The format of a derived name ("cache/mp3" -> "mp3"); nullopt when
  /// `name` is not one.
  static std::optional<std::string> format_of(std::string_view name);

  /// The derived-format name of a waveform:
  /// "waveform-<pps|spp><value>-<all|mono>.<json|dat>", e.g.
  /// "waveform-pps100-all.json" (stored as "cache/waveform-pps100-all.json").
  static std::string waveform_format(const waveform_params& p);

  /// The parameters of a name waveform_format() made; nullopt for anything
  /// else (other formats, non-canonical numbers).
  static std::optional<waveform_params> parse_waveform_format(
    std::string_view format);

  static blob_key original(int64_t user, int64_t phrase, int64_t revision);
  static blob_key master(int64_t user, int64_t phrase, int64_t revision);
  static blob_key derived(int64_t user, int64_t phrase, int64_t revision,
                          std::string_view format);

  /// `<user>/<phrase>/<revision>/<name>` after check_name(key.name).
  static std::string relative(const blob_key& key);

  /// `<user>/<phrase>/<revision>/`: every object of one revision.
  static std::string revision_prefix(int64_t user, int64_t phrase,
                                     int64_t revision);

  /// `<user>/<phrase>/`: every revision of one recording.
  static std::string recording_prefix(int64_t user, int64_t phrase);

  /// The key of a relative path made by relative(); nullopt for anything
  /// else (ids that are not positive canonical integers, bad names).
  static std::optional<blob_key> parse(std::string_view relative);

  /// Throws storage_error unless `name` is a safe relative name of at most
  /// two components from [a-z0-9._-] (defence in depth: names come from
  /// Phonon's code, never from clients).
  static void check_name(std::string_view name);

  /// check_name() as a predicate.
  static bool valid_name(std::string_view name) noexcept;
};

} // namespace phonon::persistence
