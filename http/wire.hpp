#pragma once

// The heads of stored-file answers, written as bytes by hand instead of
// with Beast's serializer. A file answer is the hottest thing Phonon
// writes (every GET of audio), and its head is a handful of fields: the
// serializer's buffer-sequence machinery and a basic_fields container per
// request cost more than the lookup that found the file (bench/README.md,
// "GET profile"). With these, a memory-cache hit is one gather write of
// two buffers: the head and the shared bytes.
//
// Values come from Phonon (file facts, ids, dates) or from request fields
// Beast's parser already checked (no CR or LF can reach a head).

#include <string>
#include <string_view>

#include "http/file_plan.hpp"

namespace phonon::http {

/// Appends "HTTP/1.x <status> <reason>\r\n" (`version` 10 or 11, as Beast
/// numbers them; the reason is Beast's obsolete_reason).
void append_status_line(std::string& out, unsigned version, unsigned status);

/// Appends "<name>: <value>\r\n".
void append_field(std::string& out, std::string_view name,
                  std::string_view value);

/// Appends the Connection field Beast's keep_alive() would set: HTTP/1.1
/// says "close" when the connection ends, HTTP/1.0 says "keep-alive" when
/// it does not; nothing otherwise.
void append_connection(std::string& out, unsigned version, bool keep_alive);

/// The fields a plan contributes to a file answer's head: its validators,
/// type and range fields in the plan's order, then Content-Length (of the
/// window; none for 304). The same bytes for every answer with this plan,
/// so a cached file keeps them ready for plain GETs (response_cache.hpp).
std::string file_fields(const file_plan& plan);

} // namespace phonon::http
