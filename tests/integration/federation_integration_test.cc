// The whole federation as separate processes on loopback: a real Redis, the
// coordinator, the gateway, sites, and the `fedrx` CLI. Most tests use
// synthetic sites (training adds a constant), which make the model exactly
// predictable: FedAvg of identical updates is that update, so model version v
// equals initial + v * step. Where a test needs a slow or misbehaving site, the
// test plays that site itself over the real gateway (ScriptedSite). One test
// runs a real learning study on Tox21 shares prepared by `fedrx-lab prepare`.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <limits>
#include <map>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "services/coordinator/study_store.h"
#include "services/core/bus.h"
#include "services/core/clock.h"
#include "services/core/curve_keys.h"
#include "services/core/metrics.h"
#include "services/core/redis_state_store.h"
#include "services/core/zmq_bus.h"
#include "services/ml/model.h"
#include "tests/support/child_process.h"
#include "tests/support/http_client.h"
#include "tests/support/redis_server.h"

namespace fedrx {
namespace {

using namespace std::chrono_literals;
using core::StatusCode;
using std::chrono::milliseconds;

// What every synthetic site adds to the model it is sent.
constexpr float kStep = 0.5f;
constexpr std::uint64_t kSyntheticSeed = 11;
// The study each test runs first so that it knows which sites the coordinator
// can select (see AwaitAvailable); every site approves it.
constexpr char kRollCall[] = "roll-call";
constexpr auto kHeartbeat = 200ms;
// Bounds on waits; a healthy run takes a fraction of them.
constexpr auto kStartTimeout = 20s;
constexpr auto kStudyTimeout = 60s;

// The synthetic studies' network: 64 inputs, 4 hidden units, one task.
ml::NetSpec SyntheticNet() {
  ml::NetSpec net;
  net.input_dim = 64;
  net.hidden = {4};
  net.num_tasks = 1;
  net.dropout = 0;
  return net;
}

// Model version `version` of a synthetic study: the coordinator's initial
// model (InitParameters of the spec and seed) plus `version` steps, added one
// at a time in float as the sites do.
std::vector<float> ExpectedSynthetic(std::uint32_t version) {
  std::vector<float> w = ml::InitParameters(SyntheticNet(), kSyntheticSeed);
  for (std::uint32_t v = 0; v < version; ++v) {
    for (float& x : w) x += kStep;
  }
  return w;
}

// Largest |a[i] - b[i]|; infinity when the sizes differ.
double MaxAbsDiff(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return std::numeric_limits<double>::infinity();
  double d = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    d = std::max(d, std::abs(static_cast<double>(a[i]) - static_cast<double>(b[i])));
  }
  return d;
}

std::string Join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ",") + s;
  return out;
}

struct SyntheticStudy {
  std::string id;
  std::vector<std::string> sites;
  int rounds = 3;
  int min_sites = 1;
  std::string deadline = "2s";
};

std::string StudyText(const SyntheticStudy& s) {
  std::ostringstream out;
  out << "study.id = " << s.id << "\n"
      << "study.tasks = toxic\n"
      << "study.sites = " << Join(s.sites) << "\n"
      << "model.input_dim = 64\n"
      << "model.hidden = 4\n"
      << "model.dropout = 0\n"
      << "train.rounds = " << s.rounds << "\n"
      << "train.min_sites = " << s.min_sites << "\n"
      << "train.round_deadline = " << s.deadline << "\n"
      << "train.seed = " << kSyntheticSeed << "\n"
      << "train.evaluate_every = 0\n";
  return out.str();
}

std::vector<float> Floats(const codec::Tensor& t) {
  auto view = t.data.As<float>();
  return {view.begin(), view.end()};
}

std::vector<codec::Tensor> WeightsTensor(std::vector<float> w) {
  std::vector<codec::Tensor> t;
  const auto n = static_cast<std::int64_t>(w.size());
  t.push_back(
      codec::Tensor{"weights", codec::DType::kFloat32, {n}, codec::Blob::FromFloats(std::move(w))});
  return t;
}

template <typename T>
const T* BodyOf(const codec::Message& m) {
  return std::get_if<T>(&m.body);
}

// A site played by the test over the real gateway: it registers, heartbeats
// the studies it approves, sends what the test scripts, and keeps what the
// platform pushes to it until the test takes it. Shares the test's bus.
class ScriptedSite {
 public:
  ScriptedSite(core::Bus& bus, std::string id, std::vector<std::string> approved)
      : bus_(bus), id_(std::move(id)), approved_(std::move(approved)) {}

  const std::string& id() const { return id_; }

  core::Status Connect(const std::string& gateway) {
    FEDRX_ASSIGN_OR_RETURN(channel_, bus_.Connect(gateway, [this](codec::Message&& m) {
      pushes_.push_back(std::move(m));
    }));
    return core::Status::Ok();
  }

  core::Status Register() {
    FEDRX_ASSIGN_OR_RETURN(codec::Message reply,
                           Ask(codec::RegisterSite{id_, "Scripted " + id_, 1, {"toxic"}, ""}));
    if (BodyOf<codec::SiteRegistered>(reply) == nullptr) {
      return core::Internal(std::string("registration answered with ") +
                            codec::BodyName(reply.body));
    }
    return core::Status::Ok();
  }

  core::Status Heartbeat() { return Send(codec::Heartbeat{approved_}); }

  core::Status Send(codec::Body body, std::vector<codec::Tensor> tensors = {}) {
    return bus_.Send(channel_, core::MakeMessage(std::move(body), std::move(tensors)));
  }

  core::Result<codec::Message> Ask(codec::Body body, std::vector<codec::Tensor> tensors = {}) {
    return core::Call(bus_, channel_, core::MakeMessage(std::move(body), std::move(tensors)), 5s);
  }

  // Removes and returns the first push `match` accepts, if one has arrived.
  std::optional<codec::Message> Take(const std::function<bool(const codec::Message&)>& match) {
    for (auto it = pushes_.begin(); it != pushes_.end(); ++it) {
      if (match(*it)) {
        codec::Message m = std::move(*it);
        pushes_.erase(it);
        return m;
      }
    }
    return std::nullopt;
  }

 private:
  core::Bus& bus_;
  std::string id_;
  std::vector<std::string> approved_;
  core::ChannelId channel_ = -1;
  std::deque<codec::Message> pushes_;
};

std::function<bool(const codec::Message&)> TrainTaskFor(const std::string& study,
                                                        std::uint32_t round) {
  return [=](const codec::Message& m) {
    const auto* t = BodyOf<codec::TrainTask>(m);
    return t != nullptr && t->study_id == study && t->round == round;
  };
}

std::function<bool(const codec::Message&)> GrantFor(const std::string& study, std::uint32_t round) {
  return [=](const codec::Message& m) {
    const auto* g = BodyOf<codec::UploadGrant>(m);
    return g != nullptr && g->study_id == study && g->round == round;
  };
}

bool IsError(const codec::Message& m) { return BodyOf<codec::Error>(m) != nullptr; }

bool Completed(const codec::StudyInfo& info) { return info.state == codec::StudyState::kCompleted; }

double RoundMetric(const codec::RoundSummary& r, const std::string& name) {
  for (const auto& m : r.metrics) {
    if (m.name == name) return m.value;
  }
  return std::nan("");
}

