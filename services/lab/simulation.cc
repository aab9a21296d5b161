#include "services/lab/simulation.h"

#include <cmath>
#include <memory>

#include "services/coordinator/strategy.h"
#include "services/coordinator/study_runner.h"
#include "services/ml/metrics.h"
#include "services/ml/trainer.h"
#include "services/privacy/dp_mechanism.h"

namespace fedrx::lab {

core::Status SignFlipAndScale(std::span<const float> global, std::span<float> trained,
                              double scale) {
  if (global.size() != trained.size()) {
    return core::InvalidArgument("the trained model has " + std::to_string(trained.size()) +
                                     " parameters, the global one " + std::to_string(global.size()),
                                 "attack");
  }
  if (!std::isfinite(scale)) return core::InvalidArgument("attack scale must be finite", "attack");
  for (std::size_t i = 0; i < trained.size(); ++i) {
    const double delta = static_cast<double>(trained[i]) - global[i];
    trained[i] = static_cast<float>(global[i] - scale * delta);
  }
  return core::Status::Ok();
}

core::Result<SimulationResult> SimulateFederation(const ml::NetSpec& net,
                                                  std::span<const SimulatedSite> sites,
                                                  const ml::Dataset& test,
                                                  const codec::StudySpec& rule,
                                                  const SimulationOptions& options) {
  if (sites.empty()) return core::InvalidArgument("a federation needs sites", "sites");
  FEDRX_RETURN_IF_ERROR(ml::ValidateSpec(net));
  FEDRX_ASSIGN_OR_RETURN(std::unique_ptr<coordinator::Strategy> strategy,
                         coordinator::MakeStrategy(rule));
  const bool dp = options.dp_clip_norm > 0;
  privacy::DpSiteOptions dp_options;
  dp_options.clip_norm = options.dp_clip_norm;
  dp_options.noise_multiplier = options.dp_noise_multiplier;

  std::vector<std::unique_ptr<ml::Trainer>> trainers;
  std::vector<privacy::GaussianNoise> noise;
  for (std::size_t i = 0; i < sites.size(); ++i) {
    ml::TrainOptions o;
    o.epochs = options.local_epochs;
    o.batch_size = options.batch_size;
    o.learning_rate = options.learning_rate;
    o.threads = options.threads;
    o.keep_optimizer_state = true;
    trainers.push_back(std::make_unique<ml::Trainer>(o));
    if (dp) {
      // Reproducible noise for a simulation; the sites of the platform seed
      // theirs from the OS.
      privacy::GaussianNoise::Seed seed{};
      const std::uint64_t s = coordinator::SiteRoundSeed(options.seed, 0, sites[i].id);
      for (std::size_t b = 0; b < 8; ++b) seed[b] = static_cast<std::uint8_t>(s >> (8 * b));
      FEDRX_ASSIGN_OR_RETURN(privacy::GaussianNoise n, privacy::GaussianNoise::FromSeed(seed));
      noise.push_back(std::move(n));
    }
  }

  SimulationResult result;
  result.rule = strategy->name();
  std::vector<float> global = ml::InitParameters(net, options.seed);
  std::vector<float> local;
  for (std::uint32_t round = 1; round <= options.rounds; ++round) {
    strategy->BeginFrom(global);
    for (std::size_t i = 0; i < sites.size(); ++i) {
      local = global;
      trainers[i]->set_seed(coordinator::SiteRoundSeed(options.seed, round, sites[i].id));
      if (auto trained = trainers[i]->Train(net, sites[i].train, local); !trained.ok()) {
        return trained.status();
      }
      if (sites[i].attacker) {
        FEDRX_RETURN_IF_ERROR(SignFlipAndScale(global, local, options.attack_scale));
      } else if (dp) {
        // An attacker does not follow the protocol, so it neither clips nor noises.
        if (auto p = privacy::PrivatizeUpdate(local, global, dp_options, noise[i]); !p.ok()) {
          return p.status();
        }
      }
      // With DP the coordinator weighs sites equally (a sample count would
      // leak through the weights and break the clip's bound).
      const double weight = dp ? 1.0 : static_cast<double>(sites[i].train.size());
      if (weight > 0) FEDRX_RETURN_IF_ERROR(strategy->Accept(local, weight));
    }
    FEDRX_ASSIGN_OR_RETURN(global, strategy->Finish());
    FEDRX_ASSIGN_OR_RETURN(std::vector<float> probs,
                           ml::Predict(net, global, test.x, options.threads));
    FEDRX_ASSIGN_OR_RETURN(std::vector<ml::TaskMetrics> metrics, ml::Evaluate(test, probs));
    result.round_mean_roc_auc.push_back(ml::MeanRocAuc(metrics));
  }
  result.mean_roc_auc =
      result.round_mean_roc_auc.empty() ? std::nan("") : result.round_mean_roc_auc.back();
  result.model = std::move(global);
  return result;
}

}  // namespace fedrx::lab
