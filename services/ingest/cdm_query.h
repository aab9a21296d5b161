// Questions a translational, reverse-translation or clinical service asks of a
// study in the common data model, answered the same way whatever its source
// standard (SEND or SDTM): summaries of body weight and of any finding by dose
// group. Pure functions over a StudyData; thread-safe for concurrent readers.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "services/ingest/cdm.h"

namespace fedrx::ingest::cdm {

// A summary of one dose group (and sex, when split by sex).
struct GroupStatistic {
  std::string set_code;  // DoseGroup::set_code
  std::string label;
  std::optional<double> dose;  // the group's dose level and unit
  std::string dose_unit;
  bool control = false;
  std::string sex;    // empty when not split by sex
  std::size_t n = 0;  // subjects contributing a value
  std::optional<double> mean;
  std::optional<double> sd;  // sample standard deviation (n - 1); empty when n < 2
  std::string unit;          // unit of mean and sd
  // Subjects of the group with data that could not contribute: fewer than two
  // body weights, or a value in another unit than `unit`.
  std::size_t excluded = 0;
};

// Per dose group (and sex when `by_sex`): the change in body weight of each
// subject from its first to its last measurement (ordered by study day, else
// visit day), in g. Body weights are SEND BW/BW or SDTM VS/WEIGHT (IsBodyWeight).
// Groups are in StudyData::dose_groups order, sexes sorted; a group with no
// subject is left out.
std::vector<GroupStatistic> BodyWeightChangeByDoseGroup(const StudyData& study, bool by_sex = true);

struct FindingQuery {
  std::string domain;     // "LB", "OM", "BW", ...
  std::string test_code;  // --TESTCD
  std::string specimen;   // when not empty, only findings of this specimen (e.g. "LIVER")
  // When set, each subject's value on this study day; otherwise its last
  // numeric value (by study day, else visit day).
  std::optional<double> study_day;
  bool by_sex = false;
};

// Per dose group (and sex): n, mean and SD of one numeric value per subject, in
// the most common (normalised) unit among them.
std::vector<GroupStatistic> FindingSummaryByDoseGroup(const StudyData& study,
                                                      const FindingQuery& query);
std::vector<GroupStatistic> FindingSummaryByDoseGroup(const StudyData& study,
                                                      std::string_view domain,
                                                      std::string_view test_code);

}  // namespace fedrx::ingest::cdm
