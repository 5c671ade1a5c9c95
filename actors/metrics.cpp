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

void metrics::inc(const std::string& name, const labels& ls, double value) {
  std::lock_guard<std::mutex> guard{mtx_};
  families_[name].values[ls] += value;
}

void metrics::set(const std::string& name, const labels& ls, double value) {
  std::lock_guard<std::mutex> guard{mtx_};
  families_[name].values[ls] = value;
}

void metrics::observe(const std::string& name, const labels& ls,
                      double value) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto& f = families_[name];
  auto& h = f.histograms[ls];
  if (h.counts.size() != f.buckets.size())
    h.counts.assign(f.buckets.size(), 0);
  auto it = std::lower_bound(f.buckets.begin(), f.buckets.end(), value);
  if (it != f.buckets.end())
    ++h.counts[static_cast<size_t>(it - f.buckets.begin())];
  ++h.count;
  h.sum += value;
}

double metrics::value(const std::string& name, const labels& ls) const {
  std::lock_guard<std::mutex> guard{mtx_};
  auto f = families_.find(name);
  if (f == families_.end())
    return 0;
  auto v = f->second.values.find(ls);
  return v == f->second.values.end() ? 0 : v->second;
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
      out += name + render_labels(ls) + ' ' + number(v) + '\n';
    for (auto& [ls, h] : f.histograms) {
      uint64_t cumulative = 0;
      for (size_t i = 0; i < f.buckets.size(); ++i) {
        cumulative += i < h.counts.size() ? h.counts[i] : 0;
        out += name + "_bucket"
               + render_labels(ls, "le=\"" + number(f.buckets[i]) + '"') + ' '
               + std::to_string(cumulative) + '\n';
      }
      out += name + "_bucket" + render_labels(ls, "le=\"+Inf\"") + ' '
             + std::to_string(h.count) + '\n';
      out += name + "_sum" + render_labels(ls) + ' ' + number(h.sum) + '\n';
      out += name + "_count" + render_labels(ls) + ' '
             + std::to_string(h.count) + '\n';
    }
  }
  return out;
}

metrics& metrics::global() {
  static metrics instance;
  return instance;
}

} // namespace phonon::actors
