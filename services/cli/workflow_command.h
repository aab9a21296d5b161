// `fedrx workflow ...` and `fedrx report ...`: the orchestrator's workflows
// and runs, and the report service's reports, through the gateway.
// Single-threaded.
#pragma once

#include <iosfwd>

#include "services/cli/cli_common.h"
#include "services/core/bus.h"
#include "services/core/status.h"

namespace fedrx::cli {

// True for `workflow ...`.
bool IsWorkflowCommand(const Options& o);
// True for `report ...`.
bool IsReportCommand(const Options& o);

// `workflow list` (ListWorkflows), `workflow show RUN_ID [--json FILE]`
// (GetWorkflowRun; with --json the run with its step outputs),
// `workflow runs [--workflow W] [--limit N]` (ListWorkflowRuns, newest
// first). InvalidArgument for an unknown subcommand or a missing RUN_ID; the
// services' errors as they come.
core::Status RunWorkflowCommand(core::Bus& bus, const Options& o, std::ostream& out);

// `report list [--kind K] [--limit N]`, `report get REPORT_ID [--format
// html|json] --out FILE` (writes the page or document), `report create --kind
// study|candidate --subject ID`. InvalidArgument naming the flag for bad
// command lines; kUnavailable naming FILE when it cannot be written.
core::Status RunReportCommand(core::Bus& bus, const Options& o, std::ostream& out);

}  // namespace fedrx::cli
