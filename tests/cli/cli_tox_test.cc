// `fedrx tox predict`: the PredictToxicity a scripted gateway receives (from
// --smiles or a .smi file, with panel, tasks and confidence), the printed
// table (model version, per task probability and set, the domain flag,
// refusals) and the JSON file; bad command lines are refused before sending.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "services/cli/cli.h"
#include "services/cli/tox_command.h"
#include "tests/cli/scripted_gateway.h"

namespace fedrx::cli {
namespace {

using ::testing::HasSubstr;

using testing::kGateway;

codec::ToxicityPanel Panel() {
  codec::ToxicityPanel p;
  p.panel = "tox21";
  p.model.study_id = "tox21-demo";
  p.model.model_version = 7;
  p.model.calibration_samples = 1234;
  p.model.calibration_version = 7;
  p.model.method = "Mondrian inductive conformal prediction";
  p.confidence = 0.8;
  p.tasks = {"NR-AR"};
  codec::StructurePrediction ok;
  ok.input = "OCC";
  ok.canonical_smiles = "CCO";
  codec::TaskPrediction t;
  t.task = "NR-AR";
  t.probability = 0.0423;
  t.p_negative = 0.61;
  t.p_positive = 0.05;
  t.prediction_set = "negative";
  t.calibrated = true;
  ok.tasks = {t};
  ok.domain = {0.9, 0.004, false, 0.01, true};
  codec::StructurePrediction bad;
  bad.input = "C1CC";
  bad.error_code = "invalid_argument";
  bad.error = "unclosed ring";
  bad.error_where = "smiles[1]";
  p.results = {ok, bad};
  return p;
}

class CliToxTest : public testing::ScriptedGatewayTest {
 protected:
  CliToxTest() {
    answer = [](const codec::Body&) -> core::Result<codec::Body> { return codec::Body(Panel()); };
  }
};

TEST_F(CliToxTest, SendsTheRequestAndPrintsTheTable) {
  const std::string json_path = Path("out.json");
  ASSERT_EQ(Run({"tox", "predict", "--smiles", "OCC,C1CC", "--panel", "tox21", "--tasks", "NR-AR",
                 "--confidence", "0.8", "--json", json_path}),
            0)
      << err_.str();
  ASSERT_EQ(requests_.size(), 1u);
  const auto& r = std::get<codec::PredictToxicity>(requests_[0]);
  EXPECT_EQ(r.smiles, (std::vector<std::string>{"OCC", "C1CC"}));
  EXPECT_EQ(r.panel, "tox21");
  EXPECT_EQ(r.tasks, (std::vector<std::string>{"NR-AR"}));
  EXPECT_EQ(r.confidence, 0.8);
  const std::string out = out_.str();
  EXPECT_THAT(out, HasSubstr("study tox21-demo, model version 7, calibrated on 1234"));
  EXPECT_THAT(out, HasSubstr("OCC  -> CCO  OUT OF DOMAIN (p=0.004"));
  EXPECT_THAT(out, HasSubstr("NR-AR"));
  EXPECT_THAT(out, HasSubstr("0.042  negative"));
  EXPECT_THAT(out, HasSubstr("C1CC  REFUSED: unclosed ring"));
  std::ifstream f(json_path);
  const nlohmann::json j = nlohmann::json::parse(f);
  EXPECT_EQ(j["model"]["model_version"], 7);
  EXPECT_EQ(j["results"][0]["tasks"][0]["prediction_set"], "negative");
  EXPECT_EQ(j["results"][0]["domain"]["in_domain"], false);
  EXPECT_EQ(j["results"][1]["error"]["where"], "smiles[1]");
}

TEST_F(CliToxTest, ReadsASmiFile) {
  const std::string smi = Path("in.smi");
  std::ofstream(smi) << "# header\nCCO ethanol\n\n  c1ccccc1\tbenzene\r\nC1CC\n";
  ASSERT_EQ(Run({"tox", "predict", "--in", smi}), 0) << err_.str();
  const auto& r = std::get<codec::PredictToxicity>(requests_.at(0));
  EXPECT_EQ(r.smiles, (std::vector<std::string>{"CCO", "c1ccccc1", "C1CC"}));
  EXPECT_EQ(r.confidence, 0.9);
  EXPECT_TRUE(r.panel.empty());
  EXPECT_FALSE(ReadSmiles(Path("missing.smi")).ok());
  std::ofstream(Path("empty.smi")) << "# nothing\n\n";
  EXPECT_EQ(ReadSmiles(Path("empty.smi")).status().code(), core::StatusCode::kInvalidArgument);
}

TEST_F(CliToxTest, RefusesBadCommandLinesBeforeSending) {
  EXPECT_NE(Run({"tox", "predict"}), 0);
  EXPECT_NE(Run({"tox", "predict", "--smiles", "CCO", "--in", "x.smi"}), 0);
  EXPECT_NE(Run({"tox", "predict", "--smiles", "CCO", "--confidence", "abc"}), 0);
  EXPECT_NE(Run({"tox", "guess"}), 0);
  EXPECT_TRUE(requests_.empty());
}

}  // namespace
}  // namespace fedrx::cli
