// CurveZMQ between the platform's own services, with the real binaries, a
// real Redis and real sockets on loopback: a coordinator in CURVE mode serves
// only the keys of its authorised clients file (a plaintext client and an
// unknown key get nothing through), believes the envelope's origin only from a
// "gateway" identity, refuses to start on half a CURVE configuration or a bad
// clients file; a gateway reaches it with its own key and the coordinator's
// public key file.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "services/core/bus.h"
#include "services/core/clock.h"
#include "services/core/curve_keys.h"
#include "services/core/metrics.h"
#include "services/core/zmq_bus.h"
#include "tests/support/child_process.h"
#include "tests/support/http_client.h"
#include "tests/support/redis_server.h"

namespace fedrx {
namespace {

using namespace std::chrono_literals;
using core::StatusCode;

constexpr auto kStartTimeout = 20s;
// Long enough for a CURVE handshake on loopback many times over; a refused
// handshake looks like silence, so a refused request ends with this deadline.
constexpr auto kRefusedAfter = 1500ms;

core::CurveKeyPair NewKeyPair() {
  auto pair = core::GenerateCurveKeyPair();
  EXPECT_TRUE(pair.ok()) << pair.status();
  return pair.ok() ? *pair : core::CurveKeyPair{};
}

class InternalCurveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    auto redis = testing::RedisServer::Start();
    ASSERT_TRUE(redis.ok()) << redis.status();
    redis_ = std::move(*redis);
    coordinator_endpoint_ = "tcp://127.0.0.1:" + std::to_string(testing::FreeTcpPort());
    coordinator_http_ = testing::FreeTcpPort();
    coordinator_keys_ = NewKeyPair();
    gateway_keys_ = NewKeyPair();
    console_keys_ = NewKeyPair();
    coordinator_key_file_ = Path("coordinator.key");
    ASSERT_TRUE(core::WriteCurveKeyPair(coordinator_key_file_, coordinator_keys_).ok());
    clients_file_ = Write("clients",
                          "# who may reach the coordinator\n"
                          "gateway-1 gateway " +
                              gateway_keys_.public_key + "\nops-console admin " +
                              console_keys_.public_key + "\n");
  }

  void TearDown() override {
    if (HasFailure()) {
      if (coordinator_ != nullptr) std::cerr << "--- coordinator\n" << coordinator_->Log();
      if (gateway_ != nullptr) std::cerr << "--- gateway\n" << gateway_->Log();
    }
  }

