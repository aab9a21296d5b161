#include "services/ingest/conformance.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <iomanip>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "services/ingest/controlled_terms.h"

namespace fedrx::ingest::conformance {
namespace {

// ---------------------------------------------------------------------------
// Rules. Ids are stable: a rule may be reworded, never renumbered.

constexpr std::array kRules = {
    RuleInfo{"FDRX-CN0001", Severity::kError,
             "DOMAIN value differs from the dataset name (in the spirit of Pinnacle 21 "
             "SD0004, inconsistent value for DOMAIN)"},
    RuleInfo{"FDRX-CN0002", Severity::kError,
             "STUDYID differs from the study's STUDYID (the one in DM)"},
    RuleInfo{"FDRX-CN0003", Severity::kError,
             "USUBJID of a subject-level record is not in DM (in the spirit of Pinnacle 21 "
             "SD0064, subject not present in DM)"},
    RuleInfo{"FDRX-CT0001", Severity::kWarning,
             "DM SEX is not a SEX term (M, F, U, UNDIFFERENTIATED) (in the spirit of CDISC "
             "CT checks CT2001)"},
    RuleInfo{"FDRX-CT0002", Severity::kWarning,
             "SEND SPECIES (TS TSVAL or DM SPECIES) is not in fedrx's species subset (in the "
             "spirit of CT2002, extensible codelist)"},
    RuleInfo{"FDRX-CT0003", Severity::kWarning,
             "SEND STRAIN (TS TSVAL or DM STRAIN) is not in fedrx's strain subset (in the "
             "spirit of CT2002)"},
    RuleInfo{"FDRX-CT0004", Severity::kWarning,
             "EXROUTE (or TS ROUTE) is not in fedrx's route subset (in the spirit of CT2002)"},
    RuleInfo{"FDRX-CT0005", Severity::kWarning,
             "--STRESU or EXDOSU is not in fedrx's unit table (case-sensitive CDISC UNIT "
             "spelling; in the spirit of CT2002)"},
    RuleInfo{"FDRX-CT0006", Severity::kWarning,
             "BWTESTCD is not BW or TERMBW (in the spirit of CT2001)"},
    RuleInfo{"FDRX-CT0007", Severity::kNotice,
             "LBTESTCD is not one of the lab test codes the common data model maps"},
    RuleInfo{"FDRX-DF0001", Severity::kError, "define.xml is present but cannot be parsed"},
    RuleInfo{"FDRX-DF0002", Severity::kWarning, "dataset is not described in define.xml"},
    RuleInfo{"FDRX-DF0003", Severity::kWarning,
             "define.xml describes a dataset that is not in the study"},
    RuleInfo{"FDRX-DF0004", Severity::kWarning,
             "variable is in the dataset but not in its define.xml ItemGroupDef"},
    RuleInfo{"FDRX-DF0005", Severity::kWarning,
             "variable is in the define.xml ItemGroupDef but not in the dataset"},
    RuleInfo{"FDRX-DF0006", Severity::kError,
             "variable's type (character/numeric) differs from its define.xml DataType"},
    RuleInfo{"FDRX-DF0007", Severity::kWarning,
             "character variable's length differs from its define.xml Length"},
    RuleInfo{"FDRX-DF0008", Severity::kError,
             "variable is Mandatory=\"Yes\" in define.xml but null in a record"},
    RuleInfo{"FDRX-DT0001", Severity::kError,
             "--DTC / RF--DTC value is not an ISO 8601 date, datetime or interval (partial "
             "values allowed; in the spirit of Pinnacle 21 SD0003)"},
    RuleInfo{"FDRX-DT0002", Severity::kError,
             "--DUR, --ELTM, --EVLINT, TEDUR or a TS duration parameter is not an ISO 8601 "
             "duration (in the spirit of SD0003)"},
    RuleInfo{"FDRX-KY0001", Severity::kError,
             "DM has more than one record for STUDYID+USUBJID (in the spirit of the FDA "
             "validator's duplicate-subject check)"},
    RuleInfo{"FDRX-KY0002", Severity::kError,
             "STUDYID+USUBJID(/POOLID)+--SEQ is not unique (in the spirit of Pinnacle 21 SD0005, "
             "duplicate --SEQ)"},
    RuleInfo{"FDRX-KY0003", Severity::kError,
             "SUPP-- has more than one QNAM for one parent record "
             "(STUDYID+RDOMAIN+USUBJID/POOLID+IDVAR+IDVARVAL+QNAM)"},
    RuleInfo{"FDRX-NM0001", Severity::kWarning, "--STRESN differs from the number in --STRESC"},
    RuleInfo{"FDRX-NM0002", Severity::kNotice, "--STRESC holds a number but --STRESN is missing"},
    RuleInfo{"FDRX-NM0003", Severity::kNotice,
             "--STRESN keeps fewer significant digits than --STRESC (relative difference "
             "at most 1e-4)"},
    RuleInfo{"FDRX-RD0001", Severity::kWarning,
             "the reader recorded a problem; the cell was left missing"},
    RuleInfo{"FDRX-RD0002", Severity::kNotice, "the reader recorded more problems than it stores"},
    RuleInfo{"FDRX-ST0001", Severity::kError,
             "a required dataset is missing: DM, TS and EX (in the spirit of the FDA technical "
             "rejection criteria 1734 for TS and 1736 for DM)"},
    RuleInfo{"FDRX-ST0002", Severity::kWarning,
             "SEND study has no BW dataset, which the common data model needs"},
    RuleInfo{"FDRX-ST0003", Severity::kNotice,
             "the standard (SEND or SDTM) could not be detected; standard-specific rules skipped"},
    RuleInfo{"FDRX-VR0001", Severity::kError,
             "a required variable is missing from the dataset (in the spirit of Pinnacle 21 "
             "SD0056)"},
    RuleInfo{"FDRX-VR0002", Severity::kError,
             "a required variable is null (in the spirit of Pinnacle 21 SD0002)"},
    RuleInfo{"FDRX-VR0003", Severity::kError,
             "a variable the standard defines as numeric is stored as character"},
    RuleInfo{"FDRX-VR0004", Severity::kError,
             "a variable the standard defines as character is stored as numeric"},
    RuleInfo{"FDRX-VR0005", Severity::kError,
             "variable name is not a SAS XPORT v5 name (1-8 characters, A-Z 0-9 _, not starting "
             "with a digit)"},
    RuleInfo{"FDRX-VR0006", Severity::kError, "variable label is longer than 40 characters"},
    RuleInfo{"FDRX-VR0007", Severity::kError,
             "character variable is longer than 200 bytes (SAS XPORT v5 limit)"},
};

const RuleInfo& Rule(std::string_view id) {
  for (const RuleInfo& rule : kRules) {
    if (rule.id == id) return rule;
  }
  // Every id used below is in the table; a typo fails the unit tests.
  static const RuleInfo kUnknownRule{"FDRX-UNKNOWN", Severity::kError, "unknown rule"};
  return kUnknownRule;
}

// ---------------------------------------------------------------------------
// Small helpers over Table.

std::string_view Trim(std::string_view s) {
  const auto first = s.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  const auto last = s.find_last_not_of(" \t\r\n");
  return s.substr(first, last - first + 1);
}

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.substr(0, prefix.size()) == prefix;
}
bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// The text of a cell: the value for text columns, a canonical spelling of the
// number for numeric ones, "" when missing.
std::string CellText(const Column& column, std::size_t row) {
  if (column.IsMissing(row)) return {};
  if (column.storage == StorageType::kText) return std::string(Trim(column.text[row]));
  std::ostringstream out;
  out << std::setprecision(15) << column.number[row];
  return out.str();
}

const Column* FindColumn(const Table& table, std::string_view name) {
  const int index = table.ColumnIndex(name);
  return index < 0 ? nullptr : &table.columns[index];
}

// A value is quoted in a message only when it looks like a code: short, and
// made of the characters controlled terms, units and test codes use. Anything
// else might be free text carrying private detail.
std::string Quoted(std::string_view value) {
  static constexpr std::string_view kCodeChars =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 ^/%.,()+*_-[]";
  if (value.size() <= 40 && value.find_first_not_of(kCodeChars) == std::string_view::npos) {
    return "'" + std::string(value) + "'";
  }
  return "a value that is not shown (not code-like)";
}

std::optional<double> ParseNumber(std::string_view text) {
  text = Trim(text);
  if (text.empty() || text.size() > 64) return std::nullopt;
  const std::string copy(text);
  char* end = nullptr;
  const double value = std::strtod(copy.c_str(), &end);
  if (end != copy.c_str() + copy.size() || !std::isfinite(value)) return std::nullopt;
  // strtod also takes hex and "inf"; results are plain decimals.
  if (copy.find_first_of("xXnN") != std::string::npos) return std::nullopt;
  return value;
}

// ---------------------------------------------------------------------------
// ISO 8601 as SDTM/SEND use it.

bool Digits(std::string_view s, std::size_t n) {
  return s.size() == n &&
         std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}
int ToInt(std::string_view s) {
  int v = 0;
  for (char c : s) v = v * 10 + (c - '0');
  return v;
}

// A date component of `width` digits within [lo, hi], or "-" (not known) when
// `allow_dash`. Consumes from `s`.
bool TakeComponent(std::string_view& s, std::size_t width, int lo, int hi) {
  if (!s.empty() && s[0] == '-' && (s.size() == 1 || s[1] == '-' || s[1] == 'T')) {
    s.remove_prefix(1);
    return true;
  }
  if (s.size() < width || !Digits(s.substr(0, width), width)) return false;
  const int v = ToInt(s.substr(0, width));
  if (v < lo || v > hi) return false;
  s.remove_prefix(width);
  return true;
}

// YYYY[-MM[-DD]][Thh[:mm[:ss[.f]]]][Z|±hh[:mm]], where any of year, month, day
// or hour may be "-" (SDTM's way to write a partial date with a known later
// part, e.g. "2003---15").
bool IsIsoDateTime(std::string_view s) {
  if (s.find_first_of("0123456789") == std::string_view::npos) return false;
  std::string_view rest = s;
  bool have_date = false;
  if (rest[0] != 'T') {
    if (!TakeComponent(rest, 4, 0, 9999)) return false;
    have_date = true;
    if (!rest.empty() && rest[0] == '-') {
      rest.remove_prefix(1);
      if (!TakeComponent(rest, 2, 1, 12)) return false;
      if (!rest.empty() && rest[0] == '-') {
        rest.remove_prefix(1);
        if (!TakeComponent(rest, 2, 1, 31)) return false;
      }
    }
  }
  if (rest.empty()) return have_date;
  if (rest[0] != 'T') return false;
  rest.remove_prefix(1);
  if (!TakeComponent(rest, 2, 0, 24)) return false;
  if (!rest.empty() && rest[0] == ':') {
    rest.remove_prefix(1);
    if (!Digits(rest.substr(0, std::min<std::size_t>(2, rest.size())), 2) ||
        ToInt(rest.substr(0, 2)) > 59) {
      return false;
    }
    rest.remove_prefix(2);
    if (!rest.empty() && rest[0] == ':') {
      rest.remove_prefix(1);
      if (!Digits(rest.substr(0, std::min<std::size_t>(2, rest.size())), 2) ||
          ToInt(rest.substr(0, 2)) > 60) {
        return false;
      }
      rest.remove_prefix(2);
      if (!rest.empty() && (rest[0] == '.' || rest[0] == ',')) {
        rest.remove_prefix(1);
        std::size_t n = 0;
        while (n < rest.size() && std::isdigit(static_cast<unsigned char>(rest[n]))) ++n;
        if (n == 0) return false;
        rest.remove_prefix(n);
      }
    }
  }
  if (rest.empty() || rest == "Z") return true;
  if (rest[0] != '+' && rest[0] != '-') return false;
  rest.remove_prefix(1);
  if (!Digits(rest.substr(0, std::min<std::size_t>(2, rest.size())), 2)) return false;
  rest.remove_prefix(2);
  if (rest.empty()) return true;
  if (rest[0] == ':') rest.remove_prefix(1);
  return Digits(rest, 2);
}

// PnYnMnWnDTnHnMnS (at least one component; a decimal fraction allowed on the
// last one), optionally negative as CDISC allows for --ELTM, or PnW.
bool IsIsoDuration(std::string_view s) {
  if (!s.empty() && s[0] == '-') s.remove_prefix(1);
  if (s.size() < 3 || s[0] != 'P') return false;
  s.remove_prefix(1);
  bool in_time = false;
  bool any = false;
  bool fraction_seen = false;
  std::string_view order = "YMWD";
  while (!s.empty()) {
    if (s[0] == 'T') {
      if (in_time) return false;
      in_time = true;
      order = "HMS";
      s.remove_prefix(1);
      if (s.empty()) return false;
      continue;
    }
    if (fraction_seen) return false;  // a fraction only on the last component
    std::size_t n = 0;
    while (n < s.size() && std::isdigit(static_cast<unsigned char>(s[n]))) ++n;
    if (n == 0) return false;
    if (n < s.size() && (s[n] == '.' || s[n] == ',')) {
      std::size_t m = n + 1;
      while (m < s.size() && std::isdigit(static_cast<unsigned char>(s[m]))) ++m;
      if (m == n + 1) return false;
      n = m;
      fraction_seen = true;
    }
    if (n >= s.size()) return false;
    const auto pos = order.find(s[n]);
    if (pos == std::string_view::npos) return false;
    order.remove_prefix(pos + 1);  // designators in order, each once
    s.remove_prefix(n + 1);
    any = true;
  }
  return any;
}

// A --DTC value: a datetime, or an interval of two (or datetime/duration).
bool IsIsoDtc(std::string_view s) {
  const auto slash = s.find('/');
  if (slash == std::string_view::npos) return IsIsoDateTime(s);
  const std::string_view a = s.substr(0, slash);
  const std::string_view b = s.substr(slash + 1);
  return (IsIsoDateTime(a) || IsIsoDuration(a)) && (IsIsoDateTime(b) || IsIsoDuration(b)) &&
         !(IsIsoDuration(a) && IsIsoDuration(b));
}

// ---------------------------------------------------------------------------
// Domain classes and the variables each requires.

enum class DomainClass : std::uint8_t {
  kSpecialPurpose,  // DM, CO, SE
  kTrialDesign,     // TA, TE, TS, TX, TI, TV
  kInterventions,
  kEvents,
  kFindings,
  kRelationship,  // RELREC, SUPP--
  kOther,
};

bool IsSupp(std::string_view name) { return StartsWith(name, "SUPP") && name.size() > 4; }

DomainClass ClassOf(std::string_view name, const Table& table, std::string_view prefix) {
  static const std::set<std::string_view> kInterventions = {"EX", "CM", "EC", "PR",
                                                            "SU", "ML", "AG"};
  static const std::set<std::string_view> kEvents = {"AE", "DS", "MH", "CE", "DV", "HO"};
  static const std::set<std::string_view> kFindings = {
      "BG", "BW", "CL", "CV", "DD", "EG", "FA", "FW", "IE", "IS", "LB", "MA", "MB", "MI", "MS",
      "OM", "PC", "PE", "PM", "PP", "QS", "RE", "RS", "SC", "TF", "TR", "TU", "VS", "DA", "RP"};
  if (name == "DM" || name == "CO" || name == "SE" || name == "SV") {
    return DomainClass::kSpecialPurpose;
  }
  if (name == "TA" || name == "TE" || name == "TS" || name == "TX" || name == "TI" ||
      name == "TV" || name == "TD" || name == "TM") {
    return DomainClass::kTrialDesign;
  }
  if (name == "RELREC" || IsSupp(name)) return DomainClass::kRelationship;
  if (kInterventions.count(name)) return DomainClass::kInterventions;
  if (kEvents.count(name)) return DomainClass::kEvents;
  if (kFindings.count(name)) return DomainClass::kFindings;
  // A domain we do not know: its topic variable tells its class.
  const std::string p(prefix);
  if (table.ColumnIndex(p + "TESTCD") >= 0) return DomainClass::kFindings;
  if (table.ColumnIndex(p + "TRT") >= 0) return DomainClass::kInterventions;
  if (table.ColumnIndex(p + "TERM") >= 0) return DomainClass::kEvents;
  return DomainClass::kOther;
}

// Required variables: "--" stands for the domain prefix.
std::vector<std::string> RequiredVariables(std::string_view name, DomainClass cls,
                                           std::string_view prefix, Standard standard,
                                           bool has_poolid) {
  std::vector<std::string> vars;
  const std::string subject = has_poolid ? "" : "USUBJID";
  auto add = [&](std::initializer_list<std::string_view> names) {
    for (std::string_view n : names) {
      if (n.empty()) continue;
      vars.push_back(StartsWith(n, "--") ? std::string(prefix) + std::string(n.substr(2))
                                         : std::string(n));
    }
  };
  switch (cls) {
    case DomainClass::kSpecialPurpose:
      if (name == "DM") {
        add({"STUDYID", "DOMAIN", "USUBJID", "SUBJID", "SEX", "ARMCD", "ARM"});
        if (standard == Standard::kSdtm) add({"SITEID", "COUNTRY"});
        if (standard == Standard::kSend) add({"SETCD"});
      } else if (name == "CO") {
        add({"STUDYID", "DOMAIN", "COSEQ", "COVAL"});
      } else if (name == "SE") {
        add({"STUDYID", "DOMAIN", "USUBJID", "SESEQ", "ETCD", "SESTDTC"});
      } else {
        add({"STUDYID", "DOMAIN", "USUBJID"});
      }
      break;
    case DomainClass::kTrialDesign:
      if (name == "TS")
        add({"STUDYID", "DOMAIN", "TSSEQ", "TSPARMCD", "TSPARM"});
      else if (name == "TA")
        add({"STUDYID", "DOMAIN", "ARMCD", "ARM", "TAETORD", "ETCD"});
      else if (name == "TE")
        add({"STUDYID", "DOMAIN", "ETCD", "ELEMENT", "TESTRL"});
      else if (name == "TX")
        add({"STUDYID", "DOMAIN", "SETCD", "SET", "TXSEQ", "TXPARMCD", "TXPARM", "TXVAL"});
      else
        add({"STUDYID", "DOMAIN"});
      break;
    case DomainClass::kInterventions:
      add({"STUDYID", "DOMAIN", subject, "--SEQ", "--TRT"});
      break;
    case DomainClass::kEvents:
      add({"STUDYID", "DOMAIN", subject, "--SEQ", "--TERM"});
      if (name == "AE" || name == "DS") add({"--DECOD"});
      break;
    case DomainClass::kFindings:
      add({"STUDYID", "DOMAIN", subject, "--SEQ", "--TESTCD", "--TEST"});
      break;
    case DomainClass::kRelationship:
      if (name == "RELREC")
        add({"STUDYID", "RDOMAIN", "IDVAR", "RELID"});
      else
        add({"STUDYID", "RDOMAIN", subject, "QNAM", "QLABEL", "QVAL"});
      break;
    case DomainClass::kOther:
      add({"STUDYID", "DOMAIN"});
      break;
  }
  return vars;
}

bool IsNumericVariable(std::string_view var, std::string_view prefix) {
  static const std::set<std::string_view> kNames = {"AGE", "VISITNUM", "VISITDY", "TAETORD"};
  if (kNames.count(var)) return true;
  if (prefix.empty() || !StartsWith(var, prefix)) return false;
  static const std::set<std::string_view> kSuffixes = {"SEQ",   "STRESN", "DY",     "STDY",
                                                       "ENDY",  "DOSE",   "STNRLO", "STNRHI",
                                                       "NOMDY", "TPTNUM", "REPNUM"};
  return kSuffixes.count(var.substr(prefix.size())) > 0;
}

bool IsCharacterVariable(std::string_view var, std::string_view prefix) {
  static const std::set<std::string_view> kNames = {"STUDYID", "DOMAIN", "USUBJID", "SUBJID",
                                                    "POOLID",  "SEX",    "ARMCD",   "ARM",
                                                    "SETCD",   "RDOMAIN"};
  if (kNames.count(var) || EndsWith(var, "DTC")) return true;
  if (prefix.empty() || !StartsWith(var, prefix)) return false;
  static const std::set<std::string_view> kSuffixes = {"TESTCD", "TEST", "ORRES", "STRESC",
                                                       "STRESU", "TERM", "DECOD", "TRT"};
  return kSuffixes.count(var.substr(prefix.size())) > 0;
}

bool IsDurationVariable(std::string_view var) {
  return EndsWith(var, "DUR") || EndsWith(var, "ELTM") || EndsWith(var, "EVLINT");
}

// TS parameters whose TSVAL is an ISO 8601 duration.
bool IsTsDurationParameter(std::string_view parmcd) {
  return parmcd == "DOSDUR" || parmcd == "SLENGTH" || parmcd == "TRMSAC" || parmcd == "LENGTH" ||
         parmcd == "RECOVDUR";
}

bool IsXportName(std::string_view name) {
  if (name.empty() || name.size() > 8) return false;
  if (std::isdigit(static_cast<unsigned char>(name[0]))) return false;
  return std::all_of(name.begin(), name.end(), [](unsigned char c) {
    return std::isupper(c) || std::isdigit(c) || c == '_';
  });
}

// ---------------------------------------------------------------------------

class Checker {
 public:
  Checker(const std::map<std::string, Table>& domains, const DefineXml* define,
          const CheckOptions& options)
      : domains_(domains), define_(define), options_(options) {}

