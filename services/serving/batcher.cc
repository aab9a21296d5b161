#include "services/serving/batcher.h"

#include <algorithm>
#include <map>
#include <utility>
#include <vector>

namespace fedrx::serving {

Batcher::Batcher(const ModelServer& server, BatcherOptions options, core::Metrics* metrics)
    : server_(server), options_([&] {
        // A batch the server would refuse whole is never formed.
        options.max_batch =
            std::clamp<std::size_t>(options.max_batch, 1, server.options().max_batch);
        if (options.window.count() < 0) options.window = std::chrono::microseconds(0);
        return options;
      }()) {
  if (metrics != nullptr) {
    batches_metric_ = metrics->Counter("batches_total", "Batched forward passes run");
    requests_metric_ =
        metrics->Counter("batched_requests_total", "Single-structure requests batched");
  }
  worker_ = std::thread([this] { Run(); });
}

Batcher::~Batcher() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  worker_.join();
  for (Pending& p : queue_) {
    p.promise.set_value(core::Unavailable("the batcher is shutting down", "Batcher"));
  }
}

std::future<core::Result<SinglePrediction>> Batcher::Submit(std::string study,
                                                           std::string smiles) {
  Pending p{std::move(study), std::move(smiles), {}};
  std::future<core::Result<SinglePrediction>> f = p.promise.get_future();
  {
    std::lock_guard lock(mu_);
    if (stopping_) {
      p.promise.set_value(core::Unavailable("the batcher is shutting down", "Batcher"));
      return f;
    }
    queue_.push_back(std::move(p));
  }
  // The worker waits either for a first request or for a full batch.
  cv_.notify_one();
  return f;
}

core::Result<SinglePrediction> Batcher::Predict(std::string study, std::string smiles) {
  return Submit(std::move(study), std::move(smiles)).get();
}

std::uint64_t Batcher::batches_run() const {
  std::lock_guard lock(mu_);
  return batches_run_;
}

void Batcher::Run() {
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (stopping_) return;
    // The window opens when the worker sees the first request of a batch.
    const auto deadline = std::chrono::steady_clock::now() + options_.window;
    cv_.wait_until(lock, deadline,
                   [this] { return stopping_ || queue_.size() >= options_.max_batch; });
    if (stopping_) return;
    std::deque<Pending> batch;
    const std::size_t take = std::min(queue_.size(), options_.max_batch);
    for (std::size_t i = 0; i < take; ++i) {
      batch.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    ++batches_run_;
    lock.unlock();
    RunBatch(batch);
    lock.lock();
  }
}

void Batcher::RunBatch(std::deque<Pending>& batch) {
  // One Predict per study, rows in arrival order.
  std::map<std::string, std::vector<Pending*>> by_study;
  for (Pending& p : batch) by_study[p.study].push_back(&p);
  for (auto& [study, group] : by_study) {
    std::vector<std::string> smiles;
    smiles.reserve(group.size());
    for (const Pending* p : group) smiles.push_back(p->smiles);
    batches_metric_.Inc();
    requests_metric_.Inc(static_cast<double>(group.size()));
    core::Result<PredictionBatch> out = server_.Predict(study, smiles, options_.predict);
    for (std::size_t i = 0; i < group.size(); ++i) {
      if (!out.ok()) {
        group[i]->promise.set_value(out.status());
        continue;
      }
      SinglePrediction single;
      single.model = out->model;
      single.version = out->version;
      single.result = std::move(out->results[i]);
      // The caller sent one structure: its position in our batch means nothing to it.
      if (!single.result.status.ok()) {
        single.result.status =
            core::Status(single.result.status.code(), single.result.status.message(), "smiles");
      }
      group[i]->promise.set_value(std::move(single));
    }
  }
}

}  // namespace fedrx::serving
