#include "services/coordinator/coordinator_service.h"

#include <algorithm>
#include <chrono>
#include <iostream>
#include <optional>
#include <type_traits>

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
      started_(clock.Now()),
      epsilon_max_(metrics.Gauge("privacy_epsilon_max",
                                 "Largest epsilon of the (epsilon, delta)-DP guarantee spent by "
                                 "any study so far (each study's is in its report)")),
      budget_share_max_(metrics.Gauge("privacy_budget_spent_ratio_max",
                                      "Largest share of its epsilon budget any study has spent")) {
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
  runners_[id] = std::make_unique<StudyRunner>(std::move(record), studies_, directory_,
                                               std::move(strategy), clock_, metrics_,
                                               options_.timings);
  return core::Status::Ok();
}

core::Status CoordinatorService::Start() {
  // Resume every study the store holds; finished ones answer status queries.
  FEDRX_ASSIGN_OR_RETURN(std::vector<std::string> ids, studies_.ListIds());
  for (const auto& id : ids) {
    FEDRX_ASSIGN_OR_RETURN(StudyRecord record, studies_.Load(id));
    if (record.state == codec::StudyState::kRunning) {
      std::cerr << "coordinator: resuming study " << id << " at round " << record.current_round
                << " (model version " << record.model_version << ")\n";
    }
    FEDRX_RETURN_IF_ERROR(AddRunner(std::move(record)));
  }
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
  epsilon_max_.Set(epsilon_max);
  budget_share_max_.Set(budget_share_max);
  return first;
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

CoordinatorService::Handled CoordinatorService::OnHealthCheck(core::Inbound&,
                                                              codec::HealthCheck&) {
  const core::Readiness ready = CheckReady();
  const double uptime = std::chrono::duration<double>(clock_.Now() - started_).count();
  return core::Response{
      codec::HealthStatus{"coordinator", ready.ready, options_.version, uptime, ready.reason},
      {}};
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
  const std::vector<float> initial = InitialModel(spec);
  FEDRX_RETURN_IF_ERROR(studies_.Create(spec, initial, clock_.WallMillis()));
  FEDRX_ASSIGN_OR_RETURN(StudyRecord record, studies_.Load(spec.study_id));
  FEDRX_RETURN_IF_ERROR(AddRunner(std::move(record)));
  metrics_.Counter("studies_created_total", "Studies created").Inc();
  std::cerr << "coordinator: study " << spec.study_id << " created (" << spec.tasks.size()
            << " tasks, " << initial.size() << " parameters, " << spec.rounds << " rounds)\n";
  return core::Response{codec::StudyCreated{spec.study_id}, {}};
}

CoordinatorService::Handled CoordinatorService::OnGetStudy(core::Inbound&, codec::GetStudy& body) {
  FEDRX_ASSIGN_OR_RETURN(StudyRunner * runner, RunnerFor(body.study_id));
  FEDRX_ASSIGN_OR_RETURN(codec::StudyInfo info, runner->Info());
  return core::Response{std::move(info), {}};
}

CoordinatorService::Handled CoordinatorService::OnGetModel(core::Inbound&, codec::GetModel& body) {
  FEDRX_ASSIGN_OR_RETURN(StudyRunner * runner, RunnerFor(body.study_id));
  const std::uint32_t version = body.latest ? runner->record().model_version : body.version;
  if (version > runner->record().model_version) {
    return core::NotFound("study '" + body.study_id + "' has no model version " +
                              std::to_string(version) + " yet",
                          "GetModel.version");
  }
  FEDRX_ASSIGN_OR_RETURN(std::vector<float> weights, studies_.LoadModel(body.study_id, version));
  FEDRX_ASSIGN_OR_RETURN(std::uint32_t round, studies_.ModelRound(body.study_id, version));
  codec::ModelVersion mv{body.study_id, version, round, clock_.WallMillis(), {}};
  std::vector<codec::Tensor> tensors;
  const auto n = static_cast<std::int64_t>(weights.size());
  tensors.push_back(codec::Tensor{"weights", codec::DType::kFloat32, {n},
                                  codec::Blob::FromFloats(std::move(weights))});
  return core::Response{std::move(mv), std::move(tensors)};
}

CoordinatorService::Handled CoordinatorService::OnUpdateReady(core::Inbound& in,
                                                              codec::UpdateReady& body) {
  FEDRX_ASSIGN_OR_RETURN(std::string site, SiteOf(in));
  directory_.Heard(site, in.peer);
  FEDRX_ASSIGN_OR_RETURN(StudyRunner * runner, RunnerFor(body.study_id));
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
  FEDRX_ASSIGN_OR_RETURN(StudyRunner * runner, RunnerFor(body.study_id));
  FEDRX_RETURN_IF_ERROR(runner->OnModelUpdate(site, body, in.message.tensors));
  return core::Response{codec::Ack{"update accepted"}, {}};
}

CoordinatorService::Handled CoordinatorService::OnEvaluationResult(core::Inbound& in,
                                                                   codec::EvaluationResult& body) {
  FEDRX_ASSIGN_OR_RETURN(std::string site, SiteOf(in));
  directory_.Heard(site, in.peer);
  FEDRX_ASSIGN_OR_RETURN(StudyRunner * runner, RunnerFor(body.study_id));
  FEDRX_RETURN_IF_ERROR(runner->OnEvaluationResult(site, body, in.message.tensors));
  return core::Response::None();
}

template <typename Body>
CoordinatorService::Handled CoordinatorService::OnSecAgg(core::Inbound& in, Body& body) {
  FEDRX_ASSIGN_OR_RETURN(std::string site, SiteOf(in));
  directory_.Heard(site, in.peer);
  FEDRX_ASSIGN_OR_RETURN(StudyRunner * runner, RunnerFor(body.study_id));
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
