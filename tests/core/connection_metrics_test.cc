// ZmqBus connection metrics on real sockets (tcp://127.0.0.1): the served
// socket's monitor counts clients as they connect and go away, and counts
// CURVE handshakes that fail. Everything runs on the test's thread; waits are
// bounded loops of Poll that stop as soon as the metric changes.
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "services/core/authenticator.h"
#include "services/core/bus.h"
#include "services/core/clock.h"
#include "services/core/curve_keys.h"
#include "services/core/metrics.h"
#include "services/core/zmq_bus.h"
#include "tests/support/http_client.h"

namespace fedrx::core {
namespace {

using namespace std::chrono_literals;

// Polls of the server before a wait gives up (each at most kPollWait).
constexpr int kMaxPolls = 2000;
constexpr auto kPollWait = 5ms;

constexpr char kConnections[] = "fedrx_server_connections";
constexpr char kEvents[] = "fedrx_server_connection_events_total";

// Admits the keys it holds, as the identity it maps them to.
class KeyListAuthenticator final : public Authenticator {
 public:
  explicit KeyListAuthenticator(std::map<std::string, Identity> enrolled)
      : enrolled_(std::move(enrolled)) {}
  Result<Identity> Authenticate(std::string_view public_key_z85) override {
    auto it = enrolled_.find(std::string(public_key_z85));
    if (it == enrolled_.end()) {
      return Status(StatusCode::kPermissionDenied, "not enrolled", "KeyListAuthenticator");
    }
    return it->second;
  }

 private:
  std::map<std::string, Identity> enrolled_;
};

BusOptions Options(const std::string& name) {
  BusOptions o;
  o.name = name;
  o.reconnect_interval = 10ms;
  o.reconnect_interval_max = 100ms;
  return o;
}

CurveKeyPair NewKeyPair() {
  Result<CurveKeyPair> pair = GenerateCurveKeyPair();
  EXPECT_TRUE(pair.ok()) << pair.status();
  return pair.ok() ? *pair : CurveKeyPair{};
}

class ConnectionMetricsTest : public ::testing::Test {
 protected:
  // Serves on a free loopback port; with `server_keys`, as a CURVE server
  // admitting `enrolled`.
  void StartServer(const CurveKeyPair* server_keys = nullptr,
                   std::map<std::string, Identity> enrolled = {}) {
    BusOptions o = Options("server");
    if (server_keys != nullptr) {
      o.curve_public_key = server_keys->public_key;
      o.curve_secret_key = server_keys->secret_key;
    }
    server_ = std::make_unique<ZmqBus>(o, metrics_, clock_);
    authenticator_ = std::make_unique<KeyListAuthenticator>(std::move(enrolled));
    server_->SetAuthenticator(authenticator_.get());
    ZmqBus* server = server_.get();
    ASSERT_TRUE(server_
                    ->Serve("tcp://127.0.0.1:*",
                            [this, server](Inbound&& in) {
                              ++handled_;
                              EXPECT_TRUE(Reply(*server, in, codec::Ack{"ok"}).ok());
                            })
                    .ok());
  }

  std::unique_ptr<ZmqBus> Client(const std::string& name, BusOptions o) {
    o.name = name;
    auto client = std::make_unique<ZmqBus>(o, client_metrics_, clock_);
    Result<ChannelId> channel = client->Connect(server_->ServedEndpoint(), nullptr);
    EXPECT_TRUE(channel.ok()) << channel.status();
    return client;
  }

  // Polls the server until `done` holds or kMaxPolls polls have run; returns
  // whether it holds.
  bool PollUntil(const std::function<bool()>& done) {
    for (int i = 0; i < kMaxPolls && !done(); ++i) {
      Status s = server_->Poll(kPollWait);
      if (!s.ok()) {
        ADD_FAILURE() << "server Poll: " << s;
        return false;
      }
    }
    return done();
  }

  // One request from `client` answered by the server: the connection's
  // handshake is over.
  bool RoundTrip(ZmqBus& client) {
    bool answered = false;
    Status sent = client.Request(0, MakeMessage(codec::Ack{"ping"}), 60s,
                                 [&](Result<codec::Message>&& reply) {
                                   EXPECT_TRUE(reply.ok()) << reply.status();
                                   answered = true;
                                 });
    EXPECT_TRUE(sent.ok()) << sent;
    return sent.ok() && PollUntil([&] { return client.Poll(0ms).ok() && answered; });
  }

  double Connections() const { return metrics_.Read(kConnections); }
  double Events(const std::string& event) const {
    return metrics_.Read(kEvents, {{"event", event}});
  }

