// docs/openapi.yaml and the server agree: every route the server answers is
// a path of the document, and every status the server really produced in a
// short run (one with auth.mode none, one with auth.mode token and CORS) is
// documented under that path and method, with the response headers the
// server sent (of those a client relies on) and the metadata fields it sent.
//
// There is no YAML library in this target, so the document is read as text
// and navigated by indentation (paths at 2 spaces, methods at 4, response
// codes at 8, their headers at 10 and header names at 12; a response that
// is a `$ref` to components/responses is followed there: names at 4,
// headers at 6, header names at 8), which is how docs/openapi.yaml is
// written.

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/jwt_mint.hpp"
#include "tests/integration/s3rver_support.hpp"
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

/// A response object of the document: its lines and the indentation of
/// its keys (description, headers, content).
struct response_object {
  std::pair<size_t, size_t> block;
  size_t indent = 0;
};

/// The block `key` under components/`section` (e.g. responses, schemas).
std::optional<std::pair<size_t, size_t>>
component_block(const std::vector<std::string>& lines,
                const std::string& section, const std::string& key) {
  auto components = find_block(lines, 0, lines.size(), 0, "components");
  if (!components)
    return std::nullopt;
  auto sec = find_block(lines, components->first, components->second, 2,
                        section);
  if (!sec)
    return std::nullopt;
  return find_block(lines, sec->first, sec->second, 4, key);
}

/// The response documented for `status` of operation `method` on `path`,
/// following a `$ref: '#/components/responses/Name'`.
std::optional<response_object>
documented_response(const std::vector<std::string>& lines,
                    const std::string& path, const std::string& method,
                    unsigned status) {
  auto p = path_block(lines, path);
  if (!p)
    return std::nullopt;
  auto op = find_block(lines, p->first, p->second, 4, method);
  if (!op)
    return std::nullopt;
  auto responses = find_block(lines, op->first, op->second, 6, "responses");
  if (!responses)
    return std::nullopt;
  auto code = "'" + std::to_string(status) + "'";
  auto r = find_block(lines, responses->first, responses->second, 8, code);
  if (!r)
    return std::nullopt;
  const std::string ref = "          $ref: '#/components/responses/";
  for (size_t i = r->first; i < r->second; ++i) {
    if (lines[i].rfind(ref, 0) != 0)
      continue;
    auto name = lines[i].substr(ref.size());
    if (name.empty() || name.back() != '\'')
      return std::nullopt;
    name.pop_back();
    auto c = component_block(lines, "responses", name);
    if (!c)
      return std::nullopt;
    return response_object{*c, 6};
  }
  return response_object{*r, 10};
}

/// True when the response object lists header `name` under `headers`.
bool documents_header(const std::vector<std::string>& lines,
                      const response_object& r, const std::string& name) {
  auto headers = find_block(lines, r.block.first, r.block.second, r.indent,
                            "headers");
  return headers
         && find_block(lines, headers->first, headers->second, r.indent + 2,
                       name)
              .has_value();
}

/// True when schema `schema` (components/schemas) has property `name`.
bool documents_property(const std::vector<std::string>& lines,
                        const std::string& schema, const std::string& name) {
  auto s = component_block(lines, "schemas", schema);
  if (!s)
    return false;
  auto props = find_block(lines, s->first, s->second, 6, "properties");
  return props
         && find_block(lines, props->first, props->second, 8, name)
              .has_value();
}

/// Response headers a client relies on: when the server sends one, the
/// document must list it for that answer. (Content-Type and Content-Length
/// are described by `content`; `Vary: Origin` is on every answer while
/// CORS is configured and is described once in the document's intro.)
const std::vector<std::string>& tracked_headers() {
  static const std::vector<std::string> names{
    "Date",
    "X-Request-Id",
    "WWW-Authenticate",
    "Content-Disposition",
    "Allow",
    "Location",
    "Retry-After",
    "ETag",
    "Last-Modified",
    "Accept-Ranges",
    "Cache-Control",
    "Content-Range",
    "Access-Control-Allow-Origin",
    "Access-Control-Allow-Methods",
    "Access-Control-Allow-Headers",
    "Access-Control-Max-Age",
    "Access-Control-Expose-Headers",
  };
  return names;
}

/// One exchange of the run: the route template, the method and the status
/// the server answered, with the answer itself.
struct observed {
  std::string path;
  std::string method;
  unsigned status;
  http_response res;
};

