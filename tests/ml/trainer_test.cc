#include "services/ml/trainer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "services/ml/metrics.h"
#include "services/ml/model.h"
#include "services/ml/synthetic.h"

namespace fedrx::ml {
namespace {

using ::testing::HasSubstr;

bool BitIdentical(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// A straightforward double-precision forward pass, written independently of
// the trainer: the masked mean BCE over `d`, and every hidden unit's ReLU
// state (to detect finite differences that straddle a kink).
double ReferenceLoss(const NetSpec& spec, const std::vector<double>& p, const Dataset& d,
                     std::vector<bool>* active) {
  const std::vector<LayerLayout> layout = Layout(spec);
  double loss = 0;
  std::size_t labelled = 0;
  for (std::size_t r = 0; r < d.size(); ++r) {
    const LayerLayout& l0 = layout[0];
    std::vector<double> h(l0.out);
    for (std::size_t c = 0; c < l0.out; ++c) h[c] = p[l0.bias_offset() + c];
    for (std::uint32_t j : d.x.row(r)) {
      for (std::size_t c = 0; c < l0.out; ++c) h[c] += p[l0.offset + j * l0.out + c];
    }
    for (std::size_t l = 1; l < layout.size(); ++l) {
      for (double& v : h) {
        active->push_back(v > 0);
        v = std::max(v, 0.0);
      }
      const LayerLayout& ly = layout[l];
      std::vector<double> z(ly.out);
      for (std::size_t c = 0; c < ly.out; ++c) {
        z[c] = p[ly.bias_offset() + c];
        for (std::size_t i = 0; i < ly.in; ++i) z[c] += h[i] * p[ly.offset + i * ly.out + c];
      }
      h = z;
    }
    for (std::size_t t = 0; t < spec.num_tasks; ++t) {
      const std::int8_t y = d.label(r, t);
      if (y == kMissing) continue;
      const double prob = 1 / (1 + std::exp(-h[t]));
      loss -= y == 1 ? std::log(prob) : std::log(1 - prob);
      ++labelled;
    }
  }
  return loss / static_cast<double>(labelled);
}

SyntheticOptions SmallData(std::uint32_t dim, std::uint32_t tasks, std::size_t rows) {
  SyntheticOptions o;
  o.rows = rows;
  o.dim = dim;
  o.bits_per_row = 6;
  o.tasks = tasks;
  o.missing_fraction = 0.2;
  o.positive_fraction = 0.4;
  return o;
}

TEST(LossAndGradientTest, MatchesFiniteDifferencesOfReferenceLoss) {
  NetSpec spec;
  spec.input_dim = 40;
  spec.hidden = {16, 8};
  spec.num_tasks = 3;
  spec.dropout = 0;
  const Dataset d = MakeSyntheticDataset(SmallData(40, 3, 50));
  const std::vector<float> params = InitParameters(spec, 5);
  std::vector<float> grad;
  const auto loss = LossAndGradient(spec, params, d, grad);
  ASSERT_TRUE(loss.ok()) << loss.status();
  ASSERT_EQ(grad.size(), params.size());

  std::vector<double> p(params.begin(), params.end());
  std::vector<bool> active;
  const double ref = ReferenceLoss(spec, p, d, &active);
  EXPECT_NEAR(*loss, ref, 1e-5 * ref);

  constexpr double kStep = 1e-4;
  std::size_t compared = 0, nonzero = 0;
  for (std::size_t i = 0; i < p.size(); ++i) {
    std::vector<double> q = p;
    std::vector<bool> act_plus, act_minus;
    q[i] = p[i] + kStep;
    const double plus = ReferenceLoss(spec, q, d, &act_plus);
    q[i] = p[i] - kStep;
    const double minus = ReferenceLoss(spec, q, d, &act_minus);
    if (act_plus != active || act_minus != active) continue;  // straddles a ReLU kink
    const double numeric = (plus - minus) / (2 * kStep);
    const double analytic = grad[i];
    EXPECT_NEAR(analytic, numeric, 1e-3 * std::max(std::fabs(numeric), std::fabs(analytic)) + 1e-6)
        << "parameter " << i;
    ++compared;
    nonzero += std::fabs(numeric) > 1e-4;
  }
  EXPECT_GT(compared, p.size() * 9 / 10);
  EXPECT_GT(nonzero, p.size() / 4);  // the check is not vacuous
}

TEST(LossAndGradientTest, MissingLabelsContributeNoLossAndNoGradient) {
  NetSpec spec;
  spec.input_dim = 40;
  spec.hidden = {16};
  spec.num_tasks = 3;
  spec.dropout = 0;
  Dataset d = MakeSyntheticDataset(SmallData(40, 3, 60));
  for (std::size_t r = 0; r < d.size(); ++r) d.y[r * 3 + 1] = kMissing;  // task 1 unmeasured
  std::vector<float> params = InitParameters(spec, 9);
  std::vector<float> grad;
  const auto loss = LossAndGradient(spec, params, d, grad);
  ASSERT_TRUE(loss.ok());

  const LayerLayout head = Layout(spec).back();
  for (std::size_t i = 0; i < head.in; ++i) EXPECT_EQ(grad[head.offset + i * 3 + 1], 0.0f);
  EXPECT_EQ(grad[head.bias_offset() + 1], 0.0f);

  // Whatever task 1's head outputs, nothing else changes.
  for (std::size_t i = 0; i < head.in; ++i) params[head.offset + i * 3 + 1] = 5.0f;
  params[head.bias_offset() + 1] = -7.0f;
  std::vector<float> grad2;
  const auto loss2 = LossAndGradient(spec, params, d, grad2);
  ASSERT_TRUE(loss2.ok());
  EXPECT_EQ(*loss, *loss2);
  EXPECT_EQ(grad, grad2);  // == on floats: +0 and -0 may differ in the head's column 1
}

TEST(LossAndGradientTest, SameForAnyThreadCount) {
  NetSpec spec;
  spec.input_dim = 200;
  spec.hidden = {48, 32};
  spec.num_tasks = 4;
  const Dataset d = MakeSyntheticDataset(SmallData(200, 4, 700));
  const std::vector<float> params = InitParameters(spec, 2);
  std::vector<float> g1, g2;
  const auto l1 = LossAndGradient(spec, params, d, g1, 1);
  const auto l2 = LossAndGradient(spec, params, d, g2, 2);
  ASSERT_TRUE(l1.ok() && l2.ok());
  EXPECT_EQ(*l1, *l2);
  EXPECT_TRUE(BitIdentical(g1, g2));
}

SyntheticOptions SeparableProblem(std::uint64_t sample_seed, std::size_t rows) {
  SyntheticOptions o;
  o.rows = rows;
  o.dim = 256;
  o.bits_per_row = 16;
  o.tasks = 3;
  o.missing_fraction = 0.1;
  o.positive_fraction = 0.3;
  o.model_seed = 42;
  o.sample_seed = sample_seed;
  return o;
}

TEST(TrainerTest, LearnsSeparableMultiTaskProblem) {
  NetSpec spec;
  spec.input_dim = 256;
  spec.hidden = {64};
  spec.num_tasks = 3;
  spec.dropout = 0.1f;
  const Dataset train = MakeSyntheticDataset(SeparableProblem(1, 3000));
  const Dataset test = MakeSyntheticDataset(SeparableProblem(2, 1000));
  std::vector<float> params = InitParameters(spec, 1);

  TrainOptions options;
  options.epochs = 10;
  options.batch_size = 32;
  options.learning_rate = 3e-3f;
  options.seed = 17;
  Trainer trainer(options);
  const auto stats = trainer.Train(spec, train, params);
  ASSERT_TRUE(stats.ok()) << stats.status();
  ASSERT_EQ(stats->epoch_loss.size(), 10u);
  EXPECT_EQ(stats->samples_seen, 30000u);
  EXPECT_LT(stats->epoch_loss.back(), 0.5 * stats->epoch_loss.front());
  EXPECT_GE(stats->seconds, 0.0);

  const auto probs = Predict(spec, params, test.x, 2);
  ASSERT_TRUE(probs.ok());
  const auto metrics = Evaluate(test, *probs);
  ASSERT_TRUE(metrics.ok());
  for (const TaskMetrics& m : *metrics) {
    EXPECT_GT(m.roc_auc, 0.95) << m.task;
    EXPECT_GT(m.positives, 150u);
  }
}

NetSpec ThreadSpec() {
  NetSpec spec;
  spec.input_dim = 512;
  spec.hidden = {96, 40};
  spec.num_tasks = 5;
  spec.dropout = 0.25f;
  return spec;
}

std::vector<float> TrainWith(int threads, std::uint64_t seed, const Dataset& d,
                             std::vector<double>* losses = nullptr) {
  const NetSpec spec = ThreadSpec();
  std::vector<float> params = InitParameters(spec, 3);
  TrainOptions options;
  options.epochs = 2;
  options.batch_size = 40;  // shards of 16, 16 and 8 rows; a short last batch
  options.threads = threads;
  options.seed = seed;
  options.weight_decay = 1e-4f;
  Trainer trainer(options);
  const auto stats = trainer.Train(spec, d, params);
  EXPECT_TRUE(stats.ok()) << stats.status();
  if (losses != nullptr && stats.ok()) *losses = stats->epoch_loss;
  return params;
}

Dataset ThreadData() {
  SyntheticOptions o;
  o.rows = 230;
  o.dim = 512;
  o.bits_per_row = 20;
  o.tasks = 5;
  return MakeSyntheticDataset(o);
}

TEST(TrainerTest, OneTwoAndThreeThreadsGiveBitIdenticalParameters) {
  const Dataset d = ThreadData();
  std::vector<double> l1, l2, l3;
  const std::vector<float> p1 = TrainWith(1, 5, d, &l1);
  const std::vector<float> p2 = TrainWith(2, 5, d, &l2);
  const std::vector<float> p3 = TrainWith(3, 5, d, &l3);
  EXPECT_TRUE(BitIdentical(p1, p2));
  EXPECT_TRUE(BitIdentical(p1, p3));
  EXPECT_EQ(l1, l2);
  EXPECT_EQ(l1, l3);
  EXPECT_FALSE(BitIdentical(p1, InitParameters(ThreadSpec(), 3)));
}

TEST(TrainerTest, SameSeedSameParametersDifferentSeedDifferent) {
  const Dataset d = ThreadData();
  const std::vector<float> a = TrainWith(2, 5, d);
  const std::vector<float> b = TrainWith(2, 5, d);
  const std::vector<float> c = TrainWith(2, 6, d);
  EXPECT_TRUE(BitIdentical(a, b));
  ASSERT_EQ(a.size(), c.size());
  std::size_t differ = 0;
  for (std::size_t i = 0; i < a.size(); ++i) differ += a[i] != c[i];
  EXPECT_GT(differ, a.size() / 2);
}

TEST(TrainerTest, EpochLossIsMeanOverLabelledEntries) {
  // With a vanishing learning rate the weights stay put, so the first epoch's
  // loss (dropout off) is the loss of the initial weights over all labels.
  NetSpec spec;
  spec.input_dim = 40;
  spec.hidden = {16};
  spec.num_tasks = 3;
  spec.dropout = 0;
  const Dataset d = MakeSyntheticDataset(SmallData(40, 3, 100));
  std::vector<float> params = InitParameters(spec, 4);
  std::vector<float> grad;
  const auto expected = LossAndGradient(spec, params, d, grad);
  ASSERT_TRUE(expected.ok());
  TrainOptions options;
  options.learning_rate = 1e-30f;
  options.batch_size = 7;
  Trainer trainer(options);
  const auto stats = trainer.Train(spec, d, params);
  ASSERT_TRUE(stats.ok());
  ASSERT_EQ(stats->epoch_loss.size(), 1u);
  EXPECT_NEAR(stats->epoch_loss[0], *expected, 1e-6);
}

TEST(TrainerTest, OptimizerStateResetsPerCallUnlessKept) {
  const Dataset d = ThreadData();
  const NetSpec spec = ThreadSpec();
  auto two_calls = [&](bool keep, bool reuse_trainer) {
    std::vector<float> params = InitParameters(spec, 3);
    TrainOptions options;
    options.keep_optimizer_state = keep;
    Trainer first(options);
    EXPECT_TRUE(first.Train(spec, d, params).ok());
    if (reuse_trainer) {
      EXPECT_TRUE(first.Train(spec, d, params).ok());
    } else {
      Trainer second(options);
      EXPECT_TRUE(second.Train(spec, d, params).ok());
    }
    return params;
  };
  const std::vector<float> fresh = two_calls(false, false);
  EXPECT_TRUE(BitIdentical(two_calls(false, true), fresh));
  EXPECT_FALSE(BitIdentical(two_calls(true, true), fresh));
}

TEST(TrainerTest, RejectsInvalidInputAndLeavesParametersUnchanged) {
  const NetSpec spec = ThreadSpec();
  Dataset d = ThreadData();
  Trainer trainer(TrainOptions{});
  std::vector<float> params = InitParameters(spec, 3);
  params[7] = std::numeric_limits<float>::infinity();
  const std::vector<float> before = params;
  auto r = trainer.Train(spec, d, params);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().where(), HasSubstr("parameters[7]"));
  EXPECT_TRUE(BitIdentical(params, before));

  params = InitParameters(spec, 3);
  d.y[13] = 2;
  r = trainer.Train(spec, d, params);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("label 2"));

