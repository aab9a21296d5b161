// StudyRunner: one study's round state machine. Each round: select the
// available sites, send them the global model (TrainTask), grant uploads one
// site at a time in site-id order as sites report ready (so the coordinator
// holds one update besides the running aggregate, and the aggregation order,
// hence the model, does not depend on arrival times), fold each update into
// the Strategy as it arrives, close at the deadline with at least min_sites,
// store the new model version, then have the sites evaluate it on their
// validation rows (score histograms only) before the next round. The
// evaluation runs in two stages that both return only sums and counts
// (calibration, for serving): stage 0 brings the score histograms and the
// embedding moments of each site's training rows; once they are summed,
// stage 1 sends the reference (mean and scale per unit) to the same sites,
// which return a histogram of their validation rows' domain scores. Each
// stage waits up to the evaluation budget. The version's VersionCalibration
// is then stored (without the domain histogram when stage 1 got no answer),
// and the round closes. Private-heads studies run stage 0 without moments
// and store no calibration (the platform serves no heads). Every state
// change is written to the StudyStore first, so a restarted coordinator
// resumes the round from its start and reaches the same model.
// The study's options shape a round: the Strategy may be a robust rule
// (which then holds every update until the round closes, robust_strategy.h);
// a server optimiser (server_optimizer.h) steps the model from the
// aggregate, its moments stored with each model version; with differential
// privacy the sites' updates weigh the same, every round is charged to an
// RDP accountant (EpsilonSpent, round metric privacy_epsilon; the
// coordinator exports the largest across studies), and the study ends before a round would exceed
// its epsilon budget. Norm bounding and non-trivial server optimisers keep the round's base model
// during the round (one more model's worth of memory). With secure aggregation
// (spec.secure_aggregation) no update is uploaded: once the sites report ready, the round runs the
// four SecAgg stages (SecAggStart -> keys, roster -> shares, bundles -> masked inputs, unmask
// request -> unmask responses), each closing when every expected site
// answered or at its deadline, folds each masked input into the
// SecAggServer's running sum as it arrives, and learns only the weighted sum
// of the surviving sites' model deltas (trained - global), from which the
// round's model is base + mean delta; it then goes through the strategy, the
// server optimiser and the commit as usual. Finishing (unmasking) is
// CPU-bound (about 2 s for 100 sites and 1M parameters) and runs on a worker
// thread that takes the round's SecAggServer over (secagg_round.h); the
// runner keeps answering meanwhile, refuses the round's late SecAgg answers,
// and Tick completes the round once the worker is done. Below the threshold
// at any stage the round fails and the study goes on with the next one.
// With spec.secagg_neighbours = k > 0 the rounds run SecAgg+ (each site
// masks with, and shares its secrets among, k neighbours of a random Harary
// graph; the threshold applies per neighbourhood of k + 1).
// With private heads (spec.private_heads) the global model is the trunk:
// updates, secure aggregation, DP and the server optimiser all work on the
// trunk vector, and federated evaluation reports per-task metrics for the
// tasks the sites name (each evaluates its own tasks with its own head).
// Driven from the service's thread; not thread-safe. The destructor waits for
// a pending unmasking.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "messages/codec/message.h"
#include "services/coordinator/secagg_round.h"
#include "services/coordinator/server_optimizer.h"
#include "services/coordinator/strategy.h"
#include "services/coordinator/study_store.h"
#include "services/core/clock.h"
#include "services/core/metrics.h"
#include "services/core/status.h"
#include "services/ml/domain.h"
#include "services/ml/metrics.h"
#include "services/ml/model.h"
#include "services/ml/study_spec.h"
#include "services/privacy/dp_accountant.h"
#include "services/privacy/secagg_server.h"

