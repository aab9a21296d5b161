#include "services/report/report_service.h"

#include <algorithm>
#include <chrono>
#include <set>
#include <utility>
#include <vector>

#include "services/coordinator/study_store.h"
#include "services/core/keys.h"
#include "services/report/candidate_report.h"
#include "services/report/study_report.h"

namespace fedrx::report {

namespace {

using nlohmann::json;

constexpr std::uint32_t kDefaultListLimit = 50;

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

bool KnownKind(const std::string& kind) { return kind == "candidate" || kind == "study"; }

}  // namespace

json InfoToJson(const codec::ReportInfo& info) {
  return {{"report_id", info.report_id},   {"kind", info.kind},
          {"subject", info.subject},       {"title", info.title},
          {"created_ms", info.created_ms}, {"html_bytes", info.html_bytes},
          {"json_bytes", info.json_bytes}, {"summary", info.summary}};
}

core::Result<codec::ReportInfo> InfoFromJson(const std::string& text, const std::string& where) {
  const json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return core::Status(core::StatusCode::kDataLoss, "the stored report info is not a JSON object",
                        where);
  }
  codec::ReportInfo info;
  const auto str = [&](const char* k, std::string& out) {
    auto it = j.find(k);
    if (it != j.end() && it->is_string()) out = it->get<std::string>();
  };
  str("report_id", info.report_id);
  str("kind", info.kind);
  str("subject", info.subject);
  str("title", info.title);
  str("summary", info.summary);
  const auto num = [&](const char* k) -> std::int64_t {
    auto it = j.find(k);
    return it != j.end() && it->is_number_integer() ? it->get<std::int64_t>() : 0;
  };
  info.created_ms = num("created_ms");
  info.html_bytes = static_cast<std::uint64_t>(std::max<std::int64_t>(0, num("html_bytes")));
  info.json_bytes = static_cast<std::uint64_t>(std::max<std::int64_t>(0, num("json_bytes")));
  if (info.report_id.empty())
    return core::Status(core::StatusCode::kDataLoss, "the stored report info has no report_id",
                        where);
  return info;
}

core::Result<json> LoadRunWithOutputs(core::StateStore& store, const std::string& run_id) {
  FEDRX_ASSIGN_OR_RETURN(core::Key key, core::keys::WorkflowRun(run_id));
  FEDRX_ASSIGN_OR_RETURN(std::optional<std::string> text, store.Get(key));
  if (!text.has_value()) return core::NotFound("no workflow run '" + run_id + "'", "run_id");
  json run = json::parse(*text, nullptr, false);
  if (run.is_discarded() || !run.is_object()) {
    return core::Status(core::StatusCode::kDataLoss,
                        "the record of run '" + run_id + "' is not a JSON object", key.str());
  }
  auto steps = run.find("steps");
  if (steps == run.end() || !steps->is_array()) return run;
  std::vector<core::Key> keys;
  std::vector<std::size_t> index;
  for (std::size_t i = 0; i < steps->size(); ++i) {
    json& step = (*steps)[i];
    if (!step.is_object() || step.contains("output")) continue;
    auto state = step.find("state");
    auto id = step.find("id");
    if (state == step.end() || *state != "succeeded" || id == step.end() || !id->is_string()) {
      continue;
    }
    auto out_key = core::keys::WorkflowStepOutput(run_id, id->get<std::string>());
    if (!out_key.ok()) continue;  // a malformed step id has no stored output
    keys.push_back(*std::move(out_key));
    index.push_back(i);
  }
  if (keys.empty()) return run;
  FEDRX_ASSIGN_OR_RETURN(std::vector<std::optional<std::string>> outputs, store.GetMany(keys));
  for (std::size_t k = 0; k < outputs.size() && k < index.size(); ++k) {
    if (!outputs[k].has_value()) continue;  // rendered as "not stored"
    json out = json::parse(*outputs[k], nullptr, false);
    if (out.is_discarded()) {
      return core::Status(core::StatusCode::kDataLoss,
                          "a step output of run '" + run_id + "' is not JSON", keys[k].str());
    }
    (*steps)[index[k]]["output"] = std::move(out);
  }
  return run;
}

