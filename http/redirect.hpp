#pragma once

#include <chrono>
#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>

#include "actors/messages.hpp"
#include "http/file_plan.hpp"
#include "http/reply.hpp"
#include "persistence/s3/client.hpp"

// storage.s3.redirect (README "Redirects to the bucket"): a GET of a large
// audio file is answered `302 Found` with a short-lived presigned URL of
// its object, so that the bucket sends the bytes. Pure functions of the
// settings, the file's facts and the request; the session only asks them
// and writes what they return.

namespace phonon::http {

/// What the redirect decision and the Location need; redirects are off
/// when default-made.
struct redirect_policy {
  bool enabled = false;
  /// storage.s3.redirect_min_bytes: smaller files are served by the node.
  uint64_t min_bytes = 1024ull * 1024;
  /// storage.s3.redirect_ttl.
  std::chrono::seconds ttl{300};
  /// The bucket as clients reach it: `endpoint` is
  /// storage.s3.public_endpoint (or storage.s3.endpoint), with the region,
  /// bucket, prefix, addressing and keys of storage.s3.*.
  persistence::s3::settings bucket;
  /// The folder of this node's local copies (storage.local.base_path as
  /// the blob store opened it): a file_ref's path below it is
  /// `<user>/<phrase>/<revision>/<name>`, the object's key.
  std::string local_base;
};

/// True when the answer planned as `plan` (plan_file of `file` and `req`)
/// is to be a redirect instead: redirects on; a GET (never HEAD) of an
/// audio format (`route_format` m4a, wav, mp3, ogg, opus, flac, webm; never
/// a waveform) whose file has at least `min_bytes`, planned as 200 or 206
/// (a 304 and a 416 are answered by the node: they need no bytes).
bool should_redirect(const redirect_policy& policy,
                     const actors::file_ref& file,
                     std::string_view route_format, const file_request& req,
                     const file_plan& plan);

/// The object key (below the bucket's prefix) that `path`, a local copy
/// under `local_base`, holds: "<user>/<phrase>/<revision>/<name>" when it
/// is one of blob_layout's names, else std::nullopt.
std::optional<std::string> object_key_of(std::string_view local_base,
                                         std::string_view path);

/// The `302 Found` answer for `file`: Location a presigned GET of its
/// object valid for the policy's ttl from `now`, asking the bucket to
/// answer with the file's Content-Type and `disposition` (the
/// Content-Disposition the node would send; none when empty);
/// Cache-Control private, no-store (the URL is a credential); empty body.
/// std::nullopt when the file is no object of the bucket (object_key_of).
std::optional<reply> redirect_reply(const redirect_policy& policy,
                                    const actors::file_ref& file,
                                    std::string_view disposition,
                                    std::time_t now);

/// The origin ("scheme://host[:port]") presigned URLs of `policy` name, for
/// the console's Content-Security-Policy (media-src); empty when redirects
/// are off.
std::string redirect_origin(const redirect_policy& policy);

} // namespace phonon::http
