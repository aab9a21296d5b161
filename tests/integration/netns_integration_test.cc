// Network isolation: the federation with each site in a network namespace of
// its own, joined to the platform's namespace by one veth pair. In the
// platform, Redis and the coordinator listen on loopback only and the gateway
// on every address; a site's only route is its own link. The test shows that
// a site can reach the gateway's port and nothing else, and that a CURVE study
// (keys enrolled as the demo does) still completes with every site in every
// round. Nothing is ever sent outside 127.0.0.0/8 and the namespaces' own
// addresses. Needs root for `ip netns`: skipped without it, unless
// FEDRX_REQUIRE_NETNS=1 makes that a failure.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "services/core/curve_keys.h"
#include "services/ml/model.h"
#include "tests/support/child_process.h"
#include "tests/support/http_client.h"
#include "tests/support/network_namespace.h"

namespace fedrx {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;
using testing::ConnectOutcome;
using testing::NetworkNamespace;

// Every namespace is new and private to this test, so fixed ports cannot be
// taken by anything else, nor collide with a parallel run.
constexpr int kRedisPort = 6379;
constexpr int kCoordinatorPort = 5570;
constexpr int kCoordinatorHttpPort = 9464;
constexpr int kGatewayPort = 5560;
constexpr int kGatewayHttpPort = 9465;
constexpr int kSiteHttpPort = 9466;

constexpr std::size_t kSites = 3;
constexpr std::uint32_t kRounds = 3;
constexpr char kStudy[] = "isolated";
// What every synthetic site adds to the model it is sent.
constexpr float kStep = 0.5f;
constexpr std::uint64_t kSeed = 11;
// Bounds on waits; a healthy run takes a fraction of them.
constexpr auto kStartTimeout = 20s;
constexpr auto kStudyTimeout = 60s;

// Namespaces are named kNamespacePrefix<pid>-<role>.
constexpr char kNamespacePrefix[] = "fedrx-netns-";
// The interface every site namespace has towards the platform.
constexpr char kSiteInterface[] = "veth-platform";

// Site k (1-based) and its link: 10.213.<k>.0/30, .1 in the platform, .2 in the site.
std::string SiteId(std::size_t k) { return "site-" + std::to_string(k); }
std::string PlatformAddress(std::size_t k) { return "10.213." + std::to_string(k) + ".1"; }
std::string SiteAddress(std::size_t k) { return "10.213." + std::to_string(k) + ".2"; }
std::string Subnet(std::size_t k) { return "10.213." + std::to_string(k) + ".0/30"; }

bool NetnsRequired() {
  const char* v = std::getenv("FEDRX_REQUIRE_NETNS");
  return v != nullptr && std::strcmp(v, "1") == 0;
}

std::string Join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ",") + s;
  return out;
}

std::string Tail(const std::string& log) {
  return log.size() > 4000 ? "..." + log.substr(log.size() - 4000) : log;
}

// One line of `fedrx study show` per round.
struct ShownRound {
  int round = 0;
  int of = 0;
  std::string state;
  int updates = 0;
  int selected = 0;
  long samples = 0;
};

std::vector<ShownRound> ParseRounds(const std::string& shown) {
  static const std::regex kLine(
      R"(^round\s+(\d+)/(\d+)\s+(\w+)\s+(\d+)/(\d+)\s*sites\s+(\d+) samples)");
  std::vector<ShownRound> rounds;
  std::istringstream lines(shown);
  std::string line;
  std::smatch m;
  while (std::getline(lines, line)) {
    if (!std::regex_search(line, m, kLine)) continue;
    rounds.push_back({std::stoi(m[1]), std::stoi(m[2]), m[3], std::stoi(m[4]), std::stoi(m[5]),
                      std::stol(m[6])});
  }
  return rounds;
}

// The synthetic study's network: 64 inputs, 4 hidden units, one task.
ml::NetSpec StudyNet() {
  ml::NetSpec net;
  net.input_dim = 64;
  net.hidden = {4};
  net.num_tasks = 1;
  net.dropout = 0;
  return net;
}

class NetworkIsolationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    if (geteuid() != 0) {
      ASSERT_NO_FATAL_FAILURE(
          SkipOrFail("network namespaces need root (euid " + std::to_string(geteuid()) + ")"));
      return;
    }
    testing::RemoveStaleNamespaces(kNamespacePrefix);
    prefix_ = kNamespacePrefix + std::to_string(getpid()) + "-";

    auto platform = NetworkNamespace::Create(prefix_ + "platform");
    if (!platform.ok() && platform.status().code() == core::StatusCode::kPermissionDenied) {
      ASSERT_NO_FATAL_FAILURE(SkipOrFail("ip netns add refused: " + platform.status().ToString()));
      return;
    }
    ASSERT_TRUE(platform.ok()) << platform.status();
    platform_ = std::move(*platform);
    for (std::size_t k = 1; k <= kSites; ++k) {
      auto site = NetworkNamespace::Create(prefix_ + SiteId(k));
      ASSERT_TRUE(site.ok()) << site.status();
      core::Status linked =
          testing::LinkNamespaces(*platform_, "veth-" + SiteId(k), PlatformAddress(k) + "/30",
                                  **site, kSiteInterface, SiteAddress(k) + "/30");
      ASSERT_TRUE(linked.ok()) << linked;
      site_ns_.push_back(std::move(*site));
    }
    // The platform must not route between sites' links (a new namespace may
    // inherit forwarding from the host's settings).
    auto [code, out] =
        RunIn(*platform_, "/bin/sh", {"-c", "echo 0 >/proc/sys/net/ipv4/ip_forward"});
    ASSERT_EQ(code, 0) << out;
  }

  void TearDown() override {
    if (HasFailure()) {
      // What each process said, to see why.
      const auto show = [](const char* what, const std::unique_ptr<testing::ChildProcess>& p) {
        if (p != nullptr) std::cerr << "--- " << what << "\n" << Tail(p->Log());
      };
      show("redis", redis_);
      show("coordinator", coordinator_);
      show("gateway", gateway_);
      for (std::size_t i = 0; i < sites_.size(); ++i) show(SiteId(i + 1).c_str(), sites_[i]);
    }
    // Processes first (a namespace with a process inside outlives its name),
    // then the namespaces; and none of this run's may be left.
    sites_.clear();
    gateway_.reset();
    coordinator_.reset();
    redis_.reset();
    site_ns_.clear();
    platform_.reset();
    if (prefix_.empty()) return;
    auto left = testing::ListNamespaces();
    ASSERT_TRUE(left.ok()) << left.status();
    for (const auto& name : *left) {
      EXPECT_NE(name.rfind(prefix_, 0), 0u) << "namespace " << name << " was left behind";
    }
  }

  void SkipOrFail(const std::string& why) {
    if (NetnsRequired()) {
      FAIL() << why << " (and FEDRX_REQUIRE_NETNS=1)";
    } else {
      GTEST_SKIP() << why;
    }
  }

  // Runs `program args...` in `ns` to completion; its exit code (-1 if it
  // could not run or did not finish) and what it printed.
  std::pair<int, std::string> RunIn(const NetworkNamespace& ns, const std::string& program,
                                    const std::vector<std::string>& args,
                                    milliseconds timeout = 20s) {
    auto child = ns.Spawn(program, args);
    EXPECT_TRUE(child.ok()) << child.status();
    if (!child.ok()) return {-1, ""};
    auto code = (*child)->Wait(timeout);
    EXPECT_TRUE(code.ok()) << program << " did not finish: " << code.status();
    return {code.ok() ? *code : -1, (*child)->Log()};
  }

  // The `fedrx` CLI, run in the platform against its coordinator.
  std::pair<int, std::string> Cli(std::vector<std::string> args, milliseconds timeout = 20s) {
    args.insert(args.begin(),
                {"--coordinator", "tcp://127.0.0.1:" + std::to_string(kCoordinatorPort)});
    return RunIn(*platform_, FEDRX_CLI_BIN, args, timeout);
  }

  std::string RedisAddress() const { return "127.0.0.1:" + std::to_string(kRedisPort); }

  // The destinations of `ns`'s IPv4 routes, as `ip route show` lists them.
  std::vector<std::string> RouteDestinations(const NetworkNamespace& ns) {
    auto routes = testing::RunIp({"-n", ns.name(), "-4", "route", "show"});
    EXPECT_TRUE(routes.ok()) << routes.status();
    if (!routes.ok()) return {};
    std::istringstream lines(*routes);
    std::vector<std::string> destinations;
    std::string line;
    while (std::getline(lines, line)) {
      if (!line.empty()) destinations.push_back(line.substr(0, line.find(' ')));
    }
    return destinations;
  }

  // A TCP connect from `ns`.
  ConnectOutcome Probe(const NetworkNamespace& ns, const std::string& ip, int port) {
    ConnectOutcome outcome = ConnectOutcome::kOtherError;
    core::Status ran = ns.Run([&] { outcome = testing::ProbeTcpConnect(ip, port); });
    EXPECT_TRUE(ran.ok()) << ran;
    return outcome;
  }

  // Polls `ready` inside `ns` until it holds (true) or `timeout` passes.
  bool WaitIn(const NetworkNamespace& ns, const std::function<bool()>& ready,
              milliseconds timeout) {
    bool ok = false;
    core::Status ran = ns.Run([&] {
      const auto deadline = std::chrono::steady_clock::now() + timeout;
      while (!(ok = ready()) && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(50ms);
      }
    });
    EXPECT_TRUE(ran.ok()) << ran;
    return ok;
  }

  bool WaitReady(const NetworkNamespace& ns, int http_port) {
    return WaitIn(
        ns, [&] { return testing::WaitForHttp200(http_port, "/readyz", 100ms); }, kStartTimeout);
  }

  // A metric of the service whose /metrics is on 127.0.0.1:`http_port` in
  // `ns`; -1 when absent.
  double MetricIn(const NetworkNamespace& ns, int http_port, const std::string& name,
                  const std::string& labels = "") {
    core::Result<testing::HttpResponse> got = core::Unavailable("not fetched");
    core::Status ran = ns.Run([&] { got = testing::HttpGet(http_port, "/metrics"); });
    EXPECT_TRUE(ran.ok()) << ran;
    EXPECT_TRUE(got.ok()) << got.status();
    return got.ok() ? testing::MetricValue(got->body, name, labels) : -1;
  }

  // Redis, the institutions enrolled with their key pairs, the gateway's key
  // pair, the coordinator and the CURVE gateway, all in the platform.
  void StartPlatform() {
    const std::string redis_dir = dir_.path() + "/redis";
    std::filesystem::create_directories(redis_dir);
    auto redis = platform_->Spawn(
        "redis-server", {"--port", std::to_string(kRedisPort), "--bind", "127.0.0.1", "--dir",
                         redis_dir, "--save", "", "--appendonly", "no"});
    ASSERT_TRUE(redis.ok()) << redis.status();
    redis_ = std::move(*redis);
    ASSERT_TRUE(WaitIn(
        *platform_,
        [] {
          return testing::ProbeTcpConnect("127.0.0.1", kRedisPort, 100ms) ==
                 ConnectOutcome::kConnected;
        },
        kStartTimeout))
        << "Redis never listened in the platform";

    for (std::size_t k = 1; k <= kSites; ++k) {
      const std::string key_file = dir_.path() + "/" + SiteId(k) + ".key";
      auto [code, out] =
          Cli({"institutions", "enrol", "--redis", RedisAddress(), "--id", SiteId(k), "--name",
               "Institution " + std::to_string(k), "--role", "site", "--key-out", key_file});
      ASSERT_EQ(code, 0) << out;
      site_key_files_.push_back(key_file);
    }
    const std::string gateway_key_file = dir_.path() + "/gateway.key";
    auto [code, out] = Cli({"keys", "generate", "--out", gateway_key_file});
    ASSERT_EQ(code, 0) << out;
    auto gateway_keys = core::LoadCurveKeyPair(gateway_key_file);
    ASSERT_TRUE(gateway_keys.ok()) << gateway_keys.status();
    gateway_public_key_ = gateway_keys->public_key;
    EXPECT_NE(out.find(gateway_public_key_), std::string::npos) << out;

    const std::map<std::string, std::string> redis_env = {
        {"FEDRX_REDIS_HOST", "127.0.0.1"},
        {"FEDRX_REDIS_PORT", std::to_string(kRedisPort)},
        {"FEDRX_REDIS_STARTUP_WAIT", "5s"}};
    std::map<std::string, std::string> env = redis_env;
    env["FEDRX_COORDINATOR_ENDPOINT"] = "tcp://127.0.0.1:" + std::to_string(kCoordinatorPort);
    env["FEDRX_HTTP_LISTEN"] = "127.0.0.1:" + std::to_string(kCoordinatorHttpPort);
    env["FEDRX_RUNNER_DRAIN_TIMEOUT"] = "2s";
    auto coordinator = platform_->Spawn(FEDRX_COORDINATOR_BIN, {}, env);
    ASSERT_TRUE(coordinator.ok()) << coordinator.status();
    coordinator_ = std::move(*coordinator);
    ASSERT_TRUE(WaitReady(*platform_, kCoordinatorHttpPort)) << "coordinator never became ready";

    env = redis_env;
    // Every address of the platform: only the sites' links and loopback.
    env["FEDRX_GATEWAY_SITES_ENDPOINT"] = "tcp://0.0.0.0:" + std::to_string(kGatewayPort);
    env["FEDRX_GATEWAY_COORDINATOR_ENDPOINT"] =
        "tcp://127.0.0.1:" + std::to_string(kCoordinatorPort);
    env["FEDRX_GATEWAY_CURVE_KEY_FILE"] = gateway_key_file;
    env["FEDRX_HTTP_LISTEN"] = "127.0.0.1:" + std::to_string(kGatewayHttpPort);
    env["FEDRX_RUNNER_DRAIN_TIMEOUT"] = "2s";
    auto gateway = platform_->Spawn(FEDRX_GATEWAY_BIN, {}, env);
    ASSERT_TRUE(gateway.ok()) << gateway.status();
    gateway_ = std::move(*gateway);
    ASSERT_TRUE(WaitReady(*platform_, kGatewayHttpPort)) << "gateway never became ready";
  }

  // One synthetic site per site namespace, reaching the gateway over its link
  // with its enrolled key pair; returns once each has registered.
  void StartSites() {
    for (std::size_t k = 1; k <= kSites; ++k) {
      auto site = site_ns_[k - 1]->Spawn(
          FEDRX_SITE_BIN, {},
          {{"FEDRX_SITE_ID", SiteId(k)},
           {"FEDRX_SITE_INSTITUTION", "Institution " + std::to_string(k)},
           {"FEDRX_SITE_GATEWAY",
            "tcp://" + PlatformAddress(k) + ":" + std::to_string(kGatewayPort)},
           {"FEDRX_SITE_KEY_FILE", site_key_files_[k - 1]},
           {"FEDRX_SITE_GATEWAY_PUBLIC_KEY", gateway_public_key_},
           {"FEDRX_SITE_APPROVED_STUDIES", kStudy},
           {"FEDRX_SITE_HEARTBEAT_INTERVAL", "200ms"},
           {"FEDRX_SITE_SYNTHETIC_STEP", "0.5"},
           {"FEDRX_SITE_TRAIN_THREADS", "1"},
           {"FEDRX_RUNNER_DRAIN_TIMEOUT", "2s"},
           {"FEDRX_HTTP_LISTEN", "127.0.0.1:" + std::to_string(kSiteHttpPort)}});
      ASSERT_TRUE(site.ok()) << site.status();
      sites_.push_back(std::move(*site));
    }
    for (std::size_t k = 1; k <= kSites; ++k) {
      ASSERT_TRUE(WaitReady(*site_ns_[k - 1], kSiteHttpPort))
          << SiteId(k) << " never registered through the gateway";
    }
  }

  std::string StudyText() const {
    std::vector<std::string> ids;
    for (std::size_t k = 1; k <= kSites; ++k) ids.push_back(SiteId(k));
    std::ostringstream out;
    // Every site in every round: a round waits until all are available.
    out << "study.id = " << kStudy << "\n"
        << "study.tasks = toxic\n"
        << "study.sites = " << Join(ids) << "\n"
        << "model.input_dim = 64\n"
        << "model.hidden = 4\n"
        << "model.dropout = 0\n"
        << "train.rounds = " << kRounds << "\n"
        << "train.min_sites = " << kSites << "\n"
        << "train.round_deadline = 10s\n"
        << "train.seed = " << kSeed << "\n"
        << "train.evaluate_every = 0\n";
    return out.str();
  }

  // The latest model, fetched with `fedrx study model` in the platform.
  std::vector<float> FetchModel() {
    const std::string path = dir_.path() + "/model.bin";
    auto [code, out] = Cli({"study", "model", kStudy, "--out", path});
    EXPECT_EQ(code, 0) << out;
    std::ifstream file(path, std::ios::binary);
    std::vector<char> bytes((std::istreambuf_iterator<char>(file)),
                            std::istreambuf_iterator<char>());
    EXPECT_EQ(bytes.size() % sizeof(float), 0u);
    std::vector<float> w(bytes.size() / sizeof(float));
    std::memcpy(w.data(), bytes.data(), w.size() * sizeof(float));
    return w;
  }

  testing::TempDir dir_;
  std::string prefix_;
  // Declared before the processes so that, whatever happens, they are
  // destroyed after them (TearDown does it explicitly, in that order).
  std::unique_ptr<NetworkNamespace> platform_;
  std::vector<std::unique_ptr<NetworkNamespace>> site_ns_;
  std::unique_ptr<testing::ChildProcess> redis_;
  std::unique_ptr<testing::ChildProcess> coordinator_;
  std::unique_ptr<testing::ChildProcess> gateway_;
  std::vector<std::unique_ptr<testing::ChildProcess>> sites_;
  std::vector<std::string> site_key_files_;
  std::string gateway_public_key_;
};

