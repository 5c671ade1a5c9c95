#include "persistence/blob_layout.hpp"

#include <charconv>
#include <limits>

#include "persistence/blob_store.hpp"

namespace phonon::persistence {

namespace {

/// Allowed in names: [a-z0-9._-] plus one '/' between two components.
bool valid_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.'
         || c == '_' || c == '-';
}

/// Why `name` is not a valid name, nullptr when it is.
const char* name_problem(std::string_view name) {
  if (name.empty())
    return "empty";
  if (name.front() == '/')
    return "absolute";
  if (name.find("..") != std::string_view::npos)
    return "contains '..'";
  size_t slashes = 0;
  for (auto c : name) {
    if (c == '/')
      ++slashes;
    else if (!valid_name_char(c))
      return "character outside [a-z0-9._/-]";
  }
  if (slashes > 1)
    return "more than one folder level";
  if (name.back() == '/')
    return "ends with '/'";
  // A component that is exactly "." ("./x", "x/.") would name the revision
  // folder itself or a sibling of the right file.
  if (name == "." || name.substr(0, 2) == "./"
      || (name.size() >= 2 && name.substr(name.size() - 2) == "/."))
    return "component '.'";
  return nullptr;
}

/// A positive integer without sign or leading zeros, as id_text writes it.
std::optional<int64_t> parse_id(std::string_view s) {
  if (s.empty() || s.size() > 19 || s.front() == '0')
    return std::nullopt;
  int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size() || v <= 0)
    return std::nullopt;
  return v;
}

} // namespace

std::string blob_layout::derived_name(std::string_view format) {
  std::string out{cache_folder};
  out += '/';
  out += format;
  return out;
}

std::optional<std::string> blob_layout::format_of(std::string_view name) {
  if (name.size() <= cache_folder.size() + 1
      || name.substr(0, cache_folder.size()) != cache_folder
      || name[cache_folder.size()] != '/')
    return std::nullopt;
  return std::string{name.substr(cache_folder.size() + 1)};
}

std::string blob_layout::waveform_format(const waveform_params& p) {
  std::string out{"waveform-"};
  out += p.per_second ? "pps" : "spp";
  out += std::to_string(p.value);
  out += p.mono ? "-mono" : "-all";
  out += p.json ? ".json" : ".dat";
  return out;
}

std::optional<waveform_params>
blob_layout::parse_waveform_format(std::string_view format) {
  constexpr std::string_view prefix = "waveform-";
  if (format.substr(0, prefix.size()) != prefix)
    return std::nullopt;
  format.remove_prefix(prefix.size());
  waveform_params p;
  if (format.substr(0, 3) == "pps")
    p.per_second = true;
  else if (format.substr(0, 3) == "spp")
    p.per_second = false;
  else
    return std::nullopt;
  format.remove_prefix(3);
  auto dash = format.find('-');
  if (dash == std::string_view::npos)
    return std::nullopt;
  auto value = parse_id(format.substr(0, dash));
  if (!value || *value > std::numeric_limits<int32_t>::max())
    return std::nullopt;
  p.value = static_cast<int32_t>(*value);
  format.remove_prefix(dash + 1);
  if (format == "all.json" || format == "mono.json")
    p.json = true;
  else if (format == "all.dat" || format == "mono.dat")
    p.json = false;
  else
    return std::nullopt;
  p.mono = format.substr(0, 4) == "mono";
  return p;
}

blob_key blob_layout::original(int64_t user, int64_t phrase,
                               int64_t revision) {
  return {user, phrase, revision, std::string{original_name}};
}

blob_key blob_layout::master(int64_t user, int64_t phrase, int64_t revision) {
  return {user, phrase, revision, std::string{master_name}};
}

blob_key blob_layout::derived(int64_t user, int64_t phrase, int64_t revision,
                              std::string_view format) {
  return {user, phrase, revision, derived_name(format)};
}

std::string blob_layout::relative(const blob_key& key) {
  check_name(key.name);
  return revision_prefix(key.user_id, key.phrase_id, key.revision) + key.name;
}

std::string blob_layout::revision_prefix(int64_t user, int64_t phrase,
                                         int64_t revision) {
  return recording_prefix(user, phrase) + std::to_string(revision) + '/';
}

std::string blob_layout::recording_prefix(int64_t user, int64_t phrase) {
  return std::to_string(user) + '/' + std::to_string(phrase) + '/';
}

std::optional<blob_key> blob_layout::parse(std::string_view rel) {
  blob_key key;
  int64_t* ids[] = {&key.user_id, &key.phrase_id, &key.revision};
  for (auto* id : ids) {
    auto slash = rel.find('/');
    if (slash == std::string_view::npos)
      return std::nullopt;
    auto v = parse_id(rel.substr(0, slash));
    if (!v)
      return std::nullopt;
    *id = *v;
    rel.remove_prefix(slash + 1);
  }
  if (!valid_name(rel))
    return std::nullopt;
  key.name = std::string{rel};
  return key;
}

void blob_layout::check_name(std::string_view name) {
  if (auto why = name_problem(name))
    throw storage_error("invalid blob name '" + std::string{name}
                        + "': " + why);
}

bool blob_layout::valid_name(std::string_view name) noexcept {
  return name_problem(name) == nullptr;
}

} // namespace phonon::persistence
