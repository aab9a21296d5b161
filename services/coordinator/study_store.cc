#include "services/coordinator/study_store.h"

#include <charconv>
#include <cstring>

#include "messages/codec/codec.h"

namespace fedrx::coordinator {
namespace {

// Field names of a study's and a round's hash.
constexpr char kSpec[] = "spec";
constexpr char kState[] = "state";
constexpr char kCurrentRound[] = "current_round";
constexpr char kModelVersion[] = "model_version";
constexpr char kDetail[] = "detail";
constexpr char kRoundState[] = "state";
constexpr char kBaseVersion[] = "base_version";
constexpr char kSelected[] = "selected";
constexpr char kContributed[] = "contributed";
constexpr char kSamples[] = "samples";
constexpr char kStartedAt[] = "started_at_ms";
constexpr char kClosedAt[] = "closed_at_ms";
constexpr char kDeadline[] = "deadline_ms";
constexpr char kSecAggDetections[] = "secagg_detections";
constexpr char kParameters[] = "parameters";
constexpr char kRound[] = "round";
constexpr char kCreatedAt[] = "created_at_ms";
constexpr char kOptimizerState[] = "server_optimizer_state";

// The spec is kept in its wire form (a verified envelope), so the schema's
// append-only evolution also covers what is stored.
std::string EncodeSpec(const codec::StudySpec& spec) {
  codec::Message m;
  m.header.message_id = "stored-spec";
  m.body = codec::CreateStudy{spec};
  std::vector<codec::Blob> frames = codec::Encode(std::move(m));
  return std::string(reinterpret_cast<const char*>(frames[0].data()), frames[0].size());
}

core::Result<codec::StudySpec> DecodeSpec(const std::string& bytes, const std::string& where) {
  std::vector<codec::Blob> frames;
  frames.push_back(codec::Blob::CopyOf(
      {reinterpret_cast<const std::byte*>(bytes.data()), bytes.size()}));
  codec::Decoded d = codec::Decode(std::move(frames));
  if (!d.ok() || !std::holds_alternative<codec::CreateStudy>(d.message().body)) {
    return core::Status(core::StatusCode::kDataLoss,
                        "stored study spec is unreadable" +
                            (d.ok() ? std::string() : ": " + d.error().message),
                        where);
  }
  return std::get<codec::CreateStudy>(d.message().body).study;
}

std::string Join(const std::vector<std::string>& ids) {
  std::string out;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) out += ',';
    out += ids[i];
  }
  return out;
}

