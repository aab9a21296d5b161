// IngestService with a fake clock driving Tick(): a dataset is read only once
// its .ready marker exists, is ingested into <stores>/<name>, and moves with
// its marker to done/ or failed/ beside a report; a bad input leaves the
// store's earlier version intact; a bad name is refused; metrics count it all.
#include "services/ingest_service/ingest_service.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "services/core/metrics.h"
#include "services/core/testing/fake_clock.h"
#include "services/ingest/compounds.h"
#include "services/ingest/dataset_store.h"

namespace fedrx::ingest_service {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

// Aspirin twice (as the acid and as its sodium salt: one compound), ethanol,
// and one unparseable structure.
constexpr char kCsv[] =
    "smiles,active\n"
    "CC(=O)Oc1ccccc1C(=O)O,1\n"
    "CC(=O)Oc1ccccc1C(=O)[O-].[Na+],1\n"
    "CCO,0\n"
    "not_a_smiles(,1\n";

void Write(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

std::string Read(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

nlohmann::json Report(const fs::path& path) {
  return nlohmann::json::parse(Read(path), nullptr, false);
}

class IngestServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    root_ = fs::temp_directory_path() / ("fedrx_ingest_service_" + std::string(info->name()) + "_" +
                                         std::to_string(::getpid()));
    fs::remove_all(root_);
    fs::create_directories(inbox());
    fs::create_directories(stores());
    IngestServiceOptions options;
    options.inbox = inbox().string();
    options.stores = stores().string();
    options.poll_interval = milliseconds(2000);
    options.threads = 1;
    service_ = std::make_unique<IngestService>(options, metrics_, clock_);
    ASSERT_TRUE(service_->Start().ok());
  }
  void TearDown() override {
    service_.reset();
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  fs::path inbox() const { return root_ / "inbox"; }
  fs::path stores() const { return root_ / "stores"; }
  fs::path done() const { return inbox() / kDoneDir; }
  fs::path failed() const { return inbox() / kFailedDir; }

  // One poll period: a scan (which may start an ingest), the ingest run to
  // its end, and the Tick that collects it.
  void Poll() {
    clock_.Advance(milliseconds(2000));
    ASSERT_TRUE(service_->Tick().ok());
    service_->WaitForIngest();
    ASSERT_TRUE(service_->Tick().ok());
    ASSERT_FALSE(service_->busy());
  }

  double Runs(const char* kind, const char* outcome) const {
    return metrics_.Read("fedrx_ingest_runs_total", {{"kind", kind}, {"outcome", outcome}});
  }
  double Records(const char* outcome) const {
    return metrics_.Read("fedrx_ingest_records_total", {{"outcome", outcome}});
  }
  double Pending() const { return metrics_.Read("fedrx_ingest_inbox_pending"); }

  std::uint64_t CurrentVersion(const std::string& name) const {
    auto store = ingest::DatasetStore::Open((stores() / name).string(), false);
    if (!store.ok()) return 0;
    auto current = store->Current();
    return current.ok() && *current ? (*current)->number : 0;
  }

  fs::path root_;
  core::testing::FakeClock clock_;
  core::Metrics metrics_{"ingest"};
  std::unique_ptr<IngestService> service_;
};

TEST(DatasetNameTest, OnlyShortNamesOfLettersDigitsDashAndUnderscore) {
  EXPECT_TRUE(ValidDatasetName("tox21_site-a"));
  EXPECT_TRUE(ValidDatasetName(std::string(64, 'a')));
  EXPECT_FALSE(ValidDatasetName(""));
  EXPECT_FALSE(ValidDatasetName(std::string(65, 'a')));
  EXPECT_FALSE(ValidDatasetName("a b"));
  EXPECT_FALSE(ValidDatasetName("a.b"));
  EXPECT_FALSE(ValidDatasetName(".."));
}

TEST_F(IngestServiceTest, ACsvWithoutItsMarkerIsNotRead) {
  Write(inbox() / "assay.csv", kCsv);
  Poll();
  Poll();
  EXPECT_TRUE(fs::exists(inbox() / "assay.csv"));
  EXPECT_FALSE(fs::exists(stores() / "assay"));
  EXPECT_TRUE(fs::is_empty(done()));
  EXPECT_TRUE(fs::is_empty(failed()));
  EXPECT_EQ(Runs("compounds", "ok"), 0);
  EXPECT_EQ(Pending(), 0);
}

TEST_F(IngestServiceTest, ACsvWithItsMarkerBecomesVersionOneAndMovesToDoneWithAReport) {
  Write(inbox() / "assay.csv", kCsv);
  Write(inbox() / "assay.ready", "");
  clock_.Advance(milliseconds(2000));
  ASSERT_TRUE(service_->Tick().ok());
  EXPECT_TRUE(service_->busy());
  EXPECT_EQ(Pending(), 1);
  service_->WaitForIngest();
  ASSERT_TRUE(service_->Tick().ok());

  EXPECT_EQ(CurrentVersion("assay"), 1u);
  auto loaded = ingest::LoadCurrentCompounds((stores() / "assay").string());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->dataset.size(), 2u);  // aspirin (merged) and ethanol
  EXPECT_FALSE(fs::exists(inbox() / "assay.csv"));
  EXPECT_FALSE(fs::exists(inbox() / "assay.ready"));
  EXPECT_EQ(Read(done() / "assay.csv"), kCsv);
  EXPECT_TRUE(fs::exists(done() / "assay.ready"));
  const nlohmann::json report = Report(done() / "assay.report.json");
  ASSERT_TRUE(report.is_object());
  EXPECT_EQ(report["outcome"], "ok");
  EXPECT_EQ(report["kind"], "compounds");
  EXPECT_EQ(report["version"], 1);
  EXPECT_EQ(report["summary"]["records_read"], 4);
  EXPECT_EQ(report["summary"]["compounds"], 2);
  EXPECT_EQ(report["summary"]["unparseable"], 1);
  EXPECT_EQ(report["summary"]["duplicates_merged"], 1);
  ASSERT_EQ(report["findings"].size(), 1u);
  EXPECT_EQ(report["findings"][0]["record"], 4);
  EXPECT_EQ(report["findings"][0]["code"], ingest::kFindingUnparseable);

  EXPECT_EQ(Runs("compounds", "ok"), 1);
  EXPECT_EQ(Runs("compounds", "failed"), 0);
  EXPECT_EQ(Records("read"), 4);
  EXPECT_EQ(Records("kept"), 2);
  EXPECT_EQ(Records("unparseable"), 1);
  EXPECT_EQ(Records("duplicate_merged"), 1);
  EXPECT_EQ(Records("label_conflict"), 0);

  // The next scan finds nothing left.
  Poll();
  EXPECT_EQ(Pending(), 0);
  EXPECT_EQ(Runs("compounds", "ok"), 1);
}

TEST_F(IngestServiceTest, TheInboxIsScannedOnlyEveryPollInterval) {
  ASSERT_TRUE(service_->Tick().ok());  // the first Tick scans an empty inbox
  Write(inbox() / "assay.csv", kCsv);
  Write(inbox() / "assay.ready", "");
  clock_.Advance(milliseconds(1999));
  ASSERT_TRUE(service_->Tick().ok());
  EXPECT_FALSE(service_->busy());
  clock_.Advance(milliseconds(1));
  ASSERT_TRUE(service_->Tick().ok());
  EXPECT_TRUE(service_->busy());
  service_->WaitForIngest();
  ASSERT_TRUE(service_->Tick().ok());
  EXPECT_EQ(CurrentVersion("assay"), 1u);
}

TEST_F(IngestServiceTest, ABadFileFailsWithAReportAndTheStoresPreviousVersionSurvives) {
  Write(inbox() / "assay.csv", kCsv);
  Write(inbox() / "assay.ready", "");
  Poll();
  ASSERT_EQ(CurrentVersion("assay"), 1u);

  // The same name again, now empty: refused by the reader, nothing committed.
  Write(inbox() / "assay.csv", "");
  Write(inbox() / "assay.ready", "");
  Poll();
  EXPECT_EQ(CurrentVersion("assay"), 1u);
  EXPECT_FALSE(fs::exists(stores() / "assay" / "versions" / "2"));
  auto loaded = ingest::LoadCurrentCompounds((stores() / "assay").string());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->dataset.size(), 2u);
  EXPECT_TRUE(fs::exists(failed() / "assay.csv"));
  EXPECT_TRUE(fs::exists(failed() / "assay.ready"));
  EXPECT_FALSE(fs::exists(inbox() / "assay.csv"));
  nlohmann::json report = Report(failed() / "assay.report.json");
  ASSERT_TRUE(report.is_object());
  EXPECT_EQ(report["outcome"], "failed");
  EXPECT_EQ(report["error"]["code"], "invalid_argument");
  EXPECT_NE(report["error"]["what"].get<std::string>().find("empty"), std::string::npos)
      << report.dump();
  EXPECT_NE(report["error"]["where"].get<std::string>().find("assay.csv"), std::string::npos)
      << report.dump();
  EXPECT_EQ(report["store_unchanged"], true);

