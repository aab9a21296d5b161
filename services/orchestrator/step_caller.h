// StepCaller: how the orchestrator's engine reaches a domain service (or the
// report service) for one step. The engine does not know the transport: the
// service hands in a BusStepCaller (bus_step_caller.h), tests a fake that
// answers when the test says so. Used on one thread (the engine's).
#pragma once

#include <chrono>
#include <functional>
#include <string_view>

#include "messages/codec/message.h"
#include "services/core/status.h"

namespace fedrx::orchestrator {

class StepCaller {
 public:
  // The answer body, or why there is none (the Status of an Error reply,
  // kDeadlineExceeded after the timeout, kUnavailable for a service that is
  // not configured or could not be sent to).
  using Callback = std::function<void(core::Result<codec::Body>&&)>;

  virtual ~StepCaller() = default;

  // Sends `body` to `service` ("tox", "report", ...) and calls `done` exactly
  // once with the outcome. `done` may run inside Call (an immediate refusal)
  // or later on the same thread (the bus's Poll); the engine copes with both.
  // Never blocks.
  virtual void Call(std::string_view service, codec::Body body, std::chrono::milliseconds timeout,
                    Callback done) = 0;

  // Housekeeping on the engine's thread, called at the start of every engine
  // Tick (a transport's health probes, say). Never blocks.
  virtual void Maintain() {}
};

}  // namespace fedrx::orchestrator
