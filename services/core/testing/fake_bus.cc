#include "services/core/testing/fake_bus.h"

#include <algorithm>
#include <cstdio>
#include <memory>
#include <utility>

#include "services/core/bus_internal.h"

namespace fedrx::core::testing {
namespace {

// Bounds one Pump so that two handlers answering each other forever make a
// test fail instead of hang.
constexpr int kMaxPumpSteps = 1'000'000;

bool IsEndpoint(const std::string& endpoint) {
  return endpoint.find("://") != std::string::npos && endpoint.back() != '/';
}

// Lets several subscribers hold one encoded frame without copying it.
codec::Blob ShareOf(const std::shared_ptr<codec::Blob>& frame) {
  auto* owner = new std::shared_ptr<codec::Blob>(frame);
  return codec::Blob(owner, frame->data(), frame->size(),
                     [](void* p) { delete static_cast<std::shared_ptr<codec::Blob>*>(p); });
}

}  // namespace

// ---- FakeNetwork ---------------------------------------------------------------

void FakeNetwork::Pump() {
  for (int step = 0; step < kMaxPumpSteps; ++step) {
    if (!queue_.empty()) {
      Delivery d = std::move(queue_.front());
      queue_.pop_front();
      Deliver(std::move(d));
      continue;
    }
    bool expired = false;
    // A copy: callbacks may create or destroy buses.
    const std::vector<FakeBus*> buses = buses_;
    for (FakeBus* bus : buses) {
      if (std::find(buses_.begin(), buses_.end(), bus) != buses_.end()) {
        expired = bus->ExpireDue() || expired;
      }
    }
    if (!expired && queue_.empty()) return;
  }
  std::fprintf(stderr, "[fedrx fake bus] Pump stopped after %d steps: traffic never settles\n",
               kMaxPumpSteps);
}

void FakeNetwork::Deliver(Delivery d) {
  switch (d.to) {
    case To::kServer: {
      if (auto raw = raw_servers_.find(d.endpoint); raw != raw_servers_.end()) {
        raw->second.push_back(RawRequest{d.peer, std::move(d.frames)});
        return;
      }
      auto it = servers_.find(d.endpoint);
      if (it == servers_.end()) {
        parked_[d.endpoint].push_back(std::move(d));
        return;
      }
      it->second->OnServerFrames(d.peer, std::move(d.frames));
      return;
    }
    case To::kClient: {
      auto it = peers_.find(d.peer);
      if (it == peers_.end()) return;  // the client went away
      if (it->second.bus == nullptr) {
        raw_inbox_[d.peer].push_back(std::move(d.frames));
        return;
      }
      it->second.bus->OnChannelFrames(it->second.channel, std::move(d.frames));
      return;
    }
    case To::kSubscriber:
      if (std::find(buses_.begin(), buses_.end(), d.bus) == buses_.end()) return;
      d.bus->OnEventFrames(d.subscription, d.topic, std::move(d.frames));
      return;
  }
}

std::size_t FakeNetwork::QueuedFor(To to, std::string_view key) const {
  return static_cast<std::size_t>(std::count_if(queue_.begin(), queue_.end(), [&](const Delivery& d) {
    return d.to == to && (to == To::kServer ? d.endpoint == key : d.peer == key);
  }));
}

void FakeNetwork::InjectRaw(const std::string& endpoint, const PeerId& peer,
                            std::vector<codec::Blob> frames) {
  peers_[peer] = PeerRoute{nullptr, 0};
  Delivery d;
  d.to = To::kServer;
  d.endpoint = endpoint;
  d.peer = peer;
  d.frames = std::move(frames);
  queue_.push_back(std::move(d));
}

std::optional<std::vector<codec::Blob>> FakeNetwork::TakeRaw(const PeerId& peer) {
  auto it = raw_inbox_.find(peer);
  if (it == raw_inbox_.end() || it->second.empty()) return std::nullopt;
  std::vector<codec::Blob> frames = std::move(it->second.front());
  it->second.pop_front();
  return frames;
}

Status FakeNetwork::ServeRaw(const std::string& endpoint) {
  if (servers_.count(endpoint) != 0 || raw_servers_.count(endpoint) != 0) {
    return Unavailable("bind: address already in use", endpoint);
  }
  raw_servers_[endpoint];
  auto parked = parked_.find(endpoint);
  if (parked != parked_.end()) {
    for (auto& d : parked->second) queue_.push_back(std::move(d));
    parked_.erase(parked);
  }
  return Status::Ok();
}

std::optional<FakeNetwork::RawRequest> FakeNetwork::TakeRawRequest(const std::string& endpoint) {
  auto it = raw_servers_.find(endpoint);
  if (it == raw_servers_.end() || it->second.empty()) return std::nullopt;
  RawRequest r = std::move(it->second.front());
  it->second.pop_front();
  return r;
}

void FakeNetwork::RawSendTo(const PeerId& peer, std::vector<codec::Blob> frames) {
  Delivery d;
  d.to = To::kClient;
  d.peer = peer;
  d.frames = std::move(frames);
  queue_.push_back(std::move(d));
}

void FakeNetwork::SetIdentity(const std::string& client, Identity identity) {
  identities_[client] = std::move(identity);
}

const Identity* FakeNetwork::IdentityOf(const PeerId& peer) const {
  auto route = peers_.find(peer);
  const std::string& client = route != peers_.end() && route->second.bus != nullptr
                                  ? route->second.bus->options_.name
                                  : peer;
  auto it = identities_.find(client);
  return it == identities_.end() ? nullptr : &it->second;
}

void FakeNetwork::Attach(FakeBus* bus) { buses_.push_back(bus); }

void FakeNetwork::Detach(FakeBus* bus) {
  buses_.erase(std::remove(buses_.begin(), buses_.end(), bus), buses_.end());
  std::erase_if(servers_, [bus](const auto& e) { return e.second == bus; });
  std::erase_if(publishers_, [bus](const auto& e) { return e.second == bus; });
  std::erase_if(subscribers_, [bus](const auto& e) { return e.second.bus == bus; });
  std::erase_if(peers_, [bus](const auto& e) { return e.second.bus == bus; });
}

std::string FakeNetwork::Resolve(const std::string& endpoint) {
  if (endpoint.size() >= 2 && endpoint.compare(endpoint.size() - 2, 2, ":*") == 0) {
    return endpoint.substr(0, endpoint.size() - 1) + std::to_string(next_port_++);
  }
  return endpoint;
}

// ---- FakeBus -------------------------------------------------------------------

FakeBus::FakeBus(FakeNetwork& network, BusOptions options, Metrics& metrics, const Clock& clock)
    : network_(network),
      options_(std::move(options)),
      metrics_(metrics),
      clock_(clock),
      serial_(network.next_bus_++),
      requests_(options_.name, metrics, clock) {
  network_.Attach(this);
}

FakeBus::~FakeBus() { network_.Detach(this); }

std::string FakeBus::NewMessageId() {
  // Deterministic and unique per network.
  return internal::MessageIdFrom(serial_, next_id_++);
}

std::vector<codec::Blob> FakeBus::EncodeForSend(codec::Message&& message) {
  if (message.header.message_id.empty()) message.header.message_id = NewMessageId();
  internal::Outbound sent = internal::EncodeOutbound(std::move(message), options_, clock_);
  // Queued is as good as sent: the fake never drops what it accepted.
  internal::CountSent(metrics_, sent);
  return std::move(sent.frames);
}

Status FakeBus::Serve(const std::string& endpoint, RequestHandler handler) {
  if (!served_endpoint_.empty()) {
    return FailedPrecondition("already serving on " + served_endpoint_, endpoint);
  }
  if (!IsEndpoint(endpoint)) return InvalidArgument("bind: invalid endpoint", endpoint);
  const std::string resolved = network_.Resolve(endpoint);
  if (network_.servers_.count(resolved) != 0 || network_.raw_servers_.count(resolved) != 0) {
    return Unavailable("bind: address already in use", resolved);
  }
  network_.servers_[resolved] = this;
  served_endpoint_ = resolved;
  handler_ = std::move(handler);
  auto parked = network_.parked_.find(resolved);
  if (parked != network_.parked_.end()) {
    for (auto& d : parked->second) network_.queue_.push_back(std::move(d));
    network_.parked_.erase(parked);
  }
  return Status::Ok();
}

Status FakeBus::SendTo(const PeerId& peer, codec::Message message) {
  if (served_endpoint_.empty()) return FailedPrecondition("SendTo before Serve", "SendTo");
  if (network_.peers_.count(peer) == 0) return Unavailable("peer is not connected", "SendTo");
  if (network_.QueuedFor(FakeNetwork::To::kClient, peer) >=
      static_cast<std::size_t>(options_.high_water_mark)) {
    return internal::QueueFull(options_, "SendTo");
  }
  FakeNetwork::Delivery d;
  d.to = FakeNetwork::To::kClient;
  d.peer = peer;
  d.frames = EncodeForSend(std::move(message));
  network_.queue_.push_back(std::move(d));
  return Status::Ok();
}

Result<ChannelId> FakeBus::Connect(const std::string& endpoint, PushHandler on_push) {
  if (!IsEndpoint(endpoint)) return InvalidArgument("connect: invalid endpoint", endpoint);
  const PeerId peer = "fake-peer-" + std::to_string(network_.next_peer_++);
  const auto id = static_cast<ChannelId>(channels_.size());
  channels_.push_back(Channel{endpoint, peer, std::move(on_push)});
  network_.peers_[peer] = FakeNetwork::PeerRoute{this, id};
  return id;
}

Status FakeBus::Send(ChannelId channel, codec::Message message) {
  FEDRX_RETURN_IF_ERROR(internal::CheckChannel(channel, channels_.size(), "Send"));
  const Channel& c = channels_[channel];
  if (network_.QueuedFor(FakeNetwork::To::kServer, c.endpoint) >=
      static_cast<std::size_t>(options_.high_water_mark)) {
    return internal::QueueFull(options_, c.endpoint);
  }
  FakeNetwork::Delivery d;
  d.to = FakeNetwork::To::kServer;
  d.endpoint = c.endpoint;
  d.peer = c.peer;
  d.frames = EncodeForSend(std::move(message));
  network_.queue_.push_back(std::move(d));
  return Status::Ok();
}

Status FakeBus::Request(ChannelId channel, codec::Message message,
                        std::chrono::milliseconds timeout, ReplyCallback on_reply) {
  FEDRX_RETURN_IF_ERROR(internal::CheckChannel(channel, channels_.size(), "Request"));
  if (message.header.message_id.empty()) message.header.message_id = NewMessageId();
  return requests_.Start(channel, std::move(message), timeout, std::move(on_reply),
                         [&](codec::Message&& m) { return Send(channel, std::move(m)); });
}

Status FakeBus::BindPublisher(const std::string& endpoint) {
  if (!publisher_endpoint_.empty()) {
    return FailedPrecondition("already publishing on " + publisher_endpoint_, endpoint);
  }
  if (!IsEndpoint(endpoint)) return InvalidArgument("bind: invalid endpoint", endpoint);
  const std::string resolved = network_.Resolve(endpoint);
  if (network_.publishers_.count(resolved) != 0) {
    return Unavailable("bind: address already in use", resolved);
  }
  network_.publishers_[resolved] = this;
  publisher_endpoint_ = resolved;
  return Status::Ok();
}

Status FakeBus::Publish(std::string_view topic, codec::Message message) {
  if (publisher_endpoint_.empty()) {
    return FailedPrecondition("Publish before BindPublisher", "Publish");
  }
  std::vector<std::shared_ptr<codec::Blob>> shared;
  for (auto& f : EncodeForSend(std::move(message))) {
    shared.push_back(std::make_shared<codec::Blob>(std::move(f)));
  }
  auto [begin, end] = network_.subscribers_.equal_range(publisher_endpoint_);
  for (auto it = begin; it != end; ++it) {
    const FakeNetwork::SubscriberRoute& route = it->second;
    if (topic.substr(0, route.prefix.size()) != route.prefix) continue;
    FakeNetwork::Delivery d;
    d.to = FakeNetwork::To::kSubscriber;
    d.bus = route.bus;
    d.subscription = route.subscription;
    d.topic = std::string(topic);
    for (const auto& f : shared) d.frames.push_back(ShareOf(f));
    network_.queue_.push_back(std::move(d));
  }
  return Status::Ok();
}

Status FakeBus::Subscribe(const std::string& endpoint, std::string_view topic_prefix,
                          EventHandler handler) {
  if (!handler) return InvalidArgument("Subscribe needs a handler", endpoint);
  if (!IsEndpoint(endpoint)) return InvalidArgument("subscribe: invalid endpoint", endpoint);
  subscriptions_.push_back(Subscription{std::string(topic_prefix), std::move(handler)});
  network_.subscribers_.emplace(
      endpoint,
      FakeNetwork::SubscriberRoute{this, subscriptions_.size() - 1, std::string(topic_prefix)});
  return Status::Ok();
}

Status FakeBus::Poll(std::chrono::milliseconds /*max_wait*/) {
  network_.Pump();
  return Status::Ok();
}

void FakeBus::OnServerFrames(const PeerId& peer, std::vector<codec::Blob> frames) {
  codec::Decoded decoded =
      internal::DecodeInbound(std::move(frames), options_, metrics_, "a client");
  if (!decoded.ok()) {
    // The peer may be gone; nothing to do then.
    SendTo(peer, internal::ErrorReplyFor(decoded.error())).IgnoreError();
    return;
  }
  if (!handler_) return;
  Inbound in{peer, std::move(decoded.message())};
  if (const Identity* who = network_.IdentityOf(peer)) {
    in.identity = who->id;
    in.role = who->role;
  }
  handler_(std::move(in));
}

void FakeBus::OnChannelFrames(ChannelId channel, std::vector<codec::Blob> frames) {
  codec::Decoded decoded =
      internal::DecodeInbound(std::move(frames), options_, metrics_, channels_[channel].endpoint);
  if (!decoded.ok()) return;
  // Copied: the handler may Connect, and must outlive its own call.
  const PushHandler on_push = channels_[channel].on_push;
  requests_.OnMessage(channel, std::move(decoded.message()), on_push);
}

void FakeBus::OnEventFrames(std::size_t subscription, const std::string& topic,
                           std::vector<codec::Blob> frames) {
  codec::Decoded decoded =
      internal::DecodeInbound(std::move(frames), options_, metrics_, "a publisher");
  if (!decoded.ok()) return;
  EventHandler handler = subscriptions_[subscription].handler;
  handler(std::move(decoded.message()));
}

bool FakeBus::ExpireDue() { return requests_.ExpireDue() > 0; }

}  // namespace fedrx::core::testing
