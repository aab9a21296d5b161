// CurveZMQ on the real bus (tcp://127.0.0.1): enrolled keys get through with
// their identity, unknown keys and plaintext clients get nothing through, the
// key files, and a large tensor over an encrypted connection.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "services/core/authenticator.h"
#include "services/core/bus.h"
#include "services/core/clock.h"
#include "services/core/curve_keys.h"
#include "services/core/metrics.h"
#include "services/core/zmq_bus.h"

namespace fedrx::core {
namespace {

using namespace std::chrono_literals;

// Authenticates from a fixed map of public key -> identity; counts its calls.
class MapAuthenticator final : public Authenticator {
 public:
  explicit MapAuthenticator(std::map<std::string, Identity> enrolled)
      : enrolled_(std::move(enrolled)) {}
  Result<Identity> Authenticate(std::string_view public_key_z85) override {
    ++calls;
    auto it = enrolled_.find(std::string(public_key_z85));
    if (it == enrolled_.end()) {
      return Status(StatusCode::kPermissionDenied, "key is not enrolled", "MapAuthenticator");
    }
    return it->second;
  }
  std::atomic<int> calls{0};

 private:
  std::map<std::string, Identity> enrolled_;
};

CurveKeyPair NewKeyPair() {
  Result<CurveKeyPair> pair = GenerateCurveKeyPair();
  EXPECT_TRUE(pair.ok()) << pair.status();
  return pair.ok() ? *pair : CurveKeyPair{};
}

BusOptions Options(const std::string& name) {
  BusOptions o;
  o.name = name;
  o.reconnect_interval = 10ms;
  o.reconnect_interval_max = 100ms;
  o.limits.max_tensor_bytes = 64u << 20;  // room for the 40 MB tensor
  return o;
}

BusOptions ClientOptions(const std::string& name, const CurveKeyPair& own,
                         const std::string& server_key) {
  BusOptions o = Options(name);
  o.curve_public_key = own.public_key;
  o.curve_secret_key = own.secret_key;
  o.curve_server_key = server_key;
  return o;
}

// A CURVE server polled on its own thread, recording what its handler sees.
class CurveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_keys_ = NewKeyPair();
    site_keys_ = NewKeyPair();
    authenticator_ = std::make_unique<MapAuthenticator>(
        std::map<std::string, Identity>{{site_keys_.public_key, Identity{"site-a", "site"}}});
  }

  void TearDown() override {
    stop_ = true;
    if (server_thread_.joinable()) server_thread_.join();
  }

  // Serves with CURVE; the handler records the message and answers an Ack
  // naming the identity it was given.
  void StartServer() {
    BusOptions o = Options("server");
    o.curve_public_key = server_keys_.public_key;
    o.curve_secret_key = server_keys_.secret_key;
    server_ = std::make_unique<ZmqBus>(o, server_metrics_, clock_);
    server_->SetAuthenticator(authenticator_.get());
    ZmqBus* server = server_.get();
    ASSERT_TRUE(
        server_
            ->Serve(
                "tcp://127.0.0.1:*",
                [this, server](Inbound&& in) {
                  const std::string who = in.identity + "/" + in.role;
                  {
                    std::lock_guard<std::mutex> lock(mu_);
                    seen_.push_back(Seen{in.identity, in.role, codec::BodyName(in.message.body)});
                  }
                  if (!in.message.tensors.empty()) {
                    EXPECT_TRUE(
                        Reply(*server, in, codec::Ack{who}, std::move(in.message.tensors)).ok());
                  } else {
                    EXPECT_TRUE(Reply(*server, in, codec::Ack{who}).ok());
                  }
                })
            .ok());
    endpoint_ = server_->ServedEndpoint();
    server_thread_ = std::thread([this] {
      while (!stop_) {
        Status s = server_->Poll(5ms);
        if (!s.ok()) ADD_FAILURE() << "server Poll: " << s;
      }
    });
  }

  std::size_t SeenCount() {
    std::lock_guard<std::mutex> lock(mu_);
    return seen_.size();
  }

  double Authentications(const std::string& result) const {
    return server_metrics_.Read("fedrx_server_authentications_total", {{"result", result}});
  }

  // Polls `bus` for `how_long` (real time), so that whatever can arrive does.
  static void PollFor(Bus& bus, std::chrono::milliseconds how_long) {
    const auto until = std::chrono::steady_clock::now() + how_long;
    while (std::chrono::steady_clock::now() < until) EXPECT_TRUE(bus.Poll(5ms).ok());
  }

