// Codec, ML domain bodies (prediction.fbs): every request and answer of the
// tox, clinical and reverse services survives encode/decode with every
// field, nested tables and the Working included; an absent field or table
// decodes to the C++ default (the schema defaults equal message.h's, e.g.
// confidence 0.9, fdr 0.05, p-values 1, in_domain true); truncated or
// garbled envelopes of these bodies are refused with a DecodeError (or, for
// a flip that only changes a value, decoded), never read out of bounds.
#include <flatbuffers/flatbuffers.h>
#include <gtest/gtest.h>

#include <cmath>
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
static_assert(FieldCount<AssayAssociation>() == 15);

void Same(const Quantity& want, const Quantity& got, const std::string& where);
void Same(const WorkStep& want, const WorkStep& got, const std::string& where);
void Same(const Working& want, const Working& got, const std::string& where);
void Same(const ModelProvenance& want, const ModelProvenance& got, const std::string& where);
void Same(const TaskPrediction& want, const TaskPrediction& got, const std::string& where);
void Same(const DomainAssessment& want, const DomainAssessment& got, const std::string& where);
void Same(const StructurePrediction& want, const StructurePrediction& got,
          const std::string& where);
void Same(const PhaseTransition& want, const PhaseTransition& got, const std::string& where);
void Same(const ClinicalSuccess& want, const ClinicalSuccess& got, const std::string& where);
void Same(const AssayAssociation& want, const AssayAssociation& got, const std::string& where);
void Same(const SendEndpointRecommendation& want, const SendEndpointRecommendation& got,
          const std::string& where);
void Same(const OrganClassRecommendation& want, const OrganClassRecommendation& got,
          const std::string& where);

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

void Same(const Quantity& want, const Quantity& got, const std::string& where) {
  int checked = 0;
  FEDRX_FIELD(name);
  FEDRX_FIELD(value);
  FEDRX_FIELD(unit);
  FEDRX_ALL_FIELDS_CHECKED();
}

void Same(const WorkStep& want, const WorkStep& got, const std::string& where) {
  int checked = 0;
  FEDRX_FIELD(label);
  FEDRX_FIELD(formula);
  FEDRX_FIELD(inputs);
  FEDRX_FIELD(result);
  FEDRX_FIELD(reference);
  FEDRX_ALL_FIELDS_CHECKED();
}

void Same(const Working& want, const Working& got, const std::string& where) {
  int checked = 0;
  FEDRX_FIELD(method);
  FEDRX_FIELD(guidance);
  FEDRX_FIELD(steps);
  FEDRX_FIELD(notes);
  FEDRX_ALL_FIELDS_CHECKED();
}

void Same(const ModelProvenance& want, const ModelProvenance& got, const std::string& where) {
  int checked = 0;
  FEDRX_FIELD(study_id);
  FEDRX_FIELD(model_version);
  FEDRX_FIELD(preparation_hash);
  FEDRX_FIELD(calibration_samples);
  FEDRX_FIELD(calibration_version);
  FEDRX_FIELD(method);
  FEDRX_ALL_FIELDS_CHECKED();
}

void Same(const TaskPrediction& want, const TaskPrediction& got, const std::string& where) {
  int checked = 0;
  FEDRX_FIELD(task);
  FEDRX_FIELD(probability);
  FEDRX_FIELD(p_negative);
  FEDRX_FIELD(p_positive);
  FEDRX_FIELD(prediction_set);
  FEDRX_FIELD(credibility);
  FEDRX_FIELD(confidence);
  FEDRX_FIELD(calibrated);
  FEDRX_ALL_FIELDS_CHECKED();
}

void Same(const DomainAssessment& want, const DomainAssessment& got, const std::string& where) {
  int checked = 0;
  FEDRX_FIELD(score);
  FEDRX_FIELD(p_value);
  FEDRX_FIELD(in_domain);
  FEDRX_FIELD(threshold);
  FEDRX_FIELD(calibrated);
  FEDRX_ALL_FIELDS_CHECKED();
}

