// What every Bus implementation (ZmqBus, testing::FakeBus) does the same way
// beneath its transport, in one place so that the fake cannot drift from the
// real bus: header filling and encoding on send, decoding and counting on
// receive, and the Error reply to a message that cannot be decoded.
// Internal to services/core; stateless and thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "messages/codec/blob.h"
#include "messages/codec/codec.h"
#include "messages/codec/message.h"
#include "services/core/bus.h"
#include "services/core/clock.h"
#include "services/core/metrics.h"
#include "services/core/status.h"

namespace fedrx::core::internal {

// One line on stderr, "[fedrx bus <bus>] <what>". Never give it a payload.
void LogBus(std::string_view bus, std::string_view what);

// kInvalidArgument unless 0 <= channel < channel_count.
Status CheckChannel(ChannelId channel, std::size_t channel_count, std::string where);
// kResourceExhausted for a send refused because the peer's queue reached
// options.high_water_mark.
Status QueueFull(const BusOptions& options, std::string where);

// A message id of 32 hex digits made of two 64-bit halves.
std::string MessageIdFrom(std::uint64_t high, std::uint64_t low);

// A message ready to go out: its frames, and what the out-counter needs.
struct Outbound {
  std::vector<codec::Blob> frames;
  const char* body_name = "";
  std::uint64_t bytes = 0;
};

// Fills the header as a bus sends it (schema version, `options.name` as the
// sender, the clock's wall time; header.message_id must already be set) and
// encodes. The caller counts the message once it is sent (CountSent).
Outbound EncodeOutbound(codec::Message&& message, const BusOptions& options, const Clock& clock);
void CountSent(Metrics& metrics, const Outbound& sent);

// Decodes received `frames` within options.limits and counts the outcome:
// messages_total{direction="in"} and bytes_total when good; when not,
// rejected_total{reason=<fault>} and a log line naming `source` (an endpoint
// or a role, never a payload).
codec::Decoded DecodeInbound(std::vector<codec::Blob>&& frames, const BusOptions& options,
                             Metrics& metrics, std::string_view source);

// The Error reply a server owes a peer whose message it could not decode:
// the code says what kind of fault, and correlation_id names the refused
// message when its id could still be read.
codec::Message ErrorReplyFor(const codec::DecodeError& error);

}  // namespace fedrx::core::internal
