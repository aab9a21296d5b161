// The report service's logic: CreateReport reads a workflow run (its record
// and step outputs) or a federated study (coordinator::StudyStore) from the
// StateStore, renders it (candidate_report.h, study_report.h) and stores the
// JSON and HTML under keys::Report with the id in keys::ReportIndex;
// GetReport and ListReports read them back. Counted in
// fedrx_report_reports_total{kind,result} and timed in
// fedrx_report_render_seconds{kind}. Thread-safe: calls are serialised,
// since the StateStore is not.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

#include "messages/codec/message.h"
#include "services/core/clock.h"
#include "services/core/metrics.h"
#include "services/core/state_store.h"
#include "services/core/status.h"
#include "services/domain/request_service.h"
#include "services/report/study_report.h"

namespace fedrx::report {

struct ReportServiceOptions {
  // A report whose HTML or JSON is larger is refused (ResourceExhausted).
  std::size_t max_content_bytes = 900000;
  // ListReports answers at most this many, whatever its limit.
  std::uint32_t max_list = 1000;
};

// The run record at keys::WorkflowRun with each succeeded step's output
// (keys::WorkflowStepOutput) inlined as steps[i].output. NotFound naming
// the run when there is no record; DataLoss when what is stored is not JSON.
core::Result<nlohmann::json> LoadRunWithOutputs(core::StateStore& store, const std::string& run_id);

// The study's records as the study report's view. NotFound naming the study.
core::Result<StudyView> LoadStudyView(core::StateStore& store, const std::string& study_id);

class ReportService {
 public:
  // `store`, `metrics` and `clock` must outlive the service.
  ReportService(core::StateStore& store, core::Metrics& metrics, const core::Clock& clock,
                ReportServiceOptions options = {});

  // Renders and stores a report; its id is "rpt-<kind>-<subject>-<n>" (the
  // subject cut to fit 64 bytes, n the first number not yet used).
  // InvalidArgument for an unknown kind or a malformed subject
  // ("CreateReport.kind" / ".subject"), NotFound for an unknown run or study,
  // ResourceExhausted when the page or JSON exceeds max_content_bytes (the
  // report is then not stored), a store error as it came.
  core::Result<codec::ReportInfo> Create(const codec::CreateReport& request);
  // NotFound for an unknown report; InvalidArgument for a format other than
  // "html" or "json".
  core::Result<codec::ReportDocument> Get(const codec::GetReport& request);
  // Newest first; kind "" (all), "candidate" or "study"; limit 0 means 50.
  core::Result<codec::ReportList> List(const codec::ListReports& request);

 private:
  core::Result<codec::ReportInfo> CreateLocked(const codec::CreateReport& request);
  core::Result<std::string> NewReportId(const std::string& kind, const std::string& subject);

  core::StateStore& store_;
  core::Metrics& metrics_;
  const core::Clock& clock_;
  ReportServiceOptions options_;
  std::mutex mu_;
};

// Registers CreateReport, GetReport and ListReports on `service`, answered by
// `reports` (which must outlive it).
void InstallReportHandlers(domain::RequestService& service, ReportService& reports);

// ReportInfo <-> the JSON stored in the report hash's `info` field.
nlohmann::json InfoToJson(const codec::ReportInfo& info);
core::Result<codec::ReportInfo> InfoFromJson(const std::string& text, const std::string& where);

}  // namespace fedrx::report
