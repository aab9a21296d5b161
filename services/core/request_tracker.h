// RequestTracker: the client half of request/reply that every Bus shares:
// requests waiting for a reply, matched on correlation id and channel,
// expired on the injected Clock, and their late replies recognised.
// Not thread-safe: it belongs to its bus's thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "messages/codec/message.h"
#include "services/core/bus.h"
#include "services/core/clock.h"
#include "services/core/metrics.h"
#include "services/core/status.h"

namespace fedrx::core {

class RequestTracker {
 public:
  // Ids of expired requests remembered by default to recognise late replies.
  static constexpr std::size_t kDefaultExpiredMemory = 4096;

  // What OnMessage did with a message.
  enum class Outcome {
    kReply,          // it answered a pending request, whose callback ran
    kLateReply,      // it answered a request that had expired; dropped and counted
    kPush,           // it answered nothing pending; the push handler ran
    kUnhandledPush,  // likewise, but there was no push handler; dropped and counted
  };

  // `bus_name` names the bus in log lines. `metrics` and `clock` must outlive
  // the tracker. At most `expired_memory` expired ids are remembered (oldest
  // forgotten first), so memory stays bounded however many requests expire.
  RequestTracker(std::string bus_name, Metrics& metrics, const Clock& clock,
                 std::size_t expired_memory = kDefaultExpiredMemory);
  RequestTracker(const RequestTracker&) = delete;
  RequestTracker& operator=(const RequestTracker&) = delete;

  // Sends `message`, whose header.message_id must be set, through
  // `send(codec::Message&&) -> Status` and then tracks it as Track does.
  // kInvalidArgument, without sending, when a request with that id is already
  // pending; send's error, with nothing tracked, when sending fails.
  template <typename SendFn>
  Status Start(ChannelId channel, codec::Message&& message, std::chrono::milliseconds timeout,
               Bus::ReplyCallback on_reply, SendFn&& send);

  // Waits for the reply to `message_id`, sent on `channel`: `on_reply` runs
  // exactly once, from OnMessage or ExpireDue. `body_name` (a static string)
  // names the request in the timeout's message. kInvalidArgument, with
  // nothing tracked, when a request with that id is already pending.
  Status Track(ChannelId channel, std::string message_id, const char* body_name,
               std::chrono::milliseconds timeout, Bus::ReplyCallback on_reply);

  // Routes a well-formed message received on `channel`. A reply (its
  // correlation_id names a request pending on the same channel) goes to that
  // request's callback, an Error body as its Status. A reply to an expired
  // request is dropped and counted in rejected_total{reason="late_reply"}.
  // Anything else is a push for `on_push`, or, without one, dropped and
  // counted in rejected_total{reason="unhandled_push"}.
  Outcome OnMessage(ChannelId channel, codec::Message&& message, const Bus::PushHandler& on_push);

  // Calls back every request whose deadline has passed with kDeadlineExceeded,
  // earliest deadline first, and remembers its id. Returns how many expired.
  std::size_t ExpireDue();

  // The earliest deadline of a pending request; nullopt when none is pending.
  std::optional<std::chrono::steady_clock::time_point> NextDeadline() const;

  std::size_t pending() const { return pending_.size(); }

 private:
  using Time = std::chrono::steady_clock::time_point;
  // Deadline order; the sequence number keeps equal deadlines in issue order.
  using DeadlineKey = std::pair<Time, std::uint64_t>;

  struct Pending {
    ChannelId channel;
    DeadlineKey deadline;
    std::chrono::milliseconds timeout;
    const char* body_name;
    Bus::ReplyCallback callback;
  };

  Status CheckNotPending(const std::string& message_id) const;
  void RememberExpired(const std::string& message_id);

  std::string bus_name_;
  Metrics& metrics_;
  const Clock& clock_;
  std::size_t expired_memory_;
  std::uint64_t next_sequence_ = 0;

  // Few requests are pending at a time, so deadlines are found by a scan
  // rather than kept in a second index that every request would pay for.
  std::unordered_map<std::string, Pending> pending_;
  // A FIFO of at most expired_memory_ ids, and the same ids for lookup.
  std::deque<std::string> expired_order_;
  std::unordered_set<std::string> expired_;
};

template <typename SendFn>
Status RequestTracker::Start(ChannelId channel, codec::Message&& message,
                             std::chrono::milliseconds timeout, Bus::ReplyCallback on_reply,
                             SendFn&& send) {
  std::string id = message.header.message_id;
  FEDRX_RETURN_IF_ERROR(CheckNotPending(id));
  const char* body_name = codec::BodyName(message.body);
  FEDRX_RETURN_IF_ERROR(send(std::move(message)));
  return Track(channel, std::move(id), body_name, timeout, std::move(on_reply));
}

}  // namespace fedrx::core
