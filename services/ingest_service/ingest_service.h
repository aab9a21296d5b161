// IngestService: the site-side ingest process (fedrx-ingest). It watches an
// inbox directory and ingests what an institution's data pipeline drops
// there into one versioned DatasetStore per dataset, on a worker thread, one
// ingest at a time, so /healthz keeps answering. Runs on the runner's thread;
// not thread-safe.
//
// Inbox protocol:
//   <inbox>/<name>.csv | <name>.tsv | <name>.sdf   a compound-assay table, or
//   <inbox>/<name>/                                a SEND/SDTM study folder
//                                                  (.xpt and/or Dataset-JSON .json)
//   <inbox>/<name>.ready                           the marker: written last, once
//                                                  the input is complete
// Nothing is read before its marker exists (half-copied files never are).
// <name> must match [A-Za-z0-9_-]{1,64}. The input is ingested into the store
// <stores>/<name> (created on first use) as its next version. Afterwards the
// input and the marker move together to <inbox>/done/ (ingested) or
// <inbox>/failed/ (failed or refused), beside <name>.report.json: the outcome,
// a summary (counts, version) and the first findings, or the error with what
// was wrong and where. Never rows or structures. An entry of the same name
// already in done/ or failed/ is replaced. Refused without reading: a bad
// name, a marker without input, more than one input of one name. A failed
// ingest leaves every version of the store as it was.
#pragma once

#include <chrono>
#include <cstdint>
#include <future>
#include <optional>
#include <string>
#include <vector>

#include "services/core/clock.h"
#include "services/core/metrics.h"
#include "services/core/service_runner.h"
#include "services/core/status.h"
#include "services/ingest/compounds.h"

namespace fedrx::ingest_service {

struct IngestServiceOptions {
  std::string inbox;   // watched directory; must exist
  std::string stores;  // one DatasetStore per dataset name; must exist
  std::chrono::milliseconds poll_interval{2000};
  ingest::ConsortiumKey key;  // empty: bits unscrambled, folds keyed with ""
  std::uint32_t folds = 5;    // 1..100
  int threads = 2;            // workers preparing molecules
  // Inputs (a table, or each file of a study folder) larger than this are refused.
  std::uint64_t max_bytes = std::uint64_t{1} << 30;
};

// True when `name` matches [A-Za-z0-9_-]{1,64}.
bool ValidDatasetName(const std::string& name);

inline constexpr char kDoneDir[] = "done";
inline constexpr char kFailedDir[] = "failed";
inline constexpr char kMarkerSuffix[] = ".ready";
inline constexpr char kReportSuffix[] = ".report.json";

class IngestService final : public core::Service {
 public:
  IngestService(IngestServiceOptions options, core::Metrics& metrics, const core::Clock& clock);
  ~IngestService() override;

  // Creates <inbox>/done and <inbox>/failed; kUnavailable when it cannot.
  core::Status Start() override;
  // Collects a finished ingest (report, move, metrics), then, every
  // poll_interval (at once after an ingest finished), scans the inbox and
  // starts the next ready dataset (in name order). Never blocks on an ingest.
  core::Status Tick() override;
  // Ready when the inbox and stores directories exist and are writable.
  core::Readiness CheckReady() override;
  void BeginDrain() override { draining_ = true; }
  bool Drained() override { return !job_.valid(); }

  // Blocks until the ingest under way (if any) has finished; the next Tick()
  // collects it. For shutdown and tests.
  void WaitForIngest() {
    if (job_.valid()) job_.wait();
  }
  bool busy() const { return job_.valid(); }

  // What one ingest produced; filled on the worker thread, read on the runner's.
  struct Outcome {
    std::string name;
    std::string input;  // file or folder name inside the inbox
    bool study = false;
    core::Status status;
    std::uint64_t version = 0;  // committed version, when status is OK
    // Counts, as far as the ingest got (compounds: records; study: rows and
    // conformance findings).
    bool has_records = false;
    std::size_t records_read = 0, kept = 0, unparseable = 0, duplicates_merged = 0,
                label_conflicts = 0;
    bool has_study = false;
    std::size_t rows_mapped = 0, rows_unmapped = 0, errors = 0, warnings = 0, notices = 0;
    // JSON object text: "summary" and "findings" of the report.
    std::string detail_json = "{}";
  };

 private:
  void Launch(const std::string& name, const std::string& input, bool study);
  void Finish(Outcome outcome);
  void Refuse(const std::string& name, const std::vector<std::string>& inputs,
              const core::Status& why);
  // Moves `files` (names inside the inbox) to <inbox>/<dest>/ and writes the
  // report there; failures are counted and logged, never fatal.
  void Settle(const std::string& dest, const std::string& name,
              const std::vector<std::string>& files, const std::string& report);

  IngestServiceOptions options_;
  core::Metrics& metrics_;
  const core::Clock& clock_;
  bool draining_ = false;
  std::optional<std::chrono::steady_clock::time_point> next_scan_;
  std::future<Outcome> job_;
  std::chrono::steady_clock::time_point job_started_{};
  core::GaugeRef pending_;
};

}  // namespace fedrx::ingest_service
