// Isotonic (non-decreasing) regression by pool-adjacent-violators, as dose
// finding needs it to smooth observed toxicity rates across dose levels.
// Pure functions; thread-safe.
#pragma once

#include <span>
#include <vector>

namespace fedrx::trial {

// The weighted least-squares non-decreasing fit to `values`: the vector x
// minimising sum w_i (x_i - values_i)^2 subject to x_1 <= x_2 <= ... <= x_n.
// Adjacent values that violate the order are pooled into their weighted mean
// until none do. `weights` must have the same length as `values` and be
// positive and finite (the caller checks); an empty `weights` means all 1.
std::vector<double> IsotonicRegression(std::span<const double> values,
                                       std::span<const double> weights = {});

}  // namespace fedrx::trial
