// fedrx-lab: the demo's and benchmarks' workbench, outside the federation.
// It prepares the demo's institutions' shares of a public dataset (scaffold
// split, then a non-IID partition by scaffold), trains the baselines a
// federation is measured against (each site alone, and all data pooled) on
// the same budget, and compares models on the held-out scaffold test set (a
// DP study's model beside them, with the epsilon its coordinator reported).
// `poison` runs simulated sites in process (simulation.h) to compare FedAvg
// with the robust aggregation rules when some sites poison their updates.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace fedrx::lab {

// Runs one command (args exclude the program name); returns the exit code.
int Run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace fedrx::lab
