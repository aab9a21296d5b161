// CoordinatorService: the federation coordinator's process logic on top of
// the ServiceRunner: site registration and listing, studies (create, status,
// models), the round machines of running studies, and health. Several
// replicas may share one store: each drives only the running studies whose
// lease it holds (study_leases.h), takes over studies whose lease is free
// (resuming them from the store), and answers reads of the others from the
// store. Runs on the runner's thread; not thread-safe.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "services/coordinator/site_directory.h"
#include "services/coordinator/site_registry.h"
#include "services/coordinator/study_leases.h"
#include "services/coordinator/study_runner.h"
#include "services/coordinator/study_store.h"
#include "services/core/bus.h"
#include "services/core/clock.h"
#include "services/core/dispatcher.h"
#include "services/core/metrics.h"
#include "services/core/service_runner.h"
#include "services/core/state_store.h"

namespace fedrx::coordinator {

struct CoordinatorOptions {
  // Where gateways and the CLI reach the coordinator.
  std::string endpoint = "tcp://0.0.0.0:5570";
  std::string version = "0.1.0";
  RunnerTimings timings;
  // A site not heard from for this long is not selected for new rounds.
  std::chrono::milliseconds site_alive_window{6000};
  // CURVE mode: the bus is a CURVE server, so every message carries the
  // identity its connection was authenticated with. The envelope's `origin`
  // (the site a gateway speaks for) is then trusted only from identities of
  // role kGatewayRole; from anyone else it is cleared before any handler sees
  // it, and the sender speaks for itself. Off (plaintext): origin is trusted
  // from anyone, as on a network where only the gateway can reach the coordinator.
  bool authenticated = false;
  // Replicas: this replica's id and the lease ttl (study_leases.h). One
  // replica alone behaves as a coordinator without replicas.
  LeaseOptions lease;
};

// The role, in an authorised clients file, of a gateway that forwards sites'
// messages to the coordinator.
inline constexpr char kGatewayRole[] = "gateway";

class CoordinatorService final : public core::Service {
 public:
  CoordinatorService(CoordinatorOptions options, core::Bus& bus, core::StateStore& store,
                     core::Metrics& metrics, const core::Clock& clock);

  core::Status Start() override;
  core::Status Tick() override;
  core::Readiness CheckReady() override;
  // Stops driving studies and gives their leases up, so that another
  // replica takes them over at its next scan rather than after the ttl.
  void BeginDrain() override;

  // The study this replica drives (or has seen finish), or null.
  StudyRunner* Study(const std::string& id);
  const StudyLeases& leases() const { return leases_; }

 private:
  using Handled = core::Result<core::Response>;
  Handled OnRegisterSite(core::Inbound& in, codec::RegisterSite& body);
  Handled OnListSites(core::Inbound& in, codec::ListSites& body);
  Handled OnHealthCheck(core::Inbound& in, codec::HealthCheck& body);
  Handled OnHeartbeat(core::Inbound& in, codec::Heartbeat& body);
  Handled OnCreateStudy(core::Inbound& in, codec::CreateStudy& body);
  Handled OnGetStudy(core::Inbound& in, codec::GetStudy& body);
  Handled OnGetModel(core::Inbound& in, codec::GetModel& body);
  Handled OnUpdateReady(core::Inbound& in, codec::UpdateReady& body);
  Handled OnModelUpdate(core::Inbound& in, codec::ModelUpdate& body);
  Handled OnEvaluationResult(core::Inbound& in, codec::EvaluationResult& body);
  // The site -> coordinator secure-aggregation answers (one-way).
  template <typename Body>
  Handled OnSecAgg(core::Inbound& in, Body& body);

  // In CURVE mode, clears the origin of a message not sent by a gateway
  // (counted in fedrx_coordinator_origin_ignored_total).
  void ApplyOriginRule(core::Inbound& in);
  // The site a forwarded message comes from; kPermissionDenied when a site
  // message did not come through a gateway.
  core::Result<std::string> SiteOf(const core::Inbound& in) const;
  core::Result<StudyRunner*> RunnerFor(const std::string& study_id);
  core::Status AddRunner(StudyRecord record);
  // A site message about a study this replica has no runner for: OK (the
  // message is dropped, counted in site_messages_not_owned_total) when
  // another replica holds the study's lease (a gateway that does not know
  // the owner yet sends to every replica), else RunnerFor's kNotFound.
  core::Result<StudyRunner*> SiteRunnerFor(const std::string& study_id);
  // Takes the lease of every unfinished study in the store that is free,
  // and loads the finished ones not seen yet (they answer status queries).
  core::Status ScanStudies();
  // The lease of `id` is held: resume the study from the store (or, if it
  // finished meanwhile, release the lease and keep it for queries).
  core::Status TakeOver(const std::string& id);
  // Stops driving `id` (its lease is lost): the runner goes, nothing more
  // is written or sent for it from here.
  void DropRunner(const std::string& id);
  // A study's record from the store; kNotFound for an id that cannot exist.
  core::Result<StudyRecord> LoadForRead(const std::string& id);
  // A study's status from the store (a study another replica drives).
  core::Result<codec::StudyInfo> InfoFromStore(const std::string& id);

  CoordinatorOptions options_;
  core::Bus& bus_;
  core::StateStore& store_;
  core::Metrics& metrics_;
  const core::Clock& clock_;
  core::Dispatcher dispatcher_;
  SiteRegistry sites_;
  SiteDirectory directory_;
  StudyStore studies_;
  StudyLeases leases_;
  // Running studies this replica holds the lease of, and finished studies.
  std::map<std::string, std::unique_ptr<StudyRunner>> runners_;
  std::chrono::steady_clock::time_point next_scan_{};
  std::chrono::steady_clock::time_point started_;
  bool draining_ = false;
  core::GaugeRef epsilon_max_;       // privacy_epsilon_max
  core::GaugeRef budget_share_max_;  // privacy_budget_spent_ratio_max
  core::CounterRef not_owned_;       // site_messages_not_owned_total
};

}  // namespace fedrx::coordinator
