// RedisStateStore against a real redis-server: what only a real Redis can
// show (connection loss, timeouts, reconnects, AUTH/SELECT, large values).
// Shared behaviour is in state_store_conformance_test.cc.
#include "services/core/redis_state_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "services/core/keys.h"
#include "services/core/metrics.h"
#include "services/core/state_store.h"
#include "tests/support/child_process.h"
#include "tests/support/redis_server.h"

namespace fedrx::core {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using OptString = std::optional<std::string>;

template <typename T>
T ValueOf(Result<T> result, const char* expr, const char* file, int line) {
  if (!result.ok()) {
    ADD_FAILURE_AT(file, line) << expr << " failed: " << result.status();
    return T{};
  }
  return std::move(result).value();
}
#define VALUE(expr) ValueOf((expr), #expr, __FILE__, __LINE__)
#define ASSERT_OK(expr)                                    \
  do {                                                     \
    const ::fedrx::core::Status status_ = (expr);          \
    ASSERT_TRUE(status_.ok()) << #expr << ": " << status_; \
  } while (0)

constexpr char kErrors[] = "fedrx_test_errors_total";

class RedisStateStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = fedrx::testing::RedisServer::Start(extra_args_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(server).value();
  }

  RedisOptions Options() const {
    RedisOptions options;
    options.host = server_->host();
    options.port = server_->port();
    return options;
  }

  std::unique_ptr<RedisStateStore> Connect(RedisOptions options) {
    auto store = RedisStateStore::Connect(std::move(options), &metrics_);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? std::move(store).value() : nullptr;
  }

  double Errors(const std::string& reason) const {
    return metrics_.Read(kErrors, {{"component", "redis"}, {"reason", reason}});
  }

  std::string Endpoint() const { return "127.0.0.1:" + std::to_string(server_->port()); }

  std::vector<std::string> extra_args_;
  Metrics metrics_{"test"};
  std::unique_ptr<fedrx::testing::RedisServer> server_;
};

// The lease ops set and reset the key's expiry in Redis (PTTL), and release
// removes it: read back with Redis's own commands.
TEST_F(RedisStateStoreTest, LeaseOpsSetAndResetTheKeysExpiryInRedis) {
  auto store = Connect(Options());
  ASSERT_NE(store, nullptr);
  const Key lease = TestKey("lease");
  ASSERT_TRUE(store->SetIfAbsentWithExpiry(lease, "a", std::chrono::seconds(10)).value());
  auto ttl = server_->Command({"PTTL", lease.str()});
  ASSERT_TRUE(ttl.ok()) << ttl.status();
  EXPECT_GT(std::stoll(*ttl), 0);
  EXPECT_LE(std::stoll(*ttl), 10000);
  ASSERT_TRUE(store->RenewIfEqual(lease, "a", std::chrono::seconds(100)).value());
  ttl = server_->Command({"PTTL", lease.str()});
  ASSERT_TRUE(ttl.ok()) << ttl.status();
  EXPECT_GT(std::stoll(*ttl), 10000);
  EXPECT_LE(std::stoll(*ttl), 100000);
  ASSERT_TRUE(store->DeleteIfEqual(lease, "a").value());
  auto exists = server_->Command({"EXISTS", lease.str()});
  ASSERT_TRUE(exists.ok());
  EXPECT_EQ(*exists, "0");
}

TEST_F(RedisStateStoreTest, ConnectToAPortWithoutRedisIsUnavailableNamingHostAndPort) {
  const int port = fedrx::testing::FreeTcpPort();
  ASSERT_NE(port, 0);
  RedisOptions options;
  options.port = port;
  auto store = RedisStateStore::Connect(options, &metrics_);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(store.status().where(), "127.0.0.1:" + std::to_string(port));
  EXPECT_EQ(Errors("connection"), 1);
}

TEST_F(RedisStateStoreTest, ConnectRejectsBadOptionsNamingTheField) {
  RedisOptions options = Options();
  options.port = 0;
  auto bad_port = RedisStateStore::Connect(options, &metrics_);
  EXPECT_EQ(bad_port.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad_port.status().where(), "RedisOptions.port");

  options = Options();
  options.command_timeout = std::chrono::milliseconds(0);
  auto bad_timeout = RedisStateStore::Connect(options, &metrics_);
  EXPECT_EQ(bad_timeout.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad_timeout.status().where(), "RedisOptions.command_timeout");
}