  std::string Path(const std::string& name) const { return dir_.path() + "/" + name; }

  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = Path(name);
    std::ofstream(path) << text;
    EXPECT_EQ(::chmod(path.c_str(), 0644), 0);
    return path;
  }

  std::map<std::string, std::string> CoordinatorEnv() const {
    return {{"FEDRX_COORDINATOR_ENDPOINT", coordinator_endpoint_},
            {"FEDRX_HTTP_LISTEN", "127.0.0.1:" + std::to_string(coordinator_http_)},
            {"FEDRX_REDIS_HOST", "127.0.0.1"},
            {"FEDRX_REDIS_PORT", std::to_string(redis_->port())},
            {"FEDRX_REDIS_STARTUP_WAIT", "5s"},
            {"FEDRX_RUNNER_DRAIN_TIMEOUT", "2s"},
            {"FEDRX_COORDINATOR_CURVE_KEY_FILE", coordinator_key_file_},
            {"FEDRX_COORDINATOR_CLIENTS_FILE", clients_file_}};
  }

  void StartCoordinator() {
    auto child = testing::ChildProcess::Spawn(FEDRX_COORDINATOR_BIN, {}, CoordinatorEnv());
    ASSERT_TRUE(child.ok()) << child.status();
    coordinator_ = std::move(*child);
    ASSERT_TRUE(testing::WaitForHttp200(coordinator_http_, "/readyz", kStartTimeout))
        << "coordinator never became ready";
  }

  // Runs the coordinator with `env` changes until it exits; its exit code and log.
  std::pair<int, std::string> CoordinatorExit(std::map<std::string, std::string> changes) {
    std::map<std::string, std::string> env = CoordinatorEnv();
    for (auto& [k, v] : changes) {
      if (v.empty()) {
        env.erase(k);
      } else {
        env[k] = v;
      }
    }
    auto child = testing::ChildProcess::Spawn(FEDRX_COORDINATOR_BIN, {}, env);
    EXPECT_TRUE(child.ok()) << child.status();
    if (!child.ok()) return {-1, ""};
    auto code = (*child)->Wait(10s);
    EXPECT_TRUE(code.ok()) << "the coordinator did not exit: " << (*child)->Log();
    return {code.ok() ? *code : -1, (*child)->Log()};
  }

  // A client bus: plaintext without `own`, else a CURVE client trusting `server_key`.
  std::unique_ptr<core::ZmqBus> Client(const std::string& name, const core::CurveKeyPair* own,
                                       const std::string& server_key) {
    core::BusOptions o;
    o.name = name;
    o.reconnect_interval = 20ms;
    o.reconnect_interval_max = 200ms;
    if (own != nullptr) {
      o.curve_public_key = own->public_key;
      o.curve_secret_key = own->secret_key;
      o.curve_server_key = server_key;
    }
    return std::make_unique<core::ZmqBus>(o, client_metrics_, clock_);
  }

  core::Result<codec::Message> Ask(core::Bus& bus, codec::Message message,
                                   std::chrono::milliseconds timeout = 5s) {
    auto ch = bus.Connect(coordinator_endpoint_, [](codec::Message&&) {});
    if (!ch.ok()) return ch.status();
    return core::Call(bus, *ch, std::move(message), timeout);
  }

  // A CURVE gateway connected to the CURVE coordinator with its own key pair.
  void StartGateway(std::map<std::string, std::string> extra_env = {}) {
    gateway_key_file_ = Path("gateway.key");
    ASSERT_TRUE(core::WriteCurveKeyPair(gateway_key_file_, gateway_keys_).ok());
    gateway_public_file_ = Path("gateway.pub");
    ASSERT_TRUE(core::WriteCurvePublicKey(gateway_public_file_, gateway_keys_.public_key).ok());
    const std::string coordinator_pub = Path("coordinator.pub");
    ASSERT_TRUE(core::WriteCurvePublicKey(coordinator_pub, coordinator_keys_.public_key).ok());
    gateway_endpoint_ = "tcp://127.0.0.1:" + std::to_string(testing::FreeTcpPort());
    gateway_http_ = testing::FreeTcpPort();
    std::map<std::string, std::string> env = {
        {"FEDRX_GATEWAY_SITES_ENDPOINT", gateway_endpoint_},
        {"FEDRX_GATEWAY_COORDINATOR_ENDPOINT", coordinator_endpoint_},
        {"FEDRX_GATEWAY_CURVE_KEY_FILE", gateway_key_file_},
        {"FEDRX_GATEWAY_COORDINATOR_PUBLIC_KEY_FILE", coordinator_pub},
        {"FEDRX_HTTP_LISTEN", "127.0.0.1:" + std::to_string(gateway_http_)},
        {"FEDRX_REDIS_HOST", "127.0.0.1"},
        {"FEDRX_REDIS_PORT", std::to_string(redis_->port())},
        {"FEDRX_REDIS_STARTUP_WAIT", "5s"},
        {"FEDRX_RUNNER_DRAIN_TIMEOUT", "2s"}};
    for (auto& [k, v] : extra_env) env[k] = v;
    auto child = testing::ChildProcess::Spawn(FEDRX_GATEWAY_BIN, {}, env);
    ASSERT_TRUE(child.ok()) << child.status();
    gateway_ = std::move(*child);
    // Ready only once its health probe to the coordinator is answered.
    ASSERT_TRUE(testing::WaitForHttp200(gateway_http_, "/readyz", kStartTimeout))
        << "the gateway never reached the coordinator";
  }

  // Runs the CLI to completion; its exit code and what it printed.
  std::pair<int, std::string> Cli(const std::vector<std::string>& args) {
    auto child = testing::ChildProcess::Spawn(FEDRX_CLI_BIN, args);
    EXPECT_TRUE(child.ok()) << child.status();
    if (!child.ok()) return {-1, ""};
    auto code = (*child)->Wait(20s);
    EXPECT_TRUE(code.ok()) << "the CLI did not exit: " << (*child)->Log();
    return {code.ok() ? *code : -1, (*child)->Log()};
  }

  // The CLI through the gateway as the holder of `key_file`.
  std::pair<int, std::string> CliAs(const std::string& key_file, std::vector<std::string> args) {
    args.insert(args.begin(), {"--gateway", gateway_endpoint_, "--key-file", key_file,
                               "--server-key-file", gateway_public_file_, "--timeout", "3000"});
    return Cli(args);
  }

  double CoordinatorMetric(const std::string& name, const std::string& labels = "") {
    auto r = testing::HttpGet(coordinator_http_, "/metrics");
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? testing::MetricValue(r->body, name, labels) : -1;
  }

  fedrx::testing::TempDir dir_;
  std::unique_ptr<testing::RedisServer> redis_;
  std::unique_ptr<testing::ChildProcess> coordinator_;
  std::unique_ptr<testing::ChildProcess> gateway_;
  std::string coordinator_endpoint_;
  int coordinator_http_ = 0;
  core::CurveKeyPair coordinator_keys_, gateway_keys_, console_keys_;
  std::string coordinator_key_file_, clients_file_;
  std::string gateway_endpoint_, gateway_key_file_, gateway_public_file_;
  int gateway_http_ = 0;
  core::SystemClock clock_;
  core::Metrics client_metrics_{"test"};
};

