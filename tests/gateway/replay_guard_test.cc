// The replay guard's time check must hold for any sent_at_ms a peer writes,
// the extremes of a 64-bit integer included (the difference from the
// gateway's clock is computed without overflow), and a fresh message inside
// the window is admitted once.
#include <chrono>
#include <cstdint>
#include <limits>

#include <gtest/gtest.h>

#include "gateway/gateway_policy.h"

namespace fedrx::gateway {
namespace {

using Verdict = ReplayGuard::Verdict;

TEST(ReplayGuardTest, ExtremeSendTimesAreStaleNotOverflowed) {
  ReplayGuard guard(std::chrono::minutes(5), 100);
  const std::int64_t now_ms = 1'700'000'000'000;
  const auto now = std::chrono::steady_clock::time_point{};
  EXPECT_EQ(guard.Check("a", std::numeric_limits<std::int64_t>::min(), now_ms, now),
            Verdict::kStale);
  EXPECT_EQ(guard.Check("b", std::numeric_limits<std::int64_t>::max(), now_ms, now),
            Verdict::kStale);
  EXPECT_EQ(guard.Check("c", std::numeric_limits<std::int64_t>::min(),
                        std::numeric_limits<std::int64_t>::max(), now),
            Verdict::kStale);
}

TEST(ReplayGuardTest, InsideTheWindowOnceThenDuplicate) {
  ReplayGuard guard(std::chrono::minutes(5), 100);
  const std::int64_t now_ms = 1'700'000'000'000;
  const auto now = std::chrono::steady_clock::time_point{};
  EXPECT_EQ(guard.Check("m", now_ms - 299'000, now_ms, now), Verdict::kFresh);
  EXPECT_EQ(guard.Check("m", now_ms, now_ms, now), Verdict::kDuplicate);
  EXPECT_EQ(guard.Check("n", now_ms + 301'000, now_ms, now), Verdict::kStale);
}

}  // namespace
}  // namespace fedrx::gateway
