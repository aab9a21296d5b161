// `fedrx ingest ...`: site-side ingest into a local DatasetStore, run next to
// the data (no bus, no platform). `ingest compounds` reads a compound-assay
// table or SD file, standardises and prepares it, and commits a new store
// version; `ingest study` (SEND/SDTM into the common data model) has its
// place here and is not wired yet. Single-threaded apart from the
// preparation workers.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace fedrx::cli {

// True when `args` (without the program name) start with "ingest".
bool IsIngestCommand(const std::vector<std::string>& args);

// Runs `ingest ...`; writes the summary to `out`, progress and errors to
// `err` (a progress bar when `err_is_tty`, else a line every 10 s). Returns
// the exit code: 0 on a committed version, 1 when the ingest failed (the
// previous version stays CURRENT), 2 for bad usage.
int RunIngestCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
                     bool err_is_tty);

}  // namespace fedrx::cli
