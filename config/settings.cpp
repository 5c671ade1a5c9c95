#include "config/settings.hpp"

#include <cctype>
#include <cstddef>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <limits>
#include <optional>
#include <string_view>
#include <utility>

#include <yaml-cpp/yaml.h>

namespace phonon::config {

namespace {

// -- parsing of single values ---------------------------------------------

/// Thrown by the value parsers; the caller adds the key and the source.
struct bad_value {
  std::string expected;
};

char to_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string lower(std::string_view text) {
  std::string result;
  result.reserve(text.size());
  for (auto c : text)
    result += to_lower(c);
  return result;
}

std::string_view trim(std::string_view text) {
  auto is_space = [](char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
  };
  while (!text.empty() && is_space(text.front()))
    text.remove_prefix(1);
  while (!text.empty() && is_space(text.back()))
    text.remove_suffix(1);
  return text;
}

/// Parses ASCII decimal digits into an unsigned value; nullopt on anything
/// else or on overflow.
std::optional<uint64_t> parse_digits(std::string_view text) {
  if (text.empty())
    return std::nullopt;
  uint64_t result = 0;
  constexpr auto max = std::numeric_limits<uint64_t>::max();
  for (auto c : text) {
    if (c < '0' || c > '9')
      return std::nullopt;
    auto digit = static_cast<uint64_t>(c - '0');
    if (result > (max - digit) / 10)
      return std::nullopt;
    result = result * 10 + digit;
  }
  return result;
}

/// A decimal integer, optionally negative (so that validate() can name the
/// range in its message).
int parse_int(std::string_view text) {
  const bad_value err{"an integer"};
  text = trim(text);
  bool negative = !text.empty() && text.front() == '-';
  if (negative)
    text.remove_prefix(1);
  auto value = parse_digits(text);
  constexpr auto max = static_cast<uint64_t>(std::numeric_limits<int>::max());
  if (!value || *value > max + (negative ? 1 : 0))
    throw err;
  if (negative)
    return static_cast<int>(-static_cast<int64_t>(*value));
  return static_cast<int>(*value);
}

uint16_t parse_port(std::string_view text, uint16_t min) {
  bad_value err{"an integer " + std::to_string(min) + "..65535"};
  auto value = parse_digits(trim(text));
  if (!value || *value < min || *value > 65535)
    throw err;
  return static_cast<uint16_t>(*value);
}

/// A byte count: plain digits or digits with a unit. Binary units (KiB, MiB,
/// GiB, TiB) are powers of 1024, decimal ones (KB, MB, GB, TB) powers of
/// 1000; units are case-insensitive and may follow a space.
uint64_t parse_size(std::string_view text, uint64_t max) {
  const bad_value err{"a size in bytes (e.g. 1048576, 512KiB, 10MiB)"};
  text = trim(text);
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9')
    ++digits;
  auto number = parse_digits(text.substr(0, digits));
  if (!number)
    throw err;
  auto unit = lower(trim(text.substr(digits)));
  static const std::pair<const char*, uint64_t> units[] = {
    {"", 1},
    {"b", 1},
    {"kb", 1000ull},
    {"mb", 1000ull * 1000},
    {"gb", 1000ull * 1000 * 1000},
    {"tb", 1000ull * 1000 * 1000 * 1000},
    {"kib", 1ull << 10},
    {"mib", 1ull << 20},
    {"gib", 1ull << 30},
    {"tib", 1ull << 40},
  };
  for (auto& [name, factor] : units) {
    if (unit == name) {
      if (*number > max / factor)
        throw err;
      return *number * factor;
    }
  }
  throw err;
}

bool parse_bool(std::string_view text) {
  auto value = lower(trim(text));
  if (value == "true" || value == "1" || value == "yes")
    return true;
  if (value == "false" || value == "0" || value == "no")
    return false;
  throw bad_value{"a boolean (true/false, yes/no, 1/0)"};
}

/// Comma-separated items, each trimmed; empty items are dropped.
std::vector<std::string> parse_list(std::string_view text) {
  std::vector<std::string> items;
  while (!text.empty()) {
    auto comma = text.find(',');
    auto item = trim(text.substr(0, comma));
    if (!item.empty())
      items.emplace_back(item);
    if (comma == std::string_view::npos)
      break;
    text.remove_prefix(comma + 1);
  }
  return items;
}

// -- the key table ---------------------------------------------------------

/// Sets one setting from its text; throws bad_value.
using setter = void (*)(settings&, const std::string&);

struct key_info {
  const char* path;
  setter set;
  /// Strings may be empty or YAML null; other kinds need a value.
  bool is_string;
  /// A secret: taken only from the environment (or its `_file` key), never
  /// from the config file or the command line (which other users see in
  /// `ps`), and never shown in a message.
  bool secret = false;
  /// A list: a YAML sequence of scalars, or comma-separated text.
  bool list = false;
};

constexpr uint64_t max_u64 = std::numeric_limits<uint64_t>::max();
constexpr uint64_t max_u32 = std::numeric_limits<uint32_t>::max();

// clang-format off
const key_info keys[] = {
  {"server.host", [](settings& s, const std::string& v) {
     s.server.host = v; }, true},
  {"server.port", [](settings& s, const std::string& v) {
     s.server.port = parse_port(v, 0); }, false},
  {"server.threads", [](settings& s, const std::string& v) {
     s.server.threads = parse_int(v); }, false},
  {"server.max_upload_size", [](settings& s, const std::string& v) {
     s.server.max_upload_size = parse_size(v, max_u64); }, false},
  {"server.request_timeout", [](settings& s, const std::string& v) {
     s.server.request_timeout = parse_int(v); }, false},
  {"server.max_duration", [](settings& s, const std::string& v) {
     s.server.max_duration = parse_int(v); }, false},
  {"server.max_header_size", [](settings& s, const std::string& v) {
     s.server.max_header_size = static_cast<uint32_t>(parse_size(v, max_u32));
   }, false},
  {"server.header_timeout", [](settings& s, const std::string& v) {
     s.server.header_timeout = parse_int(v); }, false},
  {"server.idle_timeout", [](settings& s, const std::string& v) {
     s.server.idle_timeout = parse_int(v); }, false},
  {"server.max_connections", [](settings& s, const std::string& v) {
     s.server.max_connections = parse_int(v); }, false},
  {"server.cors_origins", [](settings& s, const std::string& v) {
     s.server.cors_origins = parse_list(v); }, true, false, true},
  {"server.console", [](settings& s, const std::string& v) {
     s.server.console = parse_bool(v); }, false},
  {"limits.per_user_inflight", [](settings& s, const std::string& v) {
     s.limits.per_user_inflight = parse_int(v); }, false},
  {"database.driver", [](settings& s, const std::string& v) {
     s.database.driver = v; }, true},
  {"database.sqlite.path", [](settings& s, const std::string& v) {
     s.database.sqlite_path = v; }, true},
  {"database.mysql.host", [](settings& s, const std::string& v) {
     s.database.mysql.host = v; }, true},
  {"database.mysql.port", [](settings& s, const std::string& v) {
     s.database.mysql.port = parse_port(v, 1); }, false},
  {"database.mysql.database", [](settings& s, const std::string& v) {
     s.database.mysql.database = v; }, true},
  {"database.mysql.username", [](settings& s, const std::string& v) {
     s.database.mysql.username = v; }, true},
  {"database.mysql.password", [](settings& s, const std::string& v) {
     s.database.mysql.password = v; }, true},
  {"database.mysql.pool_size", [](settings& s, const std::string& v) {
     s.database.mysql.pool_size = parse_int(v); }, false},
  {"storage.type", [](settings& s, const std::string& v) {
     s.storage.type = v; }, true},
  {"storage.local.base_path", [](settings& s, const std::string& v) {
     s.storage.local_base_path = v; }, true},
  {"storage.s3.endpoint", [](settings& s, const std::string& v) {
     s.storage.s3.endpoint = v; }, true},
  {"storage.s3.region", [](settings& s, const std::string& v) {
     s.storage.s3.region = v; }, true},
  {"storage.s3.bucket", [](settings& s, const std::string& v) {
     s.storage.s3.bucket = v; }, true},
  {"storage.s3.prefix", [](settings& s, const std::string& v) {
     s.storage.s3.prefix = v; }, true},
  {"storage.s3.access_key", [](settings& s, const std::string& v) {
     s.storage.s3.access_key = v; }, true},
  {"storage.s3.secret_key", [](settings& s, const std::string& v) {
     s.storage.s3.secret_key = v; }, true, true},
  {"storage.s3.secret_key_file", [](settings& s, const std::string& v) {
     s.storage.s3.secret_key_file = v; }, true},
  {"storage.s3.path_style", [](settings& s, const std::string& v) {
     s.storage.s3.path_style = parse_bool(v); }, false},
  {"storage.s3.part_size", [](settings& s, const std::string& v) {
     s.storage.s3.part_size = parse_size(v, max_u64); }, false},
  {"storage.s3.redirect", [](settings& s, const std::string& v) {
     s.storage.s3.redirect = parse_bool(v); }, false},
  {"storage.s3.redirect_min_bytes", [](settings& s, const std::string& v) {
     s.storage.s3.redirect_min_bytes = parse_size(v, max_u64); }, false},
  {"storage.s3.redirect_ttl", [](settings& s, const std::string& v) {
     s.storage.s3.redirect_ttl = parse_int(v); }, false},
  {"storage.s3.public_endpoint", [](settings& s, const std::string& v) {
     s.storage.s3.public_endpoint = v; }, true},
  {"storage.cache_max_bytes", [](settings& s, const std::string& v) {
     s.storage.cache_max_bytes = parse_size(v, max_u64); }, false},
  {"storage.min_free_bytes", [](settings& s, const std::string& v) {
     s.storage.min_free_bytes = parse_size(v, max_u64); }, false},
  {"storage.memory_cache_bytes", [](settings& s, const std::string& v) {
     s.storage.memory_cache_bytes = parse_size(v, max_u64); }, false},
  {"storage.memory_cache_item_max", [](settings& s, const std::string& v) {
     s.storage.memory_cache_item_max = parse_size(v, max_u64); }, false},
  {"storage.read_model_entries", [](settings& s, const std::string& v) {
     s.storage.read_model_entries = parse_int(v); }, false},
  {"transcoder.workers", [](settings& s, const std::string& v) {
     s.transcoder.workers = parse_int(v); }, false},
  {"transcoder.queue_limit", [](settings& s, const std::string& v) {
     s.transcoder.queue_limit = parse_int(v); }, false},
  {"transcoder.queue_limit_bytes", [](settings& s, const std::string& v) {
     s.transcoder.queue_limit_bytes = parse_size(v, max_u64); }, false},
  {"transcoder.max_attempts", [](settings& s, const std::string& v) {
     s.transcoder.max_attempts = parse_int(v); }, false},
  {"transcoder.isolate", [](settings& s, const std::string& v) {
     s.transcoder.isolate = parse_bool(v); }, false},
  {"cluster.host", [](settings& s, const std::string& v) {
     s.cluster.host = v; }, true},
  {"cluster.port", [](settings& s, const std::string& v) {
     s.cluster.port = parse_port(v, 0); }, false},
  {"cluster.join", [](settings& s, const std::string& v) {
     s.cluster.join = v; }, true},
  {"cluster.shared_files", [](settings& s, const std::string& v) {
     s.cluster.shared_files = parse_bool(v); }, false},
  {"cluster.tls.certificate", [](settings& s, const std::string& v) {
     s.cluster.tls.certificate = v; }, true},
  {"cluster.tls.key", [](settings& s, const std::string& v) {
     s.cluster.tls.key = v; }, true},
  {"cluster.tls.ca", [](settings& s, const std::string& v) {
     s.cluster.tls.ca = v; }, true},
  {"auth.mode", [](settings& s, const std::string& v) {
     s.auth.mode = v; }, true},
  {"auth.algorithm", [](settings& s, const std::string& v) {
     s.auth.algorithm = v; }, true},
  {"auth.secret", [](settings& s, const std::string& v) {
     s.auth.secret = v; }, true, true},
  {"auth.secret_file", [](settings& s, const std::string& v) {
     s.auth.secret_file = v; }, true},
  {"auth.public_key_file", [](settings& s, const std::string& v) {
     s.auth.public_key_file = v; }, true},
  {"auth.issuer", [](settings& s, const std::string& v) {
     s.auth.issuer = v; }, true},
  {"auth.audience", [](settings& s, const std::string& v) {
     s.auth.audience = v; }, true},
  {"auth.leeway", [](settings& s, const std::string& v) {
     s.auth.leeway = parse_int(v); }, false},
  {"auth.link_secret", [](settings& s, const std::string& v) {
     s.auth.link_secret = v; }, true, true},
  {"auth.link_secret_file", [](settings& s, const std::string& v) {
     s.auth.link_secret_file = v; }, true},
  {"auth.link_ttl", [](settings& s, const std::string& v) {
     s.auth.link_ttl = parse_int(v); }, false},
  {"metrics.token", [](settings& s, const std::string& v) {
     s.metrics.token = v; }, true, true},
  {"metrics.token_file", [](settings& s, const std::string& v) {
     s.metrics.token_file = v; }, true},
  {"metrics.host", [](settings& s, const std::string& v) {
     s.metrics.host = v; }, true},
  {"metrics.port", [](settings& s, const std::string& v) {
     s.metrics.port = parse_port(v, 0); }, false},
  {"log.level", [](settings& s, const std::string& v) {
     s.log.level = v; }, true},
  {"log.format", [](settings& s, const std::string& v) {
     s.log.format = v; }, true},
};
// clang-format on

const key_info* find_key(std::string_view path) {
  for (auto& key : keys)
    if (path == key.path)
      return &key;
  return nullptr;
}

/// True when `path` is a section ("server", "database.mysql") that holds
/// keys.
bool is_section(std::string_view path) {
  for (auto& key : keys) {
    std::string_view full{key.path};
    if (full.size() > path.size() && full.substr(0, path.size()) == path
        && full[path.size()] == '.')
      return true;
  }
  return false;
}

std::string env_name(std::string_view path);

/// Applies one value, turning a parse failure into a config_error that names
/// the key and where the value came from.
void apply(settings& s, const key_info& key, const std::string& value,
           const std::string& source) {
  try {
    key.set(s, value);
  } catch (const bad_value& err) {
    throw config_error{std::string{key.path} + ": expected " + err.expected
                       + ", got '" + (key.secret ? "<secret>" : value)
                       + "' (" + source + ")"};
  }
}

/// Refuses a secret from a source other than the environment.
void refuse_secret(const key_info& key, const std::string& value,
                   const std::string& source) {
  if (key.secret && !value.empty())
    throw config_error{std::string{key.path}
                       + ": secrets are read only from the environment ("
                       + env_name(key.path) + ") or from "
                       + key.path + "_file, not " + source};
}

/// A key path as an error message shows it: control bytes (a NUL would
/// end the message for whoever prints it as a C string) become `\xHH`.
std::string shown(std::string_view path) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  for (char ch : path) {
    auto c = static_cast<unsigned char>(ch);
    if (c >= 0x20 && c != 0x7f) {
      out.push_back(ch);
    } else {
      out += "\\x";
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 0xf]);
    }
  }
  return out;
}

