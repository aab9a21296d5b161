// The shown working of a clinical computation: an ordered list of steps, each
// with what it does, its formula and the numbers that went in and came out, so
// that an answer can be explained and re-derived by hand. Plain values.
#pragma once

#include <string>
#include <vector>

namespace fedrx::clinical {

struct NamedValue {
  std::string name;
  double value = 0.0;
};

struct WorkingStep {
  std::string what;                // e.g. "fit logistic P(approved | logit r)"
  std::string formula;             // e.g. "LR(r) = odds(approved | r) / prior odds"
  std::vector<NamedValue> values;  // inputs and results of this step
};

using Working = std::vector<WorkingStep>;

}  // namespace fedrx::clinical
