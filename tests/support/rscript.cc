#include "tests/support/rscript.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "tests/support/child_process.h"

namespace fedrx::testing {

double RResults::Get(const std::string& key) const {
  auto it = values.find(key);
  EXPECT_NE(it, values.end()) << "R wrote no " << key;
  return it == values.end() ? std::nan("") : it->second;
}

RResults RunRscriptForValues(const std::string& script, std::chrono::seconds timeout) {
  RResults r;
  TempDir dir;
  if (dir.path().empty()) {
    r.error = "could not create a temporary directory";
    return r;
  }
  const std::string script_path = dir.path() + "/compare.R";
  const std::string csv = dir.path() + "/r.csv";
  std::ofstream(script_path) << script;
  auto rscript = ChildProcess::Spawn("Rscript", {"--vanilla", script_path, csv});
  if (!rscript.ok()) {
    r.error = "Rscript is required (R is a declared dependency, deploy/install-deps.sh): " +
              rscript.status().ToString();
    return r;
  }
  auto code = (*rscript)->Wait(timeout);
  if (!code.ok() || *code != 0) {
    r.error = "Rscript failed: " + (code.ok() ? std::to_string(*code) : code.status().ToString()) +
              "\n" + (*rscript)->Log();
    return r;
  }
  std::ifstream in(csv);
  std::string line;
  while (std::getline(in, line)) {
    const auto comma = line.rfind(',');
    if (comma == std::string::npos) continue;
    try {
      r.values[line.substr(0, comma)] = std::stod(line.substr(comma + 1));
    } catch (const std::exception&) {
      r.error = "R wrote '" + line + "', not key,number";
      return r;
    }
  }
  if (r.values.empty()) r.error = "R wrote no results:\n" + (*rscript)->Log();
  return r;
}

}  // namespace fedrx::testing