void apply(settings& s, std::string_view path, const std::string& value,
           const std::string& source) {
  auto key = find_key(path);
  if (key == nullptr)
    throw config_error{shown(path) + ": unknown key (" + source + ")"};
  refuse_secret(*key, value, source);
  apply(s, *key, value, source);
}

// -- YAML ------------------------------------------------------------------

const char* node_kind(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Sequence:
      return "a sequence";
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Null:
      return "nothing";
    default:
      return "a scalar";
  }
}

void apply_yaml(settings& s, const YAML::Node& map, const std::string& prefix,
                const std::string& source) {
  for (auto it = map.begin(); it != map.end(); ++it) {
    // Copies: the iterator hands out a temporary pair of nodes.
    YAML::Node name = it->first;
    YAML::Node value = it->second;
    if (!name.IsScalar())
      throw config_error{(prefix.empty() ? std::string{"<root>"} : prefix)
                         + ": keys must be plain names (" + source + ")"};
    auto path = prefix.empty() ? name.Scalar() : prefix + "." + name.Scalar();
    if (auto key = find_key(path)) {
      if (value.IsScalar()) {
        refuse_secret(*key, value.Scalar(), source);
        apply(s, *key, value.Scalar(), source);
      } else if (value.IsSequence() && key->list) {
        std::string joined;
        for (const auto& item : value) {
          if (!item.IsScalar())
            throw config_error{shown(path) + ": expected a list of values ("
                               + source + ")"};
          joined += item.Scalar() + ",";
        }
        apply(s, *key, joined, source);
      } else if (value.IsNull() && key->is_string) {
        apply(s, *key, std::string{}, source);
      } else {
        throw config_error{shown(path) + ": expected a value, got "
                           + node_kind(value) + " (" + source + ")"};
      }
    } else if (is_section(path)) {
      if (value.IsMap())
        apply_yaml(s, value, path, source);
      else if (!value.IsNull())
        throw config_error{shown(path) + ": expected a mapping, got "
                           + node_kind(value) + " (" + source + ")"};
    } else {
      throw config_error{shown(path) + ": unknown key (" + source + ")"};
    }
  }
}

