#include "services/core/zmq_bus.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <random>
#include <utility>
#include <vector>
#include <zmq.hpp>

#include "services/core/bus_internal.h"
#include "services/core/curve_keys.h"
#include "services/core/request_tracker.h"

namespace fedrx::core {
namespace {

using internal::LogBus;

// Envelope frames below this size are copied into the zmq message: a copy of a
// few hundred bytes is cheaper than the allocation and cross-thread free of a
// zero-copy message. Tensor frames are never copied, whatever their size.
constexpr std::size_t kCopyEnvelopeBelow = 4096;
// Messages taken from one socket per Poll, so that one busy peer cannot
// starve the others or the deadline check. Small on purpose: a reply that
// arrives on another socket meanwhile (a gateway's coordinator channel) waits
// for at most this many messages of a flood on the served socket. With 1024,
// a scientist's round trip through a gateway flooded by another identity
// took 12 ms instead of 0.4 ms; with 16, 0.8-1.6 ms (tests/bench/
// gateway_bench.cc); the extra zmq_poll per 16 messages did not lower the
// flood rate the gateway absorbed.
constexpr int kMaxDrainPerSocket = 16;
constexpr std::int64_t kMaxMsgSizeSlack = 1 << 20;

// ZAP (ZeroMQ RFC 27): libzmq asks the handler bound here, in the socket's own
// context, about every CURVE handshake.
constexpr char kZapEndpoint[] = "inproc://zeromq.zap.01";
constexpr char kZapDomain[] = "fedrx";
constexpr char kZapVersion[] = "1.0";
// The ZAP metadata property that carries Identity::role to every message of
// the connection (read back with zmq_msg_gets); User-Id carries Identity::id.
constexpr char kRoleProperty[] = "X-Fedrx-Role";
constexpr char kUserIdProperty[] = "User-Id";
constexpr std::size_t kMaxZapStatusText = 255;

// The ROUTER's connection monitor (zmq_socket_monitor): libzmq publishes the
// socket's transport events on an inproc PAIR bound in the bus's own context,
// read inside Poll like any other socket. libzmq sends events blocking: with
// the queue full its I/O thread waits until Poll drains it, so the queue is
// deep enough for a burst of connections between two Polls, and the monitor
// is stopped before the PAIR closes (a send to a closed PAIR never returns:
// libzmq#3575).
constexpr char kMonitorEndpointPrefix[] = "inproc://fedrx.router-monitor.";
constexpr int kMonitorEvents =
    ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
    ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
constexpr int kMonitorHighWaterMark = 100000;

// ---- Zero-copy hand-off -----------------------------------------------------

// Carries a released Blob's owner until zmq is done with the bytes.
struct SentFrame {
  void* owner;
  codec::Blob::ReleaseFn release;
};

// Runs on zmq's I/O thread once the frame was written (or dropped).
void FreeSentFrame(void* /*data*/, void* hint) {
  auto* frame = static_cast<SentFrame*>(hint);
  if (frame->owner != nullptr && frame->release != nullptr) frame->release(frame->owner);
  delete frame;
}

zmq::message_t ToZmq(codec::Blob&& blob, bool copy_if_small) {
  if (blob.empty()) return zmq::message_t();
  if (copy_if_small && blob.size() < kCopyEnvelopeBelow) {
    return zmq::message_t(blob.data(), blob.size());  // `blob` frees its bytes on return
  }
  codec::Blob::Released r = std::move(blob).Release();
  auto* frame = new SentFrame{r.owner, r.release};
  try {
    // zmq only reads the bytes; its API is not const-correct.
    return zmq::message_t(const_cast<std::byte*>(r.data), r.size, &FreeSentFrame, frame);
  } catch (const zmq::error_t&) {
    FreeSentFrame(nullptr, frame);
    throw;
  }
}

// A received zmq message owned by the Blob that views it.
void ReleaseReceivedFrame(void* owner) { delete static_cast<zmq::message_t*>(owner); }

std::vector<codec::Blob> ToBlobs(std::vector<zmq::message_t>& parts, std::size_t first) {
  std::vector<codec::Blob> blobs;
  blobs.reserve(parts.size() - std::min(first, parts.size()));
  for (std::size_t i = first; i < parts.size(); ++i) {
    // The data address is taken after the move: small messages keep their
    // bytes inside the message_t itself.
    auto* holder = new zmq::message_t(std::move(parts[i]));
    blobs.emplace_back(holder, static_cast<const std::byte*>(holder->data()), holder->size(),
                       &ReleaseReceivedFrame);
  }
  return blobs;
}

// Receives one whole multipart message if one is waiting; false when none is.
bool ReceiveWaiting(zmq::socket_t& socket, std::vector<zmq::message_t>& parts) {
  parts.clear();
  zmq::message_t part;
  if (!socket.recv(part, zmq::recv_flags::dontwait)) return false;
  bool more = part.more();
  parts.push_back(std::move(part));
  while (more) {
    // zmq delivers multipart messages atomically: the rest is already here.
    zmq::message_t next;
    if (!socket.recv(next, zmq::recv_flags::dontwait)) break;
    more = next.more();
    parts.push_back(std::move(next));
  }
  return true;
}

// ---- Errors -----------------------------------------------------------------

Status FromZmq(const zmq::error_t& e, const std::string& what, const std::string& where) {
  std::string message = what + ": " + e.what();
  switch (e.num()) {
    case EAGAIN:
    case EMSGSIZE:
      return ResourceExhausted(std::move(message), where);
    case EINVAL:
    case EPROTONOSUPPORT:
    case ENOCOMPATPROTO:
      return InvalidArgument(std::move(message), where);
    default:  // ETERM, EHOSTUNREACH, EADDRINUSE, ENOTSOCK, ...
      return Unavailable(std::move(message), where);
  }
}

// ---- State --------------------------------------------------------------------

struct Channel {
  std::string endpoint;
  zmq::socket_t socket;
  Bus::PushHandler on_push;
};

struct Subscription {
  std::string prefix;
  zmq::socket_t socket;
  Bus::EventHandler handler;
};

enum class Source { kRouter, kChannel, kSubscription, kZap, kMonitor };

// One ZAP metadata property in ZMTP property encoding: a 1-byte name length,
// the name, a 4-byte big-endian value length, the value.
std::string ZapProperty(std::string_view name, std::string_view value) {
  std::string out;
  out.push_back(static_cast<char>(name.size()));
  out.append(name);
  const auto n = static_cast<std::uint32_t>(value.size());
  for (int shift = 24; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((n >> shift) & 0xff));
  out.append(value);
  return out;
}

bool IsAuthenticatorFailure(StatusCode code) {
  return code == StatusCode::kUnavailable || code == StatusCode::kInternal ||
         code == StatusCode::kDeadlineExceeded;
}

// A property of the connection a received message came over; empty if unset.
std::string MessageProperty(zmq::message_t& message, const char* name) {
  const char* value = zmq_msg_gets(message.handle(), name);
  return value == nullptr ? std::string() : std::string(value);
}

}  // namespace

struct ZmqBus::Impl {
  Impl(BusOptions o, Metrics& m, const Clock& c)
      : options(std::move(o)),
        metrics(m),
        clock(c),
        requests(options.name, metrics, clock),
        rng(std::random_device{}()) {}

