#include "services/coordinator/strategy.h"

#include <cmath>

#include "services/coordinator/robust_strategy.h"

namespace fedrx::coordinator {

void FedAvg::Begin(std::size_t parameters) {
  // assign() reuses the buffer's pages when the size is unchanged.
  mean_.assign(parameters, 0.0f);
  total_weight_ = 0;
  accepted_ = 0;
}

core::Status FedAvg::Accept(std::span<const float> update, double weight) {
  if (update.size() != mean_.size()) {
    return core::InvalidArgument("update has " + std::to_string(update.size()) +
                                     " parameters, the model has " + std::to_string(mean_.size()),
                                 "update");
  }
  if (!(weight > 0)) return core::InvalidArgument("update weight must be positive", "num_samples");
  total_weight_ += weight;
  const float step = static_cast<float>(weight / total_weight_);
  float* m = mean_.data();
  const float* x = update.data();
  const std::size_t n = mean_.size();
  for (std::size_t i = 0; i < n; ++i) m[i] += step * (x[i] - m[i]);
  ++accepted_;
  return core::Status::Ok();
}

core::Result<std::vector<float>> FedAvg::Finish() {
  if (accepted_ == 0) return core::FailedPrecondition("no update was accepted", "round");
  accepted_ = 0;
  total_weight_ = 0;
  return std::move(mean_);
}

core::Result<std::unique_ptr<Strategy>> MakeStrategy(const std::string& name) {
  codec::StudySpec spec;
  spec.strategy = name;
  // Defaults for the parameterised rules: a tenth trimmed, Krum with f = 0.
  spec.trim_fraction = 0.1f;
  spec.norm_bound = 1.0f;
  return MakeStrategy(spec);
}

core::Result<std::unique_ptr<Strategy>> MakeStrategy(const codec::StudySpec& spec) {
  const std::string& name = spec.strategy;
  if (name.empty() || name == "fedavg") return std::unique_ptr<Strategy>(new FedAvg());
  if (name == "median") return std::unique_ptr<Strategy>(new CoordinateMedian());
  if (name == "trimmed_mean") {
    if (!(spec.trim_fraction >= 0 && spec.trim_fraction < 0.5f)) {
      return core::InvalidArgument("trim_fraction must be in [0, 0.5)", "StudySpec.trim_fraction");
    }
    return std::unique_ptr<Strategy>(new TrimmedMean(spec.trim_fraction));
  }
  if (name == "krum" || name == "multikrum") {
    if (spec.krum_byzantine > 10000) {
      return core::InvalidArgument("krum_byzantine must be at most 10000",
                                   "StudySpec.krum_byzantine");
    }
    if (name == "krum" && spec.krum_selected > 1) {
      return core::InvalidArgument("krum selects one update; use multikrum for more",
                                   "StudySpec.krum_selected");
    }
    return std::unique_ptr<Strategy>(
        new Krum(spec.krum_byzantine, name == "krum" ? 1 : spec.krum_selected));
  }
  if (name == "norm_bound") {
    if (!(spec.norm_bound > 0 && std::isfinite(spec.norm_bound))) {
      return core::InvalidArgument("norm_bound must be positive and finite",
                                   "StudySpec.norm_bound");
    }
    return std::unique_ptr<Strategy>(new NormBounded(spec.norm_bound));
  }
  return core::InvalidArgument("unknown aggregation strategy '" + name +
                                   "' (known: fedavg, median, trimmed_mean, krum, multikrum, "
                                   "norm_bound)",
                               "StudySpec.strategy");
}

}  // namespace fedrx::coordinator
