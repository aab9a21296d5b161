#include "services/cli/ingest_study_command.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <iomanip>
#include <optional>
#include <ostream>
#include <sstream>
#include <utility>
#include <vector>

#include "services/cli/ingest_command.h"
#include "services/ingest/cdm_query.h"
#include "services/ingest/study_ingest.h"

namespace fedrx::cli {
namespace {

// Progress of `ingest study` on stderr: a redrawn bar per stage on a terminal,
// else one line per stage when it ends (a study has a handful of domains).
class StudyProgress {
 public:
  StudyProgress(std::ostream& err, bool tty) : err_(err), tty_(tty) {}
  void Update(const ingest::StudyIngestProgress& p) {
    using Stage = ingest::StudyIngestProgress::Stage;
    if (p.stage != Stage::kRead && p.stage != Stage::kMapped) return;
    const char* verb = p.stage == Stage::kRead ? "read" : "mapped";
    if (tty_) {
      constexpr std::size_t kWidth = 20;
      const std::size_t filled = p.total ? kWidth * p.done / p.total : kWidth;
      err_ << "\r[" << std::string(filled, '#') << std::string(kWidth - filled, ' ') << "] "
           << std::left << std::setw(7) << verb << p.done << "/" << p.total << " " << std::setw(8)
           << p.domain << std::right << std::flush;
      if (p.done == p.total) err_ << "\n";
      return;
    }
    line_ += (line_.empty() ? "" : ", ") + p.domain + " " + std::to_string(p.rows);
    if (p.done == p.total) {
      err_ << "ingest: " << verb << " " << p.total << " domains (" << line_ << " rows)\n";
      line_.clear();
    }
  }