  ~Impl() {
    if (wake_fd >= 0) ::close(wake_fd);
    if (!router || !monitor) return;
    // Empties the event queue first: the I/O thread may be waiting for room
    // in it, holding the lock that stopping the monitor takes.
    try {
      zmq::message_t event;
      while (monitor->recv(event, zmq::recv_flags::dontwait)) {
      }
    } catch (const zmq::error_t& e) {
      LogBus(options.name, std::string("monitor drain: ") + e.what());
    }
    StopMonitor(*router);
  }

  // Declared before the sockets so that it is destroyed after them.
  zmq::context_t context{1};

  // Wake(): an eventfd Poll() also waits on; -1 if the kernel refused one
  // (then Wake does nothing and answers wait for the poll interval).
  int wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);

  BusOptions options;
  Metrics& metrics;
  const Clock& clock;

  std::optional<zmq::socket_t> router;
  std::string served_endpoint;
  RequestHandler handler;

  // CURVE server state: the ZAP handler socket and who it asks.
  bool curve_server = false;
  std::optional<zmq::socket_t> zap;
  Authenticator* authenticator = nullptr;
  CounterRef auth_ok;
  CounterRef auth_denied;
  CounterRef auth_error;

  // Connection counts of the ROUTER from its monitor: accepted TCP
  // connections not yet closed (a CURVE handshake in progress or refused
  // counts until libzmq closes the connection).
  std::optional<zmq::socket_t> monitor;
  int monitor_serial = 0;
  std::int64_t connections = 0;
  GaugeRef connections_gauge;
  CounterRef connections_accepted;
  CounterRef connections_disconnected;
  CounterRef handshakes_failed;

