// The gateway in front of two coordinator replicas (in-memory bus, fake
// clock): the endpoint list is parsed strictly; heartbeats reach every
// replica and a registration is answered once; a study's messages go to the
// replica that sends that study's pushes (to every live replica while that
// is unknown), and to another once the driving replica stops answering
// probes and the new one pushes; people's requests follow the same owner;
// the gateway is ready while any replica answers.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "gateway/gateway_service.h"
#include "services/core/testing/fake_bus.h"
#include "services/core/testing/fake_clock.h"

namespace fedrx::gateway {
namespace {

using std::chrono::milliseconds;

TEST(CoordinatorEndpointsTest, SplitsTrimsAndRefusesEmptyOrRepeatedEntries) {
  auto one = CoordinatorEndpoints("tcp://127.0.0.1:5570");
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(*one, std::vector<std::string>{"tcp://127.0.0.1:5570"});
  auto two = CoordinatorEndpoints("tcp://c-0:5570, tcp://c-1:5570 ");
  ASSERT_TRUE(two.ok());
  EXPECT_EQ(*two, (std::vector<std::string>{"tcp://c-0:5570", "tcp://c-1:5570"}));
  for (const char* bad : {"", "tcp://a:1,,tcp://b:2", "tcp://a:1,", " , "}) {
    auto parsed = CoordinatorEndpoints(bad);
    ASSERT_FALSE(parsed.ok()) << "'" << bad << "'";
    EXPECT_EQ(parsed.status().code(), core::StatusCode::kInvalidArgument);
    EXPECT_EQ(parsed.status().where(), "gateway.coordinator_endpoint");
  }
  auto twice = CoordinatorEndpoints("tcp://a:1,tcp://a:1");
  ASSERT_FALSE(twice.ok());
  EXPECT_NE(twice.status().message().find("listed twice"), std::string::npos);
}

// A fake coordinator replica: records what it is sent, answers
// registrations and (while `answering`) health probes and status requests.
struct FakeReplica {
  FakeReplica(core::testing::FakeNetwork& network, core::testing::FakeClock& clock,
              core::Metrics& metrics, std::string endpoint)
      : bus(network, core::BusOptions{endpoint}, metrics, clock), endpoint(std::move(endpoint)) {}

  core::Status Serve() {
    return bus.Serve(endpoint, [this](core::Inbound&& in) {
      peer = in.peer;
      if (std::holds_alternative<codec::HealthCheck>(in.message.body)) {
        if (answering) core::Reply(bus, in, codec::HealthStatus{"coordinator", true}).IgnoreError();
        return;
      }
      seen.push_back(codec::BodyName(in.message.body));
      if (const auto* r = std::get_if<codec::RegisterSite>(&in.message.body)) {
        core::Reply(bus, in, codec::SiteRegistered{r->site_id, 1, true}).IgnoreError();
      } else if (const auto* g = std::get_if<codec::GetStudy>(&in.message.body)) {
        codec::StudyInfo info;
        info.study.study_id = g->study_id;
        info.detail = endpoint;
        core::Reply(bus, in, info).IgnoreError();
      }
    });
  }

  // Pushes a study's message to a site through the gateway, as a driving replica does.
  core::Status PushTrainTask(const std::string& study, const std::string& site) {
    codec::Message task = core::MakeMessage(codec::TrainTask{});
    std::get<codec::TrainTask>(task.body).study_id = study;
    task.header.route_to = site;
    return bus.SendTo(peer, std::move(task));
  }

  std::size_t Count(const std::string& type) const {
    return static_cast<std::size_t>(std::count(seen.begin(), seen.end(), type));
  }

  core::testing::FakeBus bus;
  std::string endpoint;
  core::PeerId peer;
  bool answering = true;
  std::vector<std::string> seen;
};

class GatewayReplicasTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(r0_.Serve().ok());
    ASSERT_TRUE(r1_.Serve().ok());
    ASSERT_TRUE(gateway_.Start().ok());
    auto ch = site_.Connect("inproc://sites",
                            [this](codec::Message&& m) { pushed_.push_back(std::move(m)); });
    ASSERT_TRUE(ch.ok());
    site_ch_ = *ch;
    auto registered = core::Call(
        site_, site_ch_, core::MakeMessage(codec::RegisterSite{"site-a", "Inst", 5, {}, "h"}),
        milliseconds(1000));
    ASSERT_TRUE(registered.ok()) << registered.status();
    network_.Pump();
    // A scientist's connection (people's requests come over CURVE, here its stand-in).
    network_.SetIdentity("person", {"lab-x", "scientist"});
    auto person = person_.Connect("inproc://sites", [](codec::Message&&) {});
    ASSERT_TRUE(person.ok());
    person_ch_ = *person;
  }