class FederationIntegrationTest : public ::testing::Test {
 protected:
  struct Site {
    std::unique_ptr<testing::ChildProcess> process;
    int http_port = 0;
  };

  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    coordinator_http_ = testing::FreeTcpPort();
    gateway_http_ = testing::FreeTcpPort();
    coordinator_endpoint_ = "tcp://127.0.0.1:" + std::to_string(testing::FreeTcpPort());
    gateway_endpoint_ = "tcp://127.0.0.1:" + std::to_string(testing::FreeTcpPort());
    auto ch = bus_.Connect(coordinator_endpoint_, [](codec::Message&&) {});
    ASSERT_TRUE(ch.ok()) << ch.status();
    coordinator_ch_ = *ch;
  }

  void TearDown() override {
    if (!HasFailure()) return;
    // What each process said, to see why.
    const auto tail = [](const std::string& log) {
      return log.size() > 4000 ? "..." + log.substr(log.size() - 4000) : log;
    };
    if (coordinator_ != nullptr) std::cerr << "--- coordinator\n" << tail(coordinator_->Log());
    if (gateway_ != nullptr) std::cerr << "--- gateway\n" << tail(gateway_->Log());
    for (const auto& [id, site] : sites_) {
      if (site.process != nullptr) std::cerr << "--- " << id << "\n" << tail(site.process->Log());
    }
    if (redis_ != nullptr) std::cerr << "--- redis\n" << tail(redis_->Log());
  }

  void StartRedis(const std::vector<std::string>& extra_args = {}) {
    auto redis = testing::RedisServer::Start(extra_args);
    ASSERT_TRUE(redis.ok()) << redis.status();
    redis_ = std::move(*redis);
  }

  // Starts (or restarts, on the same ports) the coordinator.
  void StartCoordinator() {
    auto child = testing::ChildProcess::Spawn(
        FEDRX_COORDINATOR_BIN, {},
        {{"FEDRX_COORDINATOR_ENDPOINT", coordinator_endpoint_},
         {"FEDRX_HTTP_LISTEN", "127.0.0.1:" + std::to_string(coordinator_http_)},
         {"FEDRX_REDIS_HOST", "127.0.0.1"},
         {"FEDRX_REDIS_PORT", std::to_string(redis_->port())},
         {"FEDRX_REDIS_COMMAND_TIMEOUT", "300ms"},
         {"FEDRX_REDIS_STARTUP_WAIT", "5s"},
         {"FEDRX_RUNNER_DRAIN_TIMEOUT", "2s"}});
    ASSERT_TRUE(child.ok()) << child.status();
    coordinator_ = std::move(*child);
    ASSERT_TRUE(testing::WaitForHttp200(coordinator_http_, "/readyz", kStartTimeout))
        << "coordinator never became ready";
  }

  void SpawnGateway(std::map<std::string, std::string> extra_env = {}) {
    std::map<std::string, std::string> env = {
        {"FEDRX_GATEWAY_SITES_ENDPOINT", gateway_endpoint_},
        {"FEDRX_GATEWAY_COORDINATOR_ENDPOINT", coordinator_endpoint_},
        {"FEDRX_HTTP_LISTEN", "127.0.0.1:" + std::to_string(gateway_http_)},
        {"FEDRX_RUNNER_DRAIN_TIMEOUT", "2s"}};
    for (auto& [k, v] : extra_env) env[k] = v;
    auto child = testing::ChildProcess::Spawn(FEDRX_GATEWAY_BIN, {}, env);
    ASSERT_TRUE(child.ok()) << child.status();
    gateway_ = std::move(*child);
  }

  // A site process; synthetic unless `extra_env` says otherwise. It connects
  // to the gateway (and registers) by itself; see WaitForGatewayAndSites.
  void SpawnSite(const std::string& id, const std::vector<std::string>& approved,
                 std::map<std::string, std::string> extra_env = {}) {
    Site site;
    site.http_port = testing::FreeTcpPort();
    std::map<std::string, std::string> env = {
        {"FEDRX_SITE_ID", id},
        {"FEDRX_SITE_INSTITUTION", "Institution " + id},
        {"FEDRX_SITE_GATEWAY", gateway_endpoint_},
        {"FEDRX_SITE_APPROVED_STUDIES", Join(approved)},
        {"FEDRX_SITE_HEARTBEAT_INTERVAL", "200ms"},
        {"FEDRX_SITE_SYNTHETIC_STEP", "0.5"},
        {"FEDRX_SITE_TRAIN_THREADS", "1"},
        {"FEDRX_RUNNER_DRAIN_TIMEOUT", "2s"},
        {"FEDRX_HTTP_LISTEN", "127.0.0.1:" + std::to_string(site.http_port)}};
    for (auto& [k, v] : extra_env) env[k] = v;
    auto child = testing::ChildProcess::Spawn(FEDRX_SITE_BIN, {}, env);
    ASSERT_TRUE(child.ok()) << child.status();
    site.process = std::move(*child);
    sites_[id] = std::move(site);
  }

  // Returns once the gateway and every site are ready (sites: registered
  // through the gateway).
  void WaitForGatewayAndSites() {
    ASSERT_TRUE(testing::WaitForHttp200(gateway_http_, "/readyz", kStartTimeout))
        << "gateway never became ready";
    for (const auto& [id, site] : sites_) {
      ASSERT_TRUE(testing::WaitForHttp200(site.http_port, "/readyz", kStartTimeout))
          << "site " << id << " never became ready";
    }
  }

  // Redis, coordinator, gateway and synthetic sites approving `studies` (and
  // the roll call), started together where they can be.
  void StartFederation(const std::vector<std::string>& site_ids,
                       const std::vector<std::string>& studies,
                       const std::vector<std::string>& redis_args = {}) {
    ASSERT_NO_FATAL_FAILURE(StartRedis(redis_args));
    ASSERT_NO_FATAL_FAILURE(StartCoordinator());
    ASSERT_NO_FATAL_FAILURE(SpawnGateway());
    std::vector<std::string> approved = studies;
    approved.push_back(kRollCall);
    for (const auto& id : site_ids) ASSERT_NO_FATAL_FAILURE(SpawnSite(id, approved));
    ASSERT_NO_FATAL_FAILURE(WaitForGatewayAndSites());
  }

  // A site the test plays, registered and heard by the coordinator: its first
  // heartbeat is forwarded before the reply to a request sent after it.
  ScriptedSite& AddScriptedSite(const std::string& id, std::vector<std::string> approved) {
    scripted_.push_back(std::make_unique<ScriptedSite>(bus_, id, std::move(approved)));
    ScriptedSite& s = *scripted_.back();
    EXPECT_TRUE(s.Connect(gateway_endpoint_).ok());
    core::Status registered = s.Register();
    EXPECT_TRUE(registered.ok()) << registered;
    EXPECT_TRUE(s.Heartbeat().ok());
    auto listed = s.Ask(codec::ListSites{});
    EXPECT_TRUE(listed.ok()) << listed.status();
    return s;
  }

  // Runs the CLI to completion; returns its exit code and what it printed.
  std::pair<int, std::string> Cli(std::vector<std::string> args, milliseconds timeout = 20s) {
    args.insert(args.begin(), {"--coordinator", coordinator_endpoint_});
    auto child = testing::ChildProcess::Spawn(FEDRX_CLI_BIN, args);
    EXPECT_TRUE(child.ok()) << child.status();
    if (!child.ok()) return {-1, ""};
    auto code = WaitPumping(**child, timeout);
    EXPECT_TRUE(code.ok()) << code.status();
    return {code.ok() ? *code : -1, (*child)->Log()};
  }

  // Waits for a child process while keeping the scripted sites alive.
  core::Result<int> WaitPumping(testing::ChildProcess& child, milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (child.Running() && std::chrono::steady_clock::now() < deadline) Pump(20ms);
    return child.Wait(100ms);
  }

  std::string WriteFile(const std::string& name, const std::string& text) {
    const std::string path = dir_.path() + "/" + name;
    std::ofstream(path) << text;
    return path;
  }

  void CreateStudy(const std::string& file_text, const std::string& name) {
    auto [code, out] = Cli({"study", "create", WriteFile(name + ".study", file_text)});
    ASSERT_EQ(code, 0) << out;
  }

  // Runs a one-round study that needs every one of `sites`: once it has
  // completed, the coordinator has heard each of them approve studies, so a
  // study created next selects all of them in its first round.
  void AwaitAvailable(const std::vector<std::string>& sites) {
    SyntheticStudy roll{kRollCall, sites, 1, static_cast<int>(sites.size()), "10s"};
    ASSERT_NO_FATAL_FAILURE(CreateStudy(StudyText(roll), kRollCall));
    codec::StudyInfo info;
    ASSERT_TRUE(WaitForStudy(kRollCall, Completed, kStudyTimeout, &info))
        << "the roll call did not complete; state " << static_cast<int>(info.state);
  }

  // Polls the bus (delivering pushes to scripted sites) for `d`, sending the
  // scripted sites' heartbeats on time.
  void Pump(milliseconds d) {
    const auto end = std::chrono::steady_clock::now() + d;
    do {
      const auto now = std::chrono::steady_clock::now();
      if (now >= next_heartbeat_) {
        for (auto& s : scripted_) s->Heartbeat().IgnoreError();
        next_heartbeat_ = now + kHeartbeat;
      }
      bus_.Poll(std::min<milliseconds>(20ms,
                                       std::chrono::duration_cast<milliseconds>(end - now) + 1ms))
          .IgnoreError();
    } while (std::chrono::steady_clock::now() < end);
  }

  core::Result<codec::StudyInfo> Study(const std::string& id) {
    FEDRX_ASSIGN_OR_RETURN(
        codec::Message m,
        core::Call(bus_, coordinator_ch_, core::MakeMessage(codec::GetStudy{id}), 2s));
    if (const auto* info = BodyOf<codec::StudyInfo>(m)) return *info;
    return core::Internal(std::string("GetStudy answered with ") + codec::BodyName(m.body));
  }

  // Polls the study until `done` holds (true) or `timeout` passes (false).
  bool WaitForStudy(const std::string& id, const std::function<bool(const codec::StudyInfo&)>& done,
                    milliseconds timeout, codec::StudyInfo* last = nullptr) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      auto info = Study(id);
      if (info.ok()) {
        if (last != nullptr) *last = *info;
        if (done(*info)) return true;
      }
      Pump(20ms);
    }
    return false;
  }

  // Waits until the scripted site has been pushed a message `match` accepts.
  std::optional<codec::Message> WaitForPush(ScriptedSite& site,
                                            const std::function<bool(const codec::Message&)>& match,
                                            milliseconds timeout = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (auto m = site.Take(match)) return m;
      Pump(10ms);
    }
    return site.Take(match);
  }

  core::Result<std::vector<float>> Model(const std::string& study, std::uint32_t version) {
    FEDRX_ASSIGN_OR_RETURN(
        codec::Message m,
        core::Call(bus_, coordinator_ch_, core::MakeMessage(codec::GetModel{study, version}), 5s));
    const auto* mv = BodyOf<codec::ModelVersion>(m);
    if (mv == nullptr || m.tensors.size() != 1) {
      return core::Internal(std::string("GetModel answered with ") + codec::BodyName(m.body));
    }
    if (mv->version != version) {
      return core::Internal("asked for version " + std::to_string(version) + ", got " +
                            std::to_string(mv->version));
    }
    return Floats(m.tensors[0]);
  }

  // A model version fetched with `fedrx study model`, read back from its file.
  std::vector<float> CliModel(const std::string& study, std::uint32_t version) {
    const std::string path = dir_.path() + "/" + study + "-v" + std::to_string(version) + ".bin";
    auto [code, out] =
        Cli({"study", "model", study, "--version", std::to_string(version), "--out", path});
    EXPECT_EQ(code, 0) << out;
    std::ifstream file(path, std::ios::binary);
    std::vector<char> bytes((std::istreambuf_iterator<char>(file)),
                            std::istreambuf_iterator<char>());
    EXPECT_EQ(bytes.size() % sizeof(float), 0u);
    std::vector<float> w(bytes.size() / sizeof(float));
    std::memcpy(w.data(), bytes.data(), w.size() * sizeof(float));
    return w;
  }

  // Every model version 1..`versions` of a synthetic study, fetched over the
  // bus, equals initial + version * step.
  void ExpectSyntheticVersions(const std::string& study, std::uint32_t versions) {
    for (std::uint32_t v = 1; v <= versions; ++v) {
      auto w = Model(study, v);
      ASSERT_TRUE(w.ok()) << "version " << v << ": " << w.status();
      EXPECT_LE(MaxAbsDiff(*w, ExpectedSynthetic(v)), 1e-5) << "model version " << v;
    }
  }

  double CoordinatorMetric(const std::string& name, const std::string& labels = "") {
    auto r = testing::HttpGet(coordinator_http_, "/metrics");
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? testing::MetricValue(r->body, name, labels) : -1;
  }

  double Rejected(const std::string& reason) {
    return CoordinatorMetric("fedrx_coordinator_updates_rejected_total",
                             "reason=\"" + reason + "\"");
  }

  testing::TempDir dir_;
  std::unique_ptr<testing::RedisServer> redis_;
  std::unique_ptr<testing::ChildProcess> coordinator_;
  std::unique_ptr<testing::ChildProcess> gateway_;
  std::map<std::string, Site> sites_;
  int coordinator_http_ = 0;
  int gateway_http_ = 0;
  std::string coordinator_endpoint_;
  std::string gateway_endpoint_;
  core::SystemClock clock_;
  core::Metrics metrics_{"test"};
  core::ZmqBus bus_{core::BusOptions{"federation-test"}, metrics_, clock_};
  core::ChannelId coordinator_ch_ = -1;
  std::vector<std::unique_ptr<ScriptedSite>> scripted_;
  std::chrono::steady_clock::time_point next_heartbeat_{};
};

