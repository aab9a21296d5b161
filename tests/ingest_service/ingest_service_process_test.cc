// The real fedrx-ingest binary on loopback: it becomes ready, ingests a CSV
// dropped with its marker into its store, moves both to done/ with a report,
// counts the run on /metrics, and exits cleanly on SIGTERM.
#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <thread>

#include "tests/support/child_process.h"
#include "tests/support/http_client.h"

namespace fedrx::ingest_service {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

TEST(IngestProcessTest, DropFileAndMarkerThenDoneAndMetrics) {
  testing::TempDir tmp;
  ASSERT_FALSE(tmp.path().empty());
  const fs::path inbox = fs::path(tmp.path()) / "inbox";
  const fs::path stores = fs::path(tmp.path()) / "stores";
  fs::create_directories(inbox);
  fs::create_directories(stores);
  const int port = testing::FreeTcpPort();
  ASSERT_NE(port, 0);
  auto child =
      testing::ChildProcess::Spawn(FEDRX_INGEST_BIN, {},
                                   {{"FEDRX_INGEST_INBOX", inbox.string()},
                                    {"FEDRX_INGEST_STORES", stores.string()},
                                    {"FEDRX_INGEST_POLL_INTERVAL", "100ms"},
                                    {"FEDRX_INGEST_THREADS", "1"},
                                    {"FEDRX_RUNNER_DRAIN_TIMEOUT", "2s"},
                                    {"FEDRX_HTTP_LISTEN", "127.0.0.1:" + std::to_string(port)}});
  ASSERT_TRUE(child.ok()) << child.status();
  auto& process = **child;
  ASSERT_TRUE(testing::WaitForHttp200(port, "/readyz", milliseconds(5000))) << process.Log();

  { std::ofstream(inbox / "assay.csv") << "smiles,active\nCCO,0\nCC(=O)Oc1ccccc1C(=O)O,1\n"; }
  { std::ofstream(inbox / "assay.ready") << ""; }
  const fs::path report = inbox / "done" / "assay.report.json";
  for (int i = 0; i < 80 && !fs::exists(report); ++i) {
    std::this_thread::sleep_for(milliseconds(50));
  }
  ASSERT_TRUE(fs::exists(report)) << process.Log();
  // The marker moves last.
  for (int i = 0; i < 40 && !fs::exists(inbox / "done" / "assay.ready"); ++i) {
    std::this_thread::sleep_for(milliseconds(50));
  }
  EXPECT_TRUE(fs::exists(inbox / "done" / "assay.csv"));
  EXPECT_TRUE(fs::exists(inbox / "done" / "assay.ready"));
  EXPECT_TRUE(fs::exists(stores / "assay" / "versions" / "1" / "compounds.csv"));

  auto metrics = testing::HttpGet(port, "/metrics");
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  ASSERT_EQ(metrics->status, 200);
  EXPECT_EQ(testing::MetricValue(metrics->body, "fedrx_ingest_runs_total",
                                 R"(kind="compounds",outcome="ok")"),
            1)
      << metrics->body;
  EXPECT_EQ(testing::MetricValue(metrics->body, "fedrx_ingest_records_total", R"(outcome="kept")"),
            2);
  EXPECT_EQ(testing::MetricValue(metrics->body, "fedrx_ingest_inbox_pending"), 0);

  ASSERT_TRUE(process.Signal(SIGTERM).ok());
  auto code = process.Wait(milliseconds(5000));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0) << process.Log();
}

}  // namespace
}  // namespace fedrx::ingest_service
