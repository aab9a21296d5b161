// Server optimisers: how the coordinator steps the global model from a
// round's aggregate (Reddi, Charles, Zaheer, Garrett, Rush, Konečný, Kumar,
// McMahan, "Adaptive Federated Optimization", ICLR 2021, Algorithm 2; FedAvgM
// from Hsu, Qi, Brown, "Measuring the Effects of Non-Identical Data
// Distribution for Federated Visual Classification", 2019). Not thread-safe.
//
// With x the global model and Delta = aggregate - x (the negated
// pseudo-gradient), eta the server learning rate:
//   fedavg      x += eta Delta                       (eta = 1: x = aggregate)
//   fedavgm     m = beta1 m + Delta;  x += eta m
//   fedadagrad  m = beta1 m + (1 - beta1) Delta;  v = v + Delta^2
//   fedadam     m as above;  v = beta2 v + (1 - beta2) Delta^2
//   fedyogi     m as above;  v = v - (1 - beta2) Delta^2 sign(v - Delta^2)
//   adaptive:   x += eta m / (sqrt(v) + tau)
// m starts at 0 and v at tau^2 (the paper's v_{-1} >= tau^2); no bias
// correction, as in the paper.
//
// State: m and v (two model-sized float vectors for the adaptive ones, one
// for fedavgm) belong to the study and must survive a coordinator restart,
// or a resumed study would restart its moments and follow another
// trajectory. SerializeState()/RestoreState() give the bytes the
// StudyStore keeps beside each model version (StudyStore::CommitRound).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "messages/codec/message.h"
#include "services/core/status.h"

namespace fedrx::coordinator {

struct ServerOptimizerOptions {
  std::string name = "fedavg";
  float learning_rate = 1.0f;
  float beta1 = 0.9f;
  float beta2 = 0.99f;
  float tau = 1e-3f;
};

class ServerOptimizer {
 public:
  enum class Kind : std::uint8_t { kFedAvg = 0, kFedAvgM = 1, kFedAdagrad = 2, kFedAdam = 3, kFedYogi = 4 };

  // kInvalidArgument names the option that is unknown or out of range.
  static core::Result<ServerOptimizer> Create(const ServerOptimizerOptions& options);
  static core::Result<ServerOptimizer> FromStudy(const codec::StudySpec& spec);

  Kind kind() const { return kind_; }
  const char* name() const;
  // Plain FedAvg with eta = 1: the aggregate is the next model, bit for bit;
  // the caller need not keep the global model for Step().
  bool identity() const { return kind_ == Kind::kFedAvg && options_.learning_rate == 1.0f; }
  // Whether Step() keeps state across rounds (which must be persisted).
  bool stateful() const { return kind_ != Kind::kFedAvg; }
  std::uint64_t steps() const { return steps_; }

  // Turns `aggregate` into the next global model, in place, given the
  // current one. kInvalidArgument for mismatched sizes (nothing changes then).
  core::Status Step(std::span<const float> global, std::vector<float>& aggregate);

  // The state (kind, step count, m, v) as bytes, and back. RestoreState
  // answers kDataLoss for bytes that are not a state of this kind and size.
  std::string SerializeState() const;
  core::Status RestoreState(std::string_view bytes, std::size_t parameters);
  // Forgets the moments (a study that starts from its initial model).
  void Reset();

 private:
  ServerOptimizer(Kind kind, ServerOptimizerOptions options)
      : kind_(kind), options_(std::move(options)) {}
  void Initialise(std::size_t parameters);

  Kind kind_;
  ServerOptimizerOptions options_;
  std::uint64_t steps_ = 0;
  std::vector<float> m_, v_;
};

}  // namespace fedrx::coordinator
