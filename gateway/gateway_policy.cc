#include "gateway/gateway_policy.h"

#include <algorithm>
#include <type_traits>

namespace fedrx::gateway {

std::map<std::string, RoleLimits, std::less<>> GatewayLimits::DefaultRoleLimits() {
  // A site sends a handful of messages a round (heartbeats every few seconds,
  // an update, an evaluation) and one large update; people send small
  // requests by hand or from scripts.
  return {
      {"site", RoleLimits{50, 100, 512ull << 20}},
      {"scientist", RoleLimits{20, 40, 1ull << 20}},
      {"admin", RoleLimits{10, 20, 1ull << 20}},
  };
}

core::Status LoadGatewayLimits(const core::Config& config, GatewayLimits& limits) {
  for (const char* role : {"site", "scientist", "admin"}) {
    RoleLimits& l = limits.per_role[role];
    const std::string prefix = std::string("gateway.limits.") + role + ".";
    FEDRX_ASSIGN_OR_RETURN(l.messages_per_second,
                           config.IntOr(prefix + "rate", l.messages_per_second, 0, 1000000));
    FEDRX_ASSIGN_OR_RETURN(l.burst, config.IntOr(prefix + "burst", l.burst, 0, 10000000));
    FEDRX_ASSIGN_OR_RETURN(l.max_message_bytes,
                           config.BytesOr(prefix + "max_message_bytes", l.max_message_bytes));
    if (l.messages_per_second > 0 && l.burst == 0) l.burst = l.messages_per_second;
  }
  FEDRX_ASSIGN_OR_RETURN(limits.replay_window,
                         config.DurationOr("gateway.replay_window", limits.replay_window));
  if (limits.replay_window <= std::chrono::milliseconds(0)) {
    return core::InvalidArgument("must be positive", "gateway.replay_window");
  }
  return core::Status::Ok();
}

namespace {

template <typename T>
constexpr std::size_t IndexOf() {
  return codec::Body(T{}).index();
}

// Roles per body. Site traffic only from sites; study management only from
// admins; reading studies, models and sites from people; health from anyone;
// the domain services' requests (dose translation, PK, trial design, toxicity,
// clinical assessment, reverse translation, workflow runs, reports) from people.
std::vector<std::vector<std::string_view>> BuildTable() {
  std::vector<std::vector<std::string_view>> t(codec::kBodyCount);
  const std::vector<std::string_view> site{"site"};
  const std::vector<std::string_view> people{"scientist", "admin"};
  const std::vector<std::string_view> admin{"admin"};
  t[IndexOf<codec::HealthCheck>()] = {"site", "scientist", "admin"};
  for (std::size_t i :
       {IndexOf<codec::RegisterSite>(), IndexOf<codec::Heartbeat>(), IndexOf<codec::UpdateReady>(),
        IndexOf<codec::ModelUpdate>(), IndexOf<codec::EvaluationResult>(),
        IndexOf<codec::SecAggKeys>(), IndexOf<codec::SecAggShares>(),
        IndexOf<codec::SecAggMaskedInput>(), IndexOf<codec::SecAggUnmaskResponse>()}) {
    t[i] = site;
  }
  t[IndexOf<codec::GetStudy>()] = {"site", "scientist", "admin"};
  t[IndexOf<codec::GetModel>()] = people;
  t[IndexOf<codec::ListSites>()] = people;
  for (std::size_t i : {IndexOf<codec::CreateStudy>(), IndexOf<codec::EnrolInstitution>(),
                        IndexOf<codec::ListInstitutions>(), IndexOf<codec::SetInstitutionStatus>(),
                        IndexOf<codec::VerifyAudit>()}) {
    t[i] = admin;
  }
  // Translational and trial-design requests from people; their answers come
  // only from the services.
  for (std::size_t i : {IndexOf<codec::TranslateDose>(), IndexOf<codec::SimulatePk>(),
                        IndexOf<codec::FitPk>(), IndexOf<codec::ComputeSampleSize>(),
                        IndexOf<codec::SimulateEscalation>(), IndexOf<codec::RunVirtualTrial>()}) {
    t[i] = people;
  }
  // The ML domain services' requests (toxicity, clinical assessment, reverse
  // translation) likewise from people only.
  for (std::size_t i : {IndexOf<codec::PredictToxicity>(), IndexOf<codec::AssessClinical>(),
                        IndexOf<codec::ReverseTranslate>()}) {
    t[i] = people;
  }
  // Workflow runs (orchestrator) and reports likewise from people only; their
  // answers (WorkflowRun, WorkflowList, WorkflowRunList, ReportInfo,
  // ReportDocument, ReportList) come only from the services.
  for (std::size_t i : {IndexOf<codec::RunWorkflow>(), IndexOf<codec::GetWorkflowRun>(),
                        IndexOf<codec::ListWorkflows>(), IndexOf<codec::ListWorkflowRuns>(),
                        IndexOf<codec::CreateReport>(), IndexOf<codec::GetReport>(),
                        IndexOf<codec::ListReports>()}) {
    t[i] = people;
  }
  return t;
}

}  // namespace

const std::vector<std::string_view>& RolesAllowed(const codec::Body& body) {
  static const std::vector<std::vector<std::string_view>> table = BuildTable();
  return table[body.index()];
}

TokenBucket::TokenBucket(double rate, double burst, std::chrono::steady_clock::time_point now)
    : rate_(rate), burst_(std::max(burst, 1.0)), tokens_(std::max(burst, 1.0)), last_(now) {}

void TokenBucket::Refill(std::chrono::steady_clock::time_point now) {
  if (now <= last_) return;
  const double elapsed = std::chrono::duration<double>(now - last_).count();
  tokens_ = std::min(burst_, tokens_ + elapsed * rate_);
  last_ = now;
}

bool TokenBucket::TryTake(std::chrono::steady_clock::time_point now) {
  Refill(now);
  if (tokens_ < 1.0) return false;
  tokens_ -= 1.0;
  return true;
}

double TokenBucket::SecondsUntilNext(std::chrono::steady_clock::time_point now) const {
  TokenBucket copy = *this;
  copy.Refill(now);
  if (copy.tokens_ >= 1.0 || rate_ <= 0) return 0;
  return (1.0 - copy.tokens_) / rate_;
}

ReplayGuard::Verdict ReplayGuard::Check(const std::string& message_id, std::int64_t sent_at_ms,
                                        std::int64_t now_ms,
                                        std::chrono::steady_clock::time_point now) {
  // A peer writes sent_at_ms; any 64-bit value must compare without overflow.
  const __int128 skew = static_cast<__int128>(now_ms) - static_cast<__int128>(sent_at_ms);
  if (skew > window_.count() || -skew > window_.count()) return Verdict::kStale;
  while (!order_.empty() && now - order_.front().first > window_) {
    seen_.erase(order_.front().second);
    order_.pop_front();
  }
  if (seen_.count(message_id) != 0) return Verdict::kDuplicate;
  // Forgetting an id still inside the window would let it be replayed.
  if (order_.size() >= capacity_) return Verdict::kFull;
  seen_.insert(message_id);
  order_.emplace_back(now, message_id);
  return Verdict::kFresh;
}

}  // namespace fedrx::gateway
