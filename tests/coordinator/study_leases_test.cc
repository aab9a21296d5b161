// StudyLeases over the in-memory store and a fake clock: a lease is taken
// once, kept by renewal, taken over once its holder stops renewing, lost
// (and fenced) by a replica that slept through its ttl, survives a short
// store outage but not one of a whole ttl, and a corrupt value is removed.
#include "services/coordinator/study_leases.h"

#include <gtest/gtest.h>

#include <map>

#include "services/coordinator/study_store.h"
#include "services/core/keys.h"
#include "services/core/testing/fake_clock.h"
#include "services/core/testing/fake_state_store.h"

namespace fedrx::coordinator {
namespace {

using std::chrono::milliseconds;

constexpr milliseconds kTtl{3000};

class StudyLeasesTest : public ::testing::Test {
 protected:
  core::Key LeaseKey(const std::string& study) {
    return core::keys::CoordinatorLease(study).value();
  }
  std::optional<std::string> Holder(const std::string& study) {
    return store_.Get(LeaseKey(study)).value();
  }
  double Read(const core::Metrics& m, const std::string& name) { return m.Read(name); }

  core::testing::FakeClock clock_;
  core::testing::FakeStateStore store_{&clock_};
  core::Metrics metrics_a_{"coordinator"};
  core::Metrics metrics_b_{"coordinator"};
  StudyLeases a_{store_, clock_, metrics_a_, {"replica-a", kTtl}};
  StudyLeases b_{store_, clock_, metrics_b_, {"replica-b", kTtl}};
};

TEST_F(StudyLeasesTest, MetricsExistAtZeroBeforeAnyLease) {
  EXPECT_EQ(Read(metrics_a_, "fedrx_coordinator_studies_owned"), 0);
  EXPECT_EQ(Read(metrics_a_, "fedrx_coordinator_lease_takeovers_total"), 0);
  EXPECT_EQ(Read(metrics_a_, "fedrx_coordinator_lease_lost_total"), 0);
  EXPECT_EQ(Read(metrics_a_, "fedrx_coordinator_lease_corrupt_total"), 0);
}

TEST_F(StudyLeasesTest, OnlyOneReplicaAcquiresAFreeLease) {
  EXPECT_TRUE(a_.Acquire("s1").value());
  EXPECT_FALSE(b_.Acquire("s1").value());
  EXPECT_TRUE(a_.Holds("s1"));
  EXPECT_FALSE(b_.Holds("s1"));
  EXPECT_EQ(Holder("s1"), std::optional<std::string>("replica-a"));
  EXPECT_EQ(b_.Holder("s1").value(), std::optional<std::string>("replica-a"));
  EXPECT_EQ(Read(metrics_a_, "fedrx_coordinator_studies_owned"), 1);
  EXPECT_EQ(Read(metrics_b_, "fedrx_coordinator_studies_owned"), 0);
}

TEST_F(StudyLeasesTest, RenewalKeepsTheLeaseFarBeyondItsTtl) {
  ASSERT_TRUE(a_.Acquire("s1").value());
  for (int i = 0; i < 100; ++i) {
    clock_.Advance(milliseconds(100));
    EXPECT_TRUE(a_.RenewDue().empty());
    EXPECT_FALSE(b_.Acquire("s1").value()) << "at " << (i + 1) * 100 << " ms";
  }
  EXPECT_TRUE(a_.Holds("s1"));
  EXPECT_EQ(Read(metrics_a_, "fedrx_coordinator_lease_lost_total"), 0);
}

TEST_F(StudyLeasesTest, ALeaseNotRenewedExpiresAfterItsTtlAndIsTakenOver) {
  ASSERT_TRUE(a_.Acquire("s1").value());
  clock_.Advance(kTtl - milliseconds(1));
  EXPECT_FALSE(b_.Acquire("s1").value());
  clock_.Advance(milliseconds(1));
  EXPECT_TRUE(b_.Acquire("s1").value());
  EXPECT_EQ(Holder("s1"), std::optional<std::string>("replica-b"));
}

// Replica A sleeps through its ttl (a long pause), B takes the study: A's
// next renewal reports the loss, and any write A tries for the study is
// refused by the fence and leaves B's data as it was.
TEST_F(StudyLeasesTest, AReplicaThatLostItsLeaseStopsAndCannotWrite) {
  StudyStore studies_a(store_), studies_b(store_);
  studies_a.SetWriteGuard([this](const std::string& id) { return a_.Confirm(id); });
  studies_b.SetWriteGuard([this](const std::string& id) { return b_.Confirm(id); });
  codec::StudySpec spec;
  spec.study_id = "s1";
  spec.tasks = {"t0"};
  spec.model = {4, {2}, 1, 0.0f};
  spec.rounds = 3;
  ASSERT_TRUE(a_.Acquire("s1").value());
  ASSERT_TRUE(studies_a.Create(spec, std::vector<float>(13, 0.0f), 0).ok());
  ASSERT_TRUE(studies_a.SaveState("s1", codec::StudyState::kRunning, 1, "a").ok());

  clock_.Advance(kTtl + milliseconds(1));
  ASSERT_TRUE(b_.Acquire("s1").value());
  ASSERT_TRUE(studies_b.SaveState("s1", codec::StudyState::kRunning, 2, "b").ok());

  // A wakes up and, before noticing, tries to write: fenced.
  core::Status fenced = studies_a.SaveState("s1", codec::StudyState::kRunning, 1, "stale");
  EXPECT_EQ(fenced.code(), core::StatusCode::kFailedPrecondition) << fenced;
  EXPECT_FALSE(a_.Holds("s1"));
  EXPECT_EQ(Read(metrics_a_, "fedrx_coordinator_lease_lost_total"), 1);
  auto record = studies_b.Load("s1");
  ASSERT_TRUE(record.ok());
  EXPECT_EQ(record->current_round, 2u);
  EXPECT_EQ(record->detail, "b");
  // And it never writes for the study again, nor renews B's lease away.
  EXPECT_TRUE(a_.RenewDue().empty());
  EXPECT_FALSE(studies_a.SaveRound("s1", RoundRecord{1}).ok());
  a_.Release("s1");
  EXPECT_EQ(Holder("s1"), std::optional<std::string>("replica-b"));
}

TEST_F(StudyLeasesTest, RenewalAfterExpiryReportsTheLossOnce) {
  ASSERT_TRUE(a_.Acquire("s1").value());
  clock_.Advance(kTtl + milliseconds(1));
  ASSERT_TRUE(b_.Acquire("s1").value());
  EXPECT_EQ(a_.RenewDue(), std::vector<std::string>{"s1"});
  EXPECT_TRUE(a_.RenewDue().empty());
  EXPECT_EQ(Read(metrics_a_, "fedrx_coordinator_lease_lost_total"), 1);
  EXPECT_EQ(Read(metrics_a_, "fedrx_coordinator_studies_owned"), 0);
  EXPECT_EQ(Holder("s1"), std::optional<std::string>("replica-b"));
}

TEST_F(StudyLeasesTest, AShortStoreOutageKeepsTheLeaseAWholeTtlLosesIt) {
  ASSERT_TRUE(a_.Acquire("s1").value());
  store_.SetDown(true);
  clock_.Advance(kTtl / 3);
  EXPECT_TRUE(a_.RenewDue().empty());  // failed, but still within the ttl
  EXPECT_TRUE(a_.Holds("s1"));
  EXPECT_GT(metrics_a_.Read("fedrx_coordinator_errors_total",
                            {{"component", "lease"}, {"reason", "renew"}}),
            0);
  store_.SetDown(false);
  clock_.Advance(milliseconds(500));
  EXPECT_TRUE(a_.RenewDue().empty());  // renewed
  store_.SetDown(true);
  std::vector<std::string> lost;
  for (int i = 0; i < 40 && lost.empty(); ++i) {
    clock_.Advance(milliseconds(100));
    lost = a_.RenewDue();
  }
  EXPECT_EQ(lost, std::vector<std::string>{"s1"});
  EXPECT_FALSE(a_.Holds("s1"));
  store_.SetDown(false);
  // Nothing stored was lost: the study's data is untouched by the outage,
  // and the expired lease is free for whoever scans first.
  EXPECT_TRUE(b_.Acquire("s1").value());
}

TEST_F(StudyLeasesTest, ACorruptLeaseValueIsRemovedCountedAndTheLeaseTaken) {
  ASSERT_TRUE(store_.Set(LeaseKey("s1"), std::string("not a replica\n", 14)).ok());
  EXPECT_EQ(b_.Holder("s1").value(), std::nullopt);
  EXPECT_TRUE(a_.Acquire("s1").value());
  EXPECT_EQ(Holder("s1"), std::optional<std::string>("replica-a"));
  EXPECT_EQ(Read(metrics_a_, "fedrx_coordinator_lease_corrupt_total"), 1);
}

TEST_F(StudyLeasesTest, AStoreErrorOnAcquireHoldsNothing) {
  store_.SetDown(true);
  auto taken = a_.Acquire("s1");
  ASSERT_FALSE(taken.ok());
  EXPECT_EQ(taken.status().code(), core::StatusCode::kUnavailable);
  EXPECT_FALSE(a_.Holds("s1"));
  store_.SetDown(false);
  EXPECT_EQ(Holder("s1"), std::nullopt);
}

TEST_F(StudyLeasesTest, ALeaseLeftUnderTheSameReplicaIdIsResumedAtOnce) {
  // A restarted process of replica-a finds its predecessor's lease.
  ASSERT_TRUE(a_.Acquire("s1").value());
  core::Metrics metrics{"coordinator"};
  StudyLeases restarted(store_, clock_, metrics, {"replica-a", kTtl});
  EXPECT_TRUE(restarted.Acquire("s1").value());
  EXPECT_FALSE(b_.Acquire("s1").value());
}

TEST_F(StudyLeasesTest, ReleaseFreesOnlyTheHoldersLease) {
  ASSERT_TRUE(a_.Acquire("s1").value());
  b_.Release("s1");  // not held by b: nothing happens
  EXPECT_EQ(Holder("s1"), std::optional<std::string>("replica-a"));
  a_.Release("s1");
  EXPECT_EQ(Holder("s1"), std::nullopt);
  EXPECT_FALSE(a_.Holds("s1"));
  EXPECT_TRUE(b_.Acquire("s1").value());
}

// A lease held by a replica with no liveness record is reported (once) and,
// if it never expires, removed after two ttls; a live holder's never is.
TEST_F(StudyLeasesTest, ALeaseOfAnUnknownReplicaIsReportedAndRemovedIfItNeverExpires) {
  ASSERT_TRUE(b_.Announce().ok());
  ASSERT_TRUE(b_.Acquire("s2").value());
  ASSERT_TRUE(store_.Set(LeaseKey("s1"), "ghost").ok());  // no expiry
  const std::map<std::string, std::string> foreign = {{"s1", "ghost"}, {"s2", "replica-b"}};
  ASSERT_TRUE(a_.CheckHolders(foreign).ok());
  EXPECT_EQ(Read(metrics_a_, "fedrx_coordinator_lease_unknown_holder_total"), 1);
  // replica-b stays alive (renewing every 100 ms) while time passes.
  const auto pass = [this](milliseconds d) {
    for (milliseconds t{0}; t < d; t += milliseconds(100)) {
      clock_.Advance(milliseconds(100));
      EXPECT_TRUE(b_.RenewDue().empty());
    }
  };
  pass(kTtl);
  ASSERT_TRUE(a_.CheckHolders(foreign).ok());
  EXPECT_EQ(Holder("s1"), std::optional<std::string>("ghost"));  // not yet
  pass(kTtl);
  ASSERT_TRUE(a_.CheckHolders(foreign).ok());
  EXPECT_EQ(Read(metrics_a_, "fedrx_coordinator_lease_unknown_holder_total"), 1);
  EXPECT_EQ(Holder("s1"), std::nullopt);
  EXPECT_EQ(Holder("s2"), std::optional<std::string>("replica-b"));
  EXPECT_TRUE(a_.Acquire("s1").value());
}

TEST(LeaseOptionsTest, BadReplicaIdOrTtlIsInvalidArgumentNamingTheKey) {
  auto bad_id = ValidateLeaseOptions({"has space", milliseconds(10000)});
  EXPECT_EQ(bad_id.code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad_id.where(), "coordinator.replica_id");
  auto empty = ValidateLeaseOptions({"", milliseconds(10000)});
  EXPECT_EQ(empty.where(), "coordinator.replica_id");
  auto short_ttl = ValidateLeaseOptions({"a", milliseconds(100)});
  EXPECT_EQ(short_ttl.code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(short_ttl.where(), "coordinator.lease_ttl");
  EXPECT_TRUE(ValidateLeaseOptions({"coordinator-0", milliseconds(10000)}).ok());
}

}  // namespace
}  // namespace fedrx::coordinator
