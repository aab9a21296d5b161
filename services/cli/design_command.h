// `fedrx dose ...` and `fedrx trial ...`: questions for the translational and
// trial services, asked through the gateway as an enrolled scientist or
// admin. `dose translate --from-study STORE` first proposes a NOAEL from a
// SEND study ingested at this institution (ingest/noael.h), on this machine:
// only the species, dose and group evidence are sent. Answers are printed
// with their working, and written as JSON with --json FILE. Single-threaded.
#pragma once

#include <iosfwd>

#include "services/cli/cli_common.h"
#include "services/core/bus.h"
#include "services/core/status.h"

namespace fedrx::cli {

// True for `dose ...` and `trial ...`.
bool IsDesignCommand(const Options& o);

core::Status RunDesignCommand(core::Bus& bus, const Options& o, std::ostream& out);

}  // namespace fedrx::cli
