#include "services/ingest/cdm_io.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <sstream>
#include <vector>

namespace fedrx::ingest::cdm {
namespace {

namespace fs = std::filesystem;
using core::Status;
using core::StatusCode;

Status DataLoss(std::string message, std::string where) {
  return Status(StatusCode::kDataLoss, std::move(message), std::move(where));
}

std::string FormatDouble(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

bool ParseDouble(const std::string& s, double* out) {
  if (s.empty()) return false;
  char* end = nullptr;
  errno = 0;
  *out = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size() && errno != ERANGE;
}

// One column of an entity's CSV: how to write it and read it back.
template <typename T>
struct Field {
  const char* name;
  std::function<std::string(const T&)> get;
  std::function<bool(T&, const std::string&)> set;  // false: malformed
};

template <typename T>
Field<T> Str(const char* name, std::string T::*m) {
  return {name, [m](const T& t) { return t.*m; },
          [m](T& t, const std::string& s) {
            t.*m = s;
            return true;
          }};
}
template <typename T>
Field<T> OptNum(const char* name, std::optional<double> T::*m) {
  return {name, [m](const T& t) { return (t.*m) ? FormatDouble(*(t.*m)) : std::string(); },
          [m](T& t, const std::string& s) {
            if (s.empty()) {
              t.*m = std::nullopt;
              return true;
            }
            double v = 0;
            if (!ParseDouble(s, &v)) return false;
            t.*m = v;
            return true;
          }};
}
template <typename T>
Field<T> Bool(const char* name, bool T::*m) {
  return {name, [m](const T& t) { return std::string(t.*m ? "true" : "false"); },
          [m](T& t, const std::string& s) {
            if (s != "true" && s != "false") return false;
            t.*m = s == "true";
            return true;
          }};
}
template <typename T>
Field<T> OptBool(const char* name, std::optional<bool> T::*m) {
  return {
      name,
      [m](const T& t) { return (t.*m) ? std::string(*(t.*m) ? "true" : "false") : std::string(); },
      [m](T& t, const std::string& s) {
        if (s.empty()) {
          t.*m = std::nullopt;
          return true;
        }
        if (s != "true" && s != "false") return false;
        t.*m = s == "true";
        return true;
      }};
}
template <typename T>
Field<T> Size(const char* name, std::size_t T::*m) {
  return {name, [m](const T& t) { return std::to_string(t.*m); },
          [m](T& t, const std::string& s) {
            if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos) return false;
            errno = 0;
            const unsigned long long v = std::strtoull(s.c_str(), nullptr, 10);
            if (errno == ERANGE) return false;
            t.*m = static_cast<std::size_t>(v);
            return true;
          }};
}

const std::vector<Field<DoseGroup>>& DoseGroupFields() {
  static const std::vector<Field<DoseGroup>> k = {
      Str("set_code", &DoseGroup::set_code),
      Str("arm_code", &DoseGroup::arm_code),
      Str("label", &DoseGroup::label),
      OptNum("dose", &DoseGroup::dose),
      Str("dose_unit", &DoseGroup::dose_unit),
      Bool("unit_normalised", &DoseGroup::unit_normalised),
      Bool("control", &DoseGroup::control),
      Bool("recovery", &DoseGroup::recovery),
      Bool("toxicokinetic", &DoseGroup::toxicokinetic),
  };
  return k;
}

struct GroupParameter {
  std::string set_code, parameter, value;
};
const std::vector<Field<GroupParameter>>& GroupParameterFields() {
  static const std::vector<Field<GroupParameter>> k = {
      Str("set_code", &GroupParameter::set_code),
      Str("parameter", &GroupParameter::parameter),
      Str("value", &GroupParameter::value),
  };
  return k;
}

const std::vector<Field<Subject>>& SubjectFields() {
  static const std::vector<Field<Subject>> k = {
      Str("usubjid", &Subject::usubjid),
      Str("subject_id", &Subject::subject_id),
      Str("sex", &Subject::sex),
      Str("species", &Subject::species),
      Str("strain", &Subject::strain),
      Str("set_code", &Subject::set_code),
      Str("arm_code", &Subject::arm_code),
      Str("arm", &Subject::arm),
      Str("reference_start", &Subject::reference_start),
      OptNum("age", &Subject::age),
      Str("age_unit", &Subject::age_unit),
      Str("age_text", &Subject::age_text),
  };
  return k;
}

const std::vector<Field<Exposure>>& ExposureFields() {
  static const std::vector<Field<Exposure>> k = {
      Str("usubjid", &Exposure::usubjid),
      Str("treatment", &Exposure::treatment),
      OptNum("dose", &Exposure::dose),
      Str("unit", &Exposure::unit),
      Bool("unit_normalised", &Exposure::unit_normalised),
      Str("route", &Exposure::route),
      Str("frequency", &Exposure::frequency),
      OptNum("start_day", &Exposure::start_day),
      OptNum("end_day", &Exposure::end_day),
  };
  return k;
}

const std::vector<Field<Finding>>& FindingFields() {
  static const std::vector<Field<Finding>> k = {
      Str("domain", &Finding::domain),
      Str("usubjid", &Finding::usubjid),
      Str("test_code", &Finding::test_code),
      Str("test_name", &Finding::test_name),
      Str("category", &Finding::category),
      Str("specimen", &Finding::specimen),
      OptNum("value", &Finding::value),
      Str("unit", &Finding::unit),
      Bool("unit_normalised", &Finding::unit_normalised),
      Str("text", &Finding::text),
      Str("severity", &Finding::severity),
      OptNum("study_day", &Finding::study_day),
      OptNum("visit_day", &Finding::visit_day),
      Str("visit", &Finding::visit),
      Bool("baseline", &Finding::baseline),
      OptNum("seq", &Finding::seq),
  };
  return k;
}

const std::vector<Field<AdverseEvent>>& AdverseEventFields() {
  static const std::vector<Field<AdverseEvent>> k = {
      Str("usubjid", &AdverseEvent::usubjid),
      OptNum("seq", &AdverseEvent::seq),
      Str("term", &AdverseEvent::term),
      Str("decoded_term", &AdverseEvent::decoded_term),
      Str("body_system", &AdverseEvent::body_system),
      Str("soc", &AdverseEvent::soc),
      Str("severity", &AdverseEvent::severity),
      Str("toxicity_grade", &AdverseEvent::toxicity_grade),
      OptBool("serious", &AdverseEvent::serious),
      Str("relationship", &AdverseEvent::relationship),
      Str("outcome", &AdverseEvent::outcome),
      OptNum("start_day", &AdverseEvent::start_day),
      OptNum("end_day", &AdverseEvent::end_day),
  };
  return k;
}

const std::vector<Field<MappingIssue>>& IssueFields() {
  static const std::vector<Field<MappingIssue>> k = {
      {"kind", [](const MappingIssue& i) { return std::string(IssueKindName(i.kind)); },
       [](MappingIssue& i, const std::string& s) { return ParseIssueKind(s, &i.kind); }},
      Str("domain", &MappingIssue::domain),
      {"row", [](const MappingIssue& i) { return std::to_string(i.row); },
       [](MappingIssue& i, const std::string& s) {
         if (s.empty()) return false;
         char* end = nullptr;
         errno = 0;
         const long long v = std::strtoll(s.c_str(), &end, 10);
         if (end != s.c_str() + s.size() || errno == ERANGE) return false;
         i.row = v;
         return true;
       }},
      Str("variable", &MappingIssue::variable),
      Str("why", &MappingIssue::why),
  };
  return k;
}

const std::vector<Field<DomainTally>>& TallyFields() {
  static const std::vector<Field<DomainTally>> k = {
      Str("domain", &DomainTally::domain),
      Size("rows", &DomainTally::rows),
      Size("mapped", &DomainTally::mapped),
      Size("unmapped", &DomainTally::unmapped),
      Size("unnormalised", &DomainTally::unnormalised),
      Size("issues_dropped", &DomainTally::issues_dropped),
  };
  return k;
}

void AppendCsvField(std::string& out, const std::string& field) {
  const bool quote = field.find_first_of(",\"\r\n") != std::string::npos ||
                     (!field.empty() && (field.front() == ' ' || field.back() == ' '));
  if (!quote) {
    out += field;
    return;
  }
  out += '"';
  for (char c : field) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
}

template <typename T>
std::string ToCsv(const std::vector<Field<T>>& fields, const std::vector<T>& rows) {
  std::string out;
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (i) out += ',';
    out += fields[i].name;
  }
  out += '\n';
  for (const T& row : rows) {
    for (std::size_t i = 0; i < fields.size(); ++i) {
      if (i) out += ',';
      AppendCsvField(out, fields[i].get(row));
    }
    out += '\n';
  }
  return out;
}

// Splits RFC 4180 text into records; `lines[i]` is the 1-based line each record
// starts on. False (with *error) on an unterminated quote.
bool ParseCsv(const std::string& text, std::vector<std::vector<std::string>>* records,
              std::vector<std::size_t>* lines, std::string* error) {
  std::vector<std::string> record;
  std::string field;
  bool in_quotes = false;
  bool field_started = false;
  std::size_t line = 1;
  std::size_t record_line = 1;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_quotes) {
      if (c == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') {
          field += '"';
          ++i;
        } else {
          in_quotes = false;
        }
      } else {
        if (c == '\n') ++line;
        field += c;
      }
      continue;
    }
    if (c == '"' && !field_started) {
      in_quotes = true;
      field_started = true;
    } else if (c == ',') {
      record.push_back(std::move(field));
      field.clear();
      field_started = false;
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      record.push_back(std::move(field));
      field.clear();
      field_started = false;
      records->push_back(std::move(record));
      lines->push_back(record_line);
      record.clear();
      ++line;
      record_line = line;
    } else {
      field += c;
      field_started = true;
    }
  }
  if (in_quotes) {
    *error = "unterminated quoted field starting on line " + std::to_string(record_line);
    return false;
  }
  if (field_started || !record.empty()) {
    record.push_back(std::move(field));
    records->push_back(std::move(record));
    lines->push_back(record_line);
  }
  return true;
}

