// Statistics studies (study_runner.h, "Statistics studies"): the spec's
// checks, the exact fixed point of a secure sum of counts, and the
// StudyRunner's summing and commit of a pair_counts round.
#include <algorithm>
#include <cmath>
#include <iostream>

#include "services/coordinator/study_runner.h"

namespace fedrx::coordinator {
namespace {

core::Status Bad(const std::string& what, const std::string& where) {
  return core::InvalidArgument(what, "StudySpec." + where);
}

bool Printable(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](unsigned char c) { return c >= 0x20 && c != 0x7f; });
}

core::Status CheckLabels(const std::vector<std::string>& labels, std::size_t most,
                         const std::string& field, const std::string& what) {
  if (labels.empty() || labels.size() > most) {
    return Bad("a pair_counts study names 1.." + std::to_string(most) + " " + what, field);
  }
  for (std::size_t i = 0; i < labels.size(); ++i) {
    const std::string where = field + "[" + std::to_string(i) + "]";
    if (labels[i].empty() || labels[i].size() > 128 || !Printable(labels[i])) {
      return Bad("label names are printable and 1..128 bytes", where);
    }
    if (std::find(labels.begin(), labels.begin() + static_cast<std::ptrdiff_t>(i), labels[i]) !=
        labels.begin() + static_cast<std::ptrdiff_t>(i)) {
      return Bad("label " + labels[i] + " is named twice", where);
    }
  }
  return core::Status::Ok();
}

// Most pairs a study may count (4 words each): far above any label panel,
// and it bounds the vector every site masks.
constexpr std::size_t kMaxPairs = 64 * 4096;

}  // namespace

bool IsStatisticsStudy(const codec::StudySpec& spec) {
  return !spec.statistic.empty() || !spec.statistic_rows.empty();
}

std::size_t StatisticLength(const codec::StudySpec& spec) {
  return 4 * spec.statistic_rows.size() * spec.tasks.size();
}

core::Status ValidateStatisticsSpec(const codec::StudySpec& spec) {
  FEDRX_RETURN_IF_ERROR(core::ValidateId(spec.study_id, "StudySpec.study_id"));
  if (spec.statistic != kStatisticPairCounts) {
    return Bad("unknown statistic '" + spec.statistic + "' (known: " + kStatisticPairCounts +
                   "; empty trains a model, and then statistic_rows must be empty)",
               "statistic");
  }
  FEDRX_RETURN_IF_ERROR(
      CheckLabels(spec.statistic_rows, 64, "statistic_rows", "row (clinical) labels"));
  FEDRX_RETURN_IF_ERROR(CheckLabels(spec.tasks, 4096, "tasks", "column (preclinical) labels"));
  for (std::size_t i = 0; i < spec.statistic_rows.size(); ++i) {
    if (std::find(spec.tasks.begin(), spec.tasks.end(), spec.statistic_rows[i]) !=
        spec.tasks.end()) {
      return Bad("label " + spec.statistic_rows[i] + " is both a row and a column",
                 "statistic_rows[" + std::to_string(i) + "]");
    }
  }
  if (spec.statistic_rows.size() * spec.tasks.size() > kMaxPairs) {
    return Bad("at most " + std::to_string(kMaxPairs) + " label pairs", "tasks");
  }
  if (spec.rounds != 1) return Bad("a pair_counts study runs exactly 1 round", "rounds");
  if (spec.private_heads) return Bad("a pair_counts study has no model heads", "private_heads");
  if (spec.dp_clip_norm != 0 || spec.dp_noise_multiplier != 0 || spec.dp_epsilon_budget != 0) {
    // Gaussian noise on float counts is neither private as accounted for
    // model deltas nor exact; counts would need a discrete mechanism.
    return Bad(
        "differential privacy on counts is not implemented: leave dp_clip_norm, "
        "dp_noise_multiplier and dp_epsilon_budget at 0 (secure aggregation hides each "
        "site's counts)",
        spec.dp_clip_norm != 0          ? "dp_clip_norm"
        : spec.dp_noise_multiplier != 0 ? "dp_noise_multiplier"
                                        : "dp_epsilon_budget");
  }
  if (!spec.strategy.empty() && spec.strategy != "fedavg") {
    return Bad("a pair_counts study sums the sites' counts; strategy " + spec.strategy +
                   " does not apply (leave it empty or fedavg)",
               "strategy");
  }
  if (!spec.server_optimizer.empty() && spec.server_optimizer != "fedavg") {
    return Bad("a pair_counts study has no server optimiser", "server_optimizer");
  }
  if (spec.proximal_mu != 0) return Bad("a pair_counts study trains nothing", "proximal_mu");
  if (spec.norm_bound != 0 || spec.trim_fraction != 0 || spec.krum_byzantine != 0 ||
      spec.krum_selected != 0) {
    return Bad("robust aggregation does not apply to summed counts",
               spec.norm_bound != 0      ? "norm_bound"
               : spec.trim_fraction != 0 ? "trim_fraction"
                                         : "krum_byzantine");
  }
  // The site and secure-aggregation rules are the training studies': check
  // them on the same spec shaped as a minimal valid training study.
  codec::StudySpec shaped = spec;
  shaped.statistic.clear();
  shaped.statistic_rows.clear();
  shaped.tasks = {"t"};
  shaped.model = codec::ModelSpec{1, {1}, 1, 0};
  shaped.local_epochs = 1;
  shaped.learning_rate = 1;
  shaped.batch_size = 1;
  shaped.strategy = "fedavg";
  shaped.server_optimizer = "fedavg";
  shaped.server_learning_rate = 1;
  shaped.fingerprint_radius = 0;
  return ValidateStudySpec(shaped);
}

