#include "actors/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace phonon::actors {

namespace {

std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"')
      out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

std::string render_labels(const metrics::labels& ls,
                          const std::string& extra = {}) {
  if (ls.empty() && extra.empty())
    return {};
  std::string out = "{";
  bool first = true;
  for (auto& [k, v] : ls) {
    if (!first)
      out += ',';
    first = false;
    out += k + "=\"" + escape(v) + '"';
  }
  if (!extra.empty()) {
    if (!first)
      out += ',';
    out += extra;
  }
  return out + '}';
}

std::string number(double x) {
  if (std::isinf(x))
    return x > 0 ? "+Inf" : "-Inf";
  std::ostringstream os;
  os.precision(10);
  os << x;
  return os.str();
}

} // namespace

void metrics::describe(const std::string& name, const std::string& type,
                       const std::string& help, std::vector<double> buckets) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto& f = families_[name];
  f.type = type;
  f.help = help;
  std::sort(buckets.begin(), buckets.end());
  f.buckets = std::move(buckets);
}

metrics::histogram_cell::histogram_cell(std::vector<double> buckets)
  : buckets_(std::move(buckets)),
    counts_(new std::atomic<uint64_t>[buckets_.size()]) {
  for (size_t i = 0; i < buckets_.size(); ++i)
    counts_[i].store(0, std::memory_order_relaxed);
}

void metrics::histogram_cell::observe(double x) noexcept {
  auto it = std::lower_bound(buckets_.begin(), buckets_.end(), x);
  if (it != buckets_.end())
    counts_[static_cast<size_t>(it - buckets_.begin())].fetch_add(
      1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_.add(x);
}

metrics::histogram_cell& metrics::series(family& f, const labels& ls) {
  auto it = f.histograms.find(ls);
  if (it == f.histograms.end())
    it = f.histograms.try_emplace(ls, f.buckets).first;
  return it->second;
}

void metrics::inc(const std::string& name, const labels& ls, double value) {
  counter(name, ls).add(value);
}

void metrics::set(const std::string& name, const labels& ls, double value) {
  counter(name, ls).set(value);
}

void metrics::observe(const std::string& name, const labels& ls,
                      double value) {
  histogram(name, ls).observe(value);
}

metrics::cell& metrics::counter(const std::string& name, const labels& ls) {
  std::lock_guard<std::mutex> guard{mtx_};
  return families_[name].values[ls];
}

metrics::histogram_cell& metrics::histogram(const std::string& name,
                                            const labels& ls) {
  std::lock_guard<std::mutex> guard{mtx_};
  return series(families_[name], ls);
}

double metrics::value(const std::string& name, const labels& ls) const {
  std::lock_guard<std::mutex> guard{mtx_};
  auto f = families_.find(name);
  if (f == families_.end())
    return 0;
  auto v = f->second.values.find(ls);
  return v == f->second.values.end() ? 0 : v->second.get();
}

std::string metrics::render() const {
  std::lock_guard<std::mutex> guard{mtx_};
  std::string out;
  for (auto& [name, f] : families_) {
    if (!f.help.empty())
      out += "# HELP " + name + ' ' + f.help + '\n';
    out += "# TYPE " + name + ' ' + (f.type.empty() ? "untyped" : f.type)
           + '\n';
    for (auto& [ls, v] : f.values)
      out += name + render_labels(ls) + ' ' + number(v.get()) + '\n';
    for (auto& [ls, h] : f.histograms) {
      // Read while others may observe: the count is read after the
      // buckets, so +Inf is never below the last bucket.
      uint64_t cumulative = 0;
      for (size_t i = 0; i < h.buckets_.size(); ++i) {
        cumulative += h.counts_[i].load(std::memory_order_relaxed);
        out += name + "_bucket"
               + render_labels(ls, "le=\"" + number(h.buckets_[i]) + '"')
               + ' ' + std::to_string(cumulative) + '\n';
      }
      auto count = std::max(cumulative,
                            h.count_.load(std::memory_order_relaxed));
      out += name + "_bucket" + render_labels(ls, "le=\"+Inf\"") + ' '
             + std::to_string(count) + '\n';
      out += name + "_sum" + render_labels(ls) + ' ' + number(h.sum_.get())
             + '\n';
      out += name + "_count" + render_labels(ls) + ' ' + std::to_string(count)
             + '\n';
    }
  }
  return out;
}

metrics& metrics::global() {
  static metrics instance;
  return instance;
}

} // namespace phonon::actors