core::Result<StudyView> LoadStudyView(core::StateStore& store, const std::string& study_id) {
  coordinator::StudyStore studies(store);
  FEDRX_ASSIGN_OR_RETURN(coordinator::StudyRecord record, studies.Load(study_id));
  StudyView view;
  view.spec = record.spec;
  view.state = StudyStateName(record.state);
  view.current_round = record.current_round;
  view.model_version = record.model_version;
  view.detail = record.detail;
  // The rounds stored so far: 1 .. current_round (a study never skips one).
  for (std::uint32_t r = 1; r <= record.current_round && r <= 100000; ++r) {
    FEDRX_ASSIGN_OR_RETURN(std::optional<coordinator::RoundRecord> round,
                           studies.LoadRound(study_id, r));
    if (!round.has_value()) continue;
    StudyRoundView v;
    v.round = round->round;
    v.state = RoundStateName(round->state);
    v.base_version = round->base_version;
    v.selected = round->selected;
    v.contributed = round->contributed;
    v.samples = round->samples;
    v.started_ms = round->started_at_ms;
    v.closed_ms = round->closed_at_ms;
    v.secagg_detections = round->secagg_detections;
    FEDRX_ASSIGN_OR_RETURN(v.metrics, studies.LoadRoundMetrics(study_id, r));
    view.rounds.push_back(std::move(v));
  }
  return view;
}

ReportService::ReportService(core::StateStore& store, core::Metrics& metrics,
                             const core::Clock& clock, ReportServiceOptions options)
    : store_(store), metrics_(metrics), clock_(clock), options_(options) {}

core::Result<codec::ReportInfo> ReportService::Create(const codec::CreateReport& request) {
  std::lock_guard<std::mutex> lock(mu_);
  core::Result<codec::ReportInfo> r = CreateLocked(request);
  const std::string kind = KnownKind(request.kind) ? request.kind : "invalid";
  metrics_
      .Counter("reports_total", "Reports created, by kind and result",
               {{"kind", kind}, {"result", core::StatusCodeName(r.status().code())}})
      .Inc();
  return r;
}

core::Result<std::string> ReportService::NewReportId(const std::string& kind,
                                                     const std::string& subject) {
  FEDRX_ASSIGN_OR_RETURN(std::vector<std::string> ids,
                         store_.SetMembers(core::keys::ReportIndex()));
  const std::set<std::string> taken(ids.begin(), ids.end());
  const std::string prefix = "rpt-" + kind + "-";
  for (std::uint32_t n = 1; n < 1000000; ++n) {
    const std::string suffix = "-" + std::to_string(n);
    const std::size_t room = 64 - prefix.size() - suffix.size();
    const std::string id = prefix + subject.substr(0, room) + suffix;
    if (taken.count(id) == 0) return id;
  }
  return core::ResourceExhausted("no free report id for " + kind + " " + subject,
                                 "CreateReport.subject");
}

core::Result<codec::ReportInfo> ReportService::CreateLocked(const codec::CreateReport& request) {
  if (!KnownKind(request.kind)) {
    return core::InvalidArgument(
        "unknown report kind '" + request.kind.substr(0, 64) + "' (candidate or study)",
        "CreateReport.kind");
  }
  FEDRX_RETURN_IF_ERROR(core::ValidateId(request.subject, "CreateReport.subject"));
  const std::int64_t now_ms = clock_.WallMillis();
  const auto started = clock_.Now();
  RenderedReport rendered;
  if (request.kind == "candidate") {
    core::Result<json> run = LoadRunWithOutputs(store_, request.subject);
    if (!run.ok()) {
      if (run.status().code() == core::StatusCode::kNotFound) {
        return core::NotFound("no workflow run '" + request.subject + "'", "CreateReport.subject");
      }
      return run.status();
    }
    FEDRX_ASSIGN_OR_RETURN(rendered, RenderCandidateReport(*run, now_ms));
  } else {
    core::Result<StudyView> study = LoadStudyView(store_, request.subject);
    if (!study.ok()) {
      if (study.status().code() == core::StatusCode::kNotFound) {
        return core::NotFound("no study '" + request.subject + "'", "CreateReport.subject");
      }
      return study.status();
    }
    rendered = RenderStudyReport(*study, now_ms);
  }
  const std::string json_text = Dump(rendered.json);
  const double seconds = std::chrono::duration<double>(clock_.Now() - started).count();
  metrics_
      .Histogram("render_seconds", "Time to read and render a report",
                 {0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5}, {{"kind", request.kind}})
      .Observe(seconds);

  FEDRX_ASSIGN_OR_RETURN(std::string id, NewReportId(request.kind, request.subject));
  for (const auto& [what, size] :
       {std::pair<const char*, std::size_t>{"HTML page", rendered.html.size()},
        std::pair<const char*, std::size_t>{"JSON", json_text.size()}}) {
    if (size > options_.max_content_bytes) {
      return core::ResourceExhausted("report " + id + " (" + request.kind + " " + request.subject +
                                         "): its " + what + " is " + std::to_string(size) +
                                         " bytes, more than the " +
                                         std::to_string(options_.max_content_bytes) + " allowed",
                                     "CreateReport.subject");
    }
  }
  codec::ReportInfo info;
  info.report_id = id;
  info.kind = request.kind;
  info.subject = request.subject;
  info.title = rendered.title;
  info.created_ms = now_ms;
  info.html_bytes = rendered.html.size();
  info.json_bytes = json_text.size();
  info.summary = rendered.summary;
  FEDRX_ASSIGN_OR_RETURN(core::Key key, core::keys::Report(id));
  core::WriteBatch batch;
  batch.HashSet(
      key,
      {{"info", Dump(InfoToJson(info))}, {"html", std::move(rendered.html)}, {"json", json_text}});
  batch.SetAdd(core::keys::ReportIndex(), id);
  FEDRX_RETURN_IF_ERROR(store_.Apply(batch));
  return info;
}

