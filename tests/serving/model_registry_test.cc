// ModelRegistry reads what the coordinator's StudyStore wrote, and refuses a
// missing or malformed record with an error naming its key.
#include "services/serving/model_registry.h"

#include <cmath>
#include <cstring>
#include <limits>

#include <gtest/gtest.h>

#include "services/core/keys.h"
#include "tests/serving/serving_test_util.h"

namespace fedrx::serving {
namespace {

using core::testing::FakeStateStore;
using testing::TinySpec;
using testing::Weights;

std::string Bytes(const std::vector<float>& w) {
  std::string s(w.size() * sizeof(float), '\0');
  std::memcpy(s.data(), w.data(), s.size());
  return s;
}

// The latest version, spec and weights are what the coordinator stored.
TEST(ModelRegistryTest, ReadsLatestVersionSpecAndWeights) {
  FakeStateStore store;
  const codec::StudySpec spec = TinySpec();
  coordinator::StudyStore studies(store);
  ASSERT_TRUE(studies.Create(spec, Weights(spec, 1), 0).ok());
  ModelRegistry registry(store);

  core::Result<StoredModel> v0 = registry.LoadLatest("tox");
  ASSERT_TRUE(v0.ok()) << v0.status();
  EXPECT_EQ(v0->version, 0u);
  EXPECT_EQ(v0->spec.tasks, spec.tasks);
  EXPECT_EQ(v0->net.hidden, spec.model.hidden);
  EXPECT_EQ(v0->weights, Weights(spec, 1));

  testing::Publish(store, "tox", 0, Weights(spec, 2));
  core::Result<StoredModel> v1 = registry.LoadLatest("tox");
  ASSERT_TRUE(v1.ok()) << v1.status();
  EXPECT_EQ(v1->version, 1u);
  EXPECT_EQ(v1->weights, Weights(spec, 2));
  core::Result<ModelRegistry::Head> head = registry.Latest("tox");
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->version, 1u);
}

// An unknown study is kNotFound naming the study's key.
TEST(ModelRegistryTest, MissingStudyNamesItsKey) {
  FakeStateStore store;
  ModelRegistry registry(store);
  core::Result<StoredModel> r = registry.LoadLatest("nope");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), core::StatusCode::kNotFound);
  EXPECT_EQ(r.status().where(), core::keys::Study("nope").value().str());
}

// A study whose weights blob is gone is kNotFound naming the weights key.
TEST(ModelRegistryTest, MissingWeightsNameTheirKey) {
  FakeStateStore store;
  const codec::StudySpec spec = TinySpec();
  ASSERT_TRUE(coordinator::StudyStore(store).Create(spec, Weights(spec, 1), 0).ok());
  const core::Key key = core::keys::ModelWeights("tox", 0).value();
  ASSERT_TRUE(store.Delete(key).ok());
  core::Result<StoredModel> r = ModelRegistry(store).LoadLatest("tox");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), core::StatusCode::kNotFound);
  EXPECT_EQ(r.status().where(), key.str());
}

// Blobs that disagree with the architecture (ragged, one float short, one
// too many, a NaN) are kDataLoss naming the key, never a crash.
TEST(ModelRegistryTest, CorruptWeightsAreDataLossNamingTheKey) {
  const codec::StudySpec spec = TinySpec();
  const std::vector<float> good = Weights(spec, 1);
  const core::Key key = core::keys::ModelWeights("tox", 0).value();
  std::vector<float> nan = good;
  nan[5] = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> longer = good;
  longer.push_back(0.5f);
  const std::vector<std::string> blobs = {
      Bytes(good).substr(0, 10), Bytes(std::vector<float>(good.begin(), good.end() - 1)),
      Bytes(longer), Bytes(nan), std::string()};
  for (std::size_t i = 0; i < blobs.size(); ++i) {
    FakeStateStore store;
    ASSERT_TRUE(coordinator::StudyStore(store).Create(spec, good, 0).ok());
    ASSERT_TRUE(store.Set(key, blobs[i]).ok());
    core::Result<StoredModel> r = ModelRegistry(store).LoadLatest("tox");
    ASSERT_FALSE(r.ok()) << "blob " << i;
    EXPECT_EQ(r.status().code(), core::StatusCode::kDataLoss) << "blob " << i << r.status();
    EXPECT_EQ(r.status().where(), key.str()) << "blob " << i;
  }
}

// An unreadable stored spec is kDataLoss naming the study key.
TEST(ModelRegistryTest, UnreadableSpecIsDataLoss) {
  FakeStateStore store;
  const codec::StudySpec spec = TinySpec();
  ASSERT_TRUE(coordinator::StudyStore(store).Create(spec, Weights(spec, 1), 0).ok());
  const core::Key key = core::keys::Study("tox").value();
  ASSERT_TRUE(store.HashSet(key, {{"spec", "garbage"}}).ok());
  core::Result<ModelRegistry::Head> r = ModelRegistry(store).Latest("tox");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), core::StatusCode::kDataLoss);
  EXPECT_EQ(r.status().where(), key.str());
}

// A private-heads study has no head on the platform: refused, not served as garbage.
TEST(ModelRegistryTest, PrivateHeadsStudyIsRefused) {
  FakeStateStore store;
  codec::StudySpec spec = TinySpec();
  spec.private_heads = true;
  spec.model.num_tasks = 0;
  spec.tasks.clear();
  ml::NetSpec trunk = ml::NetSpecFromStudy(spec);
  std::vector<float> w(ml::TrunkParameterCount(trunk), 0.01f);
  ASSERT_TRUE(coordinator::StudyStore(store).Create(spec, w, 0).ok());
  core::Result<StoredModel> r = ModelRegistry(store).LoadLatest("tox");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), core::StatusCode::kFailedPrecondition);
}

// A store that does not answer is kUnavailable, passed through.
TEST(ModelRegistryTest, StoreDownIsUnavailable) {
  FakeStateStore store;
  store.SetDown(true);
  core::Result<StoredModel> r = ModelRegistry(store).LoadLatest("tox");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), core::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace fedrx::serving
