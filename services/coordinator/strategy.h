// Strategy: how a round's site updates become the next global model, apart
// from the round loop and the transport. Updates are consumed one at a time
// as they arrive (streaming): memory is one model's worth, whatever the
// number of sites. Not thread-safe.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "messages/codec/message.h"
#include "services/core/status.h"

namespace fedrx::coordinator {

class Strategy {
 public:
  virtual ~Strategy() = default;
  virtual const char* name() const = 0;
  // Starts a round over models of `parameters` floats.
  virtual void Begin(std::size_t parameters) = 0;
  // Starts a round whose updates are measured against the current global
  // model `global` (norm bounding does). The caller keeps `global` alive and
  // unchanged until Finish(). The default ignores it: Begin(global.size()).
  virtual void BeginFrom(std::span<const float> global) { Begin(global.size()); }
  // Whether BeginFrom() needs the global model (else Begin() will do).
  virtual bool uses_global() const { return false; }
  // Folds one site's update (its full trained weights) in, weighted by
  // `weight` (the site's sample count). kInvalidArgument for a wrong size or a
  // non-positive weight; the aggregate is untouched then.
  virtual core::Status Accept(std::span<const float> update, double weight) = 0;
  virtual std::size_t accepted() const = 0;
  // The aggregated model; kFailedPrecondition when nothing was accepted.
  // Hands the buffer over: Begin() must be called again before reuse.
  virtual core::Result<std::vector<float>> Finish() = 0;
};

// FedAvg (McMahan et al. 2017): the sample-weighted mean of the sites'
// weights, kept as a running mean (mean += w/W * (x - mean)) in one float32
// buffer. Fed the same updates in the same order it gives the same bits.
class FedAvg final : public Strategy {
 public:
  const char* name() const override { return "fedavg"; }
  void Begin(std::size_t parameters) override;
  core::Status Accept(std::span<const float> update, double weight) override;
  std::size_t accepted() const override { return accepted_; }
  core::Result<std::vector<float>> Finish() override;

 private:
  std::vector<float> mean_;
  double total_weight_ = 0;
  std::size_t accepted_ = 0;
};

// The strategies a study may name, with default parameters;
// kInvalidArgument for an unknown one.
core::Result<std::unique_ptr<Strategy>> MakeStrategy(const std::string& name);
// The strategy a study names, with the study's parameters (trim fraction,
// Krum's f and m, the norm bound); kInvalidArgument names the field that is
// unknown or out of range. Known: fedavg, median, trimmed_mean, krum,
// multikrum, norm_bound (robust_strategy.h).
core::Result<std::unique_ptr<Strategy>> MakeStrategy(const codec::StudySpec& spec);

}  // namespace fedrx::coordinator
