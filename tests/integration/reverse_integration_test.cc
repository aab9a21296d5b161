// Reverse translation end to end, as separate processes on loopback: a real
// Redis, the coordinator, the CURVE gateway, three enrolled clinical sites
// (hospital-d, pharma-e, hospital-f) whose CSVs hold CT_TOX, FDA_APPROVED and
// Tox21 labels, and fedrx-reverse. The pair_counts study with secure
// aggregation completes, and the service, asked through the gateway with the
// `fedrx` CLI, answers with counts equal to the sum of each site's
// reverse::CountPairs over its own compounds (computed here from the same
// CSVs), the counts' provenance, and the organ-class table's endpoints.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "services/ml/chem.h"
#include "services/reverse/association.h"
#include "tests/support/child_process.h"
#include "tests/support/gateway_stack.h"
#include "tests/support/http_client.h"

namespace fedrx {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

constexpr auto kStartTimeout = 20s;
const std::vector<std::string> kSites = {"hospital-d", "hospital-f", "pharma-e"};
const std::vector<std::string> kClinical = {"CT_TOX", "FDA_APPROVED"};
const std::vector<std::string> kTox21 = {"NR-AR",    "NR-AR-LBD", "NR-AhR",        "NR-Aromatase",
                                         "NR-ER",    "NR-ER-LBD", "NR-PPAR-gamma", "SR-ARE",
                                         "SR-ATAD5", "SR-HSE",    "SR-MMP",        "SR-p53"};

// Distinct small molecules: a chain of 1..10 carbons with one of eight ends.
std::vector<std::string> Molecules() {
  const std::vector<std::string> ends = {"O", "N", "Cl", "F", "Br", "C(=O)O", "c1ccccc1", "C#N"};
  std::vector<std::string> out;
  for (int n = 1; n <= 10; ++n) {
    for (const auto& e : ends) out.push_back(std::string(static_cast<std::size_t>(n), 'C') + e);
  }
  return out;
}

// A label for (compound, column): 0, 1 or missing, deterministic, with a
// dependence between CT_TOX and SR-MMP so that one pair carries a signal.
std::optional<bool> Label(std::size_t compound, std::size_t column) {
  const std::uint64_t h = (compound * 2654435761u + column * 40503u) % 97;
  if (h < 12) return std::nullopt;
  if (column == 0 || column == 2 + 10) return (compound % 3) == 0;  // CT_TOX, SR-MMP
  return (h % 4) == 0;
}

struct SiteCsv {
  std::string text;
  reverse::LabelTable clinical, preclinical;
};

// Site s holds the compounds i with i % 3 == s, and site 0 also every
// seventh of the others (a compound two sites hold counts at both).
SiteCsv MakeSite(std::size_t s) {
  SiteCsv out;
  out.clinical.names = kClinical;
  out.preclinical.names = kTox21;
  std::ostringstream csv;
  csv << "smiles";
  for (const auto& c : kClinical) csv << "," << c;
  for (const auto& c : kTox21) csv << "," << c;
  csv << ",split\n";
  const std::vector<std::string> molecules = Molecules();
  std::size_t rows = 0;
  for (std::size_t i = 0; i < molecules.size(); ++i) {
    if (i % 3 != s && !(s == 0 && i % 7 == 0)) continue;
    csv << molecules[i];
    std::vector<std::optional<bool>> clinical, preclinical;
    for (std::size_t c = 0; c < kClinical.size() + kTox21.size(); ++c) {
      const std::optional<bool> v = Label(i, c);
      csv << "," << (v ? (*v ? "1" : "0") : "");
      (c < kClinical.size() ? clinical : preclinical).push_back(v);
    }
    csv << "," << (rows++ % 10 == 9 ? "valid" : "train") << "\n";
    auto key = ml::InChIKeyOfSmiles(molecules[i]);
    EXPECT_TRUE(key.ok()) << molecules[i] << ": " << key.status();
    out.clinical.by_inchikey[*key] = clinical;
    out.preclinical.by_inchikey[*key] = preclinical;
  }
  out.text = csv.str();
  return out;
}

class ReverseIntegrationTest : public testing::GatewayStackTest {
 protected:
  ReverseIntegrationTest()
      : GatewayStackTest({FEDRX_COORDINATOR_BIN, FEDRX_GATEWAY_BIN, FEDRX_CLI_BIN}) {}

  void TearDown() override {
    if (!HasFailure()) return;
    const auto tail = [](const std::string& log) {
      return log.size() > 4000 ? "..." + log.substr(log.size() - 4000) : log;
    };
    if (coordinator_process_) {
      std::cerr << "--- coordinator\n" << tail(coordinator_process_->Log());
    }
    if (gateway_) std::cerr << "--- gateway\n" << tail(gateway_->Log());
    if (reverse_.process) std::cerr << "--- reverse\n" << tail(reverse_.process->Log());
    for (const auto& [id, site] : sites_) std::cerr << "--- " << id << "\n" << tail(site->Log());
  }