void Same(const StructurePrediction& want, const StructurePrediction& got,
          const std::string& where) {
  int checked = 0;
  FEDRX_FIELD(input);
  FEDRX_FIELD(canonical_smiles);
  FEDRX_FIELD(error_code);
  FEDRX_FIELD(error);
  FEDRX_FIELD(error_where);
  FEDRX_FIELD(tasks);
  FEDRX_FIELD(domain);
  FEDRX_ALL_FIELDS_CHECKED();
}

void Same(const PhaseTransition& want, const PhaseTransition& got, const std::string& where) {
  int checked = 0;
  FEDRX_FIELD(transition);
  FEDRX_FIELD(base_rate);
  FEDRX_FIELD(adjusted);
  FEDRX_FIELD(weight);
  FEDRX_ALL_FIELDS_CHECKED();
}

void Same(const ClinicalSuccess& want, const ClinicalSuccess& got, const std::string& where) {
  int checked = 0;
  FEDRX_FIELD(therapeutic_area);
  FEDRX_FIELD(risk);
  FEDRX_FIELD(log_likelihood_ratio);
  FEDRX_FIELD(transitions);
  FEDRX_FIELD(base_likelihood_of_approval);
  FEDRX_FIELD(adjusted_likelihood_of_approval);
  FEDRX_FIELD(source);
  FEDRX_ALL_FIELDS_CHECKED();
}

void Same(const AssayAssociation& want, const AssayAssociation& got, const std::string& where) {
  int checked = 0;
  FEDRX_FIELD(clinical_label);
  FEDRX_FIELD(assay);
  FEDRX_FIELD(a);
  FEDRX_FIELD(b);
  FEDRX_FIELD(c);
  FEDRX_FIELD(d);
  FEDRX_FIELD(sufficient_evidence);
  FEDRX_FIELD(odds_ratio);
  FEDRX_FIELD(ci_low);
  FEDRX_FIELD(ci_high);
  FEDRX_FIELD(p_value);
  FEDRX_FIELD(q_value);
  FEDRX_FIELD(significant);
  FEDRX_FIELD(in_table_family);
  FEDRX_FIELD(evidence);
  FEDRX_ALL_FIELDS_CHECKED();
}

void Same(const SendEndpointRecommendation& want, const SendEndpointRecommendation& got,
          const std::string& where) {
  int checked = 0;
  FEDRX_FIELD(domain);
  FEDRX_FIELD(code);
  FEDRX_FIELD(note);
  FEDRX_ALL_FIELDS_CHECKED();
}

void Same(const OrganClassRecommendation& want, const OrganClassRecommendation& got,
          const std::string& where) {
  int checked = 0;
  FEDRX_FIELD(organ_class);
  FEDRX_FIELD(matched_terms);
  FEDRX_FIELD(assays);
  FEDRX_FIELD(endpoints);
  FEDRX_FIELD(none_reason);
  FEDRX_FIELD(rationale);
  FEDRX_FIELD(reference);
  FEDRX_ALL_FIELDS_CHECKED();
}

// The bodies themselves.

void Same(const PredictToxicity& want, const PredictToxicity& got, const std::string& where) {
  int checked = 0;
  FEDRX_FIELD(smiles);
  FEDRX_FIELD(panel);
  FEDRX_FIELD(tasks);
  FEDRX_FIELD(confidence);
  FEDRX_ALL_FIELDS_CHECKED();
}

void Same(const ToxicityPanel& want, const ToxicityPanel& got, const std::string& where) {
  int checked = 0;
  FEDRX_FIELD(panel);
  FEDRX_FIELD(model);
  FEDRX_FIELD(confidence);
  FEDRX_FIELD(tasks);
  FEDRX_FIELD(results);
  FEDRX_FIELD(working);
  FEDRX_ALL_FIELDS_CHECKED();
}

void Same(const AssessClinical& want, const AssessClinical& got, const std::string& where) {
  int checked = 0;
  FEDRX_FIELD(smiles);
  FEDRX_FIELD(therapeutic_area);
  FEDRX_FIELD(confidence);
  FEDRX_ALL_FIELDS_CHECKED();
}

