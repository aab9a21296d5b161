// The `fedrx` command-line tool for the platform team and scientists: talks
// over the bus to the coordinator (plaintext) or, with --gateway, through the
// gateway over CurveZMQ as an enrolled institution (sites, health, studies,
// and the administration bodies of admin.fbs); without --gateway, institution
// enrolment and the audit trail go to Redis directly, which is how the first
// admin is enrolled. Single-threaded.
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
// to the endpoint of --coordinator or --gateway; writes results to `out`.
// `institutions ...` and `audit verify` here send EnrolInstitution,
// ListInstitutions, SetInstitutionStatus and VerifyAudit (for the gateway). Returns the process
// exit code; errors go to `err` as "fedrx: <what> (at <where>)".
int RunCommand(const std::vector<std::string>& args, core::Bus& bus, std::ostream& out,
               std::ostream& err);

// True when `args` name a command that runs on Redis (`institutions ...`,
// `audit ...` without --gateway) rather than over the bus.
bool IsAdminCommand(const std::vector<std::string>& args);

// The options of the CLI's bus: with --gateway, a CURVE client whose key pair
// is read from --key-file and whose server key from --server-key-file (a
// `public = <key>` file or the gateway's key-pair file). Errors name the flag
// or the file (kInvalidArgument for bad flags; key file errors as
// LoadCurveKeyPair/LoadCurvePublicKey give them). Blocks on file I/O.
core::Result<core::BusOptions> CliBusOptions(const std::vector<std::string>& args);

// Runs one such command against `store`; like RunCommand otherwise. Every
// institution change (and refusal) is appended to the audit trail.
int RunAdminCommand(const std::vector<std::string>& args, core::StateStore& store,
                    const core::Clock& clock, core::Metrics& metrics, std::ostream& out,
                    std::ostream& err);

// The process entry point: builds a ZmqBus and calls RunCommand, or connects
// to Redis (--redis HOST:PORT) and calls RunAdminCommand.
int Main(int argc, char** argv);

}  // namespace fedrx::cli
