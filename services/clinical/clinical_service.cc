#include "services/clinical/clinical_service.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "services/clinical/base_rates.h"
#include "services/core/keys.h"
#include "services/domain/working.h"
#include "services/serving/calibrated.h"

namespace fedrx::clinical {
namespace {

using domain::FormatNumber;
using domain::Qty;

constexpr char kRequest[] = "AssessClinical";
constexpr std::size_t kMaxStructuresLimit = 4096;

constexpr char kMethod[] =
    "Phase-transition success: published base rates by therapeutic area (BIO, Informa Pharma "
    "Intelligence and QLS Advisors, Clinical Development Success Rates 2011-2020) adjusted by "
    "the structure's predicted clinical-toxicity risk (the federated ClinTox model's CT_TOX "
    "probability r) with a Bayes-odds update: LR(r) = P(r | approved) / P(r | failed) estimated "
    "from the CT_TOX score histogram of the sites' validation folds (summed by the platform; "
    "CT_TOX 0 read as approved, 1 as failed), binned and made monotone by "
    "pool-adjacent-violators; its log is split over the transitions by their expected safety "
    "failures (Tufts CSDD shares 1/3, 17 %, 1/3, 0) and added to each transition's logit.";

constexpr char kGuidance[] =
    "Read the domain flag and the CT_TOX prediction set first: out of domain, or a set of "
    "\"both\", means the risk, and so the adjustment, rests on an extrapolation. The adjusted "
    "rates are the base rates of an average programme in the area moved by one piece of "
    "evidence (the structure's predicted clinical-toxicity risk); they say nothing about "
    "efficacy, and the evidence is only as good as the ClinTox model's discrimination "
    "(see `fedrx-lab clinical-evaluate`).";

// The study's output index of `task`, or its tasks' count.
std::size_t TaskIndex(const serving::ServedModel& model, const std::string& task) {
  const auto& tasks = model.tasks();
  return static_cast<std::size_t>(std::find(tasks.begin(), tasks.end(), task) - tasks.begin());
}

// The likelihood ratio of the served version, or the neutral one with why.
LikelihoodRatioModel RatioOf(const serving::ServedModel& model, int bins, codec::Working& w) {
  domain::WorkingBuilder wb(&w);
  const std::size_t column = TaskIndex(model, kRiskTask);
  const serving::ServedCalibration* c = model.calibration.get();
  if (c == nullptr || column >= c->tasks.size() || !c->tasks[column].has_value()) {
    wb.Note("no CT_TOX calibration histogram for model version " + std::to_string(model.version) +
            (c == nullptr ? " (" + model.uncalibrated_reason + ")" : std::string()) +
            ": likelihood ratio 1, the base rates are returned unadjusted");
    return LikelihoodRatioModel::Neutral();
  }
  HistogramLrOptions options;
  options.bins = bins;
  Working steps;
  core::Result<LikelihoodRatioModel> lr =
      EstimateLikelihoodRatioFromHistogram(HistogramOf(*c->tasks[column]), options, &steps);
  if (!lr.ok()) {
    wb.Note("the CT_TOX calibration histogram of version " + std::to_string(c->version) +
            " gives no likelihood ratio (" + lr.status().message() +
            "): likelihood ratio 1, the base rates are returned unadjusted");
    return LikelihoodRatioModel::Neutral();
  }
  for (const WorkingStep& s : steps) {
    std::vector<codec::Quantity> in;
    for (const NamedValue& v : s.values) in.push_back(Qty(v.name, v.value));
    codec::Quantity result = in.empty() ? Qty("", 0) : in.back();
    if (!in.empty()) in.pop_back();
    wb.Step(s.what, s.formula, std::move(in), std::move(result),
            "CT_TOX score histogram of the sites' validation folds, model version " +
                std::to_string(c->version) + " (" + std::to_string(c->samples) + " rows)");
  }
  return *lr;
}

void AddBaseRates(const BaseRates& base, codec::Working& w) {
  domain::WorkingBuilder wb(&w);
  for (int k = 0; k < kTransitionCount; ++k) {
    if (!base.transition[k]) continue;
    wb.Step(std::string("base rate ") + TransitionName(Transition(k)) + " (" + base.area + ")",
            "published probability of success of the transition", {},
            Qty("p_" + std::string(TransitionName(Transition(k))), *base.transition[k]),
            base.source);
  }
  if (base.loa_from_phase1) {
    wb.Step("base likelihood of approval from Phase I (" + base.area + ")",
            "as the report states it (rounded)", {}, Qty("LOA", *base.loa_from_phase1),
            base.source);
  }
  if (!base.HasAllTransitions()) {
    wb.Note("no per-transition figure is confirmed for '" + base.area +
            "' (only its LOA from Phase I): the LOA is adjusted as a whole, logit LOA' = logit "
            "LOA + log LR(r), and no transitions are listed");
  }
}

// One structure's success at risk `risk` through `lr`.
core::Result<codec::ClinicalSuccess> Success(const BaseRates& base, const LikelihoodRatioModel& lr,
                                             double risk) {
  codec::ClinicalSuccess s;
  s.therapeutic_area = base.area;
  s.risk = risk;
  s.source = base.source;
  if (base.HasAllTransitions()) {
    FEDRX_ASSIGN_OR_RETURN(AdjustedRates a, AdjustForRisk(base, lr, risk));
    s.log_likelihood_ratio = a.log_lr;
    for (int k = 0; k < kTransitionCount; ++k) {
      s.transitions.push_back(codec::PhaseTransition{TransitionName(Transition(k)), a.base[k],
                                                     a.adjusted[k], a.weight[k]});
    }
    s.base_likelihood_of_approval = a.base_loa;
    s.adjusted_likelihood_of_approval = a.adjusted_loa;
    return s;
  }
  FEDRX_RETURN_IF_ERROR(CheckRisk(risk, "risk"));
  const double p = *base.loa_from_phase1;
  s.log_likelihood_ratio = lr.LogLr(risk);
  s.base_likelihood_of_approval = p;
  s.adjusted_likelihood_of_approval =
      std::clamp(Sigmoid(Logit(p) + s.log_likelihood_ratio), 1e-9, 1.0 - 1e-9);
  return s;
}

}  // namespace

ml::ScoreHistogram HistogramOf(const serving::MondrianCalibration& calibration) {
  const std::size_t bins = calibration.bins();
  ml::ScoreHistogram h;
  h.pos.assign(bins, 0);
  h.neg.assign(bins, 0);
  std::uint64_t pos_below = 0;
  std::vector<std::uint64_t> neg_above(bins + 1, 0);
  for (std::size_t b = 0; b < bins; ++b) {
    // The bin's midpoint lands in bin b (ScoreBin's floor(s B)).
    const auto counts = calibration.CountsAt((static_cast<double>(b) + 0.5) / bins);
    if (!counts.ok()) continue;
    h.pos[b] = counts->positives_at_or_below - pos_below;
    pos_below = counts->positives_at_or_below;
    neg_above[b] = counts->negatives_at_or_above;
  }
  for (std::size_t b = 0; b < bins; ++b) h.neg[b] = neg_above[b] - neg_above[b + 1];
  return h;
}

core::Result<ClinicalOptions> ClinicalOptionsFrom(const core::Config& config) {
  ClinicalOptions o;
  o.study = config.StringOr("clinical.study", o.study);
  FEDRX_RETURN_IF_ERROR(core::ValidateId(o.study, "clinical.study"));
  o.side_effect_study = config.StringOr("clinical.side_effect_study", "");
  if (!o.side_effect_study.empty()) {
    FEDRX_RETURN_IF_ERROR(core::ValidateId(o.side_effect_study, "clinical.side_effect_study"));
  }
  FEDRX_ASSIGN_OR_RETURN(std::int64_t max,
                         config.IntOr("clinical.max_structures", 1000, 1,
                                      static_cast<std::int64_t>(kMaxStructuresLimit)));
  o.max_structures = static_cast<std::size_t>(max);
  FEDRX_ASSIGN_OR_RETURN(std::int64_t bins, config.IntOr("clinical.lr_bins", 5, 2, 100));
  o.lr_bins = static_cast<int>(bins);
  return o;
}

core::Result<std::unique_ptr<ClinicalHandler>> ClinicalHandler::Create(
    ClinicalOptions options, const serving::ModelServer& server, core::Metrics& metrics) {
  if (options.max_structures < 1 || options.max_structures > kMaxStructuresLimit) {
    return core::InvalidArgument("must be in [1, " + std::to_string(kMaxStructuresLimit) + "]",
                                 "clinical.max_structures");
  }
  if (options.lr_bins < 2 || options.lr_bins > 100) {
    return core::InvalidArgument("must be in [2, 100]", "clinical.lr_bins");
  }
  const std::vector<std::string>& served = server.options().studies;
  for (const std::string* study : {&options.study, &options.side_effect_study}) {
    if (!study->empty() && std::find(served.begin(), served.end(), *study) == served.end()) {
      return core::InvalidArgument(
          "study '" + *study + "' is not served by the model server",
          study == &options.study ? "clinical.study" : "clinical.side_effect_study");
    }
  }
  return std::unique_ptr<ClinicalHandler>(new ClinicalHandler(std::move(options), server, metrics));
}

ClinicalHandler::ClinicalHandler(ClinicalOptions options, const serving::ModelServer& server,
                                 core::Metrics& metrics)
    : options_(std::move(options)), server_(server) {
  constexpr char kHelp[] = "Structures answered, by applicability domain";
  in_ = metrics.Counter("structures_total", kHelp, {{"domain", "in"}});
  out_ = metrics.Counter("structures_total", kHelp, {{"domain", "out"}});
  unassessed_ = metrics.Counter("structures_total", kHelp, {{"domain", "unassessed"}});
  refused_ = metrics.Counter("structures_total", kHelp, {{"domain", "refused"}});
}

core::Result<codec::ClinicalAssessment> ClinicalHandler::Assess(
    const codec::AssessClinical& r) const {
  const std::string request = kRequest;
  FEDRX_ASSIGN_OR_RETURN(
      BaseRates base,
      LookupBaseRates(r.therapeutic_area.empty() ? "all_indications" : r.therapeutic_area,
                      request + ".therapeutic_area"));
  FEDRX_RETURN_IF_ERROR(serving::ValidateConfidence(r.confidence, request + ".confidence"));
  if (r.smiles.empty()) return core::InvalidArgument("no structures", request + ".smiles");
  if (r.smiles.size() > options_.max_structures) {
    return core::InvalidArgument(std::to_string(r.smiles.size()) + " structures; at most " +
                                     std::to_string(options_.max_structures) +
                                     " per request (split the list)",
                                 request + ".smiles");
  }
  // One snapshot answers the whole request, even across a model switch.
  FEDRX_ASSIGN_OR_RETURN(std::shared_ptr<const serving::ServedModel> model,
                         server_.Current(options_.study));
  for (const char* task : {kRiskTask, kApprovalTask}) {
    if (TaskIndex(*model, task) == model->tasks().size()) {
      return core::FailedPrecondition("study '" + options_.study + "' has no task " + task +
                                          " (clinical.study must name a " + "ClinTox study)",
                                      "clinical.study");
    }
  }
  const serving::ServingOptions& serving = server_.options();
  FEDRX_ASSIGN_OR_RETURN(
      serving::CalibratedBatch batch,
      serving::PredictCalibratedWith(model, r.smiles, {kRiskTask, kApprovalTask}, r.confidence,
                                     request, serving.max_batch, serving.threads));

  codec::ClinicalAssessment out;
  out.model = batch.provenance;
  out.confidence = r.confidence;
  out.working.method = kMethod;
  out.working.guidance = kGuidance;
  domain::WorkingBuilder wb(&out.working);
  wb.Note("ClinTox model: study '" + model->study + "' version " + std::to_string(model->version) +
          "; " + batch.provenance.method);
  const LikelihoodRatioModel lr = RatioOf(*model, options_.lr_bins, out.working);
  AddBaseRates(base, out.working);

  out.success.resize(batch.results.size());
  for (std::size_t i = 0; i < batch.results.size(); ++i) {
    codec::StructurePrediction& s = batch.results[i];
    if (!s.error_code.empty()) {
      refused_.Inc();
      continue;
    }
    (!s.domain.calibrated ? unassessed_ : s.domain.in_domain ? in_ : out_).Inc();
    const auto risk_it =
        std::find_if(s.tasks.begin(), s.tasks.end(),
                     [](const codec::TaskPrediction& t) { return t.task == kRiskTask; });
    const double risk = risk_it == s.tasks.end() ? std::nan("") : risk_it->probability;
    core::Result<codec::ClinicalSuccess> success = Success(base, lr, risk);
    if (!success.ok()) {
      // Only a non-numeric model output gets here: refuse the structure, not the request.
      s.error_code = core::StatusCodeName(core::StatusCode::kInternal);
      s.error = "no phase-transition success: " + success.status().message();
      s.error_where = "smiles[" + std::to_string(i) + "]";
      continue;
    }
    out.success[i] = std::move(*success);
    const codec::ClinicalSuccess& c = out.success[i];
    wb.Step("smiles[" + std::to_string(i) + "]: likelihood of approval adjusted by its CT_TOX risk",
            c.transitions.empty()
                ? "logit LOA' = logit LOA + log LR(r)"
                : "logit p'_k = logit p_k + w_k log LR(r); LOA' = product of p'_k",
            {Qty("risk r (CT_TOX probability)", c.risk), Qty("log LR(r)", c.log_likelihood_ratio),
             Qty("base LOA", c.base_likelihood_of_approval)},
            Qty("adjusted LOA", c.adjusted_likelihood_of_approval), base.source);
  }
  out.clinical = std::move(batch.results);

  if (options_.side_effect_study.empty()) {
    out.side_effects_unavailable = kNoSideEffectStudy;
  } else {
    core::Result<serving::CalibratedBatch> effects = serving::PredictCalibrated(
        server_, options_.side_effect_study, r.smiles, {}, r.confidence, request);
    if (effects.ok()) {
      out.side_effect_model = effects->provenance;
      out.side_effects = std::move(effects->results);
    } else {
      out.side_effects_unavailable = "side-effect study '" + options_.side_effect_study +
                                     "' cannot answer: " + effects.status().message();
    }
  }
  return out;
}

}  // namespace fedrx::clinical
