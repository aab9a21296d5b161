#include "services/ingest/cdm_map.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <unordered_map>
#include <utility>
#include <vector>

#include "services/ingest/units.h"

namespace fedrx::ingest::cdm {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string FormatNumber(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.15g", v);
  return buf;
}

// Parses all of `s` as a number; "NA"/empty are missing, not invalid.
std::optional<double> ParseNumber(std::string_view s, bool* invalid) {
  s = Trim(s);
  if (s.empty() || s == "NA" || s == ".") return std::nullopt;
  std::string copy(s);
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(copy.c_str(), &end);
  if (end != copy.c_str() + copy.size() || errno == ERANGE || !std::isfinite(v)) {
    if (invalid != nullptr) *invalid = true;
    return std::nullopt;
  }
  return v;
}

// Column access by name, tolerant of absent columns (then empty/missing).
class Rows {
 public:
  explicit Rows(const Table& table) : table_(table) {}
  int Col(std::string_view name) const { return table_.ColumnIndex(name); }

  std::string Text(int col, std::size_t row) const {
    if (col < 0) return {};
    const Cell cell = table_.At(row, static_cast<std::size_t>(col));
    if (const auto* s = std::get_if<std::string_view>(&cell)) return std::string(Trim(*s));
    if (const auto* d = std::get_if<double>(&cell)) return FormatNumber(*d);
    return {};
  }
  std::string Text(std::string_view name, std::size_t row) const { return Text(Col(name), row); }

  std::optional<double> Number(int col, std::size_t row, bool* invalid) const {
    if (col < 0) return std::nullopt;
    const Cell cell = table_.At(row, static_cast<std::size_t>(col));
    if (const auto* d = std::get_if<double>(&cell)) return *d;
    if (const auto* s = std::get_if<std::string_view>(&cell)) return ParseNumber(*s, invalid);
    return std::nullopt;
  }

  std::size_t size() const { return table_.num_rows; }

 private:
  const Table& table_;
};

bool IsFindingsDomain(const std::string& name, const Table& table) {
  if (name.rfind("SUPP", 0) == 0) return false;
  static const std::set<std::string> kNotFindings = {"DM", "EX", "AE", "TS", "TX",    "TA",
                                                     "TE", "SE", "DS", "CO", "RELREC"};
  if (kNotFindings.count(name) != 0) return false;
  return table.ColumnIndex("USUBJID") >= 0 && table.ColumnIndex(name + "TESTCD") >= 0;
}

class Mapper {
 public:
  Mapper(const std::map<std::string, Table>& domains, const MapOptions& options)
      : domains_(domains), options_(options) {}

  core::Result<StudyData> Run() {
    const auto dm_it = domains_.find("DM");
    if (dm_it == domains_.end()) {
      return core::FailedPrecondition("study has no DM domain; subjects cannot be mapped", "DM");
    }
    if (dm_it->second.ColumnIndex("USUBJID") < 0) {
      return core::InvalidArgument("DM has no USUBJID column", "DM.USUBJID");
    }
    out_.study.standard =
        options_.standard != Standard::kUnknown ? options_.standard : DetectStandard(domains_);
    for (const auto& [name, table] : domains_) {
      DomainTally t;
      t.domain = name;
      t.rows = table.num_rows;
      tally_index_[name] = out_.tallies.size();
      out_.tallies.push_back(t);
    }
    if (const Table* ts = Find("TS")) MapTs(*ts);
    if (const Table* tx = Find("TX")) MapTx(*tx);
    MapDm(dm_it->second);
    if (const Table* ex = Find("EX")) MapEx(*ex);
    if (const Table* ae = Find("AE")) MapAe(*ae);
    for (const auto& [name, table] : domains_) {
      if (name == "TS" || name == "TX" || name == "DM" || name == "EX" || name == "AE") continue;
      if (IsFindingsDomain(name, table)) {
        MapFindings(name, table);
      } else {
        DomainTally& t = Tally(name);
        t.unmapped = t.rows;
        Issue(IssueKind::kDomainUnmapped, name, -1, "",
              name.rfind("SUPP", 0) == 0 ? "supplemental qualifiers are not mapped into the model"
                                         : "domain has no counterpart in the common data model");
      }
    }
    FillStudyFallbacks();
    FillGroupDosesFromExposure();
    return std::move(out_);
  }

