#include "tests/integration/media_support.hpp"

#include <cctype>
#include <cstdlib>
#include <stdexcept>
#include <thread>

#include <catch2/catch.hpp>

namespace phonon::integration {

namespace fs = std::filesystem;

void make_media(const std::string& args, const fs::path& out) {
  auto r = run("ffmpeg -nostdin -hide_banner -v error -y " + args + " "
               + shell_quote(out.string()));
  std::error_code ec;
  if (!r.ok() || !fs::exists(out, ec) || fs::file_size(out, ec) == 0)
    throw std::runtime_error("ffmpeg failed making " + out.string() + ": "
                             + r.output);
}

std::vector<mp4_box> mp4_top_level_boxes(std::string_view bytes) {
  std::vector<mp4_box> result;
  auto byte = [&](uint64_t i) {
    return static_cast<uint64_t>(static_cast<unsigned char>(bytes[i]));
  };
  uint64_t pos = 0;
  while (pos + 8 <= bytes.size() && result.size() < 4096) {
    uint64_t size = (byte(pos) << 24) | (byte(pos + 1) << 16)
                    | (byte(pos + 2) << 8) | byte(pos + 3);
    if (size == 1) {
      if (pos + 16 > bytes.size())
        break;
      size = 0;
      for (uint64_t i = 0; i < 8; ++i)
        size = (size << 8) | byte(pos + 8 + i);
    } else if (size == 0) {
      size = bytes.size() - pos; // box extends to the end of the file
    }
    if (size < 8)
      break;
    result.push_back({std::string{bytes.substr(pos + 4, 4)}, pos, size});
    pos += size;
  }
  return result;
}

std::optional<uint64_t> mp4_box_offset(std::string_view bytes,
                                       std::string_view type) {
  for (auto& box : mp4_top_level_boxes(bytes))
    if (box.type == type)
      return box.offset;
  return std::nullopt;
}

bool mp3_has_xing_or_info(std::string_view bytes) {
  size_t pos = 0;
  // ID3v2: "ID3", version (2), flags (1), syncsafe size (4).
  if (bytes.size() >= 10 && bytes.substr(0, 3) == "ID3") {
    size_t size = 0;
    for (size_t i = 6; i < 10; ++i)
      size = (size << 7) | (static_cast<unsigned char>(bytes[i]) & 0x7f);
    pos = 10 + size;
    if (static_cast<unsigned char>(bytes[5]) & 0x10)
      pos += 10; // footer
  }
  // The first frame sync after the tag.
  while (pos + 4 <= bytes.size()
         && !(static_cast<unsigned char>(bytes[pos]) == 0xff
              && (static_cast<unsigned char>(bytes[pos + 1]) & 0xe0) == 0xe0))
    ++pos;
  if (pos + 4 > bytes.size())
    return false;
  // The Xing/Info tag sits after the side information, at most 36 bytes
  // into the frame; looking through the first 200 bytes of the frame is
  // enough and cannot reach into the next frame's header.
  auto frame = bytes.substr(pos, 200);
  return frame.find("Xing") != std::string_view::npos
         || frame.find("Info") != std::string_view::npos;
}

namespace {

/// Parses `{a="x",b="y"}` starting at `pos` (at the '{'); advances `pos`
/// past the '}'. False on malformed text.
bool parse_labels(std::string_view line, size_t& pos, metric_labels& out) {
  ++pos; // '{'
  while (pos < line.size() && line[pos] != '}') {
    auto eq = line.find('=', pos);
    if (eq == std::string_view::npos || eq + 1 >= line.size()
        || line[eq + 1] != '"')
      return false;
    std::string key{line.substr(pos, eq - pos)};
    std::string value;
    pos = eq + 2;
    while (pos < line.size() && line[pos] != '"') {
      if (line[pos] == '\\' && pos + 1 < line.size()) {
        ++pos;
        value += line[pos] == 'n' ? '\n' : line[pos];
      } else {
        value += line[pos];
      }
      ++pos;
    }
    if (pos >= line.size())
      return false;
    ++pos; // closing quote
    out.emplace(std::move(key), std::move(value));
    if (pos < line.size() && line[pos] == ',')
      ++pos;
  }
  if (pos >= line.size())
    return false;
  ++pos; // '}'
  return true;
}

} // namespace

std::vector<std::pair<metric_labels, double>>
metric_samples(std::string_view text, std::string_view name) {
  std::vector<std::pair<metric_labels, double>> result;
  size_t start = 0;
  while (start < text.size()) {
    auto end = text.find('\n', start);
    if (end == std::string_view::npos)
      end = text.size();
    auto line = text.substr(start, end - start);
    start = end + 1;
    if (line.empty() || line[0] == '#')
      continue;
    if (line.substr(0, name.size()) != name || line.size() == name.size())
      continue;
    size_t pos = name.size();
    metric_labels labels;
    if (line[pos] == '{') {
      if (!parse_labels(line, pos, labels))
        continue;
    } else if (line[pos] != ' ') {
      continue; // a longer metric name with this prefix
    }
    while (pos < line.size() && line[pos] == ' ')
      ++pos;
    std::string number{line.substr(pos)};
    if (auto sp = number.find(' '); sp != std::string::npos)
      number.resize(sp); // drop a timestamp
    char* stop = nullptr;
    double value = std::strtod(number.c_str(), &stop);
    if (number.empty() || stop == number.c_str())
      continue;
    result.emplace_back(std::move(labels), value);
  }
  return result;
}

std::optional<double> metric_value(std::string_view text,
                                   std::string_view name,
                                   const metric_labels& labels) {
  for (auto& [ls, v] : metric_samples(text, name))
    if (ls == labels)
      return v;
  return std::nullopt;
}

double counter_value(std::string_view text, std::string_view name,
                     const metric_labels& labels) {
  return metric_value(text, name, labels).value_or(0.0);
}

std::string fetch_metrics(uint16_t port) {
  auto res = http_get(port, "/metrics");
  REQUIRE(res.status == 200);
  return res.body;
}

void expect_json_error(const http_response& res) {
  INFO("error body: " << res.body);
  CHECK(res.header("Content-Type").rfind("application/json", 0) == 0);
  auto doc = res.json();
  REQUIRE(doc.is_object());
  REQUIRE(doc.contains("message"));
  REQUIRE(doc["message"].is_string());
  CHECK_FALSE(doc["message"].get<std::string>().empty());
}

nlohmann::json require_ready(uint16_t port, const std::string& target,
                             std::chrono::milliseconds limit) {
  auto meta = wait_until_settled(port, target, limit);
  INFO("metadata of " << target << ": "
                      << (meta.is_discarded() ? "<none>" : meta.dump()));
  REQUIRE(meta.is_object());
  REQUIRE(meta.value("status", "") == "ready");
  return meta;
}

uint64_t bytes_below(const fs::path& dir) {
  uint64_t total = 0;
  std::error_code ec;
  for (fs::recursive_directory_iterator it{dir, ec}, end; !ec && it != end;
       it.increment(ec)) {
    std::error_code ec2;
    if (!it->is_regular_file(ec2))
      continue;
    // A file evicted between the listing and this call reports an error
    // (and size -1): it no longer counts.
    auto size = it->file_size(ec2);
    if (!ec2)
      total += size;
  }
  return total;
}

uint64_t cache_bytes_below(const fs::path& dir) {
  uint64_t total = 0;
  std::error_code ec;
  for (fs::recursive_directory_iterator it{dir, ec}, end; !ec && it != end;
       it.increment(ec)) {
    std::error_code ec2;
    if (it->is_directory(ec2) && it->path().filename() == "cache")
      total += bytes_below(it->path());
  }
  return total;
}

} // namespace phonon::integration