TEST_F(RedisStateStoreTest, StoppedRedisIsUnavailableUntilRestartedThenTheNextCallReconnects) {
  std::unique_ptr<RedisStateStore> store = Connect(Options());
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->endpoint(), Endpoint());
  ASSERT_OK(store->Set(TestKey("k"), "before"));

  ASSERT_OK(server_->Stop());
  Result<OptString> lost = store->Get(TestKey("k"));
  EXPECT_EQ(lost.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(lost.status().where(), Endpoint());
  EXPECT_EQ(Errors("connection"), 1);
  // Still down: the reconnect attempt fails the same way.
  Status still_down = store->Set(TestKey("k"), "during");
  EXPECT_EQ(still_down.code(), StatusCode::kUnavailable);
  EXPECT_EQ(still_down.where(), Endpoint());
  EXPECT_EQ(Errors("connection"), 2);

  ASSERT_OK(server_->Restart());
  ASSERT_OK(store->Set(TestKey("k"), "after"));
  EXPECT_EQ(VALUE(store->Get(TestKey("k"))), OptString("after"));
  EXPECT_EQ(Errors("connection"), 2);
}

TEST_F(RedisStateStoreTest, ApplyWhileRedisIsDownIsUnavailableAndWorksAfterRestart) {
  std::unique_ptr<RedisStateStore> store = Connect(Options());
  ASSERT_NE(store, nullptr);
  ASSERT_OK(server_->Stop());
  WriteBatch batch;
  batch.Set(TestKey("a"), "1").SetAdd(TestKey("s"), "m");
  Status down = store->Apply(batch);
  EXPECT_EQ(down.code(), StatusCode::kUnavailable);
  EXPECT_EQ(down.where(), Endpoint());
  EXPECT_EQ(Errors("connection"), 1);

  ASSERT_OK(server_->Restart());
  ASSERT_OK(store->Apply(batch));
  EXPECT_EQ(VALUE(store->Get(TestKey("a"))), OptString("1"));
}

// The server drops the connection (as on a Redis failover or a proxy reset)
// while data is stored: the failed batch writes nothing, earlier data stays,
// and the next call reconnects.
TEST_F(RedisStateStoreTest, DroppedConnectionFailsTheBatchAndKeepsEarlierData) {
  std::unique_ptr<RedisStateStore> store = Connect(Options());
  ASSERT_NE(store, nullptr);
  ASSERT_OK(store->Set(TestKey("a"), "keep"));
  ASSERT_OK(store->HashSet(TestKey("h"), {{"f", "1"}}));

  // One batch takes the checked path (WATCH first), one the plain MULTI/EXEC path.
  WriteBatch checked;
  checked.Set(TestKey("a"), "new").HashSet(TestKey("h"), {{"f", "2"}});
  WriteBatch plain;
  plain.Set(TestKey("a"), "new").Delete(TestKey("h"));
  for (const WriteBatch* batch : {&checked, &plain}) {
    Result<std::string> killed = server_->Command({"CLIENT", "KILL", "TYPE", "normal"});
    ASSERT_TRUE(killed.ok()) << killed.status();
    ASSERT_EQ(*killed, "1");  // the store's connection

    Status status = store->Apply(*batch);
    EXPECT_EQ(status.code(), StatusCode::kUnavailable) << status;
    EXPECT_EQ(status.where(), Endpoint());
    EXPECT_EQ(VALUE(store->Get(TestKey("a"))), OptString("keep"));
    EXPECT_EQ(VALUE(store->HashGetAll(TestKey("h"))), (FieldMap{{"f", "1"}}));
  }
  EXPECT_EQ(Errors("connection"), 2);
  ASSERT_OK(store->Apply(checked));
  EXPECT_EQ(VALUE(store->Get(TestKey("a"))), OptString("new"));
}

TEST_F(RedisStateStoreTest, UnansweredCommandTimesOutAsUnavailableAndCountsTimeout) {
  RedisOptions options = Options();
  options.command_timeout = std::chrono::milliseconds(200);
  std::unique_ptr<RedisStateStore> store = Connect(options);
  ASSERT_NE(store, nullptr);
  ASSERT_OK(store->Set(TestKey("k"), "v"));

  ASSERT_OK(server_->Pause());
  Result<OptString> stalled = store->Get(TestKey("k"));
  ASSERT_OK(server_->Resume());
  EXPECT_EQ(stalled.status().code(), StatusCode::kUnavailable);
  EXPECT_THAT(stalled.status().message(), HasSubstr("200 ms"));
  EXPECT_EQ(stalled.status().where(), Endpoint());
  EXPECT_EQ(Errors("timeout"), 1);
  EXPECT_EQ(Errors("connection"), 0);

  EXPECT_EQ(VALUE(store->Get(TestKey("k"))), OptString("v"));
}