 private:
  const Table* Find(const std::string& name) const {
    const auto it = domains_.find(name);
    return it == domains_.end() ? nullptr : &it->second;
  }
  DomainTally& Tally(const std::string& domain) { return out_.tallies[tally_index_.at(domain)]; }

  void Issue(IssueKind kind, const std::string& domain, std::int64_t row, std::string variable,
             std::string why) {
    DomainTally& t = Tally(domain);
    std::size_t& stored = issues_stored_[domain];
    if (stored >= options_.max_issues_per_domain) {
      ++t.issues_dropped;
      return;
    }
    ++stored;
    out_.issues.push_back({kind, domain, row, std::move(variable), std::move(why)});
  }
  void Unmapped(const std::string& domain, std::size_t row, std::string variable, std::string why) {
    ++Tally(domain).unmapped;
    Issue(IssueKind::kRowUnmapped, domain, static_cast<std::int64_t>(row), std::move(variable),
          std::move(why));
  }
  void Mapped(const std::string& domain) { ++Tally(domain).mapped; }

  std::optional<double> Num(const Rows& r, const std::string& domain, std::size_t row,
                            std::string_view variable) {
    bool invalid = false;
    auto v = r.Number(r.Col(variable), row, &invalid);
    if (invalid) {
      Issue(IssueKind::kValueInvalid, domain, static_cast<std::int64_t>(row), std::string(variable),
            "not a number; left empty");
    }
    return v;
  }

  // Normalises (value, unit) in place; reports an unknown unit.
  bool NormaliseValue(std::optional<double>& value, std::string& unit, units::Context context,
                      const std::string& test_code, const std::string& domain, std::size_t row,
                      const std::string& variable) {
    if (!value) return false;
    auto n = units::Normalise(*value, unit, context, test_code);
    if (!n.ok()) {
      ++Tally(domain).unnormalised;
      Issue(IssueKind::kUnitUnnormalised, domain, static_cast<std::int64_t>(row), variable,
            "unit '" + unit + "' is not in the normalisation table; value kept in it");
      return false;
    }
    value = n->value;
    unit = n->unit;
    return true;
  }

  void MapTs(const Table& table) {
    Rows r(table);
    const int parmcd = r.Col("TSPARMCD");
    for (std::size_t i = 0; i < r.size(); ++i) {
      const std::string code = r.Text(parmcd, i);
      if (code.empty()) {
        Unmapped("TS", i, "TSPARMCD", "TSPARMCD is empty");
        continue;
      }
      std::string value = r.Text("TSVAL", i);
      if (value.empty()) value = r.Text("TSVALNF", i);
      out_.study.parameters.emplace(code, value);  // the first row of a code wins
      if (out_.study.id.empty()) out_.study.id = r.Text("STUDYID", i);
      Mapped("TS");
    }
    Study& s = out_.study;
    const auto param = [&](std::initializer_list<const char*> codes) -> std::string {
      for (const char* c : codes) {
        const auto it = s.parameters.find(c);
        if (it != s.parameters.end() && !it->second.empty()) return it->second;
      }
      return {};
    };
    s.title = param({"STITLE", "TITLE"});
    s.design = param({"SDESIGN"});
    s.study_type = param({"SSTYP", "STYPE"});
    s.species = param({"SPECIES"});
    s.strain = param({"STRAIN"});
    s.route = param({"ROUTE"});
    s.sponsor = param({"SSPONSOR", "SPONSOR"});
    s.treatment = param({"TRT"});
    s.vehicle = param({"TRTV"});
    s.sex_population = param({"SEXPOP"});
    s.planned_duration = param({"DOSDUR"});
    if (!s.planned_duration.empty()) {
      s.planned_duration_days = IsoDurationDays(s.planned_duration);
      if (!s.planned_duration_days) {
        Issue(IssueKind::kValueInvalid, "TS", -1, "TSVAL",
              "DOSDUR is not an ISO 8601 duration in weeks/days/hours; days left empty");
      }
    }
    const std::string planned = param({"SPLANSUB", "PLANSUB"});
    if (!planned.empty()) {
      bool invalid = false;
      s.planned_subjects = ParseNumber(planned, &invalid);
    }
  }