core::Result<std::string> ReadFile(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return core::NotFound("file missing", path.string());
  std::ifstream in(path, std::ios::binary);
  if (!in) return core::Unavailable("cannot open", path.string());
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return core::Unavailable("cannot read", path.string());
  return text;
}

Status WriteFile(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return core::Unavailable("cannot create file", path.string());
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) return core::Unavailable("cannot write file", path.string());
  return Status::Ok();
}

template <typename T>
core::Result<std::vector<T>> FromCsv(const fs::path& path, const std::vector<Field<T>>& fields) {
  FEDRX_ASSIGN_OR_RETURN(const std::string text, ReadFile(path));
  std::vector<std::vector<std::string>> records;
  std::vector<std::size_t> lines;
  std::string error;
  if (!ParseCsv(text, &records, &lines, &error)) return DataLoss(error, path.string());
  if (records.empty()) return DataLoss("no header line", path.string() + ":1");
  const auto& header = records[0];
  bool header_ok = header.size() == fields.size();
  for (std::size_t i = 0; header_ok && i < fields.size(); ++i) {
    header_ok = header[i] == fields[i].name;
  }
  if (!header_ok) return DataLoss("header does not match format fedrx-cdm/1", path.string() + ":1");
  std::vector<T> rows;
  rows.reserve(records.size() - 1);
  for (std::size_t r = 1; r < records.size(); ++r) {
    const std::string where = path.string() + ":" + std::to_string(lines[r]);
    if (records[r].size() != fields.size()) {
      return DataLoss("expected " + std::to_string(fields.size()) + " fields, found " +
                          std::to_string(records[r].size()),
                      where);
    }
    T row{};
    for (std::size_t i = 0; i < fields.size(); ++i) {
      if (!fields[i].set(row, records[r][i])) {
        return DataLoss(std::string("malformed value in column ") + fields[i].name, where);
      }
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

struct KeyValue {
  std::string key, value;
};
const std::vector<Field<KeyValue>>& StudyFields() {
  static const std::vector<Field<KeyValue>> k = {Str("field", &KeyValue::key),
                                                 Str("value", &KeyValue::value)};
  return k;
}
const std::vector<Field<KeyValue>>& ParameterFields() {
  static const std::vector<Field<KeyValue>> k = {Str("parameter", &KeyValue::key),
                                                 Str("value", &KeyValue::value)};
  return k;
}

std::string OptionalText(const std::optional<double>& v) {
  return v ? FormatDouble(*v) : std::string();
}

std::vector<KeyValue> StudyRows(const Study& s) {
  return {
      {"format", kCdmFormat},
      {"id", s.id},
      {"standard", StandardName(s.standard)},
      {"title", s.title},
      {"design", s.design},
      {"study_type", s.study_type},
      {"species", s.species},
      {"strain", s.strain},
      {"route", s.route},
      {"planned_duration", s.planned_duration},
      {"planned_duration_days", OptionalText(s.planned_duration_days)},
      {"sponsor", s.sponsor},
      {"treatment", s.treatment},
      {"vehicle", s.vehicle},
      {"sex_population", s.sex_population},
      {"planned_subjects", OptionalText(s.planned_subjects)},
  };
}

core::Result<Study> StudyFromRows(const std::vector<KeyValue>& rows, const std::string& where) {
  const std::vector<KeyValue> expected = StudyRows(Study{});
  if (rows.size() != expected.size()) return DataLoss("unexpected number of study fields", where);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    if (rows[i].key != expected[i].key) {
      return DataLoss("unexpected study field " + rows[i].key, where);
    }
  }
  if (rows[0].value != kCdmFormat) {
    return core::InvalidArgument("study.csv is not format fedrx-cdm/1", where);
  }
  Study s;
  const auto num = [&](const std::string& text, std::optional<double>* out) {
    if (text.empty()) return true;
    double v = 0;
    if (!ParseDouble(text, &v)) return false;
    *out = v;
    return true;
  };
  s.id = rows[1].value;
  if (!ParseStandard(rows[2].value, &s.standard)) return DataLoss("unknown standard", where);
  s.title = rows[3].value;
  s.design = rows[4].value;
  s.study_type = rows[5].value;
  s.species = rows[6].value;
  s.strain = rows[7].value;
  s.route = rows[8].value;
  s.planned_duration = rows[9].value;
  if (!num(rows[10].value, &s.planned_duration_days)) {
    return DataLoss("malformed planned_duration_days", where);
  }
  s.sponsor = rows[11].value;
  s.treatment = rows[12].value;
  s.vehicle = rows[13].value;
  s.sex_population = rows[14].value;
  if (!num(rows[15].value, &s.planned_subjects)) {
    return DataLoss("malformed planned_subjects", where);
  }
  return s;
}

}  // namespace

Status WriteCdm(const std::string& dir, const StudyData& data) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir, ec)) return core::Unavailable("cannot create directory", dir);
  const fs::path d(dir);
  std::vector<GroupParameter> params;
  for (const DoseGroup& g : data.dose_groups) {
    for (const auto& [k, v] : g.parameters) params.push_back({g.set_code, k, v});
  }
  std::vector<KeyValue> study_params;
  for (const auto& [k, v] : data.study.parameters) study_params.push_back({k, v});
  FEDRX_RETURN_IF_ERROR(WriteFile(d / "study.csv", ToCsv(StudyFields(), StudyRows(data.study))));
  FEDRX_RETURN_IF_ERROR(
      WriteFile(d / "study_parameters.csv", ToCsv(ParameterFields(), study_params)));
  FEDRX_RETURN_IF_ERROR(
      WriteFile(d / "dose_groups.csv", ToCsv(DoseGroupFields(), data.dose_groups)));
  FEDRX_RETURN_IF_ERROR(
      WriteFile(d / "dose_group_parameters.csv", ToCsv(GroupParameterFields(), params)));
  FEDRX_RETURN_IF_ERROR(WriteFile(d / "subjects.csv", ToCsv(SubjectFields(), data.subjects)));
  FEDRX_RETURN_IF_ERROR(WriteFile(d / "exposures.csv", ToCsv(ExposureFields(), data.exposures)));
  FEDRX_RETURN_IF_ERROR(WriteFile(d / "findings.csv", ToCsv(FindingFields(), data.findings)));
  FEDRX_RETURN_IF_ERROR(
      WriteFile(d / "adverse_events.csv", ToCsv(AdverseEventFields(), data.adverse_events)));
  FEDRX_RETURN_IF_ERROR(WriteFile(d / "mapping_issues.csv", ToCsv(IssueFields(), data.issues)));
  FEDRX_RETURN_IF_ERROR(WriteFile(d / "domain_tallies.csv", ToCsv(TallyFields(), data.tallies)));
  return Status::Ok();
}