core::Result<privacy::FixedPointEncoding> CountsEncoding(std::uint64_t largest_declared,
                                                         std::size_t sites) {
  const std::uint64_t clip = std::max<std::uint64_t>(largest_declared, 1);
  const std::uint64_t n = std::max<std::size_t>(sites, 1);
  if (clip >= kMaxExactCount || n * clip >= kMaxExactCount) {
    return core::InvalidArgument(
        std::to_string(sites) + " site(s) declaring up to " + std::to_string(largest_declared) +
            " compounds could sum to 2^24 or more, which the stored float32 counts would round",
        "UpdateReady.num_samples");
  }
  privacy::FixedPointEncoding e;
  e.clip = static_cast<double>(clip);
  e.scale_bits = 0;
  // n * clip < 2^24 < 2^31: the ring sum cannot wrap (Validate says the same).
  FEDRX_RETURN_IF_ERROR(e.Validate(sites));
  return e;
}

core::Status CheckCounts(std::span<const float> counts, std::uint64_t compounds,
                         const std::string& where) {
  if (compounds >= kMaxExactCount) {
    return core::InvalidArgument(
        "a site declares " + std::to_string(compounds) + " compounds, at or above 2^24",
        "ModelUpdate.num_samples");
  }
  if (counts.size() % 4 != 0) {
    return core::InvalidArgument("counts come 4 per pair; got " + std::to_string(counts.size()),
                                 where);
  }
  for (std::size_t pair = 0; pair * 4 < counts.size(); ++pair) {
    double total = 0;
    for (std::size_t k = 0; k < 4; ++k) {
      const float v = counts[pair * 4 + k];
      if (!(v >= 0) || !std::isfinite(v) || std::floor(v) != v) {
        return core::InvalidArgument(
            "pair " + std::to_string(pair) + " holds a count that is not a non-negative integer",
            where);
      }
      total += v;
    }
    if (total > static_cast<double>(compounds)) {
      return core::InvalidArgument("pair " + std::to_string(pair) + " counts " +
                                       std::to_string(static_cast<std::uint64_t>(total)) +
                                       " compounds, the site declared " + std::to_string(compounds),
                                   where);
    }
  }
  return core::Status::Ok();
}