  void MapTx(const Table& table) {
    Rows r(table);
    const int setcd = r.Col("SETCD");
    const int parmcd = r.Col("TXPARMCD");
    const int val = r.Col("TXVAL");
    std::map<std::string, std::size_t> index;
    std::map<std::string, std::size_t> first_row;
    for (std::size_t i = 0; i < r.size(); ++i) {
      const std::string set = r.Text(setcd, i);
      const std::string code = r.Text(parmcd, i);
      if (set.empty() || code.empty()) {
        Unmapped("TX", i, set.empty() ? "SETCD" : "TXPARMCD", "SETCD or TXPARMCD is empty");
        continue;
      }
      auto it = index.find(set);
      if (it == index.end()) {
        it = index.emplace(set, out_.dose_groups.size()).first;
        first_row[set] = i;
        DoseGroup g;
        g.set_code = set;
        g.label = r.Text("SET", i);
        out_.dose_groups.push_back(std::move(g));
      }
      out_.dose_groups[it->second].parameters.emplace(code, r.Text(val, i));
      Mapped("TX");
    }
    for (DoseGroup& g : out_.dose_groups) {
      const auto p = [&](const char* code) -> std::string {
        const auto it = g.parameters.find(code);
        return it == g.parameters.end() ? std::string() : it->second;
      };
      g.arm_code = p("ARMCD");
      if (g.label.empty()) g.label = p("GRPLBL");
      bool invalid = false;
      g.dose = ParseNumber(p("TRTDOS"), &invalid);
      if (invalid) {
        Issue(IssueKind::kValueInvalid, "TX", static_cast<std::int64_t>(first_row[g.set_code]),
              "TXVAL", "TRTDOS of set is not a single number; dose left empty");
      }
      g.dose_unit = p("TRTDOSU");
      g.unit_normalised = NormaliseValue(g.dose, g.dose_unit, units::Context::kDose, "", "TX",
                                         first_row[g.set_code], "TXVAL");
      g.control = !p("TCNTRL").empty() || (g.dose && *g.dose == 0);
      const std::string label = Lower(g.label + " " + p("SETLBL"));
      g.recovery = label.find("recovery") != std::string::npos &&
                   label.find("nonrecovery") == std::string::npos &&
                   label.find("non-recovery") == std::string::npos;
      g.toxicokinetic = p("TKDESC") == "TK";
    }
  }

