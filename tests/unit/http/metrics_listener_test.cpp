// The pure decision of a worker's metrics listener (http/metrics_listener),
// without a socket. The real worker is scraped in
// tests/integration/monitoring_test.cpp.

#include "http/metrics_listener.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace phonon::http;

namespace {

int renders = 0;

std::string render() {
  ++renders;
  return "# TYPE phonon_x counter\nphonon_x 1\n";
}

} // namespace

TEST_CASE("metrics listener: GET and HEAD of /metrics are the exposition",
          "[unit][http]") {
  renders = 0;
  for (auto method : {"GET", "HEAD"}) {
    auto a = answer_metrics_request(method, "/metrics", "", "", render);
    CHECK(a.status == 200);
    CHECK(a.content_type == "text/plain; version=0.0.4; charset=utf-8");
    CHECK(a.body == render());
  }
  // A query string (Prometheus may add params) is the same path.
  CHECK(answer_metrics_request("GET", "/metrics?x=1", "", "", render).status
        == 200);
}

TEST_CASE("metrics listener: other paths are 404, other methods 405",
          "[unit][http]") {
  renders = 0;
  for (auto target : {"/", "/metrics/", "/healthz/", "/readyz", "/metricsx",
                      ""}) {
    auto a = answer_metrics_request("GET", target, "", "", render);
    CHECK(a.status == 404);
    CHECK(a.content_type == "application/json");
    CHECK(a.body.find("\"code\":\"not_found\"") != std::string::npos);
  }
  for (auto method : {"POST", "PUT", "DELETE", "OPTIONS"}) {
    auto a = answer_metrics_request(method, "/metrics", "", "", render);
    CHECK(a.status == 405);
    CHECK(a.allow == "GET, HEAD");
  }
  CHECK(renders == 0);
}

TEST_CASE("metrics listener: with a token, /metrics needs exactly it",
          "[unit][http]") {
  const std::string token = "scrape-token-0123456789";
  renders = 0;
  auto missing = answer_metrics_request("GET", "/metrics", "", token, render);
  CHECK(missing.status == 401);
  CHECK(missing.www_authenticate == "Bearer");
  CHECK(missing.body.find("\"code\":\"missing_token\"") != std::string::npos);
  for (auto field : {"Bearer scrape-token-012345678",
                     "Bearer scrape-token-0123456789x", "Basic abc",
                     "scrape-token-0123456789", "Bearer "}) {
    auto a = answer_metrics_request("GET", "/metrics", field, token, render);
    CHECK(a.status == 401);
    CHECK(a.body.find("\"code\":\"invalid_token\"") != std::string::npos);
  }
  CHECK(renders == 0);
  auto ok = answer_metrics_request("GET", "/metrics",
                                   "bearer scrape-token-0123456789", token,
                                   render);
  CHECK(ok.status == 200);
  CHECK(renders == 1);
  // No token configured: the Authorization field is not looked at.
  CHECK(answer_metrics_request("GET", "/metrics", "Bearer whatever", "",
                               render)
          .status
        == 200);
}

TEST_CASE("metrics listener: /healthz answers ok without the token and "
          "without rendering the metrics (a worker container's health "
          "check)",
          "[unit][http]") {
  renders = 0;
  const std::string token = "scrape-token-0123456789";
  for (auto method : {"GET", "HEAD"}) {
    auto a = answer_metrics_request(method, "/healthz", "", token, render);
    CHECK(a.status == 200);
    CHECK(a.content_type == "application/json");
    CHECK(a.body == "{\"status\":\"ok\"}");
  }
  CHECK(renders == 0);
  auto post = answer_metrics_request("POST", "/healthz", "", token, render);
  CHECK(post.status == 405);
  CHECK(post.allow == "GET, HEAD");
}
