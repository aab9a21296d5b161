// `fedrx reverse translate`: the ReverseTranslate a scripted gateway receives
// (';'-separated organ classes and terms, since class names hold commas;
// ','-separated labels; the FDR), the printed answer (counts provenance,
// endpoints, ranked assays with the significant ones starred) and the JSON
// file; a command line without a signal or with a bad FDR is refused before
// anything is sent.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "services/cli/cli.h"
#include "services/cli/reverse_command.h"
#include "tests/cli/scripted_gateway.h"

namespace fedrx::cli {
namespace {

using ::testing::HasSubstr;

using testing::kGateway;

codec::ReverseTranslation Answer() {
  codec::ReverseTranslation a;
  codec::OrganClassRecommendation liver;
  liver.organ_class = "Hepatobiliary disorders";
  liver.matched_terms = {"Hepatobiliary disorders"};
  liver.endpoints = {{"LB", "ALT", "hepatocellular injury"}};
  a.organ_classes = {liver};
  codec::AssayAssociation p53;
  p53.clinical_label = "CT_TOX";
  p53.assay = "SR-p53";
  p53.a = 7;
  p53.b = 10;
  p53.c = 53;
  p53.d = 671;
  p53.sufficient_evidence = true;
  p53.odds_ratio = 8.86;
  p53.ci_low = 3.24;
  p53.ci_high = 24.2;
  p53.p_value = 0.000165;
  p53.q_value = 0.00264;
  p53.significant = true;
  p53.evidence =
      "OR 8.86 (95% CI 3.24-24.2), Fisher p=0.000165, BH q=0.00264 [a=7 b=10 c=53 d=671]";
  a.label_associations = {p53};
  a.counts_study = "reverse-counts";
  a.counts_version = 1;
  a.counts_sites = 3;
  a.counts_compounds = 857;
  a.counts_secure = true;
  a.working.method = "Reverse translation";
  return a;
}

class CliReverseTest : public testing::ScriptedGatewayTest {
 protected:
  CliReverseTest() {
    answer = [](const codec::Body&) -> core::Result<codec::Body> { return codec::Body(Answer()); };
  }
};

TEST_F(CliReverseTest, SendsTheSignalAndPrintsTheEvidence) {
  const std::string json_path = dir_.path() + "/answer.json";
  ASSERT_EQ(Run({"reverse", "translate", "--organ-class",
                 "Hepatobiliary disorders; Injury, poisoning and procedural complications",
                 "--adverse-event", "torsade de pointes", "--label", "CT_TOX,FDA_APPROVED", "--fdr",
                 "0.1", "--json", json_path}),
            0)
      << err_.str();
  ASSERT_EQ(requests_.size(), 1u);
  const auto& r = std::get<codec::ReverseTranslate>(requests_[0]);
  EXPECT_EQ(r.organ_classes,
            (std::vector<std::string>{"Hepatobiliary disorders",
                                      "Injury, poisoning and procedural complications"}));
  EXPECT_EQ(r.adverse_events, std::vector<std::string>{"torsade de pointes"});
  EXPECT_EQ(r.clinical_labels, (std::vector<std::string>{"CT_TOX", "FDA_APPROVED"}));
  EXPECT_EQ(r.fdr, 0.1);
  const std::string out = out_.str();
  EXPECT_THAT(out, HasSubstr("study reverse-counts version 1, 3 site(s), 857 compounds, summed "
                             "by secure aggregation"));
  EXPECT_THAT(out, HasSubstr("LB  ALT"));
  EXPECT_THAT(out, HasSubstr("CT_TOX: assays"));
  EXPECT_THAT(out, HasSubstr("* SR-p53"));
  std::ifstream f(json_path);
  const nlohmann::json j = nlohmann::json::parse(f);
  EXPECT_EQ(j["counts_compounds"], 857);
  EXPECT_EQ(j["counts_secure"], true);
  EXPECT_EQ(j["label_associations"][0]["a"], 7);
  EXPECT_EQ(j["label_associations"][0]["odds_ratio"], 8.86);
  EXPECT_EQ(j["organ_classes"][0]["endpoints"][0]["code"], "ALT");
}

TEST_F(CliReverseTest, RefusesBadCommandLinesBeforeSending) {
  EXPECT_NE(Run({"reverse", "translate"}), 0);
  EXPECT_THAT(err_.str(), HasSubstr("--organ-class"));
  EXPECT_NE(Run({"reverse", "translate", "--label", "CT_TOX", "--fdr", "abc"}), 0);
  EXPECT_NE(Run({"reverse", "guess"}), 0);
  EXPECT_TRUE(requests_.empty());
}

}  // namespace
}  // namespace fedrx::cli
