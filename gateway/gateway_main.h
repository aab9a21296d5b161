// The gateway process: config, real adapters, GatewayService under the runner.
#pragma once

namespace fedrx::gateway {

// Returns the process exit code.
int Main(int argc, char** argv);

}  // namespace fedrx::gateway
