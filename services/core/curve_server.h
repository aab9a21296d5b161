// CURVE server settings shared by the platform's internal services (the
// coordinator and the domain services behind the gateway): with
// `<prefix>.curve_key_file` (the service's key pair, 0600) and
// `<prefix>.clients_file` (the authorised clients, e.g. the gateway's public
// key; static_authenticator.h) the served socket is a CURVE server that
// admits only those clients. Both or neither: a key pair without clients
// would admit nobody, clients without a key pair would leave it plaintext.
#pragma once

#include <string_view>

#include "services/core/bus.h"
#include "services/core/config.h"
#include "services/core/process.h"
#include "services/core/status.h"

namespace fedrx::core {

// Whether CURVE mode is on; an error names the missing key.
Result<bool> CurveServerMode(const Config& config, std::string_view prefix);

// For ProcessSpec::configure_bus: loads the key pair into `bus` when on.
Status ConfigureCurveServer(const Config& config, BusOptions& bus, std::string_view prefix);

// In the service factory: when on, loads the clients file and installs it as
// the bus's authenticator (kept alive with the process). Returns whether on.
Result<bool> InstallCurveClients(ProcessParts& parts, std::string_view prefix);

}  // namespace fedrx::core