TEST_F(FederationIntegrationTest, SyntheticStudyCompletesEveryRoundWithTheExactModel) {
  const std::vector<std::string> sites = {"site-a", "site-b", "site-c"};
  ASSERT_NO_FATAL_FAILURE(StartFederation(sites, {"synthetic"}));
  constexpr std::uint32_t kRounds = 4;
  // All three sites in every round: none may be missing.
  ASSERT_NO_FATAL_FAILURE(CreateStudy(StudyText({"synthetic", sites, kRounds, 3, "10s"}), "s"));

  auto [code, watched] = Cli({"study", "watch", "synthetic", "--interval", "50"}, kStudyTimeout);
  ASSERT_EQ(code, 0) << watched;
  EXPECT_NE(watched.find("study synthetic completed at model version 4"), std::string::npos)
      << watched;

  auto info = Study("synthetic");
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->model_version, kRounds);
  EXPECT_EQ(info->current_round, kRounds);
  ASSERT_EQ(info->rounds.size(), kRounds);
  for (const auto& r : info->rounds) {
    EXPECT_EQ(r.state, codec::RoundState::kClosed) << "round " << r.round;
    EXPECT_EQ(r.sites_selected, 3u) << "round " << r.round;
    EXPECT_EQ(r.updates_received, 3u) << "round " << r.round;
    EXPECT_EQ(r.samples, 3u) << "round " << r.round;  // a synthetic site reports one sample
  }

  // Every version, fetched as a user would, is initial + version * step.
  const std::size_t parameters = ml::ParameterCount(SyntheticNet());
  for (std::uint32_t v = 1; v <= kRounds; ++v) {
    const std::vector<float> w = CliModel("synthetic", v);
    ASSERT_EQ(w.size(), parameters) << "version " << v;
    EXPECT_LE(MaxAbsDiff(w, ExpectedSynthetic(v)), 1e-5) << "version " << v;
  }

  EXPECT_EQ(CoordinatorMetric("fedrx_coordinator_rounds_total", R"(outcome="closed")"), kRounds);
  EXPECT_EQ(CoordinatorMetric("fedrx_coordinator_rounds_total", R"(outcome="failed")"), -1);
  EXPECT_EQ(CoordinatorMetric("fedrx_coordinator_updates_accepted_total"), 3 * kRounds);
  EXPECT_EQ(CoordinatorMetric("fedrx_coordinator_model_version"), kRounds);
  EXPECT_EQ(CoordinatorMetric("fedrx_coordinator_dropouts_total", R"(stage="training")"), -1);
}