  ConformanceReport Run(const std::string& define_error) {
    report_.define_checked = define_ != nullptr;
    for (const auto& [name, table] : domains_) {
      report_.datasets.push_back({name, table.num_rows, table.columns.size()});
    }
    DetectStandard();
    FindStudyId();
    if (!define_error.empty()) {
      // The error names the file and line; it carries no data values.
      Add("FDRX-DF0001", "", 0, "", "define.xml could not be parsed: " + define_error);
    }
    CheckRequiredDatasets();
    CollectDmSubjects();
    for (const auto& [name, table] : domains_) CheckDataset(name, table);
    if (define_ != nullptr) CheckDefineDatasets();
    Finish();
    return std::move(report_);
  }

 private:
  // --- bookkeeping -------------------------------------------------------
  void Add(std::string_view rule_id, const std::string& dataset, std::size_t row,
           std::string variable, std::string message) {
    const RuleInfo& rule = Rule(rule_id);
    ++report_.counts_by_rule[std::string(rule.id)];
    switch (rule.severity) {
      case Severity::kError:
        ++report_.errors;
        break;
      case Severity::kWarning:
        ++report_.warnings;
        break;
      case Severity::kNotice:
        ++report_.notices;
        break;
    }
    std::size_t& stored = stored_[{std::string(rule.id), dataset}];
    if (stored >= options_.max_findings_per_rule_and_dataset) {
      ++report_.findings_not_stored;
      return;
    }
    ++stored;
    report_.findings.push_back({std::string(rule.id), rule.severity, dataset, row,
                                std::move(variable), std::move(message)});
  }