  std::vector<std::unique_ptr<Channel>> channels;

  std::optional<zmq::socket_t> publisher;
  std::string publisher_endpoint;
  std::vector<std::unique_ptr<Subscription>> subscriptions;

  RequestTracker requests;

  std::mt19937_64 rng;
  std::vector<zmq::message_t> parts;  // reused receive buffer

  void Configure(zmq::socket_t& s) {
    s.set(zmq::sockopt::linger, 0);
    s.set(zmq::sockopt::sndhwm, options.high_water_mark);
    s.set(zmq::sockopt::rcvhwm, options.high_water_mark);
    s.set(zmq::sockopt::reconnect_ivl, static_cast<int>(options.reconnect_interval.count()));
    s.set(zmq::sockopt::reconnect_ivl_max,
          static_cast<int>(options.reconnect_interval_max.count()));
    s.set(zmq::sockopt::tcp_keepalive, 1);
    // Last resort against a peer streaming an endless frame: zmq drops the
    // connection. The codec's limits, checked first, give the clear answer.
    const std::size_t largest =
        std::max(options.limits.max_envelope_bytes, options.limits.max_tensor_bytes);
    const std::int64_t cap =
        largest > static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max() -
                                           kMaxMsgSizeSlack)
            ? -1
            : static_cast<std::int64_t>(largest) + kMaxMsgSizeSlack;
    s.set(zmq::sockopt::maxmsgsize, cap);
  }

  std::string NewMessageId() {
    const std::uint64_t high = rng();
    return internal::MessageIdFrom(high, rng());
  }

  // Sends [first?][envelope][tensors...] without blocking; counts it when sent.
  Status SendMessage(zmq::socket_t& socket, const std::string* first, codec::Message&& message,
                     const std::string& where) {
    if (message.header.message_id.empty()) message.header.message_id = NewMessageId();
    internal::Outbound sent = internal::EncodeOutbound(std::move(message), options, clock);
    std::vector<codec::Blob>& frames = sent.frames;
    try {
      std::vector<zmq::message_t> out;
      out.reserve(frames.size());
      for (std::size_t i = 0; i < frames.size(); ++i)
        out.push_back(ToZmq(std::move(frames[i]), i == 0));
      // zmq queues a multipart message atomically: only the first part can
      // meet a full queue, so a refusal never leaves half a message behind.
      if (first != nullptr &&
          !socket.send(zmq::buffer(*first), zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
        return internal::QueueFull(options, where);
      }
      for (std::size_t i = 0; i < out.size(); ++i) {
        const auto flags = i + 1 < out.size() ? zmq::send_flags::sndmore | zmq::send_flags::dontwait
                                              : zmq::send_flags::dontwait;
        if (!socket.send(out[i], flags)) return internal::QueueFull(options, where);
      }
    } catch (const zmq::error_t& e) {
      if (e.num() == EHOSTUNREACH) return Unavailable("peer is not connected", where);
      return FromZmq(e, "send", where);
    }
    internal::CountSent(metrics, sent);
    return Status::Ok();
  }

  // Answers one ZAP request in `parts` (ZAP 1.0: version, request id, domain,
  // address, routing id, mechanism, credentials...). libzmq fails the
  // handshake unless the answer is "200".
  void OnZapRequest() {
    std::string request_id = parts.size() > 1 ? parts[1].to_string() : std::string();
    std::string code = "400";
    std::string text;
    std::string user_id;
    std::string metadata;
    // Who is refused, for the log: the peer address, and the public key once
    // known (a public key is no secret, and it is what an operator looks up).
    std::string client = "a client from " + (parts.size() > 3 ? parts[3].to_string() : "?");
    if (parts.size() < 7 || parts[0].to_string_view() != kZapVersion) {
      code = "500";
      text = "malformed ZAP request";
    } else if (parts[2].to_string_view() != kZapDomain) {
      text = "unknown ZAP domain";
    } else if (parts[5].to_string_view() != "CURVE" || parts[6].size() != 32) {
      text = "only CURVE clients are accepted";
    } else if (authenticator == nullptr) {
      text = "this server has no authenticator";
    } else {
      char key[kCurveKeyZ85Length + 1];
      zmq_z85_encode(key, static_cast<const std::uint8_t*>(parts[6].data()), 32);
      client += " with key " + std::string(key, kCurveKeyZ85Length);
      Result<Identity> who = authenticator->Authenticate(std::string_view(key, kCurveKeyZ85Length));
      if (who.ok() && who->id.empty()) {
        who = Internal("the authenticator returned an identity with an empty id", "Authenticate");
      }
      if (who.ok()) {
        code = "200";
        text = "OK";
        user_id = who->id;
        metadata = ZapProperty(kRoleProperty, who->role);
      } else {
        if (IsAuthenticatorFailure(who.status().code())) code = "500";
        text = who.status().message();
      }
    }
    if (code != "200") LogBus(options.name, "refused " + client + ": " + text);
    (code == "200" ? auth_ok : code == "400" ? auth_denied : auth_error).Inc();
    if (code != "200" && text.size() > kMaxZapStatusText) text.resize(kMaxZapStatusText);
    const std::string reply[] = {kZapVersion, request_id, code, text, user_id, metadata};
    try {
      for (std::size_t i = 0; i < std::size(reply); ++i) {
        const auto flags = i + 1 < std::size(reply)
                               ? zmq::send_flags::sndmore | zmq::send_flags::dontwait
                               : zmq::send_flags::dontwait;
        if (!zap->send(zmq::buffer(reply[i]), flags)) {
          LogBus(options.name, "could not answer a ZAP request: queue full");
          return;
        }
      }
    } catch (const zmq::error_t& e) {
      LogBus(options.name, std::string("could not answer a ZAP request: ") + e.what());
    }
  }

  // One monitor event in `parts` (libzmq's v1 format: a frame of a 16-bit
  // event id and a 32-bit value in host byte order, then the peer's address).
  void OnMonitorEvent() {
    std::uint16_t event = 0;
    if (parts.empty() || parts[0].size() < sizeof(event)) return;
    std::memcpy(&event, parts[0].data(), sizeof(event));
    switch (event) {
      case ZMQ_EVENT_ACCEPTED:
        ++connections;
        connections_accepted.Inc();
        break;
      case ZMQ_EVENT_DISCONNECTED:
        // libzmq reports the end of every accepted connection exactly once
        // (after a failed handshake too); the floor is only a guard.
        connections = std::max<std::int64_t>(0, connections - 1);
        connections_disconnected.Inc();
        break;
      case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
      case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
      case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
        handshakes_failed.Inc();
        break;
      default:
        return;
    }
    connections_gauge.Set(static_cast<double>(connections));
  }

  // Starts monitoring `router` before it binds, so no connection is missed,
  // and returns the PAIR that receives the events.
  zmq::socket_t MonitorRouter(zmq::socket_t& router) {
    const std::string endpoint = kMonitorEndpointPrefix + std::to_string(++monitor_serial);
    if (zmq_socket_monitor(router.handle(), endpoint.c_str(), kMonitorEvents) != 0) {
      throw zmq::error_t();
    }
    zmq::socket_t pair(context, zmq::socket_type::pair);
    pair.set(zmq::sockopt::linger, 0);
    pair.set(zmq::sockopt::rcvhwm, kMonitorHighWaterMark);
    pair.connect(endpoint);
    return pair;
  }

  static void StopMonitor(zmq::socket_t& router) {
    zmq_socket_monitor(router.handle(), nullptr, 0);
  }

  void OnServerMessage() {
    PeerId peer = parts[0].to_string();
    // Properties travel on every frame the connection delivers; the routing
    // id frame is made by the ROUTER itself and carries none.
    std::string identity;
    std::string role;
    if (curve_server && parts.size() > 1) {
      identity = MessageProperty(parts[1], kUserIdProperty);
      role = MessageProperty(parts[1], kRoleProperty);
    }
    codec::Decoded decoded =
        internal::DecodeInbound(ToBlobs(parts, 1), options, metrics, "a client");
    if (!decoded.ok()) {
      Status s =
          SendMessage(*router, &peer, internal::ErrorReplyFor(decoded.error()), "error reply");
      if (!s.ok()) LogBus(options.name, "could not answer a refused request: " + s.ToString());
      return;
    }
    if (handler) {
      handler(Inbound{std::move(peer), std::move(decoded.message()), std::move(identity),
                      std::move(role)});
    }
  }

  void OnChannelMessage(ChannelId id) {
    const Channel& channel = *channels[id];
    codec::Decoded decoded =
        internal::DecodeInbound(ToBlobs(parts, 0), options, metrics, channel.endpoint);
    if (decoded.ok()) requests.OnMessage(id, std::move(decoded.message()), channel.on_push);
  }

  void OnEvent(Subscription* sub) {
    const std::string topic = parts[0].to_string();
    codec::Decoded decoded =
        internal::DecodeInbound(ToBlobs(parts, 1), options, metrics, "a publisher");
    if (!decoded.ok()) return;
    // zmq filters by prefix already; this guards the contract regardless.
    if (topic.compare(0, sub->prefix.size(), sub->prefix) != 0) return;
    sub->handler(std::move(decoded.message()));
  }

  // Time Poll may block for: `max_wait`, cut short by the next deadline.
  std::chrono::milliseconds WaitFor(std::chrono::milliseconds max_wait) const {
    const auto next = requests.NextDeadline();
    if (!next) return max_wait;
    const auto until = std::chrono::ceil<std::chrono::milliseconds>(*next - clock.Now());
    return std::clamp(until, std::chrono::milliseconds(0), max_wait);
  }
};

