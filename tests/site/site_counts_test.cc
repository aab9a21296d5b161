// The site's side of a pair_counts study: its counts over its store equal
// reverse::CountPairs on the store's own table (InChIKeys and labels as
// ingest wrote them in compounds.csv) and the tables counted by hand; rows of
// one compound are merged (a conflict makes the label missing); over the bus
// the site declares its compounds, sends exactly those counts when granted,
// and refuses a study naming a label it does not hold.
#include "services/site/site_counts.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "services/core/testing/fake_bus.h"
#include "services/core/testing/fake_clock.h"
#include "services/ingest/compounds.h"
#include "services/ingest/dataset_store.h"
#include "services/site/site_main.h"
#include "services/site/site_service.h"

namespace fedrx::site {
namespace {

using std::chrono::milliseconds;

codec::StudySpec CountsSpec() {
  codec::StudySpec s;
  s.study_id = "counts";
  s.statistic = "pair_counts";
  s.statistic_rows = {"CT_TOX", "FDA_APPROVED"};
  s.tasks = {"SR-MMP", "NR-AhR"};
  s.rounds = 1;
  s.min_sites = 1;
  return s;
}

// Ethanol twice (CCO, OCC: ingest merges them), acetic acid without CT_TOX,
// chloropropane without SR-MMP, ethylamine without NR-AhR.
constexpr char kCsv[] =
    "smiles,CT_TOX,FDA_APPROVED,SR-MMP,NR-AhR,split\n"
    "CCO,1,0,1,0,train\n"
    "CCN,1,0,0,,train\n"
    "CCC,0,1,1,1,train\n"
    "CCCC,0,1,0,0,train\n"
    "c1ccccc1,1,0,1,1,valid\n"
    "CCCCl,0,1,,0,test\n"
    "OCC,1,0,1,0,train\n"
    "CC(=O)O,,1,1,0,train\n"
    "c1ccncc1,0,1,0,1,train\n";

std::vector<std::string> Fields(const std::string& line) {
  std::vector<std::string> out;
  std::stringstream in(line);
  std::string f;
  while (std::getline(in, f, ',')) out.push_back(f);
  if (!line.empty() && line.back() == ',') out.push_back("");
  return out;
}

class SiteCountsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("fedrx_site_counts_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    const std::string in = (dir_ / "in.csv").string();
    std::ofstream(in) << kCsv;
    auto src = ingest::ReadCompoundFile(in, {});
    ASSERT_TRUE(src.ok()) << src.status();
    auto p = ingest::PrepareCompounds(*src, ingest::PrepOptions{}, ingest::ConsortiumKey());
    ASSERT_TRUE(p.ok());
    const auto d = ingest::DescribeCompounds(*p, *src, ingest::PrepOptions{});
    auto store = ingest::DatasetStore::Open((dir_ / "store").string(), true);
    ASSERT_TRUE(store.ok());
    auto v = store->Commit(
        [&](const std::string& d_dir) { return ingest::WriteCompoundVersion(d_dir, *p, d); });
    ASSERT_TRUE(v.ok()) << v.status();
    version_dir_ = v->dir;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // The store's table as ingest wrote it: InChIKey and the label columns.
  void TablesFromCompoundsCsv(reverse::LabelTable& clinical, reverse::LabelTable& preclinical) {
    std::ifstream f(version_dir_ + "/" + ingest::kCompoundTableFile);
    std::string line;
    ASSERT_TRUE(std::getline(f, line));
    const std::vector<std::string> header = Fields(line);
    const auto column = [&](const std::string& name) {
      return static_cast<std::size_t>(std::find(header.begin(), header.end(), name) -
                                      header.begin());
    };
    ASSERT_EQ(header[0], "inchikey");
    clinical.names = {"CT_TOX", "FDA_APPROVED"};
    preclinical.names = {"SR-MMP", "NR-AhR"};
    const auto value = [](const std::string& v) -> std::optional<bool> {
      if (v.empty()) return std::nullopt;
      return v == "1";
    };
    while (std::getline(f, line)) {
      const std::vector<std::string> row = Fields(line);
      ASSERT_EQ(row.size(), header.size());
      for (const auto& n : clinical.names) {
        clinical.by_inchikey[row[0]].push_back(value(row.at(column(n))));
      }
      for (const auto& n : preclinical.names) {
        preclinical.by_inchikey[row[0]].push_back(value(row.at(column(n))));
      }
    }
  }

  std::filesystem::path dir_;
  std::string version_dir_;
};

TEST_F(SiteCountsTest, CountsOverTheStoreEqualCountPairsOnItsTableAndByHand) {
  auto loaded = LoadStoreData((dir_ / "store").string());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_EQ(loaded->compounds, 8u);  // ethanol merged
  auto counts = CountStudyPairs(CountsSpec(), loaded->data);
  ASSERT_TRUE(counts.ok()) << counts.status();
  EXPECT_EQ(counts->compounds, 8u);
  EXPECT_EQ(counts->unkeyed, 0u);

  reverse::LabelTable clinical, preclinical;
  TablesFromCompoundsCsv(clinical, preclinical);
  ASSERT_EQ(clinical.by_inchikey.size(), 8u);
  auto expected = reverse::CountPairs(reverse::AllPairs(clinical.names, preclinical.names),
                                      clinical, preclinical);
  ASSERT_TRUE(expected.ok()) << expected.status();
  EXPECT_EQ(counts->counts, *expected);

  // By hand. CT_TOX x SR-MMP: ethanol and benzene (1,1), ethylamine (1,0),
  // propane (0,1), butane and pyridine (0,0); chloropropane and acetic acid
  // miss a label.
  ASSERT_EQ(counts->counts.size(), 4u);
  EXPECT_EQ(counts->counts[0], (reverse::PairCounts{2, 1, 1, 2}));
  // CT_TOX x NR-AhR: benzene a; ethanol b; propane, pyridine c; butane, chloropropane d.
  EXPECT_EQ(counts->counts[1], (reverse::PairCounts{1, 1, 2, 2}));
  // FDA_APPROVED x SR-MMP: propane, acetic acid a; butane, pyridine b;
  // ethanol, benzene c; ethylamine d.
  EXPECT_EQ(counts->counts[2], (reverse::PairCounts{2, 2, 2, 1}));
  // FDA_APPROVED x NR-AhR: propane, pyridine a; butane, chloropropane, acetic
  // acid b; benzene c; ethanol d.
  EXPECT_EQ(counts->counts[3], (reverse::PairCounts{2, 3, 1, 1}));
}

// Rows from a plain CSV are not merged by ingest: the site merges rows of one
// InChIKey itself, and a 0 against a 1 leaves the label missing.
TEST(SiteCountsMergeTest, RowsOfOneCompoundMergeAndConflictsGoMissing) {
  ml::Dataset d;
  d.tasks = {"CT_TOX", "SR-MMP"};
  d.x.dim = 4;
  const std::vector<std::pair<std::string, std::vector<std::int8_t>>> rows = {
      {"CCO", {1, 1}},
      {"OCC", {0, 1}},  // ethanol: CT_TOX conflicts
      {"CCN", {1, ml::kMissing}},
      {"NCC", {ml::kMissing, 0}},  // ethylamine: labels combine
      {"CCC", {0, 0}}};
  for (const auto& [smiles, labels] : rows) {
    d.x.AddRow(std::vector<std::uint32_t>{1});
    d.smiles.push_back(smiles);
    d.scaffolds.push_back("");
    d.split.push_back("train");
    d.y.insert(d.y.end(), labels.begin(), labels.end());
  }
  codec::StudySpec spec = CountsSpec();
  spec.statistic_rows = {"CT_TOX"};
  spec.tasks = {"SR-MMP"};
  LocalData data{d, {}, {}};
  data.valid.tasks = data.test.tasks = d.tasks;
  auto counts = CountStudyPairs(spec, data);
  ASSERT_TRUE(counts.ok()) << counts.status();
  ASSERT_EQ(counts->counts.size(), 1u);
  // ethylamine (1,0) b; propane (0,0) d; ethanol has no CT_TOX.
  EXPECT_EQ(counts->counts[0], (reverse::PairCounts{0, 1, 0, 1}));
  EXPECT_EQ(counts->compounds, 2u);
}

TEST(SiteCountsMergeTest, ALabelTheSiteDoesNotHoldIsNamed) {
  codec::StudySpec spec = CountsSpec();
  spec.tasks = {"SR-MMP", "SR-ARE"};
  const auto s = CheckHeldLabels(spec, {"CT_TOX", "FDA_APPROVED", "SR-MMP", "NR-AhR"});
  EXPECT_EQ(s.code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.where(), "StudySpec.tasks[1]");
  EXPECT_NE(s.message().find("SR-ARE"), std::string::npos);
}

// Over the bus: TrainTask of a counts study -> UpdateReady with the compounds
// counted -> UploadGrant -> the flattened counts, nothing else.
class SiteCountsServiceTest : public SiteCountsTest {
 protected:
  void SetUpPlatform() {
    ASSERT_TRUE(
        platform_
            .Serve("inproc://gateway",
                   [this](core::Inbound&& in) {
                     peer_ = in.peer;
                     if (auto* r = std::get_if<codec::RegisterSite>(&in.message.body)) {
                       core::Reply(platform_, in, codec::SiteRegistered{r->site_id, 1, true})
                           .IgnoreError();
                     } else if (std::holds_alternative<codec::GetStudy>(in.message.body)) {
                       codec::StudyInfo info;
                       info.study = study_;
                       core::Reply(platform_, in, info).IgnoreError();
                     } else if (auto* u = std::get_if<codec::UpdateReady>(&in.message.body)) {
                       ready_.push_back(*u);
                     } else if (auto* m = std::get_if<codec::ModelUpdate>(&in.message.body)) {
                       updates_.push_back(*m);
                       auto w = in.message.tensors.at(0).data.As<float>();
                       sent_.assign(w.begin(), w.end());
                       core::Reply(platform_, in, codec::Ack{"ok"}).IgnoreError();
                     }
                   })
            .ok());
  }

