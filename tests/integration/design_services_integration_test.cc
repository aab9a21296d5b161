// The translational and trial services behind the gateway, with the real
// binaries, a real Redis and real CURVE sockets on loopback: an enrolled
// scientist asks through the gateway with the `fedrx` CLI and gets answers
// with their working (values checked against the FDA 2005 arithmetic and R's
// power.t.test); the MRSD feeds a virtual trial; bad input comes back as an
// error naming the field and is counted in the service's metrics; a service
// the gateway has no endpoint for is refused as unavailable; the services
// admit only the gateway's key.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <tuple>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "services/core/curve_keys.h"
#include "tests/support/child_process.h"
#include "tests/support/http_client.h"
#include "tests/support/redis_server.h"

namespace fedrx {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

constexpr auto kStartTimeout = 20s;

core::CurveKeyPair NewKeyPair() {
  auto pair = core::GenerateCurveKeyPair();
  EXPECT_TRUE(pair.ok()) << pair.status();
  return pair.ok() ? *pair : core::CurveKeyPair{};
}

struct Service {
  std::unique_ptr<testing::ChildProcess> process;
  std::string endpoint;
  int http = 0;
  core::CurveKeyPair keys;
  std::string public_file;
};

class DesignServicesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    auto redis = testing::RedisServer::Start();
    ASSERT_TRUE(redis.ok()) << redis.status();
    redis_ = std::move(*redis);
    gateway_keys_ = NewKeyPair();
    clients_file_ = Write("clients", "gateway-1 gateway " + gateway_keys_.public_key + "\n");
    ASSERT_NO_FATAL_FAILURE(StartBackend("coordinator", FEDRX_COORDINATOR_BIN, coordinator_));
    ASSERT_NO_FATAL_FAILURE(StartBackend("translational", FEDRX_TRANSLATIONAL_BIN, translational_));
    ASSERT_NO_FATAL_FAILURE(StartBackend("trial", FEDRX_TRIAL_BIN, trial_));
  }

  void TearDown() override {
    if (!HasFailure()) return;
    for (auto* s : {&coordinator_, &translational_, &trial_}) {
      if (s->process != nullptr) std::cerr << "--- backend\n" << s->process->Log();
    }
    if (gateway_ != nullptr) std::cerr << "--- gateway\n" << gateway_->Log();
  }

  std::string Path(const std::string& name) const { return dir_.path() + "/" + name; }

  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = Path(name);
    std::ofstream(path) << text;
    EXPECT_EQ(::chmod(path.c_str(), 0644), 0);
    return path;
  }

  std::map<std::string, std::string> RedisEnv() const {
    return {{"FEDRX_REDIS_HOST", "127.0.0.1"},
            {"FEDRX_REDIS_PORT", std::to_string(redis_->port())},
            {"FEDRX_REDIS_STARTUP_WAIT", "5s"},
            {"FEDRX_RUNNER_DRAIN_TIMEOUT", "2s"}};
  }

  // A platform service in CURVE mode admitting only the gateway's key.
  void StartBackend(const std::string& name, const char* binary, Service& s) {
    s.endpoint = "tcp://127.0.0.1:" + std::to_string(testing::FreeTcpPort());
    s.http = testing::FreeTcpPort();
    s.keys = NewKeyPair();
    const std::string key_file = Path(name + ".key");
    ASSERT_TRUE(core::WriteCurveKeyPair(key_file, s.keys).ok());
    s.public_file = Path(name + ".pub");
    ASSERT_TRUE(core::WriteCurvePublicKey(s.public_file, s.keys.public_key).ok());
    std::string upper = name;
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    std::map<std::string, std::string> env = RedisEnv();
    env["FEDRX_" + upper + "_ENDPOINT"] = s.endpoint;
    env["FEDRX_" + upper + "_CURVE_KEY_FILE"] = key_file;
    env["FEDRX_" + upper + "_CLIENTS_FILE"] = clients_file_;
    env["FEDRX_HTTP_LISTEN"] = "127.0.0.1:" + std::to_string(s.http);
    auto child = testing::ChildProcess::Spawn(binary, {}, env);
    ASSERT_TRUE(child.ok()) << child.status();
    s.process = std::move(*child);
    ASSERT_TRUE(testing::WaitForHttp200(s.http, "/readyz", kStartTimeout))
        << name << " never became ready: " << s.process->Log();
  }

  // The gateway, with the domain services named in `services`.
  void StartGateway(const std::vector<std::string>& services) {
    const std::string key_file = Path("gateway.key");
    ASSERT_TRUE(core::WriteCurveKeyPair(key_file, gateway_keys_).ok());
    gateway_public_file_ = Path("gateway.pub");
    ASSERT_TRUE(core::WriteCurvePublicKey(gateway_public_file_, gateway_keys_.public_key).ok());
    gateway_endpoint_ = "tcp://127.0.0.1:" + std::to_string(testing::FreeTcpPort());
    gateway_http_ = testing::FreeTcpPort();
    std::map<std::string, std::string> env = RedisEnv();
    env["FEDRX_GATEWAY_SITES_ENDPOINT"] = gateway_endpoint_;
    env["FEDRX_GATEWAY_COORDINATOR_ENDPOINT"] = coordinator_.endpoint;
    env["FEDRX_GATEWAY_CURVE_KEY_FILE"] = key_file;
    env["FEDRX_GATEWAY_COORDINATOR_PUBLIC_KEY_FILE"] = coordinator_.public_file;
    env["FEDRX_HTTP_LISTEN"] = "127.0.0.1:" + std::to_string(gateway_http_);
    for (const std::string& name : services) {
      const Service& s = name == "translational" ? translational_ : trial_;
      std::string upper = name;
      for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      env["FEDRX_GATEWAY_SERVICES_" + upper + "_ENDPOINT"] = s.endpoint;
      env["FEDRX_GATEWAY_SERVICES_" + upper + "_PUBLIC_KEY_FILE"] = s.public_file;
    }
    auto child = testing::ChildProcess::Spawn(FEDRX_GATEWAY_BIN, {}, env);
    ASSERT_TRUE(child.ok()) << child.status();
    gateway_ = std::move(*child);
    ASSERT_TRUE(testing::WaitForHttp200(gateway_http_, "/readyz", kStartTimeout))
        << "the gateway never became ready: " << gateway_->Log();
    // The first enrolled institution goes to Redis directly (the bootstrap).
    scientist_key_ = Path("scientist.key");
    auto [code, out] = Cli({"institutions", "enrol", "--redis",
                            "127.0.0.1:" + std::to_string(redis_->port()), "--id", "scientist-1",
                            "--name", "Dr S", "--role", "scientist", "--key-out", scientist_key_});
    ASSERT_EQ(code, 0) << out;
  }

  std::pair<int, std::string> Cli(const std::vector<std::string>& args) {
    auto child = testing::ChildProcess::Spawn(FEDRX_CLI_BIN, args);
    EXPECT_TRUE(child.ok()) << child.status();
    if (!child.ok()) return {-1, ""};
    auto code = (*child)->Wait(60s);
    EXPECT_TRUE(code.ok()) << "the CLI did not exit: " << (*child)->Log();
    return {code.ok() ? *code : -1, (*child)->Log()};
  }

  std::pair<int, std::string> Ask(std::vector<std::string> args) {
    args.insert(args.begin(), {"--gateway", gateway_endpoint_, "--key-file", scientist_key_,
                               "--server-key-file", gateway_public_file_});
    return Cli(args);
  }

  json ReadJson(const std::string& path) {
    std::ifstream f(path);
    json j = json::parse(f, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << path;
    return j;
  }

  double Metric(int port, const std::string& name, const std::string& labels) {
    auto r = testing::HttpGet(port, "/metrics");
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? testing::MetricValue(r->body, name, labels) : -1;
  }

  testing::TempDir dir_;
  std::unique_ptr<testing::RedisServer> redis_;
  core::CurveKeyPair gateway_keys_;
  std::string clients_file_;
  Service coordinator_, translational_, trial_;
  std::unique_ptr<testing::ChildProcess> gateway_;
  std::string gateway_endpoint_, gateway_public_file_, scientist_key_;
  int gateway_http_ = 0;
};