  std::unique_ptr<testing::ChildProcess> Spawn(const char* binary,
                                               std::map<std::string, std::string> env) {
    env["FEDRX_RUNNER_DRAIN_TIMEOUT"] = "2s";
    auto child = testing::ChildProcess::Spawn(binary, {}, env);
    EXPECT_TRUE(child.ok()) << child.status();
    return child.ok() ? std::move(*child) : nullptr;
  }

  void StartPlatform() {
    ASSERT_NO_FATAL_FAILURE(StartRedis());
    // Coordinator (plaintext on loopback, as in the federation tests): the
    // gateway reaches it without a server key.
    coordinator_.endpoint = "tcp://127.0.0.1:" + std::to_string(testing::FreeTcpPort());
    const int coordinator_http = testing::FreeTcpPort();
    auto env = RedisEnv();
    env["FEDRX_COORDINATOR_ENDPOINT"] = coordinator_.endpoint;
    env["FEDRX_HTTP_LISTEN"] = "127.0.0.1:" + std::to_string(coordinator_http);
    env["FEDRX_COORDINATOR_SECAGG_STAGE_TIMEOUT"] = "20s";
    coordinator_process_ = Spawn(FEDRX_COORDINATOR_BIN, env);
    ASSERT_TRUE(testing::WaitForHttp200(coordinator_http, "/readyz", kStartTimeout));

    // fedrx-reverse: a CURVE server admitting the gateway, reading Redis.
    ASSERT_NO_FATAL_FAILURE(StartBackend("reverse", FEDRX_REVERSE_BIN,
                                         {{"FEDRX_REVERSE_REDIS", RedisAddress()},
                                          {"FEDRX_REVERSE_COUNTS_STUDY", "reverse-counts"},
                                          {"FEDRX_REVERSE_COUNTS_REFRESH", "200ms"}},
                                         reverse_));
    // The gateway in CURVE mode, with the reverse service behind it; it
    // enrols the scientist.
    ASSERT_NO_FATAL_FAILURE(StartGateway({&reverse_}));

    // Enrol the three sites (the bootstrap goes to Redis).
    for (std::size_t s = 0; s < kSites.size(); ++s) {
      const std::string& id = kSites[s];
      auto [c, o] = Cli({"institutions", "enrol", "--redis", RedisAddress(), "--id", id, "--name",
                         "Institution " + id, "--role", "site", "--key-out", Path(id + ".key")});
      ASSERT_EQ(c, 0) << o;
      site_csv_[id] = MakeSite(s);
      const std::string data = Write(id + ".csv", site_csv_[id].text);
      const int http = testing::FreeTcpPort();
      sites_[id] =
          Spawn(FEDRX_SITE_BIN, {{"FEDRX_SITE_ID", id},
                                 {"FEDRX_SITE_INSTITUTION", "Institution " + id},
                                 {"FEDRX_SITE_GATEWAY", gateway_endpoint_},
                                 {"FEDRX_SITE_APPROVED_STUDIES", "reverse-counts"},
                                 {"FEDRX_SITE_HEARTBEAT_INTERVAL", "200ms"},
                                 {"FEDRX_SITE_DATA", data},
                                 {"FEDRX_SITE_FINGERPRINT_BITS", "256"},
                                 {"FEDRX_SITE_TRAIN_THREADS", "1"},
                                 {"FEDRX_SITE_KEY_FILE", Path(id + ".key")},
                                 {"FEDRX_SITE_GATEWAY_PUBLIC_KEY", gateway_keys_.public_key},
                                 {"FEDRX_HTTP_LISTEN", "127.0.0.1:" + std::to_string(http)}});
      ASSERT_TRUE(testing::WaitForHttp200(http, "/readyz", kStartTimeout)) << id;
    }
  }