/// Checks every exchange against the document: the status is documented
/// for its path and method, and so is each tracked header it carried.
void check_against(const std::vector<std::string>& lines,
                   const std::vector<observed>& seen) {
  for (auto& o : seen) {
    INFO(o.method << " " << o.path << " answered " << o.status);
    auto r = documented_response(lines, o.path, o.method, o.status);
    CHECK(r.has_value());
    if (!r)
      continue;
    // Every answer carries these two (API.md "Every answer").
    CHECK(o.res.has("Date"));
    CHECK(o.res.has("X-Request-Id"));
    for (auto& h : tracked_headers()) {
      if (!o.res.has(h))
        continue;
      INFO("header " << h << ": " << o.res.header(h));
      CHECK(documents_header(lines, *r, h));
    }
  }
}

/// Every key of a JSON object the server sent is a property of `schema`.
void check_fields(const std::vector<std::string>& lines,
                  const std::string& schema, const nlohmann::json& j) {
  INFO("schema " << schema << ": " << j.dump());
  REQUIRE(j.is_object());
  for (auto& item : j.items()) {
    INFO("field " << item.key());
    CHECK(documents_property(lines, schema, item.key()));
  }
}

const std::string recording = "/audio/user/{user_id}/phrase/{phrase_id}";
const std::string audio = recording + "/{format}";
const std::string links = recording + "/links";
const std::string waveform_json = recording + "/waveform.json";
const std::string waveform_dat = recording + "/waveform.dat";
const std::string user_list = "/audio/user/{user_id}";

/// A plain OPTIONS (no Origin) on a concrete path of every route.
const std::vector<std::pair<std::string, std::string>>& options_targets() {
  static const std::vector<std::pair<std::string, std::string>> t{
    {recording, "/audio/user/7/phrase/1"},
    {audio, "/audio/user/7/phrase/1/m4a"},
    {links, "/audio/user/7/phrase/1/links"},
    {waveform_json, "/audio/user/7/phrase/1/waveform.json"},
    {waveform_dat, "/audio/user/7/phrase/1/waveform.dat"},
    {user_list, "/audio/user/7"},
    {"/healthz", "/healthz"},
    {"/readyz", "/readyz"},
    {"/metrics", "/metrics"},
    {"/", "/"},
    {"/console/{file}", "/console/console.js"},
  };
  return t;
}

const std::string secret(40, 's');
const std::string link_secret(40, 'l');
const std::string metrics_token(40, 'm');

