#include "http/router.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace phonon::http;

TEST_CASE("operations routes", "[unit][http]") {
  auto r = match_route("/healthz");
  CHECK(r.kind == route_kind::healthz);
  CHECK(std::string{r.name} == "/healthz");
  CHECK(std::string{r.allow} == "GET, HEAD");
  r = match_route("/readyz");
  CHECK(r.kind == route_kind::readyz);
  CHECK(std::string{r.name} == "/readyz");
  r = match_route("/metrics");
  CHECK(r.kind == route_kind::metrics);
  CHECK(std::string{r.name} == "/metrics");
  CHECK(std::string{r.allow} == "GET, HEAD");
}

TEST_CASE("console routes name their file", "[unit][http]") {
  auto r = match_route("/");
  CHECK(r.kind == route_kind::console);
  CHECK(r.format == "index.html");
  CHECK(std::string{r.name} == "/");
  CHECK(std::string{r.allow} == "GET, HEAD");
  r = match_route("/console/console.js");
  CHECK(r.kind == route_kind::console);
  CHECK(r.format == "console.js");
  CHECK(std::string{r.name} == "/console/:file");
  // The file name is taken as it is; the handler knows which exist.
  r = match_route("/console/..%2Fsecret");
  CHECK(r.kind == route_kind::console);
  CHECK(r.format == "..%2Fsecret");
}

TEST_CASE("audio routes carry their ids and format", "[unit][http]") {
  auto r = match_route("/audio/user/7");
  CHECK(r.kind == route_kind::user_list);
  CHECK(r.user_id == 7);
  CHECK(std::string{r.name} == "/audio/user/:user_id");
  CHECK(std::string{r.allow} == "GET, HEAD");

  r = match_route("/audio/user/12/phrase/34");
  CHECK(r.kind == route_kind::recording);
  CHECK(r.user_id == 12);
  CHECK(r.phrase_id == 34);
  CHECK(std::string{r.name} == "/audio/user/:user_id/phrase/:phrase_id");
  CHECK(std::string{r.allow} == "GET, HEAD, POST, PUT, DELETE");

  r = match_route("/audio/user/9223372036854775807/phrase/1/m4a");
  CHECK(r.kind == route_kind::audio);
  CHECK(r.user_id == INT64_C(9223372036854775807));
  CHECK(r.phrase_id == 1);
  CHECK(r.format == "m4a");
  CHECK(std::string{r.name}
        == "/audio/user/:user_id/phrase/:phrase_id/:format");
  CHECK(std::string{r.allow} == "GET, HEAD");

  r = match_route("/audio/user/5/phrase/6/links");
  CHECK(r.kind == route_kind::links);
  CHECK(r.user_id == 5);
  CHECK(r.phrase_id == 6);
  CHECK(std::string{r.allow} == "POST");
  CHECK(allows(r, "POST"));
  CHECK_FALSE(allows(r, "GET"));

  // The handler checks the format name against its table.
  r = match_route("/audio/user/1/phrase/2/xyz");
  CHECK(r.kind == route_kind::audio);
  CHECK(r.format == "xyz");
}

TEST_CASE("an audio path with a bad id is bad_id", "[unit][http]") {
  const char* paths[] = {
    "/audio/user/abc/phrase/1",
    "/audio/user/0",
    "/audio/user/01",
    "/audio/user/-1/phrase/1",
    "/audio/user/1/phrase/0",
    "/audio/user/1/phrase/9223372036854775808",
    "/audio/user/1/phrase/x/m4a",
    "/audio/user/%31",
    "/audio/user/+1/phrase/1/m4a",
  };
  for (auto path : paths) {
    INFO(path);
    auto r = match_route(path);
    CHECK(r.kind == route_kind::bad_id);
  }
  CHECK(std::string{match_route("/audio/user/0").name}
        == "/audio/user/:user_id");
}