  SystemClock clock_;
  Metrics metrics_{"server"};
  Metrics client_metrics_{"client"};
  std::unique_ptr<KeyListAuthenticator> authenticator_;
  std::unique_ptr<ZmqBus> server_;
  int handled_ = 0;
};

TEST_F(ConnectionMetricsTest, GaugeFollowsAClientFromConnectUntilItsBusIsDestroyed) {
  StartServer();
  EXPECT_EQ(Connections(), 0);
  // Exported from the start, not only once something connected.
  const std::string exposition = metrics_.Serialize();
  EXPECT_EQ(fedrx::testing::MetricValue(exposition, kConnections), 0) << exposition;
  EXPECT_EQ(fedrx::testing::MetricValue(exposition, kEvents, R"(event="accepted")"), 0);

  std::unique_ptr<ZmqBus> client = Client("client", Options("client"));
  ASSERT_TRUE(PollUntil([&] { return Connections() != 0; }));
  EXPECT_EQ(Connections(), 1);
  EXPECT_EQ(Events("accepted"), 1);
  EXPECT_EQ(Events("disconnected"), 0);
  // Leaving only after the handshake: a client that leaves in the middle of
  // it counts as a failed handshake.
  ASSERT_TRUE(RoundTrip(*client));
  EXPECT_EQ(Connections(), 1);

  client.reset();
  ASSERT_TRUE(PollUntil([&] { return Connections() != 1; }));
  EXPECT_EQ(Connections(), 0);
  EXPECT_EQ(Events("accepted"), 1);
  EXPECT_EQ(Events("disconnected"), 1);
  EXPECT_EQ(Events("handshake_failed"), 0);
}

TEST_F(ConnectionMetricsTest, GaugeCountsEachClientAndDropsOnlyTheOneThatLeft) {
  StartServer();
  std::unique_ptr<ZmqBus> first = Client("first", Options("first"));
  std::unique_ptr<ZmqBus> second = Client("second", Options("second"));
  ASSERT_TRUE(PollUntil([&] { return Connections() == 2; })) << Connections();
  EXPECT_EQ(Events("accepted"), 2);

  first.reset();
  ASSERT_TRUE(PollUntil([&] { return Connections() != 2; }));
  EXPECT_EQ(Connections(), 1);
  EXPECT_EQ(Events("disconnected"), 1);

  // The one still connected is still served.
  ASSERT_TRUE(RoundTrip(*second));
  EXPECT_EQ(handled_, 1);
  EXPECT_EQ(Connections(), 1);
}

TEST_F(ConnectionMetricsTest, RefusedCurveKeyIsCountedAsAFailedHandshake) {
  const CurveKeyPair server_keys = NewKeyPair();
  const CurveKeyPair enrolled_keys = NewKeyPair();
  const CurveKeyPair stranger_keys = NewKeyPair();
  StartServer(&server_keys, {{enrolled_keys.public_key, Identity{"site-a", "site"}}});

  BusOptions stranger_options = Options("stranger");
  stranger_options.curve_public_key = stranger_keys.public_key;
  stranger_options.curve_secret_key = stranger_keys.secret_key;
  stranger_options.curve_server_key = server_keys.public_key;
  std::unique_ptr<ZmqBus> stranger = Client("stranger", stranger_options);
  ASSERT_TRUE(PollUntil([&] { return Events("handshake_failed") != 0; }));
  EXPECT_GE(Events("handshake_failed"), 1);
  EXPECT_GE(metrics_.Read("fedrx_server_authentications_total", {{"result", "denied"}}), 1);
  EXPECT_EQ(metrics_.Read("fedrx_server_authentications_total", {{"result", "ok"}}), 0);

  // It keeps retrying; once its bus is gone every connection it made is closed.
  stranger.reset();
  ASSERT_TRUE(PollUntil(
      [&] { return Connections() == 0 && Events("accepted") == Events("disconnected"); }));
  EXPECT_EQ(Connections(), 0);
  EXPECT_GE(Events("disconnected"), Events("handshake_failed"));
  EXPECT_EQ(handled_, 0);

  // An enrolled key gets through and is counted as a connection like any.
  BusOptions site_options = stranger_options;
  site_options.curve_public_key = enrolled_keys.public_key;
  site_options.curve_secret_key = enrolled_keys.secret_key;
  std::unique_ptr<ZmqBus> site = Client("site", site_options);
  ASSERT_TRUE(RoundTrip(*site));
  EXPECT_EQ(handled_, 1);
  EXPECT_EQ(metrics_.Read("fedrx_server_authentications_total", {{"result", "ok"}}), 1);
  EXPECT_GE(Connections(), 1);
}

TEST_F(ConnectionMetricsTest, PlaintextClientAtACurveServerIsAFailedHandshake) {
  const CurveKeyPair server_keys = NewKeyPair();
  StartServer(&server_keys);
  std::unique_ptr<ZmqBus> plaintext = Client("plaintext", Options("plaintext"));
  ASSERT_TRUE(PollUntil([&] { return Events("handshake_failed") != 0; }));
  EXPECT_GE(Events("handshake_failed"), 1);
  // The mechanism mismatch is refused before the authenticator is asked.
  EXPECT_EQ(metrics_.Read("fedrx_server_authentications_total", {{"result", "denied"}}), 0);
  plaintext.reset();
  ASSERT_TRUE(PollUntil(
      [&] { return Connections() == 0 && Events("accepted") == Events("disconnected"); }));
}

}  // namespace
}  // namespace fedrx::core
