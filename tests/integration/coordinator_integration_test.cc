// The real fedrx-coordinator binary with a real redis-server and real ZeroMQ
// sockets on loopback: sites register and are listed (through the `fedrx`
// CLI too); state survives a coordinator restart; every kind of malformed
// frame is answered with an Error naming what and where and counted by
// reason; Redis going away yields errors and not-ready, never a crash, and
// nothing stored before is lost.
#include <signal.h>

#include <gtest/gtest.h>

#include <chrono>
#include <zmq.hpp>

#include "messages/codec/codec.h"
#include "messages/codec/codec_testing.h"
#include "services/core/bus.h"
#include "services/core/clock.h"
#include "services/core/metrics.h"
#include "services/core/zmq_bus.h"
#include "tests/support/child_process.h"
#include "tests/support/http_client.h"
#include "tests/support/redis_server.h"

namespace fedrx {
namespace {

using namespace std::chrono_literals;
using core::StatusCode;

class CoordinatorIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto redis = testing::RedisServer::Start();
    ASSERT_TRUE(redis.ok()) << redis.status();
    redis_ = std::move(*redis);
    bus_port_ = testing::FreeTcpPort();
    http_port_ = testing::FreeTcpPort();
    endpoint_ = "tcp://127.0.0.1:" + std::to_string(bus_port_);
    StartCoordinator();
  }

  void StartCoordinator() {
    auto child = testing::ChildProcess::Spawn(
        FEDRX_COORDINATOR_BIN, {},
        {{"FEDRX_COORDINATOR_ENDPOINT", endpoint_},
         {"FEDRX_HTTP_LISTEN", "127.0.0.1:" + std::to_string(http_port_)},
         {"FEDRX_REDIS_HOST", "127.0.0.1"},
         {"FEDRX_REDIS_PORT", std::to_string(redis_->port())},
         {"FEDRX_REDIS_COMMAND_TIMEOUT", "300ms"},
         {"FEDRX_REDIS_STARTUP_WAIT", "5s"},
         {"FEDRX_BUS_MAX_ENVELOPE_BYTES", "64KiB"},
         {"FEDRX_BUS_MAX_TENSOR_BYTES", "1MiB"},
         {"FEDRX_RUNNER_DRAIN_TIMEOUT", "2s"}});
    ASSERT_TRUE(child.ok()) << child.status();
    coordinator_ = std::move(*child);
    ASSERT_TRUE(testing::WaitForHttp200(http_port_, "/readyz", 15s))
        << "coordinator never became ready:\n"
        << coordinator_->Log();
  }

  core::Result<codec::Message> Ask(codec::Body body) {
    auto ch = bus_.Connect(endpoint_, [](codec::Message&&) {});
    if (!ch.ok()) return ch.status();
    return core::Call(bus_, *ch, core::MakeMessage(std::move(body)), 5s);
  }

  std::vector<std::string> SiteIds() {
    auto list = Ask(codec::ListSites{});
    EXPECT_TRUE(list.ok()) << list.status();
    std::vector<std::string> ids;
    if (list.ok()) {
      for (const auto& s : std::get<codec::SiteList>(list->body).sites) ids.push_back(s.site_id);
    }
    return ids;
  }

  std::string Metrics() {
    auto r = testing::HttpGet(http_port_, "/metrics");
    EXPECT_TRUE(r.ok());
    return r.ok() ? r->body : "";
  }

  // Runs the CLI to completion; returns exit code and what it printed.
  std::pair<int, std::string> Cli(std::vector<std::string> args) {
    args.insert(args.begin(), {"--coordinator", endpoint_});
    auto child = testing::ChildProcess::Spawn(FEDRX_CLI_BIN, args);
    EXPECT_TRUE(child.ok());
    if (!child.ok()) return {-1, ""};
    auto code = (*child)->Wait(10s);
    EXPECT_TRUE(code.ok());
    return {code.ok() ? *code : -1, (*child)->Log()};
  }

  std::unique_ptr<testing::RedisServer> redis_;
  std::unique_ptr<testing::ChildProcess> coordinator_;
  int bus_port_ = 0;
  int http_port_ = 0;
  std::string endpoint_;
  core::SystemClock clock_;
  core::Metrics metrics_{"test"};
  core::ZmqBus bus_{core::BusOptions{"integration-test"}, metrics_, clock_};
};

