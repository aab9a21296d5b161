// fedrx_trial_bench: simulated dose-escalation trials per second on one core
// for a 5-dose, 30-patient (cohort 3) scenario, target 0.3, true DLT rates
// (0.05, 0.15, 0.30, 0.45, 0.60):
//   (a) BOIN and CRM (and 3+3, without a baseline) through SimulateEscalation,
//       one thread; one warm-up, then the median of the repetitions;
//   (b) the same designs and rules in base R (trial_baseline.R, run as an
//       Rscript child process; it times itself with proc.time and prints
//       trials/s), CRM on the same quadrature grid so that both do the same
//       work;
//   (c) the largest difference between the two implementations' selection
//       percentages, against the Monte Carlo error of that difference, so the
//       baseline is known to run the same design.
// Appends JSON lines {"bench","metric","value","unit","baseline","ratio"} to
// --out, ratio = value / baseline. R's fields are null without Rscript.
//
// Usage: fedrx_trial_bench [--out FILE] [--trials N] [--r-trials N]
//                          [--repetitions R] [--no-r]
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "services/trial/escalation.h"
#include "tests/bench/json_lines.h"

namespace fedrx::bench {
namespace {

using Steady = std::chrono::steady_clock;

struct Config {
  std::string out;
  int trials = 20000;
  int r_trials = 2000;
  int repetitions = 3;
  bool r = true;
};

[[noreturn]] void Die(const std::string& what) {
  std::cerr << "fedrx_trial_bench: " << what << "\n";
  std::exit(1);
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double CpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

codec::SimulateEscalation Scenario(const std::string& design, int trials) {
  codec::SimulateEscalation req;
  req.design.design = design;
  req.design.target = 0.3;
  req.design.cohort_size = 3;
  req.design.max_patients = 30;
  req.true_tox = {0.05, 0.15, 0.30, 0.45, 0.60};
  req.trials = trials;
  req.seed = 1;
  return req;
}

struct Measured {
  double trials_per_s = 0;
  double trials_per_cpu_s = 0;
  std::vector<double> selection;
};

Measured RunOurs(const std::string& design, const Config& c) {
  auto warm = trial::SimulateEscalation(Scenario(design, std::max(1, c.trials / 10)));
  if (!warm.ok()) Die(warm.status().ToString());
  std::vector<double> wall, cpu;
  Measured m;
  for (int r = 0; r < c.repetitions; ++r) {
    const auto started = Steady::now();
    const double cpu0 = CpuSeconds();
    auto oc = trial::SimulateEscalation(Scenario(design, c.trials));
    if (!oc.ok()) Die(oc.status().ToString());
    wall.push_back(std::chrono::duration<double>(Steady::now() - started).count());
    cpu.push_back(CpuSeconds() - cpu0);
    m.selection = oc->selection_pct;
  }
  m.trials_per_s = c.trials / Median(wall);
  m.trials_per_cpu_s = c.trials / Median(cpu);
  return m;
}

// key=value fields of one line of trial_baseline.R's output, by design.
std::map<std::string, std::map<std::string, std::string>> RunR(const Config& c) {
  std::map<std::string, std::map<std::string, std::string>> out;
  if (std::system("Rscript --version >/dev/null 2>&1") != 0) {
    std::cerr << "fedrx_trial_bench: no Rscript; R fields are null\n";
    return out;
  }
  const std::string cmd = std::string("Rscript ") + FEDRX_TRIAL_BASELINE_SCRIPT + " --trials " +
                          std::to_string(c.r_trials) + " --designs boin,crm";
  FILE* pipe = popen(cmd.c_str(), "r");
  if (pipe == nullptr) Die("cannot start " + cmd);
  char buf[4096];
  while (std::fgets(buf, sizeof buf, pipe) != nullptr) {
    std::istringstream line(buf);
    std::map<std::string, std::string> fields;
    std::string field;
    while (line >> field) {
      const auto eq = field.find('=');
      if (eq != std::string::npos) fields[field.substr(0, eq)] = field.substr(eq + 1);
    }
    if (fields.count("design")) out[fields["design"]] = fields;
  }
  if (pclose(pipe) != 0) std::cerr << "fedrx_trial_bench: trial_baseline.R failed\n";
  return out;
}

std::vector<double> ParseList(const std::string& s) {
  std::vector<double> v;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) v.push_back(std::atof(item.c_str()));
  return v;
}

int Main(int argc, char** argv) {
  Config c;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) Die(a + " needs a value");
      return argv[++i];
    };
    if (a == "--out") {
      c.out = next();
    } else if (a == "--trials") {
      c.trials = std::atoi(next().c_str());
    } else if (a == "--r-trials") {
      c.r_trials = std::atoi(next().c_str());
    } else if (a == "--repetitions") {
      c.repetitions = std::atoi(next().c_str());
    } else if (a == "--no-r") {
      c.r = false;
    } else {
      Die("unknown argument " + a);
    }
  }
  if (c.trials < 1 || c.r_trials < 1 || c.repetitions < 1) Die("counts must be >= 1");
  JsonLines out(c.out);
  std::cerr << "fedrx_trial_bench: 5 doses, 30 patients, cohort 3, target 0.3; " << c.trials
            << " trials x " << c.repetitions << " repetitions (median), R " << c.r_trials
            << " trials\n";

  std::map<std::string, std::map<std::string, std::string>> r;
  if (c.r) r = RunR(c);
  for (const std::string design : {"boin", "crm", "3+3"}) {
    const Measured ours = RunOurs(design, c);
    const std::string bench = design == "3+3" ? "trial_3plus3" : "trial_" + design;
    std::optional<double> base, base_cpu;
    if (r.count(design)) {
      base = std::atof(r[design]["trials_per_s"].c_str());
      base_cpu = r[design]["cpu_s"].empty()
                     ? std::nullopt
                     : std::optional<double>(c.r_trials / std::atof(r[design]["cpu_s"].c_str()));
    }
    out.Emit(bench, "trials_per_s_1thread_vs_r", ours.trials_per_s, "trials/s", base);
    out.Emit(bench, "trials_per_cpu_s_1thread_vs_r", ours.trials_per_cpu_s, "trials/cpu-s",
             base_cpu);
    if (r.count(design)) {
      // Same design in both: selection percentages differ only by Monte
      // Carlo error; value = the largest difference, baseline = 4.5 standard
      // errors of that difference at that dose.
      const std::vector<double> theirs = ParseList(r[design]["selection"]);
      double worst = 0, allowed = 0;
      for (std::size_t d = 0; d < ours.selection.size() && d < theirs.size(); ++d) {
        const double a = ours.selection[d] / 100, b = theirs[d] / 100;
        const double se = 100 * std::sqrt(a * (1 - a) / c.trials + b * (1 - b) / c.r_trials);
        const double diff = std::fabs(ours.selection[d] - theirs[d]);
        if (diff >= worst) {
          worst = diff;
          allowed = 4.5 * se;
        }
      }
      out.Emit(bench, "selection_pct_max_abs_diff_vs_r", worst, "percentage points", allowed);
    }
  }
  return 0;
}

}  // namespace
}  // namespace fedrx::bench

int main(int argc, char** argv) { return fedrx::bench::Main(argc, argv); }