  json AskJson(std::vector<std::string> args) {
    const std::string out = Path("answer.json");
    std::remove(out.c_str());
    args.push_back("--json");
    args.push_back(out);
    auto [code, text] = Ask(args);
    EXPECT_EQ(code, 0) << text;
    std::ifstream f(out);
    json j = json::parse(f, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << text;
    return j;
  }

  std::unique_ptr<testing::ChildProcess> coordinator_process_;
  testing::Backend reverse_;
  std::map<std::string, std::unique_ptr<testing::ChildProcess>> sites_;
  std::map<std::string, SiteCsv> site_csv_;
};

TEST_F(ReverseIntegrationTest, SecureCountsStudyFeedsTheServiceThroughTheGateway) {
  ASSERT_NO_FATAL_FAILURE(StartPlatform());

  // Before any counts: the table alone answers, and says so.
  json before = AskJson({"reverse", "translate", "--organ-class", "Hepatobiliary disorders"});
  EXPECT_EQ(before["counts_sites"], 0);
  ASSERT_EQ(before["organ_classes"].size(), 1u);
  EXPECT_EQ(before["organ_classes"][0]["endpoints"][0]["code"], "ALT");

  // The counts study, from the deploy file with these sites' ids (the same).
  std::ifstream study_file(std::string(FEDRX_SOURCE_DIR) + "/deploy/studies/reverse-counts.study");
  std::stringstream study_text;
  study_text << study_file.rdbuf();
  ASSERT_FALSE(study_text.str().empty());
  auto [code, out] = Cli({"--coordinator", coordinator_.endpoint, "study", "create",
                          Write("reverse-counts.study", study_text.str())});
  ASSERT_EQ(code, 0) << out;
  // `study watch` follows the study until it ends: 0 when it completed.
  auto [watch_code, watched] = Cli({"--coordinator", coordinator_.endpoint, "study", "watch",
                                    "reverse-counts", "--interval", "200"});
  ASSERT_EQ(watch_code, 0) << watched;
  EXPECT_NE(watched.find("completed"), std::string::npos) << watched;

  // What the sum must be: each site's CountPairs over its own compounds.
  const std::vector<reverse::PairKey> pairs = reverse::AllPairs(kClinical, kTox21);
  std::vector<std::vector<reverse::PairCounts>> per_site;
  for (const auto& id : kSites) {
    auto c = reverse::CountPairs(pairs, site_csv_[id].clinical, site_csv_[id].preclinical);
    ASSERT_TRUE(c.ok()) << c.status();
    per_site.push_back(*c);
  }
  auto expected = reverse::SumCounts(per_site);
  ASSERT_TRUE(expected.ok());

  // The service re-reads its counts every 200 ms.
  json answer;
  for (int i = 0; i < 50; ++i) {
    answer = AskJson({"reverse", "translate", "--label", "CT_TOX,FDA_APPROVED", "--adverse-event",
                      "torsade de pointes", "--fdr", "0.1"});
    if (answer.value("counts_sites", 0) == 3) break;
    std::this_thread::sleep_for(200ms);
  }
  ASSERT_EQ(answer["counts_sites"], 3) << answer.dump(2);
  EXPECT_EQ(answer["counts_study"], "reverse-counts");
  EXPECT_EQ(answer["counts_version"], 1);
  EXPECT_EQ(answer["counts_secure"], true);
  ASSERT_EQ(answer["label_associations"].size(), pairs.size());
  std::size_t checked = 0;
  for (const json& a : answer["label_associations"]) {
    const reverse::PairKey key{a["clinical_label"], a["assay"]};
    const auto it = std::find(pairs.begin(), pairs.end(), key);
    ASSERT_NE(it, pairs.end()) << a.dump();
    const reverse::PairCounts& want = (*expected)[static_cast<std::size_t>(it - pairs.begin())];
    EXPECT_EQ(a["a"], want.a) << a.dump();
    EXPECT_EQ(a["b"], want.b) << a.dump();
    EXPECT_EQ(a["c"], want.c) << a.dump();
    EXPECT_EQ(a["d"], want.d) << a.dump();
    ++checked;
  }
  EXPECT_EQ(checked, 24u);
  // CT_TOX and SR-MMP were made to agree: the strongest CT_TOX association.
  EXPECT_EQ(answer["label_associations"][0]["assay"], "SR-MMP");
  EXPECT_EQ(answer["label_associations"][0]["significant"], true);
  ASSERT_EQ(answer["organ_classes"].size(), 1u);
  EXPECT_EQ(answer["organ_classes"][0]["organ_class"], "Cardiac disorders");

  // Bad input comes back naming the entry.
  auto [bad_code, bad] = Ask({"reverse", "translate", "--organ-class", "Liver stuff"});
  EXPECT_NE(bad_code, 0);
  EXPECT_NE(bad.find("organ_classes[0]"), std::string::npos) << bad;
  auto [fdr_code, fdr] = Ask({"reverse", "translate", "--label", "CT_TOX", "--fdr", "1.5"});
  EXPECT_NE(fdr_code, 0);
  EXPECT_NE(fdr.find("ReverseTranslate.fdr"), std::string::npos) << fdr;

  auto metrics = testing::HttpGet(reverse_.http, "/metrics");
  ASSERT_TRUE(metrics.ok());
  EXPECT_EQ(testing::MetricValue(metrics->body, "fedrx_reverse_counts_version", ""), 1);
  EXPECT_GE(testing::MetricValue(metrics->body, "fedrx_reverse_signals_total",
                                 R"(kind="clinical_label")"),
            2);
}

}  // namespace
}  // namespace fedrx
