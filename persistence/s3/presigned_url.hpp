#pragma once

#include <chrono>
#include <ctime>
#include <string>
#include <string_view>

#include "persistence/s3/client.hpp"
#include "persistence/s3/sigv4.hpp"

// Presigned GET URLs of objects (query-string authentication, SigV4), for
// the HTTP layer's redirects to the bucket (storage.s3.redirect). A pure
// function of the settings, the key and the time: no I/O, no state, so the
// tests check the URL it makes with the signer's own functions.

namespace phonon::persistence::s3 {

/// The parts of a URL presigned_get_url() made, split back for checks and
/// logs (nothing here is secret: the signature is a one-object, short-lived
/// grant).
struct url_parts {
  std::string scheme;   ///< "http" or "https"
  std::string host;     ///< what the Host header must be (signed)
  std::string path;     ///< as sent, encoded once
  std::string query;    ///< as sent
};

/// A URL of `GET <key>` in `cfg`'s bucket that anyone may fetch for `ttl`
/// after `now`: `cfg.endpoint` names the host (and is signed as the Host
/// header, so it must be the endpoint the client reaches), path-style or
/// virtual-host addressing as `cfg.path_style` says, the key below
/// `cfg.prefix`. `response_headers` become S3's `response-*` query
/// parameters (e.g. {"response-content-type", "audio/mpeg"}): the bucket
/// then answers with those header values. Throws std::invalid_argument on
/// an endpoint that is not http(s)://host[:port], an empty key or bucket,
/// or a ttl outside 1 s..7 days.
std::string presigned_get_url(const settings& cfg, std::string_view key,
                              const query_list& response_headers,
                              std::chrono::seconds ttl, std::time_t now);

/// Splits "scheme://host/path?query" as presigned_get_url() writes it;
/// std::invalid_argument for anything else.
url_parts split_url(std::string_view url);

/// "scheme://host" (the origin a browser sees) of the URLs
/// presigned_get_url() makes with `cfg`: the bucket's host name in front
/// with virtual-host addressing.
std::string presigned_origin(const settings& cfg);

} // namespace phonon::persistence::s3
