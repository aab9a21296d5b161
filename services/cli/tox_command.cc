#include "services/cli/tox_command.h"

#include <algorithm>
#include <fstream>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <ostream>
#include <sstream>

#include "services/cli/design_json.h"

namespace fedrx::cli {
namespace {

using nlohmann::json;

// A panel of many structures takes longer than the default 5 s question.
constexpr std::chrono::milliseconds kPredictTimeout{60000};

void Print(const codec::ToxicityPanel& a, std::ostream& out) {
  const codec::ModelProvenance& m = a.model;
  out << "panel " << a.panel << ": study " << m.study_id << ", model version " << m.model_version;
  if (m.calibration_samples > 0) {
    out << ", calibrated on " << m.calibration_samples << " validation rows (version "
        << m.calibration_version << ")";
  } else {
    out << ", UNCALIBRATED";
  }
  out << "; confidence " << a.confidence << "\n";
  std::size_t width = 8;
  for (const std::string& t : a.tasks) width = std::max(width, t.size() + 2);
  for (std::size_t i = 0; i < a.results.size(); ++i) {
    const codec::StructurePrediction& s = a.results[i];
    if (!PrintStructureLine(i, s, /*with_score=*/true, out)) continue;
    out << "    " << std::left << std::setw(static_cast<int>(width)) << "TASK" << std::right
        << std::setw(8) << "P(tox)"
        << "  " << std::left << std::setw(10) << "SET" << std::right << std::setw(8) << "p(neg)"
        << std::setw(8) << "p(pos)"
        << "\n";
    for (const codec::TaskPrediction& t : s.tasks) {
      out << "    " << std::left << std::setw(static_cast<int>(width)) << t.task << std::right
          << std::setw(8) << FixedText(t.probability, 3) << "  " << std::left << std::setw(10)
          << t.prediction_set << std::right;
      if (t.calibrated) {
        out << std::setw(8) << FixedText(t.p_negative, 3) << std::setw(8)
            << FixedText(t.p_positive, 3);
      } else {
        out << "  (uncalibrated)";
      }
      out << "\n";
    }
  }
  out << "method: " << m.method << "\n";
}

core::Status Predict(core::Bus& bus, const Options& o, std::ostream& out) {
  codec::PredictToxicity r;
  FEDRX_ASSIGN_OR_RETURN(r.smiles, StructuresFrom(o));
  r.panel = TextOr(o, "panel", "");
  if (auto it = o.flags.find("tasks"); it != o.flags.end()) r.tasks = SplitComma(it->second);
  FEDRX_ASSIGN_OR_RETURN(r.confidence, NumberOr(o, "confidence", 0.9));
  Options asked = o;
  if (!o.timeout_given) asked.timeout = kPredictTimeout;
  FEDRX_ASSIGN_OR_RETURN(codec::Message m, Ask(bus, asked, std::move(r)));
  o.channel = asked.channel;
  FEDRX_ASSIGN_OR_RETURN(codec::ToxicityPanel a, Expect<codec::ToxicityPanel>(std::move(m)));
  Print(a, out);
  return WriteJsonIfAsked(o, ToJson(a));
}

}  // namespace

bool IsToxCommand(const Options& o) { return !o.command.empty() && o.command[0] == "tox"; }

core::Result<std::vector<std::string>> ReadSmiles(const std::string& path) {
  std::ifstream f(path);
  if (!f) return core::NotFound("cannot read the structure file", path);
  std::vector<std::string> out;
  std::string line;
  while (std::getline(f, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::istringstream fields(line);
    std::string first;
    if (!(fields >> first) || first[0] == '#') continue;
    out.push_back(first);
  }
  if (out.empty()) return core::InvalidArgument("the file holds no structure", path);
  return out;
}

std::string FixedText(double v, int digits) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(digits) << v;
  return s.str();
}

bool PrintStructureLine(std::size_t i, const codec::StructurePrediction& s, bool with_score,
                        std::ostream& out) {
  out << "[" << i << "] " << s.input;
  if (!s.error_code.empty()) {
    out << "  REFUSED: " << s.error << " (" << s.error_code << ")\n";
    return false;
  }
  if (s.canonical_smiles != s.input) out << "  -> " << s.canonical_smiles;
  const codec::DomainAssessment& d = s.domain;
  if (!d.calibrated) {
    out << "  domain not assessed\n";
    return true;
  }
  out << "  " << (d.in_domain ? "in domain" : "OUT OF DOMAIN") << " (p=" << FixedText(d.p_value, 3);
  if (with_score) out << ", score " << FixedText(d.score, 3);
  out << ")\n";
  return true;
}

core::Result<std::vector<std::string>> StructuresFrom(const Options& o) {
  const bool inline_list = o.flags.count("smiles") > 0;
  const bool file = o.flags.count("in") > 0;
  if (inline_list == file) {
    return core::InvalidArgument(
        "give the structures with either --smiles S[,S...] or --in FILE.smi", "--smiles");
  }
  if (!inline_list) return ReadSmiles(o.flags.at("in"));
  std::vector<std::string> smiles = SplitComma(o.flags.at("smiles"));
  if (smiles.empty()) return core::InvalidArgument("no structure given", "--smiles");
  return smiles;
}

core::Status RunToxCommand(core::Bus& bus, const Options& o, std::ostream& out) {
  if (o.command.size() == 2 && o.command[1] == "predict") return Predict(bus, o, out);
  return core::InvalidArgument("unknown tox command (try: tox predict --smiles CCO)", "command");
}

}  // namespace fedrx::cli
