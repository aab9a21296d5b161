// JsonLines: the bench binaries' output, one JSON object per line
//   {"bench", "metric", "value", "unit", "baseline", "ratio"}
// to stdout and appended to a file; absent or non-finite numbers are null.
// Not thread-safe.
#pragma once

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>

namespace fedrx::bench {

class JsonLines {
 public:
  // Appends to `path` (stdout only when empty); exits with a message if the
  // file cannot be opened.
  explicit JsonLines(const std::string& path) {
    if (path.empty()) return;
    file_.open(path, std::ios::app);
    if (!file_) {
      std::cerr << "cannot open " << path << " for the bench results\n";
      std::exit(1);
    }
  }

  // ratio = value / baseline, or baseline / value when `lower_is_better`
  // (then it reads "times better than the baseline").
  void Emit(const std::string& bench, const std::string& metric, std::optional<double> value,
            const std::string& unit, std::optional<double> baseline = std::nullopt,
            bool lower_is_better = false) {
    std::optional<double> ratio;
    if (Finite(value) && Finite(baseline) && *value != 0 && *baseline != 0) {
      ratio = lower_is_better ? *baseline / *value : *value / *baseline;
    }
    std::ostringstream line;
    line << "{\"bench\": \"" << bench << "\", \"metric\": \"" << metric
         << "\", \"value\": " << Number(value) << ", \"unit\": \"" << unit
         << "\", \"baseline\": " << Number(baseline) << ", \"ratio\": " << Number(ratio) << "}";
    std::cout << line.str() << std::endl;
    if (file_.is_open()) file_ << line.str() << "\n" << std::flush;
  }

 private:
  static bool Finite(std::optional<double> v) { return v.has_value() && std::isfinite(*v); }
  static std::string Number(std::optional<double> v) {
    if (!Finite(v)) return "null";
    std::ostringstream s;
    s.precision(6);
    s << *v;
    return s.str();
  }

  std::ofstream file_;
};

}  // namespace fedrx::bench
