// The model serving part of a domain service's process (fedrx-tox,
// fedrx-clinical): the `<name>.*` serving keys read, the registry's Redis
// connected, and the ModelServer refreshed on the runner's thread. Called
// from the service's setup, on the thread that builds it.
#pragma once

#include <string>

#include "services/core/process.h"
#include "services/core/status.h"
#include "services/domain/request_service.h"
#include "services/serving/model_server.h"

namespace fedrx::serving {

// Reads `<name>.key_file`, `<name>.folds` (5), `<name>.max_heavy_atoms` (200),
// `<name>.threads` (1) and `<name>.refresh_interval` (2s) over `options`
// (whose studies and max_batch the caller sets); connects to `<name>.redis`
// (retrying for redis.startup_wait: blocks); builds the ModelServer over the
// registry there; and has `service` refresh it every interval on the runner's
// thread (first at the first tick), logging a refresh problem once. What it
// builds goes into p.keep_alive; the server returned lives as long. Errors:
// a bad key (InvalidArgument naming it), Redis unreachable, the server's.
core::Result<ModelServer*> ServeModels(const std::string& name, ServingOptions options,
                                       domain::RequestService& service, core::ProcessParts& p);

}  // namespace fedrx::serving