 private:
  std::ostream& err_;
  bool tty_;
  std::string line_;
};

std::string FormatNumber(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

std::string FormatDose(const std::optional<double>& dose, const std::string& unit) {
  if (!dose) return "-";
  return FormatNumber(*dose) + (unit.empty() ? "" : " " + unit);
}

std::string Cut(const std::string& s, std::size_t width) {
  return s.size() <= width ? s : s.substr(0, width - 1) + "~";
}

void PrintStudySummary(const ingest::StudyIngestResult& r, std::size_t max_findings,
                       std::ostream& out) {
  using ingest::conformance::RuleInfo;
  const ingest::cdm::Study& study = r.data.study;
  auto row = [&](const std::string& k, const std::string& v) {
    out << "  " << std::left << std::setw(20) << k << v << std::right << "\n";
  };
  auto or_dash = [](const std::string& s) { return s.empty() ? std::string("-") : s; };
  out << "ingest study: " << r.folder << " -> version " << r.version.number << "\n";
  row("study", or_dash(study.id));
  row("standard", ingest::cdm::StandardName(study.standard));
  row("species / strain", or_dash(study.species) + " / " + or_dash(study.strain));
  row("route", or_dash(study.route));
  row("duration", study.planned_duration.empty()
                      ? std::string("-")
                      : study.planned_duration +
                            (study.planned_duration_days
                                 ? " (" + FormatNumber(*study.planned_duration_days) + " days)"
                                 : std::string()));
  const ingest::StudyCounts& c = r.counts;
  row("subjects",
      std::to_string(c.subjects) + " in " + std::to_string(c.dose_groups) + " dose groups");
  row("exposures", std::to_string(c.exposures));
  {
    std::string s;
    for (const auto& [domain, n] : c.findings)
      s += (s.empty() ? "" : ", ") + domain + " " + std::to_string(n);
    row("findings", s.empty() ? "none" : s);
  }
  row("adverse events", std::to_string(c.adverse_events));
  {
    std::string s;
    for (const auto& [domain, n] : c.unmapped_rows)
      s += (s.empty() ? "" : ", ") + domain + " " + std::to_string(n);
    row("unmapped rows", s.empty() ? "none" : s);
  }
  row("mapping issues", std::to_string(c.mapping_issues));
  row("conformance",
      std::to_string(r.report.errors) + " errors, " + std::to_string(r.report.warnings) +
          " warnings, " + std::to_string(r.report.notices) + " notices" +
          (r.report.define_checked ? " (checked against define.xml)" : " (no define.xml)"));
  {
    // The rules with most findings, errors first.
    std::map<std::string, ingest::conformance::Severity> severity;
    for (const RuleInfo& rule : ingest::conformance::ConformanceRules()) {
      severity[std::string(rule.id)] = rule.severity;
    }
    std::vector<std::pair<std::string, std::size_t>> rules(r.report.counts_by_rule.begin(),
                                                           r.report.counts_by_rule.end());
    auto rank = [&](const std::string& id) {
      auto it = severity.find(id);
      return it == severity.end() ? 3 : static_cast<int>(it->second);
    };
    std::stable_sort(rules.begin(), rules.end(), [&](const auto& a, const auto& b) {
      if (rank(a.first) != rank(b.first)) return rank(a.first) < rank(b.first);
      return a.second > b.second;
    });
    std::string s;
    for (std::size_t i = 0; i < rules.size() && i < 5; ++i) {
      const auto it = severity.find(rules[i].first);
      s += (i ? ", " : "") + rules[i].first + " " + std::to_string(rules[i].second) + " " +
           (it == severity.end() ? "?" : ingest::conformance::SeverityName(it->second));
    }
    if (!s.empty()) row("top rules", s);
  }
  row("version", std::to_string(r.version.number) + " (" + r.version.dir + ")");
  row("schema hash", r.schema_hash.substr(0, 16));

  out << "\n  " << std::left << std::setw(10) << "SET" << std::setw(32) << "DOSE GROUP"
      << std::right << std::setw(14) << "DOSE" << std::setw(5) << "N"
      << "  FLAGS\n";
  for (const ingest::cdm::DoseGroup& g : r.data.dose_groups) {
    const auto n =
        std::count_if(r.data.subjects.begin(), r.data.subjects.end(),
                      [&](const ingest::cdm::Subject& s) { return s.set_code == g.set_code; });
    std::string flags;
    if (g.control) flags += " control";
    if (g.recovery) flags += " recovery";
    if (g.toxicokinetic) flags += " TK";
    out << "  " << std::left << std::setw(10) << Cut(g.set_code, 9) << std::setw(32)
        << Cut(g.label, 31) << std::right << std::setw(14) << FormatDose(g.dose, g.dose_unit)
        << std::setw(5) << n << (flags.empty() ? "" : " " + flags) << "\n";
  }

  if (max_findings > 0) {
    out << "\nconformance findings (first " << max_findings << "):\n";
    ingest::conformance::PrintReport(r.report, out, max_findings);
  }

  const bool has_bw =
      std::any_of(r.data.findings.begin(), r.data.findings.end(),
                  [](const ingest::cdm::Finding& f) { return ingest::cdm::IsBodyWeight(f); });
  if (!has_bw) return;
  const auto stats = ingest::cdm::BodyWeightChangeByDoseGroup(r.data, /*by_sex=*/true);
  // One line per dose group, one column per sex.
  std::vector<std::string> sexes;
  for (const auto& s : stats) {
    if (std::find(sexes.begin(), sexes.end(), s.sex) == sexes.end()) sexes.push_back(s.sex);
  }
  std::sort(sexes.begin(), sexes.end());
  out << "\nbody-weight change, first to last weight (mean +- SD, n):\n  " << std::left
      << std::setw(10) << "SET" << std::right << std::setw(14) << "DOSE";
  for (const std::string& sex : sexes) out << std::setw(26) << ("SEX " + (sex.empty() ? "-" : sex));
  out << "\n";
  std::vector<std::string> done;
  for (const auto& s : stats) {
    if (std::find(done.begin(), done.end(), s.set_code) != done.end()) continue;
    done.push_back(s.set_code);
    // Groups weighed by no one (toxicokinetic sets) would be a line of dashes.
    const bool weighed = std::any_of(stats.begin(), stats.end(), [&](const auto& t) {
      return t.set_code == s.set_code && t.mean.has_value();
    });
    if (!weighed) continue;
    out << "  " << std::left << std::setw(10) << Cut(s.set_code, 9) << std::right << std::setw(14)
        << FormatDose(s.dose, s.dose_unit);
    for (const std::string& sex : sexes) {
      std::string cell = "-";
      for (const auto& t : stats) {
        if (t.set_code != s.set_code || t.sex != sex || !t.mean) continue;
        std::ostringstream v;
        v << std::fixed << std::setprecision(1) << *t.mean;
        if (t.sd) v << " +- " << *t.sd;
        v << " " << t.unit << " (" << t.n << ")";
        cell = v.str();
      }
      out << std::setw(26) << cell;
    }
    out << "\n";
  }
}

}  // namespace

core::Status IngestStudyCommand(const std::map<std::string, std::string>& flags, std::ostream& out,
                                std::ostream& err, bool tty) {
  auto need = [&](const char* name) -> core::Result<std::string> {
    auto it = flags.find(name);
    if (it == flags.end() || it->second.empty()) {
      return core::InvalidArgument(std::string("--") + name + " is required",
                                   std::string("--") + name);
    }
    return it->second;
  };
  for (const char* compounds_only :
       {"smiles-column", "tasks", "key-file", "folds", "threads", "radius", "bits", "delimiter"}) {
    if (flags.count(compounds_only)) {
      return core::InvalidArgument("not an option of ingest study",
                                   std::string("--") + compounds_only);
    }
  }
  FEDRX_ASSIGN_OR_RETURN(std::string in, need("in"));
  FEDRX_ASSIGN_OR_RETURN(std::string store_dir, need("store"));
  ingest::StudyIngestOptions options;
  if (auto it = flags.find("prefer"); it != flags.end()) {
    if (it->second == "xpt" || it->second == "xport") {
      options.folder.prefer = ingest::SourceFormat::kXport;
    } else if (it->second == "json") {
      options.folder.prefer = ingest::SourceFormat::kDatasetJson;
    } else {
      return core::InvalidArgument("expected xpt or json, not '" + it->second + "'", "--prefer");
    }
  }
  FEDRX_ASSIGN_OR_RETURN(options.folder.read.max_bytes,
                         IngestFlagNumber(flags, "max-bytes", options.folder.read.max_bytes, 1,
                                          std::uint64_t{1} << 40));
  FEDRX_ASSIGN_OR_RETURN(std::uint64_t max_findings,
                         IngestFlagNumber(flags, "max-findings", 20, 0, 1000));
  if (auto it = flags.find("report"); it != flags.end()) options.report_path = it->second;
  options.refuse_on_errors = flags.count("refuse-on-errors") != 0;
  StudyProgress progress(err, tty);
  options.progress = [&](const ingest::StudyIngestProgress& p) { progress.Update(p); };
  FEDRX_ASSIGN_OR_RETURN(ingest::StudyIngestResult result,
                         ingest::IngestStudy(in, store_dir, options));
  PrintStudySummary(result, static_cast<std::size_t>(max_findings), out);
  return core::Status::Ok();
}

}  // namespace fedrx::cli
