// Two CoordinatorService replicas over one in-memory store, network and fake
// clock: each study is driven by exactly one of them; when the driving
// replica stops (dies or sleeps), the other takes the study over after the
// lease ttl and resumes it from the store; the one that slept stops driving
// it at its next tick; the other replica answers reads from the store and
// ignores site messages for a study it does not drive.
#include <gtest/gtest.h>

#include <deque>
#include <string>
#include <vector>

#include "services/coordinator/coordinator_service.h"
#include "services/coordinator/study_store.h"
#include "services/core/keys.h"
#include "services/core/testing/fake_bus.h"
#include "services/core/testing/fake_clock.h"
#include "services/core/testing/fake_state_store.h"

namespace fedrx::coordinator {
namespace {

using std::chrono::milliseconds;

constexpr milliseconds kTtl{3000};
constexpr milliseconds kStep{100};

codec::StudySpec Spec(const std::string& id) {
  codec::StudySpec s;
  s.study_id = id;
  s.tasks = {"t0"};
  s.model = {4, {2}, 1, 0.0f};
  s.rounds = 5;
  s.min_sites = 1;
  s.local_epochs = 1;
  s.learning_rate = 0.01f;
  s.batch_size = 8;
  s.strategy = "fedavg";
  s.round_deadline_ms = 10000;
  return s;
}

CoordinatorOptions Options(const std::string& replica) {
  CoordinatorOptions o;
  o.endpoint = "inproc://" + replica;
  o.version = "test";
  o.lease = {replica, kTtl};
  return o;
}

class CoordinatorReplicasTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ch = client_bus_.Connect("inproc://replica-b",
                                  [this](codec::Message&& m) { pushed_.push_back(std::move(m)); });
    ASSERT_TRUE(ch.ok());
    to_b_ = *ch;
  }

  void CreateInStore(const std::string& id) {
    ASSERT_TRUE(studies_.Create(Spec(id), std::vector<float>(13, 0.25f), clock_.WallMillis()).ok());
  }

  std::optional<std::string> LeaseHolder(const std::string& id) {
    return store_.Get(core::keys::CoordinatorLease(id).value()).value();
  }

  // A replica drives a study only while the store names it the holder.
  void ExpectDrivenOnlyByTheHolder(const std::string& id) {
    const auto holder = LeaseHolder(id);
    const bool a_drives =
        a_.Study(id) != nullptr && a_.Study(id)->record().state == codec::StudyState::kRunning;
    const bool b_drives =
        b_.Study(id) != nullptr && b_.Study(id)->record().state == codec::StudyState::kRunning;
    EXPECT_FALSE(a_drives && b_drives);
    if (a_drives) {
      EXPECT_EQ(holder, std::optional<std::string>("replica-a"));
    }
    if (b_drives) {
      EXPECT_EQ(holder, std::optional<std::string>("replica-b"));
    }
  }

  double MetricA(const std::string& name) { return metrics_a_.Read(name); }
  double MetricB(const std::string& name) { return metrics_b_.Read(name); }

  core::testing::FakeNetwork network_;
  core::testing::FakeClock clock_;
  core::testing::FakeStateStore store_{&clock_};
  StudyStore studies_{store_};
  core::Metrics metrics_a_{"coordinator"};
  core::Metrics metrics_b_{"coordinator"};
  core::Metrics client_metrics_{"cli"};
  core::testing::FakeBus bus_a_{network_, core::BusOptions{"replica-a"}, metrics_a_, clock_};
  core::testing::FakeBus bus_b_{network_, core::BusOptions{"replica-b"}, metrics_b_, clock_};
  core::testing::FakeBus client_bus_{network_, core::BusOptions{"cli"}, client_metrics_, clock_};
  CoordinatorService a_{Options("replica-a"), bus_a_, store_, metrics_a_, clock_};
  CoordinatorService b_{Options("replica-b"), bus_b_, store_, metrics_b_, clock_};
  core::ChannelId to_b_ = 0;
  std::deque<codec::Message> pushed_;
};

