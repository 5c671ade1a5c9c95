// Monitoring against the real binaries: every metric the Grafana dashboard
// (docker/grafana/dashboards/phonon.json) queries is exported by a serve
// node or a worker after some traffic; promtool accepts both scrapes; a
// worker's metrics listener (metrics.port) answers only GET/HEAD /metrics,
// asks for the scraper's token when one is set, and reports whether the
// worker is joined.

#include <catch2/catch.hpp>

#include <cctype>
#include <chrono>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/integration/cluster_support.hpp"
#include "tests/integration/support.hpp"

using namespace phonon::integration;
using namespace std::chrono_literals;

namespace {

/// The folder of the sources ($PHONON_SOURCE_DIR, else the working dir's
/// parent, as ctest runs from build/).
std::filesystem::path source_dir() {
  if (const char* dir = std::getenv("PHONON_SOURCE_DIR"); dir && *dir)
    return dir;
  return std::filesystem::current_path().parent_path();
}

bool ident_start(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':';
}

bool ident_char(char c) {
  return ident_start(c) || std::isdigit(static_cast<unsigned char>(c));
}

/// Skips from `i` (at `open`) past the matching `close`, jumping over
/// string literals; returns the index after it.
size_t skip_group(const std::string& s, size_t i, char open, char close) {
  int depth = 0;
  for (; i < s.size(); ++i) {
    char c = s[i];
    if (c == '"' || c == '\'' || c == '`') {
      for (++i; i < s.size() && s[i] != c; ++i)
        if (s[i] == '\\')
          ++i;
      continue;
    }
    if (c == open)
      ++depth;
    else if (c == close && --depth == 0)
      return i + 1;
  }
  return s.size();
}

/// The metric names a PromQL expression selects: every identifier that is
/// not a function (followed by `(`), a keyword, a label list of
/// by/without/on/ignoring/group_*, a label matcher `{...}`, a range or
/// subquery `[...]`, a string, a number or a Grafana variable (`$x`).
std::set<std::string> metric_names_in(const std::string& expr) {
  static const std::set<std::string> keywords{
    "by", "without", "on", "ignoring", "group_left", "group_right", "and",
    "or", "unless", "bool", "offset", "inf", "nan", "Inf", "NaN"};
  static const std::set<std::string> label_lists{
    "by", "without", "on", "ignoring", "group_left", "group_right"};
  std::set<std::string> out;
  size_t i = 0;
  while (i < expr.size()) {
    char c = expr[i];
    if (c == '{') {
      i = skip_group(expr, i, '{', '}');
    } else if (c == '[') {
      i = skip_group(expr, i, '[', ']');
    } else if (c == '"' || c == '\'' || c == '`') {
      for (++i; i < expr.size() && expr[i] != c; ++i)
        if (expr[i] == '\\')
          ++i;
      ++i;
    } else if (c == '$') {
      for (++i; i < expr.size() && ident_char(expr[i]); ++i)
        ; // a Grafana variable
    } else if (std::isdigit(static_cast<unsigned char>(c)) || c == '.') {
      for (++i; i < expr.size()
                && (std::isalnum(static_cast<unsigned char>(expr[i]))
                    || expr[i] == '.');
           ++i)
        ; // a number, 1e6 and 5m included
    } else if (ident_start(c)) {
      size_t start = i;
      while (i < expr.size() && ident_char(expr[i]))
        ++i;
      auto name = expr.substr(start, i - start);
      size_t j = i;
      while (j < expr.size() && std::isspace(static_cast<unsigned char>(expr[j])))
        ++j;
      bool call = j < expr.size() && expr[j] == '(';
      // An aggregation with its clause first: `sum by (le) (...)`.
      size_t k = j;
      while (k < expr.size() && ident_char(expr[k]))
        ++k;
      auto next = expr.substr(j, k - j);
      bool aggregation = next == "by" || next == "without";
      if (label_lists.count(name) && call)
        i = skip_group(expr, j, '(', ')');
      else if (!call && !aggregation && !keywords.count(name))
        out.insert(name);
    } else {
      ++i;
    }
  }
  return out;
}

/// Every PromQL expression of a Grafana dashboard: the panels' targets
/// (rows' panels too) and the first argument of a query variable's
/// label_values(metric, label).
std::vector<std::string> dashboard_exprs(const nlohmann::json& dash) {
  std::vector<std::string> out;
  std::function<void(const nlohmann::json&)> walk
    = [&](const nlohmann::json& panels) {
        for (auto& p : panels) {
          for (auto& t : p.value("targets", nlohmann::json::array()))
            if (t.contains("expr"))
              out.push_back(t["expr"].get<std::string>());
          if (p.contains("panels"))
            walk(p["panels"]);
        }
      };
  walk(dash.at("panels"));
  for (auto& v : dash["templating"].value("list", nlohmann::json::array())) {
    std::string q = v["query"].is_object() ? v["query"].value("query", "")
                                           : v.value("query", "");
    const std::string lv = "label_values(";
    if (q.rfind(lv, 0) == 0) {
      auto comma = q.rfind(',');
      out.push_back(q.substr(lv.size(), comma - lv.size()));
    } else if (!q.empty()) {
      out.push_back(q);
    }
  }
  return out;
}

/// The sample names of a Prometheus text exposition.
std::set<std::string> sample_names(const std::string& exposition) {
  std::set<std::string> out;
  size_t pos = 0;
  while (pos < exposition.size()) {
    auto nl = exposition.find('\n', pos);
    if (nl == std::string::npos)
      nl = exposition.size();
    auto line = exposition.substr(pos, nl - pos);
    pos = nl + 1;
    if (line.empty() || line[0] == '#')
      continue;
    out.insert(line.substr(0, line.find_first_of("{ ")));
  }
  return out;
}

/// Runs `promtool check metrics` on `exposition`; its exit code and output.
run_result promtool_check(const temp_dir& dir, const std::string& name,
                          const std::string& exposition) {
  auto file = dir / name;
  write_file(file, exposition);
  return run("promtool check metrics < " + shell_quote(file.string()));
}

/// A worker's metrics over its listener (port `port`).
http_response worker_metrics(uint16_t port, const header_list& headers = {}) {
  return http_get(port, "/metrics", headers);
}

} // namespace

