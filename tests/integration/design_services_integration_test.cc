// The translational and trial services behind the gateway, with the real
// binaries, a real Redis and real CURVE sockets on loopback: an enrolled
// scientist asks through the gateway with the `fedrx` CLI and gets answers
// with their working (values checked against the FDA 2005 arithmetic and R's
// power.t.test); the MRSD feeds a virtual trial; bad input comes back as an
// error naming the field and is counted in the service's metrics; a service
// the gateway has no endpoint for is refused as unavailable; the services
// admit only the gateway's key.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "tests/support/gateway_stack.h"

namespace fedrx {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

class DesignServicesTest : public testing::GatewayStackTest {
 protected:
  DesignServicesTest()
      : GatewayStackTest({FEDRX_COORDINATOR_BIN, FEDRX_GATEWAY_BIN, FEDRX_CLI_BIN}) {}

  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(StartRedis());
    ASSERT_NO_FATAL_FAILURE(StartCoordinator());
    ASSERT_NO_FATAL_FAILURE(
        StartBackend("translational", FEDRX_TRANSLATIONAL_BIN, {}, translational_));
    ASSERT_NO_FATAL_FAILURE(StartBackend("trial", FEDRX_TRIAL_BIN, {}, trial_));
  }

  json ReadJson(const std::string& path) {
    std::ifstream f(path);
    json j = json::parse(f, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << path;
    return j;
  }

  testing::Backend translational_, trial_;
};

TEST_F(DesignServicesTest, FromNoaelsToAVirtualFirstInHumanTrialThroughTheGateway) {
  ASSERT_NO_FATAL_FAILURE(StartGateway({&translational_, &trial_}));

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
  std::tie(code, out) = Ask({"trial",
                             "virtual",
                             "--model",
                             "oral_1cmt",
                             "--cl",
                             "10",
                             "--v",
                             "50",
                             "--ka",
                             "1",
                             "--bsv-cv",
                             "0.3",
                             "--start-from",
                             dose_json,
                             "--tox-auc50",
                             "40",
                             "--tox-hill",
                             "2",
                             "--response-auc50",
                             "10",
                             "--design",
                             "boin",
                             "--target",
                             "0.3",
                             "--trials",
                             "200",
                             "--population",
                             "500",
                             "--seed",
                             "5",
                             "--json",
                             vt_json});
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
  ASSERT_NO_FATAL_FAILURE(StartGateway({&translational_, &trial_}));
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
  ASSERT_NO_FATAL_FAILURE(StartGateway({&translational_}));
  auto [code, out] = Ask({"trial", "sample-size", "--test", "t_two_sample", "--delta", "1"});
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("gateway.services.trial.endpoint"), std::string::npos) << out;
  EXPECT_EQ(Metric(gateway_http_, "fedrx_gateway_unavailable_total", R"(service="trial")"), 1);
}

}  // namespace
}  // namespace fedrx