std::vector<std::string> Split(const std::string& s) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < s.size()) {
    std::size_t comma = s.find(',', start);
    if (comma == std::string::npos) comma = s.size();
    out.push_back(s.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

template <typename T>
T Num(const core::FieldMap& f, const char* name) {
  auto it = f.find(name);
  T v{};
  if (it != f.end()) std::from_chars(it->second.data(), it->second.data() + it->second.size(), v);
  return v;
}

std::string Str(const core::FieldMap& f, const char* name) {
  auto it = f.find(name);
  return it == f.end() ? std::string() : it->second;
}

core::FieldMap RoundFields(const RoundRecord& r) {
  return {{kRound, std::to_string(r.round)},
          {kRoundState, std::to_string(static_cast<int>(r.state))},
          {kBaseVersion, std::to_string(r.base_version)},
          {kSelected, Join(r.selected)},
          {kContributed, Join(r.contributed)},
          {kSamples, std::to_string(r.samples)},
          {kStartedAt, std::to_string(r.started_at_ms)},
          {kClosedAt, std::to_string(r.closed_at_ms)},
          {kDeadline, std::to_string(r.deadline_ms)},
          {kSecAggDetections, Join(r.secagg_detections)}};
}

// The weights as bytes, borrowed (no copy) for the batch that stores them.
std::string_view WeightsBytes(std::span<const float> w) {
  return {reinterpret_cast<const char*>(w.data()), w.size_bytes()};
}

}  // namespace

core::Status StudyStore::Create(const codec::StudySpec& spec, std::span<const float> initial_model,
                                std::int64_t now_ms) {
  FEDRX_ASSIGN_OR_RETURN(core::Key key, core::keys::Study(spec.study_id));
  FEDRX_ASSIGN_OR_RETURN(core::Key weights, core::keys::ModelWeights(spec.study_id, 0));
  FEDRX_ASSIGN_OR_RETURN(core::Key meta, core::keys::ModelMeta(spec.study_id, 0));
  FEDRX_ASSIGN_OR_RETURN(std::optional<std::string> existing, store_.HashGet(key, kState));
  if (existing.has_value()) {
    return core::Status(core::StatusCode::kAlreadyExists,
                        "study '" + spec.study_id + "' already exists", "StudySpec.study_id");
  }
  core::WriteBatch batch;
  batch.SetBorrowed(weights, WeightsBytes(initial_model));
  batch.HashSet(key, {{kSpec, EncodeSpec(spec)},
                      {kState, std::to_string(static_cast<int>(codec::StudyState::kRunning))},
                      {kCurrentRound, "1"},
                      {kModelVersion, "0"},
                      {kDetail, ""}});
  batch.HashSet(meta, {{kParameters, std::to_string(initial_model.size())},
                       {kRound, "0"},
                       {kCreatedAt, std::to_string(now_ms)}});
  batch.SetAdd(core::keys::StudyIndex(), spec.study_id);
  FEDRX_ASSIGN_OR_RETURN(core::Key sites, core::keys::StudySites(spec.study_id));
  for (const auto& site : spec.sites) batch.SetAdd(sites, site);
  return store_.Apply(batch);
}

core::Result<std::vector<std::string>> StudyStore::ListIds() {
  return store_.SetMembers(core::keys::StudyIndex());
}

core::Result<StudyRecord> StudyStore::Load(const std::string& study_id) {
  FEDRX_ASSIGN_OR_RETURN(core::Key key, core::keys::Study(study_id));
  FEDRX_ASSIGN_OR_RETURN(core::FieldMap f, store_.HashGetAll(key));
  if (f.empty()) return core::NotFound("no study '" + study_id + "'", "study_id");
  StudyRecord r;
  FEDRX_ASSIGN_OR_RETURN(r.spec, DecodeSpec(Str(f, kSpec), key.str()));
  r.state = static_cast<codec::StudyState>(Num<int>(f, kState));
  r.current_round = Num<std::uint32_t>(f, kCurrentRound);
  r.model_version = Num<std::uint32_t>(f, kModelVersion);
  r.detail = Str(f, kDetail);
  return r;
}

core::Status StudyStore::SaveState(const std::string& study_id, codec::StudyState state,
                                   std::uint32_t current_round, const std::string& detail) {
  FEDRX_ASSIGN_OR_RETURN(core::Key key, core::keys::Study(study_id));
  return store_.HashSet(key, {{kState, std::to_string(static_cast<int>(state))},
                              {kCurrentRound, std::to_string(current_round)},
                              {kDetail, detail}});
}

core::Status StudyStore::SaveRound(const std::string& study_id, const RoundRecord& round) {
  FEDRX_ASSIGN_OR_RETURN(core::Key key, core::keys::Round(study_id, round.round));
  return store_.HashSet(key, RoundFields(round));
}

core::Result<std::optional<RoundRecord>> StudyStore::LoadRound(const std::string& study_id,
                                                               std::uint32_t round) {
  FEDRX_ASSIGN_OR_RETURN(core::Key key, core::keys::Round(study_id, round));
  FEDRX_ASSIGN_OR_RETURN(core::FieldMap f, store_.HashGetAll(key));
  if (f.empty()) return std::optional<RoundRecord>();
  RoundRecord r;
  r.round = round;
  r.state = static_cast<codec::RoundState>(Num<int>(f, kRoundState));
  r.base_version = Num<std::uint32_t>(f, kBaseVersion);
  r.selected = Split(Str(f, kSelected));
  r.contributed = Split(Str(f, kContributed));
  r.samples = Num<std::uint64_t>(f, kSamples);
  r.started_at_ms = Num<std::int64_t>(f, kStartedAt);
  r.closed_at_ms = Num<std::int64_t>(f, kClosedAt);
  r.deadline_ms = Num<std::int64_t>(f, kDeadline);
  r.secagg_detections = Split(Str(f, kSecAggDetections));
  return std::optional<RoundRecord>(std::move(r));
}

core::Result<std::map<std::string, double>> StudyStore::LoadRoundMetrics(
    const std::string& study_id, std::uint32_t round) {
  FEDRX_ASSIGN_OR_RETURN(core::Key key, core::keys::RoundMetrics(study_id, round));
  FEDRX_ASSIGN_OR_RETURN(core::FieldMap f, store_.HashGetAll(key));
  std::map<std::string, double> out;
  for (const auto& [name, value] : f) out[name] = std::strtod(value.c_str(), nullptr);
  return out;
}

core::Status StudyStore::SaveRoundMetrics(const std::string& study_id, std::uint32_t round,
                                          const std::map<std::string, double>& metrics) {
  if (metrics.empty()) return core::Status::Ok();
  FEDRX_ASSIGN_OR_RETURN(core::Key key, core::keys::RoundMetrics(study_id, round));
  core::FieldMap f;
  for (const auto& [name, value] : metrics) {
    char buf[32];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
    f[name] = std::string(buf, end);
  }
  return store_.HashSet(key, f);
}

core::Status StudyStore::CommitRound(const std::string& study_id, const RoundRecord& round,
                                     std::span<const float> weights, std::uint32_t next_round,
                                     bool completed, std::int64_t now_ms,
                                     std::string_view optimizer_state) {
  const std::uint32_t version = round.base_version + 1;
  FEDRX_ASSIGN_OR_RETURN(core::Key study, core::keys::Study(study_id));
  FEDRX_ASSIGN_OR_RETURN(core::Key round_key, core::keys::Round(study_id, round.round));
  FEDRX_ASSIGN_OR_RETURN(core::Key model, core::keys::ModelWeights(study_id, version));
  FEDRX_ASSIGN_OR_RETURN(core::Key meta, core::keys::ModelMeta(study_id, version));
  core::WriteBatch batch;
  batch.SetBorrowed(model, WeightsBytes(weights));
  core::FieldMap meta_fields = {{kParameters, std::to_string(weights.size())},
                                {kRound, std::to_string(round.round)},
                                {kCreatedAt, std::to_string(now_ms)}};
  if (!optimizer_state.empty()) {
    meta_fields[kOptimizerState] = std::string(optimizer_state);
    FEDRX_ASSIGN_OR_RETURN(core::Key base_meta, core::keys::ModelMeta(study_id, round.base_version));
    batch.HashSet(base_meta, {{kOptimizerState, ""}});
  }
  batch.HashSet(meta, meta_fields);
  batch.HashSet(round_key, RoundFields(round));
  const auto state = completed ? codec::StudyState::kCompleted : codec::StudyState::kRunning;
  batch.HashSet(study, {{kState, std::to_string(static_cast<int>(state))},
                        {kCurrentRound, std::to_string(next_round)},
                        {kModelVersion, std::to_string(version)}});
  return store_.Apply(batch);
}

core::Result<std::vector<float>> StudyStore::LoadModel(const std::string& study_id,
                                                       std::uint32_t version) {
  FEDRX_ASSIGN_OR_RETURN(core::Key key, core::keys::ModelWeights(study_id, version));
  FEDRX_ASSIGN_OR_RETURN(std::optional<std::string> bytes, store_.Get(key));
  if (!bytes.has_value()) {
    return core::NotFound("study '" + study_id + "' has no model version " + std::to_string(version),
                          key.str());
  }
  if (bytes->size() % sizeof(float) != 0) {
    return core::Status(core::StatusCode::kDataLoss, "stored model has a ragged size", key.str());
  }
  std::vector<float> w(bytes->size() / sizeof(float));
  std::memcpy(w.data(), bytes->data(), bytes->size());
  return w;
}

core::Result<std::optional<std::string>> StudyStore::LoadOptimizerState(
    const std::string& study_id, std::uint32_t version) {
  FEDRX_ASSIGN_OR_RETURN(core::Key key, core::keys::ModelMeta(study_id, version));
  FEDRX_ASSIGN_OR_RETURN(std::optional<std::string> state, store_.HashGet(key, kOptimizerState));
  if (state.has_value() && state->empty()) state.reset();
  return state;
}

core::Result<std::uint32_t> StudyStore::ModelRound(const std::string& study_id,
                                                  std::uint32_t version) {
  FEDRX_ASSIGN_OR_RETURN(core::Key key, core::keys::ModelMeta(study_id, version));
  FEDRX_ASSIGN_OR_RETURN(core::FieldMap f, store_.HashGetAll(key));
  return Num<std::uint32_t>(f, kRound);
}

}  // namespace fedrx::coordinator