TEST_F(InternalCurveTest, OnlyAuthorisedKeysReachACurveCoordinator) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());

  auto plaintext = Client("plaintext", nullptr, "");
  auto refused = Ask(*plaintext, core::MakeMessage(codec::HealthCheck{}), kRefusedAfter);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kDeadlineExceeded) << refused.status();

  const core::CurveKeyPair stranger_keys = NewKeyPair();
  auto stranger = Client("stranger", &stranger_keys, coordinator_keys_.public_key);
  auto denied = Ask(*stranger, core::MakeMessage(codec::HealthCheck{}), kRefusedAfter);
  ASSERT_FALSE(denied.ok());
  EXPECT_EQ(denied.status().code(), StatusCode::kDeadlineExceeded) << denied.status();
  EXPECT_GE(CoordinatorMetric("fedrx_coordinator_authentications_total", R"(result="denied")"), 1);

  auto gateway = Client("gateway", &gateway_keys_, coordinator_keys_.public_key);
  auto health = Ask(*gateway, core::MakeMessage(codec::HealthCheck{}));
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(std::get<codec::HealthStatus>(health->body).service, "coordinator");
  EXPECT_TRUE(std::get<codec::HealthStatus>(health->body).ready);
  EXPECT_GE(CoordinatorMetric("fedrx_coordinator_authentications_total", R"(result="ok")"), 1);

  // Nothing the refused clients sent was handled.
  EXPECT_EQ(
      CoordinatorMetric("fedrx_coordinator_requests_total", R"(code="ok",type="HealthCheck")"), 1);
}

