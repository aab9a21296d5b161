#include "services/ml/synthetic.h"

#include <algorithm>
#include <string>
#include <vector>

#include "services/core/random.h"

namespace fedrx::ml {
namespace {

std::vector<std::uint32_t> DrawRow(const SyntheticOptions& o, core::Xoshiro256& rng) {
  const std::uint32_t lo = std::max<std::uint32_t>(o.bits_per_row / 2, 1);
  const std::uint32_t hi = std::max(lo, o.bits_per_row + o.bits_per_row / 2);
  const std::uint32_t count = std::min<std::uint32_t>(
      o.dim, lo + static_cast<std::uint32_t>(rng.Below(hi - lo + 1)));
  std::vector<std::uint32_t> bits;
  bits.reserve(count);
  while (bits.size() < count) {
    const auto j = static_cast<std::uint32_t>(rng.Below(o.dim));
    if (std::find(bits.begin(), bits.end(), j) == bits.end()) bits.push_back(j);
  }
  std::sort(bits.begin(), bits.end());
  return bits;
}

double Score(const std::vector<double>& w, const std::vector<std::uint32_t>& bits) {
  double s = 0;
  for (std::uint32_t j : bits) s += w[j];
  return s;
}

}  // namespace

Dataset MakeSyntheticDataset(const SyntheticOptions& o) {
  // The planted model and its per-task thresholds depend on model_seed only.
  core::Xoshiro256 model_rng(o.model_seed);
  std::vector<std::vector<double>> weights(o.tasks, std::vector<double>(o.dim));
  for (auto& w : weights) {
    for (double& v : w) v = 2.0 * model_rng.NextDouble() - 1.0;
  }
  constexpr std::size_t kCalibrationRows = 4000;
  std::vector<std::vector<std::uint32_t>> calibration;
  for (std::size_t i = 0; i < kCalibrationRows; ++i) calibration.push_back(DrawRow(o, model_rng));
  std::vector<double> thresholds(o.tasks);
  for (std::uint32_t t = 0; t < o.tasks; ++t) {
    std::vector<double> s;
    for (const auto& bits : calibration) s.push_back(Score(weights[t], bits));
    std::sort(s.begin(), s.end());
    const double q = std::clamp(1.0 - o.positive_fraction, 0.0, 1.0);
    thresholds[t] = s[std::min(s.size() - 1, static_cast<std::size_t>(q * s.size()))];
  }

  Dataset d;
  for (std::uint32_t t = 0; t < o.tasks; ++t) d.tasks.push_back("task" + std::to_string(t));
  d.x.dim = o.dim;
  d.smiles.assign(o.rows, "");
  d.scaffolds.assign(o.rows, "");
  d.y.reserve(o.rows * o.tasks);
  core::Xoshiro256 rng(core::MixKeys(o.model_seed, o.sample_seed));
  for (std::size_t i = 0; i < o.rows; ++i) {
    const std::vector<std::uint32_t> bits = DrawRow(o, rng);
    d.x.AddRow(bits);
    for (std::uint32_t t = 0; t < o.tasks; ++t) {
      bool positive = Score(weights[t], bits) > thresholds[t];
      if (rng.NextDouble() < o.label_noise) positive = !positive;
      const bool missing = rng.NextDouble() < o.missing_fraction;
      d.y.push_back(missing ? kMissing : static_cast<std::int8_t>(positive));
    }
  }
  return d;
}

}  // namespace fedrx::ml
