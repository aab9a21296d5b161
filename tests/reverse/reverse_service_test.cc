// The reverse-translation service's logic: the counts study's latest version
// read from the registry (as the coordinator stored it) and analysed; the
// cache re-reads only after its interval and sets the version metric; the
// answer carries the table's SEND endpoints, the ranked associations of the
// requested clinical labels with the statistics of the summed tables, the
// counts' provenance and a working naming the tests; without counts the
// table still answers and says why; bad input is refused naming the entry.
#include "services/reverse/reverse_service.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "services/coordinator/study_store.h"
#include "services/core/testing/fake_state_store.h"

namespace fedrx::reverse {
namespace {

codec::StudySpec CountsSpec() {
  codec::StudySpec s;
  s.study_id = "reverse-counts";
  s.statistic = "pair_counts";
  s.statistic_rows = {"CT_TOX", "FDA_APPROVED"};
  s.tasks = {"SR-MMP", "NR-AhR", "SR-p53"};
  s.rounds = 1;
  s.min_sites = 3;
  s.secure_aggregation = true;
  return s;
}

// Pair order: (CT_TOX: SR-MMP, NR-AhR, SR-p53), (FDA_APPROVED: ...).
const std::vector<PairCounts> kTables = {
    {20, 5, 10, 40},                  // CT_TOX x SR-MMP: OR 16
    {6, 19, 12, 38},                  // CT_TOX x NR-AhR: OR 1
    {2, 23, 1, 49},                   // CT_TOX x SR-p53: a + c = 3 < 5: insufficient
    {8, 42, 22, 3},                   // FDA_APPROVED x SR-MMP
    {12, 38, 6, 19}, {3, 47, 0, 25},  // a margin a+c = 3 < 5: insufficient
};

std::vector<float> Blob(const std::vector<PairCounts>& tables) {
  std::vector<float> out;
  for (std::uint64_t v : Flatten(tables)) out.push_back(static_cast<float>(v));
  return out;
}

// Stores the counts study as the coordinator does: created with zeros, then
// round 1 committed with the summed counts from three sites.
void StoreCounts(core::StateStore& store, const std::vector<float>& blob) {
  coordinator::StudyStore studies(store);
  const codec::StudySpec spec = CountsSpec();
  ASSERT_TRUE(studies.Create(spec, std::vector<float>(blob.size(), 0.0f), 0).ok());
  coordinator::RoundRecord round;
  round.round = 1;
  round.state = codec::RoundState::kClosed;
  round.base_version = 0;
  round.selected = round.contributed = {"hospital-d", "hospital-f", "pharma-e"};
  round.samples = 75;
  ASSERT_TRUE(studies.CommitRound(spec.study_id, round, blob, 1, true, 1).ok());
}

TEST(CountsReaderTest, ReadsTheLatestVersionWithItsSitesAndAnalysesIt) {
  core::testing::FakeStateStore store;
  CountsReader reader(store, "reverse-counts");
  auto none = reader.Read();
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(*none, nullptr);  // no study yet
  StoreCounts(store, Blob(kTables));
  auto read = reader.Read();
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_NE(*read, nullptr);
  const FederatedCounts& c = **read;
  EXPECT_EQ(c.version, 1u);
  EXPECT_EQ(c.sites, 3u);
  EXPECT_EQ(c.compounds, 75u);
  EXPECT_TRUE(c.secure);
  EXPECT_EQ(c.counts, kTables);
  ASSERT_EQ(c.associations.size(), 6u);
  EXPECT_EQ(c.associations[0].pair, (PairKey{"CT_TOX", "SR-MMP"}));
  EXPECT_NEAR(c.associations[0].odds_ratio.estimate, 16.0, 1e-12);
  EXPECT_FALSE(c.associations[2].sufficient_evidence);
}

TEST(CountsReaderTest, AStudyWithoutCountsYetReadsAsNone) {
  core::testing::FakeStateStore store;
  coordinator::StudyStore studies(store);
  ASSERT_TRUE(studies.Create(CountsSpec(), std::vector<float>(24, 0.0f), 0).ok());
  auto read = CountsReader(store, "reverse-counts").Read();
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(*read, nullptr);
}

TEST(CountsFromVersionTest, RefusesWhatIsNotACountsVersion) {
  codec::StudySpec model = CountsSpec();
  model.statistic.clear();
  EXPECT_EQ(CountsFromVersion(model, 1, Blob(kTables)).status().code(),
            core::StatusCode::kFailedPrecondition);
  std::vector<float> blob = Blob(kTables);
  blob.pop_back();
  EXPECT_EQ(CountsFromVersion(CountsSpec(), 1, blob).status().code(), core::StatusCode::kDataLoss);
  for (float bad : {2.5f, -1.0f, std::numeric_limits<float>::quiet_NaN(), 16777216.0f}) {
    blob = Blob(kTables);
    blob[7] = bad;
    const auto s = CountsFromVersion(CountsSpec(), 1, blob).status();
    EXPECT_EQ(s.code(), core::StatusCode::kDataLoss) << bad;
    EXPECT_NE(s.message().find("word 7"), std::string::npos) << s;
  }
}

TEST(CountsCacheTest, PublishesOnRefreshOnlyAndSetsTheVersionMetric) {
  core::testing::FakeStateStore store;
  core::Metrics metrics("reverse");
  CountsCache cache(std::make_unique<CountsReader>(store, "reverse-counts"), metrics);
  EXPECT_NE(cache.Current().missing.find("not been read yet"), std::string::npos);
  ASSERT_TRUE(cache.Refresh().ok());
  CountsSnapshot first = cache.Current();
  EXPECT_EQ(first.counts, nullptr);
  EXPECT_EQ(first.study, "reverse-counts");
  EXPECT_NE(first.missing.find("no counts yet"), std::string::npos) << first.missing;
  EXPECT_EQ(metrics.Read("fedrx_reverse_counts_version"), 0);
  StoreCounts(store, Blob(kTables));
  EXPECT_EQ(cache.Current().counts, nullptr);  // not read until the next refresh
  ASSERT_TRUE(cache.Refresh().ok());
  CountsSnapshot second = cache.Current();
  ASSERT_NE(second.counts, nullptr);
  EXPECT_EQ(second.counts->version, 1u);
  EXPECT_TRUE(second.missing.empty());
  EXPECT_EQ(metrics.Read("fedrx_reverse_counts_version"), 1);
}

TEST(CountsCacheTest, WithoutACountsStudyEverySnapshotSaysSo) {
  core::Metrics metrics("reverse");
  CountsCache cache(nullptr, metrics);
  ASSERT_TRUE(cache.Refresh().ok());
  EXPECT_EQ(cache.Current().counts, nullptr);
  EXPECT_NE(cache.Current().missing.find("reverse.counts_study"), std::string::npos);
}

CountsSnapshot Snapshot() {
  auto counts = CountsFromVersion(CountsSpec(), 1, Blob(kTables));
  EXPECT_TRUE(counts.ok()) << counts.status();
  auto shared = std::make_shared<FederatedCounts>(std::move(*counts));
  shared->sites = 3;
  shared->compounds = 75;
  return {shared, "reverse-counts", ""};
}

TEST(AnswerReverseTranslateTest, RanksTheLabelsAssaysWithTheSummedTablesStatistics) {
  core::Metrics metrics("reverse");
  codec::ReverseTranslate r;
  r.clinical_labels = {"CT_TOX"};
  r.fdr = 0.05;
  auto a = AnswerReverseTranslate(r, Snapshot(), &metrics);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_EQ(a->label_associations.size(), 3u);
  const codec::AssayAssociation& top = a->label_associations[0];
  EXPECT_EQ(top.clinical_label, "CT_TOX");
  EXPECT_EQ(top.assay, "SR-MMP");
  EXPECT_EQ(top.a, 20u);
  EXPECT_EQ(top.d, 40u);
  EXPECT_NEAR(top.odds_ratio, 16.0, 1e-12);
  // Woolf: exp(ln 16 -/+ 1.959964 sqrt(1/20 + 1/5 + 1/10 + 1/40)).
  const double se = std::sqrt(1.0 / 20 + 1.0 / 5 + 1.0 / 10 + 1.0 / 40);
  EXPECT_NEAR(top.ci_low, std::exp(std::log(16.0) - 1.959964 * se), 1e-5);
  EXPECT_NEAR(top.ci_high, std::exp(std::log(16.0) + 1.959964 * se), 1e-4);
  auto p = FisherExactTwoSided(kTables[0]);
  ASSERT_TRUE(p.ok());
  EXPECT_DOUBLE_EQ(top.p_value, *p);
  EXPECT_TRUE(top.significant);
  EXPECT_EQ(a->label_associations[1].assay, "NR-AhR");
  EXPECT_FALSE(a->label_associations[1].significant);  // OR 1
  EXPECT_EQ(a->label_associations[2].assay, "SR-p53");
  EXPECT_FALSE(a->label_associations[2].sufficient_evidence);
  EXPECT_EQ(a->label_associations[2].odds_ratio, 0);  // no statistics without evidence
  EXPECT_EQ(a->counts_study, "reverse-counts");
  EXPECT_EQ(a->counts_version, 1u);
  EXPECT_EQ(a->counts_sites, 3u);
  EXPECT_EQ(a->counts_compounds, 75u);
  EXPECT_TRUE(a->counts_secure);
  // The working names each test; BH runs over the 4 tested pairs of the study.
  std::string labels;
  for (const auto& s : a->working.steps) labels += s.label + ";";
  EXPECT_NE(labels.find("Woolf"), std::string::npos);
  EXPECT_NE(labels.find("Fisher"), std::string::npos);
  EXPECT_NE(labels.find("Benjamini-Hochberg"), std::string::npos);
  EXPECT_NE(labels.find("Minimum margin"), std::string::npos);
  // Significant over the whole family: the tested pairs whose q is below 0.05.
  double significant = 0;
  for (const auto& x : Snapshot().counts->associations) {
    significant += x.sufficient_evidence && x.q_value < 0.05 ? 1 : 0;
  }
  EXPECT_GE(significant, 1);
  for (const auto& s : a->working.steps) {
    if (s.label == "Benjamini-Hochberg") {
      EXPECT_EQ(s.inputs.at(0).value, 4);
      EXPECT_EQ(s.result.value, significant);
    }
  }
  EXPECT_EQ(metrics.Read("fedrx_reverse_signals_total", {{"kind", "clinical_label"}}), 1);
}

TEST(AnswerReverseTranslateTest, OrganClassesCarryTheTablesEndpoints) {
  codec::ReverseTranslate r;
  r.organ_classes = {"Hepatobiliary disorders"};
  r.adverse_events = {"torsade de pointes"};
  auto a = AnswerReverseTranslate(r, Snapshot());
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_EQ(a->organ_classes.size(), 2u);
  const auto& liver = a->organ_classes[0];
  EXPECT_EQ(liver.organ_class, "Hepatobiliary disorders");
  ASSERT_FALSE(liver.endpoints.empty());
  EXPECT_EQ(liver.endpoints[0].domain, "LB");
  EXPECT_EQ(liver.endpoints[0].code, "ALT");
  EXPECT_TRUE(liver.assays.empty());  // the counts hold CT_TOX and FDA_APPROVED rows only
  EXPECT_EQ(a->organ_classes[1].organ_class, "Cardiac disorders");
  EXPECT_EQ(a->organ_classes[1].matched_terms, std::vector<std::string>{"torsade de pointes"});
  bool noted = false;
  for (const auto& n : a->working.notes)
    noted |= n.find("no pairs for Hepatobiliary") != std::string::npos;
  EXPECT_TRUE(noted);
}

TEST(AnswerReverseTranslateTest, WithoutCountsTheTableAnswersAndSaysSo) {
  codec::ReverseTranslate r;
  r.organ_classes = {"Hepatobiliary disorders"};
  r.clinical_labels = {"CT_TOX"};
  CountsSnapshot none{nullptr, "reverse-counts",
                      "the counts study reverse-counts has no counts yet"};
  auto a = AnswerReverseTranslate(r, none);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->counts_sites, 0u);
  EXPECT_EQ(a->counts_version, 0u);
  EXPECT_EQ(a->counts_study, "reverse-counts");
  EXPECT_TRUE(a->label_associations.empty());
  ASSERT_EQ(a->organ_classes.size(), 1u);
  EXPECT_FALSE(a->organ_classes[0].endpoints.empty());
  ASSERT_FALSE(a->working.notes.empty());
  EXPECT_NE(a->working.notes[0].find("No association counts"), std::string::npos);
  EXPECT_NE(a->working.notes[0].find("no counts yet"), std::string::npos);
}

TEST(AnswerReverseTranslateTest, BadInputIsRefusedNamingTheEntry) {
  const auto where = [](codec::ReverseTranslate r) {
    auto a = AnswerReverseTranslate(r, Snapshot());
    EXPECT_EQ(a.status().code(), core::StatusCode::kInvalidArgument);
    return a.status().where();
  };
  codec::ReverseTranslate r;
  r.organ_classes = {"Hepatobiliary disorders", "Liver stuff"};
  EXPECT_EQ(where(r), "ReverseTranslate.organ_classes[1]");
  r = {};
  r.adverse_events = {"torsade de pointes", "spontaneous levitation"};
  EXPECT_EQ(where(r), "ReverseTranslate.adverse_events[1]");
  r = {};
  r.clinical_labels = {"SIDER_LIVER"};
  EXPECT_EQ(where(r), "ReverseTranslate.clinical_labels[0]");
  r = {};
  EXPECT_EQ(where(r), "ReverseTranslate");  // empty signal
  r.clinical_labels = {""};
  EXPECT_EQ(where(r), "ReverseTranslate.clinical_labels[0]");
  for (double fdr : {0.0, -0.1, 1.5, std::numeric_limits<double>::quiet_NaN()}) {
    r = {};
    r.clinical_labels = {"CT_TOX"};
    r.fdr = fdr;
    EXPECT_EQ(where(r), "ReverseTranslate.fdr") << fdr;
  }
  r = {};
  r.clinical_labels = {"CT_TOX"};
  r.fdr = 1.0;  // the upper end is allowed
  EXPECT_TRUE(AnswerReverseTranslate(r, Snapshot()).ok());
}

}  // namespace
}  // namespace fedrx::reverse