ZmqBus::ZmqBus(BusOptions options, Metrics& metrics, const Clock& clock)
    : impl_(std::make_unique<Impl>(std::move(options), metrics, clock)) {}

ZmqBus::~ZmqBus() = default;

Status ZmqBus::Serve(const std::string& endpoint, RequestHandler handler) {
  if (impl_->router) {
    return FailedPrecondition("already serving on " + impl_->served_endpoint, endpoint);
  }
  const BusOptions& o = impl_->options;
  const bool curve = !o.curve_secret_key.empty();
  if (curve) {
    FEDRX_RETURN_IF_ERROR(CheckCurveKey(o.curve_secret_key, "BusOptions.curve_secret_key"));
    if (!o.curve_public_key.empty()) {
      FEDRX_RETURN_IF_ERROR(
          CheckCurveKeyPair({o.curve_public_key, o.curve_secret_key}, "BusOptions"));
    }
    if (impl_->authenticator == nullptr) {
      return FailedPrecondition("a CURVE server needs an Authenticator (SetAuthenticator)",
                                endpoint);
    }
  }
  try {
    std::optional<zmq::socket_t> zap;
    if (curve) {
      // Bound before the ROUTER: libzmq 4.3 lets every CURVE client in while
      // no ZAP handler exists.
      zap.emplace(impl_->context, zmq::socket_type::rep);
      zap->set(zmq::sockopt::linger, 0);
      zap->bind(kZapEndpoint);
    }
    zmq::socket_t socket(impl_->context, zmq::socket_type::router);
    impl_->Configure(socket);
    // Replies to a peer that went away fail loudly instead of vanishing.
    socket.set(zmq::sockopt::router_mandatory, true);
    if (curve) {
      socket.set(zmq::sockopt::curve_server, true);
      socket.set(zmq::sockopt::curve_secretkey, o.curve_secret_key);
      socket.set(zmq::sockopt::zap_domain, kZapDomain);
    }
    zmq::socket_t monitor = impl_->MonitorRouter(socket);
    try {
      socket.bind(endpoint);
    } catch (const zmq::error_t&) {
      Impl::StopMonitor(socket);
      throw;
    }
    impl_->served_endpoint = socket.get(zmq::sockopt::last_endpoint);
    impl_->router = std::move(socket);
    impl_->zap = std::move(zap);
    impl_->monitor = std::move(monitor);
  } catch (const zmq::error_t& e) {
    return FromZmq(e, "bind", endpoint);
  }
  {
    Metrics& m = impl_->metrics;
    constexpr char kEventsHelp[] =
        "Connections to the served socket, by event (accepted, disconnected, handshake_failed).";
    impl_->connections_gauge =
        m.Gauge("connections", "Connections currently accepted by the served socket.");
    impl_->connections_accepted =
        m.Counter("connection_events_total", kEventsHelp, {{"event", "accepted"}});
    impl_->connections_disconnected =
        m.Counter("connection_events_total", kEventsHelp, {{"event", "disconnected"}});
    impl_->handshakes_failed =
        m.Counter("connection_events_total", kEventsHelp, {{"event", "handshake_failed"}});
  }
  if (curve) {
    Metrics& m = impl_->metrics;
    constexpr char kHelp[] = "CURVE handshakes answered, by result (ok, denied, error).";
    impl_->auth_ok = m.Counter("authentications_total", kHelp, {{"result", "ok"}});
    impl_->auth_denied = m.Counter("authentications_total", kHelp, {{"result", "denied"}});
    impl_->auth_error = m.Counter("authentications_total", kHelp, {{"result", "error"}});
    impl_->curve_server = true;
  }
  impl_->handler = std::move(handler);
  return Status::Ok();
}

