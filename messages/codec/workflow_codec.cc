// Wire conversion of the orchestrator and report bodies (orchestration.fbs,
// report.fbs): workflow runs and their steps, the workflow catalogue, and
// stored reports. Each Write() writes one plain type as its table; each
// Read() reads a table back, an absent table reading as the plain type's
// defaults (the schemas' defaults equal message.h's).
#include <string>
#include <utility>
#include <vector>

#include "messages/codec/codec_internal.h"

namespace fedrx::codec::internal {
namespace {

namespace fb = flatbuffers;
namespace w = fedrx::wire;
using Builder = fb::FlatBufferBuilder;

// Declared first so that WriteAll() and ReadAll() find every overload
// whatever the order of the definitions below.
fb::Offset<w::StepState> Write(Builder& b, const StepState& v);
fb::Offset<w::WorkflowRun> Write(Builder& b, const WorkflowRun& v);
fb::Offset<w::WorkflowInfo> Write(Builder& b, const WorkflowInfo& v);
fb::Offset<w::ReportInfo> Write(Builder& b, const ReportInfo& v);
StepState Read(const w::StepState* v);
WorkflowRun Read(const w::WorkflowRun* v);
WorkflowInfo Read(const w::WorkflowInfo* v);
ReportInfo Read(const w::ReportInfo* v);

// ---- Encoding ---------------------------------------------------------------

// A vector of tables, each written by the Write() overload for T.
template <typename T>
auto WriteAll(Builder& b, const std::vector<T>& v) {
  return WriteTables(b, v, [](Builder& builder, const T& x) { return Write(builder, x); });
}

fb::Offset<w::StepState> Write(Builder& b, const StepState& v) {
  // Children first: FlatBuffers builds a table after everything it points to.
  auto step = b.CreateString(v.step);
  auto service = b.CreateString(v.service);
  auto call = b.CreateString(v.call);
  auto state = b.CreateString(v.state);
  auto code = b.CreateString(v.error_code);
  auto error = b.CreateString(v.error);
  auto where = b.CreateString(v.error_where);
  auto output = b.CreateString(v.output_json);
  return w::CreateStepState(b, step, service, call, state, v.attempts, v.started_ms, v.finished_ms,
                            code, error, where, output);
}

fb::Offset<w::WorkflowRun> Write(Builder& b, const WorkflowRun& v) {
  auto run_id = b.CreateString(v.run_id);
  auto workflow = b.CreateString(v.workflow);
  auto version = b.CreateString(v.workflow_version);
  auto state = b.CreateString(v.state);
  auto steps = WriteAll(b, v.steps);
  auto summary = b.CreateString(v.summary);
  auto output = b.CreateString(v.output_json);
  auto report_id = b.CreateString(v.report_id);
  auto report_error = b.CreateString(v.report_error);
  return w::CreateWorkflowRun(b, run_id, workflow, version, state, v.created_ms, v.finished_ms,
                              steps, summary, output, report_id, report_error);
}

fb::Offset<w::WorkflowInfo> Write(Builder& b, const WorkflowInfo& v) {
  auto name = b.CreateString(v.name);
  auto version = b.CreateString(v.version);
  auto description = b.CreateString(v.description);
  auto steps = b.CreateVectorOfStrings(v.steps);
  auto inputs = b.CreateVectorOfStrings(v.inputs);
  return w::CreateWorkflowInfo(b, name, version, description, steps, inputs);
}

fb::Offset<w::ReportInfo> Write(Builder& b, const ReportInfo& v) {
  auto report_id = b.CreateString(v.report_id);
  auto kind = b.CreateString(v.kind);
  auto subject = b.CreateString(v.subject);
  auto title = b.CreateString(v.title);
  auto summary = b.CreateString(v.summary);
  return w::CreateReportInfo(b, report_id, kind, subject, title, v.created_ms, v.html_bytes,
                             v.json_bytes, summary);
}

// ---- Decoding ---------------------------------------------------------------

// A vector of tables, each read by the Read() overload for W.
template <typename W>
auto ReadAll(const fb::Vector<fb::Offset<W>>* v) {
  return ReadTables(v, [](const W* x) { return Read(x); });
}

StepState Read(const w::StepState* v) {
  StepState out;
  if (v == nullptr) return out;
  out.step = Str(v->step());
  out.service = Str(v->service());
  out.call = Str(v->call());
  out.state = Str(v->state());
  out.attempts = v->attempts();
  out.started_ms = v->started_ms();
  out.finished_ms = v->finished_ms();
  out.error_code = Str(v->error_code());
  out.error = Str(v->error());
  out.error_where = Str(v->error_where());
  out.output_json = Str(v->output_json());
  return out;
}

WorkflowRun Read(const w::WorkflowRun* v) {
  WorkflowRun out;
  if (v == nullptr) return out;
  out.run_id = Str(v->run_id());
  out.workflow = Str(v->workflow());
  out.workflow_version = Str(v->workflow_version());
  out.state = Str(v->state());
  out.created_ms = v->created_ms();
  out.finished_ms = v->finished_ms();
  out.steps = ReadAll(v->steps());
  out.summary = Str(v->summary());
  out.output_json = Str(v->output_json());
  out.report_id = Str(v->report_id());
  out.report_error = Str(v->report_error());
  return out;
}

WorkflowInfo Read(const w::WorkflowInfo* v) {
  WorkflowInfo out;
  if (v == nullptr) return out;
  out.name = Str(v->name());
  out.version = Str(v->version());
  out.description = Str(v->description());
  out.steps = Strs(v->steps());
  out.inputs = Strs(v->inputs());
  return out;
}

ReportInfo Read(const w::ReportInfo* v) {
  ReportInfo out;
  if (v == nullptr) return out;
  out.report_id = Str(v->report_id());
  out.kind = Str(v->kind());
  out.subject = Str(v->subject());
  out.title = Str(v->title());
  out.created_ms = v->created_ms();
  out.html_bytes = v->html_bytes();
  out.json_bytes = v->json_bytes();
  out.summary = Str(v->summary());
  return out;
}

}  // namespace

// ---- Bodies: encoding -------------------------------------------------------

BodyOffset EncodeWorkflow(Builder& b, const RunWorkflow& v) {
  auto workflow = b.CreateString(v.workflow);
  auto input = b.CreateString(v.input_json);
  auto run_id = b.CreateString(v.run_id);
  return {w::Body::RunWorkflow, w::CreateRunWorkflow(b, workflow, input, run_id).Union()};
}

BodyOffset EncodeWorkflow(Builder& b, const GetWorkflowRun& v) {
  auto run_id = b.CreateString(v.run_id);
  return {w::Body::GetWorkflowRun, w::CreateGetWorkflowRun(b, run_id, v.include_outputs).Union()};
}

BodyOffset EncodeWorkflow(Builder& b, const WorkflowRun& v) {
  return {w::Body::WorkflowRun, Write(b, v).Union()};
}

BodyOffset EncodeWorkflow(Builder& b, const ListWorkflows&) {
  return {w::Body::ListWorkflows, w::CreateListWorkflows(b).Union()};
}

BodyOffset EncodeWorkflow(Builder& b, const WorkflowList& v) {
  auto workflows = WriteAll(b, v.workflows);
  return {w::Body::WorkflowList, w::CreateWorkflowList(b, workflows).Union()};
}

BodyOffset EncodeWorkflow(Builder& b, const ListWorkflowRuns& v) {
  auto workflow = b.CreateString(v.workflow);
  return {w::Body::ListWorkflowRuns, w::CreateListWorkflowRuns(b, workflow, v.limit).Union()};
}

BodyOffset EncodeWorkflow(Builder& b, const WorkflowRunList& v) {
  auto runs = WriteAll(b, v.runs);
  return {w::Body::WorkflowRunList, w::CreateWorkflowRunList(b, runs).Union()};
}

BodyOffset EncodeWorkflow(Builder& b, const CreateReport& v) {
  auto kind = b.CreateString(v.kind);
  auto subject = b.CreateString(v.subject);
  return {w::Body::CreateReport, w::CreateCreateReport(b, kind, subject).Union()};
}

BodyOffset EncodeWorkflow(Builder& b, const ReportInfo& v) {
  return {w::Body::ReportInfo, Write(b, v).Union()};
}

BodyOffset EncodeWorkflow(Builder& b, const GetReport& v) {
  auto report_id = b.CreateString(v.report_id);
  auto format = b.CreateString(v.format);
  return {w::Body::GetReport, w::CreateGetReport(b, report_id, format).Union()};
}

BodyOffset EncodeWorkflow(Builder& b, const ReportDocument& v) {
  auto info = Write(b, v.info);
  auto format = b.CreateString(v.format);
  auto content = b.CreateString(v.content);
  return {w::Body::ReportDocument, w::CreateReportDocument(b, info, format, content).Union()};
}

BodyOffset EncodeWorkflow(Builder& b, const ListReports& v) {
  auto kind = b.CreateString(v.kind);
  return {w::Body::ListReports, w::CreateListReports(b, kind, v.limit).Union()};
}

BodyOffset EncodeWorkflow(Builder& b, const ReportList& v) {
  auto reports = WriteAll(b, v.reports);
  return {w::Body::ReportList, w::CreateReportList(b, reports).Union()};
}

// ---- Bodies: decoding -------------------------------------------------------

bool WorkflowBodyOf(const w::Envelope& env, Body& out, DecodeError& error) {
  switch (env.body_type()) {
    case w::Body::RunWorkflow: {
      const auto* v = env.body_as_RunWorkflow();
      RunWorkflow m;
      m.workflow = Str(v->workflow());
      m.input_json = Str(v->input_json());
      m.run_id = Str(v->run_id());
      out = std::move(m);
      return true;
    }
    case w::Body::GetWorkflowRun: {
      const auto* v = env.body_as_GetWorkflowRun();
      GetWorkflowRun m;
      m.run_id = Str(v->run_id());
      m.include_outputs = v->include_outputs();
      out = std::move(m);
      return true;
    }
    case w::Body::WorkflowRun:
      out = Read(env.body_as_WorkflowRun());
      return true;
    case w::Body::ListWorkflows:
      out = ListWorkflows{};
      return true;
    case w::Body::WorkflowList: {
      WorkflowList m;
      m.workflows = ReadAll(env.body_as_WorkflowList()->workflows());
      out = std::move(m);
      return true;
    }
    case w::Body::ListWorkflowRuns: {
      const auto* v = env.body_as_ListWorkflowRuns();
      ListWorkflowRuns m;
      m.workflow = Str(v->workflow());
      m.limit = v->limit();
      out = std::move(m);
      return true;
    }
    case w::Body::WorkflowRunList: {
      WorkflowRunList m;
      m.runs = ReadAll(env.body_as_WorkflowRunList()->runs());
      out = std::move(m);
      return true;
    }
    case w::Body::CreateReport: {
      const auto* v = env.body_as_CreateReport();
      CreateReport m;
      m.kind = Str(v->kind());
      m.subject = Str(v->subject());
      out = std::move(m);
      return true;
    }
    case w::Body::ReportInfo:
      out = Read(env.body_as_ReportInfo());
      return true;
    case w::Body::GetReport: {
      const auto* v = env.body_as_GetReport();
      GetReport m;
      m.report_id = Str(v->report_id());
      // An absent format keeps the C++ default ("html"); an empty one stays
      // empty for the service to refuse.
      if (v->format() != nullptr) m.format = v->format()->str();
      out = std::move(m);
      return true;
    }
    case w::Body::ReportDocument: {
      const auto* v = env.body_as_ReportDocument();
      ReportDocument m;
      m.info = Read(v->info());
      m.format = Str(v->format());
      m.content = Str(v->content());
      out = std::move(m);
      return true;
    }
    case w::Body::ListReports: {
      const auto* v = env.body_as_ListReports();
      ListReports m;
      m.kind = Str(v->kind());
      m.limit = v->limit();
      out = std::move(m);
      return true;
    }
    case w::Body::ReportList: {
      ReportList m;
      m.reports = ReadAll(env.body_as_ReportList()->reports());
      out = std::move(m);
      return true;
    }
    default:
      break;
  }
  error.fault = DecodeFault::kUnknownBody;
  error.message = "body type " + std::to_string(static_cast<int>(env.body_type())) +
                  " is not an orchestrator or report body";
  error.where = "envelope.body";
  return false;
}

}  // namespace fedrx::codec::internal
