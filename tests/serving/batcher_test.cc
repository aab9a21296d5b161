// Batcher: concurrent single-structure callers each get their own answer,
// equal to an unbatched prediction, and full batches run without waiting.
#include "services/serving/batcher.h"

#include <chrono>
#include <cmath>
#include <thread>

#include <gtest/gtest.h>

#include "tests/serving/serving_test_util.h"

namespace fedrx::serving {
namespace {

using core::testing::FakeStateStore;
using testing::TinySpec;
using testing::Weights;

const std::vector<std::string> kPool = {
    "CCO",      "c1ccccc1O",   "CC(=O)Oc1ccccc1C(=O)O", "CCN(CC)CC", "c1ccncc1",
    "OC(=O)CC", "ClC(Cl)Cl",   "CC(C)Cc1ccc(cc1)C(C)C(=O)O", "C1CCCCC1", "not-a-smiles((",
    "",         "NCCc1ccccc1", "O=C1NC(=O)c2ccccc12",  "CS(C)=O",  "c1ccc2ccccc2c1"};

struct Fixture {
  FakeStateStore store;
  ModelRegistry registry{store};
  core::Metrics metrics{"test"};
  std::unique_ptr<ModelServer> server;

  Fixture() {
    const codec::StudySpec spec = TinySpec();
    EXPECT_TRUE(coordinator::StudyStore(store).Create(spec, Weights(spec, 3), 0).ok());
    ServingOptions options;
    options.studies = {"tox"};
    server = ModelServer::Create(options, registry, metrics).value();
    EXPECT_TRUE(server->Refresh().ok());
  }
};

// Many threads submitting different structures each get the answer an
// unbatched Predict gives for their own structure (or its own error).
TEST(BatcherTest, ConcurrentCallersGetTheirOwnAnswers) {
  Fixture f;
  core::Result<PredictionBatch> reference = f.server->Predict("tox", kPool);
  ASSERT_TRUE(reference.ok());
  BatcherOptions options;
  options.window = std::chrono::microseconds(2000);
  options.max_batch = 8;
  Batcher batcher(*f.server, options, &f.metrics);
  constexpr int kThreads = 6, kPerThread = 25;
  std::vector<int> mismatches(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int k = 0; k < kPerThread; ++k) {
        const std::size_t i = static_cast<std::size_t>(t * 7 + k) % kPool.size();
        core::Result<SinglePrediction> r = batcher.Predict("tox", kPool[i]);
        const StructurePrediction& want = reference->results[i];
        bool same = r.ok() && r->version == 0 && r->result.status.code() == want.status.code() &&
                    r->result.canonical_smiles == want.canonical_smiles &&
                    r->result.probabilities.size() == want.probabilities.size();
        // Eigen may pick another product kernel for another batch size, so
        // the last bits can differ; the values agree to float precision.
        for (std::size_t j = 0; same && j < want.probabilities.size(); ++j) {
          same = std::fabs(r->result.probabilities[j] - want.probabilities[j]) <= 1e-6;
        }
        if (same && !want.status.ok()) same = r->result.status.where() == "smiles";
        if (!same) ++mismatches[t];
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(mismatches[t], 0) << "thread " << t;
  EXPECT_EQ(f.metrics.Read("fedrx_test_batched_requests_total"), kThreads * kPerThread);
  EXPECT_LE(batcher.batches_run(), static_cast<std::uint64_t>(kThreads * kPerThread));
  EXPECT_GE(batcher.batches_run(), static_cast<std::uint64_t>(kThreads * kPerThread / 8));
}

// With a window far longer than the test, batches run only when full: eight
// callers make exactly two batches of four.
TEST(BatcherTest, FullBatchRunsWithoutWaitingForTheWindow) {
  Fixture f;
  BatcherOptions options;
  options.window = std::chrono::minutes(10);
  options.max_batch = 4;
  Batcher batcher(*f.server, options);
  std::vector<std::future<core::Result<SinglePrediction>>> futures;
  for (int i = 0; i < 8; ++i) futures.push_back(batcher.Submit("tox", kPool[i]));
  for (int i = 0; i < 8; ++i) {
    core::Result<SinglePrediction> r = futures[i].get();
    ASSERT_TRUE(r.ok());
    EXPECT_TRUE(r->result.status.ok());
    EXPECT_EQ(r->result.probabilities.size(), 3u);
  }
  EXPECT_EQ(batcher.batches_run(), 2u);
}

// A request for a study the server does not serve fails alone; requests
// queued at shutdown are answered kUnavailable, never left hanging.
TEST(BatcherTest, UnknownStudyAndShutdownAreErrors) {
  Fixture f;
  std::future<core::Result<SinglePrediction>> pending;
  {
    BatcherOptions options;
    options.window = std::chrono::microseconds(0);
    Batcher batcher(*f.server, options);
    core::Result<SinglePrediction> r = batcher.Predict("other", "CCO");
    EXPECT_EQ(r.status().code(), core::StatusCode::kNotFound);
    EXPECT_TRUE(batcher.Predict("tox", "CCO").ok());
  }
  {
    BatcherOptions options;
    options.window = std::chrono::minutes(10);
    options.max_batch = 64;
    auto batcher = std::make_unique<Batcher>(*f.server, options);
    pending = batcher->Submit("tox", "CCO");
    batcher.reset();
  }
  EXPECT_EQ(pending.get().status().code(), core::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace fedrx::serving
