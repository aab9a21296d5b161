// Writes a cdm::StudyData to a directory of plain files and reads it back,
// exactly (numbers are written with %.17g, which round-trips every double), so a
// versioned dataset store can hold a mapped study. Stateless; blocks on file I/O.
//
// Layout of the directory (format "fedrx-cdm/1"):
//   study.csv                  field,value: one row per Study field, in this order:
//                              format (= fedrx-cdm/1), id, standard, title, design,
//                              study_type, species, strain, route, planned_duration,
//                              planned_duration_days, sponsor, treatment, vehicle,
//                              sex_population, planned_subjects
//   study_parameters.csv       parameter,value (Study::parameters, the TS map)
//   dose_groups.csv            set_code,arm_code,label,dose,dose_unit,unit_normalised,
//                              control,recovery,toxicokinetic
//   dose_group_parameters.csv  set_code,parameter,value (DoseGroup::parameters)
//   subjects.csv               usubjid,subject_id,sex,species,strain,set_code,arm_code,arm,
//                              reference_start,age,age_unit,age_text
//   exposures.csv              usubjid,treatment,dose,unit,unit_normalised,route,frequency,
//                              start_day,end_day
//   findings.csv               domain,usubjid,test_code,test_name,category,specimen,value,
//                              unit,unit_normalised,text,severity,study_day,visit_day,visit,
//                              baseline,seq
//   adverse_events.csv         usubjid,seq,term,decoded_term,body_system,soc,severity,
//                              toxicity_grade,serious,relationship,outcome,start_day,end_day
//   mapping_issues.csv         kind,domain,row,variable,why
//   domain_tallies.csv         domain,rows,mapped,unmapped,unnormalised,issues_dropped
// CSV is RFC 4180 (UTF-8, "," separated, fields with , " CR LF or edge spaces quoted,
// "" inside quotes; bytes are written as read, so a legacy Latin-1 title
// round-trips unchanged), first line the header exactly as above, "\n" line ends. An
// empty numeric field is an absent value; booleans are "true"/"false" (an
// optional boolean may be empty). Rows keep the order of the vectors.
#pragma once

#include <string>

#include "services/core/status.h"
#include "services/ingest/cdm.h"

namespace fedrx::ingest::cdm {

inline constexpr const char* kCdmFormat = "fedrx-cdm/1";

// Creates `dir` (and parents) when needed and writes every file above into it,
// replacing files of the same name. Errors: kUnavailable when a directory or
// file cannot be created or written.
core::Status WriteCdm(const std::string& dir, const StudyData& data);

// Reads a directory written by WriteCdm. Errors: kNotFound when `dir` or one of
// its files is missing; kInvalidArgument when study.csv names another format;
// kDataLoss for a malformed file (what and where: file and line).
core::Result<StudyData> ReadCdm(const std::string& dir);

}  // namespace fedrx::ingest::cdm