void apply_file(settings& s, const std::string& file) {
  auto source = "in " + file;
  YAML::Node root;
  {
    std::ifstream in{file};
    if (!in)
      throw config_error{"cannot read config file '" + file + "'"};
    try {
      root = YAML::Load(in);
    } catch (const YAML::Exception& err) {
      throw config_error{"config file '" + file + "': " + err.what()};
    }
  }
  if (root.IsNull())
    return;
  if (!root.IsMap())
    throw config_error{"config file '" + file
                       + "': expected a mapping at the top level"};
  try {
    apply_yaml(s, root, "", source);
  } catch (const YAML::Exception& err) {
    throw config_error{"config file '" + file + "': " + err.what()};
  }
}

// -- environment -----------------------------------------------------------

std::string env_name(std::string_view path) {
  std::string result = "APP_";
  for (auto c : path)
    result += c == '.' ? '_' : static_cast<char>(std::toupper(
                                 static_cast<unsigned char>(c)));
  return result;
}

void apply_env(settings& s, const env_lookup& env) {
  if (!env)
    return;
  for (auto& key : keys) {
    auto name = env_name(key.path);
    if (auto value = env(name.c_str()))
      apply(s, key, value, "from " + name);
  }
}

// -- command line ----------------------------------------------------------

/// One `key.path=value` assignment taken from the command line.
struct assignment {
  std::string path;
  std::string value;
  std::string source;
};