namespace fedrx::coordinator {

// How the round machine reaches sites; implemented over the bus by the service.
class SiteChannel {
 public:
  virtual ~SiteChannel() = default;
  // Sites heard from recently that approved `study_id`, in id order.
  virtual std::vector<std::string> AvailableSites(const std::string& study_id) const = 0;
  // Sends to a site (through the gateway it is connected to).
  virtual core::Status SendToSite(const std::string& site, codec::Message message) = 0;
  // The preparation hash `site` registered with (RegisterSite.schema_hash);
  // nullopt when not known (yet).
  virtual std::optional<std::string> PreparationHashOf(const std::string& site) const {
    (void)site;
    return std::nullopt;
  }
};

struct RunnerTimings {
  // How long a granted site has to deliver its update.
  std::chrono::milliseconds upload_timeout{30000};
  // Longest a federated evaluation waits for sites.
  std::chrono::milliseconds evaluation_timeout{30000};
  std::uint32_t histogram_bins = 1000;
  // When a study names its sites, how long a round waits for all of them to
  // be heard from before it starts with those available (at least
  // min_sites); capped by the round deadline. Right after a coordinator
  // restart the sites re-announce themselves within a heartbeat or two.
  std::chrono::milliseconds selection_wait{5000};
  // Secure aggregation: how long each of its four stages waits for the
  // sites; capped by the study's round deadline.
  std::chrono::milliseconds secagg_stage_timeout{30000};
};

// Checks a study spec from outside; kInvalidArgument names the field.
core::Status ValidateStudySpec(const codec::StudySpec& spec);
// The global model's parameter count: the whole network's, or in a
// private-heads study (spec.private_heads) the trunk's alone, since each
// site's head stays at the site.
std::size_t GlobalParameterCount(const codec::StudySpec& spec);
// A study's initial global model, deterministic in spec.seed (the trunk alone
// with private heads: the same values as the trunk prefix of the full init).
std::vector<float> InitialModel(const codec::StudySpec& spec);
// Whether a study runs with client-level differential privacy (sites clip,
// and noise when dp_noise_multiplier > 0; the coordinator weighs sites equally).
bool DpEnabled(const codec::StudySpec& spec);
// The study's privacy accountant: nullopt without DP noise. Every available
// site takes part in each round, so the sampling rate is 1.
core::Result<std::optional<privacy::RdpAccountant>> MakeAccountant(const codec::StudySpec& spec);
// The seed a site trains with in a round: fixed by the study seed, the round
// and the site id, so a repeated round trains identically.
std::uint64_t SiteRoundSeed(std::uint64_t study_seed, std::uint32_t round, const std::string& site);
// Secure aggregation: the threshold t of a study's rounds, the fewest sites
// that must remain at every stage (secagg_threshold, else min_sites; the
// protocol needs at least 2). Sites share their DP noise among t.
std::uint32_t SecAggThreshold(const codec::StudySpec& spec);
// The fixed-point encoding of a round of `sites` sites. Sites mask their
// model delta (trained - global), not their weights: each coordinate of
// weight * delta is clipped to +-8 (the library's default clip, far above a
// round's step) and rounded at the finest scale that cannot wrap around for
// `sites` sites, capped at 2^-24: 16..24 bits, so each site adds at most
// 2^-(scale_bits+1) of rounding error per coordinate (7.6e-6 at 16 bits,
// 3.0e-8 at 24).
privacy::FixedPointEncoding SecAggEncoding(std::size_t sites);
// The value that binds a round's SecAgg keys and shares to (study, round).
std::uint64_t SecAggRoundTag(const std::string& study_id, std::uint32_t round);

// ---- Statistics studies (spec.statistic; statistics_round.cc) ----------------
// A "pair_counts" study trains nothing: in its one round each site counts,
// over its own compounds that carry both labels, the 2x2 table of every
// (statistic_rows[r], tasks[c]) pair (reverse::CountPairs, Flatten order: 4
// words a, b, c, d per pair, row-major) and sends them as its update
// (UpdateReady.num_samples = the compounds it counted); the coordinator SUMS
// the tables (no FedAvg weighting, no strategy, no server optimiser), with
// secure aggregation when the spec asks, and stores the sum as model version
// 1 (float32 holds every integer below 2^24 exactly; larger sums are refused).
inline constexpr char kStatisticPairCounts[] = "pair_counts";
// Sums at or above this are not stored (float32 would round them).
inline constexpr std::uint64_t kMaxExactCount = std::uint64_t{1} << 24;
// Whether a spec asks for a statistic (statistic or statistic_rows set).
bool IsStatisticsStudy(const codec::StudySpec& spec);
// A statistics study's vector length: 4 words per (row, column) pair.
std::size_t StatisticLength(const codec::StudySpec& spec);
// The statistics part of ValidateStudySpec: labels named (1..64 rows,
// 1..4096 columns, printable, distinct, no label both a row and a column),
// one round, no DP noise or clipping (counts would need a discrete mechanism
// with its own accounting), no robust strategy, server optimiser or FedProx,
// and the shared site and secure-aggregation rules. kInvalidArgument naming
// the field.
core::Status ValidateStatisticsSpec(const codec::StudySpec& spec);
// The fixed point a secure sum of counts uses: scale 2^0 (integers, no
// rounding) and clip = the largest compound count a participant declared
// (UpdateReady.num_samples; no true cell exceeds its site's count, so none is
// clipped). kInvalidArgument when `sites` such counts could reach
// kMaxExactCount (the sum could then wrap or lose exactness in float32).
core::Result<privacy::FixedPointEncoding> CountsEncoding(std::uint64_t largest_declared,
                                                         std::size_t sites);
// Checks one site's plain counts against the compounds it declared: every
// word a non-negative integer, each pair's table summing to at most
// `compounds`, `compounds` below kMaxExactCount. kInvalidArgument naming
// `where` and the pair.
core::Status CheckCounts(std::span<const float> counts, std::uint64_t compounds,
                         const std::string& where);

class StudyRunner {
 public:
  enum class Phase { kWaitingForSites, kTraining, kEvaluating, kDone, kSecureAggregation };