  // Probes both replicas; those not answering are marked down after the
  // probe's deadline.
  void Probe() {
    clock_.Advance(milliseconds(2000));
    ASSERT_TRUE(gateway_.Tick().ok());
    network_.Pump();
    clock_.Advance(milliseconds(2001));
    network_.Pump();
    gateway_bus_.Poll(milliseconds(0)).IgnoreError();
  }

  void SendUpdateReady(const std::string& study) {
    ASSERT_TRUE(
        site_.Send(site_ch_, core::MakeMessage(codec::UpdateReady{study, 1, 0, 5, {}})).ok());
    network_.Pump();
  }

  double Metric(const std::string& name, const core::Labels& labels = {}) {
    return gateway_metrics_.Read(name, labels);
  }

  core::testing::FakeNetwork network_;
  core::testing::FakeClock clock_;
  core::Metrics gateway_metrics_{"gateway"};
  core::Metrics other_metrics_{"other"};
  FakeReplica r0_{network_, clock_, other_metrics_, "inproc://c0"};
  FakeReplica r1_{network_, clock_, other_metrics_, "inproc://c1"};
  core::testing::FakeBus gateway_bus_{network_, core::BusOptions{"gateway"}, gateway_metrics_,
                                      clock_};
  core::testing::FakeBus site_{network_, core::BusOptions{"site-a"}, other_metrics_, clock_};
  core::testing::FakeBus person_{network_, core::BusOptions{"person"}, other_metrics_, clock_};
  GatewayService gateway_{GatewayOptions{"inproc://sites", "inproc://c0, inproc://c1"},
                          gateway_bus_, gateway_metrics_, clock_};
  core::ChannelId site_ch_ = 0;
  core::ChannelId person_ch_ = 0;
  std::vector<codec::Message> pushed_;
};

TEST_F(GatewayReplicasTest, RegistrationReachesEveryReplicaAndIsAnsweredOnce) {
  EXPECT_EQ(r0_.Count("RegisterSite"), 1u);
  EXPECT_EQ(r1_.Count("RegisterSite"), 1u);
  // Call consumed the one answer; the copy's answer was dropped, not pushed.
  EXPECT_TRUE(pushed_.empty());
  EXPECT_EQ(Metric("fedrx_gateway_unroutable_total"), 0);
}

TEST_F(GatewayReplicasTest, HeartbeatsReachEveryLiveReplica) {
  ASSERT_TRUE(site_.Send(site_ch_, core::MakeMessage(codec::Heartbeat{{"s1"}})).ok());
  network_.Pump();
  EXPECT_EQ(r0_.Count("Heartbeat"), 1u);
  EXPECT_EQ(r1_.Count("Heartbeat"), 1u);
  r1_.answering = false;
  ASSERT_NO_FATAL_FAILURE(Probe());
  EXPECT_EQ(Metric("fedrx_gateway_coordinator_up", {{"replica", "1"}}), 0);
  ASSERT_TRUE(site_.Send(site_ch_, core::MakeMessage(codec::Heartbeat{{"s1"}})).ok());
  network_.Pump();
  EXPECT_EQ(r0_.Count("Heartbeat"), 2u);
  EXPECT_EQ(r1_.Count("Heartbeat"), 1u);
}

TEST_F(GatewayReplicasTest, StudyMessagesFollowTheReplicaThatPushesTheStudy) {
  EXPECT_EQ(Metric("fedrx_gateway_coordinator_owner_unknown_total"), 0);
  EXPECT_EQ(Metric("fedrx_gateway_coordinator_owner_changes_total"), 0);
  // Nobody has pushed s1 yet: every live replica gets it (the others drop it).
  ASSERT_NO_FATAL_FAILURE(SendUpdateReady("s1"));
  EXPECT_EQ(r0_.Count("UpdateReady"), 1u);
  EXPECT_EQ(r1_.Count("UpdateReady"), 1u);
  EXPECT_EQ(Metric("fedrx_gateway_coordinator_owner_unknown_total"), 1);

  ASSERT_TRUE(r1_.PushTrainTask("s1", "site-a").ok());
  network_.Pump();
  ASSERT_EQ(pushed_.size(), 1u);
  ASSERT_NO_FATAL_FAILURE(SendUpdateReady("s1"));
  EXPECT_EQ(r0_.Count("UpdateReady"), 1u);
  EXPECT_EQ(r1_.Count("UpdateReady"), 2u);

  // replica 1 dies: s1's messages go to the live one until it pushes s1.
  r1_.answering = false;
  ASSERT_NO_FATAL_FAILURE(Probe());
  ASSERT_NO_FATAL_FAILURE(SendUpdateReady("s1"));
  EXPECT_EQ(r0_.Count("UpdateReady"), 2u);
  EXPECT_EQ(r1_.Count("UpdateReady"), 2u);
  ASSERT_TRUE(r0_.PushTrainTask("s1", "site-a").ok());
  network_.Pump();
  EXPECT_EQ(Metric("fedrx_gateway_coordinator_owner_changes_total"), 1);
  // Even once replica 1 answers again, s1 stays with replica 0.
  r1_.answering = true;
  ASSERT_NO_FATAL_FAILURE(Probe());
  EXPECT_EQ(Metric("fedrx_gateway_coordinator_up", {{"replica", "1"}}), 1);
  ASSERT_NO_FATAL_FAILURE(SendUpdateReady("s1"));
  EXPECT_EQ(r0_.Count("UpdateReady"), 3u);
  EXPECT_EQ(r1_.Count("UpdateReady"), 2u);
}