std::string join_path(const std::string& dir, const char* name) {
  if (!dir.empty() && dir.back() == '/')
    return dir + name;
  return dir + "/" + name;
}

bool file_exists(const std::string& path) {
  std::ifstream in{path};
  return static_cast<bool>(in);
}

/// Reads a secret from `file` into `secret` when `file` is set; one
/// trailing newline (as `echo` or an editor leaves) is dropped.
void read_secret_file(const char* file_key, const std::string& file,
                      const char* secret_key, std::string& secret) {
  if (file.empty())
    return;
  if (!secret.empty())
    throw config_error{std::string{secret_key} + ": set either it or "
                       + file_key + ", not both"};
  std::ifstream in{file, std::ios::binary};
  if (!in)
    throw config_error{std::string{file_key} + ": cannot read '" + file
                       + "'"};
  std::string text{std::istreambuf_iterator<char>{in},
                   std::istreambuf_iterator<char>{}};
  if (!text.empty() && text.back() == '\n')
    text.pop_back();
  if (!text.empty() && text.back() == '\r')
    text.pop_back();
  secret = std::move(text);
}

} // namespace

settings load_settings(const std::vector<std::string>& args,
                       const env_lookup& env, std::vector<std::string>* rest) {
  static const std::pair<const char*, const char*> simple_flags[] = {
    {"--port", "server.port"},
    {"--host", "server.host"},
    {"--workers", "transcoder.workers"},
    {"--join", "cluster.join"},
    {"--log-level", "log.level"},
  };
  std::optional<std::string> config_file;
  std::vector<assignment> overrides;
  for (size_t i = 0; i < args.size(); ++i) {
    const auto& arg = args[i];
    std::string flag = arg;
    std::optional<std::string> inline_value;
    if (arg.size() > 2 && arg.compare(0, 2, "--") == 0) {
      auto eq = arg.find('=');
      if (eq != std::string::npos) {
        flag = arg.substr(0, eq);
        inline_value = arg.substr(eq + 1);
      }
    }
    auto known = flag == "--config" || flag == "--data-dir" || flag == "--set";
    for (auto& [name, path] : simple_flags)
      known = known || flag == name;
    if (!known) {
      if (rest == nullptr)
        throw config_error{"unknown command-line argument '" + arg + "'"};
      rest->push_back(arg);
      continue;
    }
    std::string value;
    if (inline_value) {
      value = std::move(*inline_value);
    } else {
      if (i + 1 >= args.size())
        throw config_error{flag + ": missing value"};
      value = args[++i];
    }
    auto source = "from " + flag;
    if (flag == "--config") {
      if (value.empty())
        throw config_error{"--config: expected a file path, got ''"};
      config_file = value;
    } else if (flag == "--data-dir") {
      if (value.empty())
        throw config_error{"--data-dir: expected a directory, got ''"};
      overrides.push_back(
        {"database.sqlite.path", join_path(value, "phonon.db"), source});
      overrides.push_back(
        {"storage.local.base_path", join_path(value, "audio"), source});
    } else if (flag == "--set") {
      auto eq = value.find('=');
      if (eq == std::string::npos || eq == 0)
        throw config_error{"--set: expected key.path=value, got '" + value
                           + "'"};
      overrides.push_back({value.substr(0, eq), value.substr(eq + 1), source});
    } else {
      for (auto& [name, path] : simple_flags)
        if (flag == name)
          overrides.push_back({path, value, source});
    }
  }
  if (!config_file && env) {
    if (auto path = env("APP_CONFIG")) {
      if (*path == '\0')
        throw config_error{"APP_CONFIG: expected a file path, got ''"};
      config_file = path;
    }
  }
  if (!config_file && file_exists("config/phonon.yaml"))
    config_file = "config/phonon.yaml";
  settings result;
  if (config_file)
    apply_file(result, *config_file);
  apply_env(result, env);
  for (auto& x : overrides)
    apply(result, x.path, x.value, x.source);
  read_secret_file("auth.secret_file", result.auth.secret_file, "auth.secret",
                   result.auth.secret);
  read_secret_file("auth.link_secret_file", result.auth.link_secret_file,
                   "auth.link_secret", result.auth.link_secret);
  read_secret_file("storage.s3.secret_key_file",
                   result.storage.s3.secret_key_file, "storage.s3.secret_key",
                   result.storage.s3.secret_key);
  read_secret_file("metrics.token_file", result.metrics.token_file,
                   "metrics.token", result.metrics.token);
  validate(result);
  return result;
}

