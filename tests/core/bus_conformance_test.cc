// Bus conformance: the same suite runs against FakeBus (one FakeNetwork, a
// FakeClock) and ZmqBus (real tcp://127.0.0.1 sockets, the server polled on
// its own thread). Covers request/reply, correlation, timeouts, Error
// replies, pushes, pub/sub filtering, zero-copy tensors, and refusal of bad
// input with the server carrying on.
#include <gtest/gtest.h>

#include <zmq.hpp>

#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "messages/codec/codec.h"
#include "messages/codec/codec_testing.h"
#include "services/core/bus.h"
#include "services/core/clock.h"
#include "services/core/metrics.h"
#include "services/core/testing/fake_bus.h"
#include "services/core/testing/fake_clock.h"
#include "services/core/zmq_bus.h"

namespace fedrx::core {
namespace {

using namespace std::chrono_literals;

constexpr char kServerMetrics[] = "bus_server";
constexpr char kClientMetrics[] = "bus_client";

double Rejected(const Metrics& m, const std::string& reason) {
  return m.Read("fedrx_" + m.service() + "_rejected_total", {{"reason", reason}});
}

double Messages(const Metrics& m, const std::string& direction, const std::string& type) {
  return m.Read("fedrx_" + m.service() + "_messages_total",
                {{"direction", direction}, {"type", type}});
}

BusOptions Options(const std::string& name) {
  BusOptions o;
  o.name = name;
  o.reconnect_interval = 10ms;
  o.reconnect_interval_max = 100ms;
  // Room for the 40 MB tensor; the envelope keeps its 1 MiB default.
  o.limits.max_tensor_bytes = 64u << 20;
  return o;
}

// A float buffer lent to the bus without a copy; records when and where it
// is given back.
struct TrackedBuffer {
  explicit TrackedBuffer(std::size_t n) : values(n) {
    for (std::size_t i = 0; i < n; ++i) values[i] = static_cast<float>(i);  // exact below 2^24
  }
  const std::byte* bytes() const { return reinterpret_cast<const std::byte*>(values.data()); }
  codec::Blob Lend() {
    return codec::Blob(this, bytes(), values.size() * sizeof(float), [](void* p) {
      auto* self = static_cast<TrackedBuffer*>(p);
      if (std::this_thread::get_id() != self->lender) self->released_elsewhere = true;
      self->releases.fetch_add(1);
    });
  }

  std::vector<float> values;
  std::thread::id lender = std::this_thread::get_id();
  std::atomic<int> releases{0};
  std::atomic<bool> released_elsewhere{false};
};

// Inbound messages the server handler saw, readable from the test thread.
struct Recorder {
  void Add(Inbound&& in) {
    std::lock_guard<std::mutex> lock(mu);
    seen.push_back(std::move(in));
  }
  std::size_t size() {
    std::lock_guard<std::mutex> lock(mu);
    return seen.size();
  }
  std::mutex mu;
  std::vector<Inbound> seen;
};

// What a raw server received from a client.
struct RawRequest {
  PeerId peer;
  std::vector<codec::Blob> frames;
};

// ---- Harnesses --------------------------------------------------------------

class FakeHarness {
 public:
  static constexpr std::size_t kBigTensorFloats = 1'000'000;
  static constexpr bool kVirtualTime = true;

  FakeHarness()
      : server_(std::make_unique<testing::FakeBus>(network_, Options("server"), server_metrics,
                                                   clock_)),
        client_(std::make_unique<testing::FakeBus>(network_, Options("client"), client_metrics,
                                                   clock_)) {}

  Bus& server() { return *server_; }
  Bus& client() { return *client_; }
  const Clock& clock() const { return clock_; }
  std::unique_ptr<Bus> NewBus(const std::string& name, Metrics& metrics) {
    return std::make_unique<testing::FakeBus>(network_, Options(name), metrics, clock_);
  }

  Status StartServer(Bus::RequestHandler handler) {
    FEDRX_RETURN_IF_ERROR(server_->Serve("tcp://127.0.0.1:*", std::move(handler)));
    endpoint_ = server_->ServedEndpoint();
    return Status::Ok();
  }
  const std::string& endpoint() const { return endpoint_; }

  // The fake delivers everything in one Poll; a few rounds cover callbacks
  // that send more.
  bool PollUntil(Bus& bus, const std::function<bool()>& done) {
    for (int i = 0; i < 10 && !done(); ++i) EXPECT_TRUE(bus.Poll(0ms).ok());
    return done();
  }
  bool WaitUntil(const std::function<bool()>& done) { return done(); }
  void LetTimePass(std::chrono::milliseconds d) { clock_.Advance(d); }

