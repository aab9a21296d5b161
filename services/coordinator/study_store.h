// StudyStore: studies, their rounds and model versions in the StateStore.
// Everything the coordinator needs to resume a study after a restart is
// written here before it is acknowledged. Not thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "messages/codec/message.h"
#include "services/core/clock.h"
#include "services/core/state_store.h"
#include "services/core/status.h"
#include "services/ml/domain.h"
#include "services/ml/metrics.h"

namespace fedrx::coordinator {

struct StudyRecord {
  codec::StudySpec spec;
  codec::StudyState state = codec::StudyState::kCreated;
  // The round under way (or the last one, once the study ended); rounds count from 1.
  std::uint32_t current_round = 0;
  // The latest model version; version 0 is the initial model.
  std::uint32_t model_version = 0;
  std::string detail;
};

struct RoundRecord {
  std::uint32_t round = 0;
  codec::RoundState state = codec::RoundState::kPending;
  std::uint32_t base_version = 0;
  std::vector<std::string> selected;
  std::vector<std::string> contributed;
  std::uint64_t samples = 0;
  std::int64_t started_at_ms = 0;
  std::int64_t closed_at_ms = 0;
  std::int64_t deadline_ms = 0;
  // Secure aggregation: evidence the SecAggServer collected, one entry per
  // detection, "<kind>:<site>" (kinds: share_failed_authentication,
  // inconsistent_shares, wrong_reconstruction).
  std::vector<std::string> secagg_detections;
};

// What serving needs to calibrate a model version: conformal statistics (the
// validation rows' score histograms) and the applicability domain (the
// training rows' embedding moments, the validation rows' domain scores). Only
// sums over sites; nothing of one site alone.
struct VersionCalibration {
  std::uint32_t version = 0;
  std::uint64_t samples = 0;                   // validation rows behind the histograms
  std::vector<std::string> tasks;              // the study's tasks, in order
  std::vector<ml::ScoreHistogram> histograms;  // per task; neg/pos bins over [0,1]
  ml::EmbeddingMoments embedding;              // training rows' embedding moments (summed)
  // Validation rows' DomainScore, bins over [0,1); empty when stage 1 got no answer.
  std::vector<std::uint64_t> domain_histogram;
};

class StudyStore {
 public:
  explicit StudyStore(core::StateStore& store) : store_(store) {}

  // Fencing: when set, every write for an existing study (SaveState,
  // SaveRound, SaveRoundMetrics, CommitRound, SaveCalibration) first asks
  // `guard(study_id)` and, unless it is OK, writes nothing and returns its
  // error. The coordinator checks there that it still holds the study's lease.
  void SetWriteGuard(std::function<core::Status(const std::string& study_id)> guard) {
    write_guard_ = std::move(guard);
  }

  // Stores a new study (state Running, round 1 pending) with its initial
  // model as version 0, all at once. kAlreadyExists if the id is taken.
  core::Status Create(const codec::StudySpec& spec, std::span<const float> initial_model,
                      std::int64_t now_ms);
  core::Result<std::vector<std::string>> ListIds();
  core::Result<StudyRecord> Load(const std::string& study_id);
  core::Status SaveState(const std::string& study_id, codec::StudyState state,
                         std::uint32_t current_round, const std::string& detail);

  core::Status SaveRound(const std::string& study_id, const RoundRecord& round);
  core::Result<std::optional<RoundRecord>> LoadRound(const std::string& study_id,
                                                     std::uint32_t round);
  core::Result<std::map<std::string, double>> LoadRoundMetrics(const std::string& study_id,
                                                               std::uint32_t round);
  core::Status SaveRoundMetrics(const std::string& study_id, std::uint32_t round,
                                const std::map<std::string, double>& metrics);

  // Atomically: stores `weights` as version round.base_version + 1, closes
  // `round`, and moves the study to `next_round` (or Completed when
  // `completed`). A non-empty `optimizer_state` (the server optimiser's
  // moments after this round, ServerOptimizer::SerializeState) is kept with
  // the new version, and the base version's copy is dropped, so one copy
  // exists and it always matches the latest model.
  core::Status CommitRound(const std::string& study_id, const RoundRecord& round,
                           std::span<const float> weights, std::uint32_t next_round, bool completed,
                           std::int64_t now_ms, std::string_view optimizer_state = {});
  // The server optimiser state stored with a model version; nullopt when
  // there is none (version 0, a stateless optimiser, or an older coordinator).
  core::Result<std::optional<std::string>> LoadOptimizerState(const std::string& study_id,
                                                              std::uint32_t version);
  core::Result<std::vector<float>> LoadModel(const std::string& study_id, std::uint32_t version);
  // The round that produced a model version (0 for the initial model).
  core::Result<std::uint32_t> ModelRound(const std::string& study_id, std::uint32_t version);

  // Stores (replaces) the calibration of model version c.version in one
  // write: a hash at keys::ModelCalibration with the counts and names as
  // text and the histograms and moments as little-endian binary blobs.
  // InvalidArgument (naming the field) when it is inconsistent: no tasks, a
  // task name with a newline, histograms not one per task with the same
  // 1..kMaxHistogramBins bins, more rows counted than `samples`, invalid
  // moments (ml::ValidateMoments).
  core::Status SaveCalibration(const std::string& study_id, const VersionCalibration& c);
  // The calibration stored for a model version; nullopt when there is none.
  // kDataLoss naming the key when what is stored is inconsistent (the same
  // checks as SaveCalibration, and blob sizes against the counts).
  core::Result<std::optional<VersionCalibration>> LoadCalibration(const std::string& study_id,
                                                                  std::uint32_t version);

 private:
  core::Status CheckWrite(const std::string& study_id) const;

  core::StateStore& store_;
  std::function<core::Status(const std::string&)> write_guard_;
};

}  // namespace fedrx::coordinator