  // Not a table at all: binary bytes.
  Write(inbox() / "assay.csv", std::string("\x1f\x8b\x08\x00", 4) + "garbage");
  Write(inbox() / "assay.ready", "");
  Poll();
  EXPECT_EQ(CurrentVersion("assay"), 1u);
  report = Report(failed() / "assay.report.json");
  ASSERT_TRUE(report.is_object());
  EXPECT_EQ(report["outcome"], "failed");
  EXPECT_NE(report["error"]["where"].get<std::string>().find("assay.csv"), std::string::npos);

  EXPECT_EQ(Runs("compounds", "ok"), 1);
  EXPECT_EQ(Runs("compounds", "failed"), 2);
  EXPECT_EQ(metrics_.Read("fedrx_ingest_errors_total",
                          {{"component", "ingest"}, {"reason", "compounds"}}),
            2);
  EXPECT_EQ(Records("read"), 4);  // only the good run got as far as records
}

TEST_F(IngestServiceTest, ASendStudyFolderIsIngested) {
  fs::copy(std::string(FEDRX_SOURCE_DIR) + "/tests/data/ingest/send_pointcross_pc201708",
           inbox() / "pc201708", fs::copy_options::recursive);
  Write(inbox() / "pc201708.ready", "");
  Poll();
  ASSERT_EQ(CurrentVersion("pc201708"), 1u);
  EXPECT_TRUE(fs::exists(stores() / "pc201708" / "versions" / "1" / "descriptor.json"));
  EXPECT_TRUE(fs::is_directory(done() / "pc201708"));
  EXPECT_TRUE(fs::exists(done() / "pc201708" / "dm.xpt"));
  EXPECT_TRUE(fs::exists(done() / "pc201708.ready"));
  EXPECT_FALSE(fs::exists(inbox() / "pc201708"));
  const nlohmann::json report = Report(done() / "pc201708.report.json");
  ASSERT_TRUE(report.is_object());
  EXPECT_EQ(report["outcome"], "ok");
  EXPECT_EQ(report["kind"], "study");
  EXPECT_GT(report["summary"]["subjects"].get<int>(), 0);

  EXPECT_EQ(Runs("study", "ok"), 1);
  const double mapped = metrics_.Read("fedrx_ingest_study_rows_total", {{"outcome", "mapped"}});
  EXPECT_GT(mapped, 0);
  EXPECT_EQ(mapped, report["summary"]["rows_mapped"].get<double>());
  EXPECT_EQ(metrics_.Read("fedrx_ingest_study_rows_total", {{"outcome", "unmapped"}}),
            report["summary"]["rows_unmapped"].get<double>());
  for (const char* severity : {"error", "warning", "notice"}) {
    EXPECT_EQ(metrics_.Read("fedrx_ingest_findings_total", {{"severity", severity}}),
              report["summary"]["conformance"][severity].get<double>())
        << severity;
  }
}