void Same(const ClinicalAssessment& want, const ClinicalAssessment& got, const std::string& where) {
  int checked = 0;
  FEDRX_FIELD(model);
  FEDRX_FIELD(confidence);
  FEDRX_FIELD(clinical);
  FEDRX_FIELD(success);
  FEDRX_FIELD(side_effect_model);
  FEDRX_FIELD(side_effects);
  FEDRX_FIELD(side_effects_unavailable);
  FEDRX_FIELD(working);
  FEDRX_ALL_FIELDS_CHECKED();
}

void Same(const ReverseTranslate& want, const ReverseTranslate& got, const std::string& where) {
  int checked = 0;
  FEDRX_FIELD(organ_classes);
  FEDRX_FIELD(adverse_events);
  FEDRX_FIELD(clinical_labels);
  FEDRX_FIELD(fdr);
  FEDRX_ALL_FIELDS_CHECKED();
}

void Same(const ReverseTranslation& want, const ReverseTranslation& got, const std::string& where) {
  int checked = 0;
  FEDRX_FIELD(organ_classes);
  FEDRX_FIELD(label_associations);
  FEDRX_FIELD(counts_study);
  FEDRX_FIELD(counts_version);
  FEDRX_FIELD(counts_sites);
  FEDRX_FIELD(counts_compounds);
  FEDRX_FIELD(counts_secure);
  FEDRX_FIELD(working);
  FEDRX_ALL_FIELDS_CHECKED();
}

// ---- Samples: every field away from its default -----------------------------

Working SampleWorking(const std::string& tag) {
  Working w;
  w.method = tag + ": Mondrian inductive conformal prediction";
  w.guidance = "Vovk, Gammerman and Shafer 2005, Algorithmic Learning in a Random World";
  WorkStep step;
  step.label = "p-value of the positive label";
  step.formula = "p = (#{calibration positives with score <= s} + 1) / (n_pos + 1)";
  step.inputs = {{"score", 0.73, "probability"}, {"n_pos", 412, "rows"}};
  step.result = {"p_positive", 0.4213075060532688, "p-value"};
  step.reference = "Mondrian ICP";
  WorkStep second;
  second.label = "Domain";
  second.formula = "u = s / (1 + s)";
  second.inputs = {{"s", 0.5, "standardised distance"}};
  second.result = {"u", 1.0 / 3.0, "score"};
  second.reference = "services/ml/domain.h";
  w.steps = {step, second};
  w.notes = {"3 sites calibrated", "bins of width 1/64"};
  return w;
}

ModelProvenance SampleProvenance(const std::string& study) {
  ModelProvenance p;
  p.study_id = study;
  p.model_version = 17;
  p.preparation_hash = "sha256:4f2a9c";
  p.calibration_samples = std::uint64_t{1} << 40;  // beyond 32 bits
  p.calibration_version = 16;
  p.method = "Mondrian inductive conformal prediction on the sites' validation folds";
  return p;
}

TaskPrediction SampleTask(const std::string& task, double probability) {
  TaskPrediction t;
  t.task = task;
  t.probability = probability;
  t.p_negative = 0.03125;
  t.p_positive = 0.6180339887498949;
  t.prediction_set = "positive";
  t.credibility = 0.6180339887498949;
  t.confidence = 0.96875;
  t.calibrated = true;
  return t;
}

DomainAssessment SampleDomain() {
  // Every field away from the struct's defaults (p_value 1, in_domain true).
  DomainAssessment d;
  d.score = 0.8125;
  d.p_value = 0.0049;
  d.in_domain = false;
  d.threshold = 0.01;
  d.calibrated = true;
  return d;
}

