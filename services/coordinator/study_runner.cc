#include "services/coordinator/study_runner.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iostream>

#include "messages/codec/owned_tensor.h"
#include "services/coordinator/server_optimizer.h"
#include "services/core/bus.h"
#include "services/core/keys.h"
#include "services/privacy/dp_accountant.h"

namespace fedrx::coordinator {
namespace {

using std::chrono::milliseconds;

std::uint64_t SplitMix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

std::uint64_t Fnv1a(const std::string& s) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ULL;
  return h;
}

bool Printable(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](unsigned char c) { return c >= 0x20 && c != 0x7f; });
}

core::Status OutOfRange(const std::string& what, const std::string& where) {
  return core::InvalidArgument(what, "StudySpec." + where);
}

// Secure aggregation is part of the round protocol: in a secagg study the
// coordinator never receives an individual update (OnModelUpdate refuses
// them), so the sites may share the DP noise (each adding 1/t of it).
constexpr bool kSecureAggregationInRounds = true;

// Copies a tensor's values out (a received frame need not be aligned for T).
template <typename T>
std::vector<T> ValuesOf(const codec::Tensor& t) {
  std::vector<T> out(t.data.size() / sizeof(T));
  if (!out.empty()) std::memcpy(out.data(), t.data.data(), out.size() * sizeof(T));
  return out;
}

// Whether `t` is named `name` and holds `dtype` values of shape `shape`
// (and exactly as many bytes).
bool TensorIs(const codec::Tensor& t, const char* name, codec::DType dtype,
              const std::vector<std::int64_t>& shape) {
  std::size_t n = 1;
  for (std::int64_t d : shape) n *= static_cast<std::size_t>(d);
  return t.name == name && t.dtype == dtype && t.shape == shape &&
         t.data.size() == n * codec::DTypeSize(dtype);
}

std::string ShapeText(const std::vector<std::int64_t>& shape) {
  std::string out = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) out += ", ";
    out += std::to_string(shape[i]);
  }
  return out + "]";
}

bool NeedsEachUpdate(const std::string& strategy) {
  return strategy == "median" || strategy == "trimmed_mean" || strategy == "krum" ||
         strategy == "multikrum";
}

}  // namespace

bool DpEnabled(const codec::StudySpec& spec) { return spec.dp_clip_norm > 0; }

core::Result<std::optional<privacy::RdpAccountant>> MakeAccountant(const codec::StudySpec& spec) {
  if (!(spec.dp_clip_norm > 0 && spec.dp_noise_multiplier > 0)) {
    return std::optional<privacy::RdpAccountant>();
  }
  privacy::RdpAccountant::Options o;
  // Every available site takes part in every round (no random sampling of
  // sites), so there is no amplification by sampling: q = 1.
  o.sampling_rate = 1.0;
  o.noise_multiplier = spec.dp_noise_multiplier;
  o.delta = spec.dp_delta;
  o.epsilon_budget = spec.dp_epsilon_budget;
  FEDRX_ASSIGN_OR_RETURN(privacy::RdpAccountant acc, privacy::RdpAccountant::Create(std::move(o)));
  return std::optional<privacy::RdpAccountant>(std::move(acc));
}

