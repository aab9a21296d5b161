// Running R (Rscript, a declared dependency of the tests) for the tests that
// compare fedrx's statistics with R's: a script written to a temporary
// directory, run once, its results read back as `key,value` lines.
#pragma once

#include <gtest/gtest.h>

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

// A test suite whose tests compare with one R run, made once per suite:
// `Suite::Script()` gives the script and `Suite::kTimeout` bounds it; a
// failed run fails every test (R is a declared dependency), never skips it.
template <typename Suite>
class RComparisonTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    r_ = new RResults(RunRscriptForValues(Suite::Script(), Suite::kTimeout));
  }
  static void TearDownTestSuite() {
    delete r_;
    r_ = nullptr;
  }
  void SetUp() override { ASSERT_TRUE(r_->error.empty()) << r_->error; }

  // R's value for `key`; a missing key fails the test.
  static double R(const std::string& key) { return r_->Get(key); }

 private:
  static inline RResults* r_ = nullptr;
};

}  // namespace fedrx::testing