  std::optional<std::vector<codec::Blob>> SendRaw(std::vector<codec::Blob> frames) {
    const PeerId peer = "raw-" + std::to_string(++raw_peers_);
    network_.InjectRaw(endpoint_, peer, std::move(frames));
    network_.Pump();
    return network_.TakeRaw(peer);
  }

  std::string StartRawServer() {
    raw_endpoint_ = "tcp://127.0.0.1:39999";
    EXPECT_TRUE(network_.ServeRaw(raw_endpoint_).ok());
    return raw_endpoint_;
  }
  std::optional<RawRequest> RawServerReceive() {
    network_.Pump();
    auto r = network_.TakeRawRequest(raw_endpoint_);
    if (!r) return std::nullopt;
    return RawRequest{r->peer, std::move(r->frames)};
  }
  void RawServerSend(const PeerId& peer, std::vector<codec::Blob> frames) {
    network_.RawSendTo(peer, std::move(frames));
  }

  // In memory the receiver holds the sender's very buffer until it lets go.
  void ExpectZeroCopy(codec::Blob received, TrackedBuffer& sent) {
    EXPECT_EQ(received.data(), sent.bytes());
    EXPECT_EQ(sent.releases.load(), 0);
    received = codec::Blob();
    EXPECT_EQ(sent.releases.load(), 1);
  }

  Metrics server_metrics{kServerMetrics};
  Metrics client_metrics{kClientMetrics};

 private:
  testing::FakeClock clock_;
  testing::FakeNetwork network_;
  std::unique_ptr<testing::FakeBus> server_;
  std::unique_ptr<testing::FakeBus> client_;
  std::string endpoint_;
  std::string raw_endpoint_;
  int raw_peers_ = 0;
};

// Sends raw frames to a ROUTER from a plain DEALER and returns the reply.
std::optional<std::vector<codec::Blob>> RawZmqRoundTrip(const std::string& endpoint,
                                                        std::vector<codec::Blob> frames) {
  zmq::context_t context(1);
  zmq::socket_t dealer(context, zmq::socket_type::dealer);
  dealer.set(zmq::sockopt::linger, 0);
  dealer.connect(endpoint);
  for (std::size_t i = 0; i < frames.size(); ++i) {
    zmq::message_t part(frames[i].data(), frames[i].size());
    const auto flags = i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none;
    if (!dealer.send(part, flags)) return std::nullopt;
  }
  std::vector<zmq::pollitem_t> items = {{dealer.handle(), 0, ZMQ_POLLIN, 0}};
  if (zmq::poll(items, 10s) == 0) return std::nullopt;
  std::vector<codec::Blob> reply;
  bool more = true;
  while (more) {
    zmq::message_t part;
    if (!dealer.recv(part, zmq::recv_flags::none)) return std::nullopt;
    more = part.more();
    reply.push_back(codec::Blob::CopyOf(
        {static_cast<const std::byte*>(part.data()), part.size()}));
  }
  return reply;
}

class ZmqHarness {
 public:
  static constexpr std::size_t kBigTensorFloats = 10'000'000;  // 40 MB
  static constexpr bool kVirtualTime = false;

  ZmqHarness()
      : server_(std::make_unique<ZmqBus>(Options("server"), server_metrics, clock_)),
        client_(std::make_unique<ZmqBus>(Options("client"), client_metrics, clock_)) {}

  ~ZmqHarness() {
    stop_ = true;
    if (server_thread_.joinable()) server_thread_.join();
  }

  // Only the server thread touches server() once StartServer returned.
  Bus& server() { return *server_; }
  Bus& client() { return *client_; }
  const Clock& clock() const { return clock_; }
  std::unique_ptr<Bus> NewBus(const std::string& name, Metrics& metrics) {
    return std::make_unique<ZmqBus>(Options(name), metrics, clock_);
  }

  Status StartServer(Bus::RequestHandler handler) {
    FEDRX_RETURN_IF_ERROR(server_->Serve("tcp://127.0.0.1:*", std::move(handler)));
    endpoint_ = server_->ServedEndpoint();
    // Starting the thread publishes the bus to it; from here on it is its owner.
    server_thread_ = std::thread([this] {
      while (!stop_) {
        Status s = server_->Poll(5ms);
        if (!s.ok()) ADD_FAILURE() << "server Poll: " << s;
      }
    });
    return Status::Ok();
  }
  const std::string& endpoint() const { return endpoint_; }

