#include "services/tox/tox_service.h"

#include <cmath>
#include <utility>

#include "services/core/keys.h"
#include "services/domain/working.h"
#include "services/serving/calibrated.h"

namespace fedrx::tox {
namespace {

using domain::FormatNumber;
using domain::Qty;

constexpr char kRequest[] = "PredictToxicity";
constexpr std::size_t kMaxStructuresLimit = 4096;

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

constexpr char kGuidance[] =
    "Read the domain flag first: a structure out of the applicability domain lies farther from "
    "the sites' training compounds than 99 % of their validation compounds, and its "
    "probabilities are extrapolations. A prediction set of one label is a call at the requested "
    "confidence (the true label is excluded with probability at most 1 - confidence, "
    "separately for actives and inactives); \"both\" means the model cannot decide at that "
    "confidence; \"empty\" means the structure scores unlike the calibration compounds of "
    "either class. Probabilities are the federated model's own outputs, not calibrated "
    "frequencies.";

// The working: the formulas, with the first answered structure's first task
// and its domain assessment worked through from the calibration counts.
void Explain(const serving::CalibratedBatch& batch, const codec::PredictToxicity& request,
             double confidence, codec::Working& w) {
  domain::WorkingBuilder wb(&w);
  w.guidance = kGuidance;
  const serving::ServedModel& model = *batch.model;
  const serving::ServedCalibration* c = model.calibration.get();
  w.method = batch.provenance.method;
  wb.Note("model: study '" + model.study + "' version " + std::to_string(model.version) +
          ", preparation " + model.preparation_hash);
  if (!c) {
    wb.Note("no conformal calibration for this model version (" + model.uncalibrated_reason +
            "): p-values are 0, every prediction set is \"both\", the domain is not assessed");
    return;
  }
  const codec::StructurePrediction* first = nullptr;
  std::size_t first_index = 0;
  for (std::size_t i = 0; i < batch.results.size(); ++i) {
    if (batch.results[i].error_code.empty() && !batch.results[i].tasks.empty()) {
      first = &batch.results[i];
      first_index = i;
      break;
    }
  }
  if (first) {
    const codec::TaskPrediction& t = first->tasks[0];
    std::size_t column = 0;
    while (column < model.tasks().size() && model.tasks()[column] != t.task) ++column;
    const std::string who = "smiles[" + std::to_string(first_index) + "], " + t.task;
    if (column < c->tasks.size() && c->tasks[column]) {
      const serving::MondrianCalibration& m = *c->tasks[column];
      const core::Result<serving::MondrianCalibration::Counts> n = m.CountsAt(t.probability);
      const std::size_t bin = serving::ScoreBin(t.probability, m.bins());
      const std::vector<codec::Quantity> where_in_bins = {
          Qty("probability s", t.probability), Qty("bins B", static_cast<double>(m.bins())),
          Qty("bin b = floor(s·B)", static_cast<double>(bin))};
      if (n.ok()) {
        auto in = where_in_bins;
        in.push_back(Qty("positives in bins ≤ b", static_cast<double>(n->positives_at_or_below)));
        in.push_back(Qty("positives n₁", static_cast<double>(m.positives())));
        wb.Step("p-value of 'positive' (" + who + ")",
                "p₁ = (#calibration positives in bins ≤ b + 1) / (n₁ + 1); nonconformity 1 − s, "
                "the test row's bin counted as at least as nonconforming",
                std::move(in), Qty("p_positive", t.p_positive),
                "Mondrian inductive conformal prediction (Vovk et al., Algorithmic Learning in a "
                "Random World, 2005)");
        in = where_in_bins;
        in.push_back(Qty("negatives in bins ≥ b", static_cast<double>(n->negatives_at_or_above)));
        in.push_back(Qty("negatives n₀", static_cast<double>(m.negatives())));
        wb.Step("p-value of 'negative' (" + who + ")",
                "p₀ = (#calibration negatives in bins ≥ b + 1) / (n₀ + 1); nonconformity s",
                std::move(in), Qty("p_negative", t.p_negative), "the same, class-conditional");
      }
      wb.Step("prediction set (" + who + ")",
              "labels whose p-value > 1 − confidence (" + FormatNumber(1 - confidence) +
                  "): " + t.prediction_set,
              {Qty("p_negative", t.p_negative), Qty("p_positive", t.p_positive),
               Qty("confidence", confidence)},
              Qty("credibility = max p", t.credibility),
              "confidence of the call = 1 − min p = " + FormatNumber(t.confidence));
    }
    if (c->reference) {
      const std::size_t units = c->reference->mean.size();
      wb.Step("domain score (smiles[" + std::to_string(first_index) + "])",
              "u = d / (1 + d), d = sqrt(mean_k ((e_k − mean_k) / scale_k)²) over the trunk's "
              "last hidden layer e",
              {Qty("units", static_cast<double>(units))}, Qty("u", first->domain.score),
              "mean and scale from the sites' summed embedding moments of their training rows");
      if (c->domain) {
        const double rows = static_cast<double>(c->domain->rows());
        const double at_or_above = std::round(first->domain.p_value * (rows + 1)) - 1;
        wb.Step("domain p-value (smiles[" + std::to_string(first_index) + "])",
                "p = (#validation rows with u in bins ≥ bin(u) + 1) / (n + 1); out of domain "
                "when p < " +
                    FormatNumber(serving::kOutOfDomainPValue),
                {Qty("u", first->domain.score), Qty("rows at least as far", at_or_above),
                 Qty("validation rows n", rows)},
                Qty("p_domain", first->domain.p_value),
                first->domain.in_domain ? "in domain" : "out of domain");
      }
    }
  }
  std::size_t refused = 0, out = 0;
  for (const codec::StructurePrediction& s : batch.results) {
    if (!s.error_code.empty()) {
      ++refused;
    } else if (s.domain.calibrated && !s.domain.in_domain) {
      ++out;
    }
  }
  wb.Note(std::to_string(batch.results.size()) + " structures: " + std::to_string(refused) +
          " refused, " + std::to_string(out) + " out of the applicability domain");
  if (request.tasks.empty()) wb.Note("all " + std::to_string(batch.tasks.size()) + " tasks");
}

}  // namespace

core::Result<std::map<std::string, std::string>> ParsePanels(std::string_view text,
                                                             const std::string& where) {
  std::map<std::string, std::string> out;
  std::size_t begin = 0;
  while (begin <= text.size()) {
    std::size_t end = text.find(',', begin);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view item = Trim(text.substr(begin, end - begin));
    begin = end + 1;
    if (item.empty()) continue;
    const std::size_t eq = item.find('=');
    if (eq == std::string_view::npos) {
      return core::InvalidArgument("panel '" + std::string(item) + "' needs the form name=study",
                                   where);
    }
    const std::string name(Trim(item.substr(0, eq)));
    const std::string study(Trim(item.substr(eq + 1)));
    if (name.empty()) return core::InvalidArgument("a panel has no name", where);
    FEDRX_RETURN_IF_ERROR(core::ValidateId(study, where + " (" + name + ")"));
    if (!out.emplace(name, study).second) {
      return core::InvalidArgument("panel '" + name + "' is listed twice", where);
    }
  }
  if (out.empty()) return core::InvalidArgument("no panels", where);
  return out;
}

core::Result<ToxOptions> ToxOptionsFrom(const core::Config& config) {
  ToxOptions o;
  FEDRX_ASSIGN_OR_RETURN(
      o.panels, ParsePanels(config.StringOr("tox.panels", "tox21=tox21-demo"), "tox.panels"));
  const std::string fallback = o.panels.count("tox21") ? "tox21" : o.panels.begin()->first;
  o.default_panel = config.StringOr("tox.default_panel", fallback);
  FEDRX_ASSIGN_OR_RETURN(
      std::int64_t max,
      config.IntOr("tox.max_structures", 1000, 1, static_cast<std::int64_t>(kMaxStructuresLimit)));
  o.max_structures = static_cast<std::size_t>(max);
  return o;
}

core::Result<std::unique_ptr<ToxHandler>> ToxHandler::Create(ToxOptions options,
                                                             const serving::ModelServer& server,
                                                             core::Metrics& metrics) {
  if (options.panels.empty()) return core::InvalidArgument("no panels", "tox.panels");
  if (!options.panels.count(options.default_panel)) {
    return core::InvalidArgument("default panel '" + options.default_panel + "' is not a panel",
                                 "tox.default_panel");
  }
  if (options.max_structures < 1 || options.max_structures > kMaxStructuresLimit) {
    return core::InvalidArgument("must be in [1, " + std::to_string(kMaxStructuresLimit) + "]",
                                 "tox.max_structures");
  }
  const std::vector<std::string>& served = server.options().studies;
  for (const auto& [panel, study] : options.panels) {
    if (std::find(served.begin(), served.end(), study) == served.end()) {
      return core::InvalidArgument("panel '" + panel + "' names study '" + study +
                                       "', which the model server does not serve",
                                   "tox.panels");
    }
  }
  return std::unique_ptr<ToxHandler>(new ToxHandler(std::move(options), server, metrics));
}

ToxHandler::ToxHandler(ToxOptions options, const serving::ModelServer& server,
                       core::Metrics& metrics)
    : options_(std::move(options)), server_(server) {
  constexpr char kHelp[] = "Structures answered, by panel and applicability domain";
  for (const auto& [panel, study] : options_.panels) {
    PanelMetrics& m = metrics_[panel];
    m.in = metrics.Counter("structures_total", kHelp, {{"panel", panel}, {"domain", "in"}});
    m.out = metrics.Counter("structures_total", kHelp, {{"panel", panel}, {"domain", "out"}});
    m.unassessed =
        metrics.Counter("structures_total", kHelp, {{"panel", panel}, {"domain", "unassessed"}});
    m.refused =
        metrics.Counter("structures_total", kHelp, {{"panel", panel}, {"domain", "refused"}});
  }
}

core::Result<codec::ToxicityPanel> ToxHandler::Predict(const codec::PredictToxicity& r) const {
  const std::string panel = r.panel.empty() ? options_.default_panel : r.panel;
  const auto it = options_.panels.find(panel);
  if (it == options_.panels.end()) {
    std::string known;
    for (const auto& [name, study] : options_.panels) known += (known.empty() ? "" : ", ") + name;
    return core::InvalidArgument(
        "unknown panel '" + panel + "' (this service answers: " + known + ")",
        std::string(kRequest) + ".panel");
  }
  if (r.smiles.empty()) {
    return core::InvalidArgument("no structures", std::string(kRequest) + ".smiles");
  }
  if (r.smiles.size() > options_.max_structures) {
    return core::InvalidArgument(std::to_string(r.smiles.size()) + " structures; at most " +
                                     std::to_string(options_.max_structures) +
                                     " per request (split the list)",
                                 std::string(kRequest) + ".smiles");
  }
  FEDRX_ASSIGN_OR_RETURN(
      serving::CalibratedBatch batch,
      serving::PredictCalibrated(server_, it->second, r.smiles, r.tasks, r.confidence, kRequest));
  codec::ToxicityPanel out;
  out.panel = panel;
  out.model = batch.provenance;
  out.confidence = r.confidence;
  out.tasks = batch.tasks;
  Explain(batch, r, r.confidence, out.working);
  out.results = std::move(batch.results);
  const PanelMetrics& m = metrics_.at(panel);
  for (const codec::StructurePrediction& s : out.results) {
    if (!s.error_code.empty()) {
      m.refused.Inc();
    } else if (!s.domain.calibrated) {
      m.unassessed.Inc();
    } else {
      (s.domain.in_domain ? m.in : m.out).Inc();
    }
  }
  return out;
}

}  // namespace fedrx::tox
