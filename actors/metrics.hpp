#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace phonon::actors {

/// Process-wide Prometheus metrics: counters, gauges and histograms with
/// labels, rendered in the text exposition format. Thread-safe; an update
/// by name takes one short mutex to find its series (far cheaper than the
/// work it counts). The hottest updates (one per HTTP request) keep the
/// series they found (counter(), histogram()) and update it with atomics
/// only. Hand-written because Debian 12 ships no C++ Prometheus client.
class metrics {
public:
  /// One series of a counter or gauge. Lives as long as the registry.
  class cell {
  public:
    void add(double x) noexcept {
      auto old = v_.load(std::memory_order_relaxed);
      while (!v_.compare_exchange_weak(old, old + x, std::memory_order_relaxed))
        ; // retry with the value another thread wrote
    }
    void set(double x) noexcept {
      v_.store(x, std::memory_order_relaxed);
    }
    double get() const noexcept {
      return v_.load(std::memory_order_relaxed);
    }

  private:
    std::atomic<double> v_{0};
  };

  /// One series of a histogram. Lives as long as the registry.
  class histogram_cell {
  public:
    explicit histogram_cell(std::vector<double> buckets);
    void observe(double x) noexcept;

  private:
    friend class metrics;
    const std::vector<double> buckets_;
    /// One per bucket, not cumulative.
    std::unique_ptr<std::atomic<uint64_t>[]> counts_;
    std::atomic<uint64_t> count_{0};
    cell sum_;
  };

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

  /// The series `ls` of counter or gauge `name`, made when new; keep the
  /// reference and update it without a lookup.
  cell& counter(const std::string& name, const labels& ls = {});

  /// The series `ls` of histogram `name` (described before), made when new.
  histogram_cell& histogram(const std::string& name, const labels& ls);

  /// Current value of a counter or gauge (0 when never set); for tests.
  double value(const std::string& name, const labels& ls = {}) const;

  /// The text exposition of every family.
  std::string render() const;

  /// The process-wide instance.
  static metrics& global();

private:
  struct family {
    std::string type;
    std::string help;
    std::vector<double> buckets;
    // Map nodes never move: references to cells stay valid.
    std::map<labels, cell> values;
    std::map<labels, histogram_cell> histograms;
  };

  /// The series of `f`; the caller holds mtx_.
  static histogram_cell& series(family& f, const labels& ls);

  mutable std::mutex mtx_;
  std::map<std::string, family> families_;
};

} // namespace phonon::actors
