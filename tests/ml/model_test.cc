#include "services/ml/model.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "services/ml/synthetic.h"

namespace fedrx::ml {
namespace {

using ::testing::HasSubstr;

NetSpec SmallSpec() {
  NetSpec spec;
  spec.input_dim = 10;
  spec.hidden = {4, 3};
  spec.num_tasks = 2;
  return spec;
}

TEST(ModelLayoutTest, DefaultSpecParameterCountAndTrunkSplit) {
  const NetSpec spec;  // 2048 -> 512 -> 12
  EXPECT_EQ(ParameterCount(spec), 2048u * 512 + 512 + 512 * 12 + 12);
  EXPECT_EQ(ParameterCount(spec), 1055244u);
  EXPECT_EQ(TrunkParameterCount(spec), 2048u * 512 + 512);
}

TEST(ModelLayoutTest, LayersFollowEachOtherWeightsThenBias) {
  const NetSpec spec = SmallSpec();
  const std::vector<LayerLayout> layout = Layout(spec);
  ASSERT_EQ(layout.size(), 3u);
  EXPECT_EQ(layout[0].offset, 0u);
  EXPECT_EQ(layout[0].bias_offset(), 40u);
  EXPECT_EQ(layout[1].offset, 44u);
  EXPECT_EQ(layout[1].in, 4u);
  EXPECT_EQ(layout[1].out, 3u);
  EXPECT_EQ(layout[2].offset, 59u);
  EXPECT_EQ(layout[2].bias_offset(), 65u);
  EXPECT_EQ(ParameterCount(spec), 67u);
  EXPECT_EQ(TrunkParameterCount(spec), 59u);
}

TEST(ModelLayoutTest, LayerViewsAddressTheFlatVector) {
  const NetSpec spec = SmallSpec();
  std::vector<float> params(ParameterCount(spec));
  for (std::size_t i = 0; i < params.size(); ++i) params[i] = static_cast<float>(i);
  const LayerView<float> hidden = Layer(spec, std::span<float>(params), 1);
  EXPECT_EQ(hidden.in, 4u);
  EXPECT_EQ(hidden.out, 3u);
  EXPECT_EQ(hidden.weights.data(), params.data() + 44);
  EXPECT_EQ(hidden.w(2, 1), 44.0f + 2 * 3 + 1);  // row-major [in][out]
  EXPECT_EQ(hidden.bias.size(), 3u);
  EXPECT_EQ(hidden.bias[0], 56.0f);
  const LayerView<const float> head = Layer(spec, std::span<const float>(params), 2);
  EXPECT_EQ(head.weights.size(), 6u);
  EXPECT_EQ(head.bias[1], 66.0f);
  hidden.w(0, 0) = -1.0f;
  EXPECT_EQ(params[44], -1.0f);
}

TEST(ModelInitTest, SameSeedSameValuesDifferentSeedDifferentValues) {
  const NetSpec spec = SmallSpec();
  const std::vector<float> a = InitParameters(spec, 7);
  const std::vector<float> b = InitParameters(spec, 7);
  const std::vector<float> c = InitParameters(spec, 8);
  ASSERT_EQ(a.size(), 67u);
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0);
  std::size_t same = 0;
  for (std::size_t i = 0; i < a.size(); ++i) same += a[i] == c[i];
  EXPECT_LT(same, 3u);
}

TEST(ModelInitTest, ValuesWithinFanInBoundAndSpread) {
  const NetSpec spec;  // 2048 -> 512 -> 12
  const std::vector<float> p = InitParameters(spec, 1);
  const std::vector<LayerLayout> layout = Layout(spec);
  for (const LayerLayout& ly : layout) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(ly.in));
    double sum = 0, sum_sq = 0, max_abs = 0;
    for (std::size_t i = ly.offset; i < ly.end(); ++i) {
      sum += p[i];
      sum_sq += static_cast<double>(p[i]) * p[i];
      max_abs = std::max(max_abs, std::fabs(static_cast<double>(p[i])));
    }
    const double n = static_cast<double>(ly.size());
    EXPECT_LE(max_abs, bound * (1 + 1e-6));
    EXPECT_GT(max_abs, 0.9 * bound);
    EXPECT_NEAR(sum / n, 0.0, 0.1 * bound);
    // Uniform on [-b, b] has variance b^2 / 3.
    EXPECT_NEAR(sum_sq / n, bound * bound / 3, 0.15 * bound * bound / 3);
  }
}

