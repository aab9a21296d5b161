#include "services/core/request_tracker.h"

#include <algorithm>
#include <variant>
#include <vector>

#include "services/core/bus_internal.h"

namespace fedrx::core {

RequestTracker::RequestTracker(std::string bus_name, Metrics& metrics, const Clock& clock,
                               std::size_t expired_memory)
    : bus_name_(std::move(bus_name)),
      metrics_(metrics),
      clock_(clock),
      expired_memory_(expired_memory) {}

Status RequestTracker::CheckNotPending(const std::string& message_id) const {
  if (pending_.count(message_id) == 0) return Status::Ok();
  return InvalidArgument("a request with message id " + message_id + " is already pending",
                         "Request");
}

Status RequestTracker::Track(ChannelId channel, std::string message_id, const char* body_name,
                             std::chrono::milliseconds timeout, Bus::ReplyCallback on_reply) {
  const DeadlineKey deadline{clock_.Now() + timeout, next_sequence_};
  auto [it, inserted] = pending_.try_emplace(
      std::move(message_id), Pending{channel, deadline, timeout, body_name, std::move(on_reply)});
  if (!inserted) return CheckNotPending(it->first);  // the refused callback is dropped unrun
  ++next_sequence_;
  return Status::Ok();
}

RequestTracker::Outcome RequestTracker::OnMessage(ChannelId channel, codec::Message&& message,
                                                  const Bus::PushHandler& on_push) {
  const std::string& correlation = message.header.correlation_id;
  if (!correlation.empty()) {
    auto it = pending_.find(correlation);
    if (it != pending_.end() && it->second.channel == channel) {
      // Settle the bookkeeping before the callback: it may issue new requests.
      Bus::ReplyCallback callback = std::move(it->second.callback);
      pending_.erase(it);
      if (const auto* error = std::get_if<codec::Error>(&message.body)) {
        callback(FromErrorBody(*error));
      } else {
        callback(std::move(message));
      }
      return Outcome::kReply;
    }
    if (expired_.count(correlation) != 0) {
      metrics_.CountRejected("late_reply");
      internal::LogBus(bus_name_, "late reply " + message.header.message_id +
                                      " to expired request " + correlation + " dropped");
      return Outcome::kLateReply;
    }
  }
  if (!on_push) {
    metrics_.CountRejected("unhandled_push");
    internal::LogBus(bus_name_, "push " + message.header.message_id + " on channel " +
                                    std::to_string(channel) + " dropped: no push handler");
    return Outcome::kUnhandledPush;
  }
  on_push(std::move(message));
  return Outcome::kPush;
}

std::size_t RequestTracker::ExpireDue() {
  if (pending_.empty()) return 0;
  const Time now = clock_.Now();
  std::vector<std::pair<std::string, Pending>> due;
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->second.deadline.first <= now) {
      auto node = pending_.extract(it++);
      due.emplace_back(std::move(node.key()), std::move(node.mapped()));
    } else {
      ++it;
    }
  }
  std::sort(due.begin(), due.end(),
            [](const auto& a, const auto& b) { return a.second.deadline < b.second.deadline; });
  // Callbacks run once the map is settled: they may issue new requests.
  for (auto& [id, p] : due) {
    RememberExpired(id);
    p.callback(DeadlineExceeded("no reply to " + std::string(p.body_name) + " within " +
                                    std::to_string(p.timeout.count()) + " ms",
                                "request " + id));
  }
  return due.size();
}

std::optional<std::chrono::steady_clock::time_point> RequestTracker::NextDeadline() const {
  if (pending_.empty()) return std::nullopt;
  Time next = Time::max();
  for (const auto& [id, p] : pending_) next = std::min(next, p.deadline.first);
  return next;
}

void RequestTracker::RememberExpired(const std::string& message_id) {
  if (expired_memory_ == 0 || !expired_.insert(message_id).second) return;
  expired_order_.push_back(message_id);
  if (expired_order_.size() > expired_memory_) {
    expired_.erase(expired_order_.front());
    expired_order_.pop_front();
  }
}

}  // namespace fedrx::core