  void Finish() {
    std::stable_sort(
        report_.findings.begin(), report_.findings.end(), [](const Finding& a, const Finding& b) {
          return std::tie(a.dataset, a.rule_id, a.row) < std::tie(b.dataset, b.rule_id, b.row);
        });
  }

  // --- study level --------------------------------------------------------
  std::optional<std::string> TsValue(std::string_view parmcd) const {
    const auto ts = domains_.find("TS");
    if (ts == domains_.end()) return std::nullopt;
    const Column* code = FindColumn(ts->second, "TSPARMCD");
    const Column* value = FindColumn(ts->second, "TSVAL");
    if (code == nullptr || value == nullptr) return std::nullopt;
    for (std::size_t r = 0; r < ts->second.num_rows; ++r) {
      if (CellText(*code, r) == parmcd) return CellText(*value, r);
    }
    return std::nullopt;
  }

  void DetectStandard() {
    if (options_.standard != Standard::kUnknown) {
      report_.standard = options_.standard;
      return;
    }
    report_.standard_detected = true;
    Standard detected = Standard::kUnknown;
    const auto dm = domains_.find("DM");
    if (TsValue("SNDIGVER") || TsValue("SPECIES")) {
      detected = Standard::kSend;
    } else if (TsValue("SDTIGVER") || TsValue("SDTMVER")) {
      detected = Standard::kSdtm;
    } else if (define_ != nullptr && define_->standard_name.find("SEND") != std::string::npos) {
      detected = Standard::kSend;
    } else if (define_ != nullptr && define_->standard_name.find("SDTM") != std::string::npos) {
      detected = Standard::kSdtm;
    } else if (dm != domains_.end()) {
      const Table& t = dm->second;
      if (t.ColumnIndex("SPECIES") >= 0 || t.ColumnIndex("SETCD") >= 0) {
        detected = Standard::kSend;
      } else if (t.ColumnIndex("SITEID") >= 0 || t.ColumnIndex("COUNTRY") >= 0 ||
                 t.ColumnIndex("RACE") >= 0) {
        detected = Standard::kSdtm;
      }
    }
    report_.standard = detected;
    if (detected == Standard::kUnknown) {
      Add("FDRX-ST0003", "", 0, "",
          "no TS SNDIGVER/SDTIGVER, no define.xml standard, and DM does not tell SEND from SDTM");
    }
  }

