#include "services/ingest/cdm.h"

namespace fedrx::ingest::cdm {

const char* StandardName(Standard standard) {
  switch (standard) {
    case Standard::kSend:
      return "SEND";
    case Standard::kSdtm:
      return "SDTM";
    case Standard::kUnknown:
      break;
  }
  return "UNKNOWN";
}

bool ParseStandard(std::string_view name, Standard* out) {
  for (Standard s : {Standard::kUnknown, Standard::kSend, Standard::kSdtm}) {
    if (name == StandardName(s)) {
      *out = s;
      return true;
    }
  }
  return false;
}

const char* IssueKindName(IssueKind kind) {
  switch (kind) {
    case IssueKind::kRowUnmapped:
      return "row_unmapped";
    case IssueKind::kDomainUnmapped:
      return "domain_unmapped";
    case IssueKind::kUnitUnnormalised:
      return "unit_unnormalised";
    case IssueKind::kValueInvalid:
      return "value_invalid";
  }
  return "row_unmapped";
}

bool ParseIssueKind(std::string_view name, IssueKind* out) {
  for (IssueKind k : {IssueKind::kRowUnmapped, IssueKind::kDomainUnmapped,
                      IssueKind::kUnitUnnormalised, IssueKind::kValueInvalid}) {
    if (name == IssueKindName(k)) {
      *out = k;
      return true;
    }
  }
  return false;
}

const DoseGroup* StudyData::FindDoseGroup(std::string_view set_code) const {
  for (const DoseGroup& g : dose_groups) {
    if (g.set_code == set_code) return &g;
  }
  return nullptr;
}

const Subject* StudyData::FindSubject(std::string_view usubjid) const {
  for (const Subject& s : subjects) {
    if (s.usubjid == usubjid) return &s;
  }
  return nullptr;
}

const DomainTally* StudyData::FindTally(std::string_view domain) const {
  for (const DomainTally& t : tallies) {
    if (t.domain == domain) return &t;
  }
  return nullptr;
}

bool IsBodyWeight(const Finding& finding) {
  return (finding.domain == "BW" && finding.test_code == "BW") ||
         (finding.domain == "VS" && finding.test_code == "WEIGHT");
}

}  // namespace fedrx::ingest::cdm