TEST_CASE("monitoring: the PromQL metric-name extractor",
          "[integration][monitoring]") {
  CHECK(metric_names_in(
          "histogram_quantile(0.99, sum by (le, route) (rate("
          "phonon_x_bucket{instance=~\"$instance\", a=\"b}\"}"
          "[$__rate_interval]))) / on(job) group_left(x) up offset 5m"
          " + 1e6 * sum without (le) (phonon_y)")
        == std::set<std::string>{"phonon_x_bucket", "up", "phonon_y"});
  CHECK(metric_names_in("sum(rate(phonn_typo_total[5m]))")
        == std::set<std::string>{"phonn_typo_total"});
}

TEST_CASE("monitoring: every metric of the Grafana dashboard is exported "
          "by a serve node or a worker, and promtool accepts both scrapes",
          "[integration][cluster][monitoring]") {
  auto dash = nlohmann::json::parse(
    read_file(source_dir() / "docker/grafana/dashboards/phonon.json"));
  auto exprs = dashboard_exprs(dash);
  std::set<std::string> wanted;
  for (auto& e : exprs)
    for (auto& n : metric_names_in(e))
      wanted.insert(n);
  // The dashboard covers requests, latency, conversions, transcoders,
  // caches, cluster and workers: far more than a handful of names.
  REQUIRE(exprs.size() >= 40);
  REQUIRE(wanted.size() >= 30);

  // A serve node whose only transcoder is a worker's, so both processes
  // have work to count.
  auto cluster_port = pick_free_port();
  auto metrics_port = pick_free_port();
  server_process srv;
  srv.start({"--workers", "0", "--set",
             "cluster.port=" + std::to_string(cluster_port)});
  auto port = srv.port();
  worker_process worker{cluster_port, 1,
                        {{"APP_METRICS_PORT", std::to_string(metrics_port)}}};
  worker.start();
  REQUIRE(wait_for_metric(port, "phonon_transcoders", {{"kind", "remote"}}, 1,
                          10s));

  // Traffic: an upload, its master, a conversion (miss), the same format
  // again (hit), metadata, a 404.
  const auto& fx = audio_fixtures();
  auto up = upload_file(port, "/audio/user/7/phrase/1", read_file(fx.wav),
                        "a.wav", "audio/wav");
  REQUIRE(up.status == 201);
  auto meta = wait_until_settled(port, "/audio/user/7/phrase/1");
  REQUIRE(meta.value("status", "") == "ready");
  CHECK(http_get(port, "/audio/user/7/phrase/1/mp3").status == 200);
  CHECK(http_get(port, "/audio/user/7/phrase/1/mp3").status == 200);
  CHECK(http_get(port, "/audio/user/7/phrase/1/wav").status == 200);
  CHECK(http_get(port, "/audio/user/7/phrase/2").status == 404);

  auto serve_scrape = http_get(port, "/metrics");
  REQUIRE(serve_scrape.status == 200);
  auto worker_scrape = worker_metrics(metrics_port);
  REQUIRE(worker_scrape.status == 200);
  CHECK(worker_scrape.header("Content-Type")
        == "text/plain; version=0.0.4; charset=utf-8");
  // The worker did the decode and the mp3.
  CHECK(metric_value(worker_scrape.body, "phonon_worker_connected") == 1.0);
  CHECK(metric_value(worker_scrape.body, "phonon_transcoder_jobs_total",
                     {{"target", "master"}, {"outcome", "ok"}})
        == 1.0);
  CHECK(metric_value(worker_scrape.body, "phonon_transcoder_jobs_total",
                     {{"target", "mp3"}, {"outcome", "ok"}})
        == 1.0);

  auto exported = sample_names(serve_scrape.body);
  for (auto& n : sample_names(worker_scrape.body))
    exported.insert(n);
  // `up` is made by Prometheus for every target, not exported.
  exported.insert("up");
  for (auto& name : wanted) {
    INFO("the dashboard queries " << name);
    CHECK(exported.count(name) == 1);
  }

  temp_dir dir{"phonon-it-promtool"};
  auto serve_check = promtool_check(dir, "serve.prom", serve_scrape.body);
  INFO("promtool on the serve node's scrape: " << serve_check.output);
  CHECK(serve_check.ok());
  CHECK(serve_check.output.empty());
  auto worker_check = promtool_check(dir, "worker.prom", worker_scrape.body);
  INFO("promtool on the worker's scrape: " << worker_check.output);
  CHECK(worker_check.ok());
  CHECK(worker_check.output.empty());
}

