#include "services/ml/study_spec.h"

#include <gtest/gtest.h>

namespace fedrx::ml {
namespace {

constexpr char kBase[] =
    "study.id = s1\n"
    "study.tasks = a, b\n"
    "train.rounds = 3\n";

TEST(StudySpecTest, FederationKeysDefaultToPlainFedAvg) {
  auto c = core::Config::Parse(kBase, "study.conf", {});
  ASSERT_TRUE(c.ok());
  auto s = StudySpecFromConfig(*c);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->server_optimizer, "fedavg");
  EXPECT_EQ(s->server_learning_rate, 1.0f);
  EXPECT_EQ(s->proximal_mu, 0.0f);
  EXPECT_EQ(s->dp_clip_norm, 0.0f);
  EXPECT_EQ(s->dp_delta, 1e-5);
  EXPECT_FALSE(s->secure_aggregation);
}

TEST(StudySpecTest, FederationKeysAreRead) {
  const std::string text = std::string(kBase) +
                           "train.strategy = multikrum\n"
                           "train.server_optimizer = fedadam\n"
                           "train.server_learning_rate = 0.05\n"
                           "train.server_beta1 = 0.8\n"
                           "train.server_beta2 = 0.95\n"
                           "train.server_tau = 0.01\n"
                           "train.proximal_mu = 0.1\n"
                           "robust.trim_fraction = 0.2\n"
                           "robust.krum_byzantine = 1\n"
                           "robust.krum_selected = 3\n"
                           "robust.norm_bound = 2.5\n"
                           "privacy.clip_norm = 1.5\n"
                           "privacy.noise_multiplier = 1.1\n"
                           "privacy.delta = 1e-6\n"
                           "privacy.epsilon_budget = 8\n"
                           "privacy.secure_aggregation = true\n"
                           "privacy.secagg_threshold = 4\n"
                           "privacy.secagg_neighbours = 6\n";
  auto c = core::Config::Parse(text, "study.conf", {});
  ASSERT_TRUE(c.ok()) << c.status();
  auto s = StudySpecFromConfig(*c);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->strategy, "multikrum");
  EXPECT_EQ(s->server_optimizer, "fedadam");
  EXPECT_FLOAT_EQ(s->server_learning_rate, 0.05f);
  EXPECT_FLOAT_EQ(s->server_beta1, 0.8f);
  EXPECT_FLOAT_EQ(s->server_beta2, 0.95f);
  EXPECT_FLOAT_EQ(s->server_tau, 0.01f);
  EXPECT_FLOAT_EQ(s->proximal_mu, 0.1f);
  EXPECT_FLOAT_EQ(s->trim_fraction, 0.2f);
  EXPECT_EQ(s->krum_byzantine, 1u);
  EXPECT_EQ(s->krum_selected, 3u);
  EXPECT_FLOAT_EQ(s->norm_bound, 2.5f);
  EXPECT_FLOAT_EQ(s->dp_clip_norm, 1.5f);
  EXPECT_FLOAT_EQ(s->dp_noise_multiplier, 1.1f);
  EXPECT_DOUBLE_EQ(s->dp_delta, 1e-6);
  EXPECT_DOUBLE_EQ(s->dp_epsilon_budget, 8.0);
  EXPECT_TRUE(s->secure_aggregation);
  EXPECT_EQ(s->secagg_threshold, 4u);
  EXPECT_EQ(s->secagg_neighbours, 6u);
}

TEST(StudySpecTest, BadNumberNamesTheKey) {
  auto c = core::Config::Parse(std::string(kBase) + "privacy.delta = tiny\n", "study.conf", {});
  ASSERT_TRUE(c.ok());
  auto s = StudySpecFromConfig(*c);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("privacy.delta"), std::string::npos);
}

TEST(StudySpecTest, PrivateHeadsStudyDescribesTheTrunkAndMayLeaveTasksToTheSites) {
  auto c = core::Config::Parse(
      "study.id = ph\n"
      "train.rounds = 2\n"
      "model.input_dim = 64\n"
      "model.hidden = 16, 8\n"
      "train.private_heads = true\n",
      "study.conf", {});
  ASSERT_TRUE(c.ok()) << c.status();
  auto s = StudySpecFromConfig(*c);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_TRUE(s->private_heads);
  EXPECT_TRUE(s->tasks.empty());
  EXPECT_EQ(s->model.num_tasks, 0u);
  const NetSpec trunk = NetSpecFromStudy(*s);
  EXPECT_EQ(trunk.hidden, (std::vector<std::uint32_t>{16, 8}));
  EXPECT_EQ(TrunkParameterCount(trunk), 64u * 16 + 16 + 16 * 8 + 8);
}

TEST(StudySpecTest, PrivateHeadsStudyKeepsANamedPanelButNoHead) {
  auto c =
      core::Config::Parse(std::string(kBase) + "train.private_heads = true\n", "study.conf", {});
  ASSERT_TRUE(c.ok());
  auto s = StudySpecFromConfig(*c);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->tasks, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(s->model.num_tasks, 0u);
}

TEST(StudySpecTest, SharedHeadStudyStillNeedsItsTasks) {
  auto c = core::Config::Parse("study.id = s\ntrain.rounds = 1\n", "study.conf", {});
  ASSERT_TRUE(c.ok());
  auto s = StudySpecFromConfig(*c);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("study.tasks"), std::string::npos) << s.status();
}

}  // namespace
}  // namespace fedrx::ml