TEST(ModelValidateTest, AcceptsInitialParameters) {
  const NetSpec spec = SmallSpec();
  EXPECT_TRUE(ValidateParameters(spec, InitParameters(spec, 3)).ok());
}

TEST(ModelValidateTest, RejectsWrongSize) {
  const NetSpec spec = SmallSpec();
  std::vector<float> p = InitParameters(spec, 3);
  p.pop_back();
  const core::Status s = ValidateParameters(spec, p);
  EXPECT_EQ(s.code(), core::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("expected 67 parameters, got 66"));
}

TEST(ModelValidateTest, NamesTheIndexOfNaN) {
  const NetSpec spec = SmallSpec();
  std::vector<float> p = InitParameters(spec, 3);
  p[50] = std::numeric_limits<float>::quiet_NaN();  // layer 1: W[2][0]
  const core::Status s = ValidateParameters(spec, p);
  EXPECT_EQ(s.code(), core::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("NaN"));
  EXPECT_THAT(s.where(), HasSubstr("parameters[50]"));
  EXPECT_THAT(s.where(), HasSubstr("layer 1 W[2][0]"));
}

TEST(ModelValidateTest, NamesTheIndexOfInfinity) {
  const NetSpec spec = SmallSpec();
  std::vector<float> p = InitParameters(spec, 3);
  p[66] = -std::numeric_limits<float>::infinity();  // head bias 1
  const core::Status s = ValidateParameters(spec, p);
  EXPECT_EQ(s.code(), core::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("infinite"));
  EXPECT_THAT(s.where(), HasSubstr("parameters[66]"));
  EXPECT_THAT(s.where(), HasSubstr("(head) b[1]"));
}

TEST(ModelValidateTest, RejectsBadSpecs) {
  NetSpec spec = SmallSpec();
  spec.hidden.clear();
  EXPECT_EQ(ValidateSpec(spec).code(), core::StatusCode::kInvalidArgument);
  spec = SmallSpec();
  spec.hidden[1] = 0;
  EXPECT_THAT(ValidateSpec(spec).where(), HasSubstr("hidden[1]"));
  spec = SmallSpec();
  spec.dropout = 1.0f;
  EXPECT_THAT(ValidateSpec(spec).where(), HasSubstr("dropout"));
  spec = SmallSpec();
  spec.dropout = std::numeric_limits<float>::quiet_NaN();
  EXPECT_FALSE(ValidateSpec(spec).ok());
  spec = SmallSpec();
  spec.input_dim = 0;
  EXPECT_FALSE(ValidateSpec(spec).ok());
  spec = SmallSpec();
  spec.input_dim = 1u << 31;
  spec.hidden = {1u << 20};
  EXPECT_THAT(ValidateSpec(spec).message(), HasSubstr("more than"));
  EXPECT_FALSE(ValidateParameters(spec, {}).ok());
}

// A 3 -> 2 -> 1 network small enough to work out by hand.
struct HandNet {
  NetSpec spec;
  std::vector<float> params;
  HandNet() {
    spec.input_dim = 3;
    spec.hidden = {2};
    spec.num_tasks = 1;
    spec.dropout = 0.5f;  // must not matter for Predict
    params = {1, -1, 2, 0, 0, 3,  // W0 [3][2]
              0.5f, -0.5f,        // b0
              1, -2,              // W1 [2][1]
              0.25f};             // b1
  }
};

double Sigmoid(double z) { return 1 / (1 + std::exp(-z)); }

TEST(ModelPredictTest, MatchesHandComputedForwardPass) {
  const HandNet net;
  SparseRows x;
  x.dim = 3;
  const std::uint32_t r0[] = {0, 2};
  const std::uint32_t r1[] = {1};
  x.AddRow(r0);  // h = relu([0.5+1+0, -0.5-1+3]) = [1.5, 1.5]; z = 1.5 - 3 + 0.25
  x.AddRow(r1);  // h = relu([2.5, -0.5]) = [2.5, 0]; z = 2.5 + 0.25
  x.AddRow({});  // h = relu([0.5, -0.5]) = [0.5, 0]; z = 0.75
  const auto probs = Predict(net.spec, net.params, x);
  ASSERT_TRUE(probs.ok()) << probs.status();
  ASSERT_EQ(probs->size(), 3u);
  EXPECT_NEAR((*probs)[0], Sigmoid(-1.25), 1e-6);
  EXPECT_NEAR((*probs)[1], Sigmoid(2.75), 1e-6);
  EXPECT_NEAR((*probs)[2], Sigmoid(0.75), 1e-6);
}

