// Maps the domains of a SEND or SDTM study (ingest::Table per domain, as
// ReadStudyFolder returns them) into the common data model (cdm.h). Every
// source row is either mapped or reported in StudyData::issues/tallies; none is
// dropped silently. Stateless and reentrant.
//
// What is mapped where:
//   TS        -> Study (every parameter kept in Study::parameters)
//   TX        -> DoseGroup per SETCD (SEND); without TX, one per DM SETCD/ARMCD
//   DM        -> Subject (set_code: SETCD, else ARMCD)
//   EX        -> Exposure (dose normalised in the dose context of units.h)
//   AE        -> AdverseEvent
//   any other domain with USUBJID and <DOMAIN>TESTCD (LB, BW, OM, MI, MA, CL,
//             VS, EG, FW, BG, ...) -> Finding (value normalised by units.h)
//   the rest (TA, TE, SE, DS, CO, RELREC, SUPP--, ...) -> one domain_unmapped
//             issue each, their rows counted as unmapped.
#pragma once

#include <cstddef>
#include <map>
#include <string>

#include "services/core/status.h"
#include "services/ingest/cdm.h"
#include "services/ingest/study_folder.h"
#include "services/ingest/table.h"

namespace fedrx::ingest::cdm {

struct MapOptions {
  // kUnknown: decided by DetectStandard.
  Standard standard = Standard::kUnknown;
  // Issues stored per source domain; the rest are counted in
  // DomainTally::issues_dropped (rows are still counted exactly).
  std::size_t max_issues_per_domain = 1000;
};

// SEND when TS names a SEND IG/CT version (SNDIGVER/SNDCTVER) or DM has SETCD or
// a SEND-only domain (BW, OM, MI, MA, TX) is present; SDTM when TS names an SDTM
// version (SDTMVER/SDTIGVER) or AE/CM/MH is present or DM has AGE/RACE;
// kUnknown otherwise.
Standard DetectStandard(const std::map<std::string, Table>& domains);

// Maps `domains` (domain name -> table). Errors: kFailedPrecondition when there
// is no DM domain; kInvalidArgument when DM has no USUBJID column. Every other
// defect is a MappingIssue in the result. Does not block.
core::Result<StudyData> MapDomains(const std::map<std::string, Table>& domains,
                                   const MapOptions& options = {});

// MapDomains over a folder read by ReadStudyFolder.
core::Result<StudyData> MapStudy(const StudyFolder& folder, const MapOptions& options = {});

// "P13W" -> 91, "P29D" -> 29, "PT12H" -> 0.5, "P1DT12H" -> 1.5. nullopt for a
// malformed duration or one in years/months (no fixed number of days).
std::optional<double> IsoDurationDays(std::string_view iso);

}  // namespace fedrx::ingest::cdm
