#include "services/cli/clinical_command.h"

#include <iomanip>
#include <nlohmann/json.hpp>
#include <ostream>
#include <sstream>

#include "services/cli/design_json.h"
#include "services/cli/tox_command.h"

namespace fedrx::cli {
namespace {

using nlohmann::json;

// Many structures take longer than the default 5 s question.
constexpr std::chrono::milliseconds kAssessTimeout{60000};

std::string Percent(double p) { return FixedText(100 * p, 1) + "%"; }

void Print(const codec::ClinicalAssessment& a, std::ostream& out) {
  const codec::ModelProvenance& m = a.model;
  out << "clinical: study " << m.study_id << ", model version " << m.model_version;
  if (m.calibration_samples > 0) {
    out << ", calibrated on " << m.calibration_samples << " validation rows";
  } else {
    out << ", UNCALIBRATED";
  }
  out << "; confidence " << a.confidence << "\n";
  for (std::size_t i = 0; i < a.clinical.size(); ++i) {
    const codec::StructurePrediction& s = a.clinical[i];
    if (!PrintStructureLine(i, s, /*with_score=*/false, out)) continue;
    for (const codec::TaskPrediction& t : s.tasks) {
      out << "    " << std::left << std::setw(14) << (t.task == "CT_TOX" ? "risk (CT_TOX)" : t.task)
          << std::right << FixedText(t.probability, 3) << "  prediction set " << t.prediction_set;
      if (!t.calibrated) out << " (uncalibrated)";
      out << "\n";
    }
    if (i >= a.success.size()) continue;
    const codec::ClinicalSuccess& c = a.success[i];
    out << "    phase success (" << c.therapeutic_area << ", log LR "
        << FixedText(c.log_likelihood_ratio, 3) << "): base -> adjusted\n";
    for (const codec::PhaseTransition& t : c.transitions) {
      out << "      " << std::left << std::setw(22) << t.transition << std::right << std::setw(7)
          << Percent(t.base_rate) << " -> " << std::setw(6) << Percent(t.adjusted) << "\n";
    }
    out << "      " << std::left << std::setw(22) << "LOA from Phase I" << std::right
        << std::setw(7) << Percent(c.base_likelihood_of_approval) << " -> " << std::setw(6)
        << Percent(c.adjusted_likelihood_of_approval) << "\n";
  }
  if (!a.success.empty() && !a.success.front().source.empty()) {
    out << "base rates: " << a.success.front().source << "\n";
  }
  if (!a.side_effects_unavailable.empty()) {
    out << "side effects: " << a.side_effects_unavailable << "\n";
  } else {
    out << "side effects: study " << a.side_effect_model.study_id << " (see --json)\n";
  }
  out << "method: " << a.working.method << "\n";
}

core::Status Assess(core::Bus& bus, const Options& o, std::ostream& out) {
  codec::AssessClinical r;
  FEDRX_ASSIGN_OR_RETURN(r.smiles, StructuresFrom(o));
  r.therapeutic_area = TextOr(o, "area", "");
  FEDRX_ASSIGN_OR_RETURN(r.confidence, NumberOr(o, "confidence", 0.9));
  Options asked = o;
  if (!o.timeout_given) asked.timeout = kAssessTimeout;
  FEDRX_ASSIGN_OR_RETURN(codec::Message m, Ask(bus, asked, std::move(r)));
  o.channel = asked.channel;
  FEDRX_ASSIGN_OR_RETURN(codec::ClinicalAssessment a,
                         Expect<codec::ClinicalAssessment>(std::move(m)));
  Print(a, out);
  return WriteJsonIfAsked(o, cli::ToJson(a));
}

}  // namespace

bool IsClinicalCommand(const Options& o) {
  return !o.command.empty() && o.command[0] == "clinical";
}

core::Status RunClinicalCommand(core::Bus& bus, const Options& o, std::ostream& out) {
  if (o.command.size() == 2 && o.command[1] == "assess") return Assess(bus, o, out);
  return core::InvalidArgument("unknown clinical command (try: clinical assess --smiles CCO)",
                               "command");
}

}  // namespace fedrx::cli
