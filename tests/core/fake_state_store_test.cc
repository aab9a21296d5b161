// The fake's fault injector; its store semantics are covered by
// state_store_conformance_test.cc.
#include "services/core/testing/fake_state_store.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "services/core/keys.h"
#include "services/core/testing/fake_clock.h"

namespace fedrx::core::testing {
namespace {

using OptString = std::optional<std::string>;

TEST(FakeStateStoreTest, FailNextFailsExactlyTheNextCallsWithTheGivenStatusAndWritesNothing) {
  FakeStateStore store;
  store.FailNext(2, Status(StatusCode::kDeadlineExceeded, "injected", "here"));

  Status first = store.Set(TestKey("a"), "1");
  EXPECT_EQ(first.code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(first.message(), "injected");
  EXPECT_EQ(first.where(), "here");
  WriteBatch batch;
  batch.Set(TestKey("b"), "2");
  EXPECT_EQ(store.Apply(batch).code(), StatusCode::kDeadlineExceeded);

  Result<OptString> third = store.Get(TestKey("a"));
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_EQ(*third, std::nullopt);
  EXPECT_EQ(store.KeyCount(), 0u);
  EXPECT_EQ(store.CallCount(), 3);
}

TEST(FakeStateStoreTest, DownStoreIsUnavailableLosesNothingAndAppliesNothing) {
  FakeStateStore store;
  ASSERT_TRUE(store.Set(TestKey("a"), "kept").ok());

  store.SetDown(true);
  EXPECT_EQ(store.Ping().code(), StatusCode::kUnavailable);
  EXPECT_EQ(store.Get(TestKey("a")).status().code(), StatusCode::kUnavailable);
  WriteBatch batch;
  batch.Set(TestKey("a"), "changed").SetAdd(TestKey("s"), "m");
  EXPECT_EQ(store.Apply(batch).code(), StatusCode::kUnavailable);
  EXPECT_EQ(store.Increment(TestKey("n"), 1).status().code(), StatusCode::kUnavailable);

  store.SetDown(false);
  Result<OptString> a = store.Get(TestKey("a"));
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(*a, OptString("kept"));
  EXPECT_EQ(store.KeyCount(), 1u);
}

TEST(FakeStateStoreTest, FailedSingleWriteLeavesTheValueInPlace) {
  FakeStateStore store;
  ASSERT_TRUE(store.HashSet(TestKey("h"), {{"f", "v"}}).ok());
  EXPECT_EQ(store.SetAdd(TestKey("h"), "m").status().code(), StatusCode::kFailedPrecondition);
  Result<FieldMap> h = store.HashGetAll(TestKey("h"));
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(*h, (FieldMap{{"f", "v"}}));
}

// Expiry follows the injected clock: a lease lives exactly its ttl unless the
// holder renews it, and a plain Set clears the expiry as in Redis.
TEST(FakeStateStoreTest, LeaseExpiresAfterItsTtlOnTheInjectedClockUnlessRenewed) {
  FakeClock clock;
  FakeStateStore store(&clock);
  const Key lease = TestKey("lease");
  ASSERT_TRUE(store.SetIfAbsentWithExpiry(lease, "a", std::chrono::milliseconds(1000)).value());
  clock.Advance(std::chrono::milliseconds(999));
  EXPECT_EQ(store.Get(lease).value(), OptString("a"));
  ASSERT_TRUE(store.RenewIfEqual(lease, "a", std::chrono::milliseconds(1000)).value());
  clock.Advance(std::chrono::milliseconds(999));
  EXPECT_EQ(store.Get(lease).value(), OptString("a"));
  clock.Advance(std::chrono::milliseconds(1));
  EXPECT_EQ(store.Get(lease).value(), std::nullopt);
  EXPECT_FALSE(store.RenewIfEqual(lease, "a", std::chrono::milliseconds(1000)).value());
  EXPECT_TRUE(store.SetIfAbsentWithExpiry(lease, "b", std::chrono::milliseconds(1000)).value());
  ASSERT_TRUE(store.Set(lease, "b").ok());
  clock.Advance(std::chrono::hours(1));
  EXPECT_EQ(store.Get(lease).value(), OptString("b"));
}

}  // namespace
}  // namespace fedrx::core::testing
