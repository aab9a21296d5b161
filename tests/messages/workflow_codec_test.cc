// Codec, orchestrator and report bodies (orchestration.fbs, report.fbs):
// every request and answer of the orchestrator and report services survives
// encode/decode with every field, nested steps, runs and report infos
// included; an absent field or table decodes to the C++ default (limit 20 and
// 50, format "html"); a ReportDocument near the report service's 900,000-byte
// cap fits the 1 MiB envelope; truncated or garbled envelopes of these bodies
// are refused with a DecodeError (or, for a flip that only changes a value,
// decoded), never read out of bounds.
#include <flatbuffers/flatbuffers.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <span>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "messages/codec/codec.h"

namespace fedrx::codec {
namespace {

// ---- Field-by-field comparison ----------------------------------------------
// Same(want, got, where) checks every field of a plain type: the decoded value
// equals the original, and the original differs from the field's default (so
// a field the codec forgot cannot pass by carrying its default). Each Same()
// counts the fields it checked against the struct's number of fields, so a
// field added to message.h without a check here fails the test.

// Converts to any type: counts an aggregate's fields by how many initialise it.
struct AnyField {
  template <typename U>
  operator U() const;  // only in unevaluated contexts
};

template <typename T, typename... A>
constexpr std::size_t FieldCount() {
  if constexpr (requires { T{A{}..., AnyField{}}; }) {
    return FieldCount<T, A..., AnyField>();
  } else {
    return sizeof...(A);
  }
}
static_assert(FieldCount<StepState>() == 11);
static_assert(FieldCount<ReportInfo>() == 8);

void Same(const StepState& want, const StepState& got, const std::string& where);
void Same(const WorkflowRun& want, const WorkflowRun& got, const std::string& where);
void Same(const WorkflowInfo& want, const WorkflowInfo& got, const std::string& where);
void Same(const ReportInfo& want, const ReportInfo& got, const std::string& where);

template <typename T>
concept Record = requires(const T& a, const std::string& where) {
  Same(a, a, where);
};

template <typename T>
struct IsVector : std::false_type {};
template <typename T>
struct IsVector<std::vector<T>> : std::true_type {};
template <typename T>
concept RecordVector = IsVector<T>::value && Record<typename T::value_type>;

template <typename T>
void CheckField(const T& want, const T& got, const T& fallback, const std::string& where) {
  if constexpr (Record<T>) {
    Same(want, got, where);
  } else if constexpr (RecordVector<T>) {
    EXPECT_FALSE(want.empty()) << where << ": the sample leaves it empty";
    ASSERT_EQ(got.size(), want.size()) << where;
    for (std::size_t i = 0; i < want.size(); ++i) {
      Same(want[i], got[i], where + "[" + std::to_string(i) + "]");
    }
  } else {
    EXPECT_NE(want, fallback) << where << ": the sample holds the default value";
    EXPECT_EQ(got, want) << where;
  }
}

#define FEDRX_FIELD(f)                                                                  \
  do {                                                                                  \
    ++checked;                                                                          \
    CheckField(want.f, got.f, std::remove_cvref_t<decltype(want)>{}.f, where + "." #f); \
  } while (false)
#define FEDRX_ALL_FIELDS_CHECKED()                                      \
  EXPECT_EQ(checked, FieldCount<std::remove_cvref_t<decltype(want)>>()) \
      << where << ": a field of this type is not checked by the test"

void Same(const StepState& want, const StepState& got, const std::string& where) {
  int checked = 0;
  FEDRX_FIELD(step);
  FEDRX_FIELD(service);
  FEDRX_FIELD(call);
  FEDRX_FIELD(state);
  FEDRX_FIELD(attempts);
  FEDRX_FIELD(started_ms);
  FEDRX_FIELD(finished_ms);
  FEDRX_FIELD(error_code);
  FEDRX_FIELD(error);
  FEDRX_FIELD(error_where);
  FEDRX_FIELD(output_json);
  FEDRX_ALL_FIELDS_CHECKED();
}

void Same(const WorkflowRun& want, const WorkflowRun& got, const std::string& where) {
  int checked = 0;
  FEDRX_FIELD(run_id);
  FEDRX_FIELD(workflow);
  FEDRX_FIELD(workflow_version);
  FEDRX_FIELD(state);
  FEDRX_FIELD(created_ms);
  FEDRX_FIELD(finished_ms);
  FEDRX_FIELD(steps);
  FEDRX_FIELD(summary);
  FEDRX_FIELD(output_json);
  FEDRX_FIELD(report_id);
  FEDRX_FIELD(report_error);
  FEDRX_ALL_FIELDS_CHECKED();
}

void Same(const WorkflowInfo& want, const WorkflowInfo& got, const std::string& where) {
  int checked = 0;
  FEDRX_FIELD(name);
  FEDRX_FIELD(version);
  FEDRX_FIELD(description);
  FEDRX_FIELD(steps);
  FEDRX_FIELD(inputs);
  FEDRX_ALL_FIELDS_CHECKED();
}

void Same(const ReportInfo& want, const ReportInfo& got, const std::string& where) {
  int checked = 0;
  FEDRX_FIELD(report_id);
  FEDRX_FIELD(kind);
  FEDRX_FIELD(subject);
  FEDRX_FIELD(title);
  FEDRX_FIELD(created_ms);
  FEDRX_FIELD(html_bytes);
  FEDRX_FIELD(json_bytes);
  FEDRX_FIELD(summary);
  FEDRX_ALL_FIELDS_CHECKED();
}

// The bodies themselves.

void Same(const RunWorkflow& want, const RunWorkflow& got, const std::string& where) {
  int checked = 0;
  FEDRX_FIELD(workflow);
  FEDRX_FIELD(input_json);
  FEDRX_FIELD(run_id);
  FEDRX_ALL_FIELDS_CHECKED();
}

void Same(const GetWorkflowRun& want, const GetWorkflowRun& got, const std::string& where) {
  int checked = 0;
  FEDRX_FIELD(run_id);
  FEDRX_FIELD(include_outputs);
  FEDRX_ALL_FIELDS_CHECKED();
}

void Same(const WorkflowList& want, const WorkflowList& got, const std::string& where) {
  int checked = 0;
  FEDRX_FIELD(workflows);
  FEDRX_ALL_FIELDS_CHECKED();
}

void Same(const ListWorkflowRuns& want, const ListWorkflowRuns& got, const std::string& where) {
  int checked = 0;
  FEDRX_FIELD(workflow);
  FEDRX_FIELD(limit);
  FEDRX_ALL_FIELDS_CHECKED();
}

void Same(const WorkflowRunList& want, const WorkflowRunList& got, const std::string& where) {
  int checked = 0;
  FEDRX_FIELD(runs);
  FEDRX_ALL_FIELDS_CHECKED();
}

void Same(const CreateReport& want, const CreateReport& got, const std::string& where) {
  int checked = 0;
  FEDRX_FIELD(kind);
  FEDRX_FIELD(subject);
  FEDRX_ALL_FIELDS_CHECKED();
}

void Same(const GetReport& want, const GetReport& got, const std::string& where) {
  int checked = 0;
  FEDRX_FIELD(report_id);
  FEDRX_FIELD(format);
  FEDRX_ALL_FIELDS_CHECKED();
}

void Same(const ReportDocument& want, const ReportDocument& got, const std::string& where) {
  int checked = 0;
  FEDRX_FIELD(info);
  FEDRX_FIELD(format);
  FEDRX_FIELD(content);
  FEDRX_ALL_FIELDS_CHECKED();
}

void Same(const ListReports& want, const ListReports& got, const std::string& where) {
  int checked = 0;
  FEDRX_FIELD(kind);
  FEDRX_FIELD(limit);
  FEDRX_ALL_FIELDS_CHECKED();
}

void Same(const ReportList& want, const ReportList& got, const std::string& where) {
  int checked = 0;
  FEDRX_FIELD(reports);
  FEDRX_ALL_FIELDS_CHECKED();
}

// ---- Samples: every field away from its default -----------------------------

RunWorkflow SampleRunWorkflow() {
  RunWorkflow v;
  v.workflow = "first-in-human";
  v.input_json =
      R"({"structure":"CC(=O)Nc1ccc(O)cc1","noaels":[{"species":"rat","noael_mg_per_kg":50}]})";
  v.run_id = "run-20261126T190102Z-3f9a1c";
  return v;
}

GetWorkflowRun SampleGetWorkflowRun() {
  GetWorkflowRun v;
  v.run_id = "run-20261126T190102Z-3f9a1c";
  v.include_outputs = true;
  return v;
}

StepState SampleStep(const std::string& id, const std::string& service, const std::string& call) {
  StepState s;
  s.step = id;
  s.service = service;
  s.call = call;
  s.state = "failed";
  s.attempts = 3;
  s.started_ms = 1764183662000;
  s.finished_ms = 1764183665250;
  // A real step fills either the error fields or the output; here all are
  // filled so that the test sees each one travel.
  s.error_code = "unavailable";
  s.error = "no answer from tox within 20 s";
  s.error_where = "steps.tox";
  s.output_json = R"({"panel":"tox21","results":[{"input":"CCO"}]})";
  return s;
}

WorkflowRun SampleRun(const std::string& run_id) {
  WorkflowRun v;
  v.run_id = run_id;
  v.workflow = "first-in-human";
  v.workflow_version = "1";
  v.state = "partial";
  v.created_ms = 1764183662000;
  v.finished_ms = std::int64_t{1} << 41;  // beyond 32 bits
  v.steps = {SampleStep("tox", "tox", "PredictToxicity"),
             SampleStep("flags", "local", "flag_organ_classes")};
  v.summary = "proceed with conditions: hepatotoxicity flagged (SR-MMP p=0.87)";
  v.output_json = R"({"verdict":"proceed_with_conditions","findings":[]})";
  v.report_id = "rep-candidate-3f9a1c";
  v.report_error = "(filled for the test)";
  return v;
}

WorkflowList SampleWorkflowList() {
  WorkflowList v;
  WorkflowInfo fih;
  fih.name = "first-in-human";
  fih.version = "1";
  fih.description = "Toxicity, clinical risk and a starting dose for one candidate";
  fih.steps = {"tox", "toxcast", "clinical", "dose", "flags", "reverse"};
  fih.inputs = {"structure", "noaels", "therapeutic_area"};
  WorkflowInfo triage = fih;
  triage.name = "lead-triage";
  triage.steps = {"tox", "toxcast", "clinical"};
  triage.inputs = {"structures"};
  v.workflows = {fih, triage};
  return v;
}

ListWorkflowRuns SampleListWorkflowRuns() {
  ListWorkflowRuns v;
  v.workflow = "lead-triage";
  v.limit = 7;
  return v;
}

WorkflowRunList SampleWorkflowRunList() {
  WorkflowRunList v;
  v.runs = {SampleRun("run-b"), SampleRun("run-a")};
  return v;
}

CreateReport SampleCreateReport() {
  CreateReport v;
  v.kind = "candidate";
  v.subject = "run-20261126T190102Z-3f9a1c";
  return v;
}

ReportInfo SampleReportInfo(const std::string& id) {
  ReportInfo v;
  v.report_id = id;
  v.kind = "study";
  v.subject = "tox21-demo";
  v.title = "Study tox21-demo: 10 rounds, 3 sites";
  v.created_ms = 1764183700123;
  v.html_bytes = std::uint64_t{1} << 35;  // beyond 32 bits
  v.json_bytes = 48213;
  v.summary = "mean validation ROC-AUC 0.81 after round 10";
  return v;
}

GetReport SampleGetReport() {
  GetReport v;
  v.report_id = "rep-candidate-3f9a1c";
  v.format = "json";
  return v;
}

ReportDocument SampleReportDocument() {
  ReportDocument v;
  v.info = SampleReportInfo("rep-candidate-3f9a1c");
  v.format = "html";
  v.content = "<!doctype html><title>&lt;candidate&gt;</title><svg class=\"chart\"></svg>";
  return v;
}

ListReports SampleListReports() {
  ListReports v;
  v.kind = "candidate";
  v.limit = 3;
  return v;
}

ReportList SampleReportList() {
  ReportList v;
  v.reports = {SampleReportInfo("rep-2"), SampleReportInfo("rep-1")};
  return v;
}

// ---- Helpers ----------------------------------------------------------------

Message WithBody(Body body) {
  Message m;
  m.header.message_id = "m-1";
  m.header.sender = "scientist-1";
  m.header.sent_at_ms = 1764158400000;
  m.body = std::move(body);
  return m;
}

// Encodes `body` in an envelope and decodes it back; it must survive as the
// same alternative.
template <typename T>
T RoundTrip(const T& body, const Limits& limits = Limits{}) {
  Decoded d = Decode(Encode(WithBody(body)), limits);
  EXPECT_TRUE(d.ok()) << (d.ok() ? "" : d.error().where + ": " + d.error().message);
  if (!d.ok()) return {};
  EXPECT_TRUE(std::holds_alternative<T>(d.message().body))
      << "decoded as " << BodyName(d.message().body);
  if (!std::holds_alternative<T>(d.message().body)) return {};
  return std::get<T>(std::move(d.message().body));
}

std::vector<Blob> OneFrame(const std::uint8_t* data, std::size_t size) {
  std::vector<Blob> frames;
  frames.push_back(Blob::CopyOf(std::span(reinterpret_cast<const std::byte*>(data), size)));
  return frames;
}

// The envelope bytes of `body`.
std::vector<std::uint8_t> EnvelopeBytes(Body body) {
  std::vector<Blob> frames = Encode(WithBody(std::move(body)));
  const auto* p = reinterpret_cast<const std::uint8_t*>(frames[0].data());
  return std::vector<std::uint8_t>(p, p + frames[0].size());
}

template <typename T>
std::size_t TypeOf() {
  return Body(T{}).index() + 1;  // wire type 0 is NONE
}

// Finishes an envelope (raw FlatBuffers builder: the tests do not see the
// generated code) around a body table already in `b`.
void FinishEnvelope(flatbuffers::FlatBufferBuilder& b, std::size_t type,
                    flatbuffers::uoffset_t body, const char* message_id) {
  const auto id = b.CreateString(message_id);
  const auto env = b.StartTable();
  // Envelope fields by id: 0 schema_version, 1 message_id, 5 body_type, 6 body.
  b.AddElement<std::uint16_t>(flatbuffers::FieldIndexToOffset(0), kSchemaVersion, 0);
  b.AddOffset(flatbuffers::FieldIndexToOffset(1), id);
  b.AddElement<std::uint8_t>(flatbuffers::FieldIndexToOffset(5), static_cast<std::uint8_t>(type),
                             0);
  b.AddOffset(flatbuffers::FieldIndexToOffset(6), flatbuffers::Offset<void>(body));
  b.Finish(flatbuffers::Offset<void>(b.EndTable(env)), "FRX1");
}

// An empty body table of type T (every field absent) decoded.
template <typename T>
T FromEmptyTable() {
  flatbuffers::FlatBufferBuilder b(128);
  FinishEnvelope(b, TypeOf<T>(), b.EndTable(b.StartTable()), "m-empty");
  Decoded d = Decode(OneFrame(b.GetBufferPointer(), b.GetSize()));
  EXPECT_TRUE(d.ok()) << (d.ok() ? "" : d.error().where + ": " + d.error().message);
  if (!d.ok() || !std::holds_alternative<T>(d.message().body)) return {};
  return std::get<T>(std::move(d.message().body));
}

// The thirteen bodies' samples, built one at a time (a braced list of many
// Body alternatives is slow to compile).
std::vector<Body> SampleBodies() {
  std::vector<Body> bodies;
  bodies.emplace_back(SampleRunWorkflow());
  bodies.emplace_back(SampleGetWorkflowRun());
  bodies.emplace_back(SampleRun("run-20261126T190102Z-3f9a1c"));
  bodies.emplace_back(ListWorkflows{});
  bodies.emplace_back(SampleWorkflowList());
  bodies.emplace_back(SampleListWorkflowRuns());
  bodies.emplace_back(SampleWorkflowRunList());
  bodies.emplace_back(SampleCreateReport());
  bodies.emplace_back(SampleReportInfo("rep-1"));
  bodies.emplace_back(SampleGetReport());
  bodies.emplace_back(SampleReportDocument());
  bodies.emplace_back(SampleListReports());
  bodies.emplace_back(SampleReportList());
  return bodies;
}

// ---- Round trips ------------------------------------------------------------

TEST(WorkflowCodecTest, RunWorkflowSurvivesWithEveryField) {
  const RunWorkflow want = SampleRunWorkflow();
  Same(want, RoundTrip(want), "RunWorkflow");
}

TEST(WorkflowCodecTest, GetWorkflowRunSurvivesWithEveryField) {
  const GetWorkflowRun want = SampleGetWorkflowRun();
  Same(want, RoundTrip(want), "GetWorkflowRun");
}

TEST(WorkflowCodecTest, WorkflowRunSurvivesWithStepsAndOutputs) {
  const WorkflowRun want = SampleRun("run-20261126T190102Z-3f9a1c");
  Same(want, RoundTrip(want), "WorkflowRun");
}

TEST(WorkflowCodecTest, ListWorkflowsSurvives) {
  EXPECT_TRUE(std::holds_alternative<ListWorkflows>(
      Decode(Encode(WithBody(ListWorkflows{}))).message().body));
}

TEST(WorkflowCodecTest, WorkflowListSurvivesWithEveryWorkflow) {
  const WorkflowList want = SampleWorkflowList();
  Same(want, RoundTrip(want), "WorkflowList");
}

TEST(WorkflowCodecTest, ListWorkflowRunsSurvivesWithEveryField) {
  const ListWorkflowRuns want = SampleListWorkflowRuns();
  Same(want, RoundTrip(want), "ListWorkflowRuns");
}

TEST(WorkflowCodecTest, WorkflowRunListSurvivesInOrder) {
  const WorkflowRunList want = SampleWorkflowRunList();
  const WorkflowRunList got = RoundTrip(want);
  Same(want, got, "WorkflowRunList");
  ASSERT_EQ(got.runs.size(), 2u);
  EXPECT_EQ(got.runs[0].run_id, "run-b");
  EXPECT_EQ(got.runs[1].run_id, "run-a");
}

TEST(WorkflowCodecTest, CreateReportSurvivesWithEveryField) {
  const CreateReport want = SampleCreateReport();
  Same(want, RoundTrip(want), "CreateReport");
}

TEST(WorkflowCodecTest, ReportInfoSurvivesWithEveryField) {
  const ReportInfo want = SampleReportInfo("rep-1");
  Same(want, RoundTrip(want), "ReportInfo");
}

TEST(WorkflowCodecTest, GetReportSurvivesWithEveryField) {
  const GetReport want = SampleGetReport();
  Same(want, RoundTrip(want), "GetReport");
}

TEST(WorkflowCodecTest, ReportDocumentSurvivesWithInfoAndContent) {
  const ReportDocument want = SampleReportDocument();
  Same(want, RoundTrip(want), "ReportDocument");
}

TEST(WorkflowCodecTest, ListReportsSurvivesWithEveryField) {
  const ListReports want = SampleListReports();
  Same(want, RoundTrip(want), "ListReports");
}

TEST(WorkflowCodecTest, ReportListSurvivesInOrder) {
  const ReportList want = SampleReportList();
  const ReportList got = RoundTrip(want);
  Same(want, got, "ReportList");
  ASSERT_EQ(got.reports.size(), 2u);
  EXPECT_EQ(got.reports[0].report_id, "rep-2");
}

// A report of the largest size the report service stores (900,000 bytes of
// content) fits the default 1 MiB envelope with its info, byte for byte,
// including bytes that are not UTF-8 text; one of 1 MiB of content does not
// and is refused as oversized.
TEST(WorkflowCodecTest, ReportDocumentAtTheServiceCapFitsTheEnvelope) {
  ReportDocument want = SampleReportDocument();
  want.content.resize(900000);
  for (std::size_t i = 0; i < want.content.size(); ++i) {
    want.content[i] = static_cast<char>((i * 131) % 256);
  }
  const std::size_t envelope = EnvelopeBytes(want).size();
  EXPECT_LT(envelope, Limits{}.max_envelope_bytes);
  const ReportDocument got = RoundTrip(want);
  EXPECT_EQ(got.content.size(), 900000u);
  EXPECT_TRUE(got.content == want.content);
  EXPECT_EQ(got.info.report_id, want.info.report_id);

  ReportDocument too_big = SampleReportDocument();
  too_big.content.assign(Limits{}.max_envelope_bytes, 'x');
  Decoded d = Decode(Encode(WithBody(too_big)));
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().fault, DecodeFault::kOversized);
}

// Values at the edges of their ranges travel exactly.
TEST(WorkflowCodecTest, ExtremeValuesSurviveExactly) {
  WorkflowRun run;
  run.created_ms = std::numeric_limits<std::int64_t>::min();
  run.finished_ms = std::numeric_limits<std::int64_t>::max();
  StepState step;
  step.attempts = std::numeric_limits<std::uint32_t>::max();
  step.started_ms = -1;
  run.steps = {step, StepState{}};
  const WorkflowRun got = RoundTrip(run);
  EXPECT_EQ(got.created_ms, std::numeric_limits<std::int64_t>::min());
  EXPECT_EQ(got.finished_ms, std::numeric_limits<std::int64_t>::max());
  ASSERT_EQ(got.steps.size(), 2u);
  EXPECT_EQ(got.steps[0].attempts, std::numeric_limits<std::uint32_t>::max());
  EXPECT_EQ(got.steps[0].started_ms, -1);
  EXPECT_EQ(got.steps[1].state, "");

  ReportInfo info;
  info.html_bytes = std::numeric_limits<std::uint64_t>::max();
  EXPECT_EQ(RoundTrip(info).html_bytes, std::numeric_limits<std::uint64_t>::max());
  ListReports list;
  list.limit = 0;  // zero is sent, not replaced by the default
  EXPECT_EQ(RoundTrip(list).limit, 0u);
}

TEST(WorkflowCodecTest, BodyNamesAreStable) {
  EXPECT_STREQ(BodyName(Body{RunWorkflow{}}), "RunWorkflow");
  EXPECT_STREQ(BodyName(Body{GetWorkflowRun{}}), "GetWorkflowRun");
  EXPECT_STREQ(BodyName(Body{WorkflowRun{}}), "WorkflowRun");
  EXPECT_STREQ(BodyName(Body{ListWorkflows{}}), "ListWorkflows");
  EXPECT_STREQ(BodyName(Body{WorkflowList{}}), "WorkflowList");
  EXPECT_STREQ(BodyName(Body{ListWorkflowRuns{}}), "ListWorkflowRuns");
  EXPECT_STREQ(BodyName(Body{WorkflowRunList{}}), "WorkflowRunList");
  EXPECT_STREQ(BodyName(Body{CreateReport{}}), "CreateReport");
  EXPECT_STREQ(BodyName(Body{ReportInfo{}}), "ReportInfo");
  EXPECT_STREQ(BodyName(Body{GetReport{}}), "GetReport");
  EXPECT_STREQ(BodyName(Body{ReportDocument{}}), "ReportDocument");
  EXPECT_STREQ(BodyName(Body{ListReports{}}), "ListReports");
  EXPECT_STREQ(BodyName(Body{ReportList{}}), "ReportList");
}

// The union numbers are the wire contract (append only): the thirteen bodies
// follow ReverseTranslation, in message.h's order.
TEST(WorkflowCodecTest, WireTypeNumbersFollowTheReverseBodies) {
  const std::size_t after = TypeOf<ReverseTranslation>();
  EXPECT_EQ(TypeOf<RunWorkflow>(), after + 1);
  EXPECT_EQ(TypeOf<GetWorkflowRun>(), after + 2);
  EXPECT_EQ(TypeOf<WorkflowRun>(), after + 3);
  EXPECT_EQ(TypeOf<ListWorkflows>(), after + 4);
  EXPECT_EQ(TypeOf<WorkflowList>(), after + 5);
  EXPECT_EQ(TypeOf<ListWorkflowRuns>(), after + 6);
  EXPECT_EQ(TypeOf<WorkflowRunList>(), after + 7);
  EXPECT_EQ(TypeOf<CreateReport>(), after + 8);
  EXPECT_EQ(TypeOf<ReportInfo>(), after + 9);
  EXPECT_EQ(TypeOf<GetReport>(), after + 10);
  EXPECT_EQ(TypeOf<ReportDocument>(), after + 11);
  EXPECT_EQ(TypeOf<ListReports>(), after + 12);
  EXPECT_EQ(TypeOf<ReportList>(), after + 13);
  EXPECT_EQ(TypeOf<ReportList>(), kBodyCount);
}

// ---- Absent fields and tables -----------------------------------------------

// Default-constructed bodies come back as the defaults.
TEST(WorkflowCodecAbsentTest, DefaultBodiesSurviveAsDefaults) {
  EXPECT_EQ(RoundTrip(ListWorkflowRuns{}).limit, 20u);
  EXPECT_EQ(RoundTrip(ListReports{}).limit, 50u);
  EXPECT_EQ(RoundTrip(GetReport{}).format, "html");
  EXPECT_FALSE(RoundTrip(GetWorkflowRun{}).include_outputs);
  ReportDocument doc;
  const ReportDocument got = RoundTrip(doc);
  EXPECT_EQ(got.info.created_ms, 0);
  EXPECT_EQ(got.content, "");
}

// An empty request table (a terse sender) decodes to the C++ defaults: limit
// 20 and 50, format "html".
TEST(WorkflowCodecAbsentTest, EmptyRequestsDecodeToTheDefaults) {
  const RunWorkflow run = FromEmptyTable<RunWorkflow>();
  EXPECT_EQ(run.workflow, "");
  EXPECT_EQ(run.input_json, "");
  EXPECT_EQ(run.run_id, "");
  const GetWorkflowRun get = FromEmptyTable<GetWorkflowRun>();
  EXPECT_EQ(get.run_id, "");
  EXPECT_FALSE(get.include_outputs);
  EXPECT_EQ(FromEmptyTable<ListWorkflowRuns>().limit, 20u);
  EXPECT_EQ(FromEmptyTable<ListWorkflowRuns>().workflow, "");
  EXPECT_EQ(FromEmptyTable<ListReports>().limit, 50u);
  EXPECT_EQ(FromEmptyTable<ListReports>().kind, "");
  EXPECT_EQ(FromEmptyTable<GetReport>().format, "html");
  EXPECT_EQ(FromEmptyTable<GetReport>().report_id, "");
  const CreateReport create = FromEmptyTable<CreateReport>();
  EXPECT_EQ(create.kind, "");
  EXPECT_EQ(create.subject, "");
}

// A GetReport whose format is present but empty is passed on as empty (for
// the report service to refuse), not silently turned into "html".
TEST(WorkflowCodecAbsentTest, EmptyFormatStaysEmpty) {
  GetReport g;
  g.report_id = "rep-1";
  g.format = "";
  EXPECT_EQ(RoundTrip(g).format, "");
}

// Answers without their nested tables decode to empty lists and an empty
// info, not to a refusal.
TEST(WorkflowCodecAbsentTest, AnswersWithoutNestedTablesDecodeToDefaults) {
  const WorkflowRun run = FromEmptyTable<WorkflowRun>();
  EXPECT_EQ(run.run_id, "");
  EXPECT_TRUE(run.steps.empty());
  EXPECT_EQ(run.finished_ms, 0);
  EXPECT_TRUE(FromEmptyTable<WorkflowList>().workflows.empty());
  EXPECT_TRUE(FromEmptyTable<WorkflowRunList>().runs.empty());
  EXPECT_TRUE(FromEmptyTable<ReportList>().reports.empty());
  const ReportDocument doc = FromEmptyTable<ReportDocument>();
  EXPECT_EQ(doc.info.report_id, "");
  EXPECT_EQ(doc.info.html_bytes, 0u);
  EXPECT_EQ(doc.format, "");
  EXPECT_EQ(doc.content, "");
  const ReportInfo info = FromEmptyTable<ReportInfo>();
  EXPECT_EQ(info.kind, "");
  EXPECT_EQ(info.json_bytes, 0u);
}

// Inside a run, an empty StepState table reads as the struct defaults.
TEST(WorkflowCodecAbsentTest, AbsentStepFieldsReadAsTheirDefaults) {
  flatbuffers::FlatBufferBuilder b(256);
  const auto step = b.EndTable(b.StartTable());  // StepState, all absent
  const std::vector<flatbuffers::Offset<void>> steps = {flatbuffers::Offset<void>(step)};
  const auto steps_vec = b.CreateVector(steps);
  const auto run = b.StartTable();
  // WorkflowRun fields by id: 0 run_id, ..., 6 steps.
  b.AddOffset(flatbuffers::FieldIndexToOffset(6), steps_vec);
  FinishEnvelope(b, TypeOf<WorkflowRun>(), b.EndTable(run), "m-step");
  Decoded d = Decode(OneFrame(b.GetBufferPointer(), b.GetSize()));
  ASSERT_TRUE(d.ok()) << d.error().where << ": " << d.error().message;
  const auto& got = std::get<WorkflowRun>(d.message().body);
  ASSERT_EQ(got.steps.size(), 1u);
  EXPECT_EQ(got.steps[0].step, "");
  EXPECT_EQ(got.steps[0].attempts, 0u);
  EXPECT_EQ(got.steps[0].started_ms, 0);
  EXPECT_EQ(got.steps[0].output_json, "");
}

// A body type with its table missing is refused and names the body.
TEST(WorkflowCodecAbsentTest, BodyTypeWithoutItsTableIsRefused) {
  for (const std::size_t type : {TypeOf<RunWorkflow>(), TypeOf<ReportDocument>()}) {
    flatbuffers::FlatBufferBuilder b(128);
    const auto id = b.CreateString("m-none");
    const auto env = b.StartTable();
    b.AddElement<std::uint16_t>(flatbuffers::FieldIndexToOffset(0), kSchemaVersion, 0);
    b.AddOffset(flatbuffers::FieldIndexToOffset(1), id);
    b.AddElement<std::uint8_t>(flatbuffers::FieldIndexToOffset(5), static_cast<std::uint8_t>(type),
                               0);
    b.Finish(flatbuffers::Offset<void>(b.EndTable(env)), "FRX1");
    Decoded d = Decode(OneFrame(b.GetBufferPointer(), b.GetSize()));
    ASSERT_FALSE(d.ok());
    EXPECT_EQ(d.error().fault, DecodeFault::kMissingField);
    EXPECT_EQ(d.error().where, "envelope.body");
    EXPECT_NE(d.error().message.find(BodyNameAt(type - 1)), std::string::npos) << d.error().message;
    EXPECT_EQ(d.error().message_id, "m-none");
  }
}

// ---- Damaged input ----------------------------------------------------------

// A strict prefix of an encoded body is refused as not an envelope or as
// failing verification, with a location. Only alignment padding at the very
// end (under 8 bytes) can go unnoticed, and then the decoded message is the
// whole original (it re-encodes to the same bytes).
TEST(WorkflowCodecDamageTest, TruncatedEnvelopesAreRefused) {
  for (const Body& body : SampleBodies()) {
    const std::vector<std::uint8_t> clean = EnvelopeBytes(body);
    std::size_t refused = 0;
    for (std::size_t size = 0; size < clean.size(); ++size) {
      Decoded d = Decode(OneFrame(clean.data(), size));
      if (d.ok()) {
        EXPECT_GT(size + 8, clean.size())
            << BodyName(body) << " cut to " << size << " of " << clean.size() << " decoded";
        EXPECT_EQ(EnvelopeBytes(std::move(d.message().body)), clean)
            << BodyName(body) << " cut to " << size << " decoded as something else";
        continue;
      }
      ++refused;
      EXPECT_TRUE(d.error().fault == DecodeFault::kNotAnEnvelope ||
                  d.error().fault == DecodeFault::kVerifyFailed ||
                  d.error().fault == DecodeFault::kNoFrames)
          << BodyName(body) << " cut to " << size << ": " << DecodeFaultName(d.error().fault);
      EXPECT_FALSE(d.error().where.empty());
    }
    EXPECT_GT(refused + 8, clean.size()) << BodyName(body);
  }
}

// Flipping bytes of encoded bodies yields a decoded message or a DecodeError,
// never a crash or an out-of-bounds read (the fuzz build runs this under
// ASan). Seeded, so a failure reproduces.
TEST(WorkflowCodecDamageTest, RandomByteFlipsAreDecodedOrRefusedCleanly) {
  std::mt19937 rng(19);
  std::size_t decoded = 0;
  std::size_t refused = 0;
  for (const Body& body : SampleBodies()) {
    const std::vector<std::uint8_t> clean = EnvelopeBytes(body);
    for (int trial = 0; trial < 300; ++trial) {
      std::vector<std::uint8_t> bytes = clean;
      const int flips = 1 + static_cast<int>(rng() % 4);
      for (int f = 0; f < flips; ++f) bytes[rng() % bytes.size()] ^= 1u << (rng() % 8);
      Decoded d = Decode(OneFrame(bytes.data(), bytes.size()));
      if (d.ok()) {
        ++decoded;
        EXPECT_LT(d.message().body.index(), kBodyCount);
      } else {
        ++refused;
        EXPECT_FALSE(d.error().where.empty());
        EXPECT_FALSE(d.error().message.empty());
      }
    }
  }
  // Both outcomes occur: the flips reach values (decoded) and offsets (refused).
  EXPECT_GT(decoded, 0u);
  EXPECT_GT(refused, 0u);
}

// The envelope's offset to the body table overwritten with garbage (here far
// past the buffer's end) is caught by the Verifier for every new body.
TEST(WorkflowCodecDamageTest, GarbledBodyOffsetIsRefused) {
  const auto u32 = [](const std::vector<std::uint8_t>& v, std::size_t at) {
    std::uint32_t x;
    std::memcpy(&x, v.data() + at, sizeof x);
    return x;
  };
  for (const Body& body : SampleBodies()) {
    std::vector<std::uint8_t> bytes = EnvelopeBytes(body);
    // Root offset -> envelope table; its vtable (table position minus the
    // signed offset stored there) -> the byte offset of field 6 (body).
    const std::size_t table = u32(bytes, 0);
    const std::size_t vtable = table - static_cast<std::int32_t>(u32(bytes, table));
    std::uint16_t field;
    std::memcpy(&field, bytes.data() + vtable + 4 + 2 * 6, sizeof field);
    ASSERT_NE(field, 0) << BodyName(body) << ": the envelope has no body field";
    const std::uint32_t garbage = 0x7fffff00u;
    std::memcpy(bytes.data() + table + field, &garbage, sizeof garbage);
    Decoded d = Decode(OneFrame(bytes.data(), bytes.size()));
    ASSERT_FALSE(d.ok()) << BodyName(body);
    EXPECT_EQ(d.error().fault, DecodeFault::kVerifyFailed) << BodyName(body);
    EXPECT_FALSE(d.error().where.empty());
  }
}

}  // namespace
}  // namespace fedrx::codec