core::Status ValidateStudySpec(const codec::StudySpec& spec) {
  if (IsStatisticsStudy(spec)) return ValidateStatisticsSpec(spec);
  FEDRX_RETURN_IF_ERROR(core::ValidateId(spec.study_id, "StudySpec.study_id"));
  if (spec.private_heads) {
    // Each site brings its own tasks; named tasks only narrow them.
    if (spec.tasks.size() > 4096) return OutOfRange("a study names at most 4096 tasks", "tasks");
  } else if (spec.tasks.empty() || spec.tasks.size() > 4096) {
    return OutOfRange("a study needs 1..4096 tasks", "tasks");
  }
  for (std::size_t i = 0; i < spec.tasks.size(); ++i) {
    const auto& t = spec.tasks[i];
    if (t.empty() || t.size() > 128 || !Printable(t)) {
      return OutOfRange("task names are printable and 1..128 bytes",
                        "tasks[" + std::to_string(i) + "]");
    }
  }
  for (std::size_t i = 0; i < spec.tasks.size(); ++i) {
    if (std::find(spec.tasks.begin(), spec.tasks.begin() + static_cast<std::ptrdiff_t>(i),
                  spec.tasks[i]) != spec.tasks.begin() + static_cast<std::ptrdiff_t>(i)) {
      return OutOfRange("task " + spec.tasks[i] + " is named twice",
                        "tasks[" + std::to_string(i) + "]");
    }
  }
  if (spec.private_heads) {
    if (spec.model.num_tasks != 0) {
      return OutOfRange(
          "with private heads the model is the shared trunk: num_tasks must be 0 "
          "(each site's head is sized by its own tasks)",
          "model.num_tasks");
    }
    if (core::Status s = ml::ValidateTrunkSpec(ml::NetSpecFromStudy(spec)); !s.ok()) {
      return OutOfRange(s.message(), "model");
    }
  } else {
    if (spec.model.num_tasks != spec.tasks.size()) {
      return OutOfRange("model.num_tasks is " + std::to_string(spec.model.num_tasks) + " but " +
                            std::to_string(spec.tasks.size()) + " tasks are named",
                        "model.num_tasks");
    }
    if (core::Status s = ml::ValidateSpec(ml::NetSpecFromStudy(spec)); !s.ok()) {
      return OutOfRange(s.message(), "model");
    }
  }
  if (spec.rounds < 1 || spec.rounds > 100000)
    return OutOfRange("rounds must be 1..100000", "rounds");
  if (spec.min_sites < 1) return OutOfRange("min_sites must be at least 1", "min_sites");
  if (!spec.sites.empty() && spec.min_sites > spec.sites.size()) {
    return OutOfRange("min_sites exceeds the number of sites named", "min_sites");
  }
  for (std::size_t i = 0; i < spec.sites.size(); ++i) {
    FEDRX_RETURN_IF_ERROR(
        core::ValidateId(spec.sites[i], "StudySpec.sites[" + std::to_string(i) + "]"));
  }
  if (spec.local_epochs < 1 || spec.local_epochs > 1000) {
    return OutOfRange("local_epochs must be 1..1000", "local_epochs");
  }
  if (!(spec.learning_rate > 0 && spec.learning_rate <= 10)) {
    return OutOfRange("learning_rate must be in (0, 10]", "learning_rate");
  }
  if (spec.batch_size < 1 || spec.batch_size > 65536) {
    return OutOfRange("batch_size must be 1..65536", "batch_size");
  }
  if (spec.round_deadline_ms < 100 || spec.round_deadline_ms > 86'400'000) {
    return OutOfRange("round deadline must be 100 ms .. 24 h", "round_deadline_ms");
  }
  if (spec.fingerprint_radius > 6) {
    return OutOfRange("fingerprint_radius must be 0..6", "fingerprint_radius");
  }
  if (auto s = MakeStrategy(spec); !s.ok()) return s.status();
  if (auto o = ServerOptimizer::FromStudy(spec); !o.ok()) return o.status();
  if (!(spec.proximal_mu >= 0 && spec.proximal_mu <= 1000)) {
    return OutOfRange("proximal_mu must be in [0, 1000]", "proximal_mu");
  }
  if (spec.strategy == "krum" || spec.strategy == "multikrum") {
    if (spec.min_sites < 2 * spec.krum_byzantine + 3) {
      return OutOfRange("Krum with krum_byzantine = " + std::to_string(spec.krum_byzantine) +
                            " needs min_sites >= " + std::to_string(2 * spec.krum_byzantine + 3),
                        "min_sites");
    }
  }
  if (!(spec.norm_bound >= 0 && std::isfinite(spec.norm_bound))) {
    return OutOfRange("norm_bound must be finite and >= 0", "norm_bound");
  }
  if (!(spec.trim_fraction >= 0 && spec.trim_fraction < 0.5f)) {
    return OutOfRange("trim_fraction must be in [0, 0.5)", "trim_fraction");
  }
  // Differential privacy.
  if (!(spec.dp_clip_norm >= 0 && std::isfinite(spec.dp_clip_norm))) {
    return OutOfRange("dp_clip_norm must be finite and >= 0", "dp_clip_norm");
  }
  if (!(spec.dp_noise_multiplier >= 0 && spec.dp_noise_multiplier <= 1000)) {
    return OutOfRange("dp_noise_multiplier must be in [0, 1000]", "dp_noise_multiplier");
  }
  if (spec.dp_noise_multiplier > 0 && spec.dp_clip_norm == 0) {
    return OutOfRange("noise needs a clip norm (the noise is scaled to it)", "dp_clip_norm");
  }
  if (!(spec.dp_delta > 0 && spec.dp_delta < 1)) {
    return OutOfRange("dp_delta must be in (0, 1)", "dp_delta");
  }
  if (!(spec.dp_epsilon_budget >= 0 && std::isfinite(spec.dp_epsilon_budget))) {
    return OutOfRange("dp_epsilon_budget must be finite and >= 0 (0: none)", "dp_epsilon_budget");
  }
  if (spec.dp_epsilon_budget > 0 && spec.dp_noise_multiplier == 0) {
    return OutOfRange("an epsilon budget needs noise (dp_noise_multiplier and dp_clip_norm)",
                      "dp_epsilon_budget");
  }
  FEDRX_ASSIGN_OR_RETURN(std::optional<privacy::RdpAccountant> accountant, MakeAccountant(spec));
  if (accountant.has_value() && spec.dp_epsilon_budget > 0 && accountant->RoundsAllowed() == 0) {
    return OutOfRange("the epsilon budget " + std::to_string(spec.dp_epsilon_budget) +
                          " is below one round's epsilon " +
                          std::to_string(accountant->EpsilonAfter(1)) + " at this noise",
                      "dp_epsilon_budget");
  }
  // Secure aggregation.
  if (spec.secure_aggregation) {
    if (!kSecureAggregationInRounds) {
      return OutOfRange("secure aggregation is not available in rounds yet", "secure_aggregation");
    }
    if (SecAggThreshold(spec) < 2) {
      return OutOfRange(
          "secure aggregation needs at least 2 sites per round (secagg_threshold, "
          "or min_sites when it is 0)",
          "secagg_threshold");
    }
    if (!spec.sites.empty() && SecAggThreshold(spec) > spec.sites.size()) {
      return OutOfRange("secagg_threshold exceeds the number of sites named", "secagg_threshold");
    }
    if (NeedsEachUpdate(spec.strategy)) {
      return OutOfRange("strategy " + spec.strategy +
                            " needs each update, but with secure aggregation the coordinator "
                            "sees only their sum (use fedavg or norm_bound)",
                        "strategy");
    }
  } else if (spec.secagg_threshold != 0) {
    return OutOfRange("secagg_threshold is for secure aggregation", "secagg_threshold");
  } else if (spec.secagg_neighbours != 0) {
    return OutOfRange("secagg_neighbours is for secure aggregation (privacy.secagg_neighbours)",
                      "secagg_neighbours");
  }
  if (spec.secagg_threshold > 100000) {
    return OutOfRange("secagg_threshold must be at most 100000", "secagg_threshold");
  }
  if (spec.secure_aggregation && spec.secagg_neighbours != 0) {
    // SecAgg+ (privacy::NeighbourGraph): a Harary graph H(k, n) joins each
    // site to k/2 ring neighbours on each side, so k is even; the Shamir
    // threshold then applies within each site's neighbourhood of k + 1.
    const std::uint32_t k = spec.secagg_neighbours;
    const std::string key = " (privacy.secagg_neighbours)";
    if (k > 100000) {
      return OutOfRange("secagg_neighbours must be at most 100000" + key, "secagg_neighbours");
    }
    if (k % 2 != 0) {
      return OutOfRange("secagg_neighbours " + std::to_string(k) +
                            " is odd: the SecAgg+ graph joins each site to k/2 neighbours on "
                            "each side of a ring, so k must be even (0: every pair)" +
                            key,
                        "secagg_neighbours");
    }
    if (!spec.sites.empty() && k >= spec.sites.size()) {
      return OutOfRange("secagg_neighbours " + std::to_string(k) + " must be below the " +
                            std::to_string(spec.sites.size()) +
                            " sites named (0 masks every pair)" + key,
                        "secagg_neighbours");
    }
    if (SecAggThreshold(spec) > k + 1) {
      return OutOfRange("secagg_neighbours " + std::to_string(k) +
                            " gives each site a "
                            "neighbourhood of " +
                            std::to_string(k + 1) +
                            " (itself included), smaller than the secure-aggregation threshold " +
                            std::to_string(SecAggThreshold(spec)) +
                            " (secagg_threshold, or min_sites when it is 0): raise k or lower "
                            "the threshold" +
                            key,
                        "secagg_neighbours");
    }
  }
  return core::Status::Ok();
}

std::size_t GlobalParameterCount(const codec::StudySpec& spec) {
  if (IsStatisticsStudy(spec)) return StatisticLength(spec);
  const ml::NetSpec net = ml::NetSpecFromStudy(spec);
  return spec.private_heads ? ml::TrunkParameterCount(net) : ml::ParameterCount(net);
}

std::vector<float> InitialModel(const codec::StudySpec& spec) {
  // A statistics study's "model" is the counts; version 0 counts nothing.
  if (IsStatisticsStudy(spec)) return std::vector<float>(StatisticLength(spec), 0.0f);
  const ml::NetSpec net = ml::NetSpecFromStudy(spec);
  if (!spec.private_heads) return ml::InitParameters(net, spec.seed);
  // Layers are drawn in layout order, so the trunk of any full network
  // drawn from this seed starts the same; a one-output head stands in.
  std::vector<float> trunk = ml::InitParameters(ml::WithHead(net, 1), spec.seed);
  trunk.resize(ml::TrunkParameterCount(net));
  return trunk;
}