TEST_CASE("monitoring: a worker's metrics listener serves only /metrics, "
          "with the scraper's token when one is set, and shows the join",
          "[integration][cluster][monitoring]") {
  const std::string token = "scrape-token-0123456789abcdef";
  auto cluster_port = pick_free_port();
  auto metrics_port = pick_free_port();
  // The worker starts before its serve node: not joined yet.
  worker_process worker{cluster_port, 1,
                        {{"APP_METRICS_PORT", std::to_string(metrics_port)},
                         {"APP_METRICS_TOKEN", token}}};
  worker.start();
  CHECK(worker.log().find("metrics listening host=127.0.0.1 port="
                          + std::to_string(metrics_port))
        != std::string::npos);
  // Loopback by default (metrics.host).
  CHECK(listen_addresses(metrics_port)
        == std::vector<std::string>{"127.0.0.1"});
  header_list auth{{"Authorization", "Bearer " + token}};

  auto none = worker_metrics(metrics_port);
  CHECK(none.status == 401);
  CHECK(none.json().value("code", "") == "missing_token");
  CHECK(none.header("WWW-Authenticate") == "Bearer");
  auto wrong = worker_metrics(metrics_port,
                              {{"Authorization", "Bearer " + token + "x"}});
  CHECK(wrong.status == 401);
  CHECK(wrong.json().value("code", "") == "invalid_token");
  CHECK(wrong.body.find("phonon_") == std::string::npos);

  auto before = worker_metrics(metrics_port, auth);
  REQUIRE(before.status == 200);
  CHECK(metric_value(before.body, "phonon_worker_connected") == 0.0);
  CHECK(metric_value(before.body, "phonon_worker_transcoders") == 1.0);
  CHECK(metric_value(before.body, "phonon_worker_joins_total") == 0.0);

  server_process srv;
  srv.start({"--workers", "0", "--set",
             "cluster.port=" + std::to_string(cluster_port)});
  CHECK(wait_for(
    [&] {
      auto r = worker_metrics(metrics_port, auth);
      return r.status == 200
             && metric_value(r.body, "phonon_worker_connected") == 1.0;
    },
    10s));
  auto after = worker_metrics(metrics_port, auth);
  CHECK(metric_value(after.body, "phonon_worker_joins_total") == 1.0);

  // /healthz answers without the token (a container's health check);
  // any other path is 404.
  auto health = http_get(metrics_port, "/healthz");
  CHECK(health.status == 200);
  CHECK(health.json().value("status", "") == "ok");
  auto other = http_get(metrics_port, "/readyz", auth);
  CHECK(other.status == 404);
  CHECK(other.json().value("code", "") == "not_found");
  auto post = http_request(metrics_port, "POST", "/metrics", "x", auth);
  CHECK(post.status == 405);
  CHECK(post.header("Allow") == "GET, HEAD");
  auto head = http_request(metrics_port, "HEAD", "/metrics", {}, auth);
  CHECK(head.status == 200);
  CHECK(head.body.empty());
  CHECK(std::stoul(head.header("Content-Length")) > 0);
  // Garbage is answered 400 and the listener keeps serving.
  http_connection raw{metrics_port};
  raw.send_raw("NOT HTTP\r\n\r\n");
  CHECK(raw.read_response().status == 400);
  CHECK(worker_metrics(metrics_port, auth).status == 200);
}

