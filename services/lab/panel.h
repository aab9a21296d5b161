// The assay-panel rule of `fedrx-lab prepare`: which label columns of a
// dataset have enough measured compounds and positives for a federated model
// that can be trained at three sites and scored on a held-out scaffold test
// set. Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "services/core/status.h"
#include "services/ml/dataset.h"

namespace fedrx::lab {

// A column is kept when it has at least `min_labelled` measured compounds,
// at least `min_positives` of them positive, and a positive rate of at most
// `max_positive_rate` (a read-out active on about half of everything tested
// says more about the assay than about the compounds).
struct PanelRule {
  std::uint64_t min_labelled = 0;
  std::uint64_t min_positives = 0;
  double max_positive_rate = 1.0;
};

// One label column's counts and the rule's verdict on it.
struct AssayCount {
  std::string task;
  std::uint64_t labelled = 0;   // rows with a 0 or 1
  std::uint64_t positives = 0;  // rows with a 1
  bool chosen = false;
  std::string reason;  // why it was left out; empty when chosen
};

// Labelled and positive rows of every task of `data`, in its task order
// (chosen false, no reason).
std::vector<AssayCount> CountAssays(const ml::Dataset& data);

// Applies `rule` to every task of `data`; `counts` receives every column's
// counts and verdict. Returns the chosen tasks in the dataset's order.
// kInvalidArgument (where "--max-positive-rate") for a rate outside [0, 1],
// or (where "--min-labelled") when no column passes.
core::Result<std::vector<std::string>> ChoosePanel(const ml::Dataset& data, const PanelRule& rule,
                                                   std::vector<AssayCount>& counts);

// `data` with only `tasks` (in that order) and only the rows with at least
// one of their labels.
ml::Dataset RestrictToPanel(const ml::Dataset& data, const std::vector<std::string>& tasks);

// The counts as a table: task, measured, positives, rate, verdict.
void PrintPanel(const std::vector<AssayCount>& counts, std::ostream& out);

}  // namespace fedrx::lab