TEST_F(CoordinatorIntegrationTest, SitesRegisterAndAreListedThroughTheCli) {
  auto [code, out] = Cli({"sites", "register", "--site", "pharma-a", "--institution", "Pharma A",
                          "--samples", "2412", "--tasks", "NR-AR,SR-p53"});
  ASSERT_EQ(code, 0) << out;
  EXPECT_NE(out.find("site pharma-a registered"), std::string::npos) << out;
  ASSERT_EQ(Cli({"sites", "register", "--site", "hospital-b", "--institution", "Hospital B"}).first,
            0);

  auto [list_code, listing] = Cli({"sites", "list"});
  ASSERT_EQ(list_code, 0) << listing;
  EXPECT_NE(listing.find("pharma-a"), std::string::npos);
  EXPECT_NE(listing.find("2412"), std::string::npos);
  EXPECT_NE(listing.find("hospital-b"), std::string::npos);
  EXPECT_NE(listing.find("2 site(s)"), std::string::npos);

  auto [bad_code, bad_out] = Cli({"sites", "register", "--site", "bad site", "--institution", "X"});
  EXPECT_EQ(bad_code, 1);
  EXPECT_NE(bad_out.find("RegisterSite.site_id"), std::string::npos) << bad_out;
}

TEST_F(CoordinatorIntegrationTest, RegistrationSurvivesACoordinatorRestart) {
  ASSERT_TRUE(Ask(codec::RegisterSite{"site-a", "A", 10, {"t"}, "h"}).ok());
  ASSERT_TRUE(coordinator_->Signal(SIGTERM).ok());
  auto code = coordinator_->Wait(10s);
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 0) << coordinator_->Log();
  StartCoordinator();
  EXPECT_EQ(SiteIds(), std::vector<std::string>{"site-a"});
  auto again = Ask(codec::RegisterSite{"site-a", "A", 11, {"t"}, "h"});
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(std::get<codec::SiteRegistered>(again->body).first_registration);
}

// Sends raw frames on a DEALER and returns the Error body of the reply.
class RawClient {
 public:
  explicit RawClient(const std::string& endpoint) : socket_(ctx_, zmq::socket_type::dealer) {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.set(zmq::sockopt::rcvtimeo, 5000);
    socket_.connect(endpoint);
  }

