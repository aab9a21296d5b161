// SiteRegistry: the coordinator's record of institutions' sites, kept in the
// StateStore. Registration is idempotent (a site re-registering refreshes its
// descriptor and keeps its first registration time). Not thread-safe.
#pragma once

#include <string_view>

#include "messages/codec/message.h"
#include "services/core/clock.h"
#include "services/core/metrics.h"
#include "services/core/state_store.h"
#include "services/core/status.h"

namespace fedrx::coordinator {

// Bounds on what a site may declare about its dataset.
struct SiteLimits {
  std::size_t max_institution_bytes = 256;
  std::size_t max_tasks = 4096;
  std::size_t max_task_bytes = 128;
  std::size_t max_schema_hash_bytes = 128;
};

class SiteRegistry {
 public:
  SiteRegistry(core::StateStore& store, const core::Clock& clock, core::Metrics& metrics,
               SiteLimits limits = {});

  // Validates and stores the registration atomically. kInvalidArgument names
  // the offending field; kUnavailable when the store is down (nothing is
  // half-written).
  core::Result<codec::SiteRegistered> Register(const codec::RegisterSite& request);

  // Every registered site, ordered by id.
  core::Result<codec::SiteList> List();

  // Records that `site_id` was heard from now. Unknown sites: kNotFound.
  core::Status Touch(std::string_view site_id);

 private:
  core::Status Validate(const codec::RegisterSite& request) const;

  core::StateStore& store_;
  const core::Clock& clock_;
  SiteLimits limits_;
  core::CounterRef registered_new_;
  core::CounterRef registered_again_;
  core::CounterRef refused_;
  core::GaugeRef sites_;
};

}  // namespace fedrx::coordinator