TEST_F(IngestServiceTest, AStudyFolderWithoutDatasetsFailsAndWritesNothing) {
  fs::create_directories(inbox() / "empty_study");
  Write(inbox() / "empty_study" / "notes.txt", "nothing here");
  Write(inbox() / "empty_study.ready", "");
  Poll();
  EXPECT_EQ(CurrentVersion("empty_study"), 0u);
  EXPECT_TRUE(fs::is_directory(failed() / "empty_study"));
  const nlohmann::json report = Report(failed() / "empty_study.report.json");
  ASSERT_TRUE(report.is_object());
  EXPECT_EQ(report["outcome"], "failed");
  EXPECT_EQ(report["kind"], "study");
  EXPECT_EQ(Runs("study", "failed"), 1);
}

TEST_F(IngestServiceTest, ABadNameIsRefusedAndMovedToFailed) {
  Write(inbox() / "bad name.csv", kCsv);
  Write(inbox() / "bad name.ready", "");
  Poll();
  EXPECT_TRUE(fs::is_empty(stores()));
  EXPECT_TRUE(fs::exists(failed() / "bad name.csv"));
  EXPECT_TRUE(fs::exists(failed() / "bad name.ready"));
  EXPECT_FALSE(fs::exists(inbox() / "bad name.ready"));
  const nlohmann::json report = Report(failed() / "bad name.report.json");
  ASSERT_TRUE(report.is_object());
  EXPECT_EQ(report["outcome"], "refused");
  EXPECT_NE(report["error"]["what"].get<std::string>().find("not allowed"), std::string::npos);
  EXPECT_EQ(Runs("compounds", "refused"), 1);
  EXPECT_EQ(Runs("compounds", "ok") + Runs("compounds", "failed"), 0);
  EXPECT_EQ(metrics_.Read("fedrx_ingest_rejected_total", {{"reason", "inbox_protocol"}}), 1);
}