  // Sends a one-way Ack and a Request from `client`, and checks that within a
  // bounded wait neither reaches the server and the Request times out.
  void ExpectNothingGetsThrough(ZmqBus& client) {
    Result<ChannelId> channel = client.Connect(endpoint_, nullptr);
    ASSERT_TRUE(channel.ok()) << channel.status();
    ASSERT_TRUE(client.Send(*channel, MakeMessage(codec::Ack{"one-way"})).ok());
    std::optional<Status> outcome;
    ASSERT_TRUE(client
                    .Request(*channel, MakeMessage(codec::Ack{"request"}), 500ms,
                             [&](Result<codec::Message>&& r) { outcome = r.status(); })
                    .ok());
    PollFor(client, 1s);
    ASSERT_TRUE(outcome.has_value());
    EXPECT_EQ(outcome->code(), StatusCode::kDeadlineExceeded) << *outcome;
    EXPECT_EQ(SeenCount(), 0u);
  }

  struct Seen {
    std::string identity;
    std::string role;
    std::string body;
  };

  CurveKeyPair server_keys_;
  CurveKeyPair site_keys_;
  std::unique_ptr<MapAuthenticator> authenticator_;
  SystemClock clock_;
  Metrics server_metrics_{"server"};
  Metrics client_metrics_{"client"};
  std::unique_ptr<ZmqBus> server_;
  std::string endpoint_;
  std::atomic<bool> stop_{false};
  std::thread server_thread_;
  std::mutex mu_;
  std::vector<Seen> seen_;
};

TEST_F(CurveTest, EnrolledKeyGetsThroughAndMessagesCarryIdentityAndRole) {
  StartServer();
  ZmqBus client(ClientOptions("site-a", site_keys_, server_keys_.public_key), client_metrics_,
                clock_);
  Result<ChannelId> channel = client.Connect(endpoint_, nullptr);
  ASSERT_TRUE(channel.ok()) << channel.status();

  Result<codec::Message> reply = Call(client, *channel, MakeMessage(codec::Ack{"hello"}), 10s);
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(std::get<codec::Ack>(reply->body).detail, "site-a/site");
  // A second message on the same connection carries the same identity.
  reply = Call(client, *channel, MakeMessage(codec::Ack{"again"}), 10s);
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(std::get<codec::Ack>(reply->body).detail, "site-a/site");

  std::lock_guard<std::mutex> lock(mu_);
  ASSERT_EQ(seen_.size(), 2u);
  EXPECT_EQ(seen_[0].identity, "site-a");
  EXPECT_EQ(seen_[0].role, "site");
  EXPECT_EQ(seen_[1].identity, "site-a");
  EXPECT_EQ(Authentications("ok"), 1);
  EXPECT_EQ(Authentications("denied"), 0);
}

TEST_F(CurveTest, UnknownKeyIsRefusedAndNoMessageArrives) {
  StartServer();
  const CurveKeyPair stranger = NewKeyPair();
  ZmqBus client(ClientOptions("stranger", stranger, server_keys_.public_key), client_metrics_,
                clock_);
  ExpectNothingGetsThrough(client);
  // On a loaded machine the handshake may come late; it is refused either way.
  const auto give_up = std::chrono::steady_clock::now() + 10s;
  while (Authentications("denied") < 1 && std::chrono::steady_clock::now() < give_up) {
    ASSERT_TRUE(client.Poll(5ms).ok());
  }
  PollFor(client, 200ms);  // a retried handshake would be counted again meanwhile
  EXPECT_EQ(Authentications("denied"), 1);
  EXPECT_EQ(Authentications("ok"), 0);
  EXPECT_EQ(authenticator_->calls.load(), 1);
  EXPECT_EQ(SeenCount(), 0u);
}

TEST_F(CurveTest, PlaintextClientGetsNothingThrough) {
  StartServer();
  ZmqBus client(Options("plaintext"), client_metrics_, clock_);
  ExpectNothingGetsThrough(client);
  // The handshake fails on the mechanism, before anyone asks the authenticator.
  EXPECT_EQ(authenticator_->calls.load(), 0);
  EXPECT_EQ(Authentications("ok"), 0);
}

