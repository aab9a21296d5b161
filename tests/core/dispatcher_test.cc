#include "services/core/dispatcher.h"

#include <gtest/gtest.h>

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "services/core/testing/fake_bus.h"
#include "services/core/testing/fake_clock.h"

namespace fedrx::core {
namespace {

using std::chrono::milliseconds;

// Records what the dispatcher sends; nothing else is used by it.
class RecordingBus final : public Bus {
 public:
  struct Sent {
    PeerId peer;
    codec::Message message;
  };

  Status Serve(const std::string&, RequestHandler) override { return Unused(); }
  std::string ServedEndpoint() const override { return {}; }
  void SetAuthenticator(Authenticator*) override {}
  Status SendTo(const PeerId& peer, codec::Message message) override {
    sent.push_back({peer, std::move(message)});
    return send_status;
  }
  Result<ChannelId> Connect(const std::string&, PushHandler) override { return Unused(); }
  Status Send(ChannelId, codec::Message) override { return Unused(); }
  Status Request(ChannelId, codec::Message, milliseconds, ReplyCallback) override {
    return Unused();
  }
  Status BindPublisher(const std::string&) override { return Unused(); }
  std::string PublisherEndpoint() const override { return {}; }
  Status Publish(std::string_view, codec::Message) override { return Unused(); }
  Status Subscribe(const std::string&, std::string_view, EventHandler) override { return Unused(); }
  Status Poll(milliseconds) override { return Unused(); }

  std::vector<Sent> sent;
  Status send_status;

 private:
  static Status Unused() {
    return Status(StatusCode::kUnimplemented, "not used by the dispatcher");
  }
};

BusOptions Named(std::string name) {
  BusOptions options;
  options.name = std::move(name);
  return options;
}

Inbound MakeInbound(codec::Body body, std::string peer = "peer-1", std::string id = "msg-1") {
  Inbound in;
  in.peer = std::move(peer);
  in.message.header.message_id = std::move(id);
  in.message.body = std::move(body);
  return in;
}

codec::RegisterSite Site(std::string id) {
  codec::RegisterSite site;
  site.site_id = std::move(id);
  site.institution = "Example Pharma";
  site.num_samples = 1200;
  site.tasks = {"tox21"};
  site.schema_hash = "abc123";
  return site;
}

class DispatcherTest : public ::testing::Test {
 protected:
  double Requests(const std::string& type, const std::string& code) const {
    return metrics_.Read("fedrx_coord_requests_total", {{"type", type}, {"code", code}});
  }

  const codec::Error& OnlyErrorReply() {
    EXPECT_EQ(bus_.sent.size(), 1u);
    static const codec::Error kNone;
    if (bus_.sent.size() != 1) return kNone;
    const auto* error = std::get_if<codec::Error>(&bus_.sent[0].message.body);
    EXPECT_NE(error, nullptr) << "reply is a " << codec::BodyName(bus_.sent[0].message.body);
    return error != nullptr ? *error : kNone;
  }