TEST_F(InternalCurveTest, OnlyTheGatewayIdentityMaySpeakForASite) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  const auto update = [] {
    codec::Message m =
        core::MakeMessage(codec::ModelUpdate{"no-such-study", 1, "site-a", 0, 10, {}});
    m.header.origin = "site-a";
    return m;
  };

  // An authorised console is not a gateway: its origin is ignored.
  auto console = Client("console", &console_keys_, coordinator_keys_.public_key);
  auto posed = Ask(*console, update());
  ASSERT_FALSE(posed.ok());
  EXPECT_EQ(posed.status().code(), StatusCode::kPermissionDenied) << posed.status();
  EXPECT_EQ(posed.status().where(), "envelope.origin");
  EXPECT_EQ(CoordinatorMetric("fedrx_coordinator_origin_ignored_total"), 1);

  // The gateway's origin is believed: the update gets as far as its study.
  auto gateway = Client("gateway", &gateway_keys_, coordinator_keys_.public_key);
  auto forwarded = Ask(*gateway, update());
  ASSERT_FALSE(forwarded.ok());
  EXPECT_EQ(forwarded.status().code(), StatusCode::kNotFound) << forwarded.status();
  EXPECT_EQ(forwarded.status().where(), "study_id");
  EXPECT_EQ(CoordinatorMetric("fedrx_coordinator_origin_ignored_total"), 1);
}

TEST_F(InternalCurveTest, HalfACurveConfigurationOrABadClientsFileStopsStartup) {
  auto [no_clients, log1] = CoordinatorExit({{"FEDRX_COORDINATOR_CLIENTS_FILE", ""}});
  EXPECT_EQ(no_clients, 1);
  EXPECT_NE(log1.find("coordinator.clients_file"), std::string::npos) << log1;

  auto [no_keys, log2] = CoordinatorExit({{"FEDRX_COORDINATOR_CURVE_KEY_FILE", ""}});
  EXPECT_EQ(no_keys, 1);
  EXPECT_NE(log2.find("coordinator.curve_key_file"), std::string::npos) << log2;

  const std::string bad =
      Write("bad-clients", "gateway-1 gateway " + gateway_keys_.public_key + "\nconsole admin " +
                               console_keys_.public_key.substr(0, 30) + "\n");
  auto [bad_key, log3] = CoordinatorExit({{"FEDRX_COORDINATOR_CLIENTS_FILE", bad}});
  EXPECT_EQ(bad_key, 1);
  EXPECT_NE(log3.find(bad + ":2"), std::string::npos) << log3;

  ASSERT_EQ(::chmod(coordinator_key_file_.c_str(), 0644), 0);
  auto [exposed, log4] = CoordinatorExit({});
  EXPECT_EQ(exposed, 1);
  EXPECT_NE(log4.find("chmod 600"), std::string::npos) << log4;
}

TEST_F(InternalCurveTest, AGatewayReachesACurveCoordinatorWithItsOwnKey) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  ASSERT_NO_FATAL_FAILURE(StartGateway());
  EXPECT_GE(CoordinatorMetric("fedrx_coordinator_authentications_total", R"(result="ok")"), 1);
  EXPECT_LE(CoordinatorMetric("fedrx_coordinator_authentications_total", R"(result="denied")"), 0);
}

