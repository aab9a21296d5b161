// Running R (Rscript, a declared dependency of the tests) for the tests that
// compare fedrx's statistics with R's: a script written to a temporary
// directory, run once, its results read back as `key,value` lines.
#pragma once

#include <chrono>
#include <map>
#include <string>

namespace fedrx::testing {

// What one R run produced: `values` by key, or `error` (R missing, the
// script failing, no results) with R's output.
struct RResults {
  std::string error;
  std::map<std::string, double> values;

  // The value R wrote for `key`; NaN (and a test failure) when it wrote none.
  double Get(const std::string& key) const;
};

// Writes `script` to a temporary directory and runs
// `Rscript --vanilla SCRIPT OUT_CSV`; the script writes `key,value` lines to
// OUT_CSV (the last comma splits key from value).
RResults RunRscriptForValues(const std::string& script, std::chrono::seconds timeout);

}  // namespace fedrx::testing
