// The site process: reads config and the institution's dataset, builds the
// real adapters, and runs SiteService under the ServiceRunner.
#pragma once

namespace fedrx::site {

// Returns the process exit code.
int Main(int argc, char** argv);

}  // namespace fedrx::site