// Secure aggregation end to end: the same synthetic study run twice from the
// same seed, once plainly and once through the four SecAgg stages over the
// gateway. The coordinator of the secure one only ever unmasks the sum of the
// masked deltas; its models equal the plain FedAvg models within the fixed
// point's rounding: with 3 sites the encoding has 24 fractional bits, each
// site adds at most e = 2^-25 per coordinate, so a round's mean delta is off
// by at most 3e(1 + 1)/(3 - 3e) < 6e-8, plus float rounding.
TEST_F(FederationIntegrationTest, SecureAggregationStudyReachesThePlainFedAvgModel) {
  const std::vector<std::string> sites = {"site-a", "site-b", "site-c"};
  // Sites that step differently, so that the mean is not any one update.
  const std::map<std::string, float> steps = {
      {"site-a", 0.5f}, {"site-b", 0.25f}, {"site-c", 1.0f}};
  ASSERT_NO_FATAL_FAILURE(StartRedis());
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  ASSERT_NO_FATAL_FAILURE(SpawnGateway());
  for (const auto& [id, step] : steps) {
    ASSERT_NO_FATAL_FAILURE(SpawnSite(id, {"plain", "secure", kRollCall},
                                      {{"FEDRX_SITE_SYNTHETIC_STEP", std::to_string(step)}}));
  }
  ASSERT_NO_FATAL_FAILURE(WaitForGatewayAndSites());
  const double mean_step = (0.5 + 0.25 + 1.0) / 3;
  constexpr std::uint32_t kRounds = 3;
  ASSERT_NO_FATAL_FAILURE(CreateStudy(StudyText({"plain", sites, kRounds, 3, "10s"}), "plain"));
  ASSERT_TRUE(WaitForStudy("plain", Completed, kStudyTimeout));
  ASSERT_NO_FATAL_FAILURE(CreateStudy(StudyText({"secure", sites, kRounds, 3, "10s"}) +
                                          "privacy.secure_aggregation = true\n"
                                          "privacy.secagg_threshold = 2\n",
                                      "secure"));
  codec::StudyInfo info;
  ASSERT_TRUE(WaitForStudy("secure", Completed, kStudyTimeout, &info))
      << "state " << static_cast<int>(info.state) << ": " << info.detail;
  EXPECT_TRUE(info.study.secure_aggregation);
  ASSERT_EQ(info.model_version, kRounds);
  for (const auto& r : info.rounds) {
    EXPECT_EQ(r.state, codec::RoundState::kClosed) << "round " << r.round;
    EXPECT_EQ(r.updates_received, 3u) << "round " << r.round;
  }
  for (std::uint32_t v = 1; v <= kRounds; ++v) {
    auto plain = Model("plain", v);
    auto secure = Model("secure", v);
    ASSERT_TRUE(plain.ok() && secure.ok()) << "version " << v;
    const double diff = MaxAbsDiff(*secure, *plain);
    EXPECT_LE(diff, v * 6e-8 + 2e-6) << "version " << v;
    std::ostringstream shown;
    shown << diff;
    RecordProperty("secure_vs_plain_max_abs_diff_v" + std::to_string(v), shown.str());
    // And it is FedAvg: the initial model plus v mean steps (the three
    // synthetic sites report one sample each).
    std::vector<float> expected = ml::InitParameters(SyntheticNet(), kSyntheticSeed);
    for (float& x : expected) x += static_cast<float>(v * mean_step);
    EXPECT_LE(MaxAbsDiff(*secure, expected), 1e-5) << "version " << v;
  }
  // No update travelled in the clear: the secure rounds granted no upload and
  // accepted no ModelUpdate (the plain study's 3 per round are all there is).
  EXPECT_EQ(CoordinatorMetric("fedrx_coordinator_updates_rejected_total",
                              R"(reason="secure_aggregation")"),
            -1);
  EXPECT_EQ(CoordinatorMetric("fedrx_coordinator_update_aggregation_seconds_count"),
            2 * 3 * kRounds);  // plain updates + masked inputs, each folded once
  EXPECT_EQ(CoordinatorMetric("fedrx_coordinator_secagg_finish_seconds_count"), kRounds);
  EXPECT_EQ(CoordinatorMetric("fedrx_coordinator_rounds_total", R"(outcome="failed")"), -1);
  for (const auto& id : sites) {
    auto r = testing::HttpGet(sites_[id].http_port, "/metrics");
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(testing::MetricValue(r->body, "fedrx_site_secagg_rounds_total"), kRounds) << id;
  }
}

// SecAgg+ end to end (privacy.secagg_neighbours = 2): five sites, each
// masking with and sharing its secrets among only two neighbours of a random
// graph drawn each round, with threshold 2 per neighbourhood of three. The
// masks still cancel in the sum: the model is the plain FedAvg of the five
// synthetic steps (one sample each), within the fixed point's rounding
// (5 sites: 24 fractional bits, well under 1e-5 over two rounds).
TEST_F(FederationIntegrationTest, SecAggPlusStudyWithTwoNeighboursReachesTheFedAvgModel) {
  const std::map<std::string, float> steps = {
      {"site-a", 0.5f}, {"site-b", 0.25f}, {"site-c", 1.0f}, {"site-d", 0.75f}, {"site-e", 0.125f}};
  std::vector<std::string> sites;
  ASSERT_NO_FATAL_FAILURE(StartRedis());
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  ASSERT_NO_FATAL_FAILURE(SpawnGateway());
  for (const auto& [id, step] : steps) {
    sites.push_back(id);
    ASSERT_NO_FATAL_FAILURE(
        SpawnSite(id, {"sparse"}, {{"FEDRX_SITE_SYNTHETIC_STEP", std::to_string(step)}}));
  }
  ASSERT_NO_FATAL_FAILURE(WaitForGatewayAndSites());
  const double mean_step = (0.5 + 0.25 + 1.0 + 0.75 + 0.125) / 5;
  constexpr std::uint32_t kRounds = 2;
  ASSERT_NO_FATAL_FAILURE(CreateStudy(StudyText({"sparse", sites, kRounds, 5, "10s"}) +
                                          "privacy.secure_aggregation = true\n"
                                          "privacy.secagg_threshold = 2\n"
                                          "privacy.secagg_neighbours = 2\n",
                                      "sparse"));
  codec::StudyInfo info;
  ASSERT_TRUE(WaitForStudy("sparse", Completed, kStudyTimeout, &info))
      << "state " << static_cast<int>(info.state) << ": " << info.detail;
  EXPECT_EQ(info.study.secagg_neighbours, 2u);
  ASSERT_EQ(info.model_version, kRounds);
  for (const auto& r : info.rounds) {
    EXPECT_EQ(r.state, codec::RoundState::kClosed) << "round " << r.round;
    EXPECT_EQ(r.updates_received, 5u) << "round " << r.round;
  }
  for (std::uint32_t v = 1; v <= kRounds; ++v) {
    auto secure = Model("sparse", v);
    ASSERT_TRUE(secure.ok()) << "version " << v;
    std::vector<float> expected = ml::InitParameters(SyntheticNet(), kSyntheticSeed);
    for (float& x : expected) x += static_cast<float>(v * mean_step);
    EXPECT_LE(MaxAbsDiff(*secure, expected), 1e-5) << "version " << v;
  }
  EXPECT_EQ(CoordinatorMetric("fedrx_coordinator_secagg_finish_seconds_count"), kRounds);
  for (const auto& id : sites) {
    auto r = testing::HttpGet(sites_[id].http_port, "/metrics");
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(testing::MetricValue(r->body, "fedrx_site_secagg_rounds_total"), kRounds) << id;
  }
}

