// What the serving tests share: a tiny study published in a FakeStateStore
// through the coordinator's own StudyStore, and a consortium key file.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "messages/codec/message.h"
#include "services/coordinator/study_store.h"
#include "services/core/testing/fake_state_store.h"
#include "services/ml/model.h"
#include "services/ml/study_spec.h"

namespace fedrx::serving::testing {

inline codec::StudySpec TinySpec(const std::string& id = "tox") {
  codec::StudySpec s;
  s.study_id = id;
  s.name = id;
  s.tasks = {"nr_ar", "sr_are", "sr_p53"};
  s.model.input_dim = 256;
  s.model.hidden = {16, 8};
  s.model.num_tasks = 3;
  s.model.dropout = 0.1f;
  s.rounds = 5;
  s.fingerprint_radius = 2;
  return s;
}

inline std::vector<float> Weights(const codec::StudySpec& spec, std::uint64_t seed) {
  return ml::InitParameters(ml::NetSpecFromStudy(spec), seed);
}

// Publishes version `base + 1` as the coordinator does at the end of a round.
inline void Publish(core::StateStore& store, const std::string& study, std::uint32_t base,
                    const std::vector<float>& weights) {
  coordinator::StudyStore studies(store);
  coordinator::RoundRecord round;
  round.round = base + 1;
  round.base_version = base;
  round.state = codec::RoundState::kClosed;
  ASSERT_TRUE(studies.CommitRound(study, round, weights, base + 2, false, 1000).ok());
}

// A temporary consortium key file, removed with the object.
class KeyFile {
 public:
  explicit KeyFile(const std::string& secret) {
    path_ = (std::filesystem::temp_directory_path() /
             ("fedrx-serving-key-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
              "-" + ::testing::UnitTest::GetInstance()->current_test_info()->name()))
                .string();
    std::ofstream(path_) << secret << "\n";
  }
  ~KeyFile() { std::filesystem::remove(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline constexpr char kSecret[] = "consortium-secret-for-serving-tests";

}  // namespace fedrx::serving::testing
