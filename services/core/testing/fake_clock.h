// FakeClock: time that moves only when a test advances it. Not thread-safe.
#pragma once

#include <chrono>
#include <cstdint>

#include "services/core/clock.h"

namespace fedrx::core::testing {

class FakeClock final : public Clock {
 public:
  explicit FakeClock(std::int64_t wall_start_ms = 1'700'000'000'000) : wall_ms_(wall_start_ms) {}

  std::chrono::steady_clock::time_point Now() const override { return now_; }
  std::int64_t WallMillis() const override { return wall_ms_; }

  void Advance(std::chrono::milliseconds d) {
    now_ += d;
    wall_ms_ += d.count();
  }

 private:
  std::chrono::steady_clock::time_point now_{std::chrono::hours(1)};
  std::int64_t wall_ms_;
};

}  // namespace fedrx::core::testing