  // Resumes (or starts) `record`'s study where the store says it is.
  StudyRunner(StudyRecord record, StudyStore& store, SiteChannel& sites,
              std::unique_ptr<Strategy> strategy, const core::Clock& clock, core::Metrics& metrics,
              RunnerTimings timings = {});

  const std::string& id() const { return record_.spec.study_id; }
  Phase phase() const { return phase_; }
  const StudyRecord& record() const { return record_; }

  // Starts rounds when enough sites are available and closes them at their
  // deadlines. Errors are the store's (the runner retries on the next tick).
  core::Status Tick();

  // Site messages. Each refusal says why, is counted in
  // fedrx_coordinator_updates_rejected_total{reason}, and leaves the round as it was.
  core::Status OnUpdateReady(const std::string& site, const codec::UpdateReady& ready);
  core::Status OnModelUpdate(const std::string& site, const codec::ModelUpdate& update,
                             std::vector<codec::Tensor>& tensors);
  core::Status OnEvaluationResult(const std::string& site, const codec::EvaluationResult& result,
                                  std::vector<codec::Tensor>& tensors);
  // Secure-aggregation answers; refused like updates (stale_round,
  // not_selected, wrong_participant, late, wrong_shape, secagg_refused). A
  // message the SecAggServer refuses ends the site's part in the round.
  // `tensors` (the masked input) is folded into the running sum and freed.
  core::Status OnSecAggKeys(const std::string& site, const codec::SecAggKeys& keys);
  core::Status OnSecAggShares(const std::string& site, const codec::SecAggShares& shares);
  core::Status OnSecAggMaskedInput(const std::string& site, const codec::SecAggMaskedInput& input,
                                   std::vector<codec::Tensor>& tensors);
  core::Status OnSecAggUnmaskResponse(const std::string& site,
                                      const codec::SecAggUnmaskResponse& response);

  core::Result<codec::StudyInfo> Info();

