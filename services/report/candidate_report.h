// The candidate report: a workflow run (the run record of
// docs issue9 contract, with each step's output inlined as steps[i].output)
// rendered as JSON and as one self-contained HTML page with inline SVG
// charts: verdict and findings, toxicity panels with uncertainty, clinical
// risk and side-effect profile, dose translation with its working,
// escalation operating characteristics, reverse-translation
// recommendations, provenance. A missing, failed or skipped step becomes a
// "not available: <reason>" section; nothing in the record makes it crash.
// Pure (no I/O); thread-safe.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>

#include "services/core/status.h"
#include "services/report/rendered.h"

namespace fedrx::report {

// `run`: the run record (an object; else InvalidArgument where "run").
// `generated_ms`: when the report is written (unix ms), shown in the footer.
// The JSON is {kind: "candidate", report_version: 1, generated_ms, title,
// summary, run: <run as given>, sections: [{id, title, available, reason}],
// charts: {<name>: <the data drawn>}}.
core::Result<RenderedReport> RenderCandidateReport(const nlohmann::json& run,
                                                   std::int64_t generated_ms);

}  // namespace fedrx::report