TEST_CASE("unknown paths are not_found", "[unit][http]") {
  const char* paths[] = {
    "",
    "healthz",
    "/console",
    "/console/",
    "/console/a/b",
    "//console/a",
    "/Console/console.js",
    "/healthz/",
    "/Healthz",
    "/healthz/x",
    "/audio",
    "/audio/",
    "/audio/user",
    "/audio/user/",
    "/audio/user/1/",
    "/audio/user//phrase/1",
    "/audio/user/1/phrase",
    "/audio/user/1/phrase/",
    "/audio/user/1/phrase/2/",
    "/audio/user/1/phrase/2/m4a/",
    "/audio/user/1/phrase/2/m4a/extra",
    "/audio/user/1/phrases/2",
    "/audio/users/1",
    "/audio/user/1/x/2/m4a",
    "//audio/user/1",
    "/audio//user/1",
    "/nothing",
  };
  for (auto path : paths) {
    INFO("path: '" << path << "'");
    auto r = match_route(path);
    CHECK(r.kind == route_kind::not_found);
    CHECK(std::string{r.allow}.empty());
  }
}

TEST_CASE("allows checks the route's method list", "[unit][http]") {
  auto health = match_route("/healthz");
  CHECK(allows(health, "GET"));
  CHECK(allows(health, "HEAD"));
  CHECK_FALSE(allows(health, "POST"));
  CHECK_FALSE(allows(health, "get"));
  CHECK_FALSE(allows(health, ""));
  CHECK_FALSE(allows(health, "GET, HEAD"));

  auto rec = match_route("/audio/user/1/phrase/2");
  for (auto m : {"GET", "HEAD", "POST", "PUT", "DELETE"})
    CHECK(allows(rec, m));
  CHECK_FALSE(allows(rec, "PATCH"));
  CHECK_FALSE(allows(rec, "OPTIONS"));

  auto audio = match_route("/audio/user/1/phrase/2/m4a");
  CHECK(allows(audio, "GET"));
  CHECK_FALSE(allows(audio, "POST"));
  CHECK_FALSE(allows(audio, "DELETE"));

  auto list = match_route("/audio/user/1");
  CHECK(allows(list, "HEAD"));
  CHECK_FALSE(allows(list, "PUT"));

  CHECK_FALSE(allows(match_route("/nope"), "GET"));
}

TEST_CASE("split_target separates path and query", "[unit][http]") {
  auto [p1, q1] = split_target("/audio/user/1?limit=5&after=3");
  CHECK(p1 == "/audio/user/1");
  CHECK(q1 == "limit=5&after=3");
  auto [p2, q2] = split_target("/healthz");
  CHECK(p2 == "/healthz");
  CHECK(q2.empty());
  auto [p3, q3] = split_target("/x?");
  CHECK(p3 == "/x");
  CHECK(q3.empty());
  auto [p4, q4] = split_target("/x?a=1?b");
  CHECK(p4 == "/x");
  CHECK(q4 == "a=1?b");
}

TEST_CASE("query_param finds and decodes values", "[unit][http]") {
  CHECK(query_param("limit=5&after=3", "limit") == std::string{"5"});
  CHECK(query_param("limit=5&after=3", "after") == std::string{"3"});
  CHECK_FALSE(query_param("limit=5&after=3", "x").has_value());
  CHECK_FALSE(query_param("", "limit").has_value());
  CHECK(query_param("a=1&a=2", "a") == std::string{"1"});
  CHECK(query_param("q=a%20b+c%2B", "q") == std::string{"a b c+"});
  CHECK(query_param("flag&x=1", "flag") == std::string{});
  CHECK(query_param("x=", "x") == std::string{});
  CHECK(query_param("&&x=1&", "x") == std::string{"1"});
  CHECK(query_param("x=%zz%4", "x") == std::string{"%zz%4"});
  CHECK(query_param("li%6Dit=9", "limit") == std::string{"9"});
  CHECK_FALSE(query_param("limitx=1", "limit").has_value());
}