  std::unique_ptr<SiteService> MakeSite(LocalData data) {
    SiteOptions o;
    o.site_id = "hospital-d";
    o.institution = "Hospital D";
    o.gateway_endpoint = "inproc://gateway";
    o.approved_studies = {"counts"};
    o.heartbeat_interval = milliseconds(1000);
    o.train_threads = 1;
    return std::make_unique<SiteService>(o, std::move(data), site_bus_, metrics_, clock_);
  }

  void Push(codec::Message m) {
    m.header.route_to = "hospital-d";
    ASSERT_TRUE(platform_.SendTo(peer_, std::move(m)).ok());
    network_.Pump();
  }

  void Task(std::size_t words) {
    std::vector<codec::Tensor> t;
    t.push_back(codec::Tensor{"weights",
                              codec::DType::kFloat32,
                              {static_cast<std::int64_t>(words)},
                              codec::Blob::FromFloats(std::vector<float>(words, 0.0f))});
    Push(core::MakeMessage(codec::TrainTask{"counts", 1, 0, 1, 1, 0.1f, 7, 0}, std::move(t)));
  }

  codec::StudySpec study_ = CountsSpec();
  core::testing::FakeNetwork network_;
  core::testing::FakeClock clock_;
  core::Metrics metrics_{"site"};
  core::Metrics platform_metrics_{"gateway"};
  core::testing::FakeBus platform_{network_, core::BusOptions{"gateway"}, platform_metrics_,
                                   clock_};
  core::testing::FakeBus site_bus_{network_, core::BusOptions{"hospital-d"}, metrics_, clock_};
  core::PeerId peer_;
  std::vector<codec::UpdateReady> ready_;
  std::vector<codec::ModelUpdate> updates_;
  std::vector<float> sent_;
};

TEST_F(SiteCountsServiceTest, SendsItsFlattenedCountsWhenGranted) {
  SetUpPlatform();
  auto loaded = LoadStoreData((dir_ / "store").string());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  auto expected = CountStudyPairs(study_, loaded->data);
  ASSERT_TRUE(expected.ok());
  auto site = MakeSite(loaded->data);
  ASSERT_TRUE(site->Start().ok());
  network_.Pump();
  Task(16);
  site->WaitForTraining();
  ASSERT_TRUE(site->Tick().ok());
  network_.Pump();
  ASSERT_EQ(ready_.size(), 1u);
  EXPECT_EQ(ready_[0].num_samples, 8u);
  EXPECT_TRUE(updates_.empty());
  Push(core::MakeMessage(codec::UploadGrant{"counts", 1}));
  ASSERT_EQ(updates_.size(), 1u);
  EXPECT_EQ(updates_[0].num_samples, 8u);
  const std::vector<std::uint64_t> flat = reverse::Flatten(expected->counts);
  EXPECT_EQ(sent_, std::vector<float>(flat.begin(), flat.end()));
}

TEST_F(SiteCountsServiceTest, RefusesAStudyNamingALabelItDoesNotHold) {
  study_.tasks = {"SR-MMP", "SR-ARE"};
  SetUpPlatform();
  auto loaded = LoadStoreData((dir_ / "store").string());
  ASSERT_TRUE(loaded.ok());
  auto site = MakeSite(loaded->data);
  ASSERT_TRUE(site->Start().ok());
  network_.Pump();
  Task(16);
  site->WaitForTraining();
  ASSERT_TRUE(site->Tick().ok());
  network_.Pump();
  EXPECT_TRUE(ready_.empty());
  EXPECT_EQ(metrics_.Read("fedrx_site_rejected_total", {{"reason", "missing_labels"}}), 1);
}

}  // namespace
}  // namespace fedrx::site