StructurePrediction SampleStructure(const std::string& smiles, const std::string& task) {
  StructurePrediction s;
  s.input = smiles;
  s.canonical_smiles = smiles + "(C)";
  // A real answer leaves the error fields empty when predicted; here they are
  // filled so that the test sees each one travel.
  s.error_code = "InvalidArgument";
  s.error = "aromaticity could not be perceived";
  s.error_where = "smiles[1]";
  s.tasks = {SampleTask(task, 0.875), SampleTask(task + "-b", 0.125)};
  s.domain = SampleDomain();
  return s;
}

PredictToxicity SamplePredictToxicity() {
  PredictToxicity v;
  v.smiles = {"CCO", "c1ccccc1O", "not a smiles"};
  v.panel = "toxcast";
  v.tasks = {"NR-AR", "SR-MMP"};
  v.confidence = 0.8;
  return v;
}

ToxicityPanel SampleToxicityPanel() {
  ToxicityPanel v;
  v.panel = "tox21";
  v.model = SampleProvenance("tox21-demo");
  v.confidence = 0.95;
  v.tasks = {"NR-AR", "SR-MMP"};
  v.results = {SampleStructure("CCO", "NR-AR"), SampleStructure("c1ccccc1O", "SR-MMP")};
  v.working = SampleWorking("tox");
  return v;
}

AssessClinical SampleAssessClinical() {
  AssessClinical v;
  v.smiles = {"CC(=O)Oc1ccccc1C(=O)O"};
  v.therapeutic_area = "oncology";
  v.confidence = 0.75;
  return v;
}

ClinicalSuccess SampleSuccess() {
  ClinicalSuccess s;
  s.therapeutic_area = "oncology";
  s.risk = 0.3;
  s.log_likelihood_ratio = -0.4054651081081644;
  s.transitions = {{"phase1_to_phase2", 0.52, 0.47, 0.25}, {"filing_to_approval", 0.9, 0.88, 0.1}};
  s.base_likelihood_of_approval = 0.051;
  s.adjusted_likelihood_of_approval = 0.037;
  s.source = "Hay et al. 2014, Nat Biotechnol 32:40";
  return s;
}

ClinicalAssessment SampleClinicalAssessment() {
  ClinicalAssessment v;
  v.model = SampleProvenance("clintox-demo");
  v.confidence = 0.85;
  v.clinical = {SampleStructure("CCO", "CT_TOX")};
  v.success = {SampleSuccess(), SampleSuccess()};
  v.success[1].therapeutic_area = "all";
  v.side_effect_model = SampleProvenance("sider-study");
  v.side_effects = {SampleStructure("CCO", "Hepatobiliary disorders")};
  v.side_effects_unavailable = "no side-effect study is configured";
  v.working = SampleWorking("clinical");
  return v;
}

ReverseTranslate SampleReverseTranslate() {
  ReverseTranslate v;
  v.organ_classes = {"Hepatobiliary disorders", "Cardiac disorders"};
  v.adverse_events = {"hepatitis", "QT prolongation"};
  v.clinical_labels = {"CT_TOX"};
  v.fdr = 0.1;
  return v;
}

AssayAssociation SampleAssociation(const std::string& assay) {
  AssayAssociation a;
  a.clinical_label = "CT_TOX";
  a.assay = assay;
  a.a = 21;
  a.b = 34;
  a.c = 55;
  a.d = std::uint64_t{1} << 33;
  a.sufficient_evidence = true;
  a.odds_ratio = 2.75;
  a.ci_low = 1.5;
  a.ci_high = 5.25;
  a.p_value = 0.0009765625;
  a.q_value = 0.00390625;
  a.significant = true;
  a.in_table_family = true;
  a.evidence = "a=21 b=34 c=55 d=8589934592; OR 2.75 (1.5-5.25); p 0.00098 q 0.0039";
  return a;
}

