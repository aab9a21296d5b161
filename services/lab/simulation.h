// An in-process simulation of federated rounds for the lab's experiments
// (robust aggregation under poisoning, DP noise calibration): the sites are
// simulated — datasets in this process, not site services — but they train
// with the real Trainer, and the real coordinator strategies aggregate their
// updates. Not thread-safe; SimulateFederation blocks for the whole run.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "messages/codec/message.h"
#include "services/core/status.h"
#include "services/ml/dataset.h"
#include "services/ml/model.h"

namespace fedrx::lab {

// The model a sign-flipping, scaling attacker sends instead of its honest
// one: trained := global - scale * (trained - global), i.e. its update
// reversed and magnified. kInvalidArgument for mismatched sizes or a
// non-finite scale; `trained` is unchanged then.
core::Status SignFlipAndScale(std::span<const float> global, std::span<float> trained,
                              double scale);

struct SimulatedSite {
  std::string id;  // also mixed into the site's per-round training seed
  ml::Dataset train;
  bool attacker = false;
};

struct SimulationOptions {
  std::uint32_t rounds = 3;
  std::uint32_t local_epochs = 1;
  std::uint32_t batch_size = 64;
  float learning_rate = 1e-3f;
  // The initial model (InitParameters) and each site's round seed
  // (coordinator::SiteRoundSeed), so that runs with different rules start
  // from the same model and train their sites with the same seeds.
  std::uint64_t seed = 0;
  // s of SignFlipAndScale, for the sites marked attacker.
  double attack_scale = 10;
  // Client-level DP as the platform's sites apply it (privacy::PrivatizeUpdate):
  // clip each update's delta to this L2 norm (0: no DP) and add Gaussian noise
  // of stddev noise_multiplier x clip_norm; updates then weigh equally.
  double dp_clip_norm = 0;
  double dp_noise_multiplier = 0;
  int threads = 2;
};

struct SimulationResult {
  std::string rule;  // the strategy's name
  // Mean test ROC-AUC of the global model after each round.
  std::vector<double> round_mean_roc_auc;
  double mean_roc_auc = 0;   // after the last round
  std::vector<float> model;  // the final global model
};

// Runs options.rounds rounds from InitParameters(net, seed). Each round every
// site trains the global model on its rows (one Trainer per site, its Adam
// state kept across rounds, as a site service does); attackers then apply
// SignFlipAndScale; the strategy `rule` names (coordinator::MakeStrategy:
// strategy, trim_fraction, krum_byzantine, krum_selected, norm_bound)
// aggregates them weighted by sample count, in site order; the aggregate is
// the next global model. Evaluated on `test` (whose tasks match the net's)
// after each round. Errors: kInvalidArgument for no sites, a bad rule, or
// data that does not fit the net; a strategy's own error (Krum with too few
// sites).
core::Result<SimulationResult> SimulateFederation(const ml::NetSpec& net,
                                                  std::span<const SimulatedSite> sites,
                                                  const ml::Dataset& test,
                                                  const codec::StudySpec& rule,
                                                  const SimulationOptions& options);

}  // namespace fedrx::lab