  // Whether a round's unmasking is running on the worker (Tick completes
  // the round when it is done).
  bool unmasking() const;
  // Blocks until a pending unmasking is done, then completes the round as
  // the next Tick would (returning its errors); Ok at once when nothing is
  // pending. For tests, which would otherwise poll Tick.
  core::Status AwaitUnmasking();
  // Tests: runs on the unmasking worker before it unmasks, e.g. to hold it
  // while the test looks at the runner.
  void SetUnmaskHookForTesting(std::function<void()> hook) { unmask_hook_ = std::move(hook); }

  // Epsilon of the (epsilon, delta)-DP guarantee the study has spent so far
  // (its accountant's, after the rounds run); empty without DP noise.
  std::optional<double> EpsilonSpent() const;

 private:
  core::Status StartRound();
  core::Status ResumeEvaluation();
  core::Status MaybeGrant();
  core::Status CloseTraining();
  core::Status FailRound(const std::string& why);
  bool Secure() const { return record_.spec.secure_aggregation; }
  std::chrono::milliseconds SecAggStageTimeout() const;
  core::Status MaybeStartSecAgg();
  core::Status StartSecAgg();
  core::Status CloseSecAggStage();
  // Hands the server to the unmasking worker and returns.
  core::Status FinishSecAgg();
  // With the worker's outcome: the round's model from the unmasked sum.
  core::Status CompleteSecAgg();
  // Whether `site` may send a secure-aggregation answer now (a refusal otherwise).
  core::Status CheckSecAgg(const std::string& site, const std::string& study_id,
                           std::uint32_t round, std::uint32_t participant, const char* body);
  // A refusal by the SecAggServer: the site is out of the round.
  core::Status SecAggRefused(const std::string& site, core::Status status);
  // Records the detections of `all` not recorded yet this round.
  void RecordDetections(const std::vector<privacy::SecAggDetection>& all);
  core::Status StartEvaluation(std::shared_ptr<const std::vector<float>> model);
  // Ends the current evaluation stage (all answered, or its deadline): stage
  // 0 of a calibrating evaluation goes on to stage 1, else FinishEvaluation.
  core::Status CloseEvaluationStage();
  // Sends stage 1 to the sites whose stage 0 was accepted; none sent when
  // there are no moments to score against.
  core::Status StartDomainStage();
  // A stage-1 answer of an asked site; refusals as OnEvaluationResult's.
  core::Status OnDomainHistogram(const std::string& site, std::vector<codec::Tensor>& tensors);
  // Stores the round's VersionCalibration; an inconsistent one is logged,
  // counted and skipped (store errors are returned, for a retry).
  core::Status SaveCalibration();
  // Whether this study's evaluations collect a calibration (not with
  // private heads).
  bool Calibrating() const { return !record_.spec.private_heads; }
  std::chrono::milliseconds EvaluationBudget() const;
  core::Status FinishEvaluation();
  core::Status AdvanceRound();
  core::Status Refuse(const char* reason, core::Status status);
  // Checks an untrusted global-sized vector (a whole network, or the trunk
  // with private heads).
  core::Status ValidateModel(std::span<const float> params) const;
  core::Status EndForBudget();
  core::Status LoadOptimizerState();
  bool KeepsRoundBase() const;
  bool Selected(const std::string& site) const;
  // Statistics studies (statistics_round.cc).
  bool Statistics() const { return IsStatisticsStudy(record_.spec); }
  // Checks one site's plain counts and adds them to counts_sum_.
  core::Status AddCounts(std::span<const float> counts, std::uint64_t compounds);
  // The unmasked secure sum of counts, checked, into counts_sum_.
  core::Status TakeSecureCounts(const privacy::SecAggResult& result);
  // Stores counts_sum_ as the next model version and completes the study.
  core::Status CommitCounts();
  std::vector<codec::Tensor> ModelTensors(std::shared_ptr<const std::vector<float>> model) const;

