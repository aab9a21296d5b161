// The `fedrx` command-line tool for the platform team: talks to the
// coordinator over the bus (register and list sites, health, studies), and,
// for institution enrolment and the audit trail, to Redis directly (until the
// admin path through the gateway exists). Single-threaded.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include "services/core/bus.h"
#include "services/core/clock.h"
#include "services/core/metrics.h"
#include "services/core/state_store.h"
#include "services/core/status.h"

namespace fedrx::cli {

// Runs one command (args exclude the program name) against `bus`, connected
// to `endpoint`; writes results to `out`. Returns the process exit code; errors
// go to `err` as "fedrx: <what> (at <where>)".
int RunCommand(const std::vector<std::string>& args, core::Bus& bus, std::ostream& out,
               std::ostream& err);

// True when `args` name a command that runs on Redis (`institutions ...`,
// `audit ...`) rather than over the bus.
bool IsAdminCommand(const std::vector<std::string>& args);

// Runs one such command against `store`; like RunCommand otherwise. Every
// institution change (and refusal) is appended to the audit trail.
int RunAdminCommand(const std::vector<std::string>& args, core::StateStore& store,
                    const core::Clock& clock, core::Metrics& metrics, std::ostream& out,
                    std::ostream& err);

// The process entry point: builds a ZmqBus and calls RunCommand, or connects
// to Redis (--redis HOST:PORT) and calls RunAdminCommand.
int Main(int argc, char** argv);

}  // namespace fedrx::cli
