// docs/openapi.yaml and the server agree: every route the server answers is
// a path of the document, and every status the server really produced in a
// short run is documented under that path and method.
//
// There is no YAML library in this target, so the document is read as text
// and navigated by indentation (paths at 2 spaces, methods at 4, response
// codes at 8), which is how docs/openapi.yaml is written.

#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "tests/integration/support.hpp"

using namespace phonon::integration;

namespace {

namespace fs = std::filesystem;

/// The lines of docs/openapi.yaml (from $PHONON_SOURCE_DIR).
std::vector<std::string> spec_lines() {
  const char* root = std::getenv("PHONON_SOURCE_DIR");
  if (root == nullptr || *root == '\0')
    throw std::runtime_error("set PHONON_SOURCE_DIR to the repository root");
  auto text = read_file(fs::path{root} / "docs" / "openapi.yaml");
  std::vector<std::string> lines;
  std::istringstream in{text};
  for (std::string line; std::getline(in, line);)
    lines.push_back(line);
  return lines;
}

size_t indent_of(const std::string& line) {
  auto pos = line.find_first_not_of(' ');
  return pos == std::string::npos ? line.size() : pos;
}

bool is_blank_or_comment(const std::string& line) {
  auto pos = line.find_first_not_of(' ');
  return pos == std::string::npos || line[pos] == '#';
}

/// Lines [first, last) of the block whose key line is exactly
/// `indent` spaces + `key` + ':' and which starts at or after `from`
/// (stopping at `to`); the block ends at the next line indented `indent`
/// or less. std::nullopt when there is no such key.
std::optional<std::pair<size_t, size_t>>
find_block(const std::vector<std::string>& lines, size_t from, size_t to,
           size_t indent, const std::string& key) {
  auto wanted = std::string(indent, ' ') + key + ":";
  for (size_t i = from; i < to; ++i) {
    if (lines[i] != wanted)
      continue;
    size_t end = i + 1;
    while (end < to
           && (is_blank_or_comment(lines[end])
               || indent_of(lines[end]) > indent))
      ++end;
    return std::make_pair(i + 1, end);
  }
  return std::nullopt;
}

/// The block of `path` (a key under the top-level `paths:`).
std::optional<std::pair<size_t, size_t>>
path_block(const std::vector<std::string>& lines, const std::string& path) {
  auto paths = find_block(lines, 0, lines.size(), 0, "paths");
  if (!paths)
    return std::nullopt;
  return find_block(lines, paths->first, paths->second, 2, path);
}

/// True when `path` has operation `method` with a response `status`.
bool documents(const std::vector<std::string>& lines, const std::string& path,
               const std::string& method, unsigned status) {
  auto p = path_block(lines, path);
  if (!p)
    return false;
  auto op = find_block(lines, p->first, p->second, 4, method);
  if (!op)
    return false;
  auto responses = find_block(lines, op->first, op->second, 6, "responses");
  if (!responses)
    return false;
  auto code = "'" + std::to_string(status) + "'";
  return find_block(lines, responses->first, responses->second, 8, code)
    .has_value();
}

/// One exchange of the run: the route template, the method and the status
/// the server answered.
struct observed {
  std::string path;
  std::string method;
  unsigned status;
};

} // namespace

TEST_CASE("every route and every status the server produced is in "
          "docs/openapi.yaml",
          "[integration][openapi]") {
  auto lines = spec_lines();

  SECTION("every route is a path with its methods") {
    struct route_methods {
      std::string path;
      std::vector<std::string> methods;
    };
    std::vector<route_methods> routes{
      {"/audio/user/{user_id}/phrase/{phrase_id}",
       {"post", "put", "get", "head", "delete"}},
      {"/audio/user/{user_id}/phrase/{phrase_id}/{format}", {"get", "head"}},
      {"/audio/user/{user_id}", {"get", "head"}},
      {"/healthz", {"get", "head"}},
      {"/readyz", {"get", "head"}},
      {"/metrics", {"get", "head"}},
    };
    for (auto& r : routes) {
      INFO("path " << r.path);
      auto p = path_block(lines, r.path);
      REQUIRE(p.has_value());
      for (auto& m : r.methods) {
        INFO("method " << m);
        CHECK(find_block(lines, p->first, p->second, 4, m).has_value());
      }
    }
  }

  SECTION("statuses of a real run are documented where they happened") {
    server_process srv;
    srv.start();
    auto port = srv.port();
    const auto& fx = audio_fixtures();
    auto m4a = read_file(fx.m4a);
    auto png = read_file(fx.png);
    const std::string recording = "/audio/user/{user_id}/phrase/{phrase_id}";
    const std::string audio = recording + "/{format}";
    std::vector<observed> seen;
    auto note = [&](const std::string& path, const std::string& method,
                    const http_response& res, unsigned expected) {
      // The run must produce what it means to produce, or the check of the
      // document below would prove less than it says.
      CHECK(res.status == expected);
      seen.push_back({path, method, res.status});
    };

    note(recording, "post",
         upload_file(port, "/audio/user/7/phrase/1", m4a), 201);
    note(recording, "post",
         upload_file(port, "/audio/user/7/phrase/1", m4a), 409);
    note(recording, "post",
         upload_file(port, "/audio/user/abc/phrase/1", m4a), 400);
    note(recording, "post",
         upload_file(port, "/audio/user/7/phrase/2", png, "x.m4a"), 415);
    note(recording, "get", http_get(port, "/audio/user/7/phrase/404"), 404);
    note(recording, "get", http_get(port, "/audio/user/7/phrase/1"), 200);
    note(audio, "get", http_get(port, "/audio/user/7/phrase/404/m4a"), 404);
    note(audio, "get", http_get(port, "/audio/user/7/phrase/1/aiff"), 400);
    // Once the master exists every format can be served (no 409).
    wait_until_settled(port, "/audio/user/7/phrase/1");
    note(audio, "get", http_get(port, "/audio/user/7/phrase/1/m4a"), 200);
    note("/audio/user/{user_id}", "get", http_get(port, "/audio/user/7"),
         200);
    note("/healthz", "get", http_get(port, "/healthz"), 200);
    note("/metrics", "get", http_get(port, "/metrics"), 200);

    for (auto& o : seen) {
      INFO(o.method << " " << o.path << " answered " << o.status);
      CHECK(documents(lines, o.path, o.method, o.status));
    }
  }
}
