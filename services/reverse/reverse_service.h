// The reverse-translation service's logic (fedrx-reverse): the association
// counts the sites summed through the federation, read from the registry as
// the latest version of a pair_counts statistics study (coordinator/
// study_runner.h), and the answer to ReverseTranslate: organ classes from the
// table with their SEND endpoints and, where the counts have pairs for them,
// ranked assay associations; associations of requested clinical labels;
// where the counts came from; and the working. CountsReader is not
// thread-safe (its StateStore belongs to one thread); CountsCache and
// AnswerReverseTranslate are thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "messages/codec/message.h"
#include "services/core/metrics.h"
#include "services/core/state_store.h"
#include "services/core/status.h"
#include "services/reverse/association.h"

namespace fedrx::reverse {

// One stored version of the counts study, analysed.
struct FederatedCounts {
  std::string study;
  std::uint32_t version = 0;
  std::vector<std::string> clinical;     // the study's statistic_rows
  std::vector<std::string> preclinical;  // the study's tasks
  std::vector<PairKey> pairs;            // AllPairs(clinical, preclinical)
  std::vector<PairCounts> counts;        // summed across sites, one per pair
  // Analyze(pairs, counts): q-values over every pair with sufficient evidence.
  std::vector<Association> associations;
  std::uint32_t sites = 0;      // sites whose counts are in the sum
  std::uint64_t compounds = 0;  // compounds they declared counting
  bool secure = false;          // summed by secure aggregation
};

// A stored version's float32 blob as counts: `spec` must be a pair_counts
// study (kFailedPrecondition otherwise, naming the study), the blob 4 words per
// pair, each a non-negative integer below 2^24 (kDataLoss otherwise, naming
// the word). Runs Analyze.
core::Result<FederatedCounts> CountsFromVersion(const codec::StudySpec& spec, std::uint32_t version,
                                                std::span<const float> blob);

// Reads the latest counts of one study through coordinator::StudyStore.
class CountsReader {
 public:
  // `store` is not owned and must outlive the reader.
  CountsReader(core::StateStore& store, std::string study)
      : store_(store), study_(std::move(study)) {}
  const std::string& study() const { return study_; }
  // The latest version's counts; nullptr when the study does not exist yet
  // or has no counts yet (version 0). Errors: the store's (kUnavailable, ...)
  // and CountsFromVersion's. Blocks on the store.
  core::Result<std::shared_ptr<const FederatedCounts>> Read();

 private:
  core::StateStore& store_;
  std::string study_;
};

// What an answer is computed from: the counts, or none and why.
struct CountsSnapshot {
  std::shared_ptr<const FederatedCounts> counts;
  std::string study;    // the configured counts study ("" when none is configured)
  std::string missing;  // when counts is null: why, for the answer's working
};

// The latest counts, shared by the request threads: Refresh() reads through
// the reader (fedrx-reverse calls it every reverse.counts_refresh on the
// runner's thread, RequestService::Every, so the reader's StateStore has one
// thread) and publishes the snapshot; a failed read keeps the previous one
// (counted in fedrx_reverse_errors_total{component="counts"}). Current()
// never touches the store. Sets fedrx_reverse_counts_version. Thread-safe.
class CountsCache {
 public:
  // `reader` null: no counts study configured (every snapshot says so).
  CountsCache(std::unique_ptr<CountsReader> reader, core::Metrics& metrics);
  // Reads now and publishes; returns the read's error. Blocks on the store;
  // reads are serialised.
  core::Status Refresh();
  // The latest published snapshot.
  CountsSnapshot Current() const;

 private:
  std::unique_ptr<CountsReader> reader_;
  core::Metrics& metrics_;
  std::mutex read_mu_;  // one read at a time
  mutable std::mutex mu_;
  CountsSnapshot snapshot_;  // guarded by mu_
};

// Answers a ReverseTranslate from the organ-class table and `counts`.
// InvalidArgument naming the entry: an unknown organ class
// ("ReverseTranslate.organ_classes[i]") or term (".adverse_events[i]"), a
// clinical label the counts do not hold (".clinical_labels[i]"; only checked
// when there are counts), an empty signal (no organ class, adverse event nor
// clinical label), fdr outside (0, 1] or not a number (".fdr"). Counts
// fedrx_reverse_signals_total{kind="organ_class"|"adverse_event"|
// "clinical_label"} when `metrics` is given.
core::Result<codec::ReverseTranslation> AnswerReverseTranslate(
    const codec::ReverseTranslate& request, const CountsSnapshot& counts,
    core::Metrics* metrics = nullptr);

}  // namespace fedrx::reverse