/// An HS256 token for user `sub` valid for an hour, plus `extra` claims
/// (",\"scope\":...").
std::string token_for(const std::string& sub, const std::string& extra = {},
                      int64_t exp_offset = 3600) {
  auto exp = static_cast<int64_t>(std::time(nullptr)) + exp_offset;
  return "Bearer "
         + jwt::mint(R"({"alg":"HS256","typ":"JWT"})",
                     R"({"sub":")" + sub + R"(","exp":)"
                       + std::to_string(exp) + extra + "}",
                     jwt::key::hs256(secret));
}

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
      {recording, {"post", "put", "get", "head", "delete", "options"}},
      {audio, {"get", "head", "options"}},
      {links, {"post", "options"}},
      {waveform_json, {"get", "head", "options"}},
      {waveform_dat, {"get", "head", "options"}},
      {user_list, {"get", "head", "options"}},
      {"/healthz", {"get", "head", "options"}},
      {"/readyz", {"get", "head", "options"}},
      {"/metrics", {"get", "head", "options"}},
      {"/", {"get", "head", "options"}},
      {"/console/{file}", {"get", "head", "options"}},
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
    std::vector<observed> seen;
    auto note = [&](const std::string& path, const std::string& method,
                    const http_response& res, unsigned expected) {
      // The run must produce what it means to produce, or the check of the
      // document below would prove less than it says.
      CHECK(res.status == expected);
      seen.push_back({path, method, res.status, res});
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
    auto meta = http_get(port, "/audio/user/7/phrase/1");
    note(recording, "get", meta, 200);
    check_fields(lines, "Recording", meta.json());
    note(audio, "get", http_get(port, "/audio/user/7/phrase/404/m4a"), 404);
    note(audio, "get", http_get(port, "/audio/user/7/phrase/1/aiff"), 400);
    // Once the master exists every format can be served (no 409).
    wait_until_settled(port, "/audio/user/7/phrase/1");
    note(audio, "get", http_get(port, "/audio/user/7/phrase/1/m4a"), 200);
    note(waveform_json, "get",
         http_get(port, "/audio/user/7/phrase/1/waveform.json"), 200);
    note(waveform_json, "get",
         http_get(port,
                  "/audio/user/7/phrase/1/waveform.json?pixels_per_second=0"),
         400);
    note(waveform_dat, "get",
         http_get(port, "/audio/user/7/phrase/1/waveform.dat"), 200);
    note(waveform_dat, "head",
         http_request(port, "HEAD", "/audio/user/7/phrase/1/waveform.dat"),
         200);
    note("/audio/user/{user_id}", "get", http_get(port, "/audio/user/7"),
         200);
    note("/healthz", "get", http_get(port, "/healthz"), 200);
    note("/metrics", "get", http_get(port, "/metrics"), 200);
    auto page = http_get(port, "/");
    note("/", "get", page, 200);
    note("/", "get", http_get(port, "/", {{"If-None-Match", page.header("ETag")}}),
         304);
    note("/console/{file}", "get", http_get(port, "/console/console.js"), 200);
    note("/console/{file}", "get", http_get(port, "/console/none.js"), 404);
    // Links without auth: plain paths and no expiry.
    auto plain_links = http_request(port, "POST",
                                    "/audio/user/7/phrase/1/links");
    note(links, "post", plain_links, 200);
    check_fields(lines, "SignedLinks", plain_links.json());
    CHECK(plain_links.json()["expires_at"].is_null());
    for (auto& [path, target] : options_targets())
      note(path, "options", http_request(port, "OPTIONS", target), 204);
    // No server.cors_origins: every preflight is refused.
    note(audio, "options",
         http_request(port, "OPTIONS", "/audio/user/7/phrase/1/m4a", {},
                      {{"Origin", "http://page.example"},
                       {"Access-Control-Request-Method", "GET"}}),
         403);

    check_against(lines, seen);
  }

  SECTION("with auth.mode token and CORS, the statuses of a real run are "
          "documented where they happened") {
    server_process srv;
    srv.set_env({{"APP_AUTH_SECRET", secret},
                 {"APP_AUTH_LINK_SECRET", link_secret},
                 {"APP_METRICS_TOKEN", metrics_token}});
    srv.start({"--set", "auth.mode=token", "--set",
               "server.cors_origins=http://page.example"});
    auto port = srv.port();
    auto m4a = read_file(audio_fixtures().m4a);
    auto upload = make_multipart({{"audio_file", "a.m4a", "audio/mp4", m4a}});
    const header_list owner{{"Authorization", token_for("7")}};
    const header_list other{{"Authorization", token_for("8")}};
    const header_list reader{
      {"Authorization", token_for("7", R"(,"scope":"audio:read")")}};
    const header_list expired{
      {"Authorization", token_for("7", {}, -3600)}};
    const header_list scraper{{"Authorization", "Bearer " + metrics_token}};
    auto with = [](header_list h, const std::string& k, const std::string& v) {
      h.emplace_back(k, v);
      return h;
    };
    std::vector<observed> seen;
    auto note = [&](const std::string& path, const std::string& method,
                    const http_response& res, unsigned expected) {
      INFO(method << " " << path << ": " << res.body);
      CHECK(res.status == expected);
      if (expected == 401)
        CHECK(res.header("WWW-Authenticate")
              == R"(Bearer realm="phonon", error="invalid_token")");
      seen.push_back({path, method, res.status, res});
    };

    // Uploads: without a token (refused from the head), then the owner's.
    note(recording, "post",
         http_request(port, "POST", "/audio/user/7/phrase/1", upload.body,
                      {{"Content-Type", upload.content_type}}),
         401);
    note(recording, "post",
         http_request(port, "POST", "/audio/user/7/phrase/1", upload.body,
                      with(owner, "Content-Type", upload.content_type)),
         201);
    note(recording, "put",
         http_request(port, "PUT", "/audio/user/7/phrase/1", upload.body,
                      with(reader, "Content-Type", upload.content_type)),
         403);

    // Metadata: the owner, nobody, another user, an expired token.
    note(recording, "get", http_get(port, "/audio/user/7/phrase/1", other),
         403);
    note(recording, "get", http_get(port, "/audio/user/7/phrase/1"), 401);
    note(recording, "get", http_get(port, "/audio/user/7/phrase/1", expired),
         401);
    note(recording, "head",
         http_request(port, "HEAD", "/audio/user/7/phrase/1"), 401);
    note(recording, "head",
         http_request(port, "HEAD", "/audio/user/7/phrase/1", {}, other),
         403);
    note(recording, "delete",
         http_request(port, "DELETE", "/audio/user/7/phrase/1", {}, reader),
         403);
    note(user_list, "get", http_get(port, "/audio/user/7"), 401);
    note(user_list, "get", http_get(port, "/audio/user/7", owner), 200);

    // Once the master exists every format can be served (no 409).
    nlohmann::json meta;
    for (int i = 0; i < 200; ++i) {
      auto res = http_get(port, "/audio/user/7/phrase/1", owner);
      meta = res.json();
      if (res.status != 200 || meta.value("status", "") != "processing")
        break;
      std::this_thread::sleep_for(std::chrono::milliseconds{50});
    }
    note(recording, "get", http_get(port, "/audio/user/7/phrase/1", owner),
         200);
    check_fields(lines, "Recording", meta);

    // Signed links.
    auto issued = http_request(port, "POST", "/audio/user/7/phrase/1/links",
                               {}, reader);
    note(links, "post", issued, 200);
    check_fields(lines, "SignedLinks", issued.json());
    CHECK(issued.json()["expires_at"].is_string());
    note(links, "post",
         http_request(port, "POST", "/audio/user/7/phrase/1/links"), 401);
    note(links, "post",
         http_request(port, "POST", "/audio/user/7/phrase/1/links", {},
                      other),
         403);
    note(links, "post",
         http_request(port, "POST", "/audio/user/7/phrase/404/links", {},
                      owner),
         404);
    auto link = issued.json()["formats"]["m4a"].get<std::string>();
    note(audio, "get", http_get(port, link), 200);
    CHECK(http_get(port, link).header("Content-Disposition")
          == R"(inline; filename="7-1.m4a")");
    note(audio, "head", http_request(port, "HEAD", link), 200);
    note(audio, "get", http_get(port, link, {{"Range", "bytes=0-9"}}), 206);
    auto tampered = link;
    tampered.back() = tampered.back() == 'A' ? 'B' : 'A';
    note(audio, "get", http_get(port, tampered), 401);
    note(audio, "head", http_request(port, "HEAD", tampered), 401);
    note(audio, "get", http_get(port, "/audio/user/7/phrase/1/m4a", other),
         403);

    // Operations: /metrics behind the scraper's or an admin token.
    note("/metrics", "get", http_get(port, "/metrics"), 401);
    note("/metrics", "get", http_get(port, "/metrics", owner), 403);
    note("/metrics", "get", http_get(port, "/metrics", scraper), 200);
    note("/metrics", "get",
         http_get(port, "/metrics",
                  {{"Authorization", token_for("1", R"(,"admin":true)")}}),
         200);
    note("/metrics", "head", http_request(port, "HEAD", "/metrics"), 401);
    note("/healthz", "get", http_get(port, "/healthz"), 200);

    // OPTIONS: open on every path, preflights by origin.
    for (auto& [path, target] : options_targets()) {
      note(path, "options", http_request(port, "OPTIONS", target), 204);
      auto ok = http_request(port, "OPTIONS", target, {},
                             {{"Origin", "http://page.example"},
                              {"Access-Control-Request-Method", "GET"}});
      note(path, "options", ok, 204);
      CHECK(ok.header("Access-Control-Allow-Origin") == "http://page.example");
      note(path, "options",
           http_request(port, "OPTIONS", target, {},
                        {{"Origin", "http://evil.example"},
                         {"Access-Control-Request-Method", "GET"}}),
           403);
    }

    check_against(lines, seen);
  }

  SECTION("with storage.s3.redirect, the 302 of a GET is documented") {
    s3rver s3;
    server_process srv;
    srv.set_env({{"APP_STORAGE_TYPE", "s3"},
                 {"APP_STORAGE_S3_ENDPOINT", s3.origin()},
                 {"APP_STORAGE_S3_BUCKET", s3rver_bucket},
                 {"APP_STORAGE_S3_PREFIX", "openapi"},
                 {"APP_STORAGE_S3_ACCESS_KEY", s3rver_key},
                 {"APP_STORAGE_S3_SECRET_KEY", s3rver_key},
                 {"APP_STORAGE_S3_REDIRECT", "true"},
                 {"APP_STORAGE_S3_REDIRECT_MIN_BYTES", "1"},
                 {"APP_DATABASE_DRIVER", "sqlite"}});
    srv.start();
    auto port = srv.port();
    // Moov first: the original is served (here: redirected) at once.
    REQUIRE(upload_file(port, "/audio/user/7/phrase/1",
                        read_file(audio_fixtures().m4a_faststart))
              .status
            == 201);
    auto res = http_get(port, "/audio/user/7/phrase/1/m4a");
    CHECK(res.status == 302);
    CHECK(res.has("Location"));
    check_against(lines, {{audio, "get", res.status, res}});
  }
}
