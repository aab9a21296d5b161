// Bus: how fedrx services exchange messages. Request/reply between a server
// (ZeroMQ ROUTER) and its clients (DEALER), with correlation ids and
// per-request timeouts; one-way pushes in both directions; events over
// PUB/SUB. Tensors travel as frames beside the envelope and are never copied.
// Handlers and callbacks run only inside Poll(), on the caller's thread.
// Not thread-safe: a Bus belongs to one thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "messages/codec/codec.h"
#include "messages/codec/message.h"
#include "services/core/authenticator.h"
#include "services/core/status.h"

namespace fedrx::core {

// The routing identity of a client as the server sees it (opaque bytes).
using PeerId = std::string;
// A client connection made by Connect().
using ChannelId = int;

struct BusOptions {
  // Written into every envelope's `sender`.
  std::string name;
  // Refusal limits for received messages.
  codec::Limits limits;
  std::chrono::milliseconds reconnect_interval{100};
  std::chrono::milliseconds reconnect_interval_max{5000};
  // Messages queued per peer before sends fail with kResourceExhausted.
  int high_water_mark = 1000;

  // CurveZMQ (encryption and authentication of Serve/Connect traffic; events
  // over PUB/SUB stay plaintext). Off while the keys are empty. Keys are 40
  // Z85 characters (see curve_keys.h); Serve/Connect refuse a bad one with
  // kInvalidArgument.
  // Server: with curve_secret_key set, the socket of Serve() is a CURVE
  // server in ZAP domain "fedrx" and only clients the bus's Authenticator
  // accepts get through (SetAuthenticator; Serve fails without one).
  // curve_public_key, when set, must belong to curve_secret_key.
  // Client: with curve_server_key set (the server's public key), every
  // Connect() is a CURVE client using curve_public_key/curve_secret_key as its
  // own key pair. A bus that serves and connects uses one key pair for both.
  std::string curve_public_key;
  std::string curve_secret_key;  // a secret: never log it
  std::string curve_server_key;
  // Client: server public keys by endpoint, for a bus that connects to
  // several CURVE servers (the gateway to the coordinator and the domain
  // services); a Connect() to an endpoint listed here uses its key instead of
  // curve_server_key.
  std::map<std::string, std::string> curve_server_keys;
};

// A message received by a server, with who sent it.
struct Inbound {
  PeerId peer;
  codec::Message message;
  // When the server is a CURVE server: the Identity the Authenticator gave
  // the sender's key when its connection was made (id and role). Empty
  // otherwise; never taken from the message itself.
  //
  // Revocation: a connection keeps the identity it was authenticated with
  // for as long as it lasts; ZeroMQ 4.3 cannot close one ROUTER peer, so the
  // bus does not drop live sessions of a revoked key (new connections are
  // refused by the Authenticator). A server that must stop a revoked key at
  // once checks `identity` against its current record on every message and
  // refuses the message when the identity is revoked.
  std::string identity;
  std::string role;
};

class Bus {
 public:
  using RequestHandler = std::function<void(Inbound&&)>;
  // A message from the server that answers no pending request (a push).
  using PushHandler = std::function<void(codec::Message&&)>;
  // The reply to a Request, or kDeadlineExceeded, or the Status an Error body carried.
  using ReplyCallback = std::function<void(Result<codec::Message>&&)>;
  using EventHandler = std::function<void(codec::Message&&)>;

  virtual ~Bus() = default;

  // --- Server role -------------------------------------------------------
  // Binds `endpoint` (e.g. "tcp://127.0.0.1:5555", "tcp://127.0.0.1:*") and
  // delivers every well-formed message to `handler` during Poll(). A
  // malformed one is answered with an Error body, counted in
  // fedrx_<service>_rejected_total{reason}, and never reaches `handler`.
  virtual Status Serve(const std::string& endpoint, RequestHandler handler) = 0;
  // Who decides which CURVE clients may connect (not owned; must outlive the
  // bus or be replaced first). Called inside Poll() once per handshake;
  // outcomes are counted in fedrx_<service>_authentications_total{result=
  // "ok"|"denied"|"error"}. With nullptr, every new client is refused.
  virtual void SetAuthenticator(Authenticator* authenticator) = 0;
  // The endpoint actually bound (with the port filled in); empty before Serve.
  virtual std::string ServedEndpoint() const = 0;
  // Sends to a connected client: a reply (set correlation_id) or a push.
  virtual Status SendTo(const PeerId& peer, codec::Message message) = 0;

  // --- Client role -------------------------------------------------------
  // Connects to a server; reconnects by itself when the server goes away.
  virtual Result<ChannelId> Connect(const std::string& endpoint, PushHandler on_push) = 0;
  // One-way message to the server.
  virtual Status Send(ChannelId channel, codec::Message message) = 0;
  // Sends `message` and calls `on_reply` exactly once, during a later Poll():
  // with the reply, with the Status of an Error reply, or with
  // kDeadlineExceeded after `timeout`.
  virtual Status Request(ChannelId channel, codec::Message message,
                         std::chrono::milliseconds timeout, ReplyCallback on_reply) = 0;

  // --- Events ------------------------------------------------------------
  virtual Status BindPublisher(const std::string& endpoint) = 0;
  virtual std::string PublisherEndpoint() const = 0;
  virtual Status Publish(std::string_view topic, codec::Message message) = 0;
  // Delivers events whose topic starts with `topic_prefix`.
  virtual Status Subscribe(const std::string& endpoint, std::string_view topic_prefix,
                           EventHandler handler) = 0;

  // Waits at most `max_wait` for traffic, then runs every handler and
  // callback that is due (including expired requests). Returns early once
  // something was dispatched.
  virtual Status Poll(std::chrono::milliseconds max_wait) = 0;

  // Makes a Poll() in progress on the owning thread (or the next one) return
  // promptly, so that work finished on another thread (a worker's answer) is
  // sent without waiting out the poll interval. The only member that may be
  // called from any thread.
  virtual void Wake() {}
};

// Replies to `request` with `body` (and tensors), correlated to its message id
// and routed back to its origin when a gateway forwarded it.
Status Reply(Bus& bus, const Inbound& request, codec::Body body,
             std::vector<codec::Tensor> tensors = {});
// Replies with an Error body built from a non-OK status.
Status ReplyError(Bus& bus, const Inbound& request, const Status& status);

// Blocking request: Request() then Poll() until answered or timed out.
// Other handlers on `bus` may run meanwhile.
Result<codec::Message> Call(Bus& bus, ChannelId channel, codec::Message message,
                            std::chrono::milliseconds timeout);

// Conversions between Status and the Error body.
codec::Error ToErrorBody(const Status& status);
Status FromErrorBody(const codec::Error& error);

// A message with just a body (header filled by the bus on send).
codec::Message MakeMessage(codec::Body body, std::vector<codec::Tensor> tensors = {});

}  // namespace fedrx::core
