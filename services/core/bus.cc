// Helpers shared by every Bus implementation: replies, the blocking Call, and
// the Status <-> Error body conversion.
#include "services/core/bus.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <utility>

namespace fedrx::core {
namespace {

constexpr auto kLastErrorCode = static_cast<unsigned short>(codec::ErrorCode::kUnimplemented);

}  // namespace

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