std::string ZmqBus::ServedEndpoint() const { return impl_->served_endpoint; }

Status ZmqBus::SendTo(const PeerId& peer, codec::Message message) {
  if (!impl_->router) return FailedPrecondition("SendTo before Serve", "SendTo");
  return impl_->SendMessage(*impl_->router, &peer, std::move(message), "SendTo");
}

Result<ChannelId> ZmqBus::Connect(const std::string& endpoint, PushHandler on_push) {
  const BusOptions& o = impl_->options;
  const auto listed = o.curve_server_keys.find(endpoint);
  const std::string& server_key =
      listed != o.curve_server_keys.end() ? listed->second : o.curve_server_key;
  const bool curve = !server_key.empty();
  if (curve) {
    const std::string what = listed != o.curve_server_keys.end()
                                 ? "BusOptions.curve_server_keys[" + endpoint + "]"
                                 : std::string("BusOptions.curve_server_key");
    FEDRX_RETURN_IF_ERROR(CheckCurveKey(server_key, what));
    if (o.curve_public_key.empty() || o.curve_secret_key.empty()) {
      return InvalidArgument(
          "a CURVE client needs its own key pair "
          "(curve_public_key and curve_secret_key)",
          "BusOptions");
    }
    FEDRX_RETURN_IF_ERROR(
        CheckCurveKeyPair({o.curve_public_key, o.curve_secret_key}, "BusOptions"));
  }
  try {
    zmq::socket_t socket(impl_->context, zmq::socket_type::dealer);
    impl_->Configure(socket);
    if (curve) {
      socket.set(zmq::sockopt::curve_serverkey, server_key);
      socket.set(zmq::sockopt::curve_publickey, o.curve_public_key);
      socket.set(zmq::sockopt::curve_secretkey, o.curve_secret_key);
    }
    socket.connect(endpoint);
    impl_->channels.push_back(
        std::make_unique<Channel>(Channel{endpoint, std::move(socket), std::move(on_push)}));
  } catch (const zmq::error_t& e) {
    return FromZmq(e, "connect", endpoint);
  }
  return static_cast<ChannelId>(impl_->channels.size() - 1);
}

