// Two coordinator replicas behind one gateway, as separate processes on
// loopback with a real Redis and synthetic sites (training adds a constant,
// so every model version is exactly predictable). A reference study runs
// while only one replica is up (a run with one coordinator); then the second
// replica joins, a study of the same spec starts, the replica driving it (the
// one its lease in Redis names) is killed with SIGKILL mid-round, and the
// other takes the study over from Redis and finishes it: every model version
// is bitwise the reference run's. The surviving replica's and the gateway's
// metrics show the takeover.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cstring>
#include <deque>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "services/core/bus.h"
#include "services/core/clock.h"
#include "services/core/metrics.h"
#include "services/core/zmq_bus.h"
#include "services/ml/model.h"
#include "tests/support/child_process.h"
#include "tests/support/http_client.h"
#include "tests/support/redis_server.h"

namespace fedrx {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;

constexpr float kStep = 0.5f;
constexpr std::uint64_t kSeed = 11;
constexpr auto kStartTimeout = 20s;
constexpr auto kStudyTimeout = 60s;
constexpr auto kHeartbeat = 200ms;
constexpr char kLeaseTtl[] = "1500ms";

std::string Join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ",") + s;
  return out;
}

// A synthetic study (64 inputs, 4 hidden units, one task), as the
// federation test writes them.
std::string StudyText(const std::string& id, const std::vector<std::string>& sites, int rounds,
                      int min_sites, const std::string& deadline) {
  std::ostringstream out;
  out << "study.id = " << id << "\n"
      << "study.tasks = toxic\n"
      << "study.sites = " << Join(sites) << "\n"
      << "model.input_dim = 64\n"
      << "model.hidden = 4\n"
      << "model.dropout = 0\n"
      << "train.rounds = " << rounds << "\n"
      << "train.min_sites = " << min_sites << "\n"
      << "train.round_deadline = " << deadline << "\n"
      << "train.seed = " << kSeed << "\n"
      << "train.evaluate_every = 0\n";
  return out.str();
}

// Model version `version` of a synthetic study: initial + version steps.
std::vector<float> ExpectedSynthetic(std::uint32_t version) {
  ml::NetSpec net;
  net.input_dim = 64;
  net.hidden = {4};
  net.num_tasks = 1;
  net.dropout = 0;
  std::vector<float> w = ml::InitParameters(net, kSeed);
  for (std::uint32_t v = 0; v < version; ++v) {
    for (float& x : w) x += kStep;
  }
  return w;
}