TEST_F(FederationIntegrationTest, KilledSiteIsDroppedAtTheDeadlineAndTheOthersCarryOn) {
  const std::vector<std::string> sites = {"site-a", "site-b", "site-c"};
  ASSERT_NO_FATAL_FAILURE(StartFederation(sites, {"resilient"}));
  ASSERT_NO_FATAL_FAILURE(AwaitAvailable(sites));

  // site-b hangs, so the first round is still open (site-a delivered, site-b
  // not) when it is killed. Each round that still selects site-b waits for
  // its 500 ms deadline; the coordinator stops selecting a site it has not
  // heard from for 6 s, so 16 rounds are enough for the last to select two.
  constexpr std::uint32_t kRounds = 16;
  ASSERT_TRUE(sites_["site-b"].process->Signal(SIGSTOP).ok());
  ASSERT_NO_FATAL_FAILURE(
      CreateStudy(StudyText({"resilient", sites, kRounds, 2, "500ms"}), "resilient"));
  codec::StudyInfo info;
  ASSERT_TRUE(WaitForStudy(
      "resilient",
      [](const codec::StudyInfo& i) {
        return !i.rounds.empty() && i.rounds[0].state == codec::RoundState::kTraining &&
               i.rounds[0].updates_received == 1;
      },
      10s, &info))
      << "round 1 never held site-a's update alone";
  ASSERT_TRUE(sites_["site-b"].process->Signal(SIGKILL).ok());
  auto killed = sites_["site-b"].process->Wait(5s);
  ASSERT_TRUE(killed.ok());
  EXPECT_EQ(*killed, 128 + SIGKILL);

  ASSERT_TRUE(WaitForStudy("resilient", Completed, kStudyTimeout, &info))
      << "study stuck at round " << info.current_round;
  EXPECT_EQ(info.model_version, kRounds);
  ASSERT_EQ(info.rounds.size(), kRounds);
  EXPECT_EQ(info.rounds.front().sites_selected, 3u);
  std::uint32_t missed = 0;
  for (const auto& r : info.rounds) {
    EXPECT_EQ(r.state, codec::RoundState::kClosed) << "round " << r.round;
    EXPECT_EQ(r.updates_received, 2u) << "round " << r.round;
    EXPECT_EQ(r.samples, 2u) << "round " << r.round;
    missed += r.sites_selected - r.updates_received;
  }
  EXPECT_EQ(info.rounds.back().sites_selected, 2u) << "the dead site is still being selected";
  // Every miss is a counted dropout; the task itself still reached the gateway.
  EXPECT_GE(missed, 1u);
  EXPECT_EQ(CoordinatorMetric("fedrx_coordinator_dropouts_total", R"(stage="training")"), missed);
  EXPECT_EQ(CoordinatorMetric("fedrx_coordinator_rounds_total", R"(outcome="closed")"),
            kRounds + 1);
  EXPECT_EQ(CoordinatorMetric("fedrx_coordinator_rounds_total", R"(outcome="failed")"), -1);
  ASSERT_NO_FATAL_FAILURE(ExpectSyntheticVersions("resilient", kRounds));
  EXPECT_TRUE(sites_["site-a"].process->Running());
  EXPECT_TRUE(sites_["site-c"].process->Running());
}

void ExpectRefused(const core::Result<codec::Message>& reply, StatusCode code,
                   const std::string& where, const std::string& what) {
  ASSERT_FALSE(reply.ok()) << what << " was accepted: " << codec::BodyName(reply->body);
  EXPECT_EQ(reply.status().code(), code) << what << ": " << reply.status();
  EXPECT_EQ(reply.status().where(), where) << what << ": " << reply.status();
}

TEST_F(FederationIntegrationTest, BadUpdatesThroughTheGatewayAreRefusedCountedAndHarmless) {
  ASSERT_NO_FATAL_FAILURE(StartFederation({"site-a", "site-b"}, {"main"}));
  ASSERT_NO_FATAL_FAILURE(AwaitAvailable({"site-a", "site-b"}));
  // site-x takes part in "main" and misbehaves; site-y holds the first round
  // of "other" (which site-x is not in) open by never reporting ready.
  ScriptedSite& x = AddScriptedSite("site-x", {"main"});
  ScriptedSite& y = AddScriptedSite("site-y", {"other"});
  ASSERT_FALSE(HasFailure());
  ASSERT_NO_FATAL_FAILURE(CreateStudy(StudyText({"other", {"site-y"}, 1, 1, "60s"}), "other"));
  ASSERT_TRUE(WaitForPush(y, TrainTaskFor("other", 1)).has_value());
  ASSERT_NO_FATAL_FAILURE(
      CreateStudy(StudyText({"main", {"site-a", "site-b", "site-x"}, 3, 2, "20s"}), "main"));
  const std::size_t parameters = ml::ParameterCount(SyntheticNet());
  const auto update = [&](std::uint32_t round, std::uint32_t base) {
    return codec::ModelUpdate{"main", round, "site-x", base, 1, {}};
  };

  // --- Round 1. The honest sites deliver; the round waits for site-x.
  auto task = WaitForPush(x, TrainTaskFor("main", 1));
  ASSERT_TRUE(task.has_value());
  ASSERT_EQ(task->tensors.size(), 1u);
  EXPECT_LE(MaxAbsDiff(Floats(task->tensors[0]), ExpectedSynthetic(0)), 1e-6);
  std::vector<float> honest = ExpectedSynthetic(1);

  ExpectRefused(x.Ask(update(1, 0), WeightsTensor(honest)), StatusCode::kFailedPrecondition,
                "ModelUpdate", "an update without a grant");
  ExpectRefused(x.Ask(codec::ModelUpdate{"main", 1, "site-a", 0, 1, {}}, WeightsTensor(honest)),
                StatusCode::kPermissionDenied, "ModelUpdate.site_id",
                "an update naming another site");
  ExpectRefused(x.Ask(codec::ModelUpdate{"other", 1, "site-x", 0, 1, {}}, WeightsTensor(honest)),
                StatusCode::kPermissionDenied, "envelope.origin",
                "an update for a study site-x is not in");
  ASSERT_TRUE(x.Send(codec::UpdateReady{"main", 1, 0, 1, {}}).ok());
  ASSERT_TRUE(WaitForPush(x, GrantFor("main", 1)).has_value()) << "no grant for round 1";
  std::vector<float> short_weights(parameters - 1, 0.25f);
  ExpectRefused(x.Ask(update(1, 0), WeightsTensor(short_weights)), StatusCode::kInvalidArgument,
                "tensor 0", "an update of the wrong shape");

  // --- Round 2: the wrong shape ended site-x's part in round 1, which closed
  // with the honest sites.
  task = WaitForPush(x, TrainTaskFor("main", 2));
  ASSERT_TRUE(task.has_value());
  EXPECT_LE(MaxAbsDiff(Floats(task->tensors[0]), ExpectedSynthetic(1)), 1e-5);
  ExpectRefused(x.Ask(update(1, 0), WeightsTensor(honest)), StatusCode::kFailedPrecondition,
                "ModelUpdate.round", "an update for a finished round");
  ASSERT_TRUE(x.Send(codec::UpdateReady{"main", 2, 1, 1, {}}).ok());
  ASSERT_TRUE(WaitForPush(x, GrantFor("main", 2)).has_value()) << "no grant for round 2";
  std::vector<float> poisoned = ExpectedSynthetic(2);
  poisoned[parameters / 2] = std::nanf("");
  ExpectRefused(x.Ask(update(2, 1), WeightsTensor(poisoned)), StatusCode::kInvalidArgument,
                "tensor 0 (weights)", "an update with a NaN");

  // --- Round 3: a ready report from the wrong base is refused without
  // dropping site-x, whose honest update then counts.
  task = WaitForPush(x, TrainTaskFor("main", 3));
  ASSERT_TRUE(task.has_value());
  EXPECT_LE(MaxAbsDiff(Floats(task->tensors[0]), ExpectedSynthetic(2)), 1e-5);
  ASSERT_TRUE(x.Send(codec::UpdateReady{"main", 3, 0, 1, {}}).ok());
  auto refusal = WaitForPush(x, IsError);
  ASSERT_TRUE(refusal.has_value()) << "a ready report from the wrong base was not answered";
  EXPECT_EQ(BodyOf<codec::Error>(*refusal)->code, codec::ErrorCode::kFailedPrecondition);
  EXPECT_EQ(BodyOf<codec::Error>(*refusal)->where, "UpdateReady.base_version");
  ASSERT_TRUE(x.Send(codec::UpdateReady{"main", 3, 2, 1, {}}).ok());
  ASSERT_TRUE(WaitForPush(x, GrantFor("main", 3)).has_value()) << "no grant for round 3";
  auto accepted = x.Ask(update(3, 2), WeightsTensor(ExpectedSynthetic(3)));
  ASSERT_TRUE(accepted.ok()) << accepted.status();
  EXPECT_NE(BodyOf<codec::Ack>(*accepted), nullptr);

  // A connection that never registered is stopped at the gateway.
  ScriptedSite stranger(bus_, "site-z", {"main"});
  ASSERT_TRUE(stranger.Connect(gateway_endpoint_).ok());
  ExpectRefused(stranger.Ask(update(3, 2), WeightsTensor(honest)), StatusCode::kFailedPrecondition,
                "envelope.origin", "an update from an unregistered connection");

  codec::StudyInfo info;
  ASSERT_TRUE(WaitForStudy("main", Completed, kStudyTimeout, &info));
  EXPECT_EQ(info.model_version, 3u);
  ASSERT_EQ(info.rounds.size(), 3u);
  const std::uint32_t expected_updates[] = {2, 2, 3};
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(info.rounds[i].state, codec::RoundState::kClosed) << "round " << i + 1;
    EXPECT_EQ(info.rounds[i].sites_selected, 3u) << "round " << i + 1;
    EXPECT_EQ(info.rounds[i].updates_received, expected_updates[i]) << "round " << i + 1;
  }
  ASSERT_NO_FATAL_FAILURE(ExpectSyntheticVersions("main", 3));

  EXPECT_EQ(Rejected("not_granted"), 1);
  EXPECT_EQ(Rejected("not_selected"), 1);
  EXPECT_EQ(Rejected("wrong_shape"), 1);
  EXPECT_EQ(Rejected("stale_round"), 1);
  EXPECT_EQ(Rejected("not_finite"), 1);
  EXPECT_EQ(Rejected("wrong_base"), 1);
  // Roll call 2, then 2 + 2 + 3.
  EXPECT_EQ(CoordinatorMetric("fedrx_coordinator_updates_accepted_total"), 9);
  auto gateway_metrics = testing::HttpGet(gateway_http_, "/metrics");
  ASSERT_TRUE(gateway_metrics.ok());
  EXPECT_EQ(testing::MetricValue(gateway_metrics->body, "fedrx_gateway_rejected_total",
                                 R"(reason="unregistered")"),
            1);
  // "other" is untouched: still in its first round, with nothing received.
  auto other = Study("other");
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_EQ(other->state, codec::StudyState::kRunning);
  ASSERT_EQ(other->rounds.size(), 1u);
  EXPECT_EQ(other->rounds[0].state, codec::RoundState::kTraining);
  EXPECT_EQ(other->rounds[0].updates_received, 0u);
}