TEST_F(DesignServicesTest, FromNoaelsToAVirtualFirstInHumanTrialThroughTheGateway) {
  ASSERT_NO_FATAL_FAILURE(StartGateway({"translational", "trial"}));

  // FDA 2005 Table 1: rat Km 6, dog Km 20, adult Km 37. HED rat = 50 x 6/37
  // = 8.108, dog = 10 x 20/37 = 5.405 mg/kg: the dog is the most sensitive;
  // MRSD = 5.405/10 = 0.5405 mg/kg = 32.43 mg for 60 kg.
  const std::string dose_json = Path("dose.json");
  auto [code, out] = Ask({"dose", "translate", "--noael", "rat=50,dog=10", "--json", dose_json});
  ASSERT_EQ(code, 0) << out;
  EXPECT_NE(out.find("working:"), std::string::npos) << out;
  const json dose = ReadJson(dose_json);
  EXPECT_EQ(dose["chosen_species"], "dog");
  EXPECT_NEAR(dose["hed_mg_per_kg"].get<double>(), 10.0 * 20 / 37, 1e-9);
  EXPECT_NEAR(dose["mrsd_mg_per_kg"].get<double>(), 10.0 * 20 / 37 / 10, 1e-9);
  EXPECT_NEAR(dose["mrsd_mg"].get<double>(), 10.0 * 20 / 37 / 10 * 60, 1e-9);
  EXPECT_FALSE(dose["working"]["steps"].empty());

  // Two-sample t, delta 0.5 SD, alpha 0.05 two-sided, power 0.8: R's
  // power.t.test(delta = 0.5, sd = 1, power = 0.8, strict = TRUE) gives
  // n = 63.76561 (both tails of the noncentral t).
  const std::string n_json = Path("n.json");
  std::tie(code, out) = Ask({"trial", "sample-size", "--test", "t_two_sample", "--delta", "0.5",
                             "--sd", "1", "--json", n_json});
  ASSERT_EQ(code, 0) << out;
  EXPECT_NEAR(ReadJson(n_json)["n"].get<double>(), 63.76561, 1e-4);
  EXPECT_EQ(ReadJson(n_json)["n_per_group"].get<int>(), 64);

  // BOIN operating characteristics: every trial selects one dose or stops early.
  const std::string oc_json = Path("oc.json");
  std::tie(code, out) =
      Ask({"trial", "escalate", "--design", "boin", "--tox", "0.05,0.12,0.3,0.45,0.6", "--target",
           "0.3", "--trials", "400", "--seed", "11", "--json", oc_json});
  ASSERT_EQ(code, 0) << out;
  const json oc = ReadJson(oc_json);
  double selected = oc["early_stop_pct"].get<double>();
  for (const auto& p : oc["selection_pct"]) selected += p.get<double>();
  EXPECT_NEAR(selected, 100.0, 1e-6);
  EXPECT_NEAR(oc["lambda_e"].get<double>(), 0.2364, 1e-4);
  EXPECT_NEAR(oc["lambda_d"].get<double>(), 0.3585, 1e-4);

  // The virtual trial starts at the MRSD the translational service computed.
  const std::string vt_json = Path("vt.json");
  std::tie(code, out) = Ask({"trial", "virtual", "--model", "oral_1cmt", "--cl", "10", "--v", "50",
                             "--ka", "1", "--bsv-cv", "0.3", "--start-from", dose_json,
                             "--tox-auc50", "40", "--tox-hill", "2", "--response-auc50", "10",
                             "--design", "boin", "--target", "0.3", "--trials", "200",
                             "--population", "500", "--seed", "5", "--json", vt_json});
  ASSERT_EQ(code, 0) << out;
  const json vt = ReadJson(vt_json);
  ASSERT_FALSE(vt["dose_mg"].empty());
  EXPECT_NEAR(vt["dose_mg"][0].get<double>(), dose["mrsd_mg"].get<double>(), 1e-9);
  // Exposure and toxicity rise with dose.
  EXPECT_LT(vt["auc_median"][0].get<double>(), vt["auc_median"].back().get<double>());
  EXPECT_LT(vt["p_dlt"][0].get<double>(), vt["p_dlt"].back().get<double>());

  EXPECT_EQ(Metric(translational_.http, "fedrx_translational_requests_total",
                   R"(code="ok",type="TranslateDose")"),
            1);
  EXPECT_EQ(Metric(gateway_http_, "fedrx_gateway_forwarded_total", R"(direction="to_trial")"), 3);
}