TEST_F(CoordinatorReplicasTest, EachStudyIsDrivenByExactlyOneReplica) {
  ASSERT_NO_FATAL_FAILURE(CreateInStore("s1"));
  ASSERT_TRUE(a_.Start().ok());
  ASSERT_TRUE(b_.Start().ok());
  ASSERT_NO_FATAL_FAILURE(CreateInStore("s2"));
  for (int i = 0; i < 50; ++i) {
    clock_.Advance(kStep);
    ASSERT_TRUE(b_.Tick().ok());
    ASSERT_TRUE(a_.Tick().ok());
    ExpectDrivenOnlyByTheHolder("s1");
    ExpectDrivenOnlyByTheHolder("s2");
  }
  EXPECT_NE(a_.Study("s1"), nullptr);
  EXPECT_EQ(b_.Study("s1"), nullptr);
  // s2 was stored after both started: whichever scanned first took it.
  EXPECT_NE((a_.Study("s2") != nullptr), (b_.Study("s2") != nullptr));
  EXPECT_EQ(MetricA("fedrx_coordinator_studies_owned") + MetricB("fedrx_coordinator_studies_owned"),
            2);
  EXPECT_EQ(MetricA("fedrx_coordinator_lease_lost_total"), 0);
  EXPECT_EQ(MetricB("fedrx_coordinator_lease_lost_total"), 0);
}

TEST_F(CoordinatorReplicasTest, AStoppedReplicasStudyIsTakenOverAndTheSleeperLetsGo) {
  ASSERT_NO_FATAL_FAILURE(CreateInStore("s1"));
  ASSERT_TRUE(a_.Start().ok());
  ASSERT_TRUE(b_.Start().ok());
  for (int i = 0; i < 2 * kTtl / kStep; ++i) {
    clock_.Advance(kStep);
    ASSERT_TRUE(a_.Tick().ok());
    ASSERT_TRUE(b_.Tick().ok());
  }
  ASSERT_NE(a_.Study("s1"), nullptr);
  ASSERT_EQ(b_.Study("s1"), nullptr);
  EXPECT_EQ(MetricB("fedrx_coordinator_lease_takeovers_total"), 0);

  // replica-a stops (killed, or paused): only replica-b ticks.
  milliseconds waited{0};
  while (b_.Study("s1") == nullptr && waited < 3 * kTtl) {
    clock_.Advance(kStep);
    waited += kStep;
    ASSERT_TRUE(b_.Tick().ok());
  }
  ASSERT_NE(b_.Study("s1"), nullptr) << "never taken over";
  // Not before the lease could have expired (a renewed it at most ttl/3
  // before stopping), and within a ttl and a scan interval.
  EXPECT_GE(waited, kTtl - kTtl / 3);
  EXPECT_LE(waited, kTtl + kTtl / 3 + kStep);
  EXPECT_EQ(b_.Study("s1")->record().state, codec::StudyState::kRunning);
  EXPECT_EQ(LeaseHolder("s1"), std::optional<std::string>("replica-b"));
  EXPECT_EQ(MetricB("fedrx_coordinator_lease_takeovers_total"), 1);
  EXPECT_EQ(MetricB("fedrx_coordinator_studies_owned"), 1);

  // replica-a wakes up: its first tick finds the lease gone and drops the study.
  ASSERT_TRUE(a_.Tick().ok());
  EXPECT_EQ(a_.Study("s1"), nullptr);
  EXPECT_EQ(MetricA("fedrx_coordinator_lease_lost_total"), 1);
  EXPECT_EQ(MetricA("fedrx_coordinator_studies_owned"), 0);
  for (int i = 0; i < 50; ++i) {
    clock_.Advance(kStep);
    ASSERT_TRUE(a_.Tick().ok());
    ASSERT_TRUE(b_.Tick().ok());
    ExpectDrivenOnlyByTheHolder("s1");
  }
  EXPECT_EQ(a_.Study("s1"), nullptr);
  EXPECT_EQ(LeaseHolder("s1"), std::optional<std::string>("replica-b"));
}

// A replica shutting down (SIGTERM) gives its leases up: the other takes the
// study at its next scan, well before the ttl.
TEST_F(CoordinatorReplicasTest, ADrainingReplicaHandsItsStudiesOverAtOnce) {
  ASSERT_NO_FATAL_FAILURE(CreateInStore("s1"));
  ASSERT_TRUE(a_.Start().ok());
  ASSERT_TRUE(b_.Start().ok());
  ASSERT_NE(a_.Study("s1"), nullptr);
  a_.BeginDrain();
  EXPECT_EQ(a_.Study("s1"), nullptr);
  EXPECT_EQ(LeaseHolder("s1"), std::nullopt);
  EXPECT_EQ(MetricA("fedrx_coordinator_studies_owned"), 0);
  clock_.Advance(kTtl / 3);
  ASSERT_TRUE(b_.Tick().ok());
  EXPECT_NE(b_.Study("s1"), nullptr);
  EXPECT_EQ(LeaseHolder("s1"), std::optional<std::string>("replica-b"));
  EXPECT_EQ(MetricA("fedrx_coordinator_lease_lost_total"), 0);
}

