// FakeNetwork and FakeBus: an in-memory Bus for unit tests, with the real
// bus's semantics because it runs the real bus's code for them: codec
// Encode/Decode, header filling, counting and answers to bad input
// (bus_internal.h), and request bookkeeping (RequestTracker).
// Deterministic and single-threaded: traffic moves only when some FakeBus on
// the network polls (or the test calls FakeNetwork::Pump), and deadlines
// follow the injected Clock. Not thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "messages/codec/blob.h"
#include "services/core/authenticator.h"
#include "services/core/bus.h"
#include "services/core/clock.h"
#include "services/core/metrics.h"
#include "services/core/request_tracker.h"

namespace fedrx::core::testing {

class FakeBus;

// The wires between FakeBuses. Endpoints are plain strings; "...:*" binds a
// fresh port number. Must outlive every FakeBus on it.
class FakeNetwork {
 public:
  FakeNetwork() = default;
  FakeNetwork(const FakeNetwork&) = delete;
  FakeNetwork& operator=(const FakeNetwork&) = delete;

  // Delivers queued traffic and expires due requests on every bus, running
  // their handlers and callbacks, until nothing is left to do.
  void Pump();

  // Queues raw `frames` (an envelope and tensor frames, possibly malformed)
  // to the server at `endpoint` as if a client `peer` sent them. What the
  // server sends back to `peer` is kept for TakeRaw().
  void InjectRaw(const std::string& endpoint, const PeerId& peer,
                 std::vector<codec::Blob> frames);
  // The oldest message delivered to raw peer `peer`, as frames; nullopt if none.
  std::optional<std::vector<codec::Blob>> TakeRaw(const PeerId& peer);

  // A raw server for tests of how clients treat bad input: what clients send
  // to `endpoint` is kept for TakeRawRequest, and RawSendTo answers them.
  Status ServeRaw(const std::string& endpoint);
  struct RawRequest {
    PeerId peer;
    std::vector<codec::Blob> frames;
  };
  std::optional<RawRequest> TakeRawRequest(const std::string& endpoint);
  // Queues raw `frames` to the client channel behind `peer`.
  void RawSendTo(const PeerId& peer, std::vector<codec::Blob> frames);

  // Stands in for CURVE authentication (FakeBus ignores the curve_* options):
  // servers on this network see `identity` in Inbound::identity and ::role
  // for every message later delivered from `client`, which names a client
  // FakeBus (its BusOptions::name) or a raw peer of InjectRaw. Without it
  // both stay empty.
  void SetIdentity(const std::string& client, Identity identity);

  // Messages queued and not yet delivered.
  std::size_t InFlight() const { return queue_.size(); }

 private:
  friend class FakeBus;

  enum class To { kServer, kClient, kSubscriber };
  struct Delivery {
    To to = To::kServer;
    std::string endpoint;  // kServer: the server's endpoint
    PeerId peer;           // kServer: the sender; kClient: the receiver
    FakeBus* bus = nullptr;  // kSubscriber: the receiving bus
    std::size_t subscription = 0;
    std::string topic;
    std::vector<codec::Blob> frames;
  };
  // Where a peer id leads: a client bus's channel, or a raw inbox (bus null).
  struct PeerRoute {
    FakeBus* bus = nullptr;
    ChannelId channel = 0;
  };
  struct SubscriberRoute {
    FakeBus* bus = nullptr;
    std::size_t subscription = 0;
    std::string prefix;
  };

  void Deliver(Delivery d);
  std::size_t QueuedFor(To to, std::string_view key) const;
  void Attach(FakeBus* bus);
  void Detach(FakeBus* bus);
  std::string Resolve(const std::string& endpoint);
  // The identity set for whoever sent as `peer`; nullptr if none.
  const Identity* IdentityOf(const PeerId& peer) const;

  std::deque<Delivery> queue_;
  // Sent to an endpoint nobody serves yet: delivered once someone does.
  std::map<std::string, std::deque<Delivery>> parked_;
  std::map<std::string, FakeBus*> servers_;
  std::map<std::string, FakeBus*> publishers_;
  std::multimap<std::string, SubscriberRoute> subscribers_;
  std::map<PeerId, PeerRoute> peers_;
  std::map<PeerId, std::deque<std::vector<codec::Blob>>> raw_inbox_;
  std::map<std::string, std::deque<RawRequest>> raw_servers_;
  std::map<std::string, Identity> identities_;
  std::vector<FakeBus*> buses_;
  int next_port_ = 40000;
  std::uint64_t next_peer_ = 1;
  std::uint64_t next_bus_ = 1;
};

class FakeBus final : public Bus {
 public:
  // `network`, `metrics` and `clock` must outlive the bus.
  FakeBus(FakeNetwork& network, BusOptions options, Metrics& metrics, const Clock& clock);
  ~FakeBus() override;
  FakeBus(const FakeBus&) = delete;
  FakeBus& operator=(const FakeBus&) = delete;

  Status Serve(const std::string& endpoint, RequestHandler handler) override;
  std::string ServedEndpoint() const override { return served_endpoint_; }
  // Kept only so a service can install one as it would on a ZmqBus; the fake
  // never runs handshakes (FakeNetwork::SetIdentity stands in for them).
  void SetAuthenticator(Authenticator* authenticator) override { authenticator_ = authenticator; }
  Authenticator* authenticator() const { return authenticator_; }
  Status SendTo(const PeerId& peer, codec::Message message) override;

  Result<ChannelId> Connect(const std::string& endpoint, PushHandler on_push) override;
  Status Send(ChannelId channel, codec::Message message) override;
  Status Request(ChannelId channel, codec::Message message, std::chrono::milliseconds timeout,
                 ReplyCallback on_reply) override;

  Status BindPublisher(const std::string& endpoint) override;
  std::string PublisherEndpoint() const override { return publisher_endpoint_; }
  Status Publish(std::string_view topic, codec::Message message) override;
  Status Subscribe(const std::string& endpoint, std::string_view topic_prefix,
                   EventHandler handler) override;

  // Pumps the whole network (never sleeps; `max_wait` is ignored).
  Status Poll(std::chrono::milliseconds max_wait) override;

 private:
  friend class FakeNetwork;

  struct Channel {
    std::string endpoint;
    PeerId peer;
    PushHandler on_push;
  };
  struct Subscription {
    std::string prefix;
    EventHandler handler;
  };
  std::string NewMessageId();
  // Fills the header, encodes, and counts the message as sent.
  std::vector<codec::Blob> EncodeForSend(codec::Message&& message);

  void OnServerFrames(const PeerId& peer, std::vector<codec::Blob> frames);
  void OnChannelFrames(ChannelId channel, std::vector<codec::Blob> frames);
  void OnEventFrames(std::size_t subscription, const std::string& topic,
                     std::vector<codec::Blob> frames);
  // Runs the callbacks of expired requests; true if there were any.
  bool ExpireDue();

  FakeNetwork& network_;
  BusOptions options_;
  Metrics& metrics_;
  const Clock& clock_;
  std::uint64_t serial_;
  std::uint64_t next_id_ = 1;

  std::string served_endpoint_;
  Authenticator* authenticator_ = nullptr;
  RequestHandler handler_;
  // Deques: handlers may Connect or Subscribe while one of these runs.
  std::deque<Channel> channels_;
  std::string publisher_endpoint_;
  std::deque<Subscription> subscriptions_;
  RequestTracker requests_;
};

}  // namespace fedrx::core::testing
