// The `fedrx` command-line tool for the platform team: talks to the
// coordinator over the bus (register and list sites, health). Single-threaded.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include "services/core/bus.h"
#include "services/core/status.h"

namespace fedrx::cli {

// Runs one command (args exclude the program name) against `bus`, connected
// to `endpoint`; writes results to `out`. Returns the process exit code; errors
// go to `err` as "fedrx: <what> (at <where>)".
int RunCommand(const std::vector<std::string>& args, core::Bus& bus, std::ostream& out,
               std::ostream& err);

// The process entry point: builds a ZmqBus and calls RunCommand.
int Main(int argc, char** argv);

}  // namespace fedrx::cli