ReverseTranslation SampleReverseTranslation() {
  ReverseTranslation v;
  OrganClassRecommendation organ;
  organ.organ_class = "Hepatobiliary disorders";
  organ.matched_terms = {"hepatitis", "jaundice"};
  organ.assays = {SampleAssociation("SR-MMP"), SampleAssociation("NR-PPAR-gamma")};
  organ.endpoints = {{"LB", "ALT", "alanine aminotransferase"}, {"MI", "LIVER", "hepatocellular"}};
  organ.none_reason = "(filled for the test)";
  organ.rationale = "mitochondrial toxicity foreshadows drug-induced liver injury";
  organ.reference = "FDA 2009, Drug-Induced Liver Injury: Premarketing Clinical Evaluation";
  v.organ_classes = {organ};
  v.label_associations = {SampleAssociation("SR-ARE")};
  v.counts_study = "clintox-demo-counts";
  v.counts_version = 3;
  v.counts_sites = 3;
  v.counts_compounds = 1478;
  v.counts_secure = true;
  v.working = SampleWorking("reverse");
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
T RoundTrip(const T& body) {
  Decoded d = Decode(Encode(WithBody(body)));
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

// The six bodies' samples, built one at a time (a braced list of many Body
// alternatives costs GCC 12 minutes).
std::vector<Body> SampleBodies() {
  std::vector<Body> bodies;
  bodies.emplace_back(SamplePredictToxicity());
  bodies.emplace_back(SampleToxicityPanel());
  bodies.emplace_back(SampleAssessClinical());
  bodies.emplace_back(SampleClinicalAssessment());
  bodies.emplace_back(SampleReverseTranslate());
  bodies.emplace_back(SampleReverseTranslation());
  return bodies;
}

// ---- Round trips ------------------------------------------------------------

TEST(PredictionCodecTest, PredictToxicitySurvivesWithEveryField) {
  const PredictToxicity want = SamplePredictToxicity();
  Same(want, RoundTrip(want), "PredictToxicity");
}

TEST(PredictionCodecTest, ToxicityPanelSurvivesWithProvenanceResultsAndWorking) {
  const ToxicityPanel want = SampleToxicityPanel();
  Same(want, RoundTrip(want), "ToxicityPanel");
}

TEST(PredictionCodecTest, AssessClinicalSurvivesWithEveryField) {
  const AssessClinical want = SampleAssessClinical();
  Same(want, RoundTrip(want), "AssessClinical");
}

TEST(PredictionCodecTest, ClinicalAssessmentSurvivesWithSuccessAndSideEffects) {
  const ClinicalAssessment want = SampleClinicalAssessment();
  Same(want, RoundTrip(want), "ClinicalAssessment");
}

TEST(PredictionCodecTest, ReverseTranslateSurvivesWithEveryField) {
  const ReverseTranslate want = SampleReverseTranslate();
  Same(want, RoundTrip(want), "ReverseTranslate");
}

TEST(PredictionCodecTest, ReverseTranslationSurvivesWithRecommendationsAndCounts) {
  const ReverseTranslation want = SampleReverseTranslation();
  Same(want, RoundTrip(want), "ReverseTranslation");
}

// A refused structure sits between answered ones; a refused structure's
// ClinicalSuccess entry is empty: order and emptiness both survive.
TEST(PredictionCodecTest, RefusedStructuresKeepTheirPlaceAndTheirEmptyEntries) {
  ClinicalAssessment want;
  want.clinical = {SampleStructure("CCO", "CT_TOX"), StructurePrediction{},
                   SampleStructure("CCN", "CT_TOX")};
  want.clinical[1].input = "C1CC";
  want.clinical[1].error_code = "InvalidArgument";
  want.clinical[1].error = "unclosed ring";
  want.clinical[1].error_where = "smiles[1]";
  want.success = {SampleSuccess(), ClinicalSuccess{}, SampleSuccess()};
  const ClinicalAssessment got = RoundTrip(want);
  ASSERT_EQ(got.clinical.size(), 3u);
  EXPECT_EQ(got.clinical[0].input, "CCO");
  EXPECT_EQ(got.clinical[1].input, "C1CC");
  EXPECT_EQ(got.clinical[1].error_where, "smiles[1]");
  EXPECT_TRUE(got.clinical[1].tasks.empty());
  EXPECT_EQ(got.clinical[2].input, "CCN");
  ASSERT_EQ(got.success.size(), 3u);
  EXPECT_EQ(got.success[0].risk, 0.3);
  EXPECT_EQ(got.success[1].therapeutic_area, "");
  EXPECT_TRUE(got.success[1].transitions.empty());
  EXPECT_EQ(got.success[1].adjusted_likelihood_of_approval, 0);
  EXPECT_EQ(got.success[2].transitions.size(), 2u);
}

// Values at the edges of their ranges travel exactly: p-values of 0 and 1,
// counts at the top of 64 bits, an infinite odds ratio (a zero cell without
// correction), a NaN probability (for the receiver to refuse).
TEST(PredictionCodecTest, ExtremeValuesSurviveExactly) {
  ReverseTranslation r;
  AssayAssociation a;
  a.a = std::numeric_limits<std::uint64_t>::max();
  a.odds_ratio = std::numeric_limits<double>::infinity();
  a.ci_high = std::numeric_limits<double>::infinity();
  a.p_value = 0;
  a.q_value = 0;
  r.label_associations = {a};
  r.counts_version = std::numeric_limits<std::uint32_t>::max();
  const ReverseTranslation got = RoundTrip(r);
  ASSERT_EQ(got.label_associations.size(), 1u);
  EXPECT_EQ(got.label_associations[0].a, std::numeric_limits<std::uint64_t>::max());
  EXPECT_EQ(got.label_associations[0].odds_ratio, std::numeric_limits<double>::infinity());
  EXPECT_EQ(got.label_associations[0].ci_high, std::numeric_limits<double>::infinity());
  EXPECT_EQ(got.label_associations[0].p_value, 0);
  EXPECT_EQ(got.label_associations[0].q_value, 0);
  EXPECT_EQ(got.counts_version, std::numeric_limits<std::uint32_t>::max());

  ToxicityPanel t;
  StructurePrediction s;
  TaskPrediction task;
  task.probability = std::numeric_limits<double>::quiet_NaN();
  task.p_negative = 1;
  s.tasks = {task};
  t.results = {s};
  const ToxicityPanel tg = RoundTrip(t);
  ASSERT_EQ(tg.results.size(), 1u);
  ASSERT_EQ(tg.results[0].tasks.size(), 1u);
  EXPECT_TRUE(std::isnan(tg.results[0].tasks[0].probability));
  EXPECT_EQ(tg.results[0].tasks[0].p_negative, 1);
}

TEST(PredictionCodecTest, BodyNamesAreStable) {
  EXPECT_STREQ(BodyName(Body{PredictToxicity{}}), "PredictToxicity");
  EXPECT_STREQ(BodyName(Body{ToxicityPanel{}}), "ToxicityPanel");
  EXPECT_STREQ(BodyName(Body{AssessClinical{}}), "AssessClinical");
  EXPECT_STREQ(BodyName(Body{ClinicalAssessment{}}), "ClinicalAssessment");
  EXPECT_STREQ(BodyName(Body{ReverseTranslate{}}), "ReverseTranslate");
  EXPECT_STREQ(BodyName(Body{ReverseTranslation{}}), "ReverseTranslation");
}

// The union numbers are the wire contract (append only): the six bodies
// follow VirtualTrialResult, in message.h's order.
TEST(PredictionCodecTest, WireTypeNumbersFollowTheTrialBodies) {
  const std::size_t after = TypeOf<VirtualTrialResult>();
  EXPECT_EQ(TypeOf<PredictToxicity>(), after + 1);
  EXPECT_EQ(TypeOf<ToxicityPanel>(), after + 2);
  EXPECT_EQ(TypeOf<AssessClinical>(), after + 3);
  EXPECT_EQ(TypeOf<ClinicalAssessment>(), after + 4);
  EXPECT_EQ(TypeOf<ReverseTranslate>(), after + 5);
  EXPECT_EQ(TypeOf<ReverseTranslation>(), after + 6);
}

// ---- Absent fields and tables -----------------------------------------------

// Default-constructed bodies (their defaults left off the wire) come back as
// the defaults.
TEST(PredictionCodecAbsentTest, DefaultBodiesSurviveAsDefaults) {
  EXPECT_EQ(RoundTrip(PredictToxicity{}).confidence, 0.9);
  EXPECT_EQ(RoundTrip(AssessClinical{}).confidence, 0.9);
  EXPECT_EQ(RoundTrip(ReverseTranslate{}).fdr, 0.05);
  ToxicityPanel t;
  t.results.resize(1);
  const ToxicityPanel got = RoundTrip(t);
  ASSERT_EQ(got.results.size(), 1u);
  EXPECT_EQ(got.results[0].domain.p_value, 1);
  EXPECT_TRUE(got.results[0].domain.in_domain);
  EXPECT_FALSE(got.results[0].domain.calibrated);
}

// An empty request table (a terse sender) decodes to the C++ defaults.
TEST(PredictionCodecAbsentTest, EmptyRequestsDecodeToTheDefaults) {
  const PredictToxicity p = FromEmptyTable<PredictToxicity>();
  EXPECT_TRUE(p.smiles.empty());
  EXPECT_EQ(p.panel, "");
  EXPECT_TRUE(p.tasks.empty());
  EXPECT_EQ(p.confidence, 0.9);

  const AssessClinical c = FromEmptyTable<AssessClinical>();
  EXPECT_TRUE(c.smiles.empty());
  EXPECT_EQ(c.therapeutic_area, "");
  EXPECT_EQ(c.confidence, 0.9);

  const ReverseTranslate r = FromEmptyTable<ReverseTranslate>();
  EXPECT_TRUE(r.organ_classes.empty());
  EXPECT_TRUE(r.adverse_events.empty());
  EXPECT_TRUE(r.clinical_labels.empty());
  EXPECT_EQ(r.fdr, 0.05);
}

// Answers without their nested tables decode to empty provenance and
// working, not to a refusal.
TEST(PredictionCodecAbsentTest, AnswersWithoutNestedTablesDecodeToDefaults) {
  const ToxicityPanel t = FromEmptyTable<ToxicityPanel>();
  EXPECT_EQ(t.model.study_id, "");
  EXPECT_EQ(t.model.model_version, 0u);
  EXPECT_EQ(t.model.calibration_samples, 0u);
  EXPECT_TRUE(t.results.empty());
  EXPECT_TRUE(t.working.steps.empty());

  const ClinicalAssessment c = FromEmptyTable<ClinicalAssessment>();
  EXPECT_EQ(c.model.study_id, "");
  EXPECT_EQ(c.side_effect_model.model_version, 0u);
  EXPECT_TRUE(c.clinical.empty());
  EXPECT_TRUE(c.success.empty());
  EXPECT_TRUE(c.side_effects.empty());
  EXPECT_EQ(c.side_effects_unavailable, "");

  const ReverseTranslation r = FromEmptyTable<ReverseTranslation>();
  EXPECT_TRUE(r.organ_classes.empty());
  EXPECT_EQ(r.counts_sites, 0u);
  EXPECT_FALSE(r.counts_secure);
  EXPECT_TRUE(r.working.method.empty());
}

// Inside a result, an absent DomainAssessment table and absent association
// fields read as the struct defaults: in domain, p-value 1, q-value 1.
TEST(PredictionCodecAbsentTest, AbsentNestedTablesReadAsTheirDefaults) {
  flatbuffers::FlatBufferBuilder b(256);
  const auto structure = b.EndTable(b.StartTable());  // StructurePrediction, all absent
  const std::vector<flatbuffers::Offset<void>> results = {flatbuffers::Offset<void>(structure)};
  const auto results_vec = b.CreateVector(results);
  const auto panel = b.StartTable();
  // ToxicityPanel fields by id: 0 panel, 1 model, 2 confidence, 3 tasks, 4 results.
  b.AddOffset(flatbuffers::FieldIndexToOffset(4), results_vec);
  FinishEnvelope(b, TypeOf<ToxicityPanel>(), b.EndTable(panel), "m-nested");
  Decoded d = Decode(OneFrame(b.GetBufferPointer(), b.GetSize()));
  ASSERT_TRUE(d.ok()) << d.error().where << ": " << d.error().message;
  const auto& t = std::get<ToxicityPanel>(d.message().body);
  ASSERT_EQ(t.results.size(), 1u);
  EXPECT_EQ(t.results[0].input, "");
  EXPECT_TRUE(t.results[0].domain.in_domain);
  EXPECT_EQ(t.results[0].domain.p_value, 1);
  EXPECT_EQ(t.results[0].domain.score, 0);

  flatbuffers::FlatBufferBuilder r(256);
  const auto association = r.EndTable(r.StartTable());  // AssayAssociation, all absent
  const std::vector<flatbuffers::Offset<void>> labels = {flatbuffers::Offset<void>(association)};
  const auto labels_vec = r.CreateVector(labels);
  const auto translation = r.StartTable();
  // ReverseTranslation fields by id: 0 organ_classes, 1 label_associations.
  r.AddOffset(flatbuffers::FieldIndexToOffset(1), labels_vec);
  FinishEnvelope(r, TypeOf<ReverseTranslation>(), r.EndTable(translation), "m-assoc");
  Decoded e = Decode(OneFrame(r.GetBufferPointer(), r.GetSize()));
  ASSERT_TRUE(e.ok()) << e.error().where << ": " << e.error().message;
  const auto& got = std::get<ReverseTranslation>(e.message().body);
  ASSERT_EQ(got.label_associations.size(), 1u);
  EXPECT_EQ(got.label_associations[0].p_value, 1);
  EXPECT_EQ(got.label_associations[0].q_value, 1);
  EXPECT_FALSE(got.label_associations[0].significant);
}

// A body type with its table missing is refused and names the body.
TEST(PredictionCodecAbsentTest, BodyTypeWithoutItsTableIsRefused) {
  flatbuffers::FlatBufferBuilder b(128);
  const auto id = b.CreateString("m-none");
  const auto env = b.StartTable();
  b.AddElement<std::uint16_t>(flatbuffers::FieldIndexToOffset(0), kSchemaVersion, 0);
  b.AddOffset(flatbuffers::FieldIndexToOffset(1), id);
  b.AddElement<std::uint8_t>(flatbuffers::FieldIndexToOffset(5),
                             static_cast<std::uint8_t>(TypeOf<AssessClinical>()), 0);
  b.Finish(flatbuffers::Offset<void>(b.EndTable(env)), "FRX1");
  Decoded d = Decode(OneFrame(b.GetBufferPointer(), b.GetSize()));
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().fault, DecodeFault::kMissingField);
  EXPECT_EQ(d.error().where, "envelope.body");
  EXPECT_NE(d.error().message.find("AssessClinical"), std::string::npos) << d.error().message;
  EXPECT_EQ(d.error().message_id, "m-none");
}

// ---- Damaged input ----------------------------------------------------------

// A strict prefix of an encoded body is refused as not an envelope or as
// failing verification, with a location. FlatBuffers writes children after
// their parents, so a cut loses bytes something points to; only alignment
// padding at the very end (under 8 bytes) can go unnoticed, and then the
// decoded message is the whole original (it re-encodes to the same bytes).
TEST(PredictionCodecDamageTest, TruncatedEnvelopesAreRefused) {
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
TEST(PredictionCodecDamageTest, RandomByteFlipsAreDecodedOrRefusedCleanly) {
  std::mt19937 rng(11);
  std::size_t decoded = 0;
  std::size_t refused = 0;
  for (const Body& body : SampleBodies()) {
    const std::vector<std::uint8_t> clean = EnvelopeBytes(body);
    for (int trial = 0; trial < 400; ++trial) {
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

// The envelope's offset to the body table overwritten with garbage (a
// classic corrupt pointer, here far past the buffer's end) is caught by the
// Verifier for every new body.
TEST(PredictionCodecDamageTest, GarbledBodyOffsetIsRefused) {
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