bool BitwiseEqual(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

bool Completed(const codec::StudyInfo& info) { return info.state == codec::StudyState::kCompleted; }

class CoordinatorReplicasTest : public ::testing::Test {
 protected:
  struct Replica {
    std::string id;
    std::string endpoint;
    int http = 0;
    std::unique_ptr<testing::ChildProcess> process;
    core::ChannelId channel = -1;
  };

  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    for (const char* id : {"replica-a", "replica-b"}) {
      Replica r;
      r.id = id;
      r.endpoint = "tcp://127.0.0.1:" + std::to_string(testing::FreeTcpPort());
      r.http = testing::FreeTcpPort();
      auto ch = bus_.Connect(r.endpoint, [](codec::Message&&) {});
      ASSERT_TRUE(ch.ok()) << ch.status();
      r.channel = *ch;
      replicas_.push_back(std::move(r));
    }
    gateway_endpoint_ = "tcp://127.0.0.1:" + std::to_string(testing::FreeTcpPort());
    gateway_http_ = testing::FreeTcpPort();
  }

  void TearDown() override {
    if (!HasFailure()) return;
    const auto tail = [](const std::string& log) {
      return log.size() > 6000 ? "..." + log.substr(log.size() - 6000) : log;
    };
    for (const auto& r : replicas_) {
      if (r.process != nullptr) std::cerr << "--- " << r.id << "\n" << tail(r.process->Log());
    }
    if (gateway_ != nullptr) std::cerr << "--- gateway\n" << tail(gateway_->Log());
    for (const auto& [id, site] : sites_) std::cerr << "--- " << id << "\n" << tail(site->Log());
  }

  void StartReplica(Replica& r) {
    auto child =
        testing::ChildProcess::Spawn(FEDRX_COORDINATOR_BIN, {},
                                     {{"FEDRX_COORDINATOR_ENDPOINT", r.endpoint},
                                      {"FEDRX_COORDINATOR_REPLICA_ID", r.id},
                                      {"FEDRX_COORDINATOR_LEASE_TTL", kLeaseTtl},
                                      {"FEDRX_HTTP_LISTEN", "127.0.0.1:" + std::to_string(r.http)},
                                      {"FEDRX_REDIS_HOST", "127.0.0.1"},
                                      {"FEDRX_REDIS_PORT", std::to_string(redis_->port())},
                                      {"FEDRX_REDIS_COMMAND_TIMEOUT", "300ms"},
                                      {"FEDRX_REDIS_STARTUP_WAIT", "5s"},
                                      {"FEDRX_RUNNER_DRAIN_TIMEOUT", "2s"}});
    ASSERT_TRUE(child.ok()) << child.status();
    r.process = std::move(*child);
    ASSERT_TRUE(testing::WaitForHttp200(r.http, "/readyz", kStartTimeout))
        << r.id << " never became ready";
  }

  void StartGateway() {
    auto child = testing::ChildProcess::Spawn(
        FEDRX_GATEWAY_BIN, {},
        {{"FEDRX_GATEWAY_SITES_ENDPOINT", gateway_endpoint_},
         {"FEDRX_GATEWAY_COORDINATOR_ENDPOINT",
          replicas_[0].endpoint + "," + replicas_[1].endpoint},
         {"FEDRX_GATEWAY_PROBE_INTERVAL", "500ms"},
         {"FEDRX_HTTP_LISTEN", "127.0.0.1:" + std::to_string(gateway_http_)},
         {"FEDRX_RUNNER_DRAIN_TIMEOUT", "2s"}});
    ASSERT_TRUE(child.ok()) << child.status();
    gateway_ = std::move(*child);
    ASSERT_TRUE(testing::WaitForHttp200(gateway_http_, "/readyz", kStartTimeout))
        << "gateway never became ready";
  }

  void StartSite(const std::string& id, const std::vector<std::string>& approved) {
    const int http = testing::FreeTcpPort();
    auto child =
        testing::ChildProcess::Spawn(FEDRX_SITE_BIN, {},
                                     {{"FEDRX_SITE_ID", id},
                                      {"FEDRX_SITE_INSTITUTION", "Institution " + id},
                                      {"FEDRX_SITE_GATEWAY", gateway_endpoint_},
                                      {"FEDRX_SITE_APPROVED_STUDIES", Join(approved)},
                                      {"FEDRX_SITE_HEARTBEAT_INTERVAL", "200ms"},
                                      {"FEDRX_SITE_SYNTHETIC_STEP", "0.5"},
                                      {"FEDRX_SITE_TRAIN_THREADS", "1"},
                                      {"FEDRX_RUNNER_DRAIN_TIMEOUT", "2s"},
                                      {"FEDRX_HTTP_LISTEN", "127.0.0.1:" + std::to_string(http)}});
    ASSERT_TRUE(child.ok()) << child.status();
    sites_[id] = std::move(*child);
    ASSERT_TRUE(testing::WaitForHttp200(http, "/readyz", kStartTimeout))
        << "site " << id << " never became ready";
  }

  // A site the test plays: registered, heartbeating (in Pump), and never
  // reporting ready, so that every round lasts its deadline.
  void StartIdleSite(const std::string& id, std::vector<std::string> approved) {
    idle_approved_ = std::move(approved);
    auto ch = bus_.Connect(gateway_endpoint_, [](codec::Message&&) {});
    ASSERT_TRUE(ch.ok()) << ch.status();
    idle_channel_ = *ch;
    auto reply =
        core::Call(bus_, idle_channel_,
                   core::MakeMessage(codec::RegisterSite{id, "Idle " + id, 1, {"toxic"}, ""}), 5s);
    ASSERT_TRUE(reply.ok()) << reply.status();
    ASSERT_NE(std::get_if<codec::SiteRegistered>(&reply->body), nullptr)
        << codec::BodyName(reply->body);
  }

  void Pump(milliseconds d) {
    const auto end = std::chrono::steady_clock::now() + d;
    do {
      const auto now = std::chrono::steady_clock::now();
      if (idle_channel_ >= 0 && now >= next_heartbeat_) {
        bus_.Send(idle_channel_, core::MakeMessage(codec::Heartbeat{idle_approved_})).IgnoreError();
        next_heartbeat_ = now + kHeartbeat;
      }
      bus_.Poll(20ms).IgnoreError();
    } while (std::chrono::steady_clock::now() < end);
  }

  // Creates a study through the CLI, at replica `r`.
  void CreateStudy(const Replica& r, const std::string& id, const std::string& text) {
    const std::string path = dir_.path() + "/" + id + ".study";
    std::ofstream(path) << text;
    auto child = testing::ChildProcess::Spawn(
        FEDRX_CLI_BIN, {"--coordinator", r.endpoint, "study", "create", path});
    ASSERT_TRUE(child.ok()) << child.status();
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while ((*child)->Running() && std::chrono::steady_clock::now() < deadline) Pump(20ms);
    auto code = (*child)->Wait(100ms);
    ASSERT_TRUE(code.ok()) << code.status();
    ASSERT_EQ(*code, 0) << (*child)->Log();
  }

  core::Result<codec::StudyInfo> Study(const Replica& r, const std::string& id) {
    FEDRX_ASSIGN_OR_RETURN(codec::Message m,
                           core::Call(bus_, r.channel, core::MakeMessage(codec::GetStudy{id}), 2s));
    if (const auto* info = std::get_if<codec::StudyInfo>(&m.body)) return *info;
    return core::Internal(std::string("GetStudy answered with ") + codec::BodyName(m.body));
  }

  bool WaitForStudy(const Replica& r, const std::string& id,
                    const std::function<bool(const codec::StudyInfo&)>& done, milliseconds timeout,
                    codec::StudyInfo* last) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      auto info = Study(r, id);
      if (info.ok()) {
        *last = *info;
        if (done(*info)) return true;
      }
      Pump(20ms);
    }
    return false;
  }

  core::Result<std::vector<float>> Model(const Replica& r, const std::string& study,
                                         std::uint32_t version) {
    FEDRX_ASSIGN_OR_RETURN(
        codec::Message m,
        core::Call(bus_, r.channel, core::MakeMessage(codec::GetModel{study, version}), 5s));
    const auto* mv = std::get_if<codec::ModelVersion>(&m.body);
    if (mv == nullptr || m.tensors.size() != 1 || mv->version != version) {
      return core::Internal(std::string("GetModel answered with ") + codec::BodyName(m.body));
    }
    auto view = m.tensors[0].data.As<float>();
    return std::vector<float>(view.begin(), view.end());
  }

  double Metric(int port, const std::string& name, const std::string& labels = "") {
    auto r = testing::HttpGet(port, "/metrics");
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? testing::MetricValue(r->body, name, labels) : -1;
  }

  // Waits until the gateway's metric `name{labels}` equals `value`.
  bool WaitForGatewayMetric(const std::string& name, const std::string& labels, double value) {
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (std::chrono::steady_clock::now() < deadline) {
      if (Metric(gateway_http_, name, labels) == value) return true;
      Pump(50ms);
    }
    return false;
  }

  testing::TempDir dir_;
  std::unique_ptr<testing::RedisServer> redis_;
  std::vector<Replica> replicas_;
  std::unique_ptr<testing::ChildProcess> gateway_;
  std::map<std::string, std::unique_ptr<testing::ChildProcess>> sites_;
  std::string gateway_endpoint_;
  int gateway_http_ = 0;
  core::SystemClock clock_;
  core::Metrics metrics_{"test"};
  core::ZmqBus bus_{core::BusOptions{"replicas-test"}, metrics_, clock_};
  core::ChannelId idle_channel_ = -1;
  std::vector<std::string> idle_approved_;
  std::chrono::steady_clock::time_point next_heartbeat_{};
};

