#include "services/ml/study_spec.h"

#include <charconv>
#include <cmath>
#include <limits>
#include <sstream>

namespace fedrx::ml {
namespace {

std::vector<std::string> CommaList(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    const auto b = item.find_first_not_of(" \t");
    const auto e = item.find_last_not_of(" \t");
    if (b != std::string::npos) out.push_back(item.substr(b, e - b + 1));
  }
  return out;
}

core::Result<double> DoubleOr(const core::Config& c, std::string_view key, double fallback) {
  if (!c.Has(key)) return fallback;
  FEDRX_ASSIGN_OR_RETURN(std::string text, c.String(key));
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size() || !std::isfinite(v)) {
    return core::InvalidArgument(std::string(key) + " = \"" + text + "\": expected a number",
                                 c.SourceOf(key));
  }
  return v;
}

core::Result<float> FloatOr(const core::Config& c, std::string_view key, float fallback) {
  FEDRX_ASSIGN_OR_RETURN(double v, DoubleOr(c, key, fallback));
  return static_cast<float>(v);
}

}  // namespace

NetSpec NetSpecFromStudy(const codec::StudySpec& spec) {
  NetSpec net;
  net.input_dim = spec.model.input_dim;
  net.hidden = spec.model.hidden;
  net.num_tasks = spec.model.num_tasks;
  net.dropout = spec.model.dropout;
  return net;
}