TEST_F(NetworkIsolationTest, SitesReachOnlyTheGatewayPortAndACurveStudyStillCompletes) {
  ASSERT_NO_FATAL_FAILURE(StartPlatform());
  ASSERT_NO_FATAL_FAILURE(StartSites());

  // A site's only route is its own link, and the platform's are the sites'
  // links: no default route, nothing beyond.
  std::vector<std::string> platform_routes;
  for (std::size_t k = 1; k <= kSites; ++k) {
    EXPECT_EQ(RouteDestinations(*site_ns_[k - 1]), std::vector<std::string>{Subnet(k)})
        << SiteId(k);
    platform_routes.push_back(Subnet(k));
  }
  EXPECT_EQ(RouteDestinations(*platform_), platform_routes);

  // In the platform, the coordinator and Redis do listen, on loopback only.
  EXPECT_EQ(Probe(*platform_, "127.0.0.1", kCoordinatorPort), ConnectOutcome::kConnected);
  EXPECT_EQ(Probe(*platform_, "127.0.0.1", kRedisPort), ConnectOutcome::kConnected);
  EXPECT_EQ(Probe(*platform_, PlatformAddress(1), kCoordinatorPort), ConnectOutcome::kRefused);
  EXPECT_EQ(Probe(*platform_, PlatformAddress(1), kRedisPort), ConnectOutcome::kRefused);
  EXPECT_EQ(Probe(*platform_, PlatformAddress(1), kGatewayPort), ConnectOutcome::kConnected);

  for (std::size_t k = 1; k <= kSites; ++k) {
    const NetworkNamespace& site = *site_ns_[k - 1];
    const std::string platform = PlatformAddress(k);
    SCOPED_TRACE(SiteId(k) + " probing " + platform);
    EXPECT_EQ(Probe(site, platform, kGatewayPort), ConnectOutcome::kConnected);
    for (int port : {kCoordinatorPort, kRedisPort, kCoordinatorHttpPort, kGatewayHttpPort}) {
      EXPECT_EQ(Probe(site, platform, port), ConnectOutcome::kRefused) << "port " << port;
    }
    // Nor are they on the site's own loopback.
    EXPECT_EQ(Probe(site, "127.0.0.1", kCoordinatorPort), ConnectOutcome::kRefused);
    EXPECT_EQ(Probe(site, "127.0.0.1", kRedisPort), ConnectOutcome::kRefused);
    // The other sites, and the platform's ends of their links, are beyond any
    // route: the connect fails before a packet is sent.
    for (std::size_t j = 1; j <= kSites; ++j) {
      if (j == k) continue;
      EXPECT_EQ(Probe(site, SiteAddress(j), kSiteHttpPort), ConnectOutcome::kNetworkUnreachable)
          << SiteId(j);
      EXPECT_EQ(Probe(site, PlatformAddress(j), kGatewayPort), ConnectOutcome::kNetworkUnreachable)
          << PlatformAddress(j);
    }
  }

  // The study, through that one port.
  const std::string study_file = dir_.path() + "/isolated.study";
  std::ofstream(study_file) << StudyText();
  {
    auto [code, out] = Cli({"study", "create", study_file});
    ASSERT_EQ(code, 0) << out;
  }
  auto [watch_code, watched] = Cli({"study", "watch", kStudy, "--interval", "100"}, kStudyTimeout);
  ASSERT_EQ(watch_code, 0) << watched;
  EXPECT_NE(watched.find("study " + std::string(kStudy) + " completed at model version " +
                         std::to_string(kRounds)),
            std::string::npos)
      << watched;

  auto [show_code, shown] = Cli({"study", "show", kStudy});
  ASSERT_EQ(show_code, 0) << shown;
  const std::string rounds_done = std::to_string(kRounds);
  EXPECT_EQ(shown.substr(0, shown.find('\n')), "study " + std::string(kStudy) +
                                                   ": completed, round " + rounds_done + "/" +
                                                   rounds_done + ", model version " + rounds_done)
      << shown;
  const std::vector<ShownRound> rounds = ParseRounds(shown);
  ASSERT_EQ(rounds.size(), kRounds) << shown;
  for (std::size_t i = 0; i < rounds.size(); ++i) {
    const ShownRound& r = rounds[i];
    SCOPED_TRACE("round " + std::to_string(i + 1));
    EXPECT_EQ(r.round, static_cast<int>(i + 1));
    EXPECT_EQ(r.of, static_cast<int>(kRounds));
    EXPECT_EQ(r.state, "closed");
    EXPECT_EQ(r.selected, static_cast<int>(kSites));
    EXPECT_EQ(r.updates, static_cast<int>(kSites));
    EXPECT_EQ(r.samples, static_cast<long>(kSites));  // a synthetic site reports one sample
  }

  // The model is the initial one plus one step a round: FedAvg of the sites'
  // identical updates, computed from what crossed the links.
  std::vector<float> expected = ml::InitParameters(StudyNet(), kSeed);
  for (std::uint32_t v = 0; v < kRounds; ++v) {
    for (float& x : expected) x += kStep;
  }
  const std::vector<float> model = FetchModel();
  ASSERT_EQ(model.size(), expected.size());
  for (std::size_t i = 0; i < model.size(); ++i) {
    ASSERT_NEAR(model[i], expected[i], 1e-5) << "parameter " << i;
  }

  // The coordinator counted every site's update of every round, and each site
  // says it sent one a round (and was sent one task a round).
  EXPECT_EQ(MetricIn(*platform_, kCoordinatorHttpPort, "fedrx_coordinator_rounds_total",
                     R"(outcome="closed")"),
            kRounds);
  EXPECT_EQ(MetricIn(*platform_, kCoordinatorHttpPort, "fedrx_coordinator_rounds_total",
                     R"(outcome="failed")"),
            -1);
  EXPECT_EQ(MetricIn(*platform_, kCoordinatorHttpPort, "fedrx_coordinator_updates_accepted_total"),
            kSites * kRounds);
  EXPECT_EQ(MetricIn(*platform_, kCoordinatorHttpPort, "fedrx_coordinator_dropouts_total",
                     R"(stage="training")"),
            -1);
  for (std::size_t k = 1; k <= kSites; ++k) {
    SCOPED_TRACE(SiteId(k));
    EXPECT_EQ(MetricIn(*site_ns_[k - 1], kSiteHttpPort, "fedrx_site_messages_total",
                       R"(direction="out",type="ModelUpdate")"),
              kRounds);
    EXPECT_EQ(MetricIn(*site_ns_[k - 1], kSiteHttpPort, "fedrx_site_messages_total",
                       R"(direction="in",type="TrainTask")"),
              kRounds);
  }
  auto [list_code, listed] = Cli({"sites", "list"});
  ASSERT_EQ(list_code, 0) << listed;
  EXPECT_NE(listed.find(std::to_string(kSites) + " site(s)"), std::string::npos) << listed;

  // Every site came in over CURVE with its enrolled key, none was refused.
  EXPECT_GE(MetricIn(*platform_, kGatewayHttpPort, "fedrx_gateway_authentications_total",
                     R"(result="ok")"),
            kSites);
  EXPECT_LE(MetricIn(*platform_, kGatewayHttpPort, "fedrx_gateway_authentications_total",
                     R"(result="denied")"),
            0);

  // The gateway's audit trail is intact and holds at least each site's
  // registration and its ready report and update of every round.
  auto [audit_code, audit] = Cli({"audit", "verify", "--redis", RedisAddress()});
  ASSERT_EQ(audit_code, 0) << audit;
  std::smatch records;
  ASSERT_TRUE(std::regex_search(audit, records, std::regex(R"(audit trail intact: (\d+) record)")))
      << audit;
  EXPECT_GE(std::stoul(records[1]), kSites * (1 + 2 * kRounds)) << audit;
}

}  // namespace
}  // namespace fedrx