Status ZmqBus::Send(ChannelId channel, codec::Message message) {
  FEDRX_RETURN_IF_ERROR(internal::CheckChannel(channel, impl_->channels.size(), "Send"));
  Channel& c = *impl_->channels[channel];
  return impl_->SendMessage(c.socket, nullptr, std::move(message), c.endpoint);
}

Status ZmqBus::Request(ChannelId channel, codec::Message message, std::chrono::milliseconds timeout,
                       ReplyCallback on_reply) {
  FEDRX_RETURN_IF_ERROR(internal::CheckChannel(channel, impl_->channels.size(), "Request"));
  if (message.header.message_id.empty()) message.header.message_id = impl_->NewMessageId();
  Channel& c = *impl_->channels[channel];
  return impl_->requests.Start(
      channel, std::move(message), timeout, std::move(on_reply), [&](codec::Message&& m) {
        return impl_->SendMessage(c.socket, nullptr, std::move(m), c.endpoint);
      });
}

Status ZmqBus::BindPublisher(const std::string& endpoint) {
  if (impl_->publisher) {
    return FailedPrecondition("already publishing on " + impl_->publisher_endpoint, endpoint);
  }
  try {
    zmq::socket_t socket(impl_->context, zmq::socket_type::pub);
    impl_->Configure(socket);
    socket.bind(endpoint);
    impl_->publisher_endpoint = socket.get(zmq::sockopt::last_endpoint);
    impl_->publisher = std::move(socket);
  } catch (const zmq::error_t& e) {
    return FromZmq(e, "bind", endpoint);
  }
  return Status::Ok();
}

