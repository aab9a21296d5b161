// Batcher: groups single-structure requests that arrive within a short
// window into one ModelServer::Predict per study, so concurrent callers share
// a forward pass. Thread-safe: Predict may be called from any number of
// threads; one worker thread (owned) runs the batches.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "services/core/metrics.h"
#include "services/core/status.h"
#include "services/serving/model_server.h"

namespace fedrx::serving {

struct BatcherOptions {
  // How long the first request of a batch waits for others.
  std::chrono::microseconds window{2000};
  // A batch runs as soon as it holds this many requests (1..4096).
  std::size_t max_batch = 64;
  PredictOptions predict;
};

// One structure's answer with the snapshot that produced it.
struct SinglePrediction {
  std::shared_ptr<const ServedModel> model;
  std::uint32_t version = 0;
  // result.status: this structure's own error, its `where` "smiles".
  StructurePrediction result;
};

class Batcher {
 public:
  // `server` is not owned and must outlive the batcher. `metrics` (optional,
  // not owned) gets batches_total and batched_requests_total.
  Batcher(const ModelServer& server, BatcherOptions options, core::Metrics* metrics = nullptr);
  // Answers requests still queued with kUnavailable, then joins the worker.
  ~Batcher();
  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;

  // Queues one structure; the future is fulfilled once its batch ran. A
  // batch-level failure (unknown study, no model) is the Result's error; a
  // bad structure is an OK Result whose result.status says why. Never blocks
  // on the model.
  std::future<core::Result<SinglePrediction>> Submit(std::string study, std::string smiles);
  // Submit(...).get(): blocks until answered.
  core::Result<SinglePrediction> Predict(std::string study, std::string smiles);

  // Batches formed so far (each runs one ModelServer::Predict per study in it).
  std::uint64_t batches_run() const;

 private:
  struct Pending {
    std::string study;
    std::string smiles;
    std::promise<core::Result<SinglePrediction>> promise;
  };
  void Run();
  void RunBatch(std::deque<Pending>& batch);

  const ModelServer& server_;
  const BatcherOptions options_;
  core::CounterRef batches_metric_;
  core::CounterRef requests_metric_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Pending> queue_;
  bool stopping_ = false;
  std::uint64_t batches_run_ = 0;
  std::thread worker_;
};

}  // namespace fedrx::serving
