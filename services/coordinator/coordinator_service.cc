#include "services/coordinator/coordinator_service.h"

#include <algorithm>
#include <chrono>
#include <iostream>
#include <optional>
#include <type_traits>

#include "services/core/keys.h"

namespace fedrx::coordinator {

CoordinatorService::CoordinatorService(CoordinatorOptions options, core::Bus& bus,
                                       core::StateStore& store, core::Metrics& metrics,
                                       const core::Clock& clock)
    : options_(std::move(options)),
      bus_(bus),
      store_(store),
      metrics_(metrics),
      clock_(clock),
      dispatcher_(bus, metrics, clock),
      sites_(store, clock, metrics),
      directory_(bus, clock, options_.site_alive_window),
      studies_(store),
      leases_(store, clock, metrics, options_.lease),
      started_(clock.Now()),
      epsilon_max_(metrics.Gauge("privacy_epsilon_max",
                                 "Largest epsilon of the (epsilon, delta)-DP guarantee spent by "
                                 "any study so far (each study's is in its report)")),
      budget_share_max_(metrics.Gauge("privacy_budget_spent_ratio_max",
                                      "Largest share of its epsilon budget any study has spent")),
      not_owned_(metrics.Counter("site_messages_not_owned_total",
                                 "Site messages about a study another replica drives, dropped")) {
  // Fencing: nothing is written for a study unless the store confirms this
  // replica still holds its lease, so a replica that lost it (paused, cut
  // off) cannot overwrite what the new holder wrote.
  studies_.SetWriteGuard([this](const std::string& id) { return leases_.Confirm(id); });
  auto on = [this](auto method) {
    return [this, method](core::Inbound& in, auto& body) { return (this->*method)(in, body); };
  };
  dispatcher_.On<codec::RegisterSite>(on(&CoordinatorService::OnRegisterSite));
  dispatcher_.On<codec::ListSites>(on(&CoordinatorService::OnListSites));
  dispatcher_.On<codec::HealthCheck>(on(&CoordinatorService::OnHealthCheck));
  dispatcher_.On<codec::Heartbeat>(on(&CoordinatorService::OnHeartbeat));
  dispatcher_.On<codec::CreateStudy>(on(&CoordinatorService::OnCreateStudy));
  dispatcher_.On<codec::GetStudy>(on(&CoordinatorService::OnGetStudy));
  dispatcher_.On<codec::GetModel>(on(&CoordinatorService::OnGetModel));
  dispatcher_.On<codec::UpdateReady>(on(&CoordinatorService::OnUpdateReady));
  dispatcher_.On<codec::ModelUpdate>(on(&CoordinatorService::OnModelUpdate));
  dispatcher_.On<codec::EvaluationResult>(on(&CoordinatorService::OnEvaluationResult));
  dispatcher_.On<codec::SecAggKeys>(on(&CoordinatorService::OnSecAgg<codec::SecAggKeys>));
  dispatcher_.On<codec::SecAggShares>(on(&CoordinatorService::OnSecAgg<codec::SecAggShares>));
  dispatcher_.On<codec::SecAggMaskedInput>(
      on(&CoordinatorService::OnSecAgg<codec::SecAggMaskedInput>));
  dispatcher_.On<codec::SecAggUnmaskResponse>(
      on(&CoordinatorService::OnSecAgg<codec::SecAggUnmaskResponse>));
}

core::Status CoordinatorService::AddRunner(StudyRecord record) {
  FEDRX_ASSIGN_OR_RETURN(std::unique_ptr<Strategy> strategy, MakeStrategy(record.spec));
  const std::string id = record.spec.study_id;
  runners_[id] =
      std::make_unique<StudyRunner>(std::move(record), studies_, directory_, std::move(strategy),
                                    clock_, metrics_, options_.timings);
  return core::Status::Ok();
}

core::Status CoordinatorService::Start() {
  FEDRX_RETURN_IF_ERROR(ValidateLeaseOptions(options_.lease));
  // Alive before taking any lease, so that no other replica sees this
  // one's leases as held by an unknown replica.
  FEDRX_RETURN_IF_ERROR(leases_.Announce());
  // Resume every study whose lease is free (all of them for a lone
  // replica); finished ones answer status queries.
  FEDRX_RETURN_IF_ERROR(ScanStudies());
  next_scan_ = clock_.Now() + options_.lease.ttl / 3;
  // Sites registered before a restart keep their preparation hash (studies
  // with spec.preparation_hash check it); they do not register again.
  FEDRX_ASSIGN_OR_RETURN(codec::SiteList registered, sites_.List());
  for (const auto& s : registered.sites) directory_.Prepared(s.site_id, s.schema_hash);
  return bus_.Serve(options_.endpoint,
                    [this, handle = dispatcher_.AsHandler()](core::Inbound&& in) {
                      ApplyOriginRule(in);
                      handle(std::move(in));
                    });
}

core::Status CoordinatorService::ScanStudies() {
  FEDRX_ASSIGN_OR_RETURN(std::vector<std::string> ids, studies_.ListIds());
  std::vector<std::string> unknown;
  for (const auto& id : ids) {
    if (runners_.count(id) == 0) unknown.push_back(id);
  }
  if (unknown.empty()) return core::Status::Ok();
  // One round trip tells which leases are held by others.
  std::vector<core::Key> keys;
  std::vector<std::string> candidates;
  for (const auto& id : unknown) {
    auto key = core::keys::CoordinatorLease(id);
    if (!key.ok()) {
      metrics_.CountError("study", "bad_id");
      std::cerr << "coordinator: the study index holds an invalid id: " << key.status() << "\n";
      continue;
    }
    keys.push_back(*key);
    candidates.push_back(id);
  }
  FEDRX_ASSIGN_OR_RETURN(std::vector<std::optional<std::string>> holders, store_.GetMany(keys));
  core::Status first;
  std::map<std::string, std::string> foreign;
  for (std::size_t i = 0; i < candidates.size(); ++i) {
    const std::string& id = candidates[i];
    const std::optional<std::string>& holder = holders[i];
    if (holder.has_value() && *holder != options_.lease.replica_id &&
        core::ValidateId(*holder, "lease").ok()) {
      foreign[id] = *holder;  // another replica drives it
      continue;
    }
    core::Result<bool> acquired = leases_.Acquire(id);
    core::Status s = acquired.ok() ? core::Status::Ok() : acquired.status();
    if (s.ok() && *acquired) s = TakeOver(id);
    if (!s.ok()) {
      metrics_.CountError("lease", "takeover");
      std::cerr << "coordinator: could not take study " << id << " over: " << s << "\n";
      if (first.ok()) first = s.WithContext("study " + id);
    }
  }
  if (core::Status s = leases_.CheckHolders(foreign); !s.ok()) {
    metrics_.CountError("lease", "holders");
    if (first.ok()) first = s;
  }
  return first;
}

core::Status CoordinatorService::TakeOver(const std::string& id) {
  // Read after taking the lease: what the previous holder wrote last.
  core::Result<StudyRecord> record = studies_.Load(id);
  if (!record.ok()) {
    leases_.Release(id);
    return record.status();
  }
  if (record->state != codec::StudyState::kRunning) {
    // Finished (here or elsewhere): kept for status queries, driven by nobody.
    leases_.Release(id);
    return AddRunner(std::move(*record));
  }
  std::cerr << "coordinator: resuming study " << id << " at round " << record->current_round
            << " (model version " << record->model_version << ") as replica "
            << options_.lease.replica_id << "\n";
  if (core::Status s = AddRunner(std::move(*record)); !s.ok()) {
    leases_.Release(id);
    return s;
  }
  leases_.CountTakeover();
  return core::Status::Ok();
}

void CoordinatorService::DropRunner(const std::string& id) {
  if (runners_.erase(id) > 0) {
    std::cerr << "coordinator: stopped driving study " << id << "\n";
  }
}

void CoordinatorService::ApplyOriginRule(core::Inbound& in) {
  if (!options_.authenticated || in.role == kGatewayRole) return;
  std::string& origin = in.message.header.origin;
  if (origin.empty()) return;
  // Only a gateway binds an origin to an authenticated site connection; any
  // other client naming a site would be impersonating it.
  metrics_
      .Counter("origin_ignored_total",
               "Envelope origins ignored because the sender is not a gateway")
      .Inc();
  origin.clear();
}

core::Status CoordinatorService::Tick() {
  if (draining_) return core::Status::Ok();
  core::Status first;
  for (const std::string& id : leases_.RenewDue()) DropRunner(id);
  if (clock_.Now() >= next_scan_) {
    next_scan_ = clock_.Now() + options_.lease.ttl / 3;
    if (core::Status s = ScanStudies(); !s.ok()) first = s;
  }
  // Privacy spent, without a label per study (ids are unbounded): the
  // largest epsilon and the largest share of a budget among the studies.
  double epsilon_max = 0, budget_share_max = 0;
  for (auto& [id, runner] : runners_) {
    if (core::Status s = runner->Tick(); !s.ok()) {
      metrics_.CountError("study", "tick");
      if (first.ok()) first = s.WithContext("study " + id);
    }
    if (std::optional<double> eps = runner->EpsilonSpent(); eps.has_value()) {
      epsilon_max = std::max(epsilon_max, *eps);
      const double budget = runner->record().spec.dp_epsilon_budget;
      if (budget > 0) budget_share_max = std::max(budget_share_max, *eps / budget);
    }
  }
  // A study whose lease went (a fenced write found another holder) is no
  // longer driven here; one that finished gives its lease up.
  std::vector<std::string> drop;
  for (auto& [id, runner] : runners_) {
    const bool running = runner->record().state == codec::StudyState::kRunning;
    if (running && !leases_.Holds(id)) drop.push_back(id);
    if (!running && leases_.Holds(id)) leases_.Release(id);
  }
  for (const auto& id : drop) DropRunner(id);
  epsilon_max_.Set(epsilon_max);
  budget_share_max_.Set(budget_share_max);
  return first;
}

void CoordinatorService::BeginDrain() {
  draining_ = true;
  std::vector<std::string> held;
  for (const auto& [id, runner] : runners_) {
    if (leases_.Holds(id)) held.push_back(id);
  }
  for (const auto& id : held) {
    DropRunner(id);
    leases_.Release(id);
  }
}

core::Readiness CoordinatorService::CheckReady() {
  if (draining_) return {false, "draining"};
  if (core::Status s = store_.Ping(); !s.ok()) {
    return {false, "state store unreachable: " + s.ToString()};
  }
  return {true, ""};
}

StudyRunner* CoordinatorService::Study(const std::string& id) {
  auto it = runners_.find(id);
  return it == runners_.end() ? nullptr : it->second.get();
}

core::Result<std::string> CoordinatorService::SiteOf(const core::Inbound& in) const {
  const std::string& origin = in.message.header.origin;
  if (origin.empty()) {
    return core::Status(core::StatusCode::kPermissionDenied,
                        std::string(codec::BodyName(in.message.body)) +
                            " is a site message and must come through a gateway",
                        "envelope.origin");
  }
  return origin;
}

core::Result<StudyRunner*> CoordinatorService::RunnerFor(const std::string& study_id) {
  StudyRunner* runner = Study(study_id);
  if (runner == nullptr) return core::NotFound("no study '" + study_id + "'", "study_id");
  return runner;
}

core::Result<StudyRunner*> CoordinatorService::SiteRunnerFor(const std::string& study_id) {
  if (StudyRunner* runner = Study(study_id); runner != nullptr) return runner;
  auto holder = leases_.Holder(study_id);
  if (holder.ok() && holder->has_value() && **holder != options_.lease.replica_id) {
    not_owned_.Inc();
    return static_cast<StudyRunner*>(nullptr);
  }
  return RunnerFor(study_id);
}

core::Result<StudyRecord> CoordinatorService::LoadForRead(const std::string& id) {
  // As for a study this replica drives, an id that cannot exist is "no study".
  if (!core::ValidateId(id, "study_id").ok()) {
    return core::NotFound("no study '" + id + "'", "study_id");
  }
  return studies_.Load(id);
}

core::Result<codec::StudyInfo> CoordinatorService::InfoFromStore(const std::string& id) {
  FEDRX_ASSIGN_OR_RETURN(StudyRecord record, LoadForRead(id));
  FEDRX_ASSIGN_OR_RETURN(std::unique_ptr<Strategy> strategy, MakeStrategy(record.spec));
  // A runner that is never ticked reads, and writes nothing: its Info is
  // the stored rounds.
  StudyRunner reader(std::move(record), studies_, directory_, std::move(strategy), clock_, metrics_,
                     options_.timings);
  return reader.Info();
}

CoordinatorService::Handled CoordinatorService::OnRegisterSite(core::Inbound& in,
                                                               codec::RegisterSite& body) {
  if (draining_) return core::Unavailable("coordinator is shutting down", "coordinator");
  const std::string& origin = in.message.header.origin;
  if (!origin.empty() && origin != body.site_id) {
    return core::Status(core::StatusCode::kPermissionDenied,
                        "connection of site " + origin + " cannot register " + body.site_id,
                        "RegisterSite.site_id");
  }
  FEDRX_ASSIGN_OR_RETURN(codec::SiteRegistered done, sites_.Register(body));
  if (!origin.empty()) directory_.Heard(origin, in.peer);
  directory_.Prepared(body.site_id, body.schema_hash);
  return core::Response{std::move(done), {}};
}

CoordinatorService::Handled CoordinatorService::OnListSites(core::Inbound&, codec::ListSites&) {
  FEDRX_ASSIGN_OR_RETURN(codec::SiteList list, sites_.List());
  return core::Response{std::move(list), {}};
}

CoordinatorService::Handled CoordinatorService::OnHealthCheck(core::Inbound&, codec::HealthCheck&) {
  const core::Readiness ready = CheckReady();
  const double uptime = std::chrono::duration<double>(clock_.Now() - started_).count();
  return core::Response{
      codec::HealthStatus{"coordinator", ready.ready, options_.version, uptime, ready.reason}, {}};
}

CoordinatorService::Handled CoordinatorService::OnHeartbeat(core::Inbound& in,
                                                            codec::Heartbeat& body) {
  FEDRX_ASSIGN_OR_RETURN(std::string site, SiteOf(in));
  directory_.Heard(site, in.peer);
  directory_.Approved(site, std::move(body.approved_studies));
  return core::Response::None();
}

CoordinatorService::Handled CoordinatorService::OnCreateStudy(core::Inbound& in,
                                                              codec::CreateStudy& body) {
  if (!in.message.header.origin.empty()) {
    return core::Status(core::StatusCode::kPermissionDenied, "sites cannot create studies",
                        "envelope.origin");
  }
  if (draining_) return core::Unavailable("coordinator is shutting down", "coordinator");
  codec::StudySpec& spec = body.study;
  // A private-heads study's model is the trunk: its num_tasks stays 0.
  if (spec.model.num_tasks == 0 && !spec.private_heads) {
    spec.model.num_tasks = static_cast<std::uint32_t>(spec.tasks.size());
  }
  if (spec.strategy.empty()) spec.strategy = "fedavg";
  FEDRX_RETURN_IF_ERROR(ValidateStudySpec(spec));
  if (Study(spec.study_id) != nullptr) {
    return core::Status(core::StatusCode::kAlreadyExists,
                        "study '" + spec.study_id + "' already exists", "StudySpec.study_id");
  }
  // The lease first, so that no other replica's scan takes the new study.
  FEDRX_ASSIGN_OR_RETURN(bool leased, leases_.Acquire(spec.study_id));
  if (!leased) {
    return core::Status(core::StatusCode::kAlreadyExists,
                        "study '" + spec.study_id + "' already exists (another replica drives it)",
                        "StudySpec.study_id");
  }
  const std::vector<float> initial = InitialModel(spec);
  if (core::Status s = studies_.Create(spec, initial, clock_.WallMillis()); !s.ok()) {
    leases_.Release(spec.study_id);
    return s;
  }
  core::Result<StudyRecord> record = studies_.Load(spec.study_id);
  core::Status added = record.ok() ? AddRunner(std::move(*record)) : record.status();
  if (!added.ok()) {
    // Stored: a scan (here or at another replica) resumes it.
    leases_.Release(spec.study_id);
    return added;
  }
  metrics_.Counter("studies_created_total", "Studies created").Inc();
  std::cerr << "coordinator: study " << spec.study_id << " created (" << spec.tasks.size()
            << " tasks, " << initial.size() << " parameters, " << spec.rounds << " rounds)\n";
  return core::Response{codec::StudyCreated{spec.study_id}, {}};
}

CoordinatorService::Handled CoordinatorService::OnGetStudy(core::Inbound&, codec::GetStudy& body) {
  if (StudyRunner* runner = Study(body.study_id); runner != nullptr) {
    FEDRX_ASSIGN_OR_RETURN(codec::StudyInfo info, runner->Info());
    return core::Response{std::move(info), {}};
  }
  FEDRX_ASSIGN_OR_RETURN(codec::StudyInfo info, InfoFromStore(body.study_id));
  return core::Response{std::move(info), {}};
}

CoordinatorService::Handled CoordinatorService::OnGetModel(core::Inbound&, codec::GetModel& body) {
  std::uint32_t latest = 0;
  if (StudyRunner* runner = Study(body.study_id); runner != nullptr) {
    latest = runner->record().model_version;
  } else {
    // A study another replica drives: the store's latest version.
    FEDRX_ASSIGN_OR_RETURN(StudyRecord record, LoadForRead(body.study_id));
    latest = record.model_version;
  }
  const std::uint32_t version = body.latest ? latest : body.version;
  if (version > latest) {
    return core::NotFound(
        "study '" + body.study_id + "' has no model version " + std::to_string(version) + " yet",
        "GetModel.version");
  }
  FEDRX_ASSIGN_OR_RETURN(std::vector<float> weights, studies_.LoadModel(body.study_id, version));
  FEDRX_ASSIGN_OR_RETURN(std::uint32_t round, studies_.ModelRound(body.study_id, version));
  codec::ModelVersion mv{body.study_id, version, round, clock_.WallMillis(), {}};
  std::vector<codec::Tensor> tensors;
  const auto n = static_cast<std::int64_t>(weights.size());
  tensors.push_back(codec::Tensor{
      "weights", codec::DType::kFloat32, {n}, codec::Blob::FromFloats(std::move(weights))});
  return core::Response{std::move(mv), std::move(tensors)};
}

CoordinatorService::Handled CoordinatorService::OnUpdateReady(core::Inbound& in,
                                                              codec::UpdateReady& body) {
  FEDRX_ASSIGN_OR_RETURN(std::string site, SiteOf(in));
  directory_.Heard(site, in.peer);
  FEDRX_ASSIGN_OR_RETURN(StudyRunner * runner, SiteRunnerFor(body.study_id));
  if (runner == nullptr) return core::Response::None();
  FEDRX_RETURN_IF_ERROR(runner->OnUpdateReady(site, body));
  return core::Response::None();
}

CoordinatorService::Handled CoordinatorService::OnModelUpdate(core::Inbound& in,
                                                              codec::ModelUpdate& body) {
  FEDRX_ASSIGN_OR_RETURN(std::string site, SiteOf(in));
  directory_.Heard(site, in.peer);
  if (!body.site_id.empty() && body.site_id != site) {
    return core::Status(core::StatusCode::kPermissionDenied,
                        "update names site " + body.site_id + " but comes from " + site,
                        "ModelUpdate.site_id");
  }
  FEDRX_ASSIGN_OR_RETURN(StudyRunner * runner, SiteRunnerFor(body.study_id));
  if (runner == nullptr) return core::Response::None();
  FEDRX_RETURN_IF_ERROR(runner->OnModelUpdate(site, body, in.message.tensors));
  return core::Response{codec::Ack{"update accepted"}, {}};
}

CoordinatorService::Handled CoordinatorService::OnEvaluationResult(core::Inbound& in,
                                                                   codec::EvaluationResult& body) {
  FEDRX_ASSIGN_OR_RETURN(std::string site, SiteOf(in));
  directory_.Heard(site, in.peer);
  FEDRX_ASSIGN_OR_RETURN(StudyRunner * runner, SiteRunnerFor(body.study_id));
  if (runner == nullptr) return core::Response::None();
  FEDRX_RETURN_IF_ERROR(runner->OnEvaluationResult(site, body, in.message.tensors));
  return core::Response::None();
}

template <typename Body>
CoordinatorService::Handled CoordinatorService::OnSecAgg(core::Inbound& in, Body& body) {
  FEDRX_ASSIGN_OR_RETURN(std::string site, SiteOf(in));
  directory_.Heard(site, in.peer);
  FEDRX_ASSIGN_OR_RETURN(StudyRunner * runner, SiteRunnerFor(body.study_id));
  if (runner == nullptr) return core::Response::None();
  if constexpr (std::is_same_v<Body, codec::SecAggKeys>) {
    FEDRX_RETURN_IF_ERROR(runner->OnSecAggKeys(site, body));
  } else if constexpr (std::is_same_v<Body, codec::SecAggShares>) {
    FEDRX_RETURN_IF_ERROR(runner->OnSecAggShares(site, body));
  } else if constexpr (std::is_same_v<Body, codec::SecAggMaskedInput>) {
    FEDRX_RETURN_IF_ERROR(runner->OnSecAggMaskedInput(site, body, in.message.tensors));
  } else {
    FEDRX_RETURN_IF_ERROR(runner->OnSecAggUnmaskResponse(site, body));
  }
  return core::Response::None();
}

}  // namespace fedrx::coordinator
