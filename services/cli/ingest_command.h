// `fedrx ingest ...`: site-side ingest into a local DatasetStore, run next to
// the data (no bus, no platform). `ingest compounds` reads a compound-assay
// table or SD file, standardises and prepares it, and commits a new store
// version; `ingest study` (ingest_study_command.h) reads a SEND/SDTM study
// folder into the common data model. Single-threaded apart from the
// preparation workers.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <map>
#include <string>
#include <vector>

#include "services/core/status.h"

namespace fedrx::cli {

// True when `args` (without the program name) start with "ingest".
bool IsIngestCommand(const std::vector<std::string>& args);

// Runs `ingest ...`; writes the summary to `out`, progress and errors to
// `err` (a progress bar when `err_is_tty`, else a line every 10 s). Returns
// the exit code: 0 on a committed version, 1 when the ingest failed (the
// previous version stays CURRENT), 2 for bad usage.
// The whole-number flag --`name` of `flags` in [lo, hi], or `fallback` when
// absent; kInvalidArgument with where "--<name>" otherwise.
core::Result<std::uint64_t> IngestFlagNumber(const std::map<std::string, std::string>& flags,
                                             const std::string& name, std::uint64_t fallback,
                                             std::uint64_t lo, std::uint64_t hi);

int RunIngestCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
                     bool err_is_tty);

}  // namespace fedrx::cli
