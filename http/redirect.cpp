#include "http/redirect.hpp"

#include <filesystem>

#include "media/formats.hpp"
#include "persistence/blob_layout.hpp"
#include "persistence/s3/presigned_url.hpp"

namespace phonon::http {

namespace {

/// True for the names of audio objects: the original, the WAV master and a
/// derived audio format (never a waveform).
bool audio_object(std::string_view name) {
  using persistence::blob_layout;
  if (name == blob_layout::original_name || name == blob_layout::master_name)
    return true;
  auto fmt = blob_layout::format_of(name);
  return fmt && media::parse_format(*fmt).has_value();
}

} // namespace

bool should_redirect(const redirect_policy& policy,
                     const actors::file_ref& file,
                     std::string_view route_format, const file_request& req,
                     const file_plan& plan) {
  if (!policy.enabled || req.head || file.size < policy.min_bytes)
    return false;
  if (!media::parse_format(std::string{route_format}))
    return false;
  return plan.status == 200 || plan.status == 206;
}

std::optional<std::string> object_key_of(std::string_view local_base,
                                         std::string_view path) {
  namespace fs = std::filesystem;
  if (local_base.empty() || path.empty())
    return std::nullopt;
  auto base = fs::path{std::string{local_base}}.lexically_normal();
  auto file = fs::path{std::string{path}}.lexically_normal();
  auto rel = file.lexically_relative(base);
  if (rel.empty() || rel.is_absolute() || *rel.begin() == "..")
    return std::nullopt;
  auto text = rel.generic_string();
  auto key = persistence::blob_layout::parse(text);
  if (!key || !audio_object(key->name))
    return std::nullopt;
  return persistence::blob_layout::relative(*key);
}

std::optional<reply> redirect_reply(const redirect_policy& policy,
                                    const actors::file_ref& file,
                                    std::string_view disposition,
                                    std::time_t now) {
  auto key = object_key_of(policy.local_base, file.path);
  if (!key)
    return std::nullopt;
  persistence::s3::query_list overrides;
  if (!file.content_type.empty())
    overrides.push_back({"response-content-type", file.content_type});
  if (!disposition.empty())
    overrides.push_back(
      {"response-content-disposition", std::string{disposition}});
  reply r;
  r.status = 302;
  r.content_type.clear();
  r.headers = {
    {"Location", persistence::s3::presigned_get_url(
                   policy.bucket, *key, overrides, policy.ttl, now)},
    // The URL is a credential that expires: never stored by a cache.
    {"Cache-Control", "private, no-store"},
  };
  return r;
}

std::string redirect_origin(const redirect_policy& policy) {
  if (!policy.enabled)
    return {};
  return persistence::s3::presigned_origin(policy.bucket);
}

} // namespace phonon::http