TEST_CASE("monitoring: metrics.port of the settings does not reach the "
          "child workers of transcoder.isolate",
          "[integration][monitoring]") {
  // One phonon.yaml (or environment) for serve and worker processes may
  // set metrics.port; a serve node's isolated children must not all try
  // to bind it.
  auto metrics_port = pick_free_port();
  server_process srv;
  srv.set_env({{"APP_METRICS_PORT", std::to_string(metrics_port)}});
  srv.start({"--workers", "2", "--set", "transcoder.isolate=true"});
  CHECK(wait_for_metric(srv.port(), "phonon_transcoders", {{"kind", "remote"}},
                        2, 10s));
  CHECK(listen_addresses(metrics_port).empty());
  CHECK(srv.log().find("metrics listening") == std::string::npos);
}

TEST_CASE("monitoring: with auth on, a worker refuses a metrics listener "
          "without the scraper's token",
          "[integration][monitoring]") {
  temp_dir dir{"phonon-it-worker-auth"};
  auto res = run(
    "cd " + shell_quote(dir.path().string())
    + " && APP_AUTH_MODE=token"
      " APP_AUTH_SECRET=0123456789abcdef0123456789abcdef"
      " APP_AUTH_LINK_SECRET=fedcba9876543210fedcba9876543210"
      " APP_METRICS_PORT="
    + std::to_string(pick_free_port()) + " timeout 10 "
    + shell_quote(phonon_binary()) + " worker --join 127.0.0.1:1 2>&1");
  CHECK(res.exit_code != 0);
  CHECK(res.exit_code != 124); // refused at once, not killed by timeout
  CHECK(res.output.find("metrics.port") != std::string::npos);
}
