// The site's side of a statistics study (spec.statistic "pair_counts",
// coordinator/study_runner.h): the 2x2 table of every (clinical, preclinical)
// label pair over the site's own compounds that carry both labels, matched by
// InChIKey. Only these integers leave the site (masked, with secure
// aggregation). Pure functions over the local data; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "messages/codec/message.h"
#include "services/core/status.h"
#include "services/reverse/association.h"
#include "services/site/site_service.h"

namespace fedrx::site {

// Ok when the site's label columns (`held`) include every row and column
// label of `spec`; else kInvalidArgument "this site holds no label 'X'" with
// where "StudySpec.statistic_rows[i]" or "StudySpec.tasks[j]".
core::Status CheckHeldLabels(const codec::StudySpec& spec, const std::vector<std::string>& held);

// The site's two label tables over all its rows (train, valid and test):
// clinical = spec.statistic_rows, preclinical = spec.tasks, keyed by the
// standard InChIKey of each row's (standardised, canonical) SMILES. Rows of
// one InChIKey are merged as ingest merges them: equal labels stay, a label
// beats a missing one, 0 against 1 is missing. Rows whose InChIKey cannot be
// computed are left out and counted in `unkeyed`.
struct SiteLabelTables {
  reverse::LabelTable clinical;
  reverse::LabelTable preclinical;
  std::size_t unkeyed = 0;
};
core::Result<SiteLabelTables> BuildLabelTables(const codec::StudySpec& spec, const LocalData& data);

struct SiteCounts {
  // reverse::AllPairs(spec.statistic_rows, spec.tasks) order.
  std::vector<reverse::PairCounts> counts;
  // Compounds with at least one row label and one column label: what the
  // site declares (UpdateReady.num_samples); no table of a pair exceeds it.
  std::uint64_t compounds = 0;
  std::size_t unkeyed = 0;
};
// CheckHeldLabels, BuildLabelTables, then reverse::CountPairs.
core::Result<SiteCounts> CountStudyPairs(const codec::StudySpec& spec, const LocalData& data);

}  // namespace fedrx::site