  void MapDm(const Table& table) {
    Rows r(table);
    const bool send = out_.study.standard == Standard::kSend;
    const int usubjid = r.Col("USUBJID");
    std::set<std::string> seen;
    const bool had_groups = !out_.dose_groups.empty();
    for (std::size_t i = 0; i < r.size(); ++i) {
      Subject s;
      s.usubjid = r.Text(usubjid, i);
      if (s.usubjid.empty()) {
        Unmapped("DM", i, "USUBJID", "USUBJID is empty");
        continue;
      }
      if (!seen.insert(s.usubjid).second) {
        Unmapped("DM", i, "USUBJID", "USUBJID repeats an earlier DM row");
        continue;
      }
      if (out_.study.id.empty()) out_.study.id = r.Text("STUDYID", i);
      s.subject_id = r.Text("SUBJID", i);
      s.sex = r.Text("SEX", i);
      s.species = r.Text("SPECIES", i);
      s.strain = r.Text("STRAIN", i);
      s.arm_code = r.Text("ARMCD", i);
      s.arm = r.Text("ARM", i);
      s.set_code = send ? r.Text("SETCD", i) : std::string();
      if (s.set_code.empty()) s.set_code = s.arm_code;
      s.reference_start = r.Text("RFSTDTC", i);
      s.age = Num(r, "DM", i, "AGE");
      s.age_unit = r.Text("AGEU", i);
      s.age_text = r.Text("AGETXT", i);
      if (!s.set_code.empty() && out_.FindDoseGroup(s.set_code) == nullptr) {
        if (had_groups) {
          Issue(IssueKind::kValueInvalid, "DM", static_cast<std::int64_t>(i),
                send ? "SETCD" : "ARMCD", "set/arm code not in TX; a group was made from DM");
        }
        DoseGroup g;
        g.set_code = s.set_code;
        g.arm_code = s.arm_code;
        g.label = send ? r.Text("SET", i) : s.arm;
        if (g.label.empty()) g.label = s.arm;
        const std::string l = Lower(g.label + " " + g.set_code);
        g.control = l.find("placebo") != std::string::npos || l.find("pbo") != std::string::npos ||
                    l.find("control") != std::string::npos;
        out_.dose_groups.push_back(std::move(g));
      }
      subject_index_[s.usubjid] = out_.subjects.size();
      out_.subjects.push_back(std::move(s));
      Mapped("DM");
    }
  }

  // Checks the row's USUBJID; reports and returns empty when it is unusable.
  std::string SubjectOf(const Rows& r, const std::string& domain, std::size_t row) {
    std::string id = r.Text("USUBJID", row);
    if (id.empty()) {
      Unmapped(domain, row, "USUBJID",
               r.Col("POOLID") >= 0 && !r.Text("POOLID", row).empty()
                   ? "pooled result (POOLID) has no subject"
                   : "USUBJID is empty");
      return {};
    }
    if (subject_index_.count(id) == 0) {
      Unmapped(domain, row, "USUBJID", "USUBJID is not in DM");
      return {};
    }
    return id;
  }

  void MapEx(const Table& table) {
    Rows r(table);
    for (std::size_t i = 0; i < r.size(); ++i) {
      std::string id = SubjectOf(r, "EX", i);
      if (id.empty()) continue;
      Exposure e;
      e.usubjid = std::move(id);
      e.treatment = r.Text("EXTRT", i);
      e.dose = Num(r, "EX", i, "EXDOSE");
      e.unit = r.Text("EXDOSU", i);
      e.unit_normalised =
          NormaliseValue(e.dose, e.unit, units::Context::kDose, "", "EX", i, "EXDOSU");
      e.route = r.Text("EXROUTE", i);
      e.frequency = r.Text("EXDOSFRQ", i);
      e.start_day = Num(r, "EX", i, "EXSTDY");
      e.end_day = Num(r, "EX", i, "EXENDY");
      out_.exposures.push_back(std::move(e));
      Mapped("EX");
    }
  }

  void MapAe(const Table& table) {
    Rows r(table);
    for (std::size_t i = 0; i < r.size(); ++i) {
      std::string id = SubjectOf(r, "AE", i);
      if (id.empty()) continue;
      AdverseEvent a;
      a.usubjid = std::move(id);
      a.term = r.Text("AETERM", i);
      a.decoded_term = r.Text("AEDECOD", i);
      if (a.term.empty() && a.decoded_term.empty()) {
        Unmapped("AE", i, "AETERM", "neither AETERM nor AEDECOD names the event");
        continue;
      }
      a.seq = Num(r, "AE", i, "AESEQ");
      a.body_system = r.Text("AEBODSYS", i);
      a.soc = r.Text("AESOC", i);
      a.severity = r.Text("AESEV", i);
      a.toxicity_grade = r.Text("AETOXGR", i);
      const std::string ser = r.Text("AESER", i);
      if (ser == "Y") {
        a.serious = true;
      } else if (ser == "N") {
        a.serious = false;
      } else if (!ser.empty()) {
        Issue(IssueKind::kValueInvalid, "AE", static_cast<std::int64_t>(i), "AESER",
              "AESER is neither Y nor N; left empty");
      }
      a.relationship = r.Text("AEREL", i);
      a.outcome = r.Text("AEOUT", i);
      a.start_day = Num(r, "AE", i, "AESTDY");
      a.end_day = Num(r, "AE", i, "AEENDY");
      out_.adverse_events.push_back(std::move(a));
      Mapped("AE");
    }
  }

