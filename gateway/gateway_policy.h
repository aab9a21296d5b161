// The gateway's admission policy, apart from identity: which roles may send
// which message, per-role rate and size limits (token buckets per identity),
// and the replay guard (duplicate message ids, stale send times). Plain
// values and small classes; not thread-safe (the gateway runs on one thread).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "messages/codec/message.h"
#include "services/core/config.h"
#include "services/core/status.h"

namespace fedrx::gateway {

// Limits for every identity holding one role.
struct RoleLimits {
  // Sustained messages per second of one identity, and how many may come at
  // once after a quiet spell. 0 means unlimited.
  std::int64_t messages_per_second = 0;
  std::int64_t burst = 0;
  // Largest message (envelope and tensor frames together) the role may send;
  // 0 leaves only the bus's own frame limits.
  std::uint64_t max_message_bytes = 0;
};

struct GatewayLimits {
  // By role name ("site", "scientist", "admin"); a role not listed is unlimited.
  std::map<std::string, RoleLimits, std::less<>> per_role = DefaultRoleLimits();
  // A message id seen from an identity within this window is a replay; a
  // message whose sent_at_ms is further than this from the gateway's clock
  // (either way) is stale and refused, so an id older than the window cannot
  // be replayed either.
  std::chrono::milliseconds replay_window{std::chrono::minutes(5)};
  // Message ids remembered per identity (oldest forgotten first; a flood of
  // more ids than this within the window is refused rather than forgotten).
  std::size_t replay_ids_per_identity = 200000;

  static std::map<std::string, RoleLimits, std::less<>> DefaultRoleLimits();
};

// Reads `gateway.limits.<role>.rate`, `.burst`, `.max_message_bytes` for each
// role, and `gateway.replay_window`, over the defaults. Errors name the key.
core::Status LoadGatewayLimits(const core::Config& config, GatewayLimits& limits);

// The roles that may send a body through the gateway; empty when no role may
// (bodies only services send, such as TrainTask or Error).
const std::vector<std::string_view>& RolesAllowed(const codec::Body& body);

// A token bucket: `rate` tokens a second up to `burst`, starting full.
class TokenBucket {
 public:
  TokenBucket(double rate, double burst, std::chrono::steady_clock::time_point now);
  // Takes one token if there is one.
  bool TryTake(std::chrono::steady_clock::time_point now);
  // Seconds until a token is available (0 when one is).
  double SecondsUntilNext(std::chrono::steady_clock::time_point now) const;

 private:
  void Refill(std::chrono::steady_clock::time_point now);
  double rate_;
  double burst_;
  double tokens_;
  std::chrono::steady_clock::time_point last_;
};

// Remembers the message ids one identity sent within a time window.
class ReplayGuard {
 public:
  enum class Verdict { kFresh, kDuplicate, kStale, kFull };
  ReplayGuard(std::chrono::milliseconds window, std::size_t capacity)
      : window_(window), capacity_(capacity) {}
  // Records `message_id` when it is fresh. `sent_at_ms` and `now_ms` are Unix
  // epoch milliseconds (the sender's claim and the gateway's clock).
  Verdict Check(const std::string& message_id, std::int64_t sent_at_ms, std::int64_t now_ms,
                std::chrono::steady_clock::time_point now);
  std::size_t remembered() const { return order_.size(); }

 private:
  std::chrono::milliseconds window_;
  std::size_t capacity_;
  std::unordered_set<std::string> seen_;
  std::deque<std::pair<std::chrono::steady_clock::time_point, std::string>> order_;
};

}  // namespace fedrx::gateway