TEST_F(FederationIntegrationTest, CoordinatorKilledMidStudyResumesFromRedisToTheSameModel) {
  ASSERT_NO_FATAL_FAILURE(StartFederation({"site-a", "site-b"}, {"durable"}));
  ASSERT_NO_FATAL_FAILURE(AwaitAvailable({"site-a", "site-b"}));
  // site-x never reports ready, so every round lasts its 500 ms deadline and
  // the study is certainly under way when the coordinator dies.
  AddScriptedSite("site-x", {"durable"});
  ASSERT_FALSE(HasFailure());
  constexpr std::uint32_t kRounds = 6;
  ASSERT_NO_FATAL_FAILURE(CreateStudy(
      StudyText({"durable", {"site-a", "site-b", "site-x"}, kRounds, 2, "500ms"}), "durable"));
  codec::StudyInfo info;
  ASSERT_TRUE(WaitForStudy(
      "durable",
      [](const codec::StudyInfo& i) {
        return i.model_version >= 2 && i.state == codec::StudyState::kRunning;
      },
      kStudyTimeout, &info));

  ASSERT_TRUE(coordinator_->Signal(SIGKILL).ok());
  auto killed = coordinator_->Wait(5s);
  ASSERT_TRUE(killed.ok());
  EXPECT_EQ(*killed, 128 + SIGKILL);
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());

  ASSERT_TRUE(WaitForStudy("durable", Completed, kStudyTimeout, &info))
      << "study stuck at round " << info.current_round;
  // It resumed where Redis said the study was, mid-study.
  std::smatch resumed;
  const std::string log = coordinator_->Log();
  ASSERT_TRUE(std::regex_search(log, resumed, std::regex("resuming study durable at round (\\d+)")))
      << log;
  const int resumed_round = std::stoi(resumed[1]);
  EXPECT_GE(resumed_round, 3);
  EXPECT_LE(resumed_round, static_cast<int>(kRounds));

  EXPECT_EQ(info.model_version, kRounds);
  ASSERT_EQ(info.rounds.size(), kRounds);
  for (const auto& r : info.rounds) {
    EXPECT_EQ(r.state, codec::RoundState::kClosed) << "round " << r.round;
    EXPECT_EQ(r.updates_received, 2u) << "round " << r.round;
  }
  ASSERT_NO_FATAL_FAILURE(ExpectSyntheticVersions("durable", kRounds));
  EXPECT_EQ(CoordinatorMetric("fedrx_coordinator_rounds_total", R"(outcome="failed")"), -1);
}

TEST_F(FederationIntegrationTest, RedisRestartedMidStudyLosesNothingAndTheStudyFinishes) {
  ASSERT_NO_FATAL_FAILURE(StartFederation({"site-a", "site-b"}, {"persistent"},
                                          {"--appendonly", "yes", "--appendfsync", "always"}));
  ASSERT_NO_FATAL_FAILURE(AwaitAvailable({"site-a", "site-b"}));
  AddScriptedSite("site-x", {"persistent"});
  ASSERT_FALSE(HasFailure());
  constexpr std::uint32_t kRounds = 4;
  ASSERT_NO_FATAL_FAILURE(CreateStudy(
      StudyText({"persistent", {"site-a", "site-b", "site-x"}, kRounds, 2, "1s"}), "persistent"));
  // Round 2 holds both honest updates and waits for site-x until its deadline.
  codec::StudyInfo info;
  ASSERT_TRUE(WaitForStudy(
      "persistent",
      [](const codec::StudyInfo& i) {
        return i.rounds.size() == 2 && i.rounds[1].state == codec::RoundState::kTraining &&
               i.rounds[1].updates_received == 2;
      },
      kStudyTimeout, &info));

  // Redis dies while the round is open (SIGKILL: only what it had written to
  // its append-only file survives), and stays away until the coordinator has
  // tried to close the round and failed to store it.
  ASSERT_TRUE(redis_->Kill().ok());
  const double errors_before = std::max(
      0.0,
      CoordinatorMetric("fedrx_coordinator_errors_total", R"(component="study",reason="tick")"));
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (CoordinatorMetric("fedrx_coordinator_errors_total",
                           R"(component="study",reason="tick")") <= errors_before &&
         std::chrono::steady_clock::now() < deadline) {
    Pump(50ms);
  }
  ASSERT_GT(
      CoordinatorMetric("fedrx_coordinator_errors_total", R"(component="study",reason="tick")"),
      errors_before)
      << "the coordinator never needed Redis while it was down";
  ASSERT_TRUE(redis_->Restart().ok());

  ASSERT_TRUE(WaitForStudy("persistent", Completed, kStudyTimeout, &info))
      << "study stuck at round " << info.current_round << " after the Redis restart";
  EXPECT_EQ(info.model_version, kRounds);
  ASSERT_EQ(info.rounds.size(), kRounds);
  for (const auto& r : info.rounds) {
    EXPECT_EQ(r.state, codec::RoundState::kClosed) << "round " << r.round;
    EXPECT_EQ(r.updates_received, 2u) << "round " << r.round;
  }
  ASSERT_NO_FATAL_FAILURE(ExpectSyntheticVersions("persistent", kRounds));

  // Registrations and the earlier study came back from Redis's append-only file.
  auto [code, listing] = Cli({"sites", "list"});
  ASSERT_EQ(code, 0) << listing;
  for (const char* site : {"site-a", "site-b", "site-x"}) {
    EXPECT_NE(listing.find(site), std::string::npos) << listing;
  }
  EXPECT_NE(listing.find("3 site(s)"), std::string::npos) << listing;
  auto roll_call = Study(kRollCall);
  ASSERT_TRUE(roll_call.ok()) << roll_call.status();
  EXPECT_EQ(roll_call->state, codec::StudyState::kCompleted);
  EXPECT_EQ(roll_call->model_version, 1u);
  auto v1 = Model(kRollCall, 1);
  ASSERT_TRUE(v1.ok()) << v1.status();
  EXPECT_LE(MaxAbsDiff(*v1, ExpectedSynthetic(1)), 1e-5);
  EXPECT_TRUE(coordinator_->Running());
}

// Rows of each split in a CSV written by `fedrx-lab prepare` (split is the
// last column).
std::map<std::string, std::uint64_t> SplitCounts(const std::string& path) {
  std::map<std::string, std::uint64_t> counts;
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    ++counts[line.substr(line.rfind(',') + 1)];
  }
  return counts;
}