  void MapFindings(const std::string& d, const Table& table) {
    Rows r(table);
    const int testcd = r.Col(d + "TESTCD");
    for (std::size_t i = 0; i < r.size(); ++i) {
      std::string id = SubjectOf(r, d, i);
      if (id.empty()) continue;
      Finding f;
      f.domain = d;
      f.usubjid = std::move(id);
      f.test_code = r.Text(testcd, i);
      if (f.test_code.empty()) {
        Unmapped(d, i, d + "TESTCD", "test code is empty");
        continue;
      }
      f.value = Num(r, d, i, d + "STRESN");
      f.text = r.Text(d + "STRESC", i);
      if (f.text.empty()) f.text = r.Text(d + "ORRES", i);
      if (!f.value && f.text.empty()) {
        const std::string stat = r.Text(d + "STAT", i);
        Unmapped(d, i, d + "ORRES",
                 stat.empty() ? "no result (--STRESN, --STRESC and --ORRES empty)"
                              : "no result: " + d + "STAT is " + stat);
        continue;
      }
      f.test_name = r.Text(d + "TEST", i);
      f.category = r.Text(d + "CAT", i);
      f.specimen = r.Text(d + "SPEC", i);
      if (f.specimen.empty()) f.specimen = r.Text(d + "LOC", i);
      f.unit = r.Text(d + "STRESU", i);
      f.unit_normalised = NormaliseValue(f.value, f.unit, units::Context::kFinding, f.test_code, d,
                                         i, d + "STRESU");
      f.severity = r.Text(d + "SEV", i);
      f.study_day = Num(r, d, i, d + "DY");
      f.visit_day = Num(r, d, i, "VISITDY");
      if (!f.visit_day) f.visit_day = Num(r, d, i, d + "NOMDY");
      f.visit = r.Text("VISIT", i);
      if (f.visit.empty()) f.visit = r.Text(d + "NOMLBL", i);
      f.baseline = r.Text(d + "BLFL", i) == "Y" || r.Text(d + "LOBXFL", i) == "Y";
      f.seq = Num(r, d, i, d + "SEQ");
      out_.findings.push_back(std::move(f));
      Mapped(d);
    }
  }

  void FillStudyFallbacks() {
    Study& s = out_.study;
    const auto all_same = [](const auto& items, auto field) -> std::string {
      std::string value;
      for (const auto& item : items) {
        const std::string& v = item.*field;
        if (v.empty()) continue;
        if (value.empty()) {
          value = v;
        } else if (value != v) {
          return {};
        }
      }
      return value;
    };
    if (s.species.empty()) s.species = all_same(out_.subjects, &Subject::species);
    if (s.strain.empty()) s.strain = all_same(out_.subjects, &Subject::strain);
    if (s.species.empty() && s.standard == Standard::kSdtm) s.species = "HUMAN";
    if (s.route.empty()) s.route = all_same(out_.exposures, &Exposure::route);
  }