TEST_F(CurveTest, ClientTrustingAnotherServerKeyGetsNothingThrough) {
  StartServer();
  const CurveKeyPair impostor = NewKeyPair();
  ZmqBus client(ClientOptions("site-a", site_keys_, impostor.public_key), client_metrics_, clock_);
  ExpectNothingGetsThrough(client);
  EXPECT_EQ(Authentications("ok"), 0);
}

TEST_F(CurveTest, LargeTensorRoundTripsWithValuesOverCurve) {
  StartServer();
  ZmqBus client(ClientOptions("site-a", site_keys_, server_keys_.public_key), client_metrics_,
                clock_);
  Result<ChannelId> channel = client.Connect(endpoint_, nullptr);
  ASSERT_TRUE(channel.ok()) << channel.status();

  constexpr std::size_t n = 10'000'000;  // 40 MB of float32
  std::vector<float> values(n);
  for (std::size_t i = 0; i < n; ++i) values[i] = static_cast<float>(i);  // exact below 2^24
  std::vector<codec::Tensor> tensors;
  tensors.push_back(codec::Tensor{
      "weights",
      codec::DType::kFloat32,
      {static_cast<std::int64_t>(n)},
      codec::Blob::CopyOf({reinterpret_cast<const std::byte*>(values.data()), n * sizeof(float)})});
  codec::ModelUpdate update;
  update.study_id = "s-1";
  update.site_id = "site-a";
  Result<codec::Message> reply =
      Call(client, *channel, MakeMessage(update, std::move(tensors)), 60s);
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(std::get<codec::Ack>(reply->body).detail, "site-a/site");
  ASSERT_EQ(reply->tensors.size(), 1u);
  std::span<const float> got = reply->tensors[0].data.As<float>();
  ASSERT_EQ(got.size(), n);
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < n; ++i) wrong += got[i] != static_cast<float>(i);
  EXPECT_EQ(wrong, 0u);
  EXPECT_EQ(got[n - 1], static_cast<float>(n - 1));
}

TEST(CurveOptionsTest, CurveServerWithoutAuthenticatorIsRefused) {
  Metrics metrics("server");
  SystemClock clock;
  const CurveKeyPair keys = NewKeyPair();
  BusOptions o = Options("server");
  o.curve_secret_key = keys.secret_key;
  ZmqBus bus(o, metrics, clock);
  Status s = bus.Serve("tcp://127.0.0.1:*", nullptr);
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s;
  EXPECT_EQ(bus.ServedEndpoint(), "");
}

TEST(CurveOptionsTest, BadKeysInOptionsAreRefusedWithInvalidArgument) {
  Metrics metrics("bus");
  SystemClock clock;
  const CurveKeyPair keys = NewKeyPair();
  const CurveKeyPair other = NewKeyPair();
  MapAuthenticator authenticator({});

  BusOptions short_key = Options("server");
  short_key.curve_secret_key = keys.secret_key.substr(0, 39);
  ZmqBus server(short_key, metrics, clock);
  server.SetAuthenticator(&authenticator);
  Status s = server.Serve("tcp://127.0.0.1:*", nullptr);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s;
  EXPECT_EQ(s.where(), "BusOptions.curve_secret_key");

  BusOptions mismatched =
      ClientOptions("client", {keys.public_key, other.secret_key}, other.public_key);
  ZmqBus client(mismatched, metrics, clock);
  Result<ChannelId> channel = client.Connect("tcp://127.0.0.1:5999", nullptr);
  EXPECT_EQ(channel.status().code(), StatusCode::kInvalidArgument) << channel.status();

  BusOptions no_own_keys = Options("client");
  no_own_keys.curve_server_key = other.public_key;
  ZmqBus lone(no_own_keys, metrics, clock);
  EXPECT_EQ(lone.Connect("tcp://127.0.0.1:5999", nullptr).status().code(),
            StatusCode::kInvalidArgument);
}

// ---- Key files ----------------------------------------------------------------------

class CurveKeyFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string templ = ::testing::TempDir() + "curve_keys_XXXXXX";
    ASSERT_NE(::mkdtemp(templ.data()), nullptr);
    dir_ = templ;
  }
  void TearDown() override {
    for (const std::string& f : files_) std::remove(f.c_str());
    ::rmdir(dir_.c_str());
  }
  std::string Path(const std::string& name) {
    files_.push_back(dir_ + "/" + name);
    return files_.back();
  }
  // Writes `text` to `path` with `mode`.
  void WriteFile(const std::string& path, const std::string& text, mode_t mode) {
    std::ofstream(path) << text;
    ASSERT_EQ(::chmod(path.c_str(), mode), 0);
  }

  std::string dir_;
  std::vector<std::string> files_;
};

