// The fedrx-ingest process: reads config, checks the inbox and stores
// directories and the consortium key, and runs IngestService under the
// ServiceRunner. Functions only.
#pragma once

#include "services/core/config.h"
#include "services/core/status.h"
#include "services/ingest_service/ingest_service.h"

namespace fedrx::ingest_service {

// The service's options from `config` (ingest.*). kInvalidArgument, naming the
// key and where it was set, for a missing or non-directory inbox/stores, a bad
// number or duration; the key file's error for an unreadable or bad key.
core::Result<IngestServiceOptions> OptionsFrom(const core::Config& config);

// Returns the process exit code.
int Main(int argc, char** argv);

}  // namespace fedrx::ingest_service
