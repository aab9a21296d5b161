#include "services/trial/virtual_trial.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "services/domain/working.h"
#include "services/translational/pk.h"
#include "services/trial/escalation.h"

namespace fedrx::trial {
namespace {

bool PositiveFinite(double v) { return std::isfinite(v) && v > 0; }

// R's default (type 7) quantile of sorted data.
double Quantile(const std::vector<double>& sorted, double q) {
  const double h = (sorted.size() - 1) * q;
  const std::size_t lo = static_cast<std::size_t>(std::floor(h));
  const std::size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
}

struct ExposureCurves {
  double tox_auc50, tox_hill, response_auc50, response_hill, response_emax;
  double PDlt(double auc) const { return 1 / (1 + std::pow(tox_auc50 / auc, tox_hill)); }
  double PResponse(double auc) const {
    const double a = std::pow(auc, response_hill);
    return response_emax * a / (std::pow(response_auc50, response_hill) + a);
  }
};

// One subject's PK parameters: CL, V and (oral) ka each times exp(omega z).
codec::PkModel DrawSubject(const codec::PkModel& typical, double omega, Rng& rng) {
  codec::PkModel m = typical;
  m.cl_l_per_h *= std::exp(omega * rng.Normal());
  m.v_l *= std::exp(omega * rng.Normal());
  if (m.kind == "oral_1cmt") m.ka_per_h *= std::exp(omega * rng.Normal());
  return m;
}

// Each new patient at dose d draws their own PK and then a DLT with their own
// P(DLT | AUC).
class VirtualPatientSource final : public OutcomeSource {
 public:
  VirtualPatientSource(codec::PkModel typical, double omega, std::vector<double> doses,
                       ExposureCurves curves)
      : typical_(std::move(typical)), omega_(omega), doses_(std::move(doses)), curves_(curves) {}

  int CountDlts(int dose, int patients, Rng& rng) const override {
    int dlts = 0;
    for (int i = 0; i < patients; ++i) {
      const codec::PkModel m = DrawSubject(typical_, omega_, rng);
      const double p = curves_.PDlt(translational::AucInf(m, doses_[dose]));
      dlts += rng.Uniform() < p ? 1 : 0;
    }
    return dlts;
  }

