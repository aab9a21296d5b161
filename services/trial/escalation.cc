#include "services/trial/escalation.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <string>

#include "services/domain/working.h"
#include "services/trial/boin.h"
#include "services/trial/crm.h"
#include "services/trial/three_plus_three.h"

namespace fedrx::trial {
namespace {

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool InOpenUnit(double v) { return v > 0 && v < 1; }

}  // namespace

Rng::Rng(std::uint64_t seed) : generator_(seed) {}

Rng Rng::ForTrial(std::uint64_t seed, std::uint64_t index) {
  // Two rounds of splitmix64 decorrelate neighbouring (seed, index) pairs.
  std::uint64_t x = seed;
  std::uint64_t k = core::SplitMix64(x) ^ index;
  return Rng(core::SplitMix64(k));
}

std::uint64_t Rng::Next() { return generator_.Next(); }

double Rng::Uniform() { return generator_.NextDouble(); }

double Rng::Normal() {
  if (has_spare_) {
    has_spare_ = false;
    return spare_;
  }
  double u, v, s;
  do {
    u = 2 * Uniform() - 1;
    v = 2 * Uniform() - 1;
    s = u * u + v * v;
  } while (s >= 1 || s == 0);
  const double f = std::sqrt(-2 * std::log(s) / s);
  spare_ = v * f;
  has_spare_ = true;
  return u * f;
}

int FixedRateSource::CountDlts(int dose, int patients, Rng& rng) const {
  int dlts = 0;
  for (int i = 0; i < patients; ++i) dlts += rng.Uniform() < rates_[dose] ? 1 : 0;
  return dlts;
}

core::Status ValidateTrials(std::int64_t trials, std::string_view where) {
  if (trials < 1 || trials > kMaxEscalationTrials) {
    return core::InvalidArgument("trials must be in 1.." + std::to_string(kMaxEscalationTrials) +
                                     ", got " + std::to_string(trials),
                                 std::string(where));
  }
  return core::Status::Ok();
}

core::Status CheckSimulationWork(const codec::EscalationDesign& design, int ndose,
                                 std::int64_t trials, std::string_view where) {
  const std::string kind = Lower(design.design);
  const double per_trial = kind == "3+3" ? 6.0 * ndose : design.max_patients;
  if (static_cast<double>(trials) * per_trial > kMaxSimulatedPatients) {
    return core::InvalidArgument("trials x patients per trial exceeds " +
                                     domain::FormatNumber(kMaxSimulatedPatients) +
                                     "; use fewer trials",
                                 std::string(where));
  }
  if (kind == "crm" &&
      static_cast<double>(trials) * (design.max_patients / design.cohort_size) > kMaxCrmUpdates) {
    return core::InvalidArgument("trials x cohorts exceeds " +
                                     domain::FormatNumber(kMaxCrmUpdates) +
                                     " CRM posterior updates; use fewer trials or larger cohorts",
                                 std::string(where));
  }
  return core::Status::Ok();
}

core::Result<std::unique_ptr<DoseFinder>> MakeDoseFinder(const codec::EscalationDesign& design,
                                                         int ndose, std::string_view where) {
  const std::string w(where);
  const std::string kind = Lower(design.design);
  if (kind != "3+3" && kind != "boin" && kind != "crm") {
    return core::InvalidArgument("unknown design \"" + design.design + "\" (3+3, boin or crm)",
                                 w + ".design");
  }
  if (!InOpenUnit(design.target)) {
    return core::InvalidArgument(
        "target DLT rate must be in (0, 1), got " + domain::FormatNumber(design.target),
        w + ".target");
  }
  if (design.start_dose < 1 || design.start_dose > ndose) {
    return core::InvalidArgument("start dose must be a dose level in 1.." + std::to_string(ndose) +
                                     ", got " + std::to_string(design.start_dose),
                                 w + ".start_dose");
  }
  codec::EscalationDesign d = design;
  d.design = kind;
  if (kind == "3+3") {
    return std::unique_ptr<DoseFinder>(new ThreePlusThreeDesign(d, ndose));
  }
  if (design.cohort_size < 1) {
    return core::InvalidArgument(
        "cohort size must be >= 1, got " + std::to_string(design.cohort_size), w + ".cohort_size");
  }
  if (design.max_patients < 1 || design.max_patients % design.cohort_size != 0 ||
      design.max_patients > kMaxEscalationPatients) {
    return core::InvalidArgument(
        "max_patients must be a positive multiple of cohort_size, at most " +
            std::to_string(kMaxEscalationPatients) + ", got " + std::to_string(design.max_patients),
        w + ".max_patients");
  }
  if (kind == "boin") {
    if (design.extra_safe && !(design.elimination_cutoff > 0.05)) {
      return core::InvalidArgument("extrasafe needs an elimination cutoff above its 0.05 offset",
                                   w + ".elimination_cutoff");
    }
    // The full table (every n up to max_patients) drives the trial; the
    // answer shows it up to n.earlystop as get.boundary does.
    auto b = BoinBoundaryTable(design.target, design.max_patients, design.cohort_size, design.phi1,
                               design.phi2, design.elimination_cutoff, design.max_patients,
                               design.extra_safe ? 0.05 : 0.0);
    if (!b.ok()) {
      return core::InvalidArgument(b.status().message(), w + "." + b.status().where());
    }
    if (design.stop_at_n < 0) {
      return core::InvalidArgument("stop_at_n must be >= 0 (0 = 100)", w + ".stop_at_n");
    }
    return std::unique_ptr<DoseFinder>(new BoinDesign(d, ndose, std::move(*b)));
  }
  // crm
  if (!(design.prior_sd > 0 && design.prior_sd <= 10)) {
    return core::InvalidArgument(
        "prior_sd must be in (0, 10], got " + domain::FormatNumber(design.prior_sd),
        w + ".prior_sd");
  }
  if (!(design.overdose_probability > 0 && design.overdose_probability <= 1)) {
    return core::InvalidArgument("overdose_probability must be in (0, 1], got " +
                                     domain::FormatNumber(design.overdose_probability),
                                 w + ".overdose_probability");
  }
  std::vector<double> skeleton = design.skeleton;
  const bool generated = skeleton.empty();
  if (generated) {
    if (!(design.target > 0.05 && design.target < 0.95)) {
      return core::InvalidArgument(
          "the default skeleton (indifference half-width 0.05) needs target in (0.05, 0.95); give "
          "a skeleton",
          w + ".skeleton");
    }
    skeleton = DfcrmSkeleton(0.05, design.target, (ndose + 1) / 2, ndose);
  }
  if (static_cast<int>(skeleton.size()) != ndose) {
    return core::InvalidArgument("skeleton needs one entry per dose (" + std::to_string(ndose) +
                                     "), got " + std::to_string(skeleton.size()),
                                 w + ".skeleton");
  }
  for (int i = 0; i < ndose; ++i) {
    if (!InOpenUnit(skeleton[i]) || (i > 0 && !(skeleton[i] > skeleton[i - 1]))) {
      return core::InvalidArgument("skeleton must be strictly increasing in (0, 1), got " +
                                       domain::FormatNumber(skeleton[i]),
                                   w + ".skeleton[" + std::to_string(i) + "]");
    }
  }
  return std::unique_ptr<DoseFinder>(new CrmDesign(d, ndose, std::move(skeleton), generated));
}

codec::OperatingCharacteristics Simulate(const DoseFinder& finder, const OutcomeSource& source,
                                         const std::vector<double>& reference_tox, double target,
                                         int trials, std::uint64_t seed, SimulationExtras* extras) {
  const int ndose = static_cast<int>(reference_tox.size());
  std::vector<double> selected(ndose, 0), patients(ndose, 0), dlts(ndose, 0), reached(ndose, 0);
  double stopped = 0, highest = 0;
  for (int i = 0; i < trials; ++i) {
    Rng rng = Rng::ForTrial(seed, static_cast<std::uint64_t>(i));
    const TrialRecord r = finder.Run(source, rng);
    if (r.mtd < 0) {
      stopped += 1;
    } else {
      selected[r.mtd] += 1;
    }
    int top = 0;
    for (int d = 0; d < ndose; ++d) {
      patients[d] += r.patients[d];
      dlts[d] += r.dlts[d];
      if (r.patients[d] > 0) {
        reached[d] += 1;
        top = d + 1;
      }
    }
    highest += top;
  }
  codec::OperatingCharacteristics oc;
  oc.trials = trials;
  oc.seed = seed;
  double gap = INFINITY;
  for (double p : reference_tox) gap = std::min(gap, std::fabs(p - target));
  for (int d = 0; d < ndose; ++d) {
    oc.selection_pct.push_back(100.0 * selected[d] / trials);
    oc.patients_mean.push_back(patients[d] / trials);
    oc.dlt_mean.push_back(dlts[d] / trials);
    oc.patients_total_mean += patients[d] / trials;
    oc.dlt_total_mean += dlts[d] / trials;
    if (std::fabs(reference_tox[d] - target) <= gap + 1e-12) {
      oc.correct_selection_pct += 100.0 * selected[d] / trials;
    }
  }
  oc.early_stop_pct = 100.0 * stopped / trials;
  finder.Describe(oc);
  oc.working.notes.push_back(
      std::to_string(trials) + " simulated trials, seed " + std::to_string(seed) +
      " (trial i draws from xoshiro256** seeded by splitmix64 of (seed, i)); correct selection = "
      "the dose(s) whose true DLT rate is closest to the target " +
      domain::FormatNumber(target));
  if (extras != nullptr) {
    extras->reached_pct.clear();
    for (int d = 0; d < ndose; ++d) extras->reached_pct.push_back(100.0 * reached[d] / trials);
    extras->highest_dose_mean = highest / trials;
  }
  return oc;
}

core::Result<codec::OperatingCharacteristics> SimulateEscalation(
    const codec::SimulateEscalation& request) {
  const int ndose = static_cast<int>(request.true_tox.size());
  if (ndose < 1 || ndose > kMaxEscalationDoses) {
    return core::InvalidArgument("true_tox needs 1.." + std::to_string(kMaxEscalationDoses) +
                                     " doses, got " + std::to_string(ndose),
                                 "SimulateEscalation.true_tox");
  }
  for (int d = 0; d < ndose; ++d) {
    const double p = request.true_tox[d];
    const std::string where = "SimulateEscalation.true_tox[" + std::to_string(d) + "]";
    if (!(p >= 0 && p <= 1)) {
      return core::InvalidArgument(
          "true DLT rate must be in [0, 1], got " + domain::FormatNumber(p), where);
    }
    if (d > 0 && p < request.true_tox[d - 1]) {
      return core::InvalidArgument("true DLT rates must be non-decreasing with dose", where);
    }
  }
  FEDRX_RETURN_IF_ERROR(ValidateTrials(request.trials, "SimulateEscalation.trials"));
  FEDRX_ASSIGN_OR_RETURN(auto finder,
                         MakeDoseFinder(request.design, ndose, "SimulateEscalation.design"));
  FEDRX_RETURN_IF_ERROR(
      CheckSimulationWork(request.design, ndose, request.trials, "SimulateEscalation.trials"));
  const FixedRateSource source(request.true_tox);
  codec::OperatingCharacteristics oc = Simulate(
      *finder, source, request.true_tox, request.design.target, request.trials, request.seed);
  oc.design = Lower(request.design.design);
  return oc;
}

}  // namespace fedrx::trial
