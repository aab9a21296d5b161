#include "services/coordinator/study_leases.h"

#include <algorithm>
#include <iostream>
#include <utility>

#include "services/core/keys.h"

namespace fedrx::coordinator {

core::Status ValidateLeaseOptions(const LeaseOptions& options) {
  FEDRX_RETURN_IF_ERROR(core::ValidateId(options.replica_id, "coordinator.replica_id"));
  // Renewal runs every ttl/3 on the coordinator's tick: below about a
  // second, one slow Redis answer could let a healthy lease expire.
  if (options.ttl < std::chrono::milliseconds(300)) {
    return core::InvalidArgument(
        "lease_ttl is " + std::to_string(options.ttl.count()) + " ms; at least 300 ms is needed",
        "coordinator.lease_ttl");
  }
  return core::Status::Ok();
}

StudyLeases::StudyLeases(core::StateStore& store, const core::Clock& clock, core::Metrics& metrics,
                         LeaseOptions options)
    : store_(store),
      clock_(clock),
      metrics_(metrics),
      options_(std::move(options)),
      owned_(metrics.Gauge("studies_owned",
                           "Running studies this coordinator replica drives (holds the lease of)")),
      takeovers_(metrics.Counter("lease_takeovers_total",
                                 "Study leases taken from the store and the studies resumed "
                                 "(at start, or after another replica's lease expired)")),
      lost_(metrics.Counter("lease_lost_total",
                            "Study leases lost (another replica holds them, or they could not be "
                            "renewed in time); the replica stopped driving those studies")),
      corrupt_(metrics.Counter("lease_corrupt_total",
                               "Study lease values that were not a replica id, removed")),
      unknown_holder_(metrics.Counter(
          "lease_unknown_holder_total",
          "Study leases found held by a replica with no liveness record (unknown or dead)")) {
  owned_.Set(0);
}

core::Status StudyLeases::Announce() {
  const auto now = clock_.Now();
  next_announce_ = now + RenewEvery();
  FEDRX_ASSIGN_OR_RETURN(core::Key key, core::keys::CoordinatorReplica(options_.replica_id));
  FEDRX_ASSIGN_OR_RETURN(bool renewed, store_.RenewIfEqual(key, options_.replica_id, options_.ttl));
  if (renewed) return core::Status::Ok();
  return store_.SetIfAbsentWithExpiry(key, options_.replica_id, options_.ttl).status();
}

core::Status StudyLeases::CheckHolders(const std::map<std::string, std::string>& foreign) {
  std::vector<std::string> holders;
  for (const auto& [study, holder] : foreign) {
    if (std::find(holders.begin(), holders.end(), holder) == holders.end()) {
      holders.push_back(holder);
    }
  }
  std::vector<core::Key> keys;
  for (const auto& holder : holders) {
    FEDRX_ASSIGN_OR_RETURN(core::Key key, core::keys::CoordinatorReplica(holder));
    keys.push_back(key);
  }
  std::vector<std::optional<std::string>> alive;
  if (!keys.empty()) {
    FEDRX_ASSIGN_OR_RETURN(alive, store_.GetMany(keys));
  }
  const auto now = clock_.Now();
  std::map<std::string, Unknown> still_unknown;
  for (const auto& [study, holder] : foreign) {
    const std::size_t i = std::find(holders.begin(), holders.end(), holder) - holders.begin();
    if (alive[i].has_value()) continue;
    auto seen = unknown_.find(study);
    if (seen == unknown_.end() || seen->second.holder != holder) {
      unknown_holder_.Inc();
      std::cerr << "coordinator: the lease of study " << study << " is held by replica " << holder
                << ", which is not alive (unknown, or dead and its lease not yet expired)\n";
      still_unknown[study] = Unknown{holder, now};
      continue;
    }
    if (now - seen->second.since < 2 * options_.ttl) {
      still_unknown[study] = seen->second;
      continue;
    }
    // Two ttls on, an expiring lease would be gone: this one never expires.
    std::cerr << "coordinator: the lease of study " << study << " held by " << holder
              << " outlived two ttls without a live holder; removing it\n";
    FEDRX_ASSIGN_OR_RETURN(core::Key key, core::keys::CoordinatorLease(study));
    FEDRX_RETURN_IF_ERROR(store_.DeleteIfEqual(key, holder).status());
  }
  unknown_ = std::move(still_unknown);
  return core::Status::Ok();
}

std::chrono::milliseconds StudyLeases::RenewEvery() const { return options_.ttl / 3; }

void StudyLeases::Hold(const std::string& study_id) {
  const auto now = clock_.Now();
  held_[study_id] = Held{now, now + RenewEvery()};
  owned_.Set(static_cast<double>(held_.size()));
}

void StudyLeases::Lose(const std::string& study_id, const std::string& why) {
  if (held_.erase(study_id) == 0) return;
  lost_.Inc();
  owned_.Set(static_cast<double>(held_.size()));
  std::cerr << "coordinator: replica " << options_.replica_id << " lost the lease of study "
            << study_id << " (" << why << "); it stops driving the study\n";
}

void StudyLeases::CountTakeover() { takeovers_.Inc(); }

core::Result<bool> StudyLeases::Acquire(const std::string& study_id) {
  FEDRX_ASSIGN_OR_RETURN(core::Key key, core::keys::CoordinatorLease(study_id));
  // Twice at most: once more after removing a corrupt value.
  for (int attempt = 0; attempt < 2; ++attempt) {
    FEDRX_ASSIGN_OR_RETURN(bool taken,
                           store_.SetIfAbsentWithExpiry(key, options_.replica_id, options_.ttl));
    if (taken) {
      Hold(study_id);
      return true;
    }
    // A lease under this replica's own id was left by an earlier process of
    // this replica (killed before it could release it): it is ours.
    FEDRX_ASSIGN_OR_RETURN(bool renewed,
                           store_.RenewIfEqual(key, options_.replica_id, options_.ttl));
    if (renewed) {
      Hold(study_id);
      return true;
    }
    FEDRX_ASSIGN_OR_RETURN(std::optional<std::string> value, store_.Get(key));
    if (!value.has_value()) continue;  // expired or released in between: try again
    if (core::ValidateId(*value, "lease").ok()) {
      held_.erase(study_id);
      return false;  // another replica's
    }
    // Nobody can hold a lease under a value that is not a replica id (ids
    // are checked at start): remove exactly that value, so a valid lease
    // written meanwhile stays.
    corrupt_.Inc();
    std::cerr << "coordinator: the lease of study " << study_id << " holds " << value->size()
              << " bytes that are not a replica id; removing it\n";
    FEDRX_RETURN_IF_ERROR(store_.DeleteIfEqual(key, *value).status());
  }
  return false;
}

std::vector<std::string> StudyLeases::RenewDue() {
  std::vector<std::string> lost;
  const auto now = clock_.Now();
  if (now >= next_announce_) {
    if (core::Status s = Announce(); !s.ok()) {
      metrics_.CountError("lease", "announce");
      // Retry soon; until then other replicas may see this one as unknown.
      next_announce_ =
          now + std::min<std::chrono::milliseconds>(RenewEvery(), std::chrono::milliseconds(500));
    }
  }
  std::vector<std::string> due;
  for (const auto& [id, h] : held_) {
    if (now >= h.next_renewal) due.push_back(id);
  }
  for (const auto& id : due) {
    Held& h = held_[id];
    auto key = core::keys::CoordinatorLease(id);
    core::Result<bool> renewed = key.ok()
                                     ? store_.RenewIfEqual(*key, options_.replica_id, options_.ttl)
                                     : core::Result<bool>(key.status());
    if (renewed.ok() && *renewed) {
      h.renewed = now;
      h.next_renewal = now + RenewEvery();
      continue;
    }
    if (renewed.ok()) {
      Lose(id, "the store names another holder, or none");
      lost.push_back(id);
      continue;
    }
    metrics_.CountError("lease", "renew");
    if (now - h.renewed >= options_.ttl) {
      // The store may have let it expire and given it to another replica.
      Lose(id, "not renewed for a whole ttl: " + renewed.status().ToString());
      lost.push_back(id);
      continue;
    }
    // Try again soon: the lease is still ours until its ttl has passed.
    h.next_renewal =
        now + std::min<std::chrono::milliseconds>(RenewEvery(), std::chrono::milliseconds(500));
    std::cerr << "coordinator: could not renew the lease of study " << id << ": "
              << renewed.status() << "\n";
  }
  return lost;
}

core::Status StudyLeases::Confirm(const std::string& study_id) {
  if (!Holds(study_id)) {
    return core::FailedPrecondition(
        "replica " + options_.replica_id + " does not hold the lease of study '" + study_id + "'",
        "lease");
  }
  FEDRX_ASSIGN_OR_RETURN(core::Key key, core::keys::CoordinatorLease(study_id));
  core::Result<std::optional<std::string>> value = store_.Get(key);
  if (!value.ok()) {
    metrics_.CountError("lease", "confirm");
    return value.status();
  }
  if (value->has_value() && **value == options_.replica_id) return core::Status::Ok();
  Lose(study_id, "found held by another replica, or free, before a write");
  return core::FailedPrecondition(
      "replica " + options_.replica_id + " no longer holds the lease of study '" + study_id + "'",
      "lease");
}

void StudyLeases::Release(const std::string& study_id) {
  if (held_.erase(study_id) == 0) return;
  owned_.Set(static_cast<double>(held_.size()));
  auto key = core::keys::CoordinatorLease(study_id);
  if (!key.ok()) return;
  if (auto released = store_.DeleteIfEqual(*key, options_.replica_id); !released.ok()) {
    metrics_.CountError("lease", "release");
    std::cerr << "coordinator: could not release the lease of study " << study_id << " ("
              << released.status() << "); it expires by itself\n";
  }
}

core::Result<std::optional<std::string>> StudyLeases::Holder(const std::string& study_id) {
  FEDRX_ASSIGN_OR_RETURN(core::Key key, core::keys::CoordinatorLease(study_id));
  FEDRX_ASSIGN_OR_RETURN(std::optional<std::string> value, store_.Get(key));
  if (value.has_value() && !core::ValidateId(*value, "lease").ok())
    return std::optional<std::string>();
  return value;
}

}  // namespace fedrx::coordinator