TEST_F(DesignServicesTest, BadInputIsAnErrorNamingTheFieldAndIsCounted) {
  ASSERT_NO_FATAL_FAILURE(StartGateway({"translational", "trial"}));
  auto [code, out] = Ask({"dose", "translate", "--noael", "rat=-5"});
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("noael_mg_per_kg"), std::string::npos) << out;

  std::tie(code, out) = Ask({"dose", "translate", "--noael", "unicorn=5"});
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("unicorn"), std::string::npos) << out;

  std::tie(code, out) =
      Ask({"trial", "escalate", "--design", "boin", "--tox", "0.1,1.4,0.3", "--trials", "10"});
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("true_tox"), std::string::npos) << out;

  std::tie(code, out) =
      Ask({"trial", "escalate", "--design", "boin", "--tox", "0.1,0.4,0.3", "--trials", "10"});
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("true_tox"), std::string::npos) << out;

  EXPECT_EQ(Metric(translational_.http, "fedrx_translational_requests_total",
                   R"(code="invalid_argument",type="TranslateDose")"),
            2);
  EXPECT_EQ(Metric(trial_.http, "fedrx_trial_requests_total",
                   R"(code="invalid_argument",type="SimulateEscalation")"),
            2);
  // The services are still up and answering.
  std::tie(code, out) = Ask({"dose", "translate", "--noael", "rat=50"});
  EXPECT_EQ(code, 0) << out;
}

TEST_F(DesignServicesTest, AServiceTheGatewayHasNoEndpointForIsUnavailable) {
  ASSERT_NO_FATAL_FAILURE(StartGateway({"translational"}));
  auto [code, out] = Ask({"trial", "sample-size", "--test", "t_two_sample", "--delta", "1"});
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("gateway.services.trial.endpoint"), std::string::npos) << out;
  EXPECT_EQ(Metric(gateway_http_, "fedrx_gateway_unavailable_total", R"(service="trial")"), 1);
}

}  // namespace
}  // namespace fedrx
