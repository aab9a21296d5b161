// The StudyRunner's secure-aggregation stages (study_runner.h describes the
// round), and the worker that unmasks a round off the runner's thread.
#include "services/coordinator/secagg_round.h"

#include <algorithm>
#include <chrono>
#include <iostream>
#include <new>
#include <system_error>
#include <utility>

#include "services/coordinator/study_runner.h"
#include "services/core/bus.h"
#include "services/privacy/secagg_wire.h"

namespace fedrx::coordinator {
namespace {

using std::chrono::milliseconds;

// Metric label of a secure-aggregation stage (what the coordinator waits for).
const char* StageLabel(privacy::SecAggServer::Stage stage) {
  using Stage = privacy::SecAggServer::Stage;
  switch (stage) {
    case Stage::kAdvertiseKeys:
      return "secagg_keys";
    case Stage::kShareKeys:
      return "secagg_shares";
    case Stage::kMaskedInput:
      return "secagg_masked_input";
    case Stage::kUnmasking:
      return "secagg_unmask";
    case Stage::kDone:
    case Stage::kFailed:
      break;
  }
  return "secagg_done";
}

const char* DetectionLabel(privacy::SecAggDetection::Kind kind) {
  using Kind = privacy::SecAggDetection::Kind;
  switch (kind) {
    case Kind::kShareFailedAuthentication:
      return "share_failed_authentication";
    case Kind::kInconsistentShares:
      return "inconsistent_shares";
    case Kind::kWrongReconstruction:
      return "wrong_reconstruction";
  }
  return "unknown";
}

}  // namespace

core::Status SecAggUnmasking::Start(privacy::SecAggServer server, std::function<void()> before) {
  auto work = [server = std::move(server), before = std::move(before)]() mutable {
    if (before) before();
    // Timed here with the steady clock: the injected Clock belongs to the
    // runner's thread (a test's FakeClock is not thread-safe), and what is
    // measured is this thread's work, not a deadline.
    const auto started = std::chrono::steady_clock::now();
    Outcome out;
    try {
      out.result = server.Finish();
    } catch (const std::bad_alloc&) {
      // The sum and the masks are model-sized: a round too big for the
      // memory left fails, the coordinator does not.
      out.result = core::ResourceExhausted("out of memory while unmasking", "SecAggServer::Finish");
    }
    out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    out.detections = server.detections();
    return out;
  };
  try {
    worker_ = std::async(std::launch::async, std::move(work));
  } catch (const std::system_error& e) {
    return core::ResourceExhausted(std::string("cannot start the unmasking thread: ") + e.what(),
                                   "SecAggUnmasking");
  }
  return core::Status::Ok();
}

bool SecAggUnmasking::ready() const {
  return worker_.valid() && worker_.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
}

void SecAggUnmasking::Wait() const {
  if (worker_.valid()) worker_.wait();
}

SecAggUnmasking::Outcome SecAggUnmasking::Take() { return worker_.get(); }

std::chrono::milliseconds StudyRunner::SecAggStageTimeout() const {
  return std::min(timings_.secagg_stage_timeout, milliseconds(record_.spec.round_deadline_ms));
}

core::Status StudyRunner::MaybeStartSecAgg() {
  if (phase_ != Phase::kTraining) return core::Status::Ok();
  // Aggregated but not yet stored (the store failed): retry the commit.
  if (aggregate_.has_value() || !round_.contributed.empty()) return CloseTraining();
  const bool past_deadline = clock_.Now() >= deadline_;
  for (const auto& site : round_.selected) {
    if (dropped_.count(site) != 0 || ready_.count(site) != 0) continue;
    if (!past_deadline) return core::Status::Ok();  // wait for every selected site
    std::cerr << "coordinator: " << id() << " round " << round_.round << ": site " << site
              << " missed the deadline\n";
    metrics_.Counter("dropouts_total", "Sites dropped from a round", {{"stage", "training"}}).Inc();
    dropped_.insert(site);
  }
  return StartSecAgg();
}

core::Status StudyRunner::StartSecAgg() {
  std::vector<std::string> sites;
  for (const auto& site : round_.selected) {
    if (ready_.count(site) != 0 && dropped_.count(site) == 0) sites.push_back(site);
  }
  const std::size_t threshold = SecAggThreshold(record_.spec);
  const std::size_t needed = std::max<std::size_t>(threshold, record_.spec.min_sites);
  if (sites.size() < needed) {
    metrics_
        .Counter("secagg_rounds_failed_total",
                 "Secure-aggregation rounds that failed, by the stage that fell short",
                 {{"stage", "training"}})
        .Inc();
    return FailRound("secure aggregation: " + std::to_string(sites.size()) + " site(s) trained, " +
                     std::to_string(needed) + " needed");
  }
  privacy::SecAggParams params;
  params.round = SecAggRoundTag(id(), round_.round);
  params.dimension = parameters_;
  params.threshold = threshold;
  params.max_sites = sites.size();
  params.encoding = SecAggEncoding(sites.size());
  if (Statistics()) {
    // Counts: integers, clipped at the largest count a participant declared.
    std::uint64_t largest = 0;
    for (const auto& site : sites) largest = std::max(largest, ready_samples_[site]);
    auto counts = CountsEncoding(largest, sites.size());
    if (!counts.ok())
      return FailRound("secure aggregation of counts: " + counts.status().ToString());
    params.encoding = *counts;
  }
  // SecAgg+ when the study asks for it: the sites get k with the params and
  // the graph seed with the roster, so both sides build the same graph.
  params.neighbours = record_.spec.secagg_neighbours;
  auto server = privacy::SecAggServer::Create(params);
  if (!server.ok()) return FailRound("secure aggregation: " + server.status().ToString());
  secagg_.emplace(std::move(*server));
  // Participant ids follow the sorted site ids of this round's participants,
  // so a repeated round maps them the same way.
  participants_.clear();
  participant_sites_.clear();
  for (std::size_t i = 0; i < sites.size(); ++i) {
    const auto pid = static_cast<privacy::ParticipantId>(i + 1);
    participants_[sites[i]] = pid;
    participant_sites_[pid] = sites[i];
  }
  // Weighted FedAvg through the masked sum: a site's weight is its samples
  // over the largest count reported this round; with DP every site weighs 1.
  // A statistics study sums: every site weighs 1 (cap 0), as with DP.
  std::uint64_t weight_cap = 0;
  if (!DpEnabled(record_.spec) && !Statistics()) {
    weight_cap = 1;
    for (const auto& site : sites) weight_cap = std::max(weight_cap, ready_samples_[site]);
  }
  phase_ = Phase::kSecureAggregation;
  secagg_deadline_ = clock_.Now() + SecAggStageTimeout();
  secagg_waiting_.clear();
  const codec::SecAggParams wire = privacy::ParamsToWire(params);
  for (const auto& site : sites) {
    codec::SecAggStart start{id(), round_.round, round_.base_version, participants_[site],
                             wire, weight_cap};
    if (core::Status s = sites_.SendToSite(site, core::MakeMessage(std::move(start))); !s.ok()) {
      metrics_.Counter("dropouts_total", "Sites dropped from a round", {{"stage", "secagg_keys"}})
          .Inc();
      continue;
    }
    secagg_waiting_.insert(site);
  }
  std::cerr << "coordinator: " << id() << " round " << round_.round << ": secure aggregation of "
            << sites.size() << " site(s), threshold " << threshold << ", "
            << params.encoding.scale_bits << "-bit fixed point";
  if (params.neighbours != 0) std::cerr << ", SecAgg+ with " << params.neighbours << " neighbours";
  std::cerr << "\n";
  if (secagg_waiting_.empty()) return CloseSecAggStage();
  return core::Status::Ok();
}

core::Status StudyRunner::CloseSecAggStage() {
  using Stage = privacy::SecAggServer::Stage;
  const Stage stage = secagg_->stage();
  for (const auto& site : secagg_waiting_) {
    std::cerr << "coordinator: " << id() << " round " << round_.round << ": site " << site
              << " did not answer " << StageLabel(stage) << " in time\n";
    metrics_.Counter("dropouts_total", "Sites dropped from a round", {{"stage", StageLabel(stage)}})
        .Inc();
  }
  secagg_waiting_.clear();
  const auto send = [&](privacy::ParticipantId to, codec::Body body) {
    auto it = participant_sites_.find(to);
    if (it == participant_sites_.end()) return;
    if (core::Status s = sites_.SendToSite(it->second, core::MakeMessage(std::move(body)));
        !s.ok()) {
      metrics_
          .Counter("dropouts_total", "Sites dropped from a round",
                   {{"stage", StageLabel(secagg_->stage())}})
          .Inc();
      return;
    }
    secagg_waiting_.insert(it->second);
  };
  const auto failed = [&](const core::Status& s) {
    RecordDetections(secagg_->detections());
    metrics_
        .Counter("secagg_rounds_failed_total",
                 "Secure-aggregation rounds that failed, by the stage that fell short",
                 {{"stage", StageLabel(stage)}})
        .Inc();
    return FailRound("secure aggregation: " + s.ToString());
  };
  switch (stage) {
    case Stage::kAdvertiseKeys: {
      auto roster = secagg_->CloseKeys();
      if (!roster.ok()) return failed(roster.status());
      codec::SecAggRoster wire = privacy::ToWire(*roster);
      wire.study_id = id();
      wire.round = round_.round;
      for (const auto& k : roster->sites) send(k.id, wire);
      break;
    }
    case Stage::kShareKeys: {
      auto bundles = secagg_->CloseShares();
      if (!bundles.ok()) return failed(bundles.status());
      for (const auto& b : *bundles) {
        codec::SecAggBundle wire = privacy::ToWire(b);
        wire.study_id = id();
        wire.round = round_.round;
        send(b.to, std::move(wire));
      }
      break;
    }
    case Stage::kMaskedInput: {
      auto request = secagg_->CloseMaskedInput();
      if (!request.ok()) return failed(request.status());
      codec::SecAggUnmaskRequest wire = privacy::ToWire(*request);
      wire.study_id = id();
      wire.round = round_.round;
      for (privacy::ParticipantId pid : request->survivors) send(pid, wire);
      break;
    }
    case Stage::kUnmasking:
      return FinishSecAgg();
    case Stage::kDone:
    case Stage::kFailed:
      return FailRound("secure aggregation is in no stage to close");
  }
  secagg_deadline_ = clock_.Now() + SecAggStageTimeout();
  // Nobody left to wait for: the next stage closes at once (and fails below t).
  if (secagg_waiting_.empty()) return CloseSecAggStage();
  return core::Status::Ok();
}

void StudyRunner::RecordDetections(const std::vector<privacy::SecAggDetection>& all) {
  for (; detections_recorded_ < all.size(); ++detections_recorded_) {
    const privacy::SecAggDetection& d = all[detections_recorded_];
    auto it = participant_sites_.find(d.site);
    const std::string who = it == participant_sites_.end() ? std::to_string(d.site) : it->second;
    std::cerr << "coordinator: " << id() << " round " << round_.round
              << ": secure aggregation detected " << DetectionLabel(d.kind) << " of site " << who
              << "\n";
    metrics_
        .Counter("secagg_detections_total",
                 "Evidence secure aggregation collected against a site, by kind",
                 {{"kind", DetectionLabel(d.kind)}})
        .Inc();
    round_.secagg_detections.push_back(std::string(DetectionLabel(d.kind)) + ":" + who);
  }
}

core::Status StudyRunner::FinishSecAgg() {
  // Unmasking regenerates one mask per survivor and per (dropped, adjacent
  // survivor) pair: seconds at 100 sites. It runs on a worker that takes the
  // server over, so this thread goes on answering (this round's late
  // answers are refused, CheckSecAgg) and Tick picks the result up.
  core::Status started = unmasking_.Start(std::move(*secagg_), unmask_hook_);
  secagg_.reset();
  if (!started.ok()) {
    metrics_
        .Counter("secagg_rounds_failed_total",
                 "Secure-aggregation rounds that failed, by the stage that fell short",
                 {{"stage", "secagg_unmask"}})
        .Inc();
    return FailRound("secure aggregation: " + started.ToString());
  }
  return core::Status::Ok();
}

bool StudyRunner::unmasking() const { return unmasking_.pending(); }

core::Status StudyRunner::AwaitUnmasking() {
  if (!unmasking_.pending()) return core::Status::Ok();
  unmasking_.Wait();
  return Tick();
}

core::Status StudyRunner::CompleteSecAgg() {
  SecAggUnmasking::Outcome outcome = unmasking_.Take();
  RecordDetections(outcome.detections);
  metrics_
      .Histogram("secagg_finish_seconds", "Time to unmask a secure-aggregation round's sum",
                 {0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30})
      .Observe(outcome.seconds);
  core::Result<privacy::SecAggResult>& result = outcome.result;
  if (!result.ok()) {
    metrics_
        .Counter("secagg_rounds_failed_total",
                 "Secure-aggregation rounds that failed, by the stage that fell short",
                 {{"stage", "secagg_unmask"}})
        .Inc();
    return FailRound("secure aggregation: " + result.status().ToString());
  }
  round_.contributed.clear();
  round_.samples = 0;
  for (privacy::ParticipantId pid : result->survivors) {
    const std::string& site = participant_sites_.at(pid);
    round_.contributed.push_back(site);
    round_.samples += ready_samples_[site];
  }
  std::sort(round_.contributed.begin(), round_.contributed.end());
  // From here a failure is retried by Tick (FailRound): no server, nothing pending.
  if (round_.contributed.size() < record_.spec.min_sites) {
    return FailRound(std::to_string(round_.contributed.size()) + " masked update(s) unmasked, " +
                     std::to_string(record_.spec.min_sites) + " needed");
  }
  if (Statistics()) {
    if (core::Status s = TakeSecureCounts(*result); !s.ok()) {
      return FailRound("the unmasked counts are malformed: " + s.message());
    }
    metrics_.Counter("updates_accepted_total", "Site updates folded into a round")
        .Inc(static_cast<double>(round_.contributed.size()));
    phase_ = Phase::kTraining;  // a failed commit is retried from MaybeStartSecAgg
    return CommitCounts();
  }
  std::vector<float> model = result->Mean();  // the weighted mean delta
  if (model.size() != parameters_ || !round_base_ || round_base_->size() != parameters_) {
    return FailRound("secure aggregation produced no mean (total weight " +
                     std::to_string(result->total_weight) + ")");
  }
  for (std::size_t i = 0; i < model.size(); ++i) model[i] += (*round_base_)[i];
  if (core::Status s = ValidateModel(model); !s.ok()) {
    return FailRound("the unmasked model is invalid: " + s.message());
  }
  metrics_.Counter("updates_accepted_total", "Site updates folded into a round")
      .Inc(static_cast<double>(round_.contributed.size()));
  // One aggregate of the survivors: the strategy (fedavg or norm_bound, whose
  // bound the sites applied themselves) and the server optimiser take it as usual.
  // Back in the training phase with the aggregate in hand: a commit that
  // fails is retried from MaybeStartSecAgg.
  phase_ = Phase::kTraining;
  FEDRX_RETURN_IF_ERROR(strategy_->Accept(model, 1.0));
  return CloseTraining();
}

core::Status StudyRunner::CheckSecAgg(const std::string& site, const std::string& study_id,
                                      std::uint32_t round, std::uint32_t participant,
                                      const char* body) {
  if (phase_ != Phase::kSecureAggregation || (!secagg_ && !unmasking_.pending()) ||
      study_id != id() || round != round_.round) {
    return Refuse("stale_round",
                  core::FailedPrecondition("round " + std::to_string(round) + " of study " +
                                               study_id + " is not aggregating securely",
                                           std::string(body) + ".round"));
  }
  auto it = participants_.find(site);
  if (it == participants_.end()) {
    return Refuse("not_selected", core::Status(core::StatusCode::kPermissionDenied,
                                               "site " + site +
                                                   " is not taking part in the secure "
                                                   "aggregation of round " +
                                                   std::to_string(round),
                                               "envelope.origin"));
  }
  if (it->second != participant) {
    return Refuse("wrong_participant",
                  core::Status(core::StatusCode::kPermissionDenied,
                               "site " + site + " is participant " + std::to_string(it->second) +
                                   " of round " + std::to_string(round) + ", not " +
                                   std::to_string(participant),
                               std::string(body) + ".id"));
  }
  if (unmasking_.pending()) {
    // The worker holds the server: the round's answers are closed.
    return Refuse("late", core::FailedPrecondition("round " + std::to_string(round) +
                                                       " is being unmasked: no answer from site " +
                                                       site + " is expected now",
                                                   body));
  }
  if (secagg_waiting_.count(site) == 0) {
    return Refuse("late", core::FailedPrecondition("no answer from site " + site +
                                                       " is expected now (stage " +
                                                       StageLabel(secagg_->stage()) + ")",
                                                   body));
  }
  return core::Status::Ok();
}

core::Status StudyRunner::SecAggRefused(const std::string& site, core::Status status) {
  secagg_waiting_.erase(site);
  core::Status refused = Refuse("secagg_refused", std::move(status));
  if (secagg_waiting_.empty()) CloseSecAggStage().IgnoreError();
  return refused;
}

core::Status StudyRunner::OnSecAggKeys(const std::string& site, const codec::SecAggKeys& m) {
  FEDRX_RETURN_IF_ERROR(CheckSecAgg(site, m.study_id, m.round, m.keys.id, "SecAggKeys"));
  auto keys = privacy::FromWire(m.keys);
  if (!keys.ok()) return SecAggRefused(site, keys.status());
  if (core::Status s = secagg_->AcceptKeys(*keys); !s.ok()) return SecAggRefused(site, s);
  secagg_waiting_.erase(site);
  if (secagg_waiting_.empty()) return CloseSecAggStage();
  return core::Status::Ok();
}

core::Status StudyRunner::OnSecAggShares(const std::string& site, const codec::SecAggShares& m) {
  FEDRX_RETURN_IF_ERROR(CheckSecAgg(site, m.study_id, m.round, m.id, "SecAggShares"));
  auto shares = privacy::FromWire(m);
  if (!shares.ok()) return SecAggRefused(site, shares.status());
  if (core::Status s = secagg_->AcceptShares(*shares); !s.ok()) return SecAggRefused(site, s);
  secagg_waiting_.erase(site);
  if (secagg_waiting_.empty()) return CloseSecAggStage();
  return core::Status::Ok();
}

core::Status StudyRunner::OnSecAggMaskedInput(const std::string& site,
                                              const codec::SecAggMaskedInput& m,
                                              std::vector<codec::Tensor>& tensors) {
  if (core::Status s = CheckSecAgg(site, m.study_id, m.round, m.id, "SecAggMaskedInput"); !s.ok()) {
    tensors.clear();
    return s;
  }
  const std::size_t words = parameters_ + 1;
  if (tensors.size() != 1 || tensors[0].dtype != codec::DType::kUInt32 ||
      tensors[0].data.size() != words * sizeof(std::uint32_t)) {
    tensors.clear();
    return SecAggRefused(site, core::InvalidArgument("expected one uint32 tensor of " +
                                                         std::to_string(words) + " words",
                                                     "tensor 0 (masked)"));
  }
  const auto aggregation_started = clock_.Now();
  core::Status accepted = core::Status::Ok();
  {
    // Folded into the running sum and gone: no masked vector outlives this block.
    auto view = tensors[0].data.As<std::uint32_t>();
    privacy::MaskedInputMessage input{m.id, std::vector<std::uint32_t>(view.begin(), view.end())};
    tensors.clear();
    accepted = secagg_->AcceptMaskedInput(input);
  }
  if (!accepted.ok()) return SecAggRefused(site, accepted);
  metrics_
      .Histogram("update_aggregation_seconds",
                 "Time to check one site update and fold it into the round's aggregate",
                 {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5})
      .Observe(std::chrono::duration<double>(clock_.Now() - aggregation_started).count());
  secagg_waiting_.erase(site);
  if (secagg_waiting_.empty()) return CloseSecAggStage();
  return core::Status::Ok();
}

core::Status StudyRunner::OnSecAggUnmaskResponse(const std::string& site,
                                                 const codec::SecAggUnmaskResponse& m) {
  FEDRX_RETURN_IF_ERROR(CheckSecAgg(site, m.study_id, m.round, m.id, "SecAggUnmaskResponse"));
  auto response = privacy::FromWire(m);
  if (!response.ok()) return SecAggRefused(site, response.status());
  if (core::Status s = secagg_->AcceptUnmask(*response); !s.ok()) return SecAggRefused(site, s);
  secagg_waiting_.erase(site);
  if (secagg_waiting_.empty()) return CloseSecAggStage();
  return core::Status::Ok();
}

}  // namespace fedrx::coordinator
