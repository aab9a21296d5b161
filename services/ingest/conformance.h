// Conformance checks over a SEND or SDTM study (domain -> Table, optional
// define.xml), in the spirit of the CDISC conformance rules and the checks FDA
// validators run, and the report they produce (JSON and a fixed-width table).
// Stateless and reentrant; reports are value types, thread-compatible.
//
// Rule ids are fedrx's own and stable (FDRX-<area><number>); a rule's
// description names the CDISC/FDA rule it is in the spirit of, where one exists.
// Findings never quote free text: a value is quoted only when it is a code
// (a controlled term, a unit, a test code, a STUDYID, a DOMAIN).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "services/ingest/define_xml.h"
#include "services/ingest/study_folder.h"
#include "services/ingest/table.h"

namespace fedrx::ingest::conformance {

enum class Severity : std::uint8_t { kError, kWarning, kNotice };
// "error" / "warning" / "notice"
const char* SeverityName(Severity severity);

enum class Standard : std::uint8_t { kUnknown, kSend, kSdtm };
// "unknown" / "SEND" / "SDTM"
const char* StandardName(Standard standard);

struct RuleInfo {
  std::string_view id;           // e.g. "FDRX-KY0001"
  Severity severity;             // the default severity of its findings
  std::string_view description;  // what it checks, and which CDISC/FDA rule it echoes
};

// Every rule CheckStudy applies, in id order.
std::span<const RuleInfo> ConformanceRules();

struct Finding {
  std::string rule_id;
  Severity severity = Severity::kError;
  std::string dataset;   // e.g. "LB"; empty for a study-level finding
  std::size_t row = 0;   // 1-based record; 0 for a dataset- or study-level finding
  std::string variable;  // e.g. "LBSTRESU"; empty when it concerns no one variable
  std::string message;
};

struct CheckOptions {
  // kUnknown: detected from TS (SNDIGVER/SDTIGVER), DM/TS SPECIES, define.xml.
  Standard standard = Standard::kUnknown;
  // Findings stored per (rule, dataset); the rest are only counted. Counts by
  // severity and by rule include them.
  std::size_t max_findings_per_rule_and_dataset = 25;
};

struct DatasetSummary {
  std::string name;
  std::size_t rows = 0;
  std::size_t columns = 0;
};

struct ConformanceReport {
  std::string study_id;  // STUDYID of DM (or the first dataset with one), else define's
  Standard standard = Standard::kUnknown;
  bool standard_detected = false;  // false when it came from CheckOptions
  bool define_checked = false;
  std::vector<DatasetSummary> datasets;  // in name order
  std::vector<Finding> findings;         // in dataset, rule, row order; capped
  std::size_t errors = 0;                // all findings, stored or not
  std::size_t warnings = 0;
  std::size_t notices = 0;
  std::size_t findings_not_stored = 0;
  std::map<std::string, std::size_t> counts_by_rule;  // all findings, stored or not
};

// Checks `domains` (domain name -> table) against the standard and, when not
// null, `define`. Never fails: everything wrong is a finding.
ConformanceReport CheckTables(const std::map<std::string, Table>& domains, const DefineXml* define,
                              const CheckOptions& options = {});

// Checks a study folder: its tables, its define.xml when parsed, and reports a
// define.xml that could not be parsed.
ConformanceReport CheckStudy(const StudyFolder& study, const CheckOptions& options = {});

// One JSON object: study_id, standard, datasets (name, rows, columns),
// counts {error, warning, notice, not_stored}, counts_by_rule, findings [...].
std::string ReportJson(const ConformanceReport& report);

// A fixed-width table (severity, rule, dataset, row, variable, message) of at
// most `max_rows` findings, errors first, then a summary line.
void PrintReport(const ConformanceReport& report, std::ostream& out, std::size_t max_rows);

}  // namespace fedrx::ingest::conformance
