// The study report: a federated study's rounds rendered as JSON and one
// self-contained HTML page: metric curves per round (validation ROC-AUC and
// PR-AUC, per task), participating sites and dropouts per round, the
// aggregation strategy and the privacy budget spent. The input is a plain
// view of the coordinator's study records (the report service fills it from
// coordinator::StudyStore). Pure (no I/O); thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "messages/codec/message.h"
#include "services/report/rendered.h"

namespace fedrx::report {

struct StudyRoundView {
  std::uint32_t round = 0;
  std::string state;  // "pending", "training", "aggregating", "evaluating", "closed", "failed"
  std::uint32_t base_version = 0;
  std::vector<std::string> selected;     // sites asked to train
  std::vector<std::string> contributed;  // sites whose update was aggregated
  std::uint64_t samples = 0;
  std::int64_t started_ms = 0;
  std::int64_t closed_ms = 0;
  // The round's metrics as the coordinator stored them: valid_mean_roc_auc,
  // valid_mean_pr_auc, valid_roc_auc:<task>, valid_samples,
  // privacy_epsilon, statistic_* ...
  std::map<std::string, double> metrics;
  std::vector<std::string> secagg_detections;
};

struct StudyView {
  codec::StudySpec spec;
  std::string state;  // "created", "running", "completed", "failed"
  std::uint32_t current_round = 0;
  std::uint32_t model_version = 0;
  std::string detail;
  std::vector<StudyRoundView> rounds;  // ascending round numbers
};

// Names of the codec states, as StudyView and StudyRoundView hold them.
std::string StudyStateName(codec::StudyState state);
std::string RoundStateName(codec::RoundState state);

// Sites selected for a round that did not contribute to it (a round still
// under way has none yet).
std::vector<std::string> Dropouts(const StudyRoundView& round);

// The JSON is {kind: "study", report_version: 1, generated_ms, title,
// summary, study: {...spec and state}, rounds: [...], charts: {...}}.
RenderedReport RenderStudyReport(const StudyView& study, std::int64_t generated_ms);

}  // namespace fedrx::report
