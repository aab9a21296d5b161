// `prepare`'s panel rule and `export`: the pieces of the quality table
// (deploy/quality.sh) that choose the ToxCast panel and hand the scikit-learn
// baseline exactly the bits the federated model saw.
#include <fstream>
#include <iomanip>
#include <ostream>

#include "services/lab/lab_common.h"
#include "services/lab/panel.h"
#include "services/ml/study_spec.h"

namespace fedrx::lab {
namespace {

// A CSV field: quoted (quotes doubled) when it holds a comma, a quote or a
// line break, as RFC 4180 readers (Python's csv) expect.
std::string CsvField(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) {
    if (c == '"') q += '"';
    q += c;
  }
  return q + "\"";
}

}  // namespace

core::Result<ml::Dataset> ApplyPanelRule(const Flags& f, const ml::Dataset& all,
                                         std::ostream& out) {
  PanelRule rule;
  FEDRX_ASSIGN_OR_RETURN(rule.min_labelled, CountFlag(f, "min-labelled", 0, 0, 1'000'000'000));
  FEDRX_ASSIGN_OR_RETURN(rule.min_positives, CountFlag(f, "min-positives", 0, 0, 1'000'000'000));
  FEDRX_ASSIGN_OR_RETURN(rule.max_positive_rate, NumberFlag(f, "max-positive-rate", 1, 0, 1));
  std::vector<AssayCount> counts;
  FEDRX_ASSIGN_OR_RETURN(std::vector<std::string> tasks, ChoosePanel(all, rule, counts));
  out << "panel rule: >= " << rule.min_labelled << " measured, >= " << rule.min_positives
      << " positives, positive rate <= " << rule.max_positive_rate << "\n";
  PrintPanel(counts, out);
  ml::Dataset panel = RestrictToPanel(all, tasks);
  out << "panel: " << tasks.size() << " of " << counts.size() << " assays, " << panel.size()
      << " of " << all.size() << " rows with one of their labels\n";
  return panel;
}

core::Status ExportCommand(const Flags& f, std::ostream& out) {
  FEDRX_ASSIGN_OR_RETURN(std::string data, Need(f, "data"));
  FEDRX_ASSIGN_OR_RETURN(std::string path, Need(f, "out"));
  int radius = 2;
  std::uint32_t bits = 2048;
  std::vector<std::string> tasks;
  if (f.count("study") != 0) {
    FEDRX_ASSIGN_OR_RETURN(codec::StudySpec spec, LoadStudy(f.at("study")));
    radius = static_cast<int>(spec.fingerprint_radius);
    bits = spec.model.input_dim;
    tasks = spec.tasks;
  }
  FEDRX_ASSIGN_OR_RETURN(ml::Dataset d, Load(data, radius, bits, out));
  if (!tasks.empty()) d = d.WithTasks(tasks);
  std::ofstream file(path, std::ios::trunc);
  if (!file) return core::Unavailable("cannot write the export", path);
  file << "smiles,split";
  for (const auto& t : d.tasks) file << "," << CsvField(t);
  file << ",bits\n";
  for (std::size_t r = 0; r < d.size(); ++r) {
    file << CsvField(d.smiles[r]) << "," << (d.split.empty() ? "" : CsvField(d.split[r]));
    for (std::size_t t = 0; t < d.num_tasks(); ++t) {
      const std::int8_t y = d.label(r, t);
      file << "," << (y == ml::kMissing ? "" : y == 1 ? "1" : "0");
    }
    file << ",";
    const auto row = d.x.row(r);
    for (std::size_t i = 0; i < row.size(); ++i) file << (i ? " " : "") << row[i];
    file << "\n";
  }
  file.flush();
  if (!file) return core::Unavailable("cannot write the export", path);
  out << "exported " << d.size() << " rows x " << d.num_tasks() << " tasks, fingerprints of "
      << d.x.dim << " bits -> " << path << "\n";
  return core::Status::Ok();
}

}  // namespace fedrx::lab