namespace {

[[noreturn]] void invalid(const char* key, const std::string& expected,
                          const std::string& got) {
  throw config_error{std::string{key} + ": expected " + expected + ", got '"
                     + got + "'"};
}

void check_range(const char* key, int value, int min, int max) {
  if (value < min || value > max)
    invalid(key, "an integer " + std::to_string(min) + ".."
                   + std::to_string(max),
            std::to_string(value));
}

void check_one_of(const char* key, const std::string& value,
                  std::initializer_list<const char*> allowed) {
  std::string expected;
  for (auto x : allowed) {
    if (value == x)
      return;
    if (!expected.empty())
      expected += ", ";
    expected += x;
  }
  invalid(key, "one of " + expected, value);
}

void check_not_empty(const char* key, const std::string& value) {
  if (value.empty())
    invalid(key, "a non-empty value", value);
}

/// A CORS origin as browsers send it: `http(s)://host[:port]`, lower-case
/// scheme, no path.
bool is_origin(const std::string& o) {
  std::string_view rest{o};
  if (rest.substr(0, 7) == "http://")
    rest.remove_prefix(7);
  else if (rest.substr(0, 8) == "https://")
    rest.remove_prefix(8);
  else
    return false;
  if (rest.empty())
    return false;
  for (char c : rest)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-'
          || c == ':' || c == '[' || c == ']'))
      return false;
  return true;
}