  void FindStudyId() {
    auto first_of = [](const Table& table) -> std::string {
      const Column* c = FindColumn(table, "STUDYID");
      if (c == nullptr) return {};
      for (std::size_t r = 0; r < table.num_rows; ++r) {
        std::string v = CellText(*c, r);
        if (!v.empty()) return v;
      }
      return {};
    };
    const auto dm = domains_.find("DM");
    if (dm != domains_.end()) report_.study_id = first_of(dm->second);
    for (const auto& [name, table] : domains_) {
      if (!report_.study_id.empty()) break;
      report_.study_id = first_of(table);
    }
    if (report_.study_id.empty() && define_ != nullptr) report_.study_id = define_->study_oid;
  }

  void CheckRequiredDatasets() {
    if (report_.standard == Standard::kUnknown) return;
    for (std::string_view name : {"DM", "TS", "EX"}) {
      if (domains_.count(std::string(name)) == 0) {
        Add("FDRX-ST0001", std::string(name), 0, "",
            std::string(StandardName(report_.standard)) + " study has no " + std::string(name) +
                " dataset");
      }
    }
    if (report_.standard == Standard::kSend && domains_.count("BW") == 0) {
      Add("FDRX-ST0002", "BW", 0, "", "SEND study has no BW dataset");
    }
  }

