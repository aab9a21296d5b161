// Which service behind the gateway answers a body that people send: the
// coordinator (studies, models, sites) or one of the domain services
// (translational, trial, tox, clinical, reverse, and the orchestrator and
// report services above them). Sites' traffic always goes to the coordinator.
#pragma once

#include <string_view>
#include <vector>

#include "messages/codec/message.h"

namespace fedrx::gateway {

inline constexpr std::string_view kCoordinatorService = "coordinator";

// The service that answers `body`: kCoordinatorService or a name from
// DomainServices().
std::string_view ServiceFor(const codec::Body& body);

// Every domain service a body can be routed to, in a stable order. The
// gateway reads `gateway.services.<name>.endpoint` for each.
const std::vector<std::string_view>& DomainServices();

}  // namespace fedrx::gateway