core::Result<codec::StudySpec> StudySpecFromConfig(const core::Config& c) {
  codec::StudySpec s;
  FEDRX_ASSIGN_OR_RETURN(s.study_id, c.String("study.id"));
  s.name = c.StringOr("study.name", s.study_id);
  // A private-heads study may leave its tasks to the sites (each brings its own).
  FEDRX_ASSIGN_OR_RETURN(s.private_heads, c.BoolOr("train.private_heads", false));
  if (s.private_heads) {
    s.tasks = CommaList(c.StringOr("study.tasks", ""));
  } else {
    FEDRX_ASSIGN_OR_RETURN(std::string tasks, c.String("study.tasks"));
    s.tasks = CommaList(tasks);
  }
  s.sites = CommaList(c.StringOr("study.sites", ""));
  FEDRX_ASSIGN_OR_RETURN(std::int64_t input_dim, c.IntOr("model.input_dim", 2048, 1, 1 << 24));
  s.model.input_dim = static_cast<std::uint32_t>(input_dim);
  for (const auto& w : CommaList(c.StringOr("model.hidden", "512"))) {
    std::uint32_t width = 0;
    auto [p, ec] = std::from_chars(w.data(), w.data() + w.size(), width);
    if (ec != std::errc() || p != w.data() + w.size() || width == 0) {
      return core::InvalidArgument("model.hidden: '" + w + "' is not a positive width",
                                   c.SourceOf("model.hidden"));
    }
    s.model.hidden.push_back(width);
  }
  // With private heads the model is the trunk: the head is each site's own.
  s.model.num_tasks = s.private_heads ? 0 : static_cast<std::uint32_t>(s.tasks.size());
  FEDRX_ASSIGN_OR_RETURN(s.model.dropout, FloatOr(c, "model.dropout", 0.2f));
  FEDRX_ASSIGN_OR_RETURN(std::int64_t rounds, c.Int("train.rounds", 1, 100000));
  s.rounds = static_cast<std::uint32_t>(rounds);
  FEDRX_ASSIGN_OR_RETURN(std::int64_t epochs, c.IntOr("train.local_epochs", 1, 1, 1000));
  s.local_epochs = static_cast<std::uint32_t>(epochs);
  FEDRX_ASSIGN_OR_RETURN(s.learning_rate, FloatOr(c, "train.learning_rate", 1e-3f));
  FEDRX_ASSIGN_OR_RETURN(std::int64_t batch, c.IntOr("train.batch_size", 64, 1, 65536));
  s.batch_size = static_cast<std::uint32_t>(batch);
  FEDRX_ASSIGN_OR_RETURN(std::int64_t min_sites, c.IntOr("train.min_sites", 1, 1, 100000));
  s.min_sites = static_cast<std::uint32_t>(min_sites);
  FEDRX_ASSIGN_OR_RETURN(std::chrono::milliseconds deadline,
                         c.DurationOr("train.round_deadline", std::chrono::seconds(60)));
  s.round_deadline_ms = static_cast<std::uint32_t>(deadline.count());
  FEDRX_ASSIGN_OR_RETURN(std::int64_t seed,
                         c.IntOr("train.seed", 0, 0, std::numeric_limits<std::int64_t>::max()));
  s.seed = static_cast<std::uint64_t>(seed);
  s.strategy = c.StringOr("train.strategy", "fedavg");
  FEDRX_ASSIGN_OR_RETURN(std::int64_t radius, c.IntOr("featurize.radius", 2, 0, 6));
  s.fingerprint_radius = static_cast<std::uint32_t>(radius);
  FEDRX_ASSIGN_OR_RETURN(std::int64_t every, c.IntOr("train.evaluate_every", 1, 0, 100000));
  s.evaluate_every = static_cast<std::uint32_t>(every);
  // Server optimiser and FedProx.
  s.server_optimizer = c.StringOr("train.server_optimizer", "fedavg");
  FEDRX_ASSIGN_OR_RETURN(s.server_learning_rate, FloatOr(c, "train.server_learning_rate", 1.0f));
  FEDRX_ASSIGN_OR_RETURN(s.server_beta1, FloatOr(c, "train.server_beta1", 0.9f));
  FEDRX_ASSIGN_OR_RETURN(s.server_beta2, FloatOr(c, "train.server_beta2", 0.99f));
  FEDRX_ASSIGN_OR_RETURN(s.server_tau, FloatOr(c, "train.server_tau", 0.001f));
  FEDRX_ASSIGN_OR_RETURN(s.proximal_mu, FloatOr(c, "train.proximal_mu", 0.0f));
  // Robust aggregation.
  FEDRX_ASSIGN_OR_RETURN(s.trim_fraction, FloatOr(c, "robust.trim_fraction", 0.0f));
  FEDRX_ASSIGN_OR_RETURN(std::int64_t byzantine, c.IntOr("robust.krum_byzantine", 0, 0, 100000));
  s.krum_byzantine = static_cast<std::uint32_t>(byzantine);
  FEDRX_ASSIGN_OR_RETURN(std::int64_t selected, c.IntOr("robust.krum_selected", 0, 0, 100000));
  s.krum_selected = static_cast<std::uint32_t>(selected);
  FEDRX_ASSIGN_OR_RETURN(s.norm_bound, FloatOr(c, "robust.norm_bound", 0.0f));
  // Privacy.
  FEDRX_ASSIGN_OR_RETURN(s.dp_clip_norm, FloatOr(c, "privacy.clip_norm", 0.0f));
  FEDRX_ASSIGN_OR_RETURN(s.dp_noise_multiplier, FloatOr(c, "privacy.noise_multiplier", 0.0f));
  FEDRX_ASSIGN_OR_RETURN(s.dp_delta, DoubleOr(c, "privacy.delta", 1e-5));
  FEDRX_ASSIGN_OR_RETURN(s.dp_epsilon_budget, DoubleOr(c, "privacy.epsilon_budget", 0.0));
  FEDRX_ASSIGN_OR_RETURN(s.secure_aggregation, c.BoolOr("privacy.secure_aggregation", false));
  FEDRX_ASSIGN_OR_RETURN(std::int64_t threshold, c.IntOr("privacy.secagg_threshold", 0, 0, 100000));
  s.secagg_threshold = static_cast<std::uint32_t>(threshold);
  FEDRX_ASSIGN_OR_RETURN(std::int64_t neighbours,
                         c.IntOr("privacy.secagg_neighbours", 0, 0, 100000));
  s.secagg_neighbours = static_cast<std::uint32_t>(neighbours);
  s.preparation_hash = c.StringOr("featurize.preparation_hash", "");
  if (s.preparation_hash.size() > 128) {
    return core::InvalidArgument("featurize.preparation_hash is longer than 128 bytes",
                                 c.SourceOf("featurize.preparation_hash"));
  }
  // A statistics study (study.statistic = pair_counts) counts label pairs
  // instead of training: study.tasks are the columns, study.statistic_rows the
  // rows, and there is no model (the coordinator's validation says the rest).
  s.statistic = c.StringOr("study.statistic", "");
  s.statistic_rows = CommaList(c.StringOr("study.statistic_rows", ""));
  if (!s.statistic.empty()) {
    s.model = codec::ModelSpec{};
  }
  return s;
}

}  // namespace fedrx::ml