  // A group without a TX dose takes its subjects' EX dose when they all agree.
  void FillGroupDosesFromExposure() {
    for (DoseGroup& g : out_.dose_groups) {
      if (g.dose) continue;
      std::optional<double> dose;
      std::string unit;
      bool normalised = false;
      bool agree = true;
      bool any = false;
      for (const Exposure& e : out_.exposures) {
        const Subject& s = out_.subjects[subject_index_.at(e.usubjid)];
        if (s.set_code != g.set_code || !e.dose) continue;
        if (!any) {
          dose = e.dose;
          unit = e.unit;
          normalised = e.unit_normalised;
          any = true;
        } else if (*e.dose != *dose || e.unit != unit) {
          agree = false;
          break;
        }
      }
      if (any && agree) {
        g.dose = dose;
        g.dose_unit = unit;
        g.unit_normalised = normalised;
        if (*dose == 0) g.control = true;
      }
    }
  }

  const std::map<std::string, Table>& domains_;
  const MapOptions& options_;
  StudyData out_;
  std::map<std::string, std::size_t> tally_index_;
  std::map<std::string, std::size_t> issues_stored_;
  std::unordered_map<std::string, std::size_t> subject_index_;
};

}  // namespace

Standard DetectStandard(const std::map<std::string, Table>& domains) {
  const auto ts = domains.find("TS");
  if (ts != domains.end()) {
    Rows r(ts->second);
    const int parmcd = r.Col("TSPARMCD");
    for (std::size_t i = 0; i < r.size(); ++i) {
      const std::string code = r.Text(parmcd, i);
      if (code == "SNDIGVER" || code == "SNDCTVER") return Standard::kSend;
      if (code == "SDTMVER" || code == "SDTIGVER") return Standard::kSdtm;
    }
  }
  const auto dm = domains.find("DM");
  if (dm != domains.end() && dm->second.ColumnIndex("SETCD") >= 0) return Standard::kSend;
  for (const char* d : {"BW", "OM", "MI", "MA", "TX"}) {
    if (domains.count(d) != 0) return Standard::kSend;
  }
  for (const char* d : {"AE", "CM", "MH"}) {
    if (domains.count(d) != 0) return Standard::kSdtm;
  }
  if (dm != domains.end() &&
      (dm->second.ColumnIndex("AGE") >= 0 || dm->second.ColumnIndex("RACE") >= 0)) {
    return Standard::kSdtm;
  }
  return Standard::kUnknown;
}

core::Result<StudyData> MapDomains(const std::map<std::string, Table>& domains,
                                   const MapOptions& options) {
  return Mapper(domains, options).Run();
}

core::Result<StudyData> MapStudy(const StudyFolder& folder, const MapOptions& options) {
  auto result = MapDomains(folder.domains, options);
  if (!result.ok()) return result.status().WithContext(folder.path);
  return result;
}

std::optional<double> IsoDurationDays(std::string_view iso) {
  iso = Trim(iso);
  if (iso.size() < 3 || iso[0] != 'P') return std::nullopt;
  double days = 0;
  bool time = false;
  bool any = false;
  std::size_t i = 1;
  while (i < iso.size()) {
    if (iso[i] == 'T') {
      if (time) return std::nullopt;
      time = true;
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < iso.size() && (std::isdigit(static_cast<unsigned char>(iso[j])) || iso[j] == '.')) {
      ++j;
    }
    if (j == i || j == iso.size()) return std::nullopt;
    bool invalid = false;
    const auto n = ParseNumber(iso.substr(i, j - i), &invalid);
    if (!n || invalid) return std::nullopt;
    const char unit = iso[j];
    if (!time && unit == 'W') {
      days += *n * 7;
    } else if (!time && unit == 'D') {
      days += *n;
    } else if (time && unit == 'H') {
      days += *n / 24;
    } else if (time && unit == 'M') {
      days += *n / 1440;
    } else if (time && unit == 'S') {
      days += *n / 86400;
    } else {
      return std::nullopt;  // Y and M (months) have no fixed length in days
    }
    any = true;
    i = j + 1;
  }
  if (!any) return std::nullopt;
  return days;
}

}  // namespace fedrx::ingest::cdm
