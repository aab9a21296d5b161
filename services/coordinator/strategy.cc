#include "services/coordinator/strategy.h"

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
  if (name.empty() || name == "fedavg") return std::unique_ptr<Strategy>(new FedAvg());
  return core::InvalidArgument("unknown aggregation strategy '" + name + "' (known: fedavg)",
                               "StudySpec.strategy");
}

}  // namespace fedrx::coordinator
