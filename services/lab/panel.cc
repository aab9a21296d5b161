#include "services/lab/panel.h"

#include <cmath>
#include <iomanip>
#include <ostream>
#include <sstream>

namespace fedrx::lab {

std::vector<AssayCount> CountAssays(const ml::Dataset& data) {
  std::vector<AssayCount> counts(data.num_tasks());
  for (std::size_t t = 0; t < data.num_tasks(); ++t) counts[t].task = data.tasks[t];
  for (std::size_t r = 0; r < data.size(); ++r) {
    for (std::size_t t = 0; t < data.num_tasks(); ++t) {
      const std::int8_t y = data.label(r, t);
      if (y == ml::kMissing) continue;
      ++counts[t].labelled;
      if (y == 1) ++counts[t].positives;
    }
  }
  return counts;
}

core::Result<std::vector<std::string>> ChoosePanel(const ml::Dataset& data, const PanelRule& rule,
                                                   std::vector<AssayCount>& counts) {
  if (!(rule.max_positive_rate >= 0 && rule.max_positive_rate <= 1)) {
    return core::InvalidArgument("the largest positive rate must be in [0, 1]",
                                 "--max-positive-rate");
  }
  counts = CountAssays(data);
  std::vector<std::string> chosen;
  for (AssayCount& c : counts) {
    std::ostringstream why;
    const double rate =
        c.labelled == 0 ? 0 : static_cast<double>(c.positives) / static_cast<double>(c.labelled);
    if (c.labelled < rule.min_labelled) {
      why << c.labelled << " measured < " << rule.min_labelled;
    } else if (c.positives < rule.min_positives) {
      why << c.positives << " positives < " << rule.min_positives;
    } else if (rate > rule.max_positive_rate) {
      why << "positive rate " << std::fixed << std::setprecision(3) << rate << " > "
          << std::defaultfloat << rule.max_positive_rate;
    }
    c.reason = why.str();
    c.chosen = c.reason.empty();
    if (c.chosen) chosen.push_back(c.task);
  }
  if (chosen.empty()) {
    return core::InvalidArgument("no label column passes the panel rule (" +
                                     std::to_string(counts.size()) + " columns looked at)",
                                 "--min-labelled");
  }
  return chosen;
}

ml::Dataset RestrictToPanel(const ml::Dataset& data, const std::vector<std::string>& tasks) {
  const ml::Dataset panel = data.WithTasks(tasks);
  std::vector<std::size_t> rows;
  for (std::size_t r = 0; r < panel.size(); ++r) {
    for (std::size_t t = 0; t < panel.num_tasks(); ++t) {
      if (panel.label(r, t) != ml::kMissing) {
        rows.push_back(r);
        break;
      }
    }
  }
  return panel.Subset(rows);
}

void PrintPanel(const std::vector<AssayCount>& counts, std::ostream& out) {
  out << std::left << std::setw(28) << "assay" << std::right << std::setw(10) << "measured"
      << std::setw(11) << "positives" << std::setw(8) << "rate"
      << "  verdict\n";
  for (const AssayCount& c : counts) {
    const double rate =
        c.labelled == 0 ? 0 : static_cast<double>(c.positives) / static_cast<double>(c.labelled);
    out << std::left << std::setw(28) << c.task << std::right << std::setw(10) << c.labelled
        << std::setw(11) << c.positives << std::setw(8) << std::fixed << std::setprecision(3)
        << rate << "  " << (c.chosen ? "chosen" : "left out: " + c.reason) << "\n";
  }
}

}  // namespace fedrx::lab
