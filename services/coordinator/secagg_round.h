// SecAggUnmasking: runs a secure-aggregation round's unmasking
// (SecAggServer::Finish: CPU-bound, about 2 s for 100 sites and 1M
// parameters) on a worker thread, so that the coordinator's thread keeps
// answering while it runs. The server is handed over to the worker and only
// the worker touches it. Owned and polled by one thread (the StudyRunner's);
// the destructor waits for a running worker. The StudyRunner's
// secure-aggregation stages are in secagg_round.cc.
#pragma once

#include <functional>
#include <future>
#include <vector>

#include "services/core/status.h"
#include "services/privacy/secagg_server.h"

namespace fedrx::coordinator {

class SecAggUnmasking {
 public:
  struct Outcome {
    // SecAggServer::Finish's result.
    core::Result<privacy::SecAggResult> result = core::Internal("the round was not unmasked");
    // Everything the server detected in the round, fatal or not.
    std::vector<privacy::SecAggDetection> detections;
    // How long Finish took on the worker.
    double seconds = 0;
  };

  SecAggUnmasking() = default;
  SecAggUnmasking(const SecAggUnmasking&) = delete;
  SecAggUnmasking& operator=(const SecAggUnmasking&) = delete;
  // Waits for a running worker.
  ~SecAggUnmasking() { Wait(); }

  // Starts unmasking `server` (at its kUnmasking stage) on a new thread and
  // returns at once. `before`, when set, runs first on that thread (tests
  // hold the worker there to look at the runner meanwhile). Not while
  // pending(). kResourceExhausted when no thread can be started (the server
  // is gone then: the round fails). An allocation failure in Finish is the
  // outcome's kResourceExhausted.
  [[nodiscard]] core::Status Start(privacy::SecAggServer server, std::function<void()> before = {});
  // Started and not yet taken.
  bool pending() const { return worker_.valid(); }
  // pending() and finished: Take() will not block.
  bool ready() const;
  // Blocks until a pending worker has finished; returns at once otherwise.
  void Wait() const;
  // The worker's outcome, blocking until it is there; then no longer
  // pending(). Only while pending().
  Outcome Take();

 private:
  std::future<Outcome> worker_;
};

}  // namespace fedrx::coordinator