  bool PollUntil(Bus& bus, const std::function<bool()>& done) {
    const auto give_up = std::chrono::steady_clock::now() + 10s;
    while (!done() && std::chrono::steady_clock::now() < give_up) {
      EXPECT_TRUE(bus.Poll(5ms).ok());
    }
    return done();
  }
  bool WaitUntil(const std::function<bool()>& done) {
    const auto give_up = std::chrono::steady_clock::now() + 10s;
    while (!done() && std::chrono::steady_clock::now() < give_up) {
      std::this_thread::sleep_for(1ms);
    }
    return done();
  }
  // Real time passes while PollUntil waits.
  void LetTimePass(std::chrono::milliseconds) {}

  std::optional<std::vector<codec::Blob>> SendRaw(std::vector<codec::Blob> frames) {
    return RawZmqRoundTrip(endpoint_, std::move(frames));
  }

  // A plain ROUTER on the test thread.
  std::string StartRawServer() {
    raw_router_.emplace(raw_context_, zmq::socket_type::router);
    raw_router_->set(zmq::sockopt::linger, 0);
    raw_router_->bind("tcp://127.0.0.1:*");
    return raw_router_->get(zmq::sockopt::last_endpoint);
  }
  std::optional<RawRequest> RawServerReceive() {
    std::vector<zmq::pollitem_t> items = {{raw_router_->handle(), 0, ZMQ_POLLIN, 0}};
    if (zmq::poll(items, 10s) == 0) return std::nullopt;
    RawRequest request;
    bool more = true;
    for (bool first = true; more; first = false) {
      zmq::message_t part;
      if (!raw_router_->recv(part, zmq::recv_flags::none)) return std::nullopt;
      more = part.more();
      if (first) {
        request.peer = part.to_string();
      } else {
        request.frames.push_back(
            codec::Blob::CopyOf({static_cast<const std::byte*>(part.data()), part.size()}));
      }
    }
    return request;
  }
  void RawServerSend(const PeerId& peer, std::vector<codec::Blob> frames) {
    raw_router_->send(zmq::buffer(peer), zmq::send_flags::sndmore);
    for (std::size_t i = 0; i < frames.size(); ++i) {
      zmq::message_t part(frames[i].data(), frames[i].size());
      raw_router_->send(part, i + 1 < frames.size() ? zmq::send_flags::sndmore
                                                    : zmq::send_flags::none);
    }
  }

  // The received Blob views the zmq message's own buffer, and the sent
  // buffer went back to its owner from zmq's I/O thread once written: zmq
  // held the pointer instead of a copy.
  void ExpectZeroCopy(codec::Blob received, TrackedBuffer& sent) {
    codec::Blob::Released frame = std::move(received).Release();
    ASSERT_NE(frame.data, nullptr);
    EXPECT_EQ(ZmqBus::ReceivedFrameDataForTesting(frame), frame.data);
    frame.release(frame.owner);
    ASSERT_TRUE(WaitUntil([&] { return sent.releases.load() == 1; }));
    EXPECT_TRUE(sent.released_elsewhere.load());
  }

  Metrics server_metrics{kServerMetrics};
  Metrics client_metrics{kClientMetrics};

 private:
  SystemClock clock_;
  zmq::context_t raw_context_{1};
  std::optional<zmq::socket_t> raw_router_;
  std::unique_ptr<ZmqBus> server_;
  std::unique_ptr<ZmqBus> client_;
  std::string endpoint_;
  std::atomic<bool> stop_{false};
  std::thread server_thread_;
};

// ---- Fixture ------------------------------------------------------------------

template <typename Harness>
class BusConformanceTest : public ::testing::Test {
 protected:
  // Starts a server whose handler `handler` runs on the server's thread and
  // a client channel to it.
  void Start(Bus::RequestHandler handler, Bus::PushHandler on_push = nullptr) {
    ASSERT_TRUE(h_.StartServer(std::move(handler)).ok());
    Result<ChannelId> channel = h_.client().Connect(h_.endpoint(), std::move(on_push));
    ASSERT_TRUE(channel.ok()) << channel.status();
    channel_ = *channel;
  }

  // A server that answers an Ack with "served N", N counting the requests
  // its handler has seen: state that bad input must neither reach nor lose.
  void StartCountingServer() {
    Start([this](Inbound&& in) {
      ++served_;
      EXPECT_TRUE(Reply(h_.server(), in, codec::Ack{"served " + std::to_string(served_)}).ok());
    });
  }

