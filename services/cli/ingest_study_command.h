// `fedrx ingest study`: a SEND/SDTM study folder into a site's DatasetStore
// (ingest::IngestStudy), with a summary a translational scientist reads first.
// Single-threaded.
#pragma once

#include <iosfwd>
#include <map>
#include <string>

#include "services/core/status.h"

namespace fedrx::cli {

// Runs `ingest study` with its parsed flags (name without "--" -> value;
// "refuse-on-errors" present when given). Writes progress to `err` (a bar when
// `err_is_tty`, else one line per stage) and the summary to `out`. Returns
// kInvalidArgument with where "--<flag>" for bad usage; otherwise the error of
// IngestStudy (nothing was committed then). Blocks on file I/O.
core::Status IngestStudyCommand(const std::map<std::string, std::string>& flags, std::ostream& out,
                                std::ostream& err, bool err_is_tty);

}  // namespace fedrx::cli