  Metrics metrics_{"coord"};
  testing::FakeClock clock_;
  RecordingBus bus_;
  Dispatcher dispatcher_{bus_, metrics_, clock_};
};

TEST_F(DispatcherTest, RoutesEachBodyTypeToItsTypedHandler) {
  std::vector<std::string> calls;
  dispatcher_.On<codec::RegisterSite>([&](Inbound&, codec::RegisterSite& site) -> Result<Response> {
    calls.push_back("register " + site.site_id);
    return Response{codec::SiteRegistered{site.site_id, 42, true}, {}};
  });
  dispatcher_.On<codec::ListSites>([&](Inbound&, codec::ListSites&) -> Result<Response> {
    calls.push_back("list");
    return Response{codec::SiteList{}, {}};
  });

  dispatcher_.Handle(MakeInbound(Site("site-a"), "peer-7", "req-9"));
  dispatcher_.Handle(MakeInbound(codec::ListSites{}));

  EXPECT_EQ(calls, (std::vector<std::string>{"register site-a", "list"}));
  ASSERT_EQ(bus_.sent.size(), 2u);
  EXPECT_EQ(bus_.sent[0].peer, "peer-7");
  EXPECT_EQ(bus_.sent[0].message.header.correlation_id, "req-9");
  const auto* registered = std::get_if<codec::SiteRegistered>(&bus_.sent[0].message.body);
  ASSERT_NE(registered, nullptr);
  EXPECT_EQ(registered->site_id, "site-a");
  EXPECT_EQ(registered->registered_at_ms, 42);
  EXPECT_TRUE(std::holds_alternative<codec::SiteList>(bus_.sent[1].message.body));
  EXPECT_EQ(Requests("RegisterSite", "ok"), 1);
  EXPECT_EQ(Requests("ListSites", "ok"), 1);
}

TEST_F(DispatcherTest, BodyWithoutHandlerGetsUnimplementedNamingTypeAndService) {
  dispatcher_.Handle(MakeInbound(codec::HealthCheck{}));
  const codec::Error& error = OnlyErrorReply();
  EXPECT_EQ(error.code, codec::ErrorCode::kUnimplemented);
  EXPECT_EQ(error.message, "no handler for HealthCheck in coord");
  EXPECT_EQ(error.where, "envelope.body");
  EXPECT_EQ(bus_.sent[0].message.header.correlation_id, "msg-1");
  EXPECT_EQ(Requests("HealthCheck", "unimplemented"), 1);
  EXPECT_EQ(Requests("HealthCheck", "ok"), 0);
}

TEST_F(DispatcherTest, HandlerErrorBecomesAnErrorReplyWithCodeMessageAndWhere) {
  dispatcher_.On<codec::RegisterSite>([](Inbound&, codec::RegisterSite&) -> Result<Response> {
    return InvalidArgument("site id is empty", "RegisterSite.site_id");
  });
  dispatcher_.Handle(MakeInbound(Site("")));
  const codec::Error& error = OnlyErrorReply();
  EXPECT_EQ(error.code, codec::ErrorCode::kInvalidArgument);
  EXPECT_EQ(error.message, "site id is empty");
  EXPECT_EQ(error.where, "RegisterSite.site_id");
  EXPECT_EQ(Requests("RegisterSite", "invalid_argument"), 1);
  EXPECT_EQ(Requests("RegisterSite", "ok"), 0);
}

TEST_F(DispatcherTest, ThrowingHandlerGetsAnInternalReplyAndIsCounted) {
  dispatcher_.On<codec::RegisterSite>([](Inbound&, codec::RegisterSite&) -> Result<Response> {
    throw std::runtime_error("vector::at out of range");
  });
  dispatcher_.Handle(MakeInbound(Site("site-a")));
  const codec::Error& error = OnlyErrorReply();
  EXPECT_EQ(error.code, codec::ErrorCode::kInternal);
  EXPECT_EQ(error.message, "internal error while handling RegisterSite");
  EXPECT_EQ(Requests("RegisterSite", "internal"), 1);
  EXPECT_EQ(metrics_.Read("fedrx_coord_errors_total",
                          {{"component", "dispatcher"}, {"reason", "handler_exception"}}),
            1);
}

TEST_F(DispatcherTest, LatencyIsMeasuredWithTheInjectedClock) {
  dispatcher_.On<codec::ListSites>([this](Inbound&, codec::ListSites&) -> Result<Response> {
    clock_.Advance(milliseconds(3));
    return Response{codec::SiteList{}, {}};
  });
  dispatcher_.Handle(MakeInbound(codec::ListSites{}));
  const std::string text = metrics_.Serialize();
  // 3ms lands above the 2.5ms bucket and within the 5ms one.
  EXPECT_NE(
      text.find("fedrx_coord_request_duration_seconds_bucket{type=\"ListSites\",le=\"0.0025\"} 0"),
      std::string::npos)
      << text;
  EXPECT_NE(
      text.find("fedrx_coord_request_duration_seconds_bucket{type=\"ListSites\",le=\"0.005\"} 1"),
      std::string::npos)
      << text;
}

TEST_F(DispatcherTest, ResponseTensorsTravelWithTheReply) {
  dispatcher_.On<codec::ListSites>([](Inbound&, codec::ListSites&) -> Result<Response> {
    codec::Tensor t;
    t.name = "weights";
    t.shape = {2};
    t.data = codec::Blob::FromFloats({1.0f, 2.0f});
    Response r{codec::SiteList{}, {}};
    r.tensors.push_back(std::move(t));
    return r;
  });
  dispatcher_.Handle(MakeInbound(codec::ListSites{}));
  ASSERT_EQ(bus_.sent.size(), 1u);
  ASSERT_EQ(bus_.sent[0].message.tensors.size(), 1u);
  EXPECT_EQ(bus_.sent[0].message.tensors[0].name, "weights");
  const auto floats = bus_.sent[0].message.tensors[0].data.As<float>();
  ASSERT_EQ(floats.size(), 2u);
  EXPECT_EQ(floats[1], 2.0f);
}

TEST_F(DispatcherTest, FailedReplyIsCounted) {
  bus_.send_status = ResourceExhausted("peer queue full");
  dispatcher_.Handle(MakeInbound(codec::HealthCheck{}));
  EXPECT_EQ(
      metrics_.Read("fedrx_coord_errors_total", {{"component", "dispatcher"}, {"reason", "reply"}}),
      1);
}

TEST(DispatcherBusTest, ServesRequestsOverTheBusThroughAsHandler) {
  Metrics metrics("coord");
  testing::FakeClock clock;
  testing::FakeNetwork network;
  testing::FakeBus server(network, Named("coord"), metrics, clock);
  testing::FakeBus client(network, Named("cli"), metrics, clock);
  Dispatcher dispatcher(server, metrics, clock);
  dispatcher.On<codec::RegisterSite>([](Inbound&, codec::RegisterSite& site) -> Result<Response> {
    return Response{codec::SiteRegistered{site.site_id, 7, false}, {}};
  });
  ASSERT_TRUE(server.Serve("tcp://127.0.0.1:*", dispatcher.AsHandler()).ok());
  auto channel = client.Connect(server.ServedEndpoint(), [](codec::Message&&) {});
  ASSERT_TRUE(channel.ok()) << channel.status();

  std::optional<Result<codec::Message>> registered;
  std::optional<Result<codec::Message>> health;
  ASSERT_TRUE(client
                  .Request(*channel, MakeMessage(Site("site-b")), milliseconds(1000),
                           [&](Result<codec::Message>&& r) { registered = std::move(r); })
                  .ok());
  ASSERT_TRUE(client
                  .Request(*channel, MakeMessage(codec::HealthCheck{}), milliseconds(1000),
                           [&](Result<codec::Message>&& r) { health = std::move(r); })
                  .ok());
  network.Pump();

  ASSERT_TRUE(registered.has_value());
  ASSERT_TRUE(registered->ok()) << registered->status();
  const auto* body = std::get_if<codec::SiteRegistered>(&(*registered)->body);
  ASSERT_NE(body, nullptr);
  EXPECT_EQ(body->site_id, "site-b");
  EXPECT_EQ(body->registered_at_ms, 7);

  ASSERT_TRUE(health.has_value());
  ASSERT_FALSE(health->ok());
  EXPECT_EQ(health->status().code(), StatusCode::kUnimplemented);
  EXPECT_EQ(health->status().where(), "envelope.body");
  EXPECT_EQ(metrics.Read("fedrx_coord_requests_total", {{"type", "RegisterSite"}, {"code", "ok"}}),
            1);
}

}  // namespace
}  // namespace fedrx::core