core::Result<codec::ReportDocument> ReportService::Get(const codec::GetReport& request) {
  std::lock_guard<std::mutex> lock(mu_);
  if (request.format != "html" && request.format != "json") {
    return core::InvalidArgument(
        "unknown format '" + request.format.substr(0, 64) + "' (html or json)", "GetReport.format");
  }
  FEDRX_RETURN_IF_ERROR(core::ValidateId(request.report_id, "GetReport.report_id"));
  FEDRX_ASSIGN_OR_RETURN(core::Key key, core::keys::Report(request.report_id));
  FEDRX_ASSIGN_OR_RETURN(std::optional<std::string> info_text, store_.HashGet(key, "info"));
  if (!info_text.has_value()) {
    return core::NotFound("no report '" + request.report_id + "'", "GetReport.report_id");
  }
  codec::ReportDocument doc;
  FEDRX_ASSIGN_OR_RETURN(doc.info, InfoFromJson(*info_text, key.str()));
  FEDRX_ASSIGN_OR_RETURN(std::optional<std::string> content, store_.HashGet(key, request.format));
  if (!content.has_value()) {
    return core::Status(core::StatusCode::kDataLoss,
                        "report '" + request.report_id + "' has no " + request.format, key.str());
  }
  doc.format = request.format;
  doc.content = std::move(*content);
  return doc;
}

core::Result<codec::ReportList> ReportService::List(const codec::ListReports& request) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!request.kind.empty() && !KnownKind(request.kind)) {
    return core::InvalidArgument("unknown report kind '" + request.kind.substr(0, 64) +
                                     "' (candidate, study or empty for all)",
                                 "ListReports.kind");
  }
  const std::uint32_t limit =
      std::min(request.limit == 0 ? kDefaultListLimit : request.limit, options_.max_list);
  FEDRX_ASSIGN_OR_RETURN(std::vector<std::string> ids,
                         store_.SetMembers(core::keys::ReportIndex()));
  codec::ReportList list;
  for (const std::string& id : ids) {
    auto key = core::keys::Report(id);
    if (!key.ok()) continue;  // not written by this service
    FEDRX_ASSIGN_OR_RETURN(std::optional<std::string> text, store_.HashGet(*key, "info"));
    if (!text.has_value()) continue;
    core::Result<codec::ReportInfo> info = InfoFromJson(*text, key->str());
    if (!info.ok()) {
      metrics_.CountError("store", "bad_report_info");
      continue;
    }
    if (!request.kind.empty() && info->kind != request.kind) continue;
    list.reports.push_back(*std::move(info));
  }
  std::sort(list.reports.begin(), list.reports.end(),
            [](const codec::ReportInfo& a, const codec::ReportInfo& b) {
              if (a.created_ms != b.created_ms) return a.created_ms > b.created_ms;
              return a.report_id > b.report_id;
            });
  if (list.reports.size() > limit) list.reports.resize(limit);
  return list;
}

void InstallReportHandlers(domain::RequestService& service, ReportService& reports) {
  service.Handle<codec::CreateReport>(
      [&reports](const codec::CreateReport& r) { return domain::AsBody(reports.Create(r)); });
  service.Handle<codec::GetReport>(
      [&reports](const codec::GetReport& r) { return domain::AsBody(reports.Get(r)); });
  service.Handle<codec::ListReports>(
      [&reports](const codec::ListReports& r) { return domain::AsBody(reports.List(r)); });
}

}  // namespace fedrx::report