  void CollectDmSubjects() {
    const auto dm = domains_.find("DM");
    if (dm == domains_.end()) return;
    const Column* usubjid = FindColumn(dm->second, "USUBJID");
    if (usubjid == nullptr) return;
    have_dm_subjects_ = true;
    for (std::size_t r = 0; r < dm->second.num_rows; ++r) {
      std::string v = CellText(*usubjid, r);
      if (!v.empty()) dm_subjects_.insert(std::move(v));
    }
  }

  // --- dataset level ------------------------------------------------------
  void CheckDataset(const std::string& name, const Table& table) {
    std::string prefix = name.size() >= 2 ? name.substr(0, 2) : name;
    const bool relationship = name == "RELREC" || IsSupp(name);
    if (relationship) prefix.clear();
    const DomainClass cls = ClassOf(name, table, prefix);
    const bool has_poolid = table.ColumnIndex("POOLID") >= 0;

    CheckReaderProblems(name, table);
    CheckRequiredVariables(name, table, cls, prefix, has_poolid);
    CheckVariableMetadata(name, table, prefix);
    CheckDomainAndStudyId(name, table, relationship);
    CheckKeys(name, table, prefix, cls);
    CheckSubjectsInDm(name, table);
    CheckTerminology(name, table, prefix, cls);
    CheckIsoValues(name, table);
    CheckStandardResults(name, table, prefix);
    if (define_ != nullptr) CheckAgainstDefine(name, table);
  }

  void CheckReaderProblems(const std::string& name, const Table& table) {
    for (const Problem& p : table.problems) {
      const std::string variable =
          p.column >= 0 && p.column < static_cast<int>(table.columns.size())
              ? table.columns[p.column].name
              : std::string();
      Add("FDRX-RD0001", name, p.row >= 0 ? static_cast<std::size_t>(p.row) + 1 : 0, variable,
          p.message);
    }
    if (table.problems_dropped > 0) {
      Add("FDRX-RD0002", name, 0, "",
          std::to_string(table.problems_dropped) + " more reader problems were counted, not kept");
    }
  }

  void CheckRequiredVariables(const std::string& name, const Table& table, DomainClass cls,
                              const std::string& prefix, bool has_poolid) {
    const Column* poolid = FindColumn(table, "POOLID");
    for (const std::string& var :
         RequiredVariables(name, cls, prefix, report_.standard, has_poolid)) {
      const Column* column = FindColumn(table, var);
      if (column == nullptr) {
        Add("FDRX-VR0001", name, 0, var, "required variable " + var + " is missing");
        continue;
      }
      // SDTMIG 3.3+: ARMCD/ARM/ACTARMCD/ACTARM are null when ARMNRS says why.
      const Column* armnrs =
          name == "DM" && (var == "ARMCD" || var == "ARM") ? FindColumn(table, "ARMNRS") : nullptr;
      for (std::size_t r = 0; r < table.num_rows; ++r) {
        if (!column->IsMissing(r)) continue;
        if (column->storage == StorageType::kText && !Trim(column->text[r]).empty()) continue;
        if (armnrs != nullptr && !armnrs->IsMissing(r)) continue;
        Add("FDRX-VR0002", name, r + 1, var, "required variable " + var + " is null");
      }
    }
    // USUBJID and POOLID: one of the two identifies the subject(s) of a record.
    const Column* usubjid = FindColumn(table, "USUBJID");
    if (has_poolid && usubjid != nullptr && poolid != nullptr) {
      for (std::size_t r = 0; r < table.num_rows; ++r) {
        if (usubjid->IsMissing(r) && poolid->IsMissing(r)) {
          Add("FDRX-VR0002", name, r + 1, "USUBJID", "both USUBJID and POOLID are null");
        }
      }
    }
  }

  void CheckVariableMetadata(const std::string& name, const Table& table,
                             const std::string& prefix) {
    for (const Column& column : table.columns) {
      if (!IsXportName(column.name)) {
        Add("FDRX-VR0005", name, 0, column.name,
            "variable name is not a SAS XPORT v5 name (" + std::to_string(column.name.size()) +
                " characters)");
      }
      if (column.label.size() > 40) {
        Add("FDRX-VR0006", name, 0, column.name,
            "label is " + std::to_string(column.label.size()) + " characters, more than 40");
      }
      if (column.storage == StorageType::kText) {
        std::size_t longest = 0;
        for (const std::string& v : column.text) longest = std::max(longest, v.size());
        const std::size_t declared = column.length > 0 ? column.length : 0;
        if (std::max(declared, longest) > 200) {
          Add("FDRX-VR0007", name, 0, column.name,
              "character length is " + std::to_string(std::max(declared, longest)) +
                  " bytes, more than 200");
        }
        if (IsNumericVariable(column.name, prefix)) {
          Add("FDRX-VR0003", name, 0, column.name, column.name + " must be numeric, is character");
        }
      } else if (IsCharacterVariable(column.name, prefix)) {
        Add("FDRX-VR0004", name, 0, column.name, column.name + " must be character, is numeric");
      }
    }
  }