  StudyRecord record_;
  StudyStore& store_;
  SiteChannel& sites_;
  std::unique_ptr<Strategy> strategy_;
  const core::Clock& clock_;
  core::Metrics& metrics_;
  RunnerTimings timings_;
  ml::NetSpec net_;
  std::size_t parameters_ = 0;
  // Steps the global model from each round's aggregate (plain FedAvg: as is).
  std::optional<ServerOptimizer> optimizer_;
  // Whether optimizer_ holds the state stored with the latest model (loaded
  // once after a (re)start, then kept in step with each commit).
  bool optimizer_loaded_ = false;
  // Charges each round's epsilon; empty without DP noise.
  std::optional<privacy::RdpAccountant> accountant_;
  double epsilon_spent_ = 0;
  // The stored spec could not be turned into an optimizer or accountant.
  core::Status init_error_ = core::Status::Ok();

  Phase phase_ = Phase::kWaitingForSites;
  // The latest stored model, kept from its commit until the next round has
  // handed it to the sites, so it is not read back from the store (a
  // restarted coordinator reads it once).
  std::shared_ptr<const std::vector<float>> latest_model_;
  // The model the round started from, kept during the round only when the
  // strategy or the server optimizer needs it (KeepsRoundBase()).
  std::shared_ptr<const std::vector<float>> round_base_;
  // Whether the stored record of the current round has been looked at (once
  // after a (re)start; a round that began here needs no look).
  bool checked_store_ = false;
  RoundRecord round_;
  std::chrono::steady_clock::time_point deadline_{};
  // Since when the current round has been waiting for its sites.
  std::optional<std::chrono::steady_clock::time_point> waiting_since_;
  std::chrono::steady_clock::time_point round_started_{};
  std::set<std::string> ready_;
  std::map<std::string, std::uint64_t> ready_samples_;
  std::set<std::string> dropped_;
  // Sites left out of this study's rounds for a preparation hash other than
  // spec.preparation_hash (logged and counted once each).
  std::set<std::string> refused_preparation_;
  std::string uploading_;
  std::chrono::steady_clock::time_point upload_deadline_{};
  // The round's aggregate from the moment the strategy hands it over (which
  // it does once) until it is stored, so a failed store is retried with it.
  std::optional<std::vector<float>> aggregate_;
  // Statistics studies: the round's summed counts (exact integers).
  std::vector<std::uint64_t> counts_sum_;
  // Evaluation of the round's model.
  std::set<std::string> evaluating_;
  // Per task name: the study's tasks, or with private heads whatever tasks
  // the sites report (each names its own).
  std::map<std::string, ml::ScoreHistogram> histograms_;
  std::uint64_t evaluated_samples_ = 0;
  // Calibration: the stage under way (0, 1), the model evaluated, the sites
  // whose stage 0 was accepted (with their validation rows), the summed
  // moments and the summed domain histogram (empty until a stage-1 answer).
  std::uint32_t eval_stage_ = 0;
  std::shared_ptr<const std::vector<float>> eval_model_;
  std::map<std::string, std::uint64_t> evaluated_sites_;
  ml::EmbeddingMoments embedding_moments_;
  std::vector<std::uint64_t> domain_histogram_;
  std::map<std::string, double> round_metrics_;
  // Secure aggregation of the current round (Phase::kSecureAggregation).
  std::optional<privacy::SecAggServer> secagg_;
  std::map<std::string, privacy::ParticipantId> participants_;
  std::map<privacy::ParticipantId, std::string> participant_sites_;
  // Sites the current stage still waits for.
  std::set<std::string> secagg_waiting_;
  std::chrono::steady_clock::time_point secagg_deadline_{};
  std::size_t detections_recorded_ = 0;
  std::function<void()> unmask_hook_;
  // The round's unmasking, once started (it holds the server then; secagg_
  // is empty). Last, so that it is destroyed (and its worker joined) first.
  SecAggUnmasking unmasking_;
};

}  // namespace fedrx::coordinator