// The platform's administration end to end: the first admin is enrolled in
// Redis directly (the bootstrap); everything after goes through the gateway.
TEST_F(InternalCurveTest, TheCliAdministersThePlatformThroughTheGateway) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  ASSERT_NO_FATAL_FAILURE(StartGateway({{"FEDRX_GATEWAY_STATUS_TTL", "1ms"}}));
  const std::string admin_key = Path("admin.key");
  auto [boot, boot_out] = Cli(
      {"institutions", "enrol", "--redis", "127.0.0.1:" + std::to_string(redis_->port()), "--id",
       "platform-admin", "--name", "Platform team", "--role", "admin", "--key-out", admin_key});
  ASSERT_EQ(boot, 0) << boot_out;

  auto [health, health_out] = CliAs(admin_key, {"health"});
  EXPECT_EQ(health, 0) << health_out;

  const std::string scientist_key = Path("scientist.key");
  auto [enrol, enrol_out] =
      CliAs(admin_key, {"institutions", "enrol", "--id", "scientist-1", "--name", "Dr S", "--role",
                        "scientist", "--key-out", scientist_key});
  ASSERT_EQ(enrol, 0) << enrol_out;
  struct stat st {};
  ASSERT_EQ(::stat(scientist_key.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  auto scientist_pair = core::LoadCurveKeyPair(scientist_key);
  ASSERT_TRUE(scientist_pair.ok()) << scientist_pair.status();
  EXPECT_NE(enrol_out.find(scientist_pair->public_key), std::string::npos) << enrol_out;
  EXPECT_EQ(enrol_out.find(scientist_pair->secret_key), std::string::npos);

  auto [list, listing] = CliAs(admin_key, {"institutions", "list"});
  ASSERT_EQ(list, 0) << listing;
  EXPECT_NE(listing.find("scientist-1"), std::string::npos) << listing;
  EXPECT_NE(listing.find("2 institution(s)"), std::string::npos) << listing;

  // Studies: the admin creates one, the scientist reads it (through the
  // gateway, which forwards to the CURVE coordinator).
  const std::string study = Write("small.study",
                                  "study.id = small\n"
                                  "study.tasks = t1,t2\n"
                                  "study.sites = site-a\n"
                                  "model.input_dim = 16\n"
                                  "model.hidden = 4\n"
                                  "train.rounds = 1\n"
                                  "train.min_sites = 1\n");
  auto [create, create_out] = CliAs(admin_key, {"study", "create", study});
  ASSERT_EQ(create, 0) << create_out;
  auto [show, shown] = CliAs(scientist_key, {"study", "show", "small"});
  ASSERT_EQ(show, 0) << shown;
  EXPECT_NE(shown.find("study small: "), std::string::npos) << shown;
  auto [sites, sites_out] = CliAs(scientist_key, {"sites", "list"});
  EXPECT_EQ(sites, 0) << sites_out;

  // A scientist is not an admin.
  auto [refused, refused_out] = CliAs(scientist_key, {"institutions", "list"});
  EXPECT_EQ(refused, 1) << refused_out;
  EXPECT_NE(refused_out.find("permission_denied"), std::string::npos) << refused_out;

  // Suspended, the scientist gets nothing more through.
  auto [suspend, suspend_out] = CliAs(admin_key, {"institutions", "suspend", "scientist-1"});
  ASSERT_EQ(suspend, 0) << suspend_out;
  EXPECT_NE(suspend_out.find("scientist-1 is suspended"), std::string::npos) << suspend_out;
  auto [after, after_out] = CliAs(scientist_key, {"study", "show", "small"});
  EXPECT_NE(after, 0) << after_out;

  auto [audit, audit_out] = CliAs(admin_key, {"audit", "verify"});
  ASSERT_EQ(audit, 0) << audit_out;
  EXPECT_NE(audit_out.find("audit trail intact"), std::string::npos) << audit_out;

  // An unknown key pair gets no answer at all.
  const std::string stranger_key = Path("stranger.key");
  ASSERT_TRUE(core::WriteCurveKeyPair(stranger_key, NewKeyPair()).ok());
  auto [stranger, stranger_out] = CliAs(stranger_key, {"health"});
  EXPECT_EQ(stranger, 1) << stranger_out;
  EXPECT_NE(stranger_out.find("no answer from the gateway"), std::string::npos) << stranger_out;
}

TEST_F(InternalCurveTest, AGatewayWithoutItsOwnKeyPairCannotUseTheCoordinatorKey) {
  const std::string coordinator_pub = Path("coordinator.pub");
  ASSERT_TRUE(core::WriteCurvePublicKey(coordinator_pub, coordinator_keys_.public_key).ok());
  auto child = testing::ChildProcess::Spawn(
      FEDRX_GATEWAY_BIN, {},
      {{"FEDRX_GATEWAY_COORDINATOR_PUBLIC_KEY_FILE", coordinator_pub},
       {"FEDRX_HTTP_LISTEN", "127.0.0.1:" + std::to_string(testing::FreeTcpPort())}});
  ASSERT_TRUE(child.ok()) << child.status();
  auto code = (*child)->Wait(10s);
  ASSERT_TRUE(code.ok()) << (*child)->Log();
  EXPECT_EQ(*code, 1);
  EXPECT_NE((*child)->Log().find("gateway.curve_key_file"), std::string::npos) << (*child)->Log();
}

}  // namespace
}  // namespace fedrx