  std::string CallAck(const std::string& detail) {
    Result<codec::Message> r =
        Call(h_.client(), channel_, MakeMessage(codec::Ack{detail}), 10s);
    if (!r.ok()) return "error: " + r.status().ToString();
    const auto* ack = std::get_if<codec::Ack>(&r->body);
    return ack == nullptr ? std::string("not an Ack") : ack->detail;
  }

  // Sends `frames` raw and expects an Error reply with `code` and `where`,
  // correlated to `correlation`, counted once under `reason`; then checks
  // that the server still answers and kept its state.
  void ExpectRefused(std::vector<codec::Blob> frames, codec::ErrorCode code,
                     const std::string& where, const std::string& reason,
                     const std::string& correlation = "") {
    StartCountingServer();
    ASSERT_EQ(CallAck("before"), "served 1");

    std::optional<std::vector<codec::Blob>> reply = h_.SendRaw(std::move(frames));
    ASSERT_TRUE(reply.has_value()) << "no reply to bad input";
    codec::Decoded decoded = codec::Decode(std::move(*reply));
    ASSERT_TRUE(decoded.ok()) << decoded.error().message;
    const codec::Message& m = decoded.message();
    const auto* error = std::get_if<codec::Error>(&m.body);
    ASSERT_NE(error, nullptr) << "reply body is " << codec::BodyName(m.body);
    EXPECT_EQ(error->code, code);
    EXPECT_EQ(error->where, where);
    EXPECT_FALSE(error->message.empty());
    EXPECT_EQ(m.header.correlation_id, correlation);
    EXPECT_EQ(m.header.sender, "server");
    EXPECT_EQ(Rejected(h_.server_metrics, reason), 1);

    EXPECT_EQ(CallAck("after"), "served 2");
    EXPECT_EQ(Rejected(h_.server_metrics, reason), 1);
  }

  static std::vector<codec::Blob> Encoded(codec::Message m) {
    return codec::Encode(std::move(m));
  }