TEST_F(CoordinatorReplicasTest, KilledOwnerReplicasStudyFinishesOnTheOtherWithTheSameModel) {
  constexpr std::uint32_t kRounds = 6;
  const std::vector<std::string> studies = {"roll-call", "reference", "durable"};
  auto redis = testing::RedisServer::Start();
  ASSERT_TRUE(redis.ok()) << redis.status();
  redis_ = std::move(*redis);
  Replica& a = replicas_[0];
  Replica& b = replicas_[1];

  // --- One coordinator: replica-a alone (replica-b's endpoint is listed at
  // the gateway but nobody answers there yet).
  ASSERT_NO_FATAL_FAILURE(StartReplica(a));
  ASSERT_NO_FATAL_FAILURE(StartGateway());
  ASSERT_NO_FATAL_FAILURE(StartSite("site-a", studies));
  ASSERT_NO_FATAL_FAILURE(StartSite("site-b", studies));
  ASSERT_TRUE(WaitForGatewayMetric("fedrx_gateway_coordinator_up", "replica=\"1\"", 0))
      << "the gateway never noticed replica-b is not there";
  codec::StudyInfo info;
  // Every site heard and approving before the real studies start.
  ASSERT_NO_FATAL_FAILURE(
      CreateStudy(a, "roll-call", StudyText("roll-call", {"site-a", "site-b"}, 1, 2, "10s")));
  ASSERT_TRUE(WaitForStudy(a, "roll-call", Completed, kStudyTimeout, &info));
  // site-x never reports ready: each round lasts its 500 ms deadline.
  ASSERT_NO_FATAL_FAILURE(StartIdleSite("site-x", studies));
  const std::vector<std::string> members = {"site-a", "site-b", "site-x"};
  ASSERT_NO_FATAL_FAILURE(
      CreateStudy(a, "reference", StudyText("reference", members, kRounds, 2, "500ms")));
  ASSERT_TRUE(WaitForStudy(a, "reference", Completed, kStudyTimeout, &info))
      << "reference stuck at round " << info.current_round;
  std::vector<std::vector<float>> reference;
  for (std::uint32_t v = 0; v <= kRounds; ++v) {
    auto w = Model(a, "reference", v);
    ASSERT_TRUE(w.ok()) << "reference version " << v << ": " << w.status();
    reference.push_back(std::move(*w));
  }
  // The one-coordinator run is the synthetic arithmetic, exactly.
  EXPECT_TRUE(BitwiseEqual(reference[kRounds], ExpectedSynthetic(kRounds)));

  // --- Two replicas: replica-b joins; the gateway sees it answer.
  ASSERT_NO_FATAL_FAILURE(StartReplica(b));
  ASSERT_TRUE(WaitForGatewayMetric("fedrx_gateway_coordinator_up", "replica=\"1\"", 1))
      << "the gateway never saw replica-b answer";
  EXPECT_EQ(Metric(b.http, "fedrx_coordinator_lease_takeovers_total"), 0);
  EXPECT_EQ(Metric(b.http, "fedrx_coordinator_lease_lost_total"), 0);
  Pump(1s);  // replica-b hears every site's heartbeats

  // The replica that got the request drives the study: its lease names it.
  ASSERT_NO_FATAL_FAILURE(
      CreateStudy(a, "durable", StudyText("durable", members, kRounds, 2, "500ms")));
  auto holder = redis_->Command({"GET", "fedrx:coordinator:lease:durable"});
  ASSERT_TRUE(holder.ok()) << holder.status();
  ASSERT_EQ(*holder, "replica-a");
  EXPECT_EQ(Metric(a.http, "fedrx_coordinator_studies_owned"), 1);
  EXPECT_EQ(Metric(b.http, "fedrx_coordinator_studies_owned"), 0);
  // replica-b answers for the study from Redis meanwhile.
  ASSERT_TRUE(WaitForStudy(
      b, "durable",
      [](const codec::StudyInfo& i) {
        return i.model_version >= 2 && i.state == codec::StudyState::kRunning;
      },
      kStudyTimeout, &info));

  // --- The owner dies mid-study (mid-round: a round is always open).
  ASSERT_TRUE(a.process->Signal(SIGKILL).ok());
  auto killed = a.process->Wait(5s);
  ASSERT_TRUE(killed.ok());
  EXPECT_EQ(*killed, 128 + SIGKILL);

  ASSERT_TRUE(WaitForStudy(b, "durable", Completed, kStudyTimeout, &info))
      << "study stuck at round " << info.current_round << " after the owner died";
  std::smatch resumed;
  const std::string log = b.process->Log();
  ASSERT_TRUE(std::regex_search(log, resumed, std::regex("resuming study durable at round (\\d+)")))
      << log;
  EXPECT_GE(std::stoi(resumed[1]), 3);
  EXPECT_LE(std::stoi(resumed[1]), static_cast<int>(kRounds));

  EXPECT_EQ(info.model_version, kRounds);
  ASSERT_EQ(info.rounds.size(), kRounds);
  for (const auto& r : info.rounds) {
    EXPECT_EQ(r.state, codec::RoundState::kClosed) << "round " << r.round;
    EXPECT_EQ(r.updates_received, 2u) << "round " << r.round;
  }
  // Every version, bitwise, as the run with one coordinator.
  for (std::uint32_t v = 0; v <= kRounds; ++v) {
    auto w = Model(b, "durable", v);
    ASSERT_TRUE(w.ok()) << "version " << v << ": " << w.status();
    EXPECT_TRUE(BitwiseEqual(*w, reference[v])) << "model version " << v;
  }
  EXPECT_EQ(Metric(b.http, "fedrx_coordinator_lease_takeovers_total"), 1);
  EXPECT_EQ(Metric(b.http, "fedrx_coordinator_lease_lost_total"), 0);
  EXPECT_EQ(Metric(b.http, "fedrx_coordinator_studies_owned"), 0);  // finished: released
  auto after = redis_->Command({"EXISTS", "fedrx:coordinator:lease:durable"});
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(*after, "0");
  EXPECT_EQ(Metric(gateway_http_, "fedrx_gateway_coordinator_up", "replica=\"0\""), 0);
  EXPECT_GE(Metric(gateway_http_, "fedrx_gateway_coordinator_owner_changes_total"), 1);
  EXPECT_EQ(Metric(b.http, "fedrx_coordinator_rounds_total", R"(outcome="failed")"), -1);
}

}  // namespace
}  // namespace fedrx
