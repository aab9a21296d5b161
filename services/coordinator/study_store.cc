#include "services/coordinator/study_store.h"

#include <charconv>
#include <cstring>
#include <limits>

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
// Fields of a model version's calibration hash.
constexpr char kCalFormat[] = "format";
constexpr char kCalVersion[] = "version";
constexpr char kCalSamples[] = "samples";
constexpr char kCalTasks[] = "tasks";            // task names, one per line
constexpr char kCalBins[] = "bins";              // score histogram bins per class
constexpr char kCalHistograms[] = "histograms";  // uint64 [tasks, 2 (neg, pos), bins]
constexpr char kCalDims[] = "embedding_dims";
constexpr char kCalRows[] = "embedding_rows";
constexpr char kCalMoments[] = "embedding_moments";  // float64 [2 (sum, sum_squares), dims]
constexpr char kCalDomainBins[] = "domain_bins";
constexpr char kCalDomain[] = "domain_histogram";  // uint64 [domain_bins]
constexpr char kCalFormatVersion[] = "1";

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
  frames.push_back(
      codec::Blob::CopyOf({reinterpret_cast<const std::byte*>(bytes.data()), bytes.size()}));
  codec::Decoded d = codec::Decode(std::move(frames));
  if (!d.ok() || !std::holds_alternative<codec::CreateStudy>(d.message().body)) {
    return core::Status(
        core::StatusCode::kDataLoss,
        "stored study spec is unreadable" + (d.ok() ? std::string() : ": " + d.error().message),
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

template <typename T>
void AppendBytes(std::string& out, std::span<const T> values) {
  out.append(reinterpret_cast<const char*>(values.data()), values.size_bytes());
}

template <typename T>
std::vector<T> FromBytes(std::string_view bytes) {
  std::vector<T> out(bytes.size() / sizeof(T));
  std::memcpy(out.data(), bytes.data(), out.size() * sizeof(T));
  return out;
}

// Lines of `s` ("a\nb" -> {a, b}; "" -> {}; an empty line stays, for the
// checks to find).
std::vector<std::string> SplitLines(const std::string& s) {
  std::vector<std::string> out;
  if (s.empty()) return out;
  std::size_t start = 0;
  while (true) {
    const std::size_t nl = s.find('\n', start);
    if (nl == std::string::npos) {
      out.push_back(s.substr(start));
      return out;
    }
    out.push_back(s.substr(start, nl - start));
    start = nl + 1;
  }
}

// Strict unsigned parse of a stored count: digits only, no overflow.
template <typename T>
std::optional<T> ParseCount(const core::FieldMap& f, const char* name) {
  auto it = f.find(name);
  if (it == f.end() || it->second.empty()) return std::nullopt;
  T v{};
  const char* end = it->second.data() + it->second.size();
  auto [ptr, ec] = std::from_chars(it->second.data(), end, v);
  if (ec != std::errc() || ptr != end) return std::nullopt;
  return v;
}

// Whether a calibration hangs together; InvalidArgument naming the field.
core::Status CheckCalibration(const VersionCalibration& c) {
  const std::string where = "VersionCalibration";
  if (c.tasks.empty()) return core::InvalidArgument("no tasks", where + ".tasks");
  for (std::size_t t = 0; t < c.tasks.size(); ++t) {
    if (c.tasks[t].empty() || c.tasks[t].find('\n') != std::string::npos) {
      return core::InvalidArgument("task names are non-empty and hold no newline",
                                   where + ".tasks[" + std::to_string(t) + "]");
    }
  }
  if (c.histograms.size() != c.tasks.size()) {
    return core::InvalidArgument(std::to_string(c.histograms.size()) + " histograms for " +
                                     std::to_string(c.tasks.size()) + " tasks",
                                 where + ".histograms");
  }
  const std::size_t bins = c.histograms[0].neg.size();
  if (bins == 0 || bins > ml::kMaxHistogramBins) {
    return core::InvalidArgument(
        "histograms have 1.." + std::to_string(ml::kMaxHistogramBins) + " bins",
        where + ".histograms[0].neg");
  }
  for (std::size_t t = 0; t < c.histograms.size(); ++t) {
    const ml::ScoreHistogram& h = c.histograms[t];
    const std::string at = where + ".histograms[" + std::to_string(t) + "]";
    if (h.neg.size() != bins || h.pos.size() != bins) {
      return core::InvalidArgument(
          "every histogram has " + std::to_string(bins) + " bins per class", at);
    }
    // Each validation row is counted at most once per task (when labelled).
    std::uint64_t counted = 0;
    for (std::size_t b = 0; b < bins; ++b) {
      for (std::uint64_t n : {h.neg[b], h.pos[b]}) {
        if (n > c.samples - counted) {
          return core::InvalidArgument(
              "counts more rows than the " + std::to_string(c.samples) + " samples", at);
        }
        counted += n;
      }
    }
  }
  FEDRX_RETURN_IF_ERROR(ml::ValidateMoments(c.embedding, where + ".embedding"));
  if (c.embedding.rows > 0 && c.embedding.sum.empty()) {
    return core::InvalidArgument("moments of rows have dimensions", where + ".embedding.sum");
  }
  if (c.domain_histogram.size() > ml::kMaxHistogramBins) {
    return core::InvalidArgument("at most " + std::to_string(ml::kMaxHistogramBins) + " bins",
                                 where + ".domain_histogram");
  }
  std::uint64_t counted = 0;
  for (std::uint64_t n : c.domain_histogram) {
    if (n > c.samples - counted) {
      return core::InvalidArgument(
          "counts more rows than the " + std::to_string(c.samples) + " samples",
          where + ".domain_histogram");
    }
    counted += n;
  }
  return core::Status::Ok();
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

core::Status StudyStore::CheckWrite(const std::string& study_id) const {
  return write_guard_ ? write_guard_(study_id) : core::Status::Ok();
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
  FEDRX_RETURN_IF_ERROR(CheckWrite(study_id));
  FEDRX_ASSIGN_OR_RETURN(core::Key key, core::keys::Study(study_id));
  return store_.HashSet(key, {{kState, std::to_string(static_cast<int>(state))},
                              {kCurrentRound, std::to_string(current_round)},
                              {kDetail, detail}});
}

core::Status StudyStore::SaveRound(const std::string& study_id, const RoundRecord& round) {
  FEDRX_RETURN_IF_ERROR(CheckWrite(study_id));
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
  FEDRX_RETURN_IF_ERROR(CheckWrite(study_id));
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
  FEDRX_RETURN_IF_ERROR(CheckWrite(study_id));
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
    FEDRX_ASSIGN_OR_RETURN(core::Key base_meta,
                           core::keys::ModelMeta(study_id, round.base_version));
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
    return core::NotFound(
        "study '" + study_id + "' has no model version " + std::to_string(version), key.str());
  }
  if (bytes->size() % sizeof(float) != 0) {
    return core::Status(core::StatusCode::kDataLoss, "stored model has a ragged size", key.str());
  }
  std::vector<float> w(bytes->size() / sizeof(float));
  std::memcpy(w.data(), bytes->data(), bytes->size());
  return w;
}

core::Result<std::optional<std::string>> StudyStore::LoadOptimizerState(const std::string& study_id,
                                                                        std::uint32_t version) {
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

core::Status StudyStore::SaveCalibration(const std::string& study_id, const VersionCalibration& c) {
  FEDRX_RETURN_IF_ERROR(CheckWrite(study_id));
  FEDRX_ASSIGN_OR_RETURN(core::Key key, core::keys::ModelCalibration(study_id, c.version));
  FEDRX_RETURN_IF_ERROR(CheckCalibration(c));
  const std::size_t bins = c.histograms[0].neg.size();
  std::string tasks;
  for (std::size_t t = 0; t < c.tasks.size(); ++t) {
    if (t > 0) tasks += '\n';
    tasks += c.tasks[t];
  }
  std::string histograms;
  histograms.reserve(c.tasks.size() * 2 * bins * sizeof(std::uint64_t));
  for (const ml::ScoreHistogram& h : c.histograms) {
    AppendBytes<std::uint64_t>(histograms, h.neg);
    AppendBytes<std::uint64_t>(histograms, h.pos);
  }
  std::string moments;
  AppendBytes<double>(moments, c.embedding.sum);
  AppendBytes<double>(moments, c.embedding.sum_squares);
  std::string domain;
  AppendBytes<std::uint64_t>(domain, c.domain_histogram);
  // One HSET: every field of the version's calibration replaced at once.
  return store_.HashSet(key, {{kCalFormat, kCalFormatVersion},
                              {kCalVersion, std::to_string(c.version)},
                              {kCalSamples, std::to_string(c.samples)},
                              {kCalTasks, std::move(tasks)},
                              {kCalBins, std::to_string(bins)},
                              {kCalHistograms, std::move(histograms)},
                              {kCalDims, std::to_string(c.embedding.sum.size())},
                              {kCalRows, std::to_string(c.embedding.rows)},
                              {kCalMoments, std::move(moments)},
                              {kCalDomainBins, std::to_string(c.domain_histogram.size())},
                              {kCalDomain, std::move(domain)}});
}

core::Result<std::optional<VersionCalibration>> StudyStore::LoadCalibration(
    const std::string& study_id, std::uint32_t version) {
  FEDRX_ASSIGN_OR_RETURN(core::Key key, core::keys::ModelCalibration(study_id, version));
  FEDRX_ASSIGN_OR_RETURN(core::FieldMap f, store_.HashGetAll(key));
  if (f.empty()) return std::optional<VersionCalibration>();
  const auto corrupt = [&](const std::string& what) {
    return core::Status(core::StatusCode::kDataLoss, "stored calibration is corrupt: " + what,
                        key.str());
  };
  if (Str(f, kCalFormat) != kCalFormatVersion) {
    return corrupt("unknown format '" + Str(f, kCalFormat) + "'");
  }
  const auto stored_version = ParseCount<std::uint32_t>(f, kCalVersion);
  const auto samples = ParseCount<std::uint64_t>(f, kCalSamples);
  const auto bins = ParseCount<std::uint64_t>(f, kCalBins);
  const auto dims = ParseCount<std::uint64_t>(f, kCalDims);
  const auto rows = ParseCount<std::uint64_t>(f, kCalRows);
  const auto domain_bins = ParseCount<std::uint64_t>(f, kCalDomainBins);
  if (!stored_version || !samples || !bins || !dims || !rows || !domain_bins) {
    return corrupt("a count is missing or not a number");
  }
  if (*stored_version != version) {
    return corrupt("it names version " + std::to_string(*stored_version));
  }
  // Bound the counts before multiplying them into sizes.
  if (*bins == 0 || *bins > ml::kMaxHistogramBins || *domain_bins > ml::kMaxHistogramBins ||
      *dims > (std::size_t{1} << 24)) {
    return corrupt("bins or dimensions out of range");
  }
  VersionCalibration c;
  c.version = version;
  c.samples = *samples;
  c.tasks = SplitLines(Str(f, kCalTasks));
  if (c.tasks.empty() || c.tasks.size() > 4096) return corrupt("1..4096 tasks expected");
  const std::string histograms = Str(f, kCalHistograms);
  if (histograms.size() != c.tasks.size() * 2 * *bins * sizeof(std::uint64_t)) {
    return corrupt("histograms hold " + std::to_string(histograms.size()) + " bytes, not " +
                   std::to_string(c.tasks.size()) + " x 2 x " + std::to_string(*bins) + " counts");
  }
  const std::vector<std::uint64_t> counts = FromBytes<std::uint64_t>(histograms);
  for (std::size_t t = 0; t < c.tasks.size(); ++t) {
    const auto* neg = counts.data() + (t * 2) * *bins;
    const auto* pos = neg + *bins;
    ml::ScoreHistogram h;
    h.neg.assign(neg, neg + *bins);
    h.pos.assign(pos, pos + *bins);
    c.histograms.push_back(std::move(h));
  }
  const std::string moments = Str(f, kCalMoments);
  if (moments.size() != 2 * *dims * sizeof(double)) {
    return corrupt("embedding moments hold " + std::to_string(moments.size()) + " bytes, not 2 x " +
                   std::to_string(*dims) + " values");
  }
  std::vector<double> both = FromBytes<double>(moments);
  c.embedding.rows = *rows;
  c.embedding.sum.assign(both.begin(), both.begin() + static_cast<std::ptrdiff_t>(*dims));
  c.embedding.sum_squares.assign(both.begin() + static_cast<std::ptrdiff_t>(*dims), both.end());
  const std::string domain = Str(f, kCalDomain);
  if (domain.size() != *domain_bins * sizeof(std::uint64_t)) {
    return corrupt("domain histogram holds " + std::to_string(domain.size()) + " bytes, not " +
                   std::to_string(*domain_bins) + " counts");
  }
  c.domain_histogram = FromBytes<std::uint64_t>(domain);
  if (core::Status s = CheckCalibration(c); !s.ok()) {
    return corrupt(s.message() + " (" + s.where() + ")");
  }
  return std::optional<VersionCalibration>(std::move(c));
}

}  // namespace fedrx::coordinator