  d = ThreadData();
  d.tasks.pop_back();
  EXPECT_THAT(trainer.Train(spec, d, params).status().message(), HasSubstr("tasks"));

  d = ThreadData();
  d.x.indices[3] = 512;
  EXPECT_THAT(trainer.Train(spec, d, params).status().message(), HasSubstr("bit index 512"));

  TrainOptions bad;
  bad.batch_size = 0;
  Trainer bad_trainer(bad);
  EXPECT_THAT(bad_trainer.Train(spec, ThreadData(), params).status().where(),
              HasSubstr("batch_size"));
}

TEST(TrainerTest, EmptyDatasetTrainsNothing) {
  const NetSpec spec = ThreadSpec();
  Dataset d;
  d.x.dim = spec.input_dim;
  for (int t = 0; t < 5; ++t) d.tasks.push_back("t");
  std::vector<float> params = InitParameters(spec, 3);
  const std::vector<float> before = params;
  Trainer trainer(TrainOptions{});
  const auto stats = trainer.Train(spec, d, params);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->samples_seen, 0u);
  EXPECT_TRUE(BitIdentical(params, before));
}

}  // namespace
}  // namespace fedrx::ml

namespace fedrx::ml {
namespace {

// FedProx: the proximal term mu/2 ||w - w_global||^2.
std::vector<float> TrainProx(float mu, std::uint32_t epochs, std::size_t batch, const Dataset& d,
                             int threads = 2) {
  const NetSpec spec = ThreadSpec();
  std::vector<float> params = InitParameters(spec, 3);
  TrainOptions options;
  options.epochs = epochs;
  options.batch_size = static_cast<std::uint32_t>(batch);
  options.threads = threads;
  options.seed = 11;
  options.learning_rate = 0.01f;
  options.proximal_mu = mu;
  Trainer trainer(options);
  const auto stats = trainer.Train(spec, d, params);
  EXPECT_TRUE(stats.ok()) << stats.status();
  return params;
}

double DistanceFrom(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
  return std::sqrt(s);
}

TEST(FedProxTest, MuZeroIsBitIdenticalToPlainTraining) {
  const Dataset d = ThreadData();
  // The default options (no proximal_mu set) and an explicit 0 take the same
  // path: no anchor copy, no extra arithmetic.
  const NetSpec spec = ThreadSpec();
  std::vector<float> plain = InitParameters(spec, 3);
  TrainOptions options;
  options.epochs = 3;
  options.batch_size = 40;
  options.seed = 11;
  options.learning_rate = 0.01f;
  Trainer trainer(options);
  ASSERT_TRUE(trainer.Train(spec, d, plain).ok());
  EXPECT_TRUE(BitIdentical(plain, TrainProx(0.0f, 3, 40, d)));
}

TEST(FedProxTest, FirstStepFromTheGlobalModelIsUnchangedByTheTerm) {
  // At w = w_global the proximal gradient mu (w - w_global) is zero, so one
  // batch gives exactly plain training's step; later steps differ.
  const Dataset d = ThreadData();
  const std::size_t all = d.size();
  EXPECT_TRUE(BitIdentical(TrainProx(0.0f, 1, all, d), TrainProx(5.0f, 1, all, d)));
  EXPECT_FALSE(BitIdentical(TrainProx(0.0f, 2, all, d), TrainProx(5.0f, 2, all, d)));
}

TEST(FedProxTest, LargerMuKeepsWeightsCloserToTheGlobalModel) {
  const Dataset d = ThreadData();
  const std::vector<float> global = InitParameters(ThreadSpec(), 3);
  const double plain = DistanceFrom(TrainProx(0.0f, 4, 40, d), global);
  const double some = DistanceFrom(TrainProx(0.5f, 4, 40, d), global);
  const double strong = DistanceFrom(TrainProx(50.0f, 4, 40, d), global);
  EXPECT_GT(plain, 0.0);
  EXPECT_LT(some, plain);
  EXPECT_LT(strong, some);
  EXPECT_LT(strong, 0.5 * plain);
}

TEST(FedProxTest, ProximalTrainingIsTheSameForAnyThreadCount) {
  const Dataset d = ThreadData();
  EXPECT_TRUE(BitIdentical(TrainProx(0.3f, 2, 40, d, 1), TrainProx(0.3f, 2, 40, d, 3)));
}

TEST(FedProxTest, NegativeOrNonFiniteMuIsRefused) {
  const Dataset d = ThreadData();
  std::vector<float> params = InitParameters(ThreadSpec(), 3);
  const std::vector<float> before = params;
  TrainOptions options;
  options.proximal_mu = -1.0f;
  Trainer trainer(options);
  auto r = trainer.Train(ThreadSpec(), d, params);
  EXPECT_EQ(r.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().where(), HasSubstr("proximal_mu"));
  EXPECT_TRUE(BitIdentical(params, before));
}

}  // namespace
}  // namespace fedrx::ml