void check_cors(const settings& s) {
  const auto& list = s.server.cors_origins;
  for (auto& o : list) {
    if (o == "*") {
      if (list.size() != 1)
        invalid("server.cors_origins", "either [\"*\"] or a list of origins",
                o);
      if (s.auth.enabled())
        throw config_error{"server.cors_origins: \"*\" is refused together "
                           "with auth.mode token; list the origins"};
    } else if (!is_origin(o)) {
      invalid("server.cors_origins",
              "origins of the form http(s)://host[:port]", o);
    }
  }
}

/// Secrets are described by their length only.
void check_secret(const char* key, const std::string& secret) {
  if (secret.size() < 32)
    throw config_error{std::string{key} + ": expected at least 32 bytes, got "
                       + std::to_string(secret.size())
                       + " (make one with: openssl rand -hex 32)"};
}

/// An S3 endpoint: http:// or https:// and host[:port], nothing else.
void check_endpoint(const char* key, const std::string& endpoint) {
  auto scheme_end = endpoint.find("://");
  auto authority = scheme_end == std::string::npos
                     ? std::string{}
                     : endpoint.substr(scheme_end + 3);
  while (!authority.empty() && authority.back() == '/')
    authority.pop_back();
  if ((endpoint.rfind("http://", 0) != 0 && endpoint.rfind("https://", 0) != 0)
      || authority.empty()
      || authority.find_first_of("/@?#") != std::string::npos)
    invalid(key,
            "an http:// or https:// URL of host[:port], without user info "
            "or path",
            endpoint);
}

