// Local training of the fedrx network (model.h): minibatch Adam on masked
// binary cross-entropy, deterministic for a seed and identical for any thread
// count. A Trainer owns a small thread pool and Adam's state; use one Trainer
// from one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "services/core/status.h"
#include "services/ml/dataset.h"
#include "services/ml/model.h"

namespace fedrx::ml {

struct TrainOptions {
  std::uint32_t epochs = 1;
  std::uint32_t batch_size = 64;
  float learning_rate = 1e-3f;
  float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
  // L2 penalty added to the gradient, as torch.optim.Adam's weight_decay.
  float weight_decay = 0;
  // FedProx (Li, Sahu, Zaheer, Sanjabi, Talwalkar, Smith, "Federated
  // Optimization in Heterogeneous Networks", MLSys 2020): the proximal term
  // (mu/2) ||w - w_global||^2, w_global being the parameters Train() starts
  // from, adds mu (w - w_global) to every gradient. 0 (the default) leaves
  // training bit-identical to plain local training.
  float proximal_mu = 0;
  // Drives the per-epoch shuffles and the dropout masks. Federated rounds
  // should pass a different seed each round (e.g. mixed with the round number).
  std::uint64_t seed = 0;
  // Threads working on each batch, the caller's included. Results are
  // bit-identical for every value.
  int threads = 2;
  // false: every Train call starts Adam afresh (moments zero, step 0), as
  // federated rounds do. true: moments and step carry over to the next call
  // with the same parameter count.
  bool keep_optimizer_state = false;
};

struct TrainStats {
  // Per epoch: the masked BCE summed over the labelled entries seen in that
  // epoch (each computed before its batch's update, with dropout) divided by
  // their number. NaN for an epoch without labelled entries.
  std::vector<double> epoch_loss;
  std::uint64_t samples_seen = 0;
  double seconds = 0;
};

class BatchEngine;     // trainer.cc
struct AdamState;      // trainer.cc

// Trains parameters in place.
//
// Each batch: the forward and backward passes through the dense layers run
// over fixed 16-row shards of the batch (a shard's arithmetic does not depend
// on which thread runs it); the shards' dense-layer gradients are summed in
// shard order; then one pass over the rows of the sparse first layer's
// weights, split by columns, sums each row's gradient from the samples that
// have that bit (in sample order), applies Adam to the row, and adds the
// updated row into the next batch's first-layer pre-activations. So results
// are bit-identical for any thread count. The loss of a batch is the mean
// over its labelled (row, task) entries; missing labels contribute neither
// loss nor gradient; batches without any label are skipped. Rows are
// shuffled every epoch and dropout masks are drawn from a counter-based hash
// of (seed, epoch, batch, layer, row, unit).
class Trainer {
 public:
  explicit Trainer(TrainOptions options);
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  // Runs options().epochs epochs over `data` and updates `params`. Blocks.
  // InvalidArgument when the options, the spec, the parameters (size,
  // NaN/Inf) or the data (input dim, bit indices, label count and values)
  // are invalid; `params` is then unchanged. An empty dataset trains nothing.
  core::Result<TrainStats> Train(const NetSpec& spec, const Dataset& data,
                                 std::vector<float>& params);

  // Forgets Adam's moments and step count.
  void ResetOptimizer();

  // Changes the seed of the next Train call (e.g. per federated round) while
  // keeping the optimizer state when keep_optimizer_state is set.
  void set_seed(std::uint64_t seed) { options_.seed = seed; }

  const TrainOptions& options() const { return options_; }

 private:
  TrainOptions options_;
  std::unique_ptr<BatchEngine> engine_;
  std::unique_ptr<AdamState> adam_;
};

// The training loss (masked BCE averaged over every labelled entry of `data`,
// without dropout) and its gradient with respect to `params`, written to
// `grad` (resized to ParameterCount). For evaluation and gradient checks.
// Same validation as Trainer::Train.
core::Result<double> LossAndGradient(const NetSpec& spec, std::span<const float> params,
                                     const Dataset& data, std::vector<float>& grad,
                                     int threads = 1);

}  // namespace fedrx::ml
