#pragma once

// Internal to media/: the WAV master format (RIFF, PCM s16le).

#include <cstdint>
#include <string>
#include <vector>

#include "media/demux.hpp"
#include "media/file_io.hpp"

namespace phonon::media::detail {

/// Bytes of the RIFF/fmt/data headers in front of a WAV master's PCM.
constexpr size_t wav_header_size = 44;

/// The 44-byte header of a WAV master holding `data_size` bytes of s16
/// PCM; too_long when that does not fit a RIFF file's 4 GiB.
/// @throws media_error
std::string wav_header(int channels, int rate, uint64_t data_size);

/// Moves the PCM into a WAV file, freeing each piece once it is copied;
/// too_long when it does not fit a RIFF file's 4 GiB.
/// @throws media_error
std::string make_wav(pcm& p);

/// Writes a WAV master to a file as the PCM is decoded: a placeholder
/// header first, the PCM through a bounded buffer, and the real header
/// written over the placeholder by finish(). The result is byte for byte
/// what make_wav makes of the same PCM.
class wav_file_writer : public pcm_consumer {
public:
  /// Writes to `out`, which must outlive the writer.
  explicit wav_file_writer(output_file& out);

  void consume(const pcm& format, const uint8_t* data, int samples) override;

  /// Flushes the buffer and writes the header for `p` (rate, layout and
  /// the number of samples decoded).
  void finish(const pcm& p);

private:
  void flush();

  output_file& out_;
  std::vector<char> buf_;
  bool started_ = false;
};

} // namespace phonon::media::detail
