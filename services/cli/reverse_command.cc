#include "services/cli/reverse_command.h"

#include <iomanip>
#include <nlohmann/json.hpp>
#include <ostream>
#include <sstream>

#include "services/cli/design_json.h"

namespace fedrx::cli {
namespace {

using nlohmann::json;

// The non-empty, trimmed items of a ';'-separated list.
std::vector<std::string> SplitSemicolon(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ';')) {
    const auto first = item.find_first_not_of(" \t");
    if (first == std::string::npos) continue;
    const auto last = item.find_last_not_of(" \t");
    out.push_back(item.substr(first, last - first + 1));
  }
  return out;
}

void PrintAssays(const std::vector<codec::AssayAssociation>& assays, std::ostream& out) {
  for (const auto& a : assays) {
    out << "    " << (a.significant ? "* " : "  ") << std::left << std::setw(16) << a.assay
        << (a.in_table_family ? "[table] " : "") << a.evidence << "\n";
  }
}

core::Status Translate(core::Bus& bus, const Options& o, std::ostream& out) {
  codec::ReverseTranslate r;
  r.organ_classes = SplitSemicolon(TextOr(o, "organ-class", ""));
  r.adverse_events = SplitSemicolon(TextOr(o, "adverse-event", ""));
  r.clinical_labels = SplitComma(TextOr(o, "label", ""));
  FEDRX_ASSIGN_OR_RETURN(r.fdr, NumberOr(o, "fdr", r.fdr));
  if (r.organ_classes.empty() && r.adverse_events.empty() && r.clinical_labels.empty()) {
    return core::InvalidArgument(
        "give --organ-class NAME, --adverse-event TERM or --label LABEL (or several)",
        "--organ-class");
  }
  FEDRX_ASSIGN_OR_RETURN(codec::Message m, Ask(bus, o, std::move(r)));
  FEDRX_ASSIGN_OR_RETURN(codec::ReverseTranslation a,
                         Expect<codec::ReverseTranslation>(std::move(m)));
  if (a.counts_sites == 0) {
    out << "association counts: none yet (study " << (a.counts_study.empty() ? "-" : a.counts_study)
        << "); the organ-class table alone answers\n";
  } else {
    out << "association counts: study " << a.counts_study << " version " << a.counts_version << ", "
        << a.counts_sites << " site(s), " << a.counts_compounds << " compounds, "
        << (a.counts_secure ? "summed by secure aggregation" : "summed in the clear") << "\n";
  }
  for (const auto& c : a.organ_classes) {
    out << "\n" << c.organ_class;
    if (!c.matched_terms.empty()) {
      out << " (from:";
      for (const auto& t : c.matched_terms) out << " \"" << t << "\"";
      out << ")";
    }
    out << "\n";
    if (c.endpoints.empty()) {
      out << "  in vivo: no established preclinical correlate: " << c.none_reason << "\n";
    } else {
      out << "  in vivo (SEND):\n";
      for (const auto& e : c.endpoints) {
        out << "    " << std::left << std::setw(4) << e.domain << std::setw(18) << e.code << e.note
            << "\n";
      }
    }
    if (!c.rationale.empty()) out << "  rationale: " << c.rationale << "\n";
    if (!c.reference.empty()) out << "  reference: " << c.reference << "\n";
    if (!c.assays.empty()) {
      out << "  assays (* significant):\n";
      PrintAssays(c.assays, out);
    }
  }
  std::string label;
  for (const auto& a2 : a.label_associations) {
    if (a2.clinical_label != label) {
      label = a2.clinical_label;
      out << "\n" << label << ": assays (* significant):\n";
    }
    PrintAssays({a2}, out);
  }
  PrintWorking(a.working, out);
  return WriteJsonIfAsked(o, cli::ToJson(a));
}

}  // namespace

bool IsReverseCommand(const Options& o) { return !o.command.empty() && o.command[0] == "reverse"; }

core::Status RunReverseCommand(core::Bus& bus, const Options& o, std::ostream& out) {
  if (o.command == std::vector<std::string>{"reverse", "translate"}) return Translate(bus, o, out);
  return core::InvalidArgument("unknown command; `fedrx reverse translate` is the one there is",
                               "command");
}

}  // namespace fedrx::cli
