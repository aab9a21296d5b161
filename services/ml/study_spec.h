// Study specs from files, and the network a spec describes, as the ML core
// sees it. Pure functions; thread-safe.
#pragma once

#include "messages/codec/message.h"
#include "services/core/config.h"
#include "services/core/status.h"
#include "services/ml/model.h"

namespace fedrx::ml {

// The study's network. In a private-heads study it describes the trunk only
// (num_tasks 0): a site trains WithHead(trunk, its own task count).
NetSpec NetSpecFromStudy(const codec::StudySpec& spec);

// Reads a study from `key = value` config:
//   study.id, study.name, study.tasks (comma-separated), study.sites (optional)
//   model.input_dim (2048), model.hidden (comma-separated widths, 512), model.dropout (0.2)
//   train.rounds, train.local_epochs (1), train.learning_rate (0.001),
//   train.batch_size (64), train.min_sites (1), train.round_deadline (60s),
//   train.seed (0), train.strategy (fedavg)
//   train.evaluate_every (1; 0 never runs federated evaluation)
//   featurize.radius (2)
//   featurize.preparation_hash (empty: unchecked): the hash `fedrx ingest`
//   prints; sites reporting another are left out of the rounds
//   train.server_optimizer (fedavg | fedavgm | fedadagrad | fedadam | fedyogi),
//   train.server_learning_rate (1), train.server_beta1 (0.9), train.server_beta2
//   (0.99), train.server_tau (0.001), train.proximal_mu (0: no FedProx term)
//   robust.trim_fraction, robust.krum_byzantine, robust.krum_selected,
//   robust.norm_bound (for train.strategy trimmed_mean, krum, multikrum, norm_bound)
//   privacy.clip_norm (0: no DP), privacy.noise_multiplier, privacy.delta (1e-5),
//   privacy.epsilon_budget (0: unlimited), privacy.secure_aggregation (false),
//   privacy.secagg_threshold (0: min_sites), privacy.secagg_neighbours (0: every
//   pair of sites masks; k: SecAgg+ with k neighbours per site)
//   train.private_heads (false): the model is a shared trunk, each site keeps
//   a head for its own tasks; study.tasks is then optional (when given, a
//   site's head covers the ones it holds labels for)
// Errors name the key and where its value came from.
core::Result<codec::StudySpec> StudySpecFromConfig(const core::Config& config);

}  // namespace fedrx::ml
