// Codec: every body survives encode/decode with its fields; tensors move
// without a copy; every malformed input is refused with a fault, a message
// and a location.
#include "messages/codec/codec.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "messages/codec/codec_testing.h"

namespace fedrx::codec {
namespace {

Message WithBody(Body body, std::string id = "m-1") {
  Message m;
  m.header.message_id = std::move(id);
  m.header.correlation_id = "c-9";
  m.header.sender = "site-a";
  m.header.sent_at_ms = 1234567;
  m.body = std::move(body);
  return m;
}

Message RoundTrip(Message m) {
  Decoded d = Decode(Encode(std::move(m)));
  EXPECT_TRUE(d.ok()) << (d.ok() ? "" : d.error().message);
  return std::move(d.message());
}

TEST(CodecTest, HeaderFieldsSurviveRoundTrip) {
  Message out = RoundTrip(WithBody(Ack{"fine"}, "id-42"));
  EXPECT_EQ(out.header.schema_version, kSchemaVersion);
  EXPECT_EQ(out.header.message_id, "id-42");
  EXPECT_EQ(out.header.correlation_id, "c-9");
  EXPECT_EQ(out.header.sender, "site-a");
  EXPECT_EQ(out.header.sent_at_ms, 1234567);
  EXPECT_EQ(std::get<Ack>(out.body).detail, "fine");
}

TEST(CodecTest, RegisterSiteFieldsSurviveRoundTrip) {
  Message out = RoundTrip(
      WithBody(RegisterSite{"site-a", "Hospital A", 7831, {"NR-AR", "SR-p53"}, "abc123"}));
  const auto& r = std::get<RegisterSite>(out.body);
  EXPECT_EQ(r.site_id, "site-a");
  EXPECT_EQ(r.institution, "Hospital A");
  EXPECT_EQ(r.num_samples, 7831u);
  EXPECT_EQ(r.tasks, (std::vector<std::string>{"NR-AR", "SR-p53"}));
  EXPECT_EQ(r.schema_hash, "abc123");
}

TEST(CodecTest, SiteListKeepsEverySiteInOrder) {
  SiteList list;
  list.sites.push_back({"a", "A", 1, {"t1"}, "h1", 10, 20});
  list.sites.push_back({"b", "B", 2, {}, "h2", 30, 40});
  Message out = RoundTrip(WithBody(list));
  const auto& l = std::get<SiteList>(out.body);
  ASSERT_EQ(l.sites.size(), 2u);
  EXPECT_EQ(l.sites[0].site_id, "a");
  EXPECT_EQ(l.sites[0].tasks, std::vector<std::string>{"t1"});
  EXPECT_EQ(l.sites[1].institution, "B");
  EXPECT_EQ(l.sites[1].registered_at_ms, 30);
  EXPECT_EQ(l.sites[1].last_seen_ms, 40);
}

TEST(CodecTest, CreateStudyCarriesTheWholeSpec) {
  StudySpec s;
  s.study_id = "tox21-1";
  s.name = "Tox21 panel";
  s.tasks = {"NR-AR", "NR-AhR"};
  s.model = {2048, {512, 128}, 2, 0.25f};
  s.rounds = 20;
  s.min_sites = 3;
  s.local_epochs = 2;
  s.learning_rate = 0.001f;
  s.seed = 99;
  s.strategy = "fedavg";
  Message out = RoundTrip(WithBody(CreateStudy{s}));
  const auto& got = std::get<CreateStudy>(out.body).study;
  EXPECT_EQ(got.study_id, "tox21-1");
  EXPECT_EQ(got.tasks.size(), 2u);
  EXPECT_EQ(got.model.input_dim, 2048u);
  EXPECT_EQ(got.model.hidden, (std::vector<std::uint32_t>{512, 128}));
  EXPECT_FLOAT_EQ(got.model.dropout, 0.25f);
  EXPECT_EQ(got.rounds, 20u);
  EXPECT_EQ(got.min_sites, 3u);
  EXPECT_FLOAT_EQ(got.learning_rate, 0.001f);
  EXPECT_EQ(got.seed, 99u);
  EXPECT_EQ(got.strategy, "fedavg");
}

TEST(CodecTest, StudySpecCarriesTheFederationOptions) {
  StudySpec s;
  s.study_id = "robust-1";
  s.strategy = "multikrum";
  s.server_optimizer = "fedyogi";
  s.server_learning_rate = 0.03f;
  s.proximal_mu = 0.01f;
  s.trim_fraction = 0.2f;
  s.krum_byzantine = 2;
  s.krum_selected = 4;
  s.norm_bound = 3.5f;
  s.dp_clip_norm = 1.25f;
  s.dp_noise_multiplier = 0.9f;
  s.dp_delta = 1e-6;
  s.dp_epsilon_budget = 7.5;
  s.secure_aggregation = true;
  s.secagg_threshold = 5;
  s.server_beta1 = 0.8f;
  s.server_beta2 = 0.95f;
  s.server_tau = 1e-4f;
  s.private_heads = true;
  s.secagg_neighbours = 4;
  Message out = RoundTrip(WithBody(CreateStudy{s}));
  const auto& got = std::get<CreateStudy>(out.body).study;
  EXPECT_EQ(got.strategy, "multikrum");
  EXPECT_EQ(got.server_optimizer, "fedyogi");
  EXPECT_FLOAT_EQ(got.server_learning_rate, 0.03f);
  EXPECT_FLOAT_EQ(got.proximal_mu, 0.01f);
  EXPECT_FLOAT_EQ(got.trim_fraction, 0.2f);
  EXPECT_EQ(got.krum_byzantine, 2u);
  EXPECT_EQ(got.krum_selected, 4u);
  EXPECT_FLOAT_EQ(got.norm_bound, 3.5f);
  EXPECT_FLOAT_EQ(got.dp_clip_norm, 1.25f);
  EXPECT_FLOAT_EQ(got.dp_noise_multiplier, 0.9f);
  EXPECT_DOUBLE_EQ(got.dp_delta, 1e-6);
  EXPECT_DOUBLE_EQ(got.dp_epsilon_budget, 7.5);
  EXPECT_TRUE(got.secure_aggregation);
  EXPECT_EQ(got.secagg_threshold, 5u);
  EXPECT_FLOAT_EQ(got.server_beta1, 0.8f);
  EXPECT_FLOAT_EQ(got.server_beta2, 0.95f);
  EXPECT_FLOAT_EQ(got.server_tau, 1e-4f);
  EXPECT_TRUE(got.private_heads);
  EXPECT_EQ(got.secagg_neighbours, 4u);
}

TEST(CodecTest, StudySpecFederationOptionsDefaultWhenAbsent) {
  // A spec written without the options (as an older writer would) reads back
  // with the schema's defaults, which are the plain C++ defaults.
  StudySpec s;
  s.study_id = "plain";
  Message out = RoundTrip(WithBody(CreateStudy{s}));
  const auto& got = std::get<CreateStudy>(out.body).study;
  const StudySpec defaults;
  EXPECT_EQ(got.server_optimizer, "");
  EXPECT_EQ(got.server_learning_rate, defaults.server_learning_rate);
  EXPECT_EQ(got.server_learning_rate, 1.0f);
  EXPECT_EQ(got.dp_delta, defaults.dp_delta);
  EXPECT_EQ(got.server_beta1, defaults.server_beta1);
  EXPECT_EQ(got.server_beta2, defaults.server_beta2);
  EXPECT_EQ(got.server_tau, defaults.server_tau);
  EXPECT_EQ(got.dp_clip_norm, 0.0f);
  EXPECT_FALSE(got.secure_aggregation);
  EXPECT_FALSE(got.private_heads);
  EXPECT_EQ(got.secagg_neighbours, 0u);
  EXPECT_EQ(got.evaluate_every, 1u);
}

TEST(CodecTest, ErrorAndRoundStatusEnumsSurvive) {
  Message e = RoundTrip(WithBody(Error{ErrorCode::kNotFound, "no such study", "study_id"}));
  EXPECT_EQ(std::get<Error>(e.body).code, ErrorCode::kNotFound);
  EXPECT_EQ(std::get<Error>(e.body).where, "study_id");
  Message r = RoundTrip(WithBody(RoundStatus{"s", 4, RoundState::kAggregating, 5, 3, 777}));
  const auto& rs = std::get<RoundStatus>(r.body);
  EXPECT_EQ(rs.state, RoundState::kAggregating);
  EXPECT_EQ(rs.round, 4u);
  EXPECT_EQ(rs.updates_received, 3u);
  EXPECT_EQ(rs.deadline_ms, 777);
}

TEST(CodecTest, ModelUpdateTensorsMoveWithoutCopy) {
  std::vector<float> w(1000);
  for (std::size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(i) * 0.5f;
  const float* original = w.data();
  Message m = WithBody(ModelUpdate{"s1", 3, "site-a", 2, 500, {{"loss", 0.42}}});
  m.tensors.push_back(
      Tensor{"trunk.0", DType::kFloat32, {10, 100}, Blob::FromFloats(std::move(w))});
  Message out = RoundTrip(std::move(m));
  const auto& u = std::get<ModelUpdate>(out.body);
  EXPECT_EQ(u.num_samples, 500u);
  ASSERT_EQ(u.metrics.size(), 1u);
  EXPECT_DOUBLE_EQ(u.metrics[0].value, 0.42);
  ASSERT_EQ(out.tensors.size(), 1u);
  EXPECT_EQ(out.tensors[0].name, "trunk.0");
  EXPECT_EQ(out.tensors[0].shape, (std::vector<std::int64_t>{10, 100}));
  auto values = out.tensors[0].data.As<float>();
  ASSERT_EQ(values.size(), 1000u);
  EXPECT_EQ(values.data(), original);  // the very same buffer, never copied
  EXPECT_FLOAT_EQ(values[999], 499.5f);
}

// zmq hands over small frames inside its receive buffer, at any address.
TEST(CodecTest, TensorFrameAtAnOddAddressIsDecodedAsItsValues) {
  const std::vector<float> w = {1.5f, -2.0f, 3.25f, 0.0f, 7.0f};
  Message m = WithBody(ModelUpdate{"s1", 1, "site-a", 0, 1, {}});
  m.tensors.push_back(
      Tensor{"weights", DType::kFloat32, {5}, Blob::FromFloats(std::vector<float>(w))});
  std::vector<Blob> frames = Encode(std::move(m));
  ASSERT_EQ(frames.size(), 2u);
  // The same bytes, one past an aligned address.
  auto* shifted = new std::vector<std::byte>(frames[1].size() + 1);
  std::memcpy(shifted->data() + 1, frames[1].data(), frames[1].size());
  frames[1] = Blob(shifted, shifted->data() + 1, frames[1].size(),
                   [](void* p) { delete static_cast<std::vector<std::byte>*>(p); });
  ASSERT_TRUE(frames[1].As<float>().empty());  // the case being tested
  Decoded d = Decode(std::move(frames));
  ASSERT_TRUE(d.ok()) << d.error().message;
  ASSERT_EQ(d.message().tensors.size(), 1u);
  auto values = d.message().tensors[0].data.As<float>();
  EXPECT_EQ(std::vector<float>(values.begin(), values.end()), w);
}

TEST(CodecTest, OriginAndRouteSurviveRoundTrip) {
  Message m = WithBody(Heartbeat{{"tox21-demo"}});
  m.header.origin = "site-a";
  m.header.route_to = "site-b";
  Message out = RoundTrip(std::move(m));
  EXPECT_EQ(out.header.origin, "site-a");
  EXPECT_EQ(out.header.route_to, "site-b");
  EXPECT_EQ(std::get<Heartbeat>(out.body).approved_studies, std::vector<std::string>{"tox21-demo"});
}

TEST(CodecTest, StudyInfoCarriesSpecStateAndRoundHistory) {
  StudyInfo info;
  info.study.study_id = "s1";
  info.study.sites = {"a", "b"};
  info.study.round_deadline_ms = 30000;
  info.study.batch_size = 64;
  info.study.fingerprint_radius = 2;
  info.state = StudyState::kRunning;
  info.current_round = 3;
  info.model_version = 2;
  info.rounds.push_back({1, RoundState::kClosed, 3, 3, 900, {{"valid_mean_roc_auc", 0.71}}, 5, 9});
  info.rounds.push_back({2, RoundState::kFailed, 3, 1, 0, {}, 10, 12});
  info.detail = "";
  Message out = RoundTrip(WithBody(info));
  const auto& got = std::get<StudyInfo>(out.body);
  EXPECT_EQ(got.study.sites, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(got.study.round_deadline_ms, 30000u);
  EXPECT_EQ(got.study.batch_size, 64u);
  EXPECT_EQ(got.study.fingerprint_radius, 2u);
  EXPECT_EQ(got.state, StudyState::kRunning);
  EXPECT_EQ(got.current_round, 3u);
  ASSERT_EQ(got.rounds.size(), 2u);
  EXPECT_EQ(got.rounds[0].samples, 900u);
  EXPECT_DOUBLE_EQ(got.rounds[0].metrics[0].value, 0.71);
  EXPECT_EQ(got.rounds[1].state, RoundState::kFailed);
  EXPECT_EQ(got.rounds[1].closed_at_ms, 12);
}

TEST(CodecTest, TrainingProtocolBodiesSurvive) {
  auto ready =
      std::get<UpdateReady>(RoundTrip(WithBody(UpdateReady{"s", 4, 3, 812, {{"loss", 0.3}}})).body);
  EXPECT_EQ(ready.round, 4u);
  EXPECT_EQ(ready.base_version, 3u);
  EXPECT_EQ(ready.num_samples, 812u);
  auto grant = std::get<UploadGrant>(RoundTrip(WithBody(UploadGrant{"s", 4})).body);
  EXPECT_EQ(grant.study_id, "s");
  auto eval =
      std::get<EvaluateTask>(RoundTrip(WithBody(EvaluateTask{"s", 4, 5, "valid", 1000})).body);
  EXPECT_EQ(eval.split, "valid");
  EXPECT_EQ(eval.bins, 1000u);
  auto result =
      std::get<EvaluationResult>(RoundTrip(WithBody(EvaluationResult{"s", 4, 5, "test", 77})).body);
  EXPECT_EQ(result.num_samples, 77u);
  EXPECT_TRUE(result.tasks.empty());  // the study's tasks
  auto named = std::get<EvaluationResult>(
      RoundTrip(WithBody(EvaluationResult{"s", 4, 5, "valid", 7, {"FDA_APPROVED", "CT_TOX"}}))
          .body);
  EXPECT_EQ(named.tasks, (std::vector<std::string>{"FDA_APPROVED", "CT_TOX"}));
  auto model = std::get<GetModel>(RoundTrip(WithBody(GetModel{"s", 9})).body);
  EXPECT_EQ(model.version, 9u);
}

// The calibration stages: EvaluateTask.stage and EvaluationResult's stage and
// embedding row count survive, and default to 0 when not set.
TEST(CodecTest, EvaluationStagesSurvive) {
  EXPECT_EQ(
      std::get<EvaluateTask>(RoundTrip(WithBody(EvaluateTask{"s", 4, 5, "valid", 10})).body).stage,
      0u);
  auto task =
      std::get<EvaluateTask>(RoundTrip(WithBody(EvaluateTask{"s", 4, 5, "valid", 10, 1})).body);
  EXPECT_EQ(task.stage, 1u);
  EXPECT_EQ(task.bins, 10u);
  auto plain =
      std::get<EvaluationResult>(RoundTrip(WithBody(EvaluationResult{"s", 4, 5, "valid", 3})).body);
  EXPECT_EQ(plain.stage, 0u);
  EXPECT_EQ(plain.embedding_rows, 0u);
  auto staged = std::get<EvaluationResult>(
      RoundTrip(WithBody(EvaluationResult{"s", 4, 5, "valid", 3, {}, 1, 5000000000ULL})).body);
  EXPECT_EQ(staged.stage, 1u);
  EXPECT_EQ(staged.embedding_rows, 5000000000ULL);
  EXPECT_EQ(staged.num_samples, 3u);
}

TEST(CodecTest, AdministrationBodiesSurvive) {
  InstitutionInfo info{"pharma-a", "Pharma A", "site", "active", std::string(40, 'k'), 11, 22};
  auto enrolled = std::get<InstitutionEnrolled>(
      RoundTrip(WithBody(InstitutionEnrolled{info, std::string(40, 's')})).body);
  EXPECT_EQ(enrolled.institution.id, "pharma-a");
  EXPECT_EQ(enrolled.institution.name, "Pharma A");
  EXPECT_EQ(enrolled.institution.role, "site");
  EXPECT_EQ(enrolled.institution.status, "active");
  EXPECT_EQ(enrolled.institution.public_key, std::string(40, 'k'));
  EXPECT_EQ(enrolled.institution.enrolled_at_ms, 11);
  EXPECT_EQ(enrolled.institution.updated_at_ms, 22);
  EXPECT_EQ(enrolled.secret_key, std::string(40, 's'));

  auto enrol = std::get<EnrolInstitution>(
      RoundTrip(WithBody(EnrolInstitution{"lab-b", "Lab B", "scientist"})).body);
  EXPECT_EQ(enrol.id, "lab-b");
  EXPECT_EQ(enrol.name, "Lab B");
  EXPECT_EQ(enrol.role, "scientist");

  InstitutionList list;
  list.institutions = {info, InstitutionInfo{"x", "X", "admin", "revoked", "", 1, 2}};
  auto got = std::get<InstitutionList>(RoundTrip(WithBody(list)).body);
  ASSERT_EQ(got.institutions.size(), 2u);
  EXPECT_EQ(got.institutions[1].id, "x");
  EXPECT_EQ(got.institutions[1].status, "revoked");

  auto set = std::get<SetInstitutionStatus>(
      RoundTrip(WithBody(SetInstitutionStatus{"x", "suspended"})).body);
  EXPECT_EQ(set.id, "x");
  EXPECT_EQ(set.status, "suspended");

  auto report = std::get<AuditReport>(
      RoundTrip(WithBody(AuditReport{false, 17, "1-0", "ab", "record 1-0 was edited"})).body);
  EXPECT_FALSE(report.intact);
  EXPECT_EQ(report.records, 17u);
  EXPECT_EQ(report.last_id, "1-0");
  EXPECT_EQ(report.last_hash, "ab");
  EXPECT_EQ(report.problem, "record 1-0 was edited");
  EXPECT_TRUE(std::holds_alternative<VerifyAudit>(RoundTrip(WithBody(VerifyAudit{})).body));
  EXPECT_TRUE(
      std::holds_alternative<ListInstitutions>(RoundTrip(WithBody(ListInstitutions{})).body));
}

TEST(CodecTest, BodyNamesAreStable) {
  EXPECT_STREQ(BodyName(Body{RegisterSite{}}), "RegisterSite");
  EXPECT_STREQ(BodyName(Body{ModelVersion{}}), "ModelVersion");
  EXPECT_STREQ(BodyName(Body{GetModel{}}), "GetModel");
  EXPECT_STREQ(BodyName(Body{EnrolInstitution{}}), "EnrolInstitution");
  EXPECT_STREQ(BodyName(Body{AuditReport{}}), "AuditReport");
  EXPECT_STREQ(BodyNameAt(999), "unknown");
}

// ---- Secure aggregation (secagg.fbs) ------------------------------------------

std::vector<std::uint8_t> Bytes(std::size_t n, std::uint8_t first) {
  std::vector<std::uint8_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::uint8_t>(first + i);
  return v;
}

TEST(CodecSecAggTest, StartCarriesTheRoundParameters) {
  SecAggStart start{"s1", 4, 3, 2, {0x0123456789abcdefULL, 1000, 3, 5, 8.0, 22, 4}, 7831};
  const auto got = std::get<SecAggStart>(RoundTrip(WithBody(start)).body);
  EXPECT_EQ(got.study_id, "s1");
  EXPECT_EQ(got.round, 4u);
  EXPECT_EQ(got.base_version, 3u);
  EXPECT_EQ(got.participant, 2u);
  EXPECT_EQ(got.params.round_tag, 0x0123456789abcdefULL);
  EXPECT_EQ(got.params.dimension, 1000u);
  EXPECT_EQ(got.params.threshold, 3u);
  EXPECT_EQ(got.params.max_sites, 5u);
  EXPECT_DOUBLE_EQ(got.params.clip, 8.0);
  EXPECT_EQ(got.params.scale_bits, 22);
  EXPECT_EQ(got.params.neighbours, 4u);
  EXPECT_EQ(got.weight_cap, 7831u);
}

TEST(CodecSecAggTest, KeysAndRosterCarryTheKeysByteForByte) {
  SecAggKeys keys{"s1", 2, {7, Bytes(32, 1), Bytes(32, 100)}};
  const auto k = std::get<SecAggKeys>(RoundTrip(WithBody(keys)).body);
  EXPECT_EQ(k.study_id, "s1");
  EXPECT_EQ(k.round, 2u);
  EXPECT_EQ(k.keys.id, 7u);
  EXPECT_EQ(k.keys.encryption_key, Bytes(32, 1));
  EXPECT_EQ(k.keys.mask_key, Bytes(32, 100));

  SecAggRoster roster{
      "s1", 2, {{1, Bytes(32, 3), Bytes(32, 4)}, {2, Bytes(32, 5), Bytes(32, 6)}}, Bytes(32, 9)};
  const auto r = std::get<SecAggRoster>(RoundTrip(WithBody(roster)).body);
  ASSERT_EQ(r.sites.size(), 2u);
  EXPECT_EQ(r.sites[1].id, 2u);
  EXPECT_EQ(r.sites[1].encryption_key, Bytes(32, 5));
  EXPECT_EQ(r.sites[1].mask_key, Bytes(32, 6));
  EXPECT_EQ(r.graph_seed, Bytes(32, 9));
}

TEST(CodecSecAggTest, SharesAndBundlesKeepEveryCiphertextInOrder) {
  SecAggShares shares{"s1", 5, 3, Bytes(32, 50), {{3, 1, Bytes(104, 0)}, {3, 2, Bytes(104, 7)}}};
  const auto s = std::get<SecAggShares>(RoundTrip(WithBody(shares)).body);
  EXPECT_EQ(s.id, 3u);
  EXPECT_EQ(s.self_seed_commitment, Bytes(32, 50));
  ASSERT_EQ(s.shares.size(), 2u);
  EXPECT_EQ(s.shares[1].from, 3u);
  EXPECT_EQ(s.shares[1].to, 2u);
  EXPECT_EQ(s.shares[1].ciphertext, Bytes(104, 7));

  SecAggBundle bundle{"s1", 5, 2, {{1, 2, Bytes(104, 1)}, {3, 2, Bytes(104, 2)}}};
  const auto b = std::get<SecAggBundle>(RoundTrip(WithBody(bundle)).body);
  EXPECT_EQ(b.to, 2u);
  ASSERT_EQ(b.shares.size(), 2u);
  EXPECT_EQ(b.shares[0].from, 1u);
  EXPECT_EQ(b.shares[1].ciphertext, Bytes(104, 2));
}

TEST(CodecSecAggTest, MaskedInputTravelsAsAUint32FrameBesideItsHeader) {
  std::vector<std::uint32_t> y = {0xffffffffu, 0, 12345, 0x80000000u};
  auto* owner = new std::vector<std::uint32_t>(y);
  Message m = WithBody(SecAggMaskedInput{"s1", 6, 4});
  m.tensors.push_back(
      Tensor{"masked",
             DType::kUInt32,
             {4},
             Blob(owner, reinterpret_cast<const std::byte*>(owner->data()), 16,
                  [](void* p) { delete static_cast<std::vector<std::uint32_t>*>(p); })});
  Message out = RoundTrip(std::move(m));
  const auto& h = std::get<SecAggMaskedInput>(out.body);
  EXPECT_EQ(h.study_id, "s1");
  EXPECT_EQ(h.round, 6u);
  EXPECT_EQ(h.id, 4u);
  ASSERT_EQ(out.tensors.size(), 1u);
  EXPECT_EQ(out.tensors[0].dtype, DType::kUInt32);
  auto words = out.tensors[0].data.As<std::uint32_t>();
  EXPECT_EQ(std::vector<std::uint32_t>(words.begin(), words.end()), y);
}

TEST(CodecSecAggTest, UnmaskRequestAndResponseSurvive) {
  const auto req = std::get<SecAggUnmaskRequest>(
      RoundTrip(WithBody(SecAggUnmaskRequest{"s1", 6, {1, 2, 4}})).body);
  EXPECT_EQ(req.survivors, (std::vector<std::uint32_t>{1, 2, 4}));

  SecAggUnmaskResponse resp{"s1",
                            6,
                            2,
                            {{1, 2, {1, 2, 3, 4, 5}}, {4, 2, {6, 7, 8, 9, (1ull << 60) + 1}}},
                            {{3, 2, {10, 11, 12, 13, 14}}},
                            {3}};
  const auto r = std::get<SecAggUnmaskResponse>(RoundTrip(WithBody(resp)).body);
  EXPECT_EQ(r.id, 2u);
  ASSERT_EQ(r.self_seed_shares.size(), 2u);
  EXPECT_EQ(r.self_seed_shares[1].owner, 4u);
  EXPECT_EQ(r.self_seed_shares[1].holder, 2u);
  EXPECT_EQ(r.self_seed_shares[1].y, (std::vector<std::uint64_t>{6, 7, 8, 9, (1ull << 60) + 1}));
  ASSERT_EQ(r.mask_key_shares.size(), 1u);
  EXPECT_EQ(r.mask_key_shares[0].owner, 3u);
  EXPECT_EQ(r.mask_key_shares[0].y[4], 14u);
  EXPECT_EQ(r.failed_shares, std::vector<std::uint32_t>{3});
  EXPECT_STREQ(BodyName(Body{SecAggUnmaskResponse{}}), "SecAggUnmaskResponse");
  EXPECT_STREQ(BodyName(Body{SecAggStart{}}), "SecAggStart");
}

// ---- Refusals ---------------------------------------------------------------

DecodeError Refused(std::vector<Blob> frames, const Limits& limits = Limits{}) {
  Decoded d = Decode(std::move(frames), limits);
  EXPECT_FALSE(d.ok());
  if (d.ok()) return {};
  EXPECT_FALSE(d.error().message.empty());
  EXPECT_FALSE(d.error().where.empty());
  return d.error();
}

std::vector<Blob> Frames(Blob head) {
  std::vector<Blob> v;
  v.push_back(std::move(head));
  return v;
}

TEST(CodecRefusalTest, OverlongOriginIsRefused) {
  Message m = WithBody(Ack{});
  m.header.origin = std::string(65, 'o');
  DecodeError e = Refused(Encode(std::move(m)));
  EXPECT_EQ(e.fault, DecodeFault::kBadField);
  EXPECT_EQ(e.where, "envelope.origin");
}

TEST(CodecRefusalTest, NoFrames) { EXPECT_EQ(Refused({}).fault, DecodeFault::kNoFrames); }

TEST(CodecRefusalTest, TruncatedEnvelopeFailsVerification) {
  auto frames = Encode(WithBody(RegisterSite{"site-a", "A", 1, {"t"}, "h"}));
  const auto& head = frames[0];
  auto cut = Blob::CopyOf(head.bytes().first(head.size() / 2));
  DecodeError e = Refused(Frames(std::move(cut)));
  EXPECT_EQ(e.fault, DecodeFault::kVerifyFailed);
  EXPECT_EQ(e.where, "frame 0");
}

TEST(CodecRefusalTest, GarbageIsNotAnEnvelope) {
  std::vector<std::byte> junk(64, std::byte{0x5a});
  DecodeError e = Refused(Frames(Blob::FromBytes(std::move(junk))));
  EXPECT_EQ(e.fault, DecodeFault::kNotAnEnvelope);
  EXPECT_EQ(e.where, "frame 0");
}

TEST(CodecRefusalTest, CorruptOffsetsFailVerification) {
  auto frames = Encode(WithBody(Ack{"x"}));
  std::vector<std::byte> bytes(frames[0].bytes().begin(), frames[0].bytes().end());
  // The root offset points far outside the buffer.
  const std::uint32_t bogus = 0x7fff0000;
  std::memcpy(bytes.data(), &bogus, sizeof bogus);
  EXPECT_EQ(Refused(Frames(Blob::FromBytes(std::move(bytes)))).fault, DecodeFault::kVerifyFailed);
}

TEST(CodecRefusalTest, NewerSchemaIsRefusedWithItsMessageId) {
  Message m = WithBody(Ack{}, "from-the-future");
  m.header.schema_version = kSchemaVersion + 1;
  DecodeError e = Refused(Encode(std::move(m)));
  EXPECT_EQ(e.fault, DecodeFault::kNewerSchema);
  EXPECT_EQ(e.where, "envelope.schema_version");
  EXPECT_EQ(e.message_id, "from-the-future");
}

TEST(CodecRefusalTest, UnknownBodyTypeIsRefused) {
  DecodeError e = Refused(Frames(testing::EnvelopeWithBodyType("m-7", 200)));
  EXPECT_EQ(e.fault, DecodeFault::kUnknownBody);
  EXPECT_EQ(e.where, "envelope.body");
  EXPECT_EQ(e.message_id, "m-7");
  EXPECT_NE(e.message.find("200"), std::string::npos);
}

TEST(CodecRefusalTest, MissingBodyIsRefused) {
  DecodeError e = Refused(Frames(testing::EnvelopeWithBodyType("m-8", 0)));
  EXPECT_EQ(e.fault, DecodeFault::kUnknownBody);
}

// Found by tests/fuzz/gateway_intake_fuzz: a body type without its body
// passed the Verifier and was read through a null table (one 48-byte message
// took down any service).
TEST(CodecRefusalTest, BodyTypeWithoutItsBodyIsRefused) {
  for (std::size_t type = 1; type <= kBodyCount; ++type) {
    DecodeError e =
        Refused(Frames(testing::EnvelopeWithBodyTypeOnly("m-9", static_cast<std::uint8_t>(type))));
    EXPECT_EQ(e.fault, DecodeFault::kMissingField) << BodyNameAt(type - 1);
    EXPECT_EQ(e.where, "envelope.body") << BodyNameAt(type - 1);
    EXPECT_EQ(e.message_id, "m-9");
    EXPECT_NE(e.message.find(BodyNameAt(type - 1)), std::string::npos) << e.message;
  }
}

TEST(CodecRefusalTest, EmptyMessageIdIsRefused) {
  DecodeError e = Refused(Encode(WithBody(Ack{}, "")));
  EXPECT_EQ(e.fault, DecodeFault::kMissingField);
  EXPECT_EQ(e.where, "envelope.message_id");
}

TEST(CodecRefusalTest, OverlongMessageIdIsRefused) {
  DecodeError e = Refused(Encode(WithBody(Ack{}, std::string(65, 'x'))));
  EXPECT_EQ(e.fault, DecodeFault::kBadField);
  EXPECT_EQ(e.where, "envelope.message_id");
}

TEST(CodecRefusalTest, OversizedEnvelopeIsRefusedBeforeParsing) {
  Limits limits;
  limits.max_envelope_bytes = 64;
  DecodeError e = Refused(Encode(WithBody(Ack{std::string(200, 'a')})), limits);
  EXPECT_EQ(e.fault, DecodeFault::kOversized);
  EXPECT_EQ(e.where, "frame 0");
}

TEST(CodecRefusalTest, OversizedTensorFrameIsRefused) {
  Limits limits;
  limits.max_tensor_bytes = 1024;
  Message m = WithBody(ModelUpdate{});
  m.tensors.push_back(
      Tensor{"w", DType::kFloat32, {1000}, Blob::FromFloats(std::vector<float>(1000))});
  DecodeError e = Refused(Encode(std::move(m)), limits);
  EXPECT_EQ(e.fault, DecodeFault::kOversized);
  EXPECT_EQ(e.where, "frame 1");
}

TEST(CodecRefusalTest, TooManyFramesAreRefused) {
  Limits limits;
  limits.max_tensors = 2;
  auto frames = Encode(WithBody(Ack{}));
  for (int i = 0; i < 3; ++i) frames.push_back(Blob::CopyOf({}));
  EXPECT_EQ(Refused(std::move(frames), limits).fault, DecodeFault::kOversized);
}

TEST(CodecRefusalTest, MissingTensorFrameIsAMismatch) {
  Message m = WithBody(ModelUpdate{});
  m.tensors.push_back(Tensor{"w", DType::kFloat32, {4}, Blob::FromFloats({1, 2, 3, 4})});
  auto frames = Encode(std::move(m));
  frames.pop_back();
  DecodeError e = Refused(std::move(frames));
  EXPECT_EQ(e.fault, DecodeFault::kTensorMismatch);
  EXPECT_EQ(e.where, "envelope.tensors");
}

TEST(CodecRefusalTest, ShapeThatDisagreesWithFrameSizeIsAMismatch) {
  Message m = WithBody(ModelUpdate{});
  m.tensors.push_back(Tensor{"w", DType::kFloat32, {5}, Blob::FromFloats({1, 2, 3, 4})});
  DecodeError e = Refused(Encode(std::move(m)));
  EXPECT_EQ(e.fault, DecodeFault::kTensorMismatch);
  EXPECT_EQ(e.where, "tensor 0 (w)");
}

TEST(CodecRefusalTest, ReplacedTensorFrameOfOtherSizeIsAMismatch) {
  Message m = WithBody(ModelUpdate{});
  m.tensors.push_back(Tensor{"w", DType::kFloat32, {4}, Blob::FromFloats({1, 2, 3, 4})});
  auto frames = Encode(std::move(m));
  frames[1] = Blob::FromFloats({1, 2, 3});
  EXPECT_EQ(Refused(std::move(frames)).fault, DecodeFault::kTensorMismatch);
}

// Random corruption of a valid envelope: every outcome is either a decoded
// message or a refusal that says what and where; never a crash.
TEST(CodecRefusalTest, RandomByteFlipsAreDecodedOrRefusedCleanly) {
  auto frames = Encode(WithBody(RegisterSite{"site-a", "Hospital A", 5, {"a", "b"}, "h"}));
  const auto original = std::vector<std::byte>(frames[0].bytes().begin(), frames[0].bytes().end());
  std::mt19937 rng(7);
  int refused = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    auto bytes = original;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) bytes[rng() % bytes.size()] = std::byte(rng() & 0xff);
    Decoded d = Decode(Frames(Blob::FromBytes(std::move(bytes))));
    if (!d.ok()) {
      ++refused;
      ASSERT_FALSE(d.error().message.empty());
      ASSERT_FALSE(d.error().where.empty());
    } else {
      ASSERT_LT(d.message().body.index(), kBodyCount);
    }
  }
  EXPECT_GT(refused, 0);
}

TEST(BlobTest, ReleaseRunsExactlyOnceAcrossMoves) {
  static int released = 0;
  released = 0;
  static std::byte storage[16];
  {
    Blob a(storage, storage, sizeof storage, [](void*) { ++released; });
    Blob b = std::move(a);
    Blob c;
    c = std::move(b);
    EXPECT_EQ(c.size(), 16u);
    EXPECT_EQ(a.size(), 0u);
  }
  EXPECT_EQ(released, 1);
}

TEST(BlobTest, ReleasedOwnershipIsNotFreedByTheBlob) {
  static int released = 0;
  released = 0;
  static std::byte storage[8];
  Blob::Released r;
  {
    Blob a(storage, storage, sizeof storage, [](void*) { ++released; });
    r = std::move(a).Release();
  }
  EXPECT_EQ(released, 0);
  r.release(r.owner);
  EXPECT_EQ(released, 1);
}

TEST(BlobTest, AsRefusesMisalignedOrRaggedViews) {
  Blob f = Blob::FromFloats({1, 2, 3});
  EXPECT_EQ(f.As<float>().size(), 3u);
  EXPECT_TRUE(f.As<double>().empty());  // 12 bytes is not a whole number of doubles
}

}  // namespace
}  // namespace fedrx::codec