// The trunk embedding comes from the same forward pass: the hand-computed
// hidden activations, and probabilities identical to Predict's.
TEST(ModelPredictTest, EmbeddingIsTheLastHiddenLayerOfTheSamePass) {
  const HandNet net;
  SparseRows x;
  x.dim = 3;
  const std::uint32_t r0[] = {0, 2};
  const std::uint32_t r1[] = {1};
  x.AddRow(r0);
  x.AddRow(r1);
  const auto with = PredictWithEmbedding(net.spec, net.params, x);
  ASSERT_TRUE(with.ok()) << with.status();
  const std::vector<float> expected_embedding = {1.5f, 1.5f, 2.5f, 0.0f};
  EXPECT_EQ(with->embedding, expected_embedding);
  const auto probs = Predict(net.spec, net.params, x);
  ASSERT_TRUE(probs.ok());
  EXPECT_EQ(with->probabilities, *probs);
}

// With two hidden layers and several chunks and threads, the embedding is the
// second hidden layer, the same for any thread count.
TEST(ModelPredictTest, EmbeddingOfADeeperNetDoesNotDependOnThreads) {
  NetSpec spec;
  spec.input_dim = 300;
  spec.hidden = {40, 24};
  spec.num_tasks = 5;
  SyntheticOptions o;
  o.rows = 150;
  o.dim = 300;
  o.bits_per_row = 12;
  o.tasks = 5;
  const Dataset d = MakeSyntheticDataset(o);
  const std::vector<float> params = InitParameters(spec, 5);
  const auto one = PredictWithEmbedding(spec, params, d.x, 1);
  const auto two = PredictWithEmbedding(spec, params, d.x, 2);
  ASSERT_TRUE(one.ok() && two.ok());
  ASSERT_EQ(one->embedding.size(), 150u * 24);
  EXPECT_EQ(one->embedding, two->embedding);
  // The head applied to the embedding gives the probabilities.
  const LayerView<const float> head = Layer(spec, params, 2);
  for (std::size_t r = 0; r < 150; ++r) {
    for (std::size_t t = 0; t < 5; ++t) {
      double z = head.bias[t];
      for (std::size_t i = 0; i < 24; ++i) {
        z += one->embedding[r * 24 + i] * head.weights[i * 5 + t];
      }
      EXPECT_NEAR(one->probabilities[r * 5 + t], Sigmoid(z), 1e-5);
    }
  }
}

TEST(ModelPredictTest, ResultDoesNotDependOnThreadCount) {
  NetSpec spec;
  spec.input_dim = 300;
  spec.hidden = {40, 24};
  spec.num_tasks = 5;
  SyntheticOptions o;
  o.rows = 333;  // not a multiple of the chunk size
  o.dim = 300;
  o.bits_per_row = 12;
  o.tasks = 5;
  const Dataset d = MakeSyntheticDataset(o);
  const std::vector<float> params = InitParameters(spec, 11);
  const auto one = Predict(spec, params, d.x, 1);
  const auto three = Predict(spec, params, d.x, 3);
  ASSERT_TRUE(one.ok() && three.ok());
  ASSERT_EQ(one->size(), 333u * 5);
  EXPECT_EQ(std::memcmp(one->data(), three->data(), one->size() * sizeof(float)), 0);
  for (float p : *one) {
    EXPECT_GT(p, 0.0f);
    EXPECT_LT(p, 1.0f);
  }
}

TEST(ModelPredictTest, RejectsOutOfRangeBitsAndWrongDim) {
  const HandNet net;
  SparseRows x;
  x.dim = 3;
  const std::uint32_t bad[] = {1, 3};
  x.AddRow(bad);
  const auto r = Predict(net.spec, net.params, x);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("bit index 3"));
  SparseRows y;
  y.dim = 4;
  EXPECT_THAT(Predict(net.spec, net.params, y).status().message(), HasSubstr("input dim 4"));
  std::vector<float> nan_params = net.params;
  nan_params[8] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_FALSE(Predict(net.spec, nan_params, SparseRows{3}).ok());
}

TEST(ModelPredictTest, EmptyInputGivesEmptyOutput) {
  const HandNet net;
  SparseRows x;
  x.dim = 3;
  const auto r = Predict(net.spec, net.params, x, 2);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->empty());
}

}  // namespace
}  // namespace fedrx::ml

