// Robust aggregation: Strategy implementations that bound what a few
// poisoned (Byzantine) site updates can do to the global model. Not
// thread-safe.
//
// Memory: median, trimmed mean and (multi-)Krum need every update at once,
// so they keep a copy of each accepted update until Finish(): n x model
// floats (20 sites of a 10 M-parameter model: 800 MB), unlike FedAvg's one
// model. Norm bounding streams like FedAvg (one model, plus the global model
// the caller keeps).
// Weights: median, trimmed mean and Krum ignore the sample counts (a
// Byzantine site can claim any count); norm bounding keeps FedAvg's weighting.
// Secure aggregation: the coordinator then sees only the sum of the masked
// updates, so median, trimmed mean and Krum, which need each update, cannot
// be combined with it. Norm bounding can: each site clips its own delta
// before masking, and the server-side clip here is then a no-op.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "services/coordinator/strategy.h"

namespace fedrx::coordinator {

// Keeps every accepted update (row-major, n x parameters) for a rule that
// combines them at Finish().
class BufferedStrategy : public Strategy {
 public:
  void Begin(std::size_t parameters) override;
  core::Status Accept(std::span<const float> update, double weight) override;
  std::size_t accepted() const override { return count_; }
  core::Result<std::vector<float>> Finish() override;

 protected:
  // Combines `n` updates of `parameters` floats at `updates` (row-major)
  // into `out` (sized `parameters`). n >= 1.
  virtual core::Status Combine(const float* updates, std::size_t n, std::size_t parameters,
                               std::vector<float>& out) = 0;

 private:
  std::size_t parameters_ = 0;
  std::size_t count_ = 0;
  std::vector<float> updates_;
};

// Coordinate-wise median (Yin, Chen, Ramchandran, Bartlett, "Byzantine-Robust
// Distributed Learning: Towards Optimal Statistical Rates", ICML 2018): each
// parameter is the median of the updates' values; the mean of the two middle
// ones for an even count.
class CoordinateMedian final : public BufferedStrategy {
 public:
  const char* name() const override { return "median"; }

 private:
  core::Status Combine(const float* updates, std::size_t n, std::size_t parameters,
                       std::vector<float>& out) override;
};

// Coordinate-wise trimmed mean (Yin et al. 2018): per parameter, drops the
// floor(beta n) smallest and largest values and averages the rest.
// beta in [0, 0.5); beta 0 is the unweighted mean.
class TrimmedMean final : public BufferedStrategy {
 public:
  explicit TrimmedMean(double beta) : beta_(beta) {}
  const char* name() const override { return "trimmed_mean"; }

 private:
  core::Status Combine(const float* updates, std::size_t n, std::size_t parameters,
                       std::vector<float>& out) override;
  double beta_;
};

// Krum and multi-Krum (Blanchard, El Mhamdi, Guerraoui, Stainer, "Machine
// Learning with Adversaries: Byzantine Tolerant Gradient Descent", NeurIPS
// 2017). Each update's score is the sum of its squared L2 distances to its
// n - f - 2 nearest other updates; Krum returns the update with the lowest
// score, multi-Krum the mean of the m lowest-scored ones. Tolerates f
// Byzantine updates when n >= 2f + 3; Finish() fails with fewer. Ties go to
// the update accepted first (the runner accepts in site-id order).
class Krum final : public BufferedStrategy {
 public:
  // selected: m; 1 is Krum, 0 means n - f; clamped to n - f.
  Krum(std::uint32_t byzantine, std::uint32_t selected)
      : byzantine_(byzantine), selected_(selected) {}
  const char* name() const override { return selected_ == 1 ? "krum" : "multikrum"; }

  // The indices (in acceptance order) the last Finish() averaged.
  const std::vector<std::size_t>& chosen() const { return chosen_; }

 private:
  core::Status Combine(const float* updates, std::size_t n, std::size_t parameters,
                       std::vector<float>& out) override;
  std::uint32_t byzantine_;
  std::uint32_t selected_;
  std::vector<std::size_t> chosen_;
};

// Norm bounding (Sun, Kairouz, Suresh, McMahan, "Can You Really Backdoor
// Federated Learning?", 2019): each update's delta from the global model is
// scaled to L2 norm at most `bound`, then the clipped updates are averaged
// as FedAvg does (sample-weighted running mean, streaming). Needs the
// global model: BeginFrom(); Accept() after a plain Begin() is
// kFailedPrecondition.
class NormBounded final : public Strategy {
 public:
  explicit NormBounded(double bound) : bound_(bound) {}
  const char* name() const override { return "norm_bound"; }
  void Begin(std::size_t parameters) override;
  void BeginFrom(std::span<const float> global) override;
  bool uses_global() const override { return true; }
  core::Status Accept(std::span<const float> update, double weight) override;
  std::size_t accepted() const override { return accepted_; }
  core::Result<std::vector<float>> Finish() override;

  // Updates scaled back since Begin.
  std::size_t clipped() const { return clipped_; }

 private:
  double bound_;
  std::span<const float> global_;
  bool has_global_ = false;
  std::vector<float> mean_;
  double total_weight_ = 0;
  std::size_t accepted_ = 0;
  std::size_t clipped_ = 0;
};

}  // namespace fedrx::coordinator