// Writing to a socket Redis closed raises SIGPIPE, whose default action would
// kill this test process; the store must turn it into kUnavailable.
TEST_F(RedisStateStoreTest, WritingToADroppedConnectionIsUnavailableNotSigpipe) {
  std::unique_ptr<RedisStateStore> store = Connect(Options());
  ASSERT_NE(store, nullptr);
  ASSERT_OK(store->Set(TestKey("k"), "v"));
  ASSERT_OK(server_->Command({"CLIENT", "KILL", "TYPE", "normal"}).status());

  // Larger than the socket buffers, so that writing continues after the peer's reset.
  const std::string big(32u << 20, 'x');
  Status status = store->Set(TestKey("big"), big);
  EXPECT_EQ(status.code(), StatusCode::kUnavailable) << status;
  sigset_t pending;
  sigemptyset(&pending);
  sigpending(&pending);
  EXPECT_EQ(sigismember(&pending, SIGPIPE), 0);
  EXPECT_EQ(VALUE(store->Get(TestKey("k"))), OptString("v"));
}

TEST_F(RedisStateStoreTest, ErrorReplyKeepsTheConnectionAndCountsReply) {
  std::unique_ptr<RedisStateStore> store = Connect(Options());
  ASSERT_NE(store, nullptr);
  ASSERT_OK(store->HashSet(TestKey("h"), {{"f", "v"}}));
  Result<OptString> wrong = store->Get(TestKey("h"));
  EXPECT_EQ(wrong.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(Errors("reply"), 1);
  EXPECT_EQ(Errors("connection"), 0);
  // Still the same connection: Redis counts one client.
  Result<std::string> clients = server_->Command({"CLIENT", "KILL", "TYPE", "normal"});
  ASSERT_TRUE(clients.ok()) << clients.status();
  EXPECT_EQ(*clients, "1");
}

TEST_F(RedisStateStoreTest, FortyMegabyteValueRoundTrips) {
  std::unique_ptr<RedisStateStore> store = Connect(Options());
  ASSERT_NE(store, nullptr);
  std::string big(40u << 20, '\0');
  std::uint32_t x = 12345;
  for (char& c : big) {
    x = x * 1664525u + 1013904223u;  // every byte value, NULs included
    c = static_cast<char>(x >> 24);
  }
  ASSERT_OK(store->Set(TestKey("big"), big));
  OptString got = VALUE(store->Get(TestKey("big")));
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->size(), big.size());
  EXPECT_TRUE(*got == big);  // not EXPECT_EQ: a mismatch would print 40 MB

  big[0] ^= 1;
  WriteBatch batch;
  batch.Set(TestKey("big2"), big).Increment(TestKey("count"), 1);
  ASSERT_OK(store->Apply(batch));
  std::vector<OptString> many = VALUE(store->GetMany({TestKey("big2"), TestKey("count")}));
  ASSERT_EQ(many.size(), 2u);
  ASSERT_TRUE(many[0].has_value());
  EXPECT_TRUE(*many[0] == big);
  EXPECT_EQ(many[1], OptString("1"));
}

// A large value in a batch is staged in chunks outside the transaction and
// renamed into place inside it: the stored bytes are exact, an existing value
// is replaced, the staging key is gone afterwards, and a batch refused by its
// checks stages nothing.
TEST_F(RedisStateStoreTest, LargeBatchValueIsStagedThenRenamedWithoutLeftovers) {
  std::unique_ptr<RedisStateStore> store = Connect(Options());
  ASSERT_NE(store, nullptr);
  std::string big((9u << 20) + 123, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7 + (i >> 13));
  ASSERT_OK(store->Set(TestKey("model"), "old"));
  WriteBatch batch;
  batch.SetBorrowed(TestKey("model"), big).HashSet(TestKey("meta"), {{"v", "1"}});
  ASSERT_OK(store->Apply(batch));
  OptString got = VALUE(store->Get(TestKey("model")));
  ASSERT_TRUE(got.has_value());
  EXPECT_TRUE(*got == big);
  auto leftovers = server_->Command({"EXISTS", TestKey("model").str() + "~staging"});
  ASSERT_TRUE(leftovers.ok()) << leftovers.status();
  EXPECT_EQ(*leftovers, "0");

  ASSERT_OK(store->Set(TestKey("scalar"), "x"));
  WriteBatch refused;
  refused.SetBorrowed(TestKey("model2"), big).SetAdd(TestKey("scalar"), "m");  // WRONGTYPE
  EXPECT_EQ(store->Apply(refused).code(), StatusCode::kFailedPrecondition);
  EXPECT_FALSE(VALUE(store->Get(TestKey("model2"))).has_value());
  auto after = server_->Command({"EXISTS", TestKey("model2").str() + "~staging"});
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(*after, "0");
}