std::uint64_t SiteRoundSeed(std::uint64_t study_seed, std::uint32_t round,
                            const std::string& site) {
  return SplitMix64(study_seed ^ SplitMix64(round) ^ Fnv1a(site));
}

std::uint32_t SecAggThreshold(const codec::StudySpec& spec) {
  return spec.secagg_threshold > 0 ? spec.secagg_threshold : spec.min_sites;
}

privacy::FixedPointEncoding SecAggEncoding(std::size_t sites) {
  privacy::FixedPointEncoding e;  // clip 8, 16 bits
  // Finer while a sum over `sites` cannot wrap: sites * clip * 2^bits < 2^31.
  while (e.scale_bits < 24) {
    privacy::FixedPointEncoding finer = e;
    ++finer.scale_bits;
    if (!finer.Validate(sites).ok()) break;
    e = finer;
  }
  return e;
}

std::uint64_t SecAggRoundTag(const std::string& study_id, std::uint32_t round) {
  return SplitMix64(Fnv1a(study_id) ^ SplitMix64(0x5ecA99ULL + round));
}

StudyRunner::StudyRunner(StudyRecord record, StudyStore& store, SiteChannel& sites,
                         std::unique_ptr<Strategy> strategy, const core::Clock& clock,
                         core::Metrics& metrics, RunnerTimings timings)
    : record_(std::move(record)),
      store_(store),
      sites_(sites),
      strategy_(std::move(strategy)),
      clock_(clock),
      metrics_(metrics),
      timings_(timings),
      net_(ml::NetSpecFromStudy(record_.spec)),
      parameters_(GlobalParameterCount(record_.spec)) {
  if (record_.state != codec::StudyState::kRunning) phase_ = Phase::kDone;
  // The spec was validated when the study was created; a stored spec that
  // no longer passes (say, an option a newer build dropped) ends the study
  // at the first tick rather than running it with other settings.
  if (auto o = ServerOptimizer::FromStudy(record_.spec); o.ok()) {
    optimizer_.emplace(std::move(*o));
  } else {
    init_error_ = o.status();
  }
  if (auto a = MakeAccountant(record_.spec); a.ok()) {
    accountant_ = std::move(*a);
  } else {
    init_error_ = a.status();
  }
  if (accountant_.has_value()) {
    // Rounds run so far: before the current one while running, up to it once ended.
    const std::uint32_t done = record_.state == codec::StudyState::kRunning
                                   ? (record_.current_round > 0 ? record_.current_round - 1 : 0)
                                   : record_.current_round;
    epsilon_spent_ = accountant_->EpsilonAfter(done);
  }
}

std::optional<double> StudyRunner::EpsilonSpent() const {
  if (!accountant_.has_value()) return std::nullopt;
  return epsilon_spent_;
}

bool StudyRunner::KeepsRoundBase() const {
  // Secure aggregation sums deltas: the round's model is base + mean delta.
  return Secure() || strategy_->uses_global() ||
         (optimizer_.has_value() && !optimizer_->identity());
}

core::Status StudyRunner::EndForBudget() {
  const double next = accountant_->EpsilonAfter(record_.current_round);
  const std::uint32_t ran = record_.current_round > 0 ? record_.current_round - 1 : 0;
  const bool produced = record_.model_version > 0;
  const auto state = produced ? codec::StudyState::kCompleted : codec::StudyState::kFailed;
  char buf[160];
  std::snprintf(buf, sizeof buf,
                "privacy budget: round %u would take epsilon to %.4g, past the budget %.4g "
                "(spent %.4g at delta %.3g)",
                record_.current_round, next, record_.spec.dp_epsilon_budget,
                accountant_->EpsilonAfter(ran), record_.spec.dp_delta);
  FEDRX_RETURN_IF_ERROR(store_.SaveState(id(), state, ran, buf));
  record_.state = state;
  record_.detail = buf;
  phase_ = Phase::kDone;
  metrics_
      .Counter("studies_stopped_by_privacy_budget_total",
               "Studies ended early because the next round would exceed their epsilon budget")
      .Inc();
  std::cerr << "coordinator: study " << id() << " ended: " << buf << "\n";
  return core::Status::Ok();
}

core::Status StudyRunner::ValidateModel(std::span<const float> params) const {
  return record_.spec.private_heads ? ml::ValidateTrunkParameters(net_, params)
                                    : ml::ValidateParameters(net_, params);
}

core::Status StudyRunner::Refuse(const char* reason, core::Status status) {
  metrics_
      .Counter("updates_rejected_total", "Site messages refused by the round machine",
               {{"reason", reason}})
      .Inc();
  return status;
}

bool StudyRunner::Selected(const std::string& site) const {
  return std::binary_search(round_.selected.begin(), round_.selected.end(), site);
}

std::vector<codec::Tensor> StudyRunner::ModelTensors(
    std::shared_ptr<const std::vector<float>> model) const {
  std::vector<codec::Tensor> t;
  t.push_back(codec::Tensor{"weights",
                            codec::DType::kFloat32,
                            {static_cast<std::int64_t>(model->size())},
                            codec::Blob::FromShared(std::move(model))});
  return t;
}

core::Status StudyRunner::Tick() {
  const auto now = clock_.Now();
  switch (phase_) {
    case Phase::kDone:
      return core::Status::Ok();
    case Phase::kWaitingForSites: {
      if (!init_error_.ok()) {
        FEDRX_RETURN_IF_ERROR(store_.SaveState(id(), codec::StudyState::kFailed,
                                               record_.current_round,
                                               "stored spec is invalid: " + init_error_.message()));
        record_.state = codec::StudyState::kFailed;
        phase_ = Phase::kDone;
        return core::Status::Ok();
      }
      if (checked_store_) return StartRound();
      // A restarted coordinator first looks at where the round stood.
      FEDRX_ASSIGN_OR_RETURN(std::optional<RoundRecord> stored,
                             store_.LoadRound(id(), record_.current_round));
      checked_store_ = true;
      if (stored.has_value() && stored->state == codec::RoundState::kEvaluating &&
          record_.model_version == stored->base_version + 1) {
        round_ = *stored;
        return ResumeEvaluation();
      }
      if (stored.has_value() && (stored->state == codec::RoundState::kClosed ||
                                 stored->state == codec::RoundState::kFailed)) {
        return AdvanceRound();
      }
      return StartRound();
    }
    case Phase::kTraining:
      if (!uploading_.empty() && now >= upload_deadline_) {
        std::cerr << "coordinator: " << id() << " round " << round_.round << ": site " << uploading_
                  << " did not deliver its update in time\n";
        metrics_.Counter("dropouts_total", "Sites dropped from a round", {{"stage", "upload"}})
            .Inc();
        dropped_.insert(uploading_);
        uploading_.clear();
      }
      return MaybeGrant();
    case Phase::kEvaluating:
      if (evaluating_.empty() || now >= deadline_) return CloseEvaluationStage();
      return core::Status::Ok();
    case Phase::kSecureAggregation:
      if (unmasking_.pending()) {
        if (!unmasking_.ready()) return core::Status::Ok();
        return CompleteSecAgg();
      }
      // A round that failed but could not be recorded is retried here.
      if (!secagg_) return FailRound("secure aggregation ended without a result");
      if (now >= secagg_deadline_) return CloseSecAggStage();
      return core::Status::Ok();
  }
  return core::Status::Ok();
}