  // Destroyed after h_: zmq may hold it until its sockets close.
  std::unique_ptr<TrackedBuffer> big_;
  Harness h_;
  ChannelId channel_ = -1;
  int served_ = 0;  // server thread only
};

using Implementations = ::testing::Types<FakeHarness, ZmqHarness>;

class HarnessNames {
 public:
  template <typename T>
  static std::string GetName(int) {
    return std::is_same_v<T, FakeHarness> ? "FakeBus" : "ZmqBus";
  }
};

TYPED_TEST_SUITE(BusConformanceTest, Implementations, HarnessNames);

// ---- Request / reply ------------------------------------------------------------

TYPED_TEST(BusConformanceTest, RequestReplyRoundTripCarriesBodyAndHeader) {
  auto& h = this->h_;
  Recorder recorder;
  this->Start([&](Inbound&& in) {
    const auto& site = std::get<codec::RegisterSite>(in.message.body);
    codec::SiteRegistered body{site.site_id, static_cast<std::int64_t>(site.num_samples) * 1000,
                               true};
    recorder.Add(std::move(in));
    Inbound& stored = recorder.seen.back();  // only this thread appends
    EXPECT_TRUE(Reply(h.server(), stored, std::move(body)).ok());
  });

  codec::Message request = MakeMessage(codec::RegisterSite{
      "site-a", "Institute A", 42, {"tox", "herg"}, "schema-1"});
  request.header.message_id = "req-roundtrip-1";
  const std::int64_t before_ms = h.clock().WallMillis();
  Result<codec::Message> reply = Call(h.client(), this->channel_, std::move(request), 10s);
  ASSERT_TRUE(reply.ok()) << reply.status();

  const auto* registered = std::get_if<codec::SiteRegistered>(&reply->body);
  ASSERT_NE(registered, nullptr) << codec::BodyName(reply->body);
  EXPECT_EQ(registered->site_id, "site-a");
  EXPECT_EQ(registered->registered_at_ms, 42000);
  EXPECT_TRUE(registered->first_registration);
  EXPECT_EQ(reply->header.correlation_id, "req-roundtrip-1");
  EXPECT_EQ(reply->header.sender, "server");
  EXPECT_EQ(reply->header.schema_version, codec::kSchemaVersion);
  EXPECT_EQ(reply->header.message_id.size(), 32u);
  EXPECT_GE(reply->header.sent_at_ms, before_ms);

  ASSERT_EQ(recorder.size(), 1u);
  const Inbound& in = recorder.seen[0];
  const auto& site = std::get<codec::RegisterSite>(in.message.body);
  EXPECT_EQ(site.institution, "Institute A");
  EXPECT_EQ(site.tasks, (std::vector<std::string>{"tox", "herg"}));
  EXPECT_EQ(site.schema_hash, "schema-1");
  EXPECT_EQ(in.message.header.message_id, "req-roundtrip-1");
  EXPECT_EQ(in.message.header.sender, "client");
  EXPECT_GE(in.message.header.sent_at_ms, before_ms);
  EXPECT_FALSE(in.peer.empty());

  EXPECT_EQ(Messages(h.client_metrics, "out", "RegisterSite"), 1);
  EXPECT_EQ(Messages(h.client_metrics, "in", "SiteRegistered"), 1);
  EXPECT_EQ(Messages(h.server_metrics, "in", "RegisterSite"), 1);
  // A real server counts a reply once zmq took it, which may be just after
  // the client already has it.
  EXPECT_TRUE(h.WaitUntil([&] { return Messages(h.server_metrics, "out", "SiteRegistered") > 0; }));
  EXPECT_EQ(Messages(h.server_metrics, "out", "SiteRegistered"), 1);
}

TYPED_TEST(BusConformanceTest, ConcurrentRequestsAnsweredOutOfOrderAreCorrelated) {
  auto& h = this->h_;
  std::vector<Inbound> held;  // server thread only
  this->Start([&](Inbound&& in) {
    held.push_back(std::move(in));
    if (held.size() < 3) return;
    for (auto it = held.rbegin(); it != held.rend(); ++it) {
      const std::string detail = std::get<codec::Ack>(it->message.body).detail;
      EXPECT_TRUE(Reply(h.server(), *it, codec::Ack{"re:" + detail}).ok());
    }
    held.clear();
  });

  std::map<int, std::string> answers;
  std::vector<int> arrival;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(h.client()
                    .Request(this->channel_, MakeMessage(codec::Ack{"q" + std::to_string(i)}),
                             10s,
                             [&, i](Result<codec::Message>&& r) {
                               arrival.push_back(i);
                               answers[i] = r.ok() ? std::get<codec::Ack>(r->body).detail
                                                   : r.status().ToString();
                             })
                    .ok());
  }
  ASSERT_TRUE(h.PollUntil(h.client(), [&] { return answers.size() == 3; }));
  EXPECT_EQ(answers[0], "re:q0");
  EXPECT_EQ(answers[1], "re:q1");
  EXPECT_EQ(answers[2], "re:q2");
  EXPECT_EQ(arrival, (std::vector<int>{2, 1, 0}));
}

TYPED_TEST(BusConformanceTest, UnansweredRequestTimesOutAndItsLateReplyIsDropped) {
  auto& h = this->h_;
  std::optional<Inbound> held;  // server thread only
  this->Start([&](Inbound&& in) {
    if (std::get<codec::Ack>(in.message.body).detail == "hold") {
      held = std::move(in);
      return;
    }
    // Answer the held request late, then this one.
    if (held) {
      EXPECT_TRUE(Reply(h.server(), *held, codec::Ack{"late"}).ok());
    }
    EXPECT_TRUE(Reply(h.server(), in, codec::Ack{"on time"}).ok());
  });

  int calls = 0;
  Status timed_out;
  codec::Message hold = MakeMessage(codec::Ack{"hold"});
  hold.header.message_id = "req-hold-1";
  ASSERT_TRUE(h.client()
                  .Request(this->channel_, std::move(hold), 50ms,
                           [&](Result<codec::Message>&& r) {
                             ++calls;
                             timed_out = r.status();
                           })
                  .ok());
  if (TypeParam::kVirtualTime) {
    ASSERT_TRUE(h.client().Poll(0ms).ok());
    EXPECT_EQ(calls, 0) << "expired before its deadline";
  }
  h.LetTimePass(51ms);
  ASSERT_TRUE(h.PollUntil(h.client(), [&] { return calls > 0; }));
  EXPECT_EQ(timed_out.code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(timed_out.where(), "request req-hold-1");

  EXPECT_EQ(this->CallAck("release"), "on time");
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(Rejected(h.client_metrics, "late_reply"), 1);
}

TYPED_TEST(BusConformanceTest, ErrorReplyBecomesStatusWithCodeMessageAndWhere) {
  auto& h = this->h_;
  this->Start([&](Inbound&& in) {
    EXPECT_TRUE(ReplyError(h.server(), in,
                           NotFound("no study named s-9", "CreateStudy.study.study_id"))
                    .ok());
  });
  codec::CreateStudy create;
  create.study.study_id = "s-9";
  Result<codec::Message> r = Call(h.client(), this->channel_, MakeMessage(create), 10s);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(r.status().message(), "no study named s-9");
  EXPECT_EQ(r.status().where(), "CreateStudy.study.study_id");
  EXPECT_EQ(Messages(h.client_metrics, "in", "Error"), 1);
}

TYPED_TEST(BusConformanceTest, ServerPushReachesTheClientPushHandler) {
  auto& h = this->h_;
  std::vector<codec::Message> pushes;
  this->Start(
      [&](Inbound&& in) {
        codec::TrainTask task;
        task.study_id = "s-1";
        task.round = 3;
        EXPECT_TRUE(h.server().SendTo(in.peer, MakeMessage(task)).ok());
        EXPECT_TRUE(Reply(h.server(), in, codec::Ack{"registered"}).ok());
      },
      [&](codec::Message&& m) { pushes.push_back(std::move(m)); });

  EXPECT_EQ(this->CallAck("hello"), "registered");
  ASSERT_TRUE(h.PollUntil(h.client(), [&] { return !pushes.empty(); }));
  ASSERT_EQ(pushes.size(), 1u);
  const auto* task = std::get_if<codec::TrainTask>(&pushes[0].body);
  ASSERT_NE(task, nullptr) << codec::BodyName(pushes[0].body);
  EXPECT_EQ(task->study_id, "s-1");
  EXPECT_EQ(task->round, 3u);
  EXPECT_TRUE(pushes[0].header.correlation_id.empty());
  EXPECT_EQ(pushes[0].header.sender, "server");
}

TYPED_TEST(BusConformanceTest, MisuseIsReportedAsStatus) {
  auto& h = this->h_;
  Metrics lone_metrics("bus_lone");
  std::unique_ptr<Bus> lone = h.NewBus("lone", lone_metrics);
  EXPECT_EQ(lone->SendTo("nobody", MakeMessage(codec::Ack{"x"})).code(),
            StatusCode::kFailedPrecondition);
  ASSERT_TRUE(lone->Serve("tcp://127.0.0.1:*", [](Inbound&&) {}).ok());
  EXPECT_EQ(lone->SendTo("nobody", MakeMessage(codec::Ack{"x"})).code(),
            StatusCode::kUnavailable);
  EXPECT_EQ(lone->Serve("tcp://127.0.0.1:*", [](Inbound&&) {}).code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(lone->Publish("round.x", MakeMessage(codec::Ack{})).code(),
            StatusCode::kFailedPrecondition);
  Result<ChannelId> bad = lone->Connect("not an endpoint", nullptr);
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(lone->Send(7, MakeMessage(codec::Ack{})).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(lone->Request(7, MakeMessage(codec::Ack{}), 1s, [](Result<codec::Message>&&) {})
                .code(),
            StatusCode::kInvalidArgument);
}

TYPED_TEST(BusConformanceTest, ClientDropsAndCountsBadInputAndKeepsWorking) {
  auto& h = this->h_;
  const std::string endpoint = h.StartRawServer();
  std::vector<std::string> pushes;
  Result<ChannelId> channel = h.client().Connect(endpoint, [&](codec::Message&& m) {
    pushes.push_back(std::get<codec::Ack>(m.body).detail);
  });
  ASSERT_TRUE(channel.ok()) << channel.status();
  std::optional<Result<codec::Message>> answer;
  codec::Message question = MakeMessage(codec::Ack{"question"});
  question.header.message_id = "req-client-1";
  ASSERT_TRUE(h.client()
                  .Request(*channel, std::move(question), 10s,
                           [&](Result<codec::Message>&& r) { answer = std::move(r); })
                  .ok());

  std::optional<RawRequest> request = h.RawServerReceive();
  ASSERT_TRUE(request.has_value());
  codec::Decoded decoded = codec::Decode(std::move(request->frames));
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(decoded.message().header.message_id, "req-client-1");

  // Not an envelope; a reply from a newer schema; then a good push and the
  // good reply. Only the last two may reach the client's code.
  std::vector<codec::Blob> junk;
  junk.push_back(codec::Blob::CopyOf(std::as_bytes(std::span<const char>("junk", 4))));
  h.RawServerSend(request->peer, std::move(junk));
  codec::Message newer = MakeMessage(codec::Ack{"from the future"});
  newer.header.schema_version = codec::kSchemaVersion + 1;
  newer.header.message_id = "rep-newer";
  newer.header.correlation_id = "req-client-1";
  h.RawServerSend(request->peer, codec::Encode(std::move(newer)));
  codec::Message push = MakeMessage(codec::Ack{"pushed"});
  push.header.message_id = "push-1";
  h.RawServerSend(request->peer, codec::Encode(std::move(push)));
  codec::Message good = MakeMessage(codec::Ack{"answer"});
  good.header.message_id = "rep-good";
  good.header.correlation_id = "req-client-1";
  h.RawServerSend(request->peer, codec::Encode(std::move(good)));

  ASSERT_TRUE(h.PollUntil(h.client(), [&] { return answer.has_value(); }));
  ASSERT_TRUE(answer->ok()) << answer->status();
  EXPECT_EQ(std::get<codec::Ack>((*answer)->body).detail, "answer");
  EXPECT_EQ(pushes, (std::vector<std::string>{"pushed"}));
  EXPECT_EQ(Rejected(h.client_metrics, "not_an_envelope"), 1);
  EXPECT_EQ(Rejected(h.client_metrics, "newer_schema"), 1);
}

// ---- Events -----------------------------------------------------------------------

TYPED_TEST(BusConformanceTest, PublishedEventsReachOnlyMatchingSubscribers) {
  auto& h = this->h_;
  Metrics publisher_metrics("bus_publisher");
  std::unique_ptr<Bus> publisher = h.NewBus("publisher", publisher_metrics);
  ASSERT_TRUE(publisher->BindPublisher("tcp://127.0.0.1:*").ok());
  ASSERT_FALSE(publisher->PublisherEndpoint().empty());

  std::vector<std::string> got;
  ASSERT_TRUE(h.client()
                  .Subscribe(publisher->PublisherEndpoint(), "round.",
                             [&](codec::Message&& m) {
                               got.push_back(std::get<codec::Ack>(m.body).detail);
                               EXPECT_EQ(m.header.sender, "publisher");
                             })
                  .ok());
  // A subscription takes a moment to reach a real publisher: probe until one
  // arrives, then forget the probes.
  int probes = 0;
  ASSERT_TRUE(h.PollUntil(h.client(), [&] {
    ++probes;
    EXPECT_TRUE(publisher->Publish("round.probe", MakeMessage(codec::Ack{"probe"})).ok());
    return !got.empty();
  }));
  auto events = [&] {
    std::vector<std::string> real;
    for (const auto& g : got) {
      if (g != "probe") real.push_back(g);
    }
    return real;
  };

  for (const char* topic : {"site.joined", "round.closed", "rounds", "roun", "round.done"}) {
    ASSERT_TRUE(publisher->Publish(topic, MakeMessage(codec::Ack{topic})).ok());
  }
  // One publisher's events arrive in order: once the last is here, any
  // wrongly delivered earlier one would be too.
  ASSERT_TRUE(h.PollUntil(h.client(), [&] {
    return !events().empty() && events().back() == "round.done";
  }));
  EXPECT_EQ(events(), (std::vector<std::string>{"round.closed", "round.done"}));
  EXPECT_EQ(Messages(publisher_metrics, "out", "Ack"), probes + 5);
}

// ---- Tensors ----------------------------------------------------------------------

TYPED_TEST(BusConformanceTest, LargeTensorRoundTripsWithValuesAndWithoutCopy) {
  auto& h = this->h_;
  const std::size_t n = TypeParam::kBigTensorFloats;
  this->big_ = std::make_unique<TrackedBuffer>(n);
  std::atomic<bool> server_saw_values{false};
  this->Start([&](Inbound&& in) {
    const auto& tensors = in.message.tensors;
    bool ok = tensors.size() == 1 && tensors[0].data.size() == n * sizeof(float);
    if (ok) {
      std::span<const float> v = tensors[0].data.As<float>();
      ok = v.size() == n;
      for (std::size_t i = 0; ok && i < n; ++i) ok = v[i] == static_cast<float>(i);
    }
    server_saw_values = ok;
    codec::ModelVersion version;
    version.study_id = "s-1";
    version.version = 7;
    // Sends the received frame straight back: forwarding is zero-copy too.
    EXPECT_TRUE(Reply(h.server(), in, version, std::move(in.message.tensors)).ok());
  });

  codec::ModelUpdate update;
  update.study_id = "s-1";
  update.site_id = "site-a";
  update.num_samples = 100;
  std::vector<codec::Tensor> tensors;
  tensors.push_back(codec::Tensor{"weights", codec::DType::kFloat32,
                                  {static_cast<std::int64_t>(n)}, this->big_->Lend()});
  Result<codec::Message> reply =
      Call(h.client(), this->channel_, MakeMessage(update, std::move(tensors)), 30s);
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_TRUE(server_saw_values.load());

  EXPECT_EQ(std::get<codec::ModelVersion>(reply->body).version, 7u);
  ASSERT_EQ(reply->tensors.size(), 1u);
  codec::Tensor& t = reply->tensors[0];
  EXPECT_EQ(t.name, "weights");
  EXPECT_EQ(t.dtype, codec::DType::kFloat32);
  EXPECT_EQ(t.shape, (std::vector<std::int64_t>{static_cast<std::int64_t>(n)}));
  std::span<const float> values = t.data.As<float>();
  ASSERT_EQ(values.size(), n);
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < n; ++i) wrong += values[i] != static_cast<float>(i);
  EXPECT_EQ(wrong, 0u);
  EXPECT_EQ(values[n - 1], static_cast<float>(n - 1));

  h.ExpectZeroCopy(std::move(t.data), *this->big_);
}

// ---- Bad input ----------------------------------------------------------------------

TYPED_TEST(BusConformanceTest, TruncatedEnvelopeIsRefusedWithInvalidArgument) {
  std::vector<codec::Blob> frames = this->Encoded(MakeMessage(codec::Ack{"cut short"}));
  const std::span<const std::byte> whole = frames[0].bytes();
  std::vector<codec::Blob> cut;
  cut.push_back(codec::Blob::CopyOf(whole.first(whole.size() / 2)));
  this->ExpectRefused(std::move(cut), codec::ErrorCode::kInvalidArgument, "frame 0",
                      "verify_failed");
}

TYPED_TEST(BusConformanceTest, GarbageFailingTheVerifierIsRefusedWithInvalidArgument) {
  // The right file identifier, so that only the Verifier can catch it.
  std::vector<std::byte> garbage(96);
  for (std::size_t i = 0; i < garbage.size(); ++i) {
    garbage[i] = static_cast<std::byte>((i * 37 + 11) & 0xff);
  }
  std::memcpy(garbage.data(), "\xf0\xff\x00\x00", 4);  // root offset far past the end
  std::memcpy(garbage.data() + 4, "FRX1", 4);
  std::vector<codec::Blob> frames;
  frames.push_back(codec::Blob::FromBytes(std::move(garbage)));
  this->ExpectRefused(std::move(frames), codec::ErrorCode::kInvalidArgument, "frame 0",
                      "verify_failed");
}

TYPED_TEST(BusConformanceTest, UnknownBodyTypeIsRefusedWithUnimplemented) {
  std::vector<codec::Blob> frames;
  frames.push_back(codec::testing::EnvelopeWithBodyType("req-unknown-1", 200));
  this->ExpectRefused(std::move(frames), codec::ErrorCode::kUnimplemented, "envelope.body",
                      "unknown_body", "req-unknown-1");
}

TYPED_TEST(BusConformanceTest, NewerSchemaIsRefusedWithFailedPrecondition) {
  codec::Message m = MakeMessage(codec::Ack{"from the future"});
  m.header.schema_version = codec::kSchemaVersion + 6;
  m.header.message_id = "req-newer-1";
  this->ExpectRefused(this->Encoded(std::move(m)), codec::ErrorCode::kFailedPrecondition,
                      "envelope.schema_version", "newer_schema", "req-newer-1");
}

TYPED_TEST(BusConformanceTest, OversizedFrameIsRefusedWithResourceExhausted) {
  const codec::Limits limits = Options("server").limits;
  std::vector<codec::Blob> frames;
  frames.push_back(codec::Blob::FromBytes(std::vector<std::byte>(limits.max_envelope_bytes + 1)));
  this->ExpectRefused(std::move(frames), codec::ErrorCode::kResourceExhausted, "frame 0",
                      "oversized");
}

TYPED_TEST(BusConformanceTest, TensorSpecWithoutItsFrameIsRefusedWithInvalidArgument) {
  std::vector<codec::Tensor> tensors;
  tensors.push_back(codec::Tensor{"weights", codec::DType::kFloat32, {4},
                                  codec::Blob::FromFloats({1, 2, 3, 4})});
  codec::Message m = MakeMessage(codec::Ack{"one tensor promised"}, std::move(tensors));
  m.header.message_id = "req-mismatch-1";
  std::vector<codec::Blob> frames = this->Encoded(std::move(m));
  ASSERT_EQ(frames.size(), 2u);
  frames.pop_back();  // the spec stays, its frame goes
  this->ExpectRefused(std::move(frames), codec::ErrorCode::kInvalidArgument, "envelope.tensors",
                      "tensor_mismatch", "req-mismatch-1");
}

}  // namespace
}  // namespace fedrx::core