// Two stores race batches over the same keys. Each batch's checks and writes
// must hold together (WATCH aborts and retries when the other store gets in
// between), so the totals match the batches that succeeded, exactly.
TEST_F(RedisStateStoreTest, ConcurrentBatchesNeitherLoseNorSplitWrites) {
  constexpr int kBatchesPerThread = 300;
  std::atomic<int> applied{0};
  auto run = [&](int thread) {
    std::unique_ptr<RedisStateStore> store = Connect(Options());
    if (store == nullptr) return;
    for (int i = 0; i < kBatchesPerThread; ++i) {
      WriteBatch batch;
      batch.Increment(TestKey("a"), 1)
          .SetAdd(TestKey("members"), std::to_string(thread) + "-" + std::to_string(i))
          .Increment(TestKey("b"), 2);
      Status status = store->Apply(batch);
      if (status.ok()) {
        ++applied;
      } else {
        // Only contention may stop a batch here.
        EXPECT_EQ(status.code(), StatusCode::kUnavailable) << status;
      }
    }
  };
  std::thread first(run, 0);
  std::thread second(run, 1);
  first.join();
  second.join();

  std::unique_ptr<RedisStateStore> store = Connect(Options());
  ASSERT_NE(store, nullptr);
  EXPECT_GT(applied.load(), kBatchesPerThread);
  EXPECT_EQ(VALUE(store->Get(TestKey("a"))), OptString(std::to_string(applied.load())));
  EXPECT_EQ(VALUE(store->Get(TestKey("b"))), OptString(std::to_string(2 * applied.load())));
  EXPECT_EQ(VALUE(store->SetMembers(TestKey("members"))).size(),
            static_cast<std::size_t>(applied.load()));
  EXPECT_EQ(Errors("conflict") + applied.load(), 2 * kBatchesPerThread);
}

TEST_F(RedisStateStoreTest, SelectsTheConfiguredDatabase) {
  RedisOptions db1 = Options();
  db1.db = 1;
  std::unique_ptr<RedisStateStore> in_db1 = Connect(db1);
  std::unique_ptr<RedisStateStore> in_db0 = Connect(Options());
  ASSERT_NE(in_db1, nullptr);
  ASSERT_NE(in_db0, nullptr);
  ASSERT_OK(in_db1->Set(TestKey("k"), "db1"));
  EXPECT_EQ(VALUE(in_db0->Get(TestKey("k"))), std::nullopt);
  EXPECT_EQ(VALUE(in_db1->Get(TestKey("k"))), OptString("db1"));
  // A reconnect selects it again.
  ASSERT_OK(server_->Command({"CLIENT", "KILL", "TYPE", "normal"}).status());
  EXPECT_EQ(in_db1->Get(TestKey("k")).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(VALUE(in_db1->Get(TestKey("k"))), OptString("db1"));
}

class RedisStateStoreAuthTest : public RedisStateStoreTest {
 protected:
  void SetUp() override {
    extra_args_ = {"--requirepass", "s3cret-pass"};
    RedisStateStoreTest::SetUp();
  }
};

TEST_F(RedisStateStoreAuthTest, AuthenticatesOnEveryConnectAndNeverEchoesThePassword) {
  RedisOptions wrong = Options();
  wrong.password = "not-the-pass";
  auto refused = RedisStateStore::Connect(wrong, &metrics_);
  EXPECT_EQ(refused.status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(refused.status().where(), Endpoint());
  EXPECT_THAT(refused.status().ToString(), Not(HasSubstr("not-the-pass")));
  EXPECT_EQ(Errors("auth"), 1);

  RedisOptions none = Options();
  auto anonymous = RedisStateStore::Connect(none, &metrics_);
  EXPECT_EQ(anonymous.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(anonymous.status().message(), HasSubstr("NOAUTH"));

  RedisOptions right = Options();
  right.password = "s3cret-pass";
  std::unique_ptr<RedisStateStore> store = Connect(right);
  ASSERT_NE(store, nullptr);
  ASSERT_OK(store->Set(TestKey("k"), "v"));
  ASSERT_OK(server_->Restart());
  EXPECT_EQ(store->Get(TestKey("k")).status().code(), StatusCode::kUnavailable);
  ASSERT_OK(store->Set(TestKey("k"), "v2"));  // reconnected and authenticated
  EXPECT_EQ(VALUE(store->Get(TestKey("k"))), OptString("v2"));
}

}  // namespace
}  // namespace fedrx::core