core::Status StudyRunner::StartRound() {
  // Differential privacy: every round that runs is charged (even one that
  // then fails, since its sites sent their noised updates), so the check is
  // a function of the round number alone and a restart repeats it exactly.
  if (accountant_.has_value() && accountant_->WouldExceed(record_.current_round)) {
    return EndForBudget();
  }
  std::vector<std::string> available = sites_.AvailableSites(id());
  if (!record_.spec.sites.empty()) {
    std::vector<std::string> allowed;
    for (const auto& s : available) {
      if (std::find(record_.spec.sites.begin(), record_.spec.sites.end(), s) !=
          record_.spec.sites.end()) {
        allowed.push_back(s);
      }
    }
    available = std::move(allowed);
  }
  if (!record_.spec.preparation_hash.empty()) {
    // Sites that prepared their data differently (another key, options,
    // software, or reference-set output) would train on features that do not
    // line up with everyone else's; they are refused a place, not averaged in.
    std::vector<std::string> prepared;
    for (const auto& s : available) {
      const std::optional<std::string> hash = sites_.PreparationHashOf(s);
      if (!hash) continue;  // not registered yet: its RegisterSite comes first
      if (*hash == record_.spec.preparation_hash) {
        prepared.push_back(s);
        continue;
      }
      if (refused_preparation_.insert(s).second) {
        metrics_
            .Counter("sites_refused_total", "Sites a study left out of its rounds, by reason",
                     {{"reason", "preparation_hash"}})
            .Inc();
        std::cerr << "coordinator: study " << id() << ": site " << s
                  << " refused: its preparation hash \"" << *hash
                  << "\" differs from the study's \"" << record_.spec.preparation_hash
                  << "\" (re-ingest with the study's key and options)\n";
      }
    }
    available = std::move(prepared);
  }
  std::sort(available.begin(), available.end());
  if (available.size() < record_.spec.min_sites) return core::Status::Ok();  // keep waiting
  if (!waiting_since_) waiting_since_ = clock_.Now();
  if (available.size() < record_.spec.sites.size() &&
      clock_.Now() - *waiting_since_ <
          std::min(timings_.selection_wait, milliseconds(record_.spec.round_deadline_ms))) {
    return core::Status::Ok();  // give the named sites that are missing a moment
  }
  waiting_since_.reset();

  if (!latest_model_) {
    FEDRX_ASSIGN_OR_RETURN(std::vector<float> weights,
                           store_.LoadModel(id(), record_.model_version));
    latest_model_ = std::make_shared<const std::vector<float>>(std::move(weights));
  }
  if (latest_model_->size() != parameters_) {
    return core::Status(core::StatusCode::kDataLoss,
                        "stored model has " + std::to_string(latest_model_->size()) +
                            " parameters, the spec implies " + std::to_string(parameters_),
                        "study " + id());
  }
  // The sends below hold the model until it is on the wire; the runner lets
  // go of it so that during the round it holds the aggregate and one update.
  std::shared_ptr<const std::vector<float>> model = std::move(latest_model_);

  const std::int64_t now_ms = clock_.WallMillis();
  round_ = RoundRecord{};
  round_.round = record_.current_round;
  round_.state = codec::RoundState::kTraining;
  round_.base_version = record_.model_version;
  round_.selected = available;
  round_.started_at_ms = now_ms;
  round_.deadline_ms = now_ms + record_.spec.round_deadline_ms;
  FEDRX_RETURN_IF_ERROR(store_.SaveRound(id(), round_));

  // Norm bounding and server optimisers measure the round against the model
  // it started from: keep it for the round (one more model's worth);
  // otherwise let it go once it has been sent.
  if (KeepsRoundBase()) {
    round_base_ = model;
    strategy_->BeginFrom(*round_base_);
  } else {
    round_base_.reset();
    strategy_->Begin(parameters_);
  }
  aggregate_.reset();
  counts_sum_.clear();
  secagg_.reset();
  participants_.clear();
  participant_sites_.clear();
  secagg_waiting_.clear();
  detections_recorded_ = 0;
  ready_.clear();
  ready_samples_.clear();
  dropped_.clear();
  uploading_.clear();
  round_started_ = clock_.Now();
  deadline_ = round_started_ + milliseconds(record_.spec.round_deadline_ms);
  phase_ = Phase::kTraining;

  for (const auto& site : round_.selected) {
    codec::TrainTask task{id(),
                          round_.round,
                          round_.base_version,
                          record_.spec.local_epochs,
                          record_.spec.batch_size,
                          record_.spec.learning_rate,
                          SiteRoundSeed(record_.spec.seed, round_.round, site),
                          round_.deadline_ms};
    if (core::Status s = sites_.SendToSite(site, core::MakeMessage(task, ModelTensors(model)));
        !s.ok()) {
      std::cerr << "coordinator: " << id() << " round " << round_.round << ": cannot reach " << site
                << ": " << s << "\n";
      metrics_.Counter("dropouts_total", "Sites dropped from a round", {{"stage", "task"}}).Inc();
      dropped_.insert(site);
    }
  }
  metrics_.Counter("rounds_started_total", "Rounds started").Inc();
  std::cerr << "coordinator: " << id() << " round " << round_.round << " started with "
            << round_.selected.size() << " site(s) from model version " << round_.base_version
            << "\n";
  return MaybeGrant();
}

core::Status StudyRunner::OnUpdateReady(const std::string& site, const codec::UpdateReady& r) {
  if (phase_ != Phase::kTraining || r.round != round_.round) {
    return Refuse("stale_round",
                  core::FailedPrecondition("round " + std::to_string(r.round) + " of study " +
                                               id() + " is not training (the study is at round " +
                                               std::to_string(record_.current_round) + ")",
                                           "UpdateReady.round"));
  }
  if (!Selected(site)) {
    return Refuse("not_selected", core::Status(core::StatusCode::kPermissionDenied,
                                               "site " + site + " is not taking part in round " +
                                                   std::to_string(r.round) + " of study " + id(),
                                               "envelope.origin"));
  }
  if (r.base_version != round_.base_version) {
    return Refuse("wrong_base",
                  core::FailedPrecondition(
                      "trained from version " + std::to_string(r.base_version) +
                          ", the round started from " + std::to_string(round_.base_version),
                      "UpdateReady.base_version"));
  }
  if (dropped_.count(site) != 0) {
    return Refuse("late", core::FailedPrecondition("site " + site + " was dropped from round " +
                                                       std::to_string(r.round) + " (too late)",
                                                   "UpdateReady"));
  }
  ready_.insert(site);
  ready_samples_[site] = r.num_samples;
  return MaybeGrant();
}

