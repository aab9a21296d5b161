// `fedrx assess`: runs a workflow (first-in-human by default) for a candidate
// described in a small YAML or JSON file, through the gateway, shows the
// steps' progress while the orchestrator works, prints the verdict and fetches
// the run's report (HTML and JSON) into a directory. A candidate may name an
// ingested SEND study at this institution (`noael_from_study`); its NOAEL is
// proposed here and only species, dose and source are sent. The pure parts
// (YAML to JSON, progress lines) are separate functions. Single-threaded.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "messages/codec/message.h"
#include "services/cli/cli_common.h"
#include "services/core/bus.h"
#include "services/core/status.h"

namespace fedrx::cli {

// True for `assess ...`.
bool IsAssessCommand(const Options& o);

// `assess CANDIDATE [--workflow first-in-human] [--out DIR] [--run-id ID]
// [--poll-ms 200] [--timeout-s 600]`. Returns the process exit code: 0 when
// the run ended succeeded or partial (a verdict exists), 1 when it failed,
// timed out or could not be asked, 2 for a usage error (missing CANDIDATE, a
// bad flag). `tty`: redraw the step lines in place (ANSI) instead of
// appending a line per change. Errors go to `err` as "fedrx: <what> (at <where>)".
int RunAssessCommand(core::Bus& bus, const Options& o, std::ostream& out, std::ostream& err,
                     bool tty);

// True when `out` is the process's standard output and that is a terminal.
bool IsTerminal(const std::ostream& out);

// A YAML document as JSON: mappings become objects (keys must be scalars and
// unique), sequences arrays; a plain scalar is null (~, null, empty), a
// boolean (true/false), an integer or a finite number when it reads as one,
// else a string; a quoted scalar is always a string. InvalidArgument with
// where = "<file>:<line>" for a syntax error, a duplicate or non-scalar key,
// or a non-finite number (.inf, .nan).
core::Result<nlohmann::json> YamlToJson(std::string_view text, std::string_view file);

// The candidate in `path`: JSON when the name ends in .json, else YAML (both
// must hold a mapping). kNotFound when unreadable; kInvalidArgument with
// where = "<path>:<line>" for bad content.
core::Result<nlohmann::json> ReadCandidate(const std::string& path);

// Replaces the candidate's `noael_from_study: STORE` (relative to `base_dir`
// when not absolute; optional `noael_group: SETCD`) by the NOAEL proposed here
// from that ingested SEND study, appended to `noaels` as {species,
// noael_mg_per_kg, source} — nothing else from the study is added. Writes a
// line about the proposal to `out`. No-op without the key; the store's or the
// rule's errors otherwise (where names the key).
core::Status ProposeNoaelsLocally(nlohmann::json& candidate, const std::string& base_dir,
                                  std::ostream& out);

// One step's progress line: "[  2.1s] tox            succeeded  1 attempt",
// the seconds since the run was created at the step's last change (its
// finish, else its start; blank while pending), with the reason of a failed
// or skipped step after it.
std::string StepLine(const codec::StepState& step, std::int64_t run_created_ms);

// Shows a run's steps as they change. Not thread-safe.
class ProgressDisplay {
 public:
  explicit ProgressDisplay(bool tty) : tty_(tty) {}
  // On a terminal redraws every step's line in place (moving the cursor up
  // over the lines drawn before); otherwise writes the line of each step whose
  // state or attempt count changed since the last call (pending steps are not
  // written).
  void Show(const codec::WorkflowRun& run, std::ostream& out);

 private:
  bool tty_;
  std::size_t drawn_ = 0;
  std::map<std::string, std::string> last_;  // step id -> "state/attempts"
};

// The run's closing lines: the verdict (summary), then "run ID: STATE (n of m
// steps succeeded, took S s)".
void PrintRunEnd(const codec::WorkflowRun& run, std::ostream& out);

// The run as JSON: its fields and steps, with outputs parsed (when present).
nlohmann::json RunToJson(const codec::WorkflowRun& run);

}  // namespace fedrx::cli