void check_auth(const settings& s) {
  const auto& a = s.auth;
  check_one_of("auth.mode", a.mode, {"none", "token"});
  check_one_of("auth.algorithm", a.algorithm, {"HS256", "RS256", "ES256"});
  check_range("auth.leeway", a.leeway, 0, 3600);
  check_range("auth.link_ttl", a.link_ttl, 1, 7 * 24 * 3600);
  if (!a.enabled())
    return;
  if (a.algorithm == "HS256") {
    check_secret("auth.secret", a.secret);
  } else if (a.public_key_file.empty()) {
    throw config_error{"auth.public_key_file: required when auth.algorithm is "
                       + a.algorithm};
  } else if (!file_exists(a.public_key_file)) {
    throw config_error{"auth.public_key_file: cannot read '"
                       + a.public_key_file + "'"};
  }
  check_secret("auth.link_secret", a.link_secret);
  const auto& token = s.metrics.token;
  if (!token.empty()) {
    check_secret("metrics.token", token);
    // It travels as `Authorization: Bearer <token>` (RFC 6750 token68).
    for (char c : token)
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-'
            || c == '.' || c == '_' || c == '~' || c == '+' || c == '/'
            || c == '='))
        throw config_error{"metrics.token: expected letters, digits and "
                           "-._~+/= only (it is sent as a bearer token)"};
  }
}

} // namespace