core::Status StudyRunner::MaybeGrant() {
  if (Secure()) return MaybeStartSecAgg();
  if (phase_ != Phase::kTraining || !uploading_.empty()) return core::Status::Ok();
  const bool past_deadline = clock_.Now() >= deadline_;
  for (const auto& site : round_.selected) {
    if (dropped_.count(site) != 0 || std::find(round_.contributed.begin(), round_.contributed.end(),
                                               site) != round_.contributed.end()) {
      continue;
    }
    if (ready_.count(site) != 0) {
      if (core::Status s =
              sites_.SendToSite(site, core::MakeMessage(codec::UploadGrant{id(), round_.round}));
          !s.ok()) {
        metrics_.Counter("dropouts_total", "Sites dropped from a round", {{"stage", "grant"}})
            .Inc();
        dropped_.insert(site);
        continue;
      }
      uploading_ = site;
      upload_deadline_ = clock_.Now() + timings_.upload_timeout;
      return core::Status::Ok();
    }
    if (!past_deadline) return core::Status::Ok();  // wait for this site, in order
    std::cerr << "coordinator: " << id() << " round " << round_.round << ": site " << site
              << " missed the deadline\n";
    metrics_.Counter("dropouts_total", "Sites dropped from a round", {{"stage", "training"}}).Inc();
    dropped_.insert(site);
  }
  return CloseTraining();
}

core::Status StudyRunner::OnModelUpdate(const std::string& site, const codec::ModelUpdate& u,
                                        std::vector<codec::Tensor>& tensors) {
  if (Secure()) {
    // The coordinator of a secagg study must never hold an individual update,
    // whatever the round's state: drop it unread.
    tensors.clear();
    return Refuse("secure_aggregation",
                  core::FailedPrecondition("study " + id() +
                                               " aggregates securely: updates travel masked "
                                               "(SecAggMaskedInput), never as a ModelUpdate",
                                           "ModelUpdate"));
  }
  if (phase_ != Phase::kTraining || u.study_id != id() || u.round != round_.round) {
    return Refuse("stale_round", core::FailedPrecondition(
                                     "round " + std::to_string(u.round) + " of study " + id() +
                                         " is not taking updates (the study is at round " +
                                         std::to_string(record_.current_round) + ")",
                                     "ModelUpdate.round"));
  }
  if (!Selected(site)) {
    return Refuse("not_selected", core::Status(core::StatusCode::kPermissionDenied,
                                               "site " + site + " is not taking part in round " +
                                                   std::to_string(u.round) + " of study " + id(),
                                               "envelope.origin"));
  }
  if (site != uploading_) {
    return Refuse("not_granted",
                  core::FailedPrecondition("site " + site + " has no upload grant", "ModelUpdate"));
  }
  // From here on a refusal also ends this site's part in the round.
  const auto fail = [&](const char* reason, core::Status s) {
    dropped_.insert(site);
    uploading_.clear();
    core::Status refused = Refuse(reason, std::move(s));
    MaybeGrant().IgnoreError();
    return refused;
  };
  if (u.base_version != round_.base_version) {
    return fail("wrong_base",
                core::FailedPrecondition("trained from version " + std::to_string(u.base_version) +
                                             ", the round started from " +
                                             std::to_string(round_.base_version),
                                         "ModelUpdate.base_version"));
  }
  // A statistics site may hold no compound with both labels: its zeros count.
  if (u.num_samples == 0 && !Statistics()) {
    return fail("no_samples",
                core::InvalidArgument("update trained on no samples", "ModelUpdate.num_samples"));
  }
  if (tensors.size() != 1 || tensors[0].dtype != codec::DType::kFloat32 ||
      tensors[0].data.size() != parameters_ * sizeof(float)) {
    return fail("wrong_shape",
                core::InvalidArgument(
                    "expected one float32 tensor of " + std::to_string(parameters_) +
                        " parameters, got " + std::to_string(tensors.size()) + " tensor(s)" +
                        (tensors.empty()
                             ? std::string()
                             : " (first: " + std::to_string(tensors[0].data.size()) + " bytes)"),
                    "tensor 0"));
  }
  // Timed from here: the check and the fold are the coordinator's per-update cost.
  const auto aggregation_started = clock_.Now();
  std::span<const float> weights = tensors[0].data.As<float>();
  if (Statistics()) {
    // Counts are summed, not averaged: no model to check, no strategy.
    if (core::Status s = AddCounts(weights, u.num_samples); !s.ok()) {
      tensors.clear();
      return fail("malformed_counts", s);
    }
  } else {
    if (core::Status s = ValidateModel(weights); !s.ok()) {
      return fail("not_finite", core::InvalidArgument(s.message(), "tensor 0 (weights)"));
    }
    // With differential privacy every site weighs the same: the noise is
    // calibrated to one clipped update's share of an unweighted mean (and a
    // sample count is itself something a site would reveal).
    const double weight = DpEnabled(record_.spec) ? 1.0 : static_cast<double>(u.num_samples);
    FEDRX_RETURN_IF_ERROR(strategy_->Accept(weights, weight));
  }
  // Folded in: free the update now, so that closing the round (which may
  // happen below) holds only the aggregate.
  tensors.clear();
  metrics_
      .Histogram("update_aggregation_seconds",
                 "Time to check one site update and fold it into the round's aggregate",
                 {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5})
      .Observe(std::chrono::duration<double>(clock_.Now() - aggregation_started).count());
  round_.contributed.push_back(site);
  round_.samples += u.num_samples;
  uploading_.clear();
  metrics_.Counter("updates_accepted_total", "Site updates folded into a round").Inc();
  if (core::Status s = store_.SaveRound(id(), round_); !s.ok()) {
    // Progress is informational: a restart repeats the round from its start.
    std::cerr << "coordinator: could not record progress of " << id() << ": " << s << "\n";
  }
  return MaybeGrant();
}