TEST_F(GatewayReplicasTest, PeoplesRequestsGoToTheStudysReplicaOrTheFirstLiveOne) {
  auto ask = [this](const std::string& study) {
    return core::Call(person_, person_ch_, core::MakeMessage(codec::GetStudy{study}),
                      milliseconds(1000));
  };
  auto first = ask("s1");
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(std::get<codec::StudyInfo>(first->body).detail, "inproc://c0");
  ASSERT_TRUE(r1_.PushTrainTask("s1", "site-a").ok());
  network_.Pump();
  auto owned = ask("s1");
  ASSERT_TRUE(owned.ok()) << owned.status();
  EXPECT_EQ(std::get<codec::StudyInfo>(owned->body).detail, "inproc://c1");
  r0_.answering = false;
  ASSERT_NO_FATAL_FAILURE(Probe());
  auto other = ask("s2");
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_EQ(std::get<codec::StudyInfo>(other->body).detail, "inproc://c1");
}

TEST_F(GatewayReplicasTest, ReadyWhileAnyReplicaAnswersAndCountersStartAtZero) {
  EXPECT_EQ(Metric("fedrx_gateway_coordinator_up", {{"replica", "0"}}), 1);
  EXPECT_EQ(Metric("fedrx_gateway_coordinator_up", {{"replica", "1"}}), 1);
  EXPECT_FALSE(gateway_.CheckReady().ready);
  r0_.answering = false;
  ASSERT_NO_FATAL_FAILURE(Probe());
  EXPECT_TRUE(gateway_.CheckReady().ready);
  EXPECT_EQ(Metric("fedrx_gateway_coordinator_up", {{"replica", "0"}}), 0);
  r1_.answering = false;
  ASSERT_NO_FATAL_FAILURE(Probe());
  clock_.Advance(milliseconds(7000));
  EXPECT_FALSE(gateway_.CheckReady().ready);
  EXPECT_GT(Metric("fedrx_gateway_coordinator_routed_total", {{"replica", "0"}}), 0);
}

TEST(GatewayReplicaMetricsTest, CountersExistAtZeroBeforeAnyMessage) {
  core::testing::FakeNetwork network;
  core::testing::FakeClock clock;
  core::Metrics metrics{"gateway"};
  core::testing::FakeBus bus{network, core::BusOptions{"gateway"}, metrics, clock};
  GatewayService gateway{GatewayOptions{"inproc://sites", "inproc://a,inproc://b"}, bus, metrics,
                         clock};
  ASSERT_TRUE(gateway.Start().ok());
  const std::string text = metrics.Serialize();
  for (const char* line : {"fedrx_gateway_coordinator_routed_total{replica=\"1\"} 0",
                           "fedrx_gateway_coordinator_owner_changes_total 0",
                           "fedrx_gateway_coordinator_owner_unknown_total 0"}) {
    EXPECT_NE(text.find(line), std::string::npos) << line;
  }
}

TEST(GatewayReplicaMetricsTest, ABadEndpointListStopsStart) {
  core::testing::FakeNetwork network;
  core::testing::FakeClock clock;
  core::Metrics metrics{"gateway"};
  core::testing::FakeBus bus{network, core::BusOptions{"gateway"}, metrics, clock};
  GatewayService gateway{GatewayOptions{"inproc://sites", "inproc://a,,inproc://b"}, bus, metrics,
                         clock};
  core::Status started = gateway.Start();
  EXPECT_EQ(started.code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(started.where(), "gateway.coordinator_endpoint");
}

}  // namespace
}  // namespace fedrx::gateway
