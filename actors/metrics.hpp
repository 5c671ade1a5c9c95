#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace phonon::actors {

/// Process-wide Prometheus metrics: counters, gauges and histograms with
/// labels, rendered in the text exposition format. Thread-safe; every
/// update takes one short mutex (far cheaper than the work it counts).
/// Hand-written because Debian 12 ships no C++ Prometheus client.
class metrics {
public:
  /// Label pairs in declaration order: {{"route", "/x"}, {"status", "200"}}.
  using labels = std::vector<std::pair<std::string, std::string>>;

  /// Declares a metric family; `type` is "counter", "gauge" or "histogram".
  /// Histograms use `buckets` (upper bounds in seconds or bytes).
  void describe(const std::string& name, const std::string& type,
                const std::string& help, std::vector<double> buckets = {});

  /// Adds `value` to a counter.
  void inc(const std::string& name, const labels& ls = {}, double value = 1);

  /// Sets a gauge.
  void set(const std::string& name, const labels& ls, double value);

  /// Records one observation in a histogram.
  void observe(const std::string& name, const labels& ls, double value);

  /// Current value of a counter or gauge (0 when never set); for tests.
  double value(const std::string& name, const labels& ls = {}) const;

  /// The text exposition of every family.
  std::string render() const;

  /// The process-wide instance.
  static metrics& global();

private:
  struct histogram_data {
    std::vector<uint64_t> counts; // one per bucket, non-cumulative
    uint64_t count = 0;
    double sum = 0;
  };
  struct family {
    std::string type;
    std::string help;
    std::vector<double> buckets;
    std::map<labels, double> values;
    std::map<labels, histogram_data> histograms;
  };

  mutable std::mutex mtx_;
  std::map<std::string, family> families_;
};

} // namespace phonon::actors