core::Status StudyRunner::CloseTraining() {
  const auto now = clock_.Now();
  if (round_.contributed.size() < record_.spec.min_sites) {
    return FailRound(std::to_string(round_.contributed.size()) + " update(s), " +
                     std::to_string(record_.spec.min_sites) + " needed");
  }
  if (Statistics()) return CommitCounts();
  if (!aggregate_.has_value()) {
    FEDRX_ASSIGN_OR_RETURN(std::vector<float> finished, strategy_->Finish());
    // The server optimiser steps once per aggregate; the stepped model (and
    // its state) is what a retried commit stores.
    if (!optimizer_->identity()) {
      FEDRX_RETURN_IF_ERROR(LoadOptimizerState());
      if (!round_base_) {
        return core::Status(core::StatusCode::kInternal,
                            "the round's base model was not kept for the server optimizer",
                            "study " + id());
      }
      FEDRX_RETURN_IF_ERROR(optimizer_->Step(*round_base_, finished));
      if (core::Status s = ValidateModel(finished); !s.ok()) {
        return core::Status(core::StatusCode::kInternal,
                            "server optimizer produced an invalid model: " + s.message(),
                            "study " + id());
      }
    }
    aggregate_ = std::move(finished);
  }
  RoundRecord closing = round_;
  closing.state = codec::RoundState::kEvaluating;
  const std::string optimizer_state =
      optimizer_->stateful() ? optimizer_->SerializeState() : std::string();
  FEDRX_RETURN_IF_ERROR(store_.CommitRound(id(), closing, *aggregate_, record_.current_round,
                                           /*completed=*/false, clock_.WallMillis(),
                                           optimizer_state));
  round_base_.reset();
  round_ = std::move(closing);
  latest_model_ = std::make_shared<const std::vector<float>>(std::move(*aggregate_));
  aggregate_.reset();
  record_.model_version = round_.base_version + 1;
  metrics_
      .Histogram("round_training_seconds", "Round time from tasks sent to model stored",
                 {0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900})
      .Observe(std::chrono::duration<double>(now - round_started_).count());
  metrics_.Gauge("model_version", "Latest stored model version")
      .Set(static_cast<double>(record_.model_version));
  std::cerr << "coordinator: " << id() << " round " << round_.round << ": model version "
            << record_.model_version << " from " << round_.contributed.size() << " site(s), "
            << round_.samples << " samples\n";
  if (accountant_.has_value()) {
    const double eps = accountant_->EpsilonAfter(round_.round);
    epsilon_spent_ = eps;
    std::cerr << "coordinator: " << id() << " privacy spent after round " << round_.round
              << ": epsilon " << eps << " at delta " << record_.spec.dp_delta << "\n";
  }
  return StartEvaluation(latest_model_);
}

core::Status StudyRunner::FailRound(const std::string& why) {
  if (round_.state != codec::RoundState::kFailed) {
    // First attempt (a retry after a failed store write has logged already).
    std::cerr << "coordinator: " << id() << " round " << round_.round << " failed: " << why << "\n";
  }
  secagg_.reset();
  secagg_waiting_.clear();
  round_.state = codec::RoundState::kFailed;
  round_.closed_at_ms = clock_.WallMillis();
  FEDRX_RETURN_IF_ERROR(store_.SaveRound(id(), round_));
  round_base_.reset();
  aggregate_.reset();
  participants_.clear();
  participant_sites_.clear();
  FEDRX_RETURN_IF_ERROR(AdvanceRound());
  metrics_.Counter("rounds_total", "Rounds ended", {{"outcome", "failed"}}).Inc();
  return core::Status::Ok();
}

core::Status StudyRunner::LoadOptimizerState() {
  if (!optimizer_->stateful() || optimizer_loaded_) return core::Status::Ok();
  optimizer_->Reset();
  if (round_.base_version > 0) {
    FEDRX_ASSIGN_OR_RETURN(std::optional<std::string> state,
                           store_.LoadOptimizerState(id(), round_.base_version));
    if (state.has_value()) {
      FEDRX_RETURN_IF_ERROR(optimizer_->RestoreState(*state, parameters_));
    } else {
      // A study stored by a coordinator that did not keep the state: the
      // moments start afresh from here (counted, as every degraded mode).
      std::cerr << "coordinator: " << id() << ": no server optimizer state stored with version "
                << round_.base_version << "; its moments restart\n";
      metrics_
          .Counter("server_optimizer_state_missing_total",
                   "Resumed studies whose server optimizer moments had to restart")
          .Inc();
    }
  }
  optimizer_loaded_ = true;
  return core::Status::Ok();
}

core::Status StudyRunner::ResumeEvaluation() {
  FEDRX_ASSIGN_OR_RETURN(std::vector<float> weights, store_.LoadModel(id(), record_.model_version));
  latest_model_ = std::make_shared<const std::vector<float>>(std::move(weights));
  return StartEvaluation(latest_model_);
}

std::chrono::milliseconds StudyRunner::EvaluationBudget() const {
  return std::min(timings_.evaluation_timeout, milliseconds(record_.spec.round_deadline_ms));
}

core::Status StudyRunner::StartEvaluation(std::shared_ptr<const std::vector<float>> model) {
  phase_ = Phase::kEvaluating;
  evaluating_.clear();
  histograms_.clear();
  evaluated_samples_ = 0;
  eval_stage_ = 0;
  eval_model_ = model;
  evaluated_sites_.clear();
  embedding_moments_ = ml::EmbeddingMoments{};
  domain_histogram_.clear();
  const std::uint32_t every = record_.spec.evaluate_every;
  if (every == 0 || round_.round % every != 0) return FinishEvaluation();
  deadline_ = clock_.Now() + EvaluationBudget();
  for (const auto& site : round_.contributed) {
    codec::EvaluateTask task{
        id(), round_.round, record_.model_version, "valid", timings_.histogram_bins, /*stage=*/0};
    if (sites_.SendToSite(site, core::MakeMessage(task, ModelTensors(model))).ok()) {
      evaluating_.insert(site);
    }
  }
  if (evaluating_.empty()) return CloseEvaluationStage();
  return core::Status::Ok();
}

core::Status StudyRunner::CloseEvaluationStage() {
  if (eval_stage_ == 0 && Calibrating()) {
    // Stage 1 is tried once: a retried close (a failed store write) finishes.
    eval_stage_ = 1;
    if (!evaluating_.empty()) {
      std::cerr << "coordinator: " << id() << " round " << round_.round << ": "
                << evaluating_.size() << " site(s) did not answer the evaluation in time\n";
    }
    evaluating_.clear();
    if (core::Status s = StartDomainStage(); !s.ok()) {
      std::cerr << "coordinator: " << id() << " round " << round_.round
                << ": no applicability-domain stage: " << s << "\n";
    }
    if (!evaluating_.empty()) return core::Status::Ok();
  } else if (eval_stage_ == 1 && !evaluating_.empty()) {
    std::cerr << "coordinator: " << id() << " round " << round_.round << ": " << evaluating_.size()
              << " site(s) did not answer the domain stage in time\n";
    evaluating_.clear();
  }
  return FinishEvaluation();
}

core::Status StudyRunner::StartDomainStage() {
  if (evaluated_sites_.empty() || embedding_moments_.rows == 0 || !eval_model_) {
    return core::Status::Ok();
  }
  FEDRX_ASSIGN_OR_RETURN(ml::EmbeddingReference ref, ml::ReferenceFromMoments(embedding_moments_));
  const auto dims = static_cast<std::int64_t>(ref.mean.size());
  deadline_ = clock_.Now() + EvaluationBudget();
  for (const auto& [site, rows] : evaluated_sites_) {
    codec::EvaluateTask task{
        id(), round_.round, record_.model_version, "valid", timings_.histogram_bins, /*stage=*/1};
    std::vector<codec::Tensor> tensors = ModelTensors(eval_model_);
    tensors.push_back(
        codec::OwnedTensor("embedding_mean", codec::DType::kFloat64, {dims}, ref.mean));
    tensors.push_back(
        codec::OwnedTensor("embedding_scale", codec::DType::kFloat64, {dims}, ref.scale));
    if (sites_.SendToSite(site, core::MakeMessage(task, std::move(tensors))).ok()) {
      evaluating_.insert(site);
    }
  }
  return core::Status::Ok();
}

