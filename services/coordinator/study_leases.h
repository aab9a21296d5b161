// StudyLeases: which studies this coordinator replica drives. Replicas share
// the studies through leases in the StateStore (keys::CoordinatorLease, value
// = the holder's replica id, with an expiry): a study is driven by the one
// replica holding its lease; the holder renews it every ttl/3, and when a
// replica dies its leases expire and another replica takes the studies over.
// Renewal and release are compare-and-set, so a replica never extends or
// drops a lease it no longer holds. Runs on the coordinator's thread; not
// thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "services/core/clock.h"
#include "services/core/metrics.h"
#include "services/core/state_store.h"
#include "services/core/status.h"

namespace fedrx::coordinator {

struct LeaseOptions {
  // This replica's id (coordinator.replica_id): [A-Za-z0-9._-], 1..64 bytes,
  // unique among the replicas sharing a store.
  std::string replica_id = "coordinator";
  // How long a lease lives without renewal (coordinator.lease_ttl); a dead
  // replica's studies are taken over within about this long.
  std::chrono::milliseconds ttl{10000};
};

// Checks options from configuration; kInvalidArgument naming the key.
core::Status ValidateLeaseOptions(const LeaseOptions& options);

class StudyLeases {
 public:
  // Metrics (zero at start): fedrx_coordinator_studies_owned,
  // fedrx_coordinator_lease_takeovers_total, fedrx_coordinator_lease_lost_total,
  // fedrx_coordinator_lease_corrupt_total,
  // fedrx_coordinator_lease_unknown_holder_total.
  StudyLeases(core::StateStore& store, const core::Clock& clock, core::Metrics& metrics,
              LeaseOptions options);

  const LeaseOptions& options() const { return options_; }

  // Takes the study's lease when it is free (or already carries this
  // replica's id: a restart under the same id); true when held now. False
  // when another replica holds it. A corrupt value (not a replica id) is
  // removed by compare-and-delete, logged and counted, and the lease is then
  // tried again. Store errors are returned; nothing is held then.
  core::Result<bool> Acquire(const std::string& study_id);
  // Renews every held lease whose renewal is due (every ttl/3). Returns the
  // studies whose lease is lost: the store says another replica (or nobody)
  // holds it, or no renewal succeeded for a whole ttl (the store down; the
  // lease has expired there by then). Lost leases are no longer held and are
  // counted in lease_lost_total; the caller stops driving those studies.
  std::vector<std::string> RenewDue();
  // Fencing, before a write for the study: OK when this replica holds the
  // lease locally and the store confirms it. kFailedPrecondition when not
  // (the lease is then dropped, counted as lost); the store's error when it
  // cannot answer.
  core::Status Confirm(const std::string& study_id);
  // Gives the lease up (compare-and-delete). A store error is logged and
  // counted: the lease then expires by itself.
  void Release(const std::string& study_id);
  // Counts a lease taken over from the store (a study resumed from it).
  void CountTakeover();
  // Keeps this replica's liveness record (keys::CoordinatorReplica, expiring
  // after the ttl) fresh; RenewDue calls it on the same schedule.
  core::Status Announce();
  // Leases held by other replicas as a scan found them (study -> holder).
  // A holder without a liveness record (an unknown replica, or a dead one
  // whose lease has not expired) is logged and counted in
  // lease_unknown_holder_total; if its lease is still there two ttls later
  // (a lease without expiry), it is removed by compare-and-delete so that
  // the study can be taken over.
  core::Status CheckHolders(const std::map<std::string, std::string>& foreign);

  // Whether this replica holds the study's lease (as far as it knows).
  bool Holds(const std::string& study_id) const { return held_.count(study_id) > 0; }
  std::size_t held() const { return held_.size(); }
  // The replica id the store names as the study's holder; nullopt when the
  // lease is free or its value is not a replica id.
  core::Result<std::optional<std::string>> Holder(const std::string& study_id);

 private:
  struct Held {
    // When the latest renewal (or the acquisition) succeeded.
    std::chrono::steady_clock::time_point renewed;
    std::chrono::steady_clock::time_point next_renewal;
  };
  void Hold(const std::string& study_id);
  void Lose(const std::string& study_id, const std::string& why);
  std::chrono::milliseconds RenewEvery() const;

  core::StateStore& store_;
  const core::Clock& clock_;
  core::Metrics& metrics_;
  LeaseOptions options_;
  std::map<std::string, Held> held_;
  // Studies whose lease holder was found not alive: who, and since when.
  struct Unknown {
    std::string holder;
    std::chrono::steady_clock::time_point since;
  };
  std::map<std::string, Unknown> unknown_;
  std::chrono::steady_clock::time_point next_announce_{};
  core::GaugeRef owned_;
  core::CounterRef takeovers_;
  core::CounterRef lost_;
  core::CounterRef corrupt_;
  core::CounterRef unknown_holder_;
};

}  // namespace fedrx::coordinator
