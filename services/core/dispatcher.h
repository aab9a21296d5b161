// Dispatcher: routes a server's inbound messages to typed handlers by body
// type, replies with their result (or an Error body), and records
// fedrx_<service>_requests_total{type,code} and request latency per type.
// Not thread-safe: lives on the bus's thread.
#pragma once

#include <functional>
#include <utility>
#include <variant>
#include <vector>

#include "messages/codec/message.h"
#include "services/core/bus.h"
#include "services/core/clock.h"
#include "services/core/metrics.h"
#include "services/core/status.h"

namespace fedrx::core {

struct Response {
  codec::Body body;
  std::vector<codec::Tensor> tensors;
  // False for a one-way message handled without an answer (a refusal is
  // still answered with an Error).
  bool reply = true;

  static Response None() { return Response{codec::Ack{}, {}, false}; }
};

class Dispatcher {
 public:
  using Handler = std::function<Result<Response>(Inbound&)>;

  Dispatcher(Bus& bus, Metrics& metrics, const Clock& clock);

  // Registers the handler for body type T; it receives the typed body.
  template <typename T>
  void On(std::function<Result<Response>(Inbound&, T&)> handler) {
    constexpr std::size_t index = IndexOf<T>();
    handlers_[index] = [h = std::move(handler)](Inbound& in) {
      return h(in, std::get<T>(in.message.body));
    };
  }

  // Runs the handler for `in`'s body type and sends the reply. A body with no
  // handler gets an Error (kUnimplemented) reply naming the type.
  void Handle(Inbound&& in);

  // A RequestHandler for Bus::Serve that calls Handle().
  Bus::RequestHandler AsHandler();

 private:
  template <typename T, std::size_t I = 0>
  static constexpr std::size_t IndexOf() {
    if constexpr (std::is_same_v<std::variant_alternative_t<I, codec::Body>, T>) {
      return I;
    } else {
      return IndexOf<T, I + 1>();
    }
  }

  Bus& bus_;
  Metrics& metrics_;
  const Clock& clock_;
  std::vector<Handler> handlers_;
};

}  // namespace fedrx::core