namespace fedrx::ml {
namespace {

// Private heads: a site's network is the shared trunk plus a head sized by
// its own tasks; its parameters are [trunk][head].
TEST(PrivateHeadTest, TrunkIsThePrefixWhateverTheHeadSize) {
  NetSpec trunk = SmallSpec();
  trunk.num_tasks = 0;  // as a private-heads study describes it
  const NetSpec three = WithHead(trunk, 3);
  const NetSpec two = WithHead(trunk, 2);
  EXPECT_EQ(TrunkParameterCount(three), 59u);
  EXPECT_EQ(TrunkParameterCount(two), 59u);
  EXPECT_EQ(HeadParameterCount(three), 3u * 3 + 3);
  EXPECT_EQ(HeadParameterCount(two), 3u * 2 + 2);
  EXPECT_EQ(ParameterCount(three), 59u + 12);
  EXPECT_EQ(Layout(three).back().offset, TrunkParameterCount(three));  // the head is last
}

TEST(PrivateHeadTest, JoinThenSplitGivesBackTheParts) {
  const NetSpec net = WithHead(SmallSpec(), 3);
  std::vector<float> trunk(59), head(12);
  for (std::size_t i = 0; i < trunk.size(); ++i) trunk[i] = static_cast<float>(i);
  for (std::size_t i = 0; i < head.size(); ++i) head[i] = 1000.0f + static_cast<float>(i);
  auto full = JoinTrunkHead(net, trunk, head);
  ASSERT_TRUE(full.ok()) << full.status();
  ASSERT_EQ(full->size(), 71u);
  EXPECT_EQ((*full)[58], 58.0f);
  EXPECT_EQ((*full)[59], 1000.0f);  // the head's first weight follows the trunk
  EXPECT_EQ(Layer(net, std::span<const float>(*full), 2).bias[2], 1011.0f);
  std::vector<float> t2, h2;
  ASSERT_TRUE(SplitTrunk(net, *full, t2, h2).ok());
  EXPECT_EQ(t2, trunk);
  EXPECT_EQ(h2, head);
}

TEST(PrivateHeadTest, SizesAreChecked) {
  const NetSpec net = WithHead(SmallSpec(), 3);
  std::vector<float> trunk(59), head(12), out1, out2;
  auto short_trunk = JoinTrunkHead(net, std::span<const float>(trunk).first(58), head);
  ASSERT_FALSE(short_trunk.ok());
  EXPECT_THAT(short_trunk.status().message(), HasSubstr("trunk has 58 parameters"));
  auto wrong_head = JoinTrunkHead(net, trunk, std::vector<float>(8));  // a 2-task head
  ASSERT_FALSE(wrong_head.ok());
  EXPECT_THAT(wrong_head.status().message(), HasSubstr("head has 8 parameters"));
  EXPECT_FALSE(SplitTrunk(net, std::vector<float>(70), out1, out2).ok());
}

TEST(PrivateHeadTest, TrunkValidationIgnoresTheHead) {
  NetSpec trunk = SmallSpec();
  trunk.num_tasks = 0;
  EXPECT_FALSE(ValidateSpec(trunk).ok());  // no head: not a whole network
  EXPECT_TRUE(ValidateTrunkSpec(trunk).ok());
  std::vector<float> params(59, 0.5f);
  EXPECT_TRUE(ValidateTrunkParameters(trunk, params).ok());
  EXPECT_FALSE(ValidateTrunkParameters(trunk, std::vector<float>(67, 0.5f)).ok());
  params[45] = std::numeric_limits<float>::quiet_NaN();
  core::Status s = ValidateTrunkParameters(trunk, params);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.where(), HasSubstr("parameters[45] = layer 1 W[0][1]"));
  trunk.hidden = {};
  EXPECT_FALSE(ValidateTrunkSpec(trunk).ok());
}

TEST(PrivateHeadTest, InitHeadIsDeterministicPerSeedAndBoundedByFanIn) {
  const NetSpec net = WithHead(SmallSpec(), 3);
  const std::vector<float> a = InitHead(net, 7);
  ASSERT_EQ(a.size(), 12u);
  EXPECT_EQ(InitHead(net, 7), a);
  EXPECT_NE(InitHead(net, 8), a);
  const float bound = 1.0f / std::sqrt(3.0f);  // fan-in hidden.back() = 3
  for (float v : a) EXPECT_LE(std::fabs(v), bound);
}

}  // namespace
}  // namespace fedrx::ml