  void CheckDomainAndStudyId(const std::string& name, const Table& table, bool relationship) {
    const Column* domain = FindColumn(table, "DOMAIN");
    if (domain != nullptr && !relationship) {
      // Split datasets (e.g. LBCH) keep the parent's DOMAIN: the name starts with it.
      std::map<std::string, std::pair<std::size_t, std::size_t>> wrong;  // value -> first, count
      for (std::size_t r = 0; r < table.num_rows; ++r) {
        const std::string v = CellText(*domain, r);
        if (v.empty() || v == name || (v.size() == 2 && StartsWith(name, v) && name.size() > 2)) {
          continue;
        }
        auto [it, inserted] = wrong.try_emplace(v, r + 1, 0);
        ++it->second.second;
      }
      for (const auto& [value, at] : wrong) {
        Add("FDRX-CN0001", name, at.first, "DOMAIN",
            "DOMAIN is " + Quoted(value) + ", not '" + name + "' (" + std::to_string(at.second) +
                " records)");
      }
    }
    const Column* studyid = FindColumn(table, "STUDYID");
    if (studyid != nullptr && !report_.study_id.empty()) {
      std::map<std::string, std::pair<std::size_t, std::size_t>> wrong;
      for (std::size_t r = 0; r < table.num_rows; ++r) {
        const std::string v = CellText(*studyid, r);
        if (v.empty() || v == report_.study_id) continue;
        auto [it, inserted] = wrong.try_emplace(v, r + 1, 0);
        ++it->second.second;
      }
      for (const auto& [value, at] : wrong) {
        Add("FDRX-CN0002", name, at.first, "STUDYID",
            "STUDYID is " + Quoted(value) + ", not the study's " + Quoted(report_.study_id) + " (" +
                std::to_string(at.second) + " records)");
      }
    }
  }

  void CheckKeys(const std::string& name, const Table& table, const std::string& prefix,
                 DomainClass cls) {
    const Column* studyid = FindColumn(table, "STUDYID");
    const Column* usubjid = FindColumn(table, "USUBJID");
    const Column* poolid = FindColumn(table, "POOLID");
    auto subject_of = [&](std::size_t r) {
      std::string s = usubjid != nullptr ? CellText(*usubjid, r) : std::string();
      if (s.empty() && poolid != nullptr) {
        const std::string p = CellText(*poolid, r);
        if (!p.empty()) s = "POOL\x1f" + p;
      }
      return s;
    };
    auto study_of = [&](std::size_t r) {
      return studyid != nullptr ? CellText(*studyid, r) : std::string();
    };
    // Key -> first 1-based row. Values joined with a unit separator.
    std::unordered_map<std::string, std::size_t> seen;
    if (name == "DM") {
      if (usubjid == nullptr) return;
      for (std::size_t r = 0; r < table.num_rows; ++r) {
        const std::string subject = subject_of(r);
        if (subject.empty()) continue;
        const auto [it, inserted] = seen.try_emplace(study_of(r) + "\x1f" + subject, r + 1);
        if (!inserted) {
          Add("FDRX-KY0001", name, r + 1, "USUBJID",
              "STUDYID+USUBJID repeats record " + std::to_string(it->second));
        }
      }
      return;
    }
    if (IsSupp(name)) {
      std::vector<const Column*> parts;
      for (std::string_view v : {"RDOMAIN", "IDVAR", "IDVARVAL", "QNAM"}) {
        parts.push_back(FindColumn(table, v));
      }
      if (parts.back() == nullptr) return;
      for (std::size_t r = 0; r < table.num_rows; ++r) {
        std::string key = study_of(r) + "\x1f" + subject_of(r);
        for (const Column* c : parts) key += "\x1f" + (c != nullptr ? CellText(*c, r) : "");
        const auto [it, inserted] = seen.try_emplace(std::move(key), r + 1);
        if (!inserted) {
          Add("FDRX-KY0003", name, r + 1, "QNAM",
              "QNAM repeats for one parent record, as in record " + std::to_string(it->second));
        }
      }
      return;
    }
    if (prefix.empty() || (usubjid == nullptr && poolid == nullptr)) return;
    if (cls == DomainClass::kTrialDesign) return;
    const Column* seq = FindColumn(table, prefix + "SEQ");
    if (seq == nullptr) return;
    for (std::size_t r = 0; r < table.num_rows; ++r) {
      const std::string subject = subject_of(r);
      const std::string sequence = CellText(*seq, r);
      if (subject.empty() || sequence.empty()) continue;
      const auto [it, inserted] =
          seen.try_emplace(study_of(r) + "\x1f" + subject + "\x1f" + sequence, r + 1);
      if (!inserted) {
        Add("FDRX-KY0002", name, r + 1, prefix + "SEQ",
            "STUDYID+USUBJID+" + prefix + "SEQ repeats record " + std::to_string(it->second));
      }
    }
  }

  void CheckSubjectsInDm(const std::string& name, const Table& table) {
    if (name == "DM" || !have_dm_subjects_) return;
    const Column* usubjid = FindColumn(table, "USUBJID");
    if (usubjid == nullptr) return;
    for (std::size_t r = 0; r < table.num_rows; ++r) {
      const std::string v = CellText(*usubjid, r);
      // A subject id is not a code: never quoted.
      if (!v.empty() && dm_subjects_.count(v) == 0) {
        Add("FDRX-CN0003", name, r + 1, "USUBJID", "USUBJID is not in DM");
      }
    }
  }

  // One finding per distinct value outside `codelist`, at its first record.
  void CheckColumnTerms(const std::string& name, const Table& table, const std::string& var,
                        Codelist codelist, std::string_view rule_id,
                        const std::function<bool(std::size_t)>& row_filter = {}) {
    const Column* column = FindColumn(table, var);
    if (column == nullptr || column->storage != StorageType::kText) return;
    std::map<std::string, std::pair<std::size_t, std::size_t>> unknown;  // first row, count
    for (std::size_t r = 0; r < table.num_rows; ++r) {
      if (row_filter && !row_filter(r)) continue;
      const std::string v = CellText(*column, r);
      if (v.empty() || InCodelist(codelist, v)) continue;
      auto [it, inserted] = unknown.try_emplace(v, r + 1, 0);
      ++it->second.second;
    }
    for (const auto& [value, at] : unknown) {
      Add(rule_id, name, at.first, var,
          var + " " + Quoted(value) + " is not in fedrx's " + CodelistName(codelist) + " terms (" +
              std::to_string(at.second) + " records)");
    }
  }