TEST_F(IngestServiceTest, AMarkerWithoutInputOrWithTwoInputsIsRefused) {
  Write(inbox() / "lonely.ready", "");
  Poll();
  EXPECT_TRUE(fs::exists(failed() / "lonely.ready"));
  nlohmann::json report = Report(failed() / "lonely.report.json");
  ASSERT_TRUE(report.is_object());
  EXPECT_NE(report["error"]["what"].get<std::string>().find("without input"), std::string::npos);

  Write(inbox() / "twice.csv", kCsv);
  Write(inbox() / "twice.sdf", "x");
  Write(inbox() / "twice.ready", "");
  Poll();
  EXPECT_TRUE(fs::exists(failed() / "twice.csv"));
  EXPECT_TRUE(fs::exists(failed() / "twice.sdf"));
  report = Report(failed() / "twice.report.json");
  ASSERT_TRUE(report.is_object());
  EXPECT_NE(report["error"]["what"].get<std::string>().find("more than one"), std::string::npos);
  EXPECT_FALSE(fs::exists(stores() / "twice"));
  EXPECT_EQ(Runs("compounds", "refused"), 2);
}

TEST_F(IngestServiceTest, TwoReadyDatasetsAreIngestedOneAtATimeInNameOrder) {
  Write(inbox() / "b.csv", kCsv);
  Write(inbox() / "b.ready", "");
  Write(inbox() / "a.csv", kCsv);
  Write(inbox() / "a.ready", "");
  clock_.Advance(milliseconds(2000));
  ASSERT_TRUE(service_->Tick().ok());
  EXPECT_EQ(Pending(), 2);
  service_->WaitForIngest();
  // Collecting one ingest rescans at once: the next starts without waiting.
  ASSERT_TRUE(service_->Tick().ok());
  EXPECT_EQ(CurrentVersion("a"), 1u);
  EXPECT_EQ(CurrentVersion("b"), 0u);
  EXPECT_TRUE(service_->busy());
  EXPECT_EQ(Pending(), 1);
  service_->WaitForIngest();
  ASSERT_TRUE(service_->Tick().ok());
  EXPECT_EQ(CurrentVersion("b"), 1u);
  EXPECT_EQ(Runs("compounds", "ok"), 2);
}

TEST_F(IngestServiceTest, ReadyOnlyWhileInboxAndStoresAreWritableDirectories) {
  EXPECT_TRUE(service_->CheckReady().ready);
  fs::remove_all(stores());
  const core::Readiness r = service_->CheckReady();
  EXPECT_FALSE(r.ready);
  EXPECT_NE(r.reason.find("stores"), std::string::npos);
}

TEST_F(IngestServiceTest, DrainingStopsTakingNewDatasets) {
  Write(inbox() / "assay.csv", kCsv);
  Write(inbox() / "assay.ready", "");
  service_->BeginDrain();
  Poll();
  EXPECT_TRUE(service_->Drained());
  EXPECT_TRUE(fs::exists(inbox() / "assay.ready"));
  EXPECT_EQ(CurrentVersion("assay"), 0u);
}

}  // namespace
}  // namespace fedrx::ingest_service
