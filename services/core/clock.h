// Clock: the one source of time for fedrx code, so that tests can drive time
// with a fake. SystemClock is thread-safe.
#pragma once

#include <chrono>
#include <cstdint>

namespace fedrx::core {

class Clock {
 public:
  virtual ~Clock() = default;
  // Monotonic time for deadlines and durations; never goes back.
  virtual std::chrono::steady_clock::time_point Now() const = 0;
  // Milliseconds since the Unix epoch, for timestamps that are stored or sent.
  virtual std::int64_t WallMillis() const = 0;
};

class SystemClock final : public Clock {
 public:
  std::chrono::steady_clock::time_point Now() const override {
    return std::chrono::steady_clock::now();
  }
  std::int64_t WallMillis() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

}  // namespace fedrx::core