core::Result<StudyData> ReadCdm(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return core::NotFound("not a directory", dir);
  const fs::path d(dir);
  StudyData data;
  FEDRX_ASSIGN_OR_RETURN(const std::vector<KeyValue> study_rows,
                         FromCsv(d / "study.csv", StudyFields()));
  FEDRX_ASSIGN_OR_RETURN(data.study, StudyFromRows(study_rows, (d / "study.csv").string()));
  FEDRX_ASSIGN_OR_RETURN(const std::vector<KeyValue> study_params,
                         FromCsv(d / "study_parameters.csv", ParameterFields()));
  for (const KeyValue& p : study_params) data.study.parameters.emplace(p.key, p.value);
  FEDRX_ASSIGN_OR_RETURN(data.dose_groups, FromCsv(d / "dose_groups.csv", DoseGroupFields()));
  FEDRX_ASSIGN_OR_RETURN(const std::vector<GroupParameter> params,
                         FromCsv(d / "dose_group_parameters.csv", GroupParameterFields()));
  for (const GroupParameter& p : params) {
    DoseGroup* group = nullptr;
    for (DoseGroup& g : data.dose_groups) {
      if (g.set_code == p.set_code) group = &g;
    }
    if (group == nullptr) {
      return DataLoss("parameter of a set not in dose_groups.csv",
                      (d / "dose_group_parameters.csv").string());
    }
    group->parameters.emplace(p.parameter, p.value);
  }
  FEDRX_ASSIGN_OR_RETURN(data.subjects, FromCsv(d / "subjects.csv", SubjectFields()));
  FEDRX_ASSIGN_OR_RETURN(data.exposures, FromCsv(d / "exposures.csv", ExposureFields()));
  FEDRX_ASSIGN_OR_RETURN(data.findings, FromCsv(d / "findings.csv", FindingFields()));
  FEDRX_ASSIGN_OR_RETURN(data.adverse_events,
                         FromCsv(d / "adverse_events.csv", AdverseEventFields()));
  FEDRX_ASSIGN_OR_RETURN(data.issues, FromCsv(d / "mapping_issues.csv", IssueFields()));
  FEDRX_ASSIGN_OR_RETURN(data.tallies, FromCsv(d / "domain_tallies.csv", TallyFields()));
  return data;
}

}  // namespace fedrx::ingest::cdm