  codec::Error SendAndExpectError(std::vector<std::vector<std::byte>> frames) {
    for (std::size_t i = 0; i < frames.size(); ++i) {
      zmq::message_t m(frames[i].data(), frames[i].size());
      socket_.send(m, i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
    std::vector<codec::Blob> reply;
    while (true) {
      zmq::message_t m;
      auto got = socket_.recv(m);
      if (!got) {
        ADD_FAILURE() << "no reply";
        return {};
      }
      const bool more = m.more();
      reply.push_back(codec::Blob::CopyOf({static_cast<const std::byte*>(m.data()), m.size()}));
      if (!more) break;
    }
    codec::Decoded d = codec::Decode(std::move(reply));
    EXPECT_TRUE(d.ok());
    if (!d.ok()) return {};
    auto* e = std::get_if<codec::Error>(&d.message().body);
    EXPECT_NE(e, nullptr) << "reply is " << codec::BodyName(d.message().body);
    last_correlation_ = d.message().header.correlation_id;
    return e != nullptr ? *e : codec::Error{};
  }

  std::string last_correlation_;

 private:
  zmq::context_t ctx_;
  zmq::socket_t socket_;
};

std::vector<std::byte> Bytes(const codec::Blob& b) { return {b.bytes().begin(), b.bytes().end()}; }

std::vector<std::vector<std::byte>> Encoded(codec::Message m) {
  std::vector<std::vector<std::byte>> out;
  for (auto& b : codec::Encode(std::move(m))) out.push_back(Bytes(b));
  return out;
}

codec::Message Valid(codec::Body body, std::string id) {
  codec::Message m = core::MakeMessage(std::move(body));
  m.header.message_id = std::move(id);
  m.header.sender = "raw";
  return m;
}

TEST_F(CoordinatorIntegrationTest, MalformedFramesAreAnsweredCountedAndHarmless) {
  ASSERT_TRUE(Ask(codec::RegisterSite{"site-a", "A", 10, {"t"}, "h"}).ok());
  RawClient raw(endpoint_);

  // Garbage: not an envelope at all.
  codec::Error e = raw.SendAndExpectError({std::vector<std::byte>(100, std::byte{0x42})});
  EXPECT_EQ(e.code, codec::ErrorCode::kInvalidArgument);
  EXPECT_EQ(e.where, "frame 0");

  // Truncated: a valid envelope cut in half fails verification.
  auto whole = Encoded(Valid(codec::RegisterSite{"site-b", "B", 1, {}, ""}, "m-trunc"));
  whole[0].resize(whole[0].size() / 2);
  e = raw.SendAndExpectError({whole[0]});
  EXPECT_EQ(e.code, codec::ErrorCode::kInvalidArgument);
  EXPECT_EQ(e.where, "frame 0");

  // Unknown body type from a newer peer.
  e = raw.SendAndExpectError({Bytes(codec::testing::EnvelopeWithBodyType("m-unknown", 77))});
  EXPECT_EQ(e.code, codec::ErrorCode::kUnimplemented);
  EXPECT_EQ(e.where, "envelope.body");
  EXPECT_EQ(raw.last_correlation_, "m-unknown");

  // Newer schema version.
  auto newer = Valid(codec::ListSites{}, "m-newer");
  newer.header.schema_version = codec::kSchemaVersion + 1;
  e = raw.SendAndExpectError(Encoded(std::move(newer)));
  EXPECT_EQ(e.code, codec::ErrorCode::kFailedPrecondition);
  EXPECT_EQ(e.where, "envelope.schema_version");
  EXPECT_EQ(raw.last_correlation_, "m-newer");

  // Oversized envelope (the coordinator runs with a 64 KiB limit).
  e = raw.SendAndExpectError(
      Encoded(Valid(codec::RegisterSite{"site-c", std::string(100 * 1024, 'x'), 1, {}, ""}, "m-big")));
  EXPECT_EQ(e.code, codec::ErrorCode::kResourceExhausted);
  EXPECT_EQ(e.where, "frame 0");

  // Tensor description that disagrees with the frames that follow.
  auto update = Valid(codec::ModelUpdate{"s", 1, "site-a", 0, 5, {}}, "m-tensor");
  update.tensors.push_back(
      codec::Tensor{"w", codec::DType::kFloat32, {4}, codec::Blob::FromFloats({1, 2, 3, 4})});
  auto frames = Encoded(std::move(update));
  frames[1].resize(12);
  e = raw.SendAndExpectError(frames);
  EXPECT_EQ(e.code, codec::ErrorCode::kInvalidArgument);
  EXPECT_EQ(e.where, "tensor 0 (w)");

  const std::string m = Metrics();
  EXPECT_EQ(testing::MetricValue(m, "fedrx_coordinator_rejected_total", R"(reason="not_an_envelope")"), 1);
  EXPECT_EQ(testing::MetricValue(m, "fedrx_coordinator_rejected_total", R"(reason="verify_failed")"), 1);
  EXPECT_EQ(testing::MetricValue(m, "fedrx_coordinator_rejected_total", R"(reason="unknown_body")"), 1);
  EXPECT_EQ(testing::MetricValue(m, "fedrx_coordinator_rejected_total", R"(reason="newer_schema")"), 1);
  EXPECT_EQ(testing::MetricValue(m, "fedrx_coordinator_rejected_total", R"(reason="oversized")"), 1);
  EXPECT_EQ(testing::MetricValue(m, "fedrx_coordinator_rejected_total", R"(reason="tensor_mismatch")"), 1);

  // Still serving, nothing lost.
  EXPECT_TRUE(coordinator_->Running());
  ASSERT_TRUE(Ask(codec::RegisterSite{"site-b", "B", 1, {}, ""}).ok());
  EXPECT_EQ(SiteIds(), (std::vector<std::string>{"site-a", "site-b"}));
}

TEST_F(CoordinatorIntegrationTest, UnresponsiveRedisGivesErrorsAndNotReadyThenRecovers) {
  ASSERT_TRUE(Ask(codec::RegisterSite{"site-a", "A", 10, {"t"}, "h"}).ok());
  ASSERT_TRUE(redis_->Pause().ok());  // Redis stops answering mid-operation

  auto refused = Ask(codec::RegisterSite{"site-b", "B", 1, {}, ""});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kUnavailable) << refused.status();
  auto health = Ask(codec::HealthCheck{});
  ASSERT_TRUE(health.ok());
  EXPECT_FALSE(std::get<codec::HealthStatus>(health->body).ready);
  EXPECT_GE(testing::MetricValue(Metrics(), "fedrx_coordinator_errors_total", R"(component="redis")"), 1);
  EXPECT_TRUE(coordinator_->Running());

  ASSERT_TRUE(redis_->Resume().ok());
  EXPECT_TRUE(testing::WaitForHttp200(http_port_, "/readyz", 10s));
  EXPECT_EQ(SiteIds(), std::vector<std::string>{"site-a"});
  ASSERT_TRUE(Ask(codec::RegisterSite{"site-b", "B", 1, {}, ""}).ok());
  EXPECT_EQ(SiteIds(), (std::vector<std::string>{"site-a", "site-b"}));
}

TEST_F(CoordinatorIntegrationTest, RedisRestartIsSurvivedByReconnecting) {
  ASSERT_TRUE(redis_->Stop().ok());
  auto refused = Ask(codec::ListSites{});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kUnavailable);
  ASSERT_TRUE(redis_->Restart().ok());
  ASSERT_TRUE(Ask(codec::RegisterSite{"site-z", "Z", 1, {}, ""}).ok());
  EXPECT_EQ(SiteIds(), std::vector<std::string>{"site-z"});
  EXPECT_TRUE(coordinator_->Running());
}

TEST_F(CoordinatorIntegrationTest, SigtermDrainsAndExitsCleanly) {
  ASSERT_TRUE(coordinator_->Signal(SIGTERM).ok());
  auto code = coordinator_->Wait(10s);
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 0) << coordinator_->Log();
}

}  // namespace
}  // namespace fedrx
