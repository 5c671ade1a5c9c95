#include "tests/integration/cluster_support.hpp"

#include <algorithm>
#include <stdexcept>
#include <thread>

namespace phonon::integration {

namespace {

using clock_type = std::chrono::steady_clock;

void sleep_ms(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds{ms});
}

} // namespace

// -- worker_process -----------------------------------------------------------

worker_process::worker_process(uint16_t join_port, int transcoders,
                               env_list env)
  : dir_("phonon-it-worker"),
    child_("phonon worker", dir_.path(), dir_ / "worker.log",
           std::chrono::seconds{3}, 15),
    join_port_(join_port),
    transcoders_(transcoders),
    env_(std::move(env)) {}

void worker_process::start() {
  if (child_.pid() > 0)
    throw std::runtime_error("worker_process::start: already running");
  // The working dir is the worker's own: no config/phonon.yaml applies.
  child_.spawn({phonon_binary(), "worker", "--join",
                "127.0.0.1:" + std::to_string(join_port_), "--workers",
                std::to_string(transcoders_)},
               env_);
  child_.await_log(
    [](const std::string& text) {
      return text.find("worker started") != std::string::npos;
    },
    "start", std::chrono::seconds{10}, 30);
}

// -- metrics ------------------------------------------------------------------

std::optional<double> metric_value(std::string_view exposition,
                                   std::string_view name,
                                   const metric_labels& labels) {
  size_t pos = 0;
  while (pos < exposition.size()) {
    auto nl = exposition.find('\n', pos);
    auto line = exposition.substr(pos, nl == std::string_view::npos
                                         ? std::string_view::npos
                                         : nl - pos);
    pos = nl == std::string_view::npos ? exposition.size() : nl + 1;
    if (line.empty() || line.front() == '#')
      continue;
    auto name_end = line.find_first_of("{ ");
    if (name_end == std::string_view::npos || line.substr(0, name_end) != name)
      continue;
    // The label set, e.g. {kind="remote",format="m4a"}.
    metric_labels have;
    auto rest = line.substr(name_end);
    if (rest.front() == '{') {
      auto close = rest.find('}');
      if (close == std::string_view::npos)
        continue;
      auto body = rest.substr(1, close - 1);
      rest = rest.substr(close + 1);
      while (!body.empty()) {
        auto eq = body.find("=\"");
        if (eq == std::string_view::npos)
          break;
        auto end = body.find('"', eq + 2);
        if (end == std::string_view::npos)
          break;
        have.emplace_back(std::string{body.substr(0, eq)},
                          std::string{body.substr(eq + 2, end - eq - 2)});
        body = body.substr(end + 1);
        if (!body.empty() && body.front() == ',')
          body.remove_prefix(1);
      }
    }
    auto all = std::all_of(labels.begin(), labels.end(), [&](auto& want) {
      return std::find(have.begin(), have.end(), want) != have.end();
    });
    if (!all)
      continue;
    auto value = std::string{rest};
    try {
      return std::stod(value);
    } catch (const std::exception&) {
      return std::nullopt;
    }
  }
  return std::nullopt;
}

std::optional<double> scrape(uint16_t port, std::string_view name,
                             const metric_labels& labels) {
  try {
    auto res = http_get(port, "/metrics");
    if (res.status != 200)
      return std::nullopt;
    return metric_value(res.body, name, labels);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

double scrape_or_zero(uint16_t port, std::string_view name,
                      const metric_labels& labels) {
  return scrape(port, name, labels).value_or(0);
}

bool wait_for(const std::function<bool()>& pred,
              std::chrono::milliseconds limit) {
  auto deadline = clock_type::now() + limit;
  for (;;) {
    if (pred())
      return true;
    if (clock_type::now() >= deadline)
      return false;
    sleep_ms(50);
  }
}

bool wait_for_metric(uint16_t port, std::string_view name,
                     const metric_labels& labels, double expected,
                     std::chrono::milliseconds limit) {
  return wait_for(
    [&] {
      try {
        auto res = http_get(port, "/metrics");
        return res.status == 200
               && metric_value(res.body, name, labels).value_or(0)
                    == expected;
      } catch (const std::exception&) {
        return false;
      }
    },
    limit);
}

} // namespace phonon::integration