core::Status StudyRunner::OnDomainHistogram(const std::string& site,
                                            std::vector<codec::Tensor>& tensors) {
  const std::size_t bins = timings_.histogram_bins;
  const std::vector<std::int64_t> shape = {static_cast<std::int64_t>(bins)};
  if (tensors.size() != 1 ||
      !TensorIs(tensors[0], "domain_histogram", codec::DType::kUInt64, shape)) {
    return Refuse("wrong_shape", core::InvalidArgument(
                                     "expected one uint64 tensor \"domain_histogram\" of shape " +
                                         ShapeText(shape),
                                     "tensor 0 (domain_histogram)"));
  }
  const std::vector<std::uint64_t> counts = ValuesOf<std::uint64_t>(tensors[0]);
  // A site scores each of its validation rows once.
  const std::uint64_t rows = evaluated_sites_[site];
  std::uint64_t total = 0;
  for (std::uint64_t n : counts) {
    if (n > rows - total) {
      return Refuse("bad_counts",
                    core::InvalidArgument("the domain histogram counts more than the " +
                                              std::to_string(rows) + " validation rows of stage 0",
                                          "tensor 0 (domain_histogram)"));
    }
    total += n;
  }
  if (domain_histogram_.empty()) domain_histogram_.assign(bins, 0);
  // The sum over sites is at most evaluated_samples_, itself a sum of uint64s.
  for (std::size_t b = 0; b < bins; ++b) domain_histogram_[b] += counts[b];
  return core::Status::Ok();
}

core::Status StudyRunner::SaveCalibration() {
  VersionCalibration c;
  c.version = record_.model_version;
  c.samples = evaluated_samples_;
  c.tasks = record_.spec.tasks;
  for (const std::string& task : c.tasks) {
    auto it = histograms_.find(task);
    if (it == histograms_.end()) {
      std::cerr << "coordinator: " << id() << " version " << c.version << ": no histogram of task "
                << task << "; no calibration stored\n";
      return core::Status::Ok();
    }
    c.histograms.push_back(it->second);
  }
  c.embedding = embedding_moments_;
  c.domain_histogram = domain_histogram_;
  core::Status s = store_.SaveCalibration(id(), c);
  if (s.code() == core::StatusCode::kInvalidArgument) {
    std::cerr << "coordinator: " << id() << " version " << c.version
              << ": calibration not stored: " << s << "\n";
    metrics_
        .Counter("calibrations_skipped_total",
                 "Model versions whose calibration was inconsistent and not stored")
        .Inc();
    return core::Status::Ok();
  }
  FEDRX_RETURN_IF_ERROR(s);
  metrics_
      .Counter("calibrations_stored_total", "Model versions whose calibration was stored",
               {{"domain", c.domain_histogram.empty() ? "missing" : "present"}})
      .Inc();
  return core::Status::Ok();
}

core::Status StudyRunner::OnEvaluationResult(const std::string& site,
                                             const codec::EvaluationResult& r,
                                             std::vector<codec::Tensor>& tensors) {
  if (phase_ != Phase::kEvaluating || r.study_id != id() || r.round != round_.round ||
      r.model_version != record_.model_version || r.stage != eval_stage_) {
    return Refuse("stale_evaluation",
                  core::FailedPrecondition("no evaluation of round " + std::to_string(r.round) +
                                               " version " + std::to_string(r.model_version) +
                                               " stage " + std::to_string(r.stage) + " is open",
                                           "EvaluationResult"));
  }
  if (evaluating_.count(site) == 0) {
    return Refuse("not_asked",
                  core::FailedPrecondition("site " + site + " was not asked", "envelope.origin"));
  }
  evaluating_.erase(site);
  if (eval_stage_ == 1) {
    core::Status s = OnDomainHistogram(site, tensors);
    if (evaluating_.empty()) {
      if (!s.ok()) {
        CloseEvaluationStage().IgnoreError();
        return s;
      }
      return CloseEvaluationStage();
    }
    return s;
  }
  // A refusal also ends this site's part in the evaluation.
  const auto refuse = [&](const char* reason, core::Status status) {
    core::Status refused = Refuse(reason, std::move(status));
    if (evaluating_.empty()) CloseEvaluationStage().IgnoreError();
    return refused;
  };
  // Which tasks the histograms are of: the study's, or with private heads the
  // site's own (named in the result, in tensor order).
  const bool own_tasks = record_.spec.private_heads;
  const std::vector<std::string>& names =
      own_tasks || !r.tasks.empty() ? r.tasks : record_.spec.tasks;
  if (!own_tasks && names != record_.spec.tasks) {
    return refuse("wrong_tasks",
                  core::InvalidArgument("the histograms must be of the study's " +
                                            std::to_string(record_.spec.tasks.size()) +
                                            " tasks, in its order",
                                        "EvaluationResult.tasks"));
  }
  if (own_tasks) {
    if (names.empty() || names.size() > 4096) {
      return refuse("wrong_tasks", core::InvalidArgument("a private-heads evaluation names 1..4096 "
                                                         "tasks",
                                                         "EvaluationResult.tasks"));
    }
    for (std::size_t i = 0; i < names.size(); ++i) {
      const std::string& t = names[i];
      const std::string where = "EvaluationResult.tasks[" + std::to_string(i) + "]";
      if (t.empty() || t.size() > 128 || !Printable(t)) {
        return refuse("wrong_tasks",
                      core::InvalidArgument("task names are printable and 1..128 bytes", where));
      }
      if (std::find(names.begin(), names.begin() + static_cast<std::ptrdiff_t>(i), t) !=
          names.begin() + static_cast<std::ptrdiff_t>(i)) {
        return refuse("wrong_tasks", core::InvalidArgument("task " + t + " is named twice", where));
      }
      if (!record_.spec.tasks.empty() &&
          std::find(record_.spec.tasks.begin(), record_.spec.tasks.end(), t) ==
              record_.spec.tasks.end()) {
        return refuse("wrong_tasks",
                      core::InvalidArgument("task " + t + " is not one of the study's", where));
      }
    }
  }
  const std::size_t tasks = names.size();
  const std::size_t bins = timings_.histogram_bins;
  // Calibrating studies' answers carry the embedding moments as well.
  const std::size_t expected = Calibrating() ? 2 : 1;
  if (tensors.size() != expected || tensors[0].dtype != codec::DType::kUInt64 ||
      tensors[0].data.size() != tasks * 2 * bins * sizeof(std::uint64_t)) {
    return refuse(
        "wrong_shape",
        core::InvalidArgument("expected " + std::to_string(expected) +
                                  " tensor(s), the first uint64 of shape [" +
                                  std::to_string(tasks) + ", 2, " + std::to_string(bins) + "]",
                              "tensor 0 (histograms)"));
  }
  const std::vector<std::uint64_t> counts = ValuesOf<std::uint64_t>(tensors[0]);
  // Calibration: everything checked before anything is summed.
  ml::EmbeddingMoments moments = embedding_moments_;
  if (Calibrating()) {
    const std::vector<std::int64_t> shape = {2, static_cast<std::int64_t>(net_.hidden.back())};
    if (!TensorIs(tensors[1], "embedding_moments", codec::DType::kFloat64, shape)) {
      return refuse("wrong_shape",
                    core::InvalidArgument("expected a float64 tensor \"embedding_moments\" of "
                                          "shape " +
                                              ShapeText(shape),
                                          "tensor 1 (embedding_moments)"));
    }
    std::vector<double> both = ValuesOf<double>(tensors[1]);
    const auto dims = static_cast<std::ptrdiff_t>(shape[1]);
    ml::EmbeddingMoments add;
    add.rows = r.embedding_rows;
    add.sum.assign(both.begin(), both.begin() + dims);
    add.sum_squares.assign(both.begin() + dims, both.end());
    if (core::Status s = ml::ValidateMoments(add, "tensor 1 (embedding_moments)"); !s.ok()) {
      return refuse("bad_values", std::move(s));
    }
    if (core::Status s = ml::MergeMoments(moments, add); !s.ok()) {
      return refuse("bad_values", std::move(s));
    }
    // Each validation row counts at most once per task (when labelled).
    for (std::size_t t = 0; t < tasks; ++t) {
      std::uint64_t total = 0;
      for (std::size_t i = t * 2 * bins; i < (t + 1) * 2 * bins; ++i) {
        if (counts[i] > r.num_samples - total) {
          return refuse("bad_counts",
                        core::InvalidArgument("task " + names[t] + " counts more than the " +
                                                  std::to_string(r.num_samples) + " samples",
                                              "tensor 0 (histograms)"));
        }
        total += counts[i];
      }
    }
  }
  for (std::size_t t = 0; t < tasks; ++t) {
    const auto* neg = counts.data() + (t * 2) * bins;
    const auto* pos = counts.data() + (t * 2 + 1) * bins;
    ml::ScoreHistogram h;
    h.neg.assign(neg, neg + bins);
    h.pos.assign(pos, pos + bins);
    auto [it, fresh] = histograms_.try_emplace(names[t], std::move(h));
    // Same bins on both sides (checked above), so the merge cannot fail.
    if (!fresh) FEDRX_RETURN_IF_ERROR(ml::Merge(it->second, h));
  }
  evaluated_samples_ += r.num_samples;
  if (Calibrating()) {
    embedding_moments_ = std::move(moments);
    evaluated_sites_[site] = r.num_samples;
  }
  if (evaluating_.empty()) return CloseEvaluationStage();
  return core::Status::Ok();
}

