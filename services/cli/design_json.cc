#include "services/cli/design_json.h"

#include <iomanip>
#include <nlohmann/json.hpp>
#include <ostream>

namespace fedrx::cli {
using nlohmann::json;

json ToJson(const ingest::cdm::NoaelProposal& p) {
  json groups = json::array();
  for (const auto& g : p.groups) {
    json bw = json::object();
    for (const auto& [sex, pct] : g.bw_change_vs_control_pct) bw[sex.empty() ? "all" : sex] = pct;
    json row{{"set_code", g.set_code},        {"label", g.label},     {"dose_unit", g.dose_unit},
             {"control", g.control},          {"adverse", g.adverse}, {"reason", g.reason},
             {"bw_change_vs_control_pct", bw}};
    row["dose"] = g.dose ? json(*g.dose) : json(nullptr);
    row["alt_fold_vs_control"] =
        g.alt_fold_vs_control ? json(*g.alt_fold_vs_control) : json(nullptr);
    groups.push_back(std::move(row));
  }
  return json{{"study_id", p.study_id},
              {"species", p.species},
              {"strain", p.strain},
              {"route", p.route},
              {"duration", p.duration},
              {"noael", p.noael},
              {"noael_unit", p.noael_unit},
              {"noael_set_code", p.noael_set_code},
              {"noael_label", p.noael_label},
              {"rule", p.rule},
              {"groups", groups}};
}

void PrintWorking(const codec::Working& w, std::ostream& out) {
  out << "working: " << w.method << "\n";
  if (!w.guidance.empty()) out << "  following: " << w.guidance << "\n";
  int i = 0;
  for (const auto& s : w.steps) {
    out << "  " << ++i << ". " << s.label << "\n";
    if (!s.formula.empty()) out << "     " << s.formula << "\n";
    if (!s.inputs.empty()) {
      out << "     with";
      for (const auto& q : s.inputs) {
        out << " " << q.name << " = " << std::setprecision(6) << q.value
            << (q.unit.empty() ? "" : " " + q.unit) << ";";
      }
      out << "\n";
    }
    out << "     => " << s.result.name << " = " << std::setprecision(6) << s.result.value
        << (s.result.unit.empty() ? "" : " " + s.result.unit);
    if (!s.reference.empty()) out << "   [" << s.reference << "]";
    out << "\n";
  }
  for (const auto& n : w.notes) out << "  note: " << n << "\n";
}

}  // namespace fedrx::cli