TEST_F(FederationIntegrationTest, TwoSitesLearnToxicityFromTheirOwnTox21Shares) {
  // A slice of Tox21, dealt to two sites by scaffold as the demo does.
  std::ifstream tox21(FEDRX_TOX21_CSV);
  ASSERT_TRUE(tox21.good()) << FEDRX_TOX21_CSV;
  std::ofstream slice(dir_.path() + "/tox21-slice.csv");
  std::string line;
  for (int i = 0; i <= 600 && std::getline(tox21, line); ++i) slice << line << "\n";
  slice.close();
  const std::string data = dir_.path() + "/shares";
  std::filesystem::create_directories(data);
  auto lab = testing::ChildProcess::Spawn(
      FEDRX_LAB_BIN, {"prepare", "--data", dir_.path() + "/tox21-slice.csv", "--out", data,
                      "--sites", "site-a,site-b", "--shares", "0.6,0.4", "--seed", "7"});
  ASSERT_TRUE(lab.ok()) << lab.status();
  auto prepared = (*lab)->Wait(60s);
  ASSERT_TRUE(prepared.ok());
  ASSERT_EQ(*prepared, 0) << (*lab)->Log();
  const auto a = SplitCounts(data + "/site-a.csv");
  const auto b = SplitCounts(data + "/site-b.csv");
  const std::uint64_t train_rows = a.at("train") + b.at("train");
  const std::uint64_t valid_rows = a.at("valid") + b.at("valid");
  ASSERT_GT(a.at("train"), 0u);
  ASSERT_GT(b.at("train"), 0u);

  ASSERT_NO_FATAL_FAILURE(StartRedis());
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  ASSERT_NO_FATAL_FAILURE(SpawnGateway());
  for (const char* site : {"site-a", "site-b"}) {
    ASSERT_NO_FATAL_FAILURE(SpawnSite(site, {"tox21-slice"},
                                      {{"FEDRX_SITE_SYNTHETIC_STEP", "0"},
                                       {"FEDRX_SITE_DATA", data + "/" + site + ".csv"},
                                       {"FEDRX_SITE_FINGERPRINT_BITS", "256"},
                                       {"FEDRX_SITE_FINGERPRINT_RADIUS", "2"}}));
  }
  ASSERT_NO_FATAL_FAILURE(WaitForGatewayAndSites());
  // The demo's twelve assays on a small network over 256-bit fingerprints.
  const std::string study =
      "study.id = tox21-slice\n"
      "study.tasks = NR-AR,NR-AR-LBD,NR-AhR,NR-Aromatase,NR-ER,NR-ER-LBD,NR-PPAR-gamma,SR-ARE,"
      "SR-ATAD5,SR-HSE,SR-MMP,SR-p53\n"
      "study.sites = site-a,site-b\n"
      "model.input_dim = 256\n"
      "model.hidden = 32\n"
      "model.dropout = 0.1\n"
      "train.rounds = 2\n"
      "train.local_epochs = 2\n"
      "train.learning_rate = 0.01\n"
      "train.batch_size = 32\n"
      "train.min_sites = 2\n"
      "train.round_deadline = 60s\n"
      "train.seed = 3\n"
      "train.evaluate_every = 1\n"
      "featurize.radius = 2\n";
  ASSERT_NO_FATAL_FAILURE(CreateStudy(study, "tox21-slice"));

  auto [code, watched] = Cli({"study", "watch", "tox21-slice", "--interval", "100"}, kStudyTimeout);
  ASSERT_EQ(code, 0) << watched;
  EXPECT_NE(watched.find("study tox21-slice completed at model version 2"), std::string::npos)
      << watched;
  auto [show_code, shown] = Cli({"study", "show", "tox21-slice"});
  ASSERT_EQ(show_code, 0) << shown;
  EXPECT_NE(shown.find("completed, round 2/2, model version 2"), std::string::npos) << shown;
  EXPECT_NE(shown.find("valid ROC-AUC"), std::string::npos) << shown;

  auto info = Study("tox21-slice");
  ASSERT_TRUE(info.ok()) << info.status();
  ASSERT_EQ(info->rounds.size(), 2u);
  for (const auto& r : info->rounds) {
    EXPECT_EQ(r.state, codec::RoundState::kClosed) << "round " << r.round;
    EXPECT_EQ(r.updates_received, 2u) << "round " << r.round;
    EXPECT_EQ(r.samples, train_rows) << "round " << r.round;
    // Both sites evaluated the round's model on all their validation rows.
    EXPECT_EQ(RoundMetric(r, "valid_samples"), static_cast<double>(valid_rows))
        << "round " << r.round;
    const double auc = RoundMetric(r, "valid_mean_roc_auc");
    EXPECT_TRUE(auc > 0 && auc <= 1) << "round " << r.round << ": " << auc;
  }
  EXPECT_NEAR(CoordinatorMetric("fedrx_coordinator_validation_mean_roc_auc"),
              RoundMetric(info->rounds.back(), "valid_mean_roc_auc"), 1e-6);

  // The model a user fetches has the network's size, is finite, and is not
  // the initial model: the sites trained it.
  ml::NetSpec net;
  net.input_dim = 256;
  net.hidden = {32};
  net.num_tasks = 12;
  net.dropout = 0.1f;
  const std::vector<float> model = CliModel("tox21-slice", 2);
  ASSERT_EQ(model.size(), ml::ParameterCount(net));
  EXPECT_EQ(model.size(), 256u * 32 + 32 + 32 * 12 + 12);
  EXPECT_TRUE(ml::ValidateParameters(net, model).ok());
  EXPECT_GT(MaxAbsDiff(model, ml::InitParameters(net, 3)), 1e-4);
  auto latest = Model("tox21-slice", 2);
  ASSERT_TRUE(latest.ok()) << latest.status();
  EXPECT_EQ(MaxAbsDiff(model, *latest), 0);

  // Each version's calibration is in Redis, summed over both sites: the
  // validation rows behind the score and domain histograms, the training
  // rows behind the embedding moments of the 32-unit trunk.
  core::RedisOptions ro;
  ro.port = redis_->port();
  auto redis = core::RedisStateStore::Connect(ro, nullptr);
  ASSERT_TRUE(redis.ok()) << redis.status();
  coordinator::StudyStore studies(**redis);
  for (std::uint32_t version : {1u, 2u}) {
    auto calibration = studies.LoadCalibration("tox21-slice", version);
    ASSERT_TRUE(calibration.ok()) << calibration.status();
    ASSERT_TRUE(calibration->has_value()) << "version " << version;
    const coordinator::VersionCalibration& c = **calibration;
    EXPECT_EQ(c.samples, valid_rows);
    EXPECT_EQ(c.tasks.size(), 12u);
    EXPECT_EQ(c.histograms.size(), 12u);
    EXPECT_EQ(c.embedding.rows, train_rows);
    EXPECT_EQ(c.embedding.sum.size(), 32u);
    std::uint64_t scored = 0;
    for (std::uint64_t n : c.domain_histogram) scored += n;
    EXPECT_EQ(scored, valid_rows) << "version " << version;
  }
}