core::Status StudyRunner::FinishEvaluation() {
  if (Calibrating() && !histograms_.empty()) FEDRX_RETURN_IF_ERROR(SaveCalibration());
  std::map<std::string, double> m;
  double roc_sum = 0, pr_sum = 0;
  int defined = 0;
  for (const auto& [task, histogram] : histograms_) {
    const double roc = ml::RocAucFromHistogram(histogram);
    const double pr = ml::PrAucFromHistogram(histogram);
    if (std::isfinite(roc)) {
      m["valid_roc_auc:" + task] = roc;
      roc_sum += roc;
      pr_sum += std::isfinite(pr) ? pr : 0;
      ++defined;
    }
  }
  if (defined > 0) {
    m["valid_mean_roc_auc"] = roc_sum / defined;
    m["valid_mean_pr_auc"] = pr_sum / defined;
    metrics_.Gauge("validation_mean_roc_auc", "Federated validation ROC-AUC of the latest model")
        .Set(roc_sum / defined);
  }
  if (!histograms_.empty()) m["valid_samples"] = static_cast<double>(evaluated_samples_);
  if (accountant_.has_value()) m["privacy_epsilon"] = accountant_->EpsilonAfter(round_.round);
  FEDRX_RETURN_IF_ERROR(store_.SaveRoundMetrics(id(), round_.round, m));
  round_.state = codec::RoundState::kClosed;
  round_.closed_at_ms = clock_.WallMillis();
  FEDRX_RETURN_IF_ERROR(store_.SaveRound(id(), round_));
  std::cerr << "coordinator: " << id() << " round " << round_.round << " closed";
  if (defined > 0) std::cerr << ", validation mean ROC-AUC " << roc_sum / defined;
  std::cerr << "\n";
  eval_model_.reset();
  FEDRX_RETURN_IF_ERROR(AdvanceRound());
  metrics_.Counter("rounds_total", "Rounds ended", {{"outcome", "closed"}}).Inc();
  return core::Status::Ok();
}

core::Status StudyRunner::AdvanceRound() {
  if (record_.current_round >= record_.spec.rounds) {
    // A study none of whose rounds gathered enough updates produced nothing.
    const bool produced = record_.model_version > 0;
    const auto state = produced ? codec::StudyState::kCompleted : codec::StudyState::kFailed;
    const std::string detail = produced ? ""
                                        : "no round gathered the " +
                                              std::to_string(record_.spec.min_sites) +
                                              " update(s) it needs";
    FEDRX_RETURN_IF_ERROR(store_.SaveState(id(), state, record_.current_round, detail));
    record_.state = state;
    record_.detail = detail;
    phase_ = Phase::kDone;
    std::cerr << "coordinator: study " << id() << (produced ? " completed" : " failed")
              << " at model version " << record_.model_version << "\n";
    return core::Status::Ok();
  }
  FEDRX_RETURN_IF_ERROR(
      store_.SaveState(id(), codec::StudyState::kRunning, record_.current_round + 1, ""));
  ++record_.current_round;
  phase_ = Phase::kWaitingForSites;
  checked_store_ = true;
  return core::Status::Ok();
}

core::Result<codec::StudyInfo> StudyRunner::Info() {
  codec::StudyInfo info;
  info.study = record_.spec;
  info.state = record_.state;
  info.current_round = record_.current_round;
  info.model_version = record_.model_version;
  info.detail = record_.detail;
  for (std::uint32_t r = 1; r <= record_.current_round; ++r) {
    FEDRX_ASSIGN_OR_RETURN(std::optional<RoundRecord> rec, store_.LoadRound(id(), r));
    if (!rec.has_value()) continue;
    if (r == round_.round && phase_ != Phase::kWaitingForSites) rec = round_;
    codec::RoundSummary s;
    s.round = r;
    s.state = rec->state;
    s.sites_selected = static_cast<std::uint32_t>(rec->selected.size());
    s.updates_received = static_cast<std::uint32_t>(rec->contributed.size());
    s.samples = rec->samples;
    s.started_at_ms = rec->started_at_ms;
    s.closed_at_ms = rec->closed_at_ms;
    FEDRX_ASSIGN_OR_RETURN(auto metrics, store_.LoadRoundMetrics(id(), r));
    for (const auto& [name, value] : metrics) s.metrics.push_back({name, value});
    info.rounds.push_back(std::move(s));
  }
  return info;
}

}  // namespace fedrx::coordinator
