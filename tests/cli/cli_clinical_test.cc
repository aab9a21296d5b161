// `fedrx clinical assess`'s JSON: every field of the ClinicalAssessment (the
// ClinTox calls as `fedrx tox predict` writes structures, the phase-transition
// success with its source, the side-effect profile or why there is none).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "services/cli/clinical_command.h"

namespace fedrx::cli {
namespace {

codec::ClinicalAssessment Assessment() {
  codec::ClinicalAssessment a;
  a.model.study_id = "clintox-demo";
  a.model.model_version = 10;
  a.model.calibration_samples = 148;
  a.confidence = 0.9;
  codec::StructurePrediction ok;
  ok.input = "CCO";
  ok.canonical_smiles = "CCO";
  codec::TaskPrediction t;
  t.task = "CT_TOX";
  t.probability = 0.12;
  t.prediction_set = "negative";
  t.calibrated = true;
  ok.tasks = {t};
  codec::StructurePrediction bad;
  bad.input = "C1CC";
  bad.error_code = "invalid_argument";
  bad.error = "unclosed ring";
  bad.error_where = "smiles[1]";
  a.clinical = {ok, bad};
  codec::ClinicalSuccess s;
  s.therapeutic_area = "all_indications";
  s.risk = 0.12;
  s.log_likelihood_ratio = 0.25;
  s.transitions = {{"phase1_to_phase2", 0.52, 0.55, 0.38}};
  s.base_likelihood_of_approval = 0.079;
  s.adjusted_likelihood_of_approval = 0.088;
  s.source = "BIO 2021";
  a.success = {s, codec::ClinicalSuccess{}};
  a.side_effects_unavailable = "no side-effect study";
  a.working.method = "Bayes odds";
  return a;
}

TEST(CliClinicalTest, JsonHoldsCallsSuccessAndWhyNoSideEffects) {
  const nlohmann::json j = ToJson(Assessment());
  EXPECT_EQ(j["model"]["study_id"], "clintox-demo");
  EXPECT_EQ(j["model"]["model_version"], 10);
  EXPECT_EQ(j["confidence"], 0.9);
  ASSERT_EQ(j["clinical"].size(), 2u);
  EXPECT_EQ(j["clinical"][0]["tasks"][0]["task"], "CT_TOX");
  EXPECT_EQ(j["clinical"][0]["tasks"][0]["prediction_set"], "negative");
  EXPECT_EQ(j["clinical"][1]["error"]["where"], "smiles[1]");
  ASSERT_EQ(j["success"].size(), 2u);
  EXPECT_EQ(j["success"][0]["transitions"][0]["transition"], "phase1_to_phase2");
  EXPECT_DOUBLE_EQ(j["success"][0]["transitions"][0]["adjusted"].get<double>(), 0.55);
  EXPECT_DOUBLE_EQ(j["success"][0]["adjusted_likelihood_of_approval"].get<double>(), 0.088);
  EXPECT_EQ(j["success"][0]["source"], "BIO 2021");
  EXPECT_EQ(j["side_effects_unavailable"], "no side-effect study");
  EXPECT_FALSE(j.contains("side_effects"));
  EXPECT_EQ(j["working"]["method"], "Bayes odds");
}

TEST(CliClinicalTest, ServedSideEffectsAreWrittenWithTheirModel) {
  codec::ClinicalAssessment a = Assessment();
  a.side_effects_unavailable.clear();
  a.side_effect_model.study_id = "organ-classes";
  a.side_effects = {a.clinical[0]};
  const nlohmann::json j = ToJson(a);
  EXPECT_EQ(j["side_effect_model"]["study_id"], "organ-classes");
  ASSERT_EQ(j["side_effects"].size(), 1u);
  EXPECT_FALSE(j.contains("side_effects_unavailable"));
}

}  // namespace
}  // namespace fedrx::cli