void validate(const settings& s) {
  constexpr int int_max = std::numeric_limits<int>::max();
  check_not_empty("server.host", s.server.host);
  check_not_empty("metrics.host", s.metrics.host);
  check_range("server.threads", s.server.threads, 1, 256);
  if (s.server.max_upload_size < 1)
    invalid("server.max_upload_size", "a size of at least 1 byte", "0");
  check_range("server.request_timeout", s.server.request_timeout, 1,
              24 * 3600);
  check_range("server.max_duration", s.server.max_duration, 1, 24 * 3600);
  // Above 60 KiB one header field could pass the 64 KiB that Beast's
  // fields can hold (it throws beyond), and the session's read buffer is
  // bounded at 64 KiB.
  if (s.server.max_header_size < 1024 || s.server.max_header_size > 61440)
    invalid("server.max_header_size", "a size from 1KiB to 60KiB",
            std::to_string(s.server.max_header_size));
  check_range("server.header_timeout", s.server.header_timeout, 1,
              24 * 3600);
  check_range("server.idle_timeout", s.server.idle_timeout, 1, 24 * 3600);
  check_range("server.max_connections", s.server.max_connections, 1,
              1000000);
  check_range("limits.per_user_inflight", s.limits.per_user_inflight, 0,
              1000000);
  check_one_of("database.driver", s.database.driver, {"sqlite", "mysql"});
  if (s.database.driver == "sqlite") {
    check_not_empty("database.sqlite.path", s.database.sqlite_path);
  } else {
    check_not_empty("database.mysql.host", s.database.mysql.host);
    if (s.database.mysql.port == 0)
      invalid("database.mysql.port", "an integer 1..65535", "0");
    check_not_empty("database.mysql.database", s.database.mysql.database);
  }
  check_range("database.mysql.pool_size", s.database.mysql.pool_size, 1,
              1024);
  check_one_of("storage.type", s.storage.type, {"local", "s3"});
  if (s.storage.type == "s3") {
    const auto& s3 = s.storage.s3;
    check_endpoint("storage.s3.endpoint", s3.endpoint);
    if (!s3.public_endpoint.empty())
      check_endpoint("storage.s3.public_endpoint", s3.public_endpoint);
    check_range("storage.s3.redirect_ttl", s3.redirect_ttl, 1, 604800);
    if (s3.redirect_min_bytes < 1)
      invalid("storage.s3.redirect_min_bytes", "a size of at least 1 byte",
              "0");
    check_not_empty("storage.s3.region", s3.region);
    check_not_empty("storage.s3.bucket", s3.bucket);
    check_not_empty("storage.s3.access_key", s3.access_key);
    if (s3.secret_key.empty())
      throw config_error{"storage.s3.secret_key: required with storage.type "
                         "s3 (APP_STORAGE_S3_SECRET_KEY or "
                         "storage.s3.secret_key_file)"};
    if (s3.part_size < 5ull * 1024 * 1024)
      invalid("storage.s3.part_size", "a size of at least 5MiB",
              std::to_string(s3.part_size));
  }
  // Redirects hand out presigned URLs of the bucket: there is none with
  // local storage, and a setting that silently does nothing is worse than
  // a refused start.
  if (s.storage.s3.redirect && s.storage.type != "s3")
    throw config_error{"storage.s3.redirect: needs storage.type s3 (local "
                       "files are always served by the node)"};
  check_not_empty("storage.local.base_path", s.storage.local_base_path);
  // A cached file is read whole on an io thread: keep that read short.
  if (s.storage.memory_cache_item_max < 1
      || s.storage.memory_cache_item_max > 64ull * 1024 * 1024)
    invalid("storage.memory_cache_item_max", "a size from 1 byte to 64MiB",
            std::to_string(s.storage.memory_cache_item_max));
  check_range("storage.read_model_entries", s.storage.read_model_entries, -1,
              16 * 1024 * 1024);
  check_range("transcoder.workers", s.transcoder.workers, 0, 256);
  check_range("transcoder.queue_limit", s.transcoder.queue_limit, 1, int_max);
  if (s.transcoder.queue_limit_bytes < 1)
    invalid("transcoder.queue_limit_bytes", "a size of at least 1 byte",
            "0");
  check_range("transcoder.max_attempts", s.transcoder.max_attempts, 1,
              int_max);
  if (!s.cluster.join.empty()) {
    auto colon = s.cluster.join.rfind(':');
    auto port = colon == std::string::npos
                  ? std::nullopt
                  : parse_digits(std::string_view{s.cluster.join}.substr(
                    colon + 1));
    if (colon == 0 || !port || *port < 1 || *port > 65535)
      invalid("cluster.join", "HOST:PORT", s.cluster.join);
  }
  check_not_empty("cluster.host", s.cluster.host);
  {
    const auto& tls = s.cluster.tls;
    int set = !tls.certificate.empty() + !tls.key.empty() + !tls.ca.empty();
    if (set != 0 && set != 3)
      throw config_error{"cluster.tls: certificate, key and ca are set "
                         "together or not at all"};
  }
  check_cors(s);
  check_auth(s);
  check_one_of("log.level", s.log.level,
               {"trace", "debug", "info", "warn", "error"});
  check_one_of("log.format", s.log.format, {"text", "json"});
}

} // namespace phonon::config
