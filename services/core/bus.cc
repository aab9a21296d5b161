// Helpers shared by every Bus implementation: replies, the blocking Call, the
// Status <-> Error body conversion, and the internal send/receive steps.
#include "services/core/bus.h"

#include <algorithm>
#include <cstdio>
#include <memory>
#include <optional>
#include <utility>

#include "services/core/bus_internal.h"

namespace fedrx::core {
namespace {

constexpr auto kLastErrorCode = static_cast<unsigned short>(codec::ErrorCode::kUnimplemented);

codec::ErrorCode CodeForFault(codec::DecodeFault fault) {
  switch (fault) {
    case codec::DecodeFault::kOversized: return codec::ErrorCode::kResourceExhausted;
    case codec::DecodeFault::kNewerSchema: return codec::ErrorCode::kFailedPrecondition;
    case codec::DecodeFault::kUnknownBody: return codec::ErrorCode::kUnimplemented;
    default: return codec::ErrorCode::kInvalidArgument;
  }
}

std::string DescribeFault(const codec::DecodeError& e) {
  std::string s = codec::DecodeFaultName(e.fault);
  s += " at ";
  s += e.where;
  if (!e.message_id.empty()) s += " (message " + e.message_id + ")";
  return s;
}

std::uint64_t TotalBytes(const std::vector<codec::Blob>& frames) {
  std::uint64_t n = 0;
  for (const auto& f : frames) n += f.size();
  return n;
}

}  // namespace

namespace internal {

void LogBus(std::string_view bus, std::string_view what) {
  std::fprintf(stderr, "[fedrx bus %.*s] %.*s\n", static_cast<int>(bus.size()), bus.data(),
               static_cast<int>(what.size()), what.data());
}

Status CheckChannel(ChannelId channel, std::size_t channel_count, std::string where) {
  if (channel >= 0 && static_cast<std::size_t>(channel) < channel_count) return Status::Ok();
  return InvalidArgument("no channel " + std::to_string(channel), std::move(where));
}

Status QueueFull(const BusOptions& options, std::string where) {
  return ResourceExhausted(
      "send queue is full (high-water mark " + std::to_string(options.high_water_mark) + ")",
      std::move(where));
}

std::string MessageIdFrom(std::uint64_t high, std::uint64_t low) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id(32, '0');
  for (int i = 15; i >= 0; --i, high >>= 4) id[i] = kHex[high & 0xf];
  for (int i = 31; i >= 16; --i, low >>= 4) id[i] = kHex[low & 0xf];
  return id;
}

Outbound EncodeOutbound(codec::Message&& message, const BusOptions& options, const Clock& clock) {
  codec::Header& h = message.header;
  h.schema_version = codec::kSchemaVersion;
  h.sender = options.name;
  h.sent_at_ms = clock.WallMillis();
  Outbound out;
  out.body_name = codec::BodyName(message.body);
  out.frames = codec::Encode(std::move(message));
  out.bytes = TotalBytes(out.frames);
  return out;
}

void CountSent(Metrics& metrics, const Outbound& sent) {
  metrics.CountMessage(Direction::kOut, sent.body_name, sent.bytes);
}

codec::Decoded DecodeInbound(std::vector<codec::Blob>&& frames, const BusOptions& options,
                             Metrics& metrics, std::string_view source) {
  const std::uint64_t bytes = TotalBytes(frames);
  codec::Decoded decoded = codec::Decode(std::move(frames), options.limits);
  if (decoded.ok()) {
    metrics.CountMessage(Direction::kIn, codec::BodyName(decoded.message().body), bytes);
  } else {
    metrics.CountRejected(codec::DecodeFaultName(decoded.error().fault));
    LogBus(options.name, "refused a message from " + std::string(source) + ": " +
                             DescribeFault(decoded.error()));
  }
  return decoded;
}

codec::Message ErrorReplyFor(const codec::DecodeError& error) {
  codec::Message reply =
      MakeMessage(codec::Error{CodeForFault(error.fault), error.message, error.where});
  reply.header.correlation_id = error.message_id;
  return reply;
}

}  // namespace internal

codec::Message MakeMessage(codec::Body body, std::vector<codec::Tensor> tensors) {
  codec::Message message;
  message.body = std::move(body);
  message.tensors = std::move(tensors);
  return message;
}

Status Reply(Bus& bus, const Inbound& request, codec::Body body,
             std::vector<codec::Tensor> tensors) {
  codec::Message reply = MakeMessage(std::move(body), std::move(tensors));
  reply.header.correlation_id = request.message.header.message_id;
  // A request a gateway forwarded for a site goes back to that site.
  reply.header.route_to = request.message.header.origin;
  return bus.SendTo(request.peer, std::move(reply));
}

Status ReplyError(Bus& bus, const Inbound& request, const Status& status) {
  return Reply(bus, request, ToErrorBody(status));
}

codec::Error ToErrorBody(const Status& status) {
  if (status.ok()) {
    // An OK status has no wire code; say so rather than invent one.
    return codec::Error{codec::ErrorCode::kUnknown, "an error reply was built from an OK status",
                        status.where()};
  }
  return codec::Error{static_cast<codec::ErrorCode>(status.code()), status.message(),
                      status.where()};
}

Status FromErrorBody(const codec::Error& error) {
  const auto raw = static_cast<unsigned short>(error.code);
  // A newer peer may send a code this build does not know: keep it an error.
  const StatusCode code =
      raw <= kLastErrorCode ? static_cast<StatusCode>(raw) : StatusCode::kUnknown;
  std::string message = error.message;
  if (message.empty()) message = "the peer replied with an error and no message";
  return Status(code, std::move(message), error.where);
}

Result<codec::Message> Call(Bus& bus, ChannelId channel, codec::Message message,
                            std::chrono::milliseconds timeout) {
  // Shared with the callback: if Poll fails and we return early, a later
  // Poll may still run the callback, which must not touch a dead frame.
  auto slot = std::make_shared<std::optional<Result<codec::Message>>>();
  FEDRX_RETURN_IF_ERROR(bus.Request(channel, std::move(message), timeout,
                                    [slot](Result<codec::Message>&& r) { *slot = std::move(r); }));
  // The bus expires the request on its own clock; this steady backstop only
  // guarantees that Call returns even if that clock stands still (a fake).
  const auto backstop = std::chrono::steady_clock::now() + timeout + std::chrono::seconds(1);
  while (!slot->has_value()) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        backstop - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      return DeadlineExceeded("no reply within " + std::to_string(timeout.count()) + " ms",
                              "Call");
    }
    FEDRX_RETURN_IF_ERROR(bus.Poll(std::min(left, timeout)));
  }
  return std::move(**slot);
}

}  // namespace fedrx::core