TEST_F(CurveKeyFileTest, WrittenPairLoadsBackWithMode0600) {
  const CurveKeyPair pair = NewKeyPair();
  ASSERT_EQ(pair.public_key.size(), 40u);
  ASSERT_TRUE(CheckCurveKeyPair(pair, "generated").ok());
  const std::string path = Path("site.key");
  ASSERT_TRUE(WriteCurveKeyPair(path, pair).ok());

  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  Result<CurveKeyPair> loaded = LoadCurveKeyPair(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->public_key, pair.public_key);
  EXPECT_EQ(loaded->secret_key, pair.secret_key);

  // Rewriting replaces the file whole.
  const CurveKeyPair next = NewKeyPair();
  ASSERT_TRUE(WriteCurveKeyPair(path, next).ok());
  loaded = LoadCurveKeyPair(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->public_key, next.public_key);
}

TEST_F(CurveKeyFileTest, EnrolmentFileNamesAreAccepted) {
  const CurveKeyPair pair = NewKeyPair();
  const std::string path = Path("enrolled.key");
  WriteFile(path,
            "# fedrx CURVE key pair\npublic-key = " + pair.public_key +
                "\nsecret-key = " + pair.secret_key + "\n",
            0600);
  Result<CurveKeyPair> loaded = LoadCurveKeyPair(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->public_key, pair.public_key);
  EXPECT_EQ(loaded->secret_key, pair.secret_key);
}

TEST_F(CurveKeyFileTest, FileReadableByOthersIsRefusedWithClearError) {
  const CurveKeyPair pair = NewKeyPair();
  const std::string path = Path("open.key");
  WriteFile(path, "public = " + pair.public_key + "\nsecret = " + pair.secret_key + "\n", 0644);
  Result<CurveKeyPair> loaded = LoadCurveKeyPair(path);
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(loaded.status().where(), path);
  EXPECT_NE(loaded.status().message().find("0644"), std::string::npos) << loaded.status();
  EXPECT_NE(loaded.status().message().find("chmod 600"), std::string::npos) << loaded.status();
  // The message never quotes the secret.
  EXPECT_EQ(loaded.status().ToString().find(pair.secret_key), std::string::npos);
}

TEST_F(CurveKeyFileTest, BadZ85IsRefusedNamingTheLine) {
  const CurveKeyPair pair = NewKeyPair();
  std::string bad = pair.secret_key;
  bad[7] = ',';  // not in the Z85 alphabet
  const std::string path = Path("bad.key");
  WriteFile(path, "# site-a\npublic = " + pair.public_key + "\nsecret = " + bad + "\n", 0600);
  Result<CurveKeyPair> loaded = LoadCurveKeyPair(path);
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(loaded.status().where(), path + ":3 (secret key)");
  EXPECT_NE(loaded.status().message().find("Z85"), std::string::npos) << loaded.status();
  EXPECT_EQ(loaded.status().ToString().find(bad), std::string::npos);
}

TEST_F(CurveKeyFileTest, WrongLengthMissingLineAndForeignPublicKeyAreRefused) {
  const CurveKeyPair pair = NewKeyPair();
  const CurveKeyPair other = NewKeyPair();

  const std::string short_key = Path("short.key");
  WriteFile(short_key,
            "public = " + pair.public_key.substr(0, 35) + "\nsecret = " + pair.secret_key + "\n",
            0600);
  Result<CurveKeyPair> r = LoadCurveKeyPair(short_key);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().where(), short_key + ":1 (public key)");

  const std::string no_secret = Path("nosecret.key");
  WriteFile(no_secret, "public = " + pair.public_key + "\n", 0600);
  r = LoadCurveKeyPair(no_secret);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("secret"), std::string::npos) << r.status();

  const std::string foreign = Path("foreign.key");
  WriteFile(foreign, "public = " + other.public_key + "\nsecret = " + pair.secret_key + "\n", 0600);
  r = LoadCurveKeyPair(foreign);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("does not belong"), std::string::npos) << r.status();

  EXPECT_EQ(LoadCurveKeyPair(Path("absent.key")).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(WriteCurveKeyPair(Path("never.key"), {other.public_key, pair.secret_key}).code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace fedrx::core
