#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "http/reply.hpp"

namespace phonon::http {

/// The Content-Security-Policy of every console answer: the page may load
/// scripts, styles and media from this server only (media also from blob:
/// URLs, the recording preview), talk to this server only, never be framed
/// and never submit a form anywhere.
extern const char* const console_csp;

/// console_csp with `media_origin` ("https://bucket.example.com") also
/// allowed in media-src: with storage.s3.redirect a recording's <audio>
/// follows a 302 to the bucket, which the policy must let it load. Empty:
/// console_csp itself.
std::string console_csp_with(std::string_view media_origin);

/// The answer to a GET or HEAD of a console file: `name` is "index.html"
/// for "/" and the file name for "/console/<name>". A 200 with the file,
/// its ETag and the console's security headers; a 304 when
/// `if_none_match` names the ETag; nullopt when there is no such file.
/// (HEAD drops the body in the session, as for every text answer.)
/// `media_origin` is added to the policy's media-src (console_csp_with).
std::optional<reply> console_reply(std::string_view name,
                                   std::string_view if_none_match,
                                   std::string_view media_origin = {});

/// True when `name` is one of the console's files ("index.html",
/// "console.js", ...).
bool is_console_file(std::string_view name);

} // namespace phonon::http