TEST_F(FederationIntegrationTest, SitesWithDifferentTasksShareATrunkAndKeepTheirHeads) {
  // Private heads: site-a holds Tox21 assays (12 tasks), site-b ClinTox's
  // two clinical endpoints; one study federates the trunk between them.
  std::ifstream tox21(FEDRX_TOX21_CSV);
  ASSERT_TRUE(tox21.good()) << FEDRX_TOX21_CSV;
  std::ofstream slice(dir_.path() + "/site-a.csv");
  std::string line;
  for (int i = 0; i <= 500 && std::getline(tox21, line); ++i) slice << line << "\n";
  slice.close();
  // ClinTox is vendored beside Tox21 (deploy/data/clintox).
  const std::string clintox = (std::filesystem::path(FEDRX_TOX21_CSV).parent_path().parent_path() /
                               "clintox" / "clintox.csv")
                                  .string();
  ASSERT_TRUE(std::filesystem::exists(clintox)) << clintox;

  ASSERT_NO_FATAL_FAILURE(StartRedis());
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  ASSERT_NO_FATAL_FAILURE(SpawnGateway());
  const std::map<std::string, std::string> data = {{"site-a", dir_.path() + "/site-a.csv"},
                                                   {"site-b", clintox}};
  for (const auto& [site, path] : data) {
    ASSERT_NO_FATAL_FAILURE(SpawnSite(site, {"private-heads"},
                                      {{"FEDRX_SITE_SYNTHETIC_STEP", "0"},
                                       {"FEDRX_SITE_DATA", path},
                                       {"FEDRX_SITE_FINGERPRINT_BITS", "256"},
                                       {"FEDRX_SITE_FINGERPRINT_RADIUS", "2"}}));
  }
  ASSERT_NO_FATAL_FAILURE(WaitForGatewayAndSites());
  // No tasks named: each site brings its own.
  const std::string study =
      "study.id = private-heads\n"
      "study.sites = site-a,site-b\n"
      "model.input_dim = 256\n"
      "model.hidden = 32\n"
      "model.dropout = 0.1\n"
      "train.private_heads = true\n"
      "train.rounds = 2\n"
      "train.local_epochs = 2\n"
      "train.learning_rate = 0.01\n"
      "train.batch_size = 32\n"
      "train.min_sites = 2\n"
      "train.round_deadline = 60s\n"
      "train.seed = 3\n"
      "train.evaluate_every = 1\n"
      "featurize.radius = 2\n";
  ASSERT_NO_FATAL_FAILURE(CreateStudy(study, "private-heads"));

  auto [code, watched] =
      Cli({"study", "watch", "private-heads", "--interval", "100"}, kStudyTimeout);
  ASSERT_EQ(code, 0) << watched;
  EXPECT_NE(watched.find("study private-heads completed at model version 2"), std::string::npos)
      << watched;

  auto info = Study("private-heads");
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_TRUE(info->study.private_heads);
  EXPECT_EQ(info->study.model.num_tasks, 0u);
  ASSERT_EQ(info->rounds.size(), 2u);
  const std::vector<std::string> tox21_tasks = {
      "NR-AR",         "NR-AR-LBD", "NR-AhR",   "NR-Aromatase", "NR-ER",  "NR-ER-LBD",
      "NR-PPAR-gamma", "SR-ARE",    "SR-ATAD5", "SR-HSE",       "SR-MMP", "SR-p53"};
  for (const auto& r : info->rounds) {
    EXPECT_EQ(r.state, codec::RoundState::kClosed) << "round " << r.round;
    EXPECT_EQ(r.updates_received, 2u) << "round " << r.round;
    // Per-task metrics of both sites' own tasks, and of no other task.
    bool tox = false, clinical = false;
    for (const auto& m : r.metrics) {
      if (m.name.rfind("valid_roc_auc:", 0) != 0) continue;
      const std::string task = m.name.substr(std::strlen("valid_roc_auc:"));
      const bool is_tox =
          std::find(tox21_tasks.begin(), tox21_tasks.end(), task) != tox21_tasks.end();
      const bool is_clinical = task == "FDA_APPROVED" || task == "CT_TOX";
      EXPECT_TRUE(is_tox || is_clinical) << task;
      tox = tox || is_tox;
      clinical = clinical || is_clinical;
      EXPECT_TRUE(m.value >= 0 && m.value <= 1) << task << " " << m.value;
    }
    EXPECT_TRUE(tox) << "round " << r.round << ": no Tox21 task evaluated";
    EXPECT_TRUE(clinical) << "round " << r.round << ": no ClinTox task evaluated";
  }

  // The global model is the trunk (256 -> 32) alone, trained away from its start.
  ml::NetSpec trunk;
  trunk.input_dim = 256;
  trunk.hidden = {32};
  trunk.num_tasks = 0;
  trunk.dropout = 0.1f;
  const std::vector<float> model = CliModel("private-heads", 2);
  ASSERT_EQ(model.size(), 256u * 32 + 32);
  EXPECT_TRUE(ml::ValidateTrunkParameters(trunk, model).ok());
  std::vector<float> initial = ml::InitParameters(ml::WithHead(trunk, 1), 3);
  initial.resize(model.size());
  EXPECT_GT(MaxAbsDiff(model, initial), 1e-4);
  // Nothing the sites sent was refused (a head-sized update would have been).
  const double wrong_shape = Rejected("wrong_shape");
  EXPECT_TRUE(std::isnan(wrong_shape) || wrong_shape <= 0) << wrong_shape;
}

TEST_F(FederationIntegrationTest, CurveGatewayServesAnEnrolledSiteAndNeverAnUnenrolledOne) {
  ASSERT_NO_FATAL_FAILURE(StartRedis());
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  const std::string redis = "127.0.0.1:" + std::to_string(redis_->port());

  auto gateway_keys = core::GenerateCurveKeyPair();
  ASSERT_TRUE(gateway_keys.ok()) << gateway_keys.status();
  const std::string gateway_key_file = dir_.path() + "/gateway.key";
  ASSERT_TRUE(core::WriteCurveKeyPair(gateway_key_file, *gateway_keys).ok());

  const std::string enrolled_key_file = dir_.path() + "/site-a.key";
  auto [code, out] = Cli({"institutions", "enrol", "--id", "site-a", "--name", "Institution A",
                          "--role", "site", "--key-out", enrolled_key_file, "--redis", redis});
  ASSERT_EQ(code, 0) << out;
  // A valid key pair the registry has never seen.
  auto stranger_keys = core::GenerateCurveKeyPair();
  ASSERT_TRUE(stranger_keys.ok()) << stranger_keys.status();
  const std::string stranger_key_file = dir_.path() + "/site-b.key";
  ASSERT_TRUE(core::WriteCurveKeyPair(stranger_key_file, *stranger_keys).ok());

  ASSERT_NO_FATAL_FAILURE(SpawnGateway({{"FEDRX_GATEWAY_CURVE_KEY_FILE", gateway_key_file},
                                        {"FEDRX_REDIS_HOST", "127.0.0.1"},
                                        {"FEDRX_REDIS_PORT", std::to_string(redis_->port())},
                                        {"FEDRX_REDIS_STARTUP_WAIT", "5s"}}));
  const std::vector<std::string> approved = {kRollCall};
  ASSERT_NO_FATAL_FAILURE(SpawnSite("site-a", approved,
                                    {{"FEDRX_SITE_KEY_FILE", enrolled_key_file},
                                     {"FEDRX_SITE_GATEWAY_PUBLIC_KEY", gateway_keys->public_key}}));
  ASSERT_NO_FATAL_FAILURE(SpawnSite("site-b", approved,
                                    {{"FEDRX_SITE_KEY_FILE", stranger_key_file},
                                     {"FEDRX_SITE_GATEWAY_PUBLIC_KEY", gateway_keys->public_key}}));
  ASSERT_TRUE(testing::WaitForHttp200(gateway_http_, "/readyz", kStartTimeout))
      << "gateway never became ready";
  ASSERT_TRUE(testing::WaitForHttp200(sites_["site-a"].http_port, "/readyz", kStartTimeout))
      << "the enrolled site never became ready";

  // A one-round study that needs site-a completes through the CURVE gateway.
  ASSERT_NO_FATAL_FAILURE(AwaitAvailable({"site-a"}));

  // The unenrolled site never got through: not ready, never registered.
  EXPECT_FALSE(testing::WaitForHttp200(sites_["site-b"].http_port, "/readyz", 1s));
  auto [list_code, listed] = Cli({"sites", "list"});
  ASSERT_EQ(list_code, 0) << listed;
  EXPECT_NE(listed.find("site-a"), std::string::npos) << listed;
  EXPECT_EQ(listed.find("site-b"), std::string::npos) << listed;

  // The gateway's own bus refused the stranger's handshakes and admitted site-a's.
  auto metrics = testing::HttpGet(gateway_http_, "/metrics");
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_GE(testing::MetricValue(metrics->body, "fedrx_gateway_authentications_total",
                                 R"(result="denied")"),
            1);
  EXPECT_GE(
      testing::MetricValue(metrics->body, "fedrx_gateway_authentications_total", R"(result="ok")"),
      1);

  auto [audit_code, audit] = Cli({"audit", "verify", "--redis", redis});
  EXPECT_EQ(audit_code, 0) << audit;
}

}  // namespace
}  // namespace fedrx