std::string ZmqBus::PublisherEndpoint() const { return impl_->publisher_endpoint; }

Status ZmqBus::Publish(std::string_view topic, codec::Message message) {
  if (!impl_->publisher) return FailedPrecondition("Publish before BindPublisher", "Publish");
  const std::string t(topic);
  return impl_->SendMessage(*impl_->publisher, &t, std::move(message), "topic " + t);
}

Status ZmqBus::Subscribe(const std::string& endpoint, std::string_view topic_prefix,
                         EventHandler handler) {
  if (!handler) return InvalidArgument("Subscribe needs a handler", endpoint);
  try {
    zmq::socket_t socket(impl_->context, zmq::socket_type::sub);
    impl_->Configure(socket);
    socket.set(zmq::sockopt::subscribe, topic_prefix);
    socket.connect(endpoint);
    impl_->subscriptions.push_back(std::make_unique<Subscription>(
        Subscription{std::string(topic_prefix), std::move(socket), std::move(handler)}));
  } catch (const zmq::error_t& e) {
    return FromZmq(e, "subscribe", endpoint);
  }
  return Status::Ok();
}

void ZmqBus::Wake() {
  if (impl_->wake_fd < 0) return;
  const std::uint64_t one = 1;
  // A full counter (2^64 - 2 wakes pending) is still a pending wake.
  [[maybe_unused]] const ssize_t n = ::write(impl_->wake_fd, &one, sizeof one);
}