TEST_F(CoordinatorReplicasTest, TheOtherReplicaAnswersReadsFromTheStore) {
  ASSERT_NO_FATAL_FAILURE(CreateInStore("s1"));
  ASSERT_TRUE(a_.Start().ok());
  ASSERT_TRUE(b_.Start().ok());
  ASSERT_EQ(b_.Study("s1"), nullptr);
  auto info =
      core::Call(client_bus_, to_b_, core::MakeMessage(codec::GetStudy{"s1"}), milliseconds(1000));
  ASSERT_TRUE(info.ok()) << info.status();
  const auto& study = std::get<codec::StudyInfo>(info->body);
  EXPECT_EQ(study.study.study_id, "s1");
  EXPECT_EQ(study.state, codec::StudyState::kRunning);
  EXPECT_EQ(study.current_round, 1u);
  auto model = core::Call(client_bus_, to_b_, core::MakeMessage(codec::GetModel{"s1", 0, true}),
                          milliseconds(1000));
  ASSERT_TRUE(model.ok()) << model.status();
  ASSERT_EQ(model->tensors.size(), 1u);
  auto weights = model->tensors[0].data.As<float>();
  ASSERT_EQ(weights.size(), 13u);
  EXPECT_EQ(weights[0], 0.25f);
  auto missing = core::Call(client_bus_, to_b_, core::MakeMessage(codec::GetStudy{"nope"}),
                            milliseconds(1000));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), core::StatusCode::kNotFound);
}

TEST_F(CoordinatorReplicasTest, SiteMessagesForAStudyAnotherReplicaDrivesAreDroppedAndCounted) {
  ASSERT_NO_FATAL_FAILURE(CreateInStore("s1"));
  ASSERT_TRUE(a_.Start().ok());
  ASSERT_TRUE(b_.Start().ok());
  EXPECT_EQ(MetricB("fedrx_coordinator_site_messages_not_owned_total"), 0);
  codec::Message ready = core::MakeMessage(codec::UpdateReady{"s1", 1, 0, 10, {}});
  ready.header.origin = "site-a";  // as a gateway forwards it (plaintext: trusted)
  ASSERT_TRUE(client_bus_.Send(to_b_, std::move(ready)).ok());
  network_.Pump();
  EXPECT_EQ(MetricB("fedrx_coordinator_site_messages_not_owned_total"), 1);
  EXPECT_TRUE(pushed_.empty()) << "answered with " << codec::BodyName(pushed_.front().body);
  // A study nobody has is still an error, as with one coordinator.
  codec::Message unknown = core::MakeMessage(codec::UpdateReady{"nope", 1, 0, 10, {}});
  unknown.header.origin = "site-a";
  ASSERT_TRUE(client_bus_.Send(to_b_, std::move(unknown)).ok());
  network_.Pump();
  ASSERT_EQ(pushed_.size(), 1u);
  const auto* error = std::get_if<codec::Error>(&pushed_.front().body);
  ASSERT_NE(error, nullptr);
  EXPECT_EQ(MetricB("fedrx_coordinator_site_messages_not_owned_total"), 1);
}

TEST_F(CoordinatorReplicasTest, ACorruptLeaseIsRepairedAndTheStudyTaken) {
  ASSERT_NO_FATAL_FAILURE(CreateInStore("s1"));
  ASSERT_TRUE(store_.Set(core::keys::CoordinatorLease("s1").value(), "??").ok());
  ASSERT_TRUE(a_.Start().ok());
  EXPECT_NE(a_.Study("s1"), nullptr);
  EXPECT_EQ(LeaseHolder("s1"), std::optional<std::string>("replica-a"));
  EXPECT_EQ(MetricA("fedrx_coordinator_lease_corrupt_total"), 1);
}

TEST_F(CoordinatorReplicasTest, StoreDownAtScanIsAnErrorAndLosesNothing) {
  ASSERT_NO_FATAL_FAILURE(CreateInStore("s1"));
  ASSERT_TRUE(a_.Start().ok());
  store_.SetDown(true);
  clock_.Advance(kTtl / 2);
  EXPECT_FALSE(a_.Tick().ok());
  EXPECT_NE(a_.Study("s1"), nullptr);  // still within the ttl
  store_.SetDown(false);
  for (int i = 0; i < 10; ++i) {
    clock_.Advance(kStep);
    ASSERT_TRUE(a_.Tick().ok());
  }
  EXPECT_NE(a_.Study("s1"), nullptr);
  auto record = studies_.Load("s1");
  ASSERT_TRUE(record.ok());
  EXPECT_EQ(record->state, codec::StudyState::kRunning);
  EXPECT_EQ(MetricA("fedrx_coordinator_lease_lost_total"), 0);
}

}  // namespace
}  // namespace fedrx::coordinator
