#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

#include "media/formats.hpp"

namespace phonon::media {

/// Why a media operation failed.
enum class media_errc {
  /// The bytes are not audio in an accepted container (empty, random,
  /// a picture, a container without an audio stream, an unsupported codec).
  not_audio = 1,
  /// Recognised audio that does not decode end to end (truncated, corrupt).
  corrupt,
  /// A libav failure that is not the input's fault (encoder missing, OOM).
  internal,
  /// The audio is longer than limits::max_duration_ms (declared by the
  /// container or counted while decoding). `what()` is fit for clients.
  too_long,
  /// More channels than max_channels or a sample rate above
  /// max_sample_rate. `what()` is fit for clients.
  out_of_range,
  /// limits::deadline_unix_ms passed before the work was done.
  deadline_exceeded,
  /// The output file could not be written for want of space (ENOSPC,
  /// EDQUOT): not the input's fault, and worth trying again later.
  no_space,
  /// The input file does not exist (removed meanwhile: a recording deleted
  /// or replaced while its conversion waited).
  input_missing,
};

/// Most channels an accepted upload may have (voice needs one or two; 8
/// leaves room for 7.1 and ambisonic field recorders).
constexpr int max_channels = 8;

/// Highest accepted sample rate in Hz (studio rates up to 192 kHz).
constexpr int max_sample_rate = 192000;

/// Default of limits::max_duration_ms: 10 minutes.
constexpr int64_t default_max_duration_ms = 10 * 60 * 1000;

/// Bounds on one probe, decode or encode.
struct limits {
  /// Longest audio accepted, in ms; the decode stops as soon as the decoded
  /// samples pass it (the container's declared duration is checked too, but
  /// never trusted alone). It also bounds the PCM held in memory:
  /// max_duration x rate x channels x 2 bytes. 0 means no duration limit,
  /// for input Phonon wrote itself (WAV masters); the WAV format's 4 GiB
  /// still bounds it.
  int64_t max_duration_ms = default_max_duration_ms;
  /// Wall-clock deadline in ms since the Unix epoch, checked between
  /// packets and frames; 0 means none. Wall clock rather than steady so it
  /// means the same on another node.
  int64_t deadline_unix_ms = 0;
  /// Most bytes of decoded PCM (s16) one decode may hold, whatever the
  /// duration: many channels at a high rate fill memory faster than the
  /// duration limit alone allows for. 0 means the default budget when
  /// max_duration_ms is set: default_pcm_budget or max_duration_ms of
  /// 48 kHz stereo, whichever is larger, so that no upload of up to 48 kHz
  /// stereo within the duration limit is refused by it.
  uint64_t max_pcm_bytes = 0;
};

/// Floor of the default PCM budget (limits::max_pcm_bytes): 512 MiB, ten
/// minutes of up to 4 channels at 96 kHz or 2 channels at 192 kHz.
constexpr uint64_t default_pcm_budget = uint64_t{512} << 20;

/// Renders a duration limit for people: "10 minutes", "1 minute",
/// "90 seconds", "1.5 seconds".
std::string describe_duration(int64_t ms);

/// Typed error thrown by everything in media/. `what()` is for logs.
class media_error : public std::runtime_error {
public:
  media_error(media_errc code, const std::string& what)
    : std::runtime_error(what), code_(code) {
    // nop
  }

  media_errc code() const noexcept {
    return code_;
  }

private:
  media_errc code_;
};

/// What probing or decoding learned about a piece of audio.
struct audio_info {
  /// Upload format name as served by Phonon: "m4a" for MP4/M4A/MOV, "wav",
  /// "mp3", "ogg" (Vorbis), "opus" (Ogg/Opus), "flac", "webm".
  std::string format;
  /// libav codec name of the audio stream ("aac", "alac", "opus", ...).
  std::string codec;
  int64_t duration_ms = 0;
  int32_t sample_rate = 0;
  int32_t channels = 0;
};

/// Result of a full decode: the source's facts and the WAV master (RIFF,
/// PCM s16le, source sample rate and channel count).
struct decoded_audio {
  audio_info source;
  std::string wav;
};

/// Result of an encode: the bytes in the target format and their facts.
struct encoded_audio {
  std::string bytes;
  audio_info info;
};

/// Probes `bytes` by content (never by name) without decoding everything
/// (unless the container does not say how long it is).
/// @throws media_error
audio_info probe(std::string_view bytes, const limits& lim = {});

/// Decodes the first audio stream of `bytes` end to end to a WAV master.
/// Truncated or corrupt input throws media_error{corrupt}; audio longer
/// than `lim.max_duration_ms` throws media_error{too_long} as soon as the
/// decoded part passes it.
/// @throws media_error
decoded_audio decode_to_wav(std::string_view bytes, const limits& lim = {});

/// Encodes audio (normally the WAV master, but any accepted input works)
/// to `target` following API.md's rules (m4a faststart AAC-LC, mp3 with a
/// Xing header, opus/webm at 48 kHz, ...).
/// @throws media_error
encoded_audio encode(std::string_view bytes, format target,
                     const limits& lim = {});

/// Streaming decode_to_wav: reads the file `in_path` through a bounded
/// buffer and writes the WAV master to `out_path` (created or truncated)
/// as it decodes, patching the header's sizes at the end; byte for byte
/// what decode_to_wav makes of the same input. Memory stays a few frames
/// whatever the length. Same limits and errors as decode_to_wav (a failed
/// fsync is media_error{no_space} or {internal}); on any error `out_path`
/// is removed. The file is fsync'd before this returns: a caller only has
/// to rename it into place and sync the folder.
/// @throws media_error
audio_info decode_file_to_wav(const std::string& in_path,
                              const std::string& out_path,
                              const limits& lim = {});

/// Streaming encode: decodes the file `in_path` and encodes it to
/// `target` in `out_path` (created or truncated) packet by packet;
/// the result's `bytes` stay empty. On any error `out_path` is removed.
/// @throws media_error
encoded_audio encode_file(const std::string& in_path,
                          const std::string& out_path, format target,
                          const limits& lim = {});

/// True when `bytes` are an ISO BMFF file whose `moov` box comes before
/// its first `mdat` box ("faststart"; fragmented MP4 qualifies too).
bool moov_before_mdat(std::string_view bytes) noexcept;

/// moov_before_mdat for the file at `path`, reading only box headers;
/// false when it cannot be read.
bool moov_before_mdat_file(const std::string& path) noexcept;

/// Routes libav's own log lines to `sink` (level, text); call once at start.
void set_log_sink(void (*sink)(int level, const char* text));

} // namespace phonon::media