core::Status StudyRunner::AddCounts(std::span<const float> counts, std::uint64_t compounds) {
  FEDRX_RETURN_IF_ERROR(CheckCounts(counts, compounds, "tensor 0 (counts)"));
  if (counts_sum_.size() != counts.size()) counts_sum_.assign(counts.size(), 0);
  for (std::size_t i = 0; i < counts.size(); ++i) {
    counts_sum_[i] += static_cast<std::uint64_t>(counts[i]);
  }
  return core::Status::Ok();
}

core::Status StudyRunner::TakeSecureCounts(const privacy::SecAggResult& result) {
  // Every site masks with weight 1 at scale 2^0: the weight coordinate sums
  // to the survivors exactly, and any other total means a site masked
  // something else.
  if (result.total_weight != static_cast<double>(result.survivors.size())) {
    return core::InvalidArgument("the weights sum to " + std::to_string(result.total_weight) +
                                     ", not the " + std::to_string(result.survivors.size()) +
                                     " survivors (each site weighs 1)",
                                 "SecAggResult.total_weight");
  }
  if (result.weighted_sum.size() != parameters_) {
    return core::InvalidArgument("the sum has " + std::to_string(result.weighted_sum.size()) +
                                     " words, the study counts " + std::to_string(parameters_),
                                 "SecAggResult.weighted_sum");
  }
  // round_.samples: the compounds the survivors declared.
  FEDRX_RETURN_IF_ERROR(
      CheckCounts(result.weighted_sum, round_.samples, "the unmasked sum of counts"));
  counts_sum_.assign(parameters_, 0);
  for (std::size_t i = 0; i < parameters_; ++i) {
    counts_sum_[i] = static_cast<std::uint64_t>(result.weighted_sum[i]);
  }
  return core::Status::Ok();
}

core::Status StudyRunner::CommitCounts() {
  if (counts_sum_.empty()) counts_sum_.assign(parameters_, 0);  // every site held no compound
  if (counts_sum_.size() != parameters_) {
    return FailRound("the summed counts have " + std::to_string(counts_sum_.size()) +
                     " words, the study counts " + std::to_string(parameters_));
  }
  std::vector<float> sum(parameters_);
  for (std::size_t i = 0; i < parameters_; ++i) {
    if (counts_sum_[i] >= kMaxExactCount) {
      return FailRound("a summed count reached 2^24, which float32 would not store exactly");
    }
    sum[i] = static_cast<float>(counts_sum_[i]);
  }
  std::map<std::string, double> m;
  m["statistic_sites"] = static_cast<double>(round_.contributed.size());
  m["statistic_compounds"] = static_cast<double>(round_.samples);
  m["statistic_pairs"] = static_cast<double>(parameters_ / 4);
  m["statistic_secure"] = Secure() ? 1 : 0;
  FEDRX_RETURN_IF_ERROR(store_.SaveRoundMetrics(id(), round_.round, m));
  RoundRecord closing = round_;
  closing.state = codec::RoundState::kClosed;
  closing.closed_at_ms = clock_.WallMillis();
  const bool last = record_.current_round >= record_.spec.rounds;
  FEDRX_RETURN_IF_ERROR(
      store_.CommitRound(id(), closing, sum, record_.current_round, last, clock_.WallMillis()));
  round_ = std::move(closing);
  round_base_.reset();
  counts_sum_.clear();
  record_.model_version = round_.base_version + 1;
  metrics_.Gauge("model_version", "Latest stored model version")
      .Set(static_cast<double>(record_.model_version));
  metrics_.Counter("rounds_total", "Rounds ended", {{"outcome", "closed"}}).Inc();
  std::cerr << "coordinator: " << id() << ": counts of " << parameters_ / 4 << " pair(s) summed"
            << (Secure() ? " securely" : "") << " from " << round_.contributed.size()
            << " site(s), " << round_.samples << " compounds; stored as version "
            << record_.model_version << "\n";
  if (last) {
    record_.state = codec::StudyState::kCompleted;
    record_.detail.clear();
    phase_ = Phase::kDone;
    std::cerr << "coordinator: study " << id() << " completed at model version "
              << record_.model_version << "\n";
    return core::Status::Ok();
  }
  return AdvanceRound();
}

}  // namespace fedrx::coordinator
