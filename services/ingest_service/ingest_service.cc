#include "services/ingest_service/ingest_service.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <system_error>

#include "services/ingest/dataset_store.h"
#include "services/ingest/study_ingest.h"

namespace fedrx::ingest_service {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

// Findings copied into a report; the store's version holds them all.
constexpr std::size_t kReportFindings = 50;

const char* const kCompoundSuffixes[] = {".csv", ".tsv", ".sdf"};

const std::vector<double>& SecondsBuckets() {
  static const std::vector<double> b = {0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600};
  return b;
}

std::string Dump(const Json& j) {
  return j.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

Json ErrorJson(const core::Status& s) {
  Json e;
  e["code"] = core::StatusCodeName(s.code());
  e["what"] = s.message();
  e["where"] = s.where();
  return e;
}

IngestService::Outcome IngestCompounds(IngestService::Outcome out, const std::string& input,
                                       const std::string& store_dir,
                                       const IngestServiceOptions& options) {
  ingest::CompoundReadOptions read;
  read.max_file_bytes = options.max_bytes;
  ingest::PrepOptions prep;
  prep.folds = options.folds;
  prep.threads = options.threads;
  ingest::CompoundIngest run;
  out.status = ingest::IngestCompoundFile(input, store_dir, read, prep, options.key, {}, run);
  if (!run.prepared_ok) return out;
  const ingest::PreparedCompounds& prepared = run.prepared;
  out.has_records = true;
  out.records_read = prepared.records_read;
  out.kept = prepared.compounds.size();
  out.unparseable = prepared.unparseable;
  out.duplicates_merged = prepared.duplicates_merged;
  out.label_conflicts = prepared.label_conflicts;
  // Built apart and put together at the end: ordered_json's members live
  // in a vector, so a reference into one would dangle after an insert.
  Json summary;
  summary["format"] = run.source.format == ingest::CompoundSource::Format::kSdf   ? "sdf"
                      : run.source.format == ingest::CompoundSource::Format::kTsv ? "tsv"
                                                                                  : "csv";
  summary["bytes"] = run.source.bytes;
  summary["source_sha256"] = run.source.sha256;
  summary["tasks"] = prepared.tasks;
  summary["records_read"] = prepared.records_read;
  summary["compounds"] = prepared.compounds.size();
  summary["unparseable"] = prepared.unparseable;
  summary["duplicates_merged"] = prepared.duplicates_merged;
  summary["label_conflicts"] = prepared.label_conflicts;
  summary["findings"] = prepared.findings.size();
  if (out.status.ok()) {
    out.version = run.version.number;
    summary["preparation_hash"] = run.descriptor.preparation_hash;
    summary["schema_hash"] = run.descriptor.schema_hash;
  }
  Json findings = Json::array();
  for (std::size_t i = 0; i < prepared.findings.size() && i < kReportFindings; ++i) {
    const auto& f = prepared.findings[i];
    findings.push_back({{"record", f.record}, {"code", f.code}, {"message", f.message}});
  }
  out.detail_json = Dump(Json{{"summary", summary}, {"findings", findings}});
  return out;
}

IngestService::Outcome IngestStudyFolder(IngestService::Outcome out, const std::string& folder,
                                         const std::string& store_dir,
                                         const IngestServiceOptions& options) {
  ingest::StudyIngestOptions study;
  study.folder.read.max_bytes = options.max_bytes;
  auto result = ingest::IngestStudy(folder, store_dir, study);
  if (!result.ok()) {
    out.status = result.status();
    return out;
  }
  out.version = result->version.number;
  out.has_study = true;
  for (const auto& t : result->data.tallies) {
    out.rows_mapped += t.mapped;
    out.rows_unmapped += t.unmapped;
  }
  const auto& report = result->report;
  out.errors = report.errors;
  out.warnings = report.warnings;
  out.notices = report.notices;
  Json summary;
  summary["study_id"] = report.study_id;
  summary["files_read"] = result->files_read;
  summary["define_used"] = result->define_used;
  summary["subjects"] = result->counts.subjects;
  summary["dose_groups"] = result->counts.dose_groups;
  summary["rows_mapped"] = out.rows_mapped;
  summary["rows_unmapped"] = out.rows_unmapped;
  summary["conformance"] = {
      {"error", report.errors}, {"warning", report.warnings}, {"notice", report.notices}};
  summary["schema_hash"] = result->schema_hash;
  Json findings = Json::array();
  for (std::size_t i = 0; i < report.findings.size() && i < kReportFindings; ++i) {
    const auto& f = report.findings[i];
    findings.push_back({{"severity", ingest::conformance::SeverityName(f.severity)},
                        {"rule", f.rule_id},
                        {"dataset", f.dataset},
                        {"row", f.row},
                        {"variable", f.variable},
                        {"message", f.message}});
  }
  out.detail_json = Dump(Json{{"summary", summary}, {"findings", findings}});
  out.status = core::Status::Ok();
  return out;
}

}  // namespace

bool ValidDatasetName(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
}

IngestService::IngestService(IngestServiceOptions options, core::Metrics& metrics,
                             const core::Clock& clock)
    : options_(std::move(options)), metrics_(metrics), clock_(clock) {
  pending_ = metrics_.Gauge("inbox_pending", "Datasets in the inbox with a .ready marker");
}

IngestService::~IngestService() { WaitForIngest(); }

core::Status IngestService::Start() {
  for (const char* sub : {kDoneDir, kFailedDir}) {
    std::error_code ec;
    const fs::path dir = fs::path(options_.inbox) / sub;
    fs::create_directories(dir, ec);
    if (ec) return core::Unavailable("cannot create directory: " + ec.message(), dir.string());
  }
  std::cerr << "ingest: watching " << options_.inbox << " every " << options_.poll_interval.count()
            << " ms; stores in " << options_.stores << "\n";
  return core::Status::Ok();
}

core::Readiness IngestService::CheckReady() {
  for (const std::string* dir : {&options_.inbox, &options_.stores}) {
    std::error_code ec;
    if (!fs::is_directory(*dir, ec)) return {false, *dir + " is not a directory"};
    if (::access(dir->c_str(), W_OK | X_OK) != 0) return {false, *dir + " is not writable"};
  }
  return {true, ""};
}

core::Status IngestService::Tick() {
  if (job_.valid()) {
    if (job_.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
      return core::Status::Ok();
    }
    Finish(job_.get());
    next_scan_.reset();  // the next dataset may be waiting already
  }
  if (draining_) return core::Status::Ok();
  const auto now = clock_.Now();
  if (next_scan_ && now < *next_scan_) return core::Status::Ok();
  next_scan_ = now + options_.poll_interval;

  // Markers, in name order; an unreadable inbox is counted, not fatal.
  std::vector<std::string> markers;
  std::error_code ec;
  for (fs::directory_iterator it(options_.inbox, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string file = it->path().filename().string();
    const std::size_t n = sizeof(kMarkerSuffix) - 1;
    if (file.size() >= n && file.compare(file.size() - n, n, kMarkerSuffix) == 0 &&
        !it->is_directory()) {
      markers.push_back(file.substr(0, file.size() - n));
    }
  }
  if (ec) {
    metrics_.CountError("inbox", "scan_failed");
    std::cerr << "ingest: cannot scan " << options_.inbox << ": " << ec.message() << "\n";
    return core::Status::Ok();
  }
  pending_.Set(static_cast<double>(markers.size()));
  if (markers.empty()) return core::Status::Ok();
  std::sort(markers.begin(), markers.end());
  const std::string& name = markers.front();

  if (!ValidDatasetName(name)) {
    // Its input (if any) is whatever carries the same stem.
    std::vector<std::string> inputs;
    for (const char* suffix : kCompoundSuffixes) {
      if (fs::exists(fs::path(options_.inbox) / (name + suffix), ec))
        inputs.push_back(name + suffix);
    }
    if (!name.empty() && fs::is_directory(fs::path(options_.inbox) / name, ec))
      inputs.push_back(name);
    Refuse(name, inputs,
           core::InvalidArgument(
               "dataset name \"" + name + "\" is not allowed: use 1 to 64 of A-Z a-z 0-9 _ -",
               name + kMarkerSuffix));
    return core::Status::Ok();
  }
  std::vector<std::string> inputs;
  bool study = false;
  for (const char* suffix : kCompoundSuffixes) {
    if (fs::is_regular_file(fs::path(options_.inbox) / (name + suffix), ec)) {
      inputs.push_back(name + suffix);
    }
  }
  if (fs::is_directory(fs::path(options_.inbox) / name, ec)) {
    inputs.push_back(name);
    study = true;
  }
  if (inputs.empty()) {
    Refuse(name, {},
           core::InvalidArgument("marker without input: expected " + name + ".csv, " + name +
                                     ".tsv, " + name + ".sdf or a study folder " + name + "/",
                                 name + kMarkerSuffix));
  } else if (inputs.size() > 1) {
    std::string list;
    for (const auto& i : inputs) list += (list.empty() ? "" : ", ") + i;
    Refuse(name, inputs,
           core::InvalidArgument("more than one input for one name (" + list + ")",
                                 name + kMarkerSuffix));
  } else {
    Launch(name, inputs.front(), study);
  }
  return core::Status::Ok();
}

void IngestService::Launch(const std::string& name, const std::string& input, bool study) {
  Outcome start;
  start.name = name;
  start.input = input;
  start.study = study;
  const std::string path = (fs::path(options_.inbox) / input).string();
  const std::string store = (fs::path(options_.stores) / name).string();
  std::cerr << "ingest: " << name << ": " << (study ? "study" : "compounds") << " ingest started\n";
  job_started_ = clock_.Now();
  // The options are copied: the worker shares nothing with the runner's thread.
  job_ = std::async(
      std::launch::async, [start = std::move(start), path, store, options = options_]() mutable {
        // No exception leaves the worker: one (bad_alloc, a filesystem error)
        // becomes this dataset's failure, not the process's end.
        Outcome failed = start;
        try {
          return start.study ? IngestStudyFolder(std::move(start), path, store, options)
                             : IngestCompounds(std::move(start), path, store, options);
        } catch (const std::exception& e) {
          failed.status = core::Internal(std::string("ingest aborted: ") + e.what(), path);
          failed.detail_json = "{}";
          return failed;
        }
      });
}

void IngestService::Finish(Outcome outcome) {
  const double seconds = std::chrono::duration<double>(clock_.Now() - job_started_).count();
  const char* kind = outcome.study ? "study" : "compounds";
  const char* result = outcome.status.ok() ? "ok" : "failed";
  metrics_
      .Counter("runs_total", "Ingests by kind and outcome (ok, failed, refused)",
               {{"kind", kind}, {"outcome", result}})
      .Inc();
  metrics_
      .Histogram("seconds", "Duration of an ingest, by kind", SecondsBuckets(), {{"kind", kind}})
      .Observe(seconds);
  if (outcome.has_records) {
    const auto records = [&](const char* what, std::size_t n) {
      metrics_
          .Counter("records_total", "Compound records ingested, by outcome", {{"outcome", what}})
          .Inc(static_cast<double>(n));
    };
    records("read", outcome.records_read);
    records("kept", outcome.kept);
    records("unparseable", outcome.unparseable);
    records("duplicate_merged", outcome.duplicates_merged);
    records("label_conflict", outcome.label_conflicts);
  }
  if (outcome.has_study) {
    const auto rows = [&](const char* what, std::size_t n) {
      metrics_.Counter("study_rows_total", "Study rows ingested, by outcome", {{"outcome", what}})
          .Inc(static_cast<double>(n));
    };
    rows("mapped", outcome.rows_mapped);
    rows("unmapped", outcome.rows_unmapped);
    const auto findings = [&](const char* severity, std::size_t n) {
      metrics_
          .Counter("findings_total", "Conformance findings of ingested studies, by severity",
                   {{"severity", severity}})
          .Inc(static_cast<double>(n));
    };
    findings("error", outcome.errors);
    findings("warning", outcome.warnings);
    findings("notice", outcome.notices);
  }
  if (!outcome.status.ok()) metrics_.CountError("ingest", kind);

  Json report;
  report["name"] = outcome.name;
  report["kind"] = kind;
  report["outcome"] = result;
  report["input"] = outcome.input;
  report["store"] = (fs::path(options_.stores) / outcome.name).string();
  report["finished_unix_ms"] = clock_.WallMillis();
  report["seconds"] = seconds;
  if (outcome.status.ok()) {
    report["version"] = outcome.version;
  } else {
    report["error"] = ErrorJson(outcome.status);
    report["store_unchanged"] = true;
  }
  Json detail = Json::parse(outcome.detail_json, nullptr, false);
  if (detail.is_object()) {
    for (auto& [key, value] : detail.items()) report[key] = value;
  }
  std::cerr << "ingest: " << outcome.name << ": " << kind << " " << result;
  if (outcome.status.ok()) {
    std::cerr << ", version " << outcome.version << "\n";
  } else {
    std::cerr << ": " << outcome.status << "\n";
  }
  Settle(outcome.status.ok() ? kDoneDir : kFailedDir, outcome.name,
         {outcome.input, outcome.name + kMarkerSuffix}, Dump(report));
}

void IngestService::Refuse(const std::string& name, const std::vector<std::string>& inputs,
                           const core::Status& why) {
  metrics_
      .Counter(
          "runs_total", "Ingests by kind and outcome (ok, failed, refused)",
          {{"kind", inputs.size() == 1 && fs::is_directory(fs::path(options_.inbox) / inputs[0])
                        ? "study"
                        : "compounds"},
           {"outcome", "refused"}})
      .Inc();
  metrics_.CountRejected("inbox_protocol");
  std::cerr << "ingest: refused: " << why << "\n";
  Json report;
  report["name"] = name;
  report["outcome"] = "refused";
  report["inputs"] = inputs;
  report["finished_unix_ms"] = clock_.WallMillis();
  report["error"] = ErrorJson(why);
  std::vector<std::string> files = inputs;
  files.push_back(name + kMarkerSuffix);
  Settle(kFailedDir, name, files, Dump(report));
}

void IngestService::Settle(const std::string& dest, const std::string& name,
                           const std::vector<std::string>& files, const std::string& report) {
  const fs::path dir = fs::path(options_.inbox) / dest;
  std::error_code ec;
  fs::create_directories(dir, ec);
  // The report first: once the marker has moved, the pipeline may look for it.
  {
    const fs::path path = dir / (name + kReportSuffix);
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << report;
    out.flush();
    if (!out) {
      metrics_.CountError("inbox", "report_failed");
      std::cerr << "ingest: cannot write " << path.string() << "\n";
    }
  }
  // The marker last, so an input is never left behind without its marker.
  for (const std::string& file : files) {
    const fs::path from = fs::path(options_.inbox) / file;
    const fs::path to = dir / file;
    if (fs::exists(to, ec)) fs::remove_all(to, ec);
    fs::rename(from, to, ec);
    if (ec) {
      metrics_.CountError("inbox", "move_failed");
      std::cerr << "ingest: cannot move " << from.string() << " to " << dir.string() << ": "
                << ec.message() << "\n";
      // A marker left behind would make the same input be ingested again and
      // again; the input itself is never deleted.
      if (file == name + kMarkerSuffix) fs::remove(from, ec);
    }
  }
}

}  // namespace fedrx::ingest_service
