#include "services/core/dispatcher.h"

#include <exception>
#include <iostream>
#include <string>

namespace fedrx::core {

Dispatcher::Dispatcher(Bus& bus, Metrics& metrics, const Clock& clock)
    : bus_(bus), metrics_(metrics), clock_(clock), handlers_(codec::kBodyCount) {}

void Dispatcher::Handle(Inbound&& in) {
  // Read before the handler runs: it may move the message apart.
  const std::size_t index = in.message.body.index();
  const char* type = codec::BodyName(in.message.body);

  const auto start = clock_.Now();
  Result<Response> result =
      Status(StatusCode::kUnimplemented,
             std::string("no handler for ") + type + " in " + metrics_.service(), "envelope.body");
  if (index < handlers_.size() && handlers_[index]) {
    // Handlers are fedrx code and should not throw, but a library call
    // inside one might. This is the boundary where that becomes an Error
    // reply, a counter and a log line instead of a dead process.
    try {
      result = handlers_[index](in);
    } catch (const std::exception& e) {
      metrics_.CountError("dispatcher", "handler_exception");
      std::cerr << "fedrx " << metrics_.service() << ": handler for " << type
                << " threw: " << e.what() << "\n";
      result = Internal(std::string("internal error while handling ") + type);
    } catch (...) {
      metrics_.CountError("dispatcher", "handler_exception");
      std::cerr << "fedrx " << metrics_.service() << ": handler for " << type
                << " threw a non-standard exception\n";
      result = Internal(std::string("internal error while handling ") + type);
    }
  }
  const double seconds = std::chrono::duration<double>(clock_.Now() - start).count();

  Status sent;
  if (result.ok()) {
    metrics_.ObserveRequest(type, "ok", seconds);
    Response& response = result.value();
    if (!response.reply) return;  // a one-way message, handled
    sent = Reply(bus_, in, std::move(response.body), std::move(response.tensors));
  } else {
    metrics_.ObserveRequest(type, StatusCodeName(result.status().code()), seconds);
    sent = ReplyError(bus_, in, result.status());
  }
  if (!sent.ok()) {
    metrics_.CountError("dispatcher", "reply");
    std::cerr << "fedrx " << metrics_.service() << ": cannot reply to " << type << " "
              << in.message.header.message_id << ": " << sent << "\n";
  }
}

Bus::RequestHandler Dispatcher::AsHandler() {
  return [this](Inbound&& in) { Handle(std::move(in)); };
}

}  // namespace fedrx::core