Status ZmqBus::Poll(std::chrono::milliseconds max_wait) {
  Impl& d = *impl_;
  std::vector<zmq::pollitem_t> items;
  std::vector<std::pair<Source, std::size_t>> sources;
  const auto add = [&](zmq::socket_t& s, Source source, std::size_t index) {
    items.push_back(zmq::pollitem_t{s.handle(), 0, ZMQ_POLLIN, 0});
    sources.emplace_back(source, index);
  };
  if (d.router) add(*d.router, Source::kRouter, 0);
  if (d.zap) add(*d.zap, Source::kZap, 0);
  if (d.monitor) add(*d.monitor, Source::kMonitor, 0);
  for (std::size_t i = 0; i < d.channels.size(); ++i)
    add(d.channels[i]->socket, Source::kChannel, i);
  for (std::size_t i = 0; i < d.subscriptions.size(); ++i) {
    add(d.subscriptions[i]->socket, Source::kSubscription, i);
  }
  const std::size_t wake_item = items.size();
  if (d.wake_fd >= 0) items.push_back(zmq::pollitem_t{nullptr, d.wake_fd, ZMQ_POLLIN, 0});

  try {
    zmq::poll(items, d.WaitFor(std::max(max_wait, std::chrono::milliseconds(0))));
  } catch (const zmq::error_t& e) {
    if (e.num() != EINTR) return FromZmq(e, "poll", "Poll");
  }

  if (d.wake_fd >= 0 && (items[wake_item].revents & ZMQ_POLLIN) != 0) {
    std::uint64_t wakes = 0;
    // Clears the counter; nothing else to do: the caller's loop runs next.
    [[maybe_unused]] const ssize_t n = ::read(d.wake_fd, &wakes, sizeof wakes);
  }
  for (std::size_t k = 0; k < sources.size(); ++k) {
    if ((items[k].revents & ZMQ_POLLIN) == 0) continue;
    const auto [source, index] = sources[k];
    zmq::socket_t* socket = source == Source::kRouter    ? &*d.router
                            : source == Source::kZap     ? &*d.zap
                            : source == Source::kMonitor ? &*d.monitor
                            : source == Source::kChannel ? &d.channels[index]->socket
                                                         : &d.subscriptions[index]->socket;
    for (int n = 0; n < kMaxDrainPerSocket; ++n) {
      try {
        if (!ReceiveWaiting(*socket, d.parts)) break;
      } catch (const zmq::error_t& e) {
        return FromZmq(e, "receive", "Poll");
      }
      // Handlers may re-enter Poll (e.g. through Call); each On* takes what
      // it needs out of `parts` before it runs one.
      switch (source) {
        case Source::kRouter:
          d.OnServerMessage();
          break;
        case Source::kChannel:
          d.OnChannelMessage(static_cast<ChannelId>(index));
          break;
        case Source::kSubscription:
          d.OnEvent(d.subscriptions[index].get());
          break;
        case Source::kZap:
          d.OnZapRequest();
          break;
        case Source::kMonitor:
          d.OnMonitorEvent();
          break;
      }
    }
  }
  d.requests.ExpireDue();
  return Status::Ok();
}

void ZmqBus::SetAuthenticator(Authenticator* authenticator) {
  impl_->authenticator = authenticator;
}

const void* ZmqBus::ReceivedFrameDataForTesting(const codec::Blob::Released& frame) {
  if (frame.release != &ReleaseReceivedFrame || frame.owner == nullptr) return nullptr;
  return static_cast<const zmq::message_t*>(frame.owner)->data();
}

}  // namespace fedrx::core