 private:
  codec::PkModel typical_;
  double omega_;
  std::vector<double> doses_;
  ExposureCurves curves_;
};

}  // namespace

core::Result<codec::VirtualTrialResult> RunVirtualTrial(const codec::RunVirtualTrial& r) {
  FEDRX_RETURN_IF_ERROR(translational::ValidatePkModel(r.model, "RunVirtualTrial.model"));
  if (!(std::isfinite(r.bsv_cv) && r.bsv_cv >= 0 && r.bsv_cv <= 10)) {
    return core::InvalidArgument(
        "bsv_cv must be in [0, 10], got " + domain::FormatNumber(r.bsv_cv, 4),
        "RunVirtualTrial.bsv_cv");
  }
  std::vector<double> doses = r.dose_mg;
  const bool default_doses = doses.empty();
  if (default_doses) {
    if (!PositiveFinite(r.start_dose_mg)) {
      return core::InvalidArgument(
          "start_dose_mg (the MRSD in mg) must be finite and > 0 when dose_mg is empty, got " +
              domain::FormatNumber(r.start_dose_mg, 4),
          "RunVirtualTrial.start_dose_mg");
    }
    for (double k : kDefaultDoseMultiples) doses.push_back(r.start_dose_mg * k);
  }
  if (static_cast<int>(doses.size()) > kMaxEscalationDoses) {
    return core::InvalidArgument("at most " + std::to_string(kMaxEscalationDoses) + " dose levels",
                                 "RunVirtualTrial.dose_mg");
  }
  for (std::size_t i = 0; i < doses.size(); ++i) {
    if (!PositiveFinite(doses[i]) || (i > 0 && !(doses[i] > doses[i - 1]))) {
      return core::InvalidArgument("dose levels must be finite, > 0 and increasing",
                                   "RunVirtualTrial.dose_mg[" + std::to_string(i) + "]");
    }
  }
  const std::pair<double, const char*> positives[] = {{r.tox_auc50, "tox_auc50"},
                                                      {r.tox_hill, "tox_hill"},
                                                      {r.response_auc50, "response_auc50"},
                                                      {r.response_hill, "response_hill"}};
  for (const auto& [v, field] : positives) {
    if (!PositiveFinite(v)) {
      return core::InvalidArgument(
          std::string(field) + " must be finite and > 0, got " + domain::FormatNumber(v, 4),
          std::string("RunVirtualTrial.") + field);
    }
  }
  if (!(r.response_emax >= 0 && r.response_emax <= 1)) {
    return core::InvalidArgument(
        "response_emax must be in [0, 1], got " + domain::FormatNumber(r.response_emax, 4),
        "RunVirtualTrial.response_emax");
  }
  FEDRX_RETURN_IF_ERROR(ValidateTrials(r.trials, "RunVirtualTrial.trials"));
  if (r.population < 1 || r.population > kMaxPopulation) {
    return core::InvalidArgument("population must be in 1.." + std::to_string(kMaxPopulation),
                                 "RunVirtualTrial.population");
  }
  const int ndose = static_cast<int>(doses.size());
  FEDRX_ASSIGN_OR_RETURN(auto finder, MakeDoseFinder(r.design, ndose, "RunVirtualTrial.design"));
  FEDRX_RETURN_IF_ERROR(CheckSimulationWork(r.design, ndose, r.trials, "RunVirtualTrial.trials"));

  const double omega = std::sqrt(std::log1p(r.bsv_cv * r.bsv_cv));
  const ExposureCurves curves{r.tox_auc50, r.tox_hill, r.response_auc50, r.response_hill,
                              r.response_emax};

  // The population: one set of subjects, seen at every dose level. Its
  // stream is apart from every trial's (trial indices stay below 2^63).
  codec::VirtualTrialResult out;
  out.dose_mg = doses;
  std::vector<codec::PkModel> subjects;
  subjects.reserve(r.population);
  Rng pop_rng = Rng::ForTrial(r.seed, ~std::uint64_t{0});
  for (int i = 0; i < r.population; ++i) subjects.push_back(DrawSubject(r.model, omega, pop_rng));
  std::vector<double> auc(r.population);
  for (int d = 0; d < ndose; ++d) {
    double sum_dlt = 0, sum_resp = 0;
    for (int i = 0; i < r.population; ++i) {
      auc[i] = translational::AucInf(subjects[i], doses[d]);
      sum_dlt += curves.PDlt(auc[i]);
      sum_resp += curves.PResponse(auc[i]);
    }
    std::sort(auc.begin(), auc.end());
    out.auc_median.push_back(Quantile(auc, 0.5));
    out.auc_p05.push_back(Quantile(auc, 0.05));
    out.auc_p95.push_back(Quantile(auc, 0.95));
    out.p_dlt.push_back(sum_dlt / r.population);
    out.p_response.push_back(sum_resp / r.population);
  }

  const VirtualPatientSource source(r.model, omega, doses, curves);
  SimulationExtras extras;
  out.oc = Simulate(*finder, source, out.p_dlt, r.design.target, r.trials, r.seed, &extras);
  std::string design = r.design.design;
  for (char& c : design) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  out.oc.design = design;

  codec::Working& w = out.working;
  w.method =
      "virtual trial: log-normal between-subject variability on CL, V (and ka), AUC(0-inf) = "
      "F Dose / CL per subject, logistic exposure-toxicity and Emax exposure-response on AUC, "
      "and a " +
      design + " escalation whose patients draw their own exposure and DLT";
  w.guidance =
      "FDA (2005) Estimating the Maximum Safe Starting Dose in Initial Clinical Trials for "
      "Therapeutics in Adult Healthy Volunteers (start dose); escalation design as in oc.working";
  w.steps.push_back({"between-subject variance",
                     "omega^2 = ln(1 + CV^2)",
                     {{"bsv_cv", r.bsv_cv, ""}},
                     {"omega", omega, "log scale SD"},
                     "log-normal variability"});
  for (int d = 0; d < ndose; ++d) {
    const std::string level = "dose " + std::to_string(d + 1);
    w.steps.push_back({level + " median AUC",
                       "median over subjects of F Dose / CL_i",
                       {{"dose", doses[d], "mg"}, {"cl_l_per_h", r.model.cl_l_per_h, "L/h"}},
                       {"auc_median", out.auc_median[d], "mg·h/L"},
                       "AucInf"});
    w.steps.push_back({level + " P(DLT)",
                       "mean over subjects of 1 / (1 + (AUC50 / AUC_i)^hill)",
                       {{"dose", doses[d], "mg"},
                        {"tox_auc50", r.tox_auc50, "mg·h/L"},
                        {"tox_hill", r.tox_hill, ""}},
                       {"p_dlt", out.p_dlt[d], "probability"},
                       "exposure-toxicity"});
    w.steps.push_back({level + " P(response)",
                       "mean over subjects of Emax AUC_i^h / (AUC50^h + AUC_i^h)",
                       {{"dose", doses[d], "mg"},
                        {"response_auc50", r.response_auc50, "mg·h/L"},
                        {"response_hill", r.response_hill, ""},
                        {"response_emax", r.response_emax, "probability"}},
                       {"p_response", out.p_response[d], "probability"},
                       "exposure-response"});
  }
  if (default_doses) {
    w.notes.push_back("dose levels: start dose " + domain::FormatNumber(r.start_dose_mg, 4) +
                      " mg x modified Fibonacci {1, 2, 3.3, 5, 7}");
  }
  w.notes.push_back("typical PK values are population medians; " + std::to_string(r.population) +
                    " simulated subjects per dose (the same subjects at every dose)");
  // What a first-in-human trial starting at the first level would likely see.
  int most = 0;
  for (int d = 1; d < ndose; ++d) {
    if (out.oc.selection_pct[d] > out.oc.selection_pct[most]) most = d;
  }
  std::string reach;
  for (int d = 0; d < ndose; ++d) {
    reach += (d ? ", " : "") + domain::FormatNumber(doses[d], 4) + " mg " +
             domain::FormatNumber(extras.reached_pct[d], 4) + "%";
  }
  w.notes.push_back(
      "first-in-human outlook: P(DLT) at the start dose " + domain::FormatNumber(doses[0], 4) +
      " mg is " + domain::FormatNumber(out.p_dlt[0], 4) + " (P(response) " +
      domain::FormatNumber(out.p_response[0], 4) + "); trials treating each level: " + reach +
      "; mean highest level reached " + domain::FormatNumber(extras.highest_dose_mean, 4) + " of " +
      std::to_string(ndose) + "; most often selected MTD " + domain::FormatNumber(doses[most], 4) +
      " mg (" + domain::FormatNumber(out.oc.selection_pct[most], 4) + "% of trials), no MTD in " +
      domain::FormatNumber(out.oc.early_stop_pct, 4) + "%; mean " +
      domain::FormatNumber(out.oc.patients_total_mean, 4) + " patients and " +
      domain::FormatNumber(out.oc.dlt_total_mean, 4) + " DLTs per trial");
  int above = -1;
  for (int d = 0; d < ndose; ++d) {
    if (out.p_dlt[d] > r.design.target) {
      above = d;
      break;
    }
  }
  w.notes.push_back(above < 0 ? "no dose level's population P(DLT) exceeds the target " +
                                    domain::FormatNumber(r.design.target, 4) +
                                    ": the MTD may lie above the range"
                              : "first level with population P(DLT) above the target: " +
                                    domain::FormatNumber(doses[above], 4) + " mg");
  return out;
}

}  // namespace fedrx::trial
