// ZmqBus: the Bus over ZeroMQ (ROUTER for Serve, one DEALER per Connect, PUB
// and SUBs). Tensor frames go to and come from zmq without a copy.
// Not thread-safe: one thread owns a ZmqBus (it may be handed to another
// thread between uses). Blob release functions of sent tensors run on zmq's
// I/O thread, so they must be thread-safe.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "messages/codec/blob.h"
#include "services/core/authenticator.h"
#include "services/core/bus.h"
#include "services/core/clock.h"
#include "services/core/metrics.h"

namespace fedrx::core {

class ZmqBus final : public Bus {
 public:
  // Owns its own zmq context (one I/O thread). `metrics` and `clock` must
  // outlive the bus.
  ZmqBus(BusOptions options, Metrics& metrics, const Clock& clock);
  ~ZmqBus() override;
  ZmqBus(const ZmqBus&) = delete;
  ZmqBus& operator=(const ZmqBus&) = delete;

  // With BusOptions::curve_secret_key set, Serve binds a CURVE server and
  // this bus's ZAP handler (inproc://zeromq.zap.01 in its own context),
  // answered inside Poll(); kFailedPrecondition without an Authenticator.
  // The served socket's connections are counted from its zmq monitor, read
  // inside Poll(): gauge fedrx_<service>_connections (accepted and not yet
  // closed) and fedrx_<service>_connection_events_total{event="accepted"|
  // "disconnected"|"handshake_failed"} (a refused CURVE key, a plaintext
  // client at a CURVE server, a peer that is not ZMTP or that left in the
  // middle of its handshake).
  Status Serve(const std::string& endpoint, RequestHandler handler) override;
  std::string ServedEndpoint() const override;
  Status SendTo(const PeerId& peer, codec::Message message) override;

  Result<ChannelId> Connect(const std::string& endpoint, PushHandler on_push) override;
  Status Send(ChannelId channel, codec::Message message) override;
  Status Request(ChannelId channel, codec::Message message, std::chrono::milliseconds timeout,
                 ReplyCallback on_reply) override;

  Status BindPublisher(const std::string& endpoint) override;
  std::string PublisherEndpoint() const override;
  Status Publish(std::string_view topic, codec::Message message) override;
  Status Subscribe(const std::string& endpoint, std::string_view topic_prefix,
                   EventHandler handler) override;

  Status Poll(std::chrono::milliseconds max_wait) override;
  void Wake() override;

  void SetAuthenticator(Authenticator* authenticator) override;

  // For tests: when `frame` was released from a Blob this bus received, the
  // address of the zmq message's own data buffer (equal to frame.data when
  // nothing was copied); nullptr for any other Blob.
  static const void* ReceivedFrameDataForTesting(const codec::Blob::Released& frame);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fedrx::core
