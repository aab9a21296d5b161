// Synthetic held-out (risk, approved) pairs with a known generating model for
// the clinical tests: r | approved ~ Beta(2,5), r | failed ~ Beta(5,2), so
// LR(r) = r^-3 (1-r)^3 and log LR(r) = -3 logit(r) exactly.
#pragma once

#include <random>
#include <vector>

#include "services/clinical/adjust.h"

namespace fedrx::clinical::test_support {

inline std::vector<RiskLabel> BetaPairs(int per_class, unsigned seed) {
  std::mt19937 rng(seed);
  std::gamma_distribution<double> g2(2.0, 1.0), g5(5.0, 1.0);
  std::vector<RiskLabel> out;
  for (int i = 0; i < per_class; ++i) {
    double x = g2(rng), y = g5(rng);
    out.push_back({x / (x + y), true});
    x = g5(rng);
    y = g2(rng);
    out.push_back({x / (x + y), false});
  }
  return out;
}

}  // namespace fedrx::clinical::test_support