  void CheckTerminology(const std::string& name, const Table& table, const std::string& prefix,
                        DomainClass cls) {
    const bool send = report_.standard == Standard::kSend;
    if (name == "DM") {
      CheckColumnTerms(name, table, "SEX", Codelist::kSex, "FDRX-CT0001");
      if (send) {
        CheckColumnTerms(name, table, "SPECIES", Codelist::kSpecies, "FDRX-CT0002");
        CheckColumnTerms(name, table, "STRAIN", Codelist::kStrain, "FDRX-CT0003");
      }
    }
    if (name == "TS") {
      const Column* code = FindColumn(table, "TSPARMCD");
      if (code != nullptr) {
        auto parm_is = [&](std::string_view parmcd) {
          return [&table, code, parmcd](std::size_t r) { return CellText(*code, r) == parmcd; };
        };
        if (send) {
          CheckColumnTerms(name, table, "TSVAL", Codelist::kSpecies, "FDRX-CT0002",
                           parm_is("SPECIES"));
          CheckColumnTerms(name, table, "TSVAL", Codelist::kStrain, "FDRX-CT0003",
                           parm_is("STRAIN"));
        }
        CheckColumnTerms(name, table, "TSVAL", Codelist::kRoute, "FDRX-CT0004", parm_is("ROUTE"));
      }
    }
    if (name == "EX") {
      CheckColumnTerms(name, table, "EXROUTE", Codelist::kRoute, "FDRX-CT0004");
      CheckColumnTerms(name, table, "EXDOSU", Codelist::kUnit, "FDRX-CT0005");
    }
    if (cls == DomainClass::kFindings && !prefix.empty()) {
      CheckColumnTerms(name, table, prefix + "STRESU", Codelist::kUnit, "FDRX-CT0005");
    }
    if (name == "BW")
      CheckColumnTerms(name, table, "BWTESTCD", Codelist::kBwTestCode, "FDRX-CT0006");
    if (name == "LB")
      CheckColumnTerms(name, table, "LBTESTCD", Codelist::kLbTestCode, "FDRX-CT0007");
  }

  void CheckIsoValues(const std::string& name, const Table& table) {
    for (const Column& column : table.columns) {
      if (column.storage != StorageType::kText) continue;  // VR0004 reports numeric --DTC
      const bool dtc = EndsWith(column.name, "DTC");
      const bool dur = IsDurationVariable(column.name);
      if (!dtc && !dur) continue;
      for (std::size_t r = 0; r < table.num_rows; ++r) {
        const std::string_view v = Trim(column.text[r]);
        if (v.empty()) continue;
        if (dtc && !IsIsoDtc(v)) {
          Add("FDRX-DT0001", name, r + 1, column.name,
              column.name + " " + Quoted(v) + " is not an ISO 8601 date/datetime");
        } else if (dur && !IsIsoDuration(v)) {
          Add("FDRX-DT0002", name, r + 1, column.name,
              column.name + " " + Quoted(v) + " is not an ISO 8601 duration");
        }
      }
    }
    if (name != "TS") return;
    const Column* code = FindColumn(table, "TSPARMCD");
    const Column* value = FindColumn(table, "TSVAL");
    if (code == nullptr || value == nullptr || value->storage != StorageType::kText) return;
    for (std::size_t r = 0; r < table.num_rows; ++r) {
      const std::string parmcd = CellText(*code, r);
      const std::string v = CellText(*value, r);
      if (v.empty()) continue;
      if (IsTsDurationParameter(parmcd) && !IsIsoDuration(v)) {
        Add("FDRX-DT0002", name, r + 1, "TSVAL",
            "TSVAL of " + Quoted(parmcd) + " " + Quoted(v) + " is not an ISO 8601 duration");
      } else if (EndsWith(parmcd, "DTC") && !IsIsoDtc(v)) {
        Add("FDRX-DT0001", name, r + 1, "TSVAL",
            "TSVAL of " + Quoted(parmcd) + " " + Quoted(v) + " is not an ISO 8601 date");
      }
    }
  }

  void CheckStandardResults(const std::string& name, const Table& table,
                            const std::string& prefix) {
    if (prefix.empty()) return;
    const Column* stresc = FindColumn(table, prefix + "STRESC");
    const Column* stresn = FindColumn(table, prefix + "STRESN");
    if (stresc == nullptr || stresn == nullptr || stresc->storage != StorageType::kText ||
        stresn->storage != StorageType::kNumber) {
      return;
    }
    for (std::size_t r = 0; r < table.num_rows; ++r) {
      const std::optional<double> c = ParseNumber(stresc->text[r]);
      if (!c) continue;
      if (stresn->IsMissing(r)) {
        Add("FDRX-NM0002", name, r + 1, prefix + "STRESN",
            prefix + "STRESC is numeric but " + prefix + "STRESN is missing");
        continue;
      }
      // Values are not shown: results may be patient-derived.
      const double relative = std::fabs(stresn->number[r] - *c) / std::max(1e-12, std::fabs(*c));
      if (relative > 1e-4) {
        Add("FDRX-NM0001", name, r + 1, prefix + "STRESN",
            prefix + "STRESN differs from the number in " + prefix + "STRESC");
      } else if (relative > 1e-9) {
        Add("FDRX-NM0003", name, r + 1, prefix + "STRESN",
            prefix + "STRESN is a rounded copy of " + prefix + "STRESC");
      }
    }
  }

  // --- define.xml ---------------------------------------------------------
  static bool DefineTypeIsNumeric(std::string_view type) {
    return type == "integer" || type == "float" || type == "double" || type == "decimal";
  }

