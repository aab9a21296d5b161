// The coordinator process: reads config, builds the real adapters (ZeroMQ,
// Redis, Prometheus), and runs CoordinatorService under the ServiceRunner.
#pragma once

namespace fedrx::coordinator {

// Returns the process exit code.
int Main(int argc, char** argv);

}  // namespace fedrx::coordinator