  void CheckAgainstDefine(const std::string& name, const Table& table) {
    const DefineDataset* dataset = define_->FindDataset(name);
    if (dataset == nullptr) {
      Add("FDRX-DF0002", name, 0, "", "dataset " + name + " is not in define.xml");
      return;
    }
    for (const Column& column : table.columns) {
      const DefineItem* item = define_->FindItem(*dataset, column.name);
      if (item == nullptr) {
        Add("FDRX-DF0004", name, 0, column.name,
            column.name + " is not in define.xml's " + dataset->name);
        continue;
      }
      const bool define_numeric = DefineTypeIsNumeric(item->data_type);
      const bool data_numeric = column.storage == StorageType::kNumber;
      if (define_numeric != data_numeric) {
        Add("FDRX-DF0006", name, 0, column.name,
            "define.xml DataType is " + Quoted(item->data_type) + " but the data are " +
                (data_numeric ? "numeric" : "character"));
      } else if (!data_numeric && item->length > 0 && column.length > 0 &&
                 item->length != column.length) {
        Add("FDRX-DF0007", name, 0, column.name,
            "length is " + std::to_string(column.length) + ", define.xml Length is " +
                std::to_string(item->length));
      }
    }
    for (const DefineVariable& variable : dataset->variables) {
      const int index = table.ColumnIndex(variable.name);
      if (index >= 0 && variable.mandatory) {
        const Column& column = table.columns[index];
        for (std::size_t r = 0; r < table.num_rows; ++r) {
          if (column.IsMissing(r)) {
            Add("FDRX-DF0008", name, r + 1, variable.name,
                variable.name + " is Mandatory in define.xml but null");
          }
        }
      }
      if (index < 0) {
        Add("FDRX-DF0005", name, 0, variable.name,
            variable.name + " is in define.xml's " + dataset->name + " but not in the data");
      }
    }
  }

  void CheckDefineDatasets() {
    for (const DefineDataset& dataset : define_->datasets) {
      std::string upper = dataset.name;
      std::transform(upper.begin(), upper.end(), upper.begin(),
                     [](unsigned char c) { return std::toupper(c); });
      if (domains_.count(upper) == 0) {
        Add("FDRX-DF0003", upper, 0, "",
            "define.xml describes " + upper + " (line " + std::to_string(dataset.line) +
                ") but the study has no such dataset");
      }
    }
  }

  const std::map<std::string, Table>& domains_;
  const DefineXml* define_;
  const CheckOptions& options_;
  ConformanceReport report_;
  std::map<std::pair<std::string, std::string>, std::size_t> stored_;
  bool have_dm_subjects_ = false;
  std::unordered_set<std::string> dm_subjects_;
};

}  // namespace

const char* SeverityName(Severity severity) {
  switch (severity) {
    case Severity::kError:
      return "error";
    case Severity::kWarning:
      return "warning";
    case Severity::kNotice:
      return "notice";
  }
  return "unknown";
}

const char* StandardName(Standard standard) {
  switch (standard) {
    case Standard::kSend:
      return "SEND";
    case Standard::kSdtm:
      return "SDTM";
    case Standard::kUnknown:
      break;
  }
  return "unknown";
}

std::span<const RuleInfo> ConformanceRules() { return kRules; }

ConformanceReport CheckTables(const std::map<std::string, Table>& domains, const DefineXml* define,
                              const CheckOptions& options) {
  return Checker(domains, define, options).Run({});
}

ConformanceReport CheckStudy(const StudyFolder& study, const CheckOptions& options) {
  const DefineXml* define = study.define ? &*study.define : nullptr;
  return Checker(study.domains, define, options).Run(study.define_error);
}

std::string ReportJson(const ConformanceReport& report) {
  nlohmann::ordered_json out;
  out["study_id"] = report.study_id;
  out["standard"] = StandardName(report.standard);
  out["standard_detected"] = report.standard_detected;
  out["define_checked"] = report.define_checked;
  auto& datasets = out["datasets"] = nlohmann::ordered_json::array();
  for (const DatasetSummary& d : report.datasets) {
    datasets.push_back({{"name", d.name}, {"rows", d.rows}, {"columns", d.columns}});
  }
  out["counts"] = {{"error", report.errors},
                   {"warning", report.warnings},
                   {"notice", report.notices},
                   {"not_stored", report.findings_not_stored}};
  auto& by_rule = out["counts_by_rule"] = nlohmann::ordered_json::object();
  for (const auto& [rule, count] : report.counts_by_rule) by_rule[rule] = count;
  auto& findings = out["findings"] = nlohmann::ordered_json::array();
  for (const Finding& f : report.findings) {
    findings.push_back({{"rule_id", f.rule_id},
                        {"severity", SeverityName(f.severity)},
                        {"dataset", f.dataset},
                        {"row", f.row},
                        {"variable", f.variable},
                        {"message", f.message}});
  }
  // Messages hold only ASCII we wrote and code-like values; replace anything
  // else rather than throw on invalid UTF-8 from a file.
  return out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
}

void PrintReport(const ConformanceReport& report, std::ostream& out, std::size_t max_rows) {
  std::vector<const Finding*> order;
  order.reserve(report.findings.size());
  for (const Finding& f : report.findings) order.push_back(&f);
  std::stable_sort(order.begin(), order.end(), [](const Finding* a, const Finding* b) {
    return static_cast<int>(a->severity) < static_cast<int>(b->severity);
  });
  auto cell = [](std::string_view s, std::size_t width) {
    std::string v(s.substr(0, width));
    v.resize(width, ' ');
    return v;
  };
  out << cell("SEVERITY", 8) << ' ' << cell("RULE", 11) << ' ' << cell("DATASET", 8) << ' '
      << std::setw(6) << "ROW" << ' ' << cell("VARIABLE", 8) << ' ' << "MESSAGE\n";
  std::size_t shown = 0;
  for (const Finding* f : order) {
    if (shown == max_rows) break;
    ++shown;
    out << cell(SeverityName(f->severity), 8) << ' ' << cell(f->rule_id, 11) << ' '
        << cell(f->dataset.empty() ? "-" : f->dataset, 8) << ' ' << std::setw(6)
        << (f->row == 0 ? std::string("-") : std::to_string(f->row)) << ' '
        << cell(f->variable.empty() ? "-" : f->variable, 8) << ' ' << f->message << '\n';
  }
  const std::size_t total = report.errors + report.warnings + report.notices;
  std::size_t records = 0;
  for (const DatasetSummary& d : report.datasets) records += d.rows;
  out << "study " << (report.study_id.empty() ? "?" : report.study_id) << " ("
      << StandardName(report.standard) << "): " << report.datasets.size() << " datasets, "
      << records << " records; " << report.errors << " errors, " << report.warnings << " warnings, "
      << report.notices << " notices";
  if (total > shown) out << " (" << (total - shown) << " not shown)";
  out << '\n';
}

}  // namespace fedrx::ingest::conformance
