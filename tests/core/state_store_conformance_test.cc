// One behaviour suite that every StateStore passes: the in-memory fake, and
// RedisStateStore against a real redis-server on loopback.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "services/core/keys.h"
#include "services/core/redis_state_store.h"
#include "services/core/state_store.h"
#include "services/core/testing/fake_state_store.h"
#include "tests/support/redis_server.h"

namespace fedrx::core {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Strings = std::vector<std::string>;
using OptString = std::optional<std::string>;

// The value of a Result, or a recorded test failure (with the status) and T{}.
template <typename T>
T ValueOf(Result<T> result, const char* expr, const char* file, int line) {
  if (!result.ok()) {
    ADD_FAILURE_AT(file, line) << expr << " failed: " << result.status();
    return T{};
  }
  return std::move(result).value();
}
#define VALUE(expr) ValueOf((expr), #expr, __FILE__, __LINE__)

template <typename T>
Status StatusOf(const Result<T>& result) {
  return result.status();
}
inline Status StatusOf(const Status& status) { return status; }
#define ASSERT_OK(expr)                                    \
  do {                                                     \
    const ::fedrx::core::Status status_ = StatusOf(expr);  \
    ASSERT_TRUE(status_.ok()) << #expr << ": " << status_; \
  } while (0)

// Each environment owns what its stores run against for one test suite.
struct FakeEnv {
  static void SetUpSuite() {}
  static void TearDownSuite() {}
  static std::unique_ptr<StateStore> MakeStore(std::string* problem) {
    return std::make_unique<testing::FakeStateStore>();
  }
};

struct RedisEnv {
  static inline std::unique_ptr<fedrx::testing::RedisServer> server;
  static inline std::string start_error;

  static void SetUpSuite() {
    auto started = fedrx::testing::RedisServer::Start();
    if (started.ok()) {
      server = std::move(started).value();
    } else {
      start_error = started.status().ToString();
    }
  }
  static void TearDownSuite() { server.reset(); }
  static std::unique_ptr<StateStore> MakeStore(std::string* problem) {
    if (server == nullptr) {
      *problem = "redis-server did not start: " + start_error;
      return nullptr;
    }
    // Tests share the server; each starts from an empty database.
    Result<std::string> flushed = server->Command({"FLUSHALL"});
    if (!flushed.ok()) {
      *problem = "FLUSHALL failed: " + flushed.status().ToString();
      return nullptr;
    }
    RedisOptions options;
    options.host = server->host();
    options.port = server->port();
    auto store = RedisStateStore::Connect(options, nullptr);
    if (!store.ok()) {
      *problem = store.status().ToString();
      return nullptr;
    }
    return std::move(store).value();
  }
};

template <typename Env>
class StateStoreConformanceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { Env::SetUpSuite(); }
  static void TearDownTestSuite() { Env::TearDownSuite(); }
  void SetUp() override {
    std::string problem;
    store_ = Env::MakeStore(&problem);
    ASSERT_NE(store_, nullptr) << problem;
  }
  StateStore& store() { return *store_; }

 private:
  std::unique_ptr<StateStore> store_;
};

struct EnvNames {
  template <typename T>
  static std::string GetName(int) {
    if constexpr (std::is_same_v<T, FakeEnv>) return "Fake";
    return "Redis";
  }
};

using Envs = ::testing::Types<FakeEnv, RedisEnv>;
TYPED_TEST_SUITE(StateStoreConformanceTest, Envs, EnvNames);

const std::string kBinary("a\0b\r\n\xff\x00z", 8);

TYPED_TEST(StateStoreConformanceTest, PingAnswers) { ASSERT_OK(this->store().Ping()); }

TYPED_TEST(StateStoreConformanceTest, GetOfAnAbsentKeyIsNullopt) {
  EXPECT_EQ(VALUE(this->store().Get(TestKey("absent"))), std::nullopt);
}

TYPED_TEST(StateStoreConformanceTest, SetThenGetRoundTripsBinaryValues) {
  StateStore& store = this->store();
  ASSERT_OK(store.Set(TestKey("bin"), kBinary));
  const OptString got = VALUE(store.Get(TestKey("bin")));
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->size(), 8u);
  EXPECT_EQ(*got, kBinary);
  // The empty string is a value, not absence.
  ASSERT_OK(store.Set(TestKey("empty"), ""));
  EXPECT_EQ(VALUE(store.Get(TestKey("empty"))), OptString(""));
}

TYPED_TEST(StateStoreConformanceTest, SetReplacesAValueOfAnyType) {
  StateStore& store = this->store();
  ASSERT_OK(store.HashSet(TestKey("k"), {{"f", "v"}}));
  ASSERT_OK(store.Set(TestKey("k"), "now a string"));
  EXPECT_EQ(VALUE(store.Get(TestKey("k"))), OptString("now a string"));
}

TYPED_TEST(StateStoreConformanceTest, SetIfAbsentSetsOnlyTheFirstTime) {
  StateStore& store = this->store();
  EXPECT_TRUE(VALUE(store.SetIfAbsent(TestKey("once"), "first")));
  EXPECT_FALSE(VALUE(store.SetIfAbsent(TestKey("once"), "second")));
  EXPECT_EQ(VALUE(store.Get(TestKey("once"))), OptString("first"));
}

// Leases: SET NX PX, then compare-and-set renewal and release by the holder only.
TYPED_TEST(StateStoreConformanceTest, LeaseIsTakenOnceAndRenewedOrReleasedOnlyByItsHolder) {
  StateStore& store = this->store();
  const Key lease = TestKey("lease");
  EXPECT_TRUE(VALUE(store.SetIfAbsentWithExpiry(lease, "replica-a", std::chrono::seconds(30))));
  EXPECT_FALSE(VALUE(store.SetIfAbsentWithExpiry(lease, "replica-b", std::chrono::seconds(30))));
  EXPECT_EQ(VALUE(store.Get(lease)), OptString("replica-a"));
  EXPECT_TRUE(VALUE(store.RenewIfEqual(lease, "replica-a", std::chrono::seconds(30))));
  EXPECT_FALSE(VALUE(store.RenewIfEqual(lease, "replica-b", std::chrono::seconds(30))));
  EXPECT_FALSE(VALUE(store.DeleteIfEqual(lease, "replica-b")));
  EXPECT_EQ(VALUE(store.Get(lease)), OptString("replica-a"));
  EXPECT_TRUE(VALUE(store.DeleteIfEqual(lease, "replica-a")));
  EXPECT_EQ(VALUE(store.Get(lease)), std::nullopt);
  // Gone: neither renewable nor deletable, and free for the next holder.
  EXPECT_FALSE(VALUE(store.RenewIfEqual(lease, "replica-a", std::chrono::seconds(30))));
  EXPECT_FALSE(VALUE(store.DeleteIfEqual(lease, "replica-a")));
  EXPECT_TRUE(VALUE(store.SetIfAbsentWithExpiry(lease, "replica-b", std::chrono::seconds(30))));
}

TYPED_TEST(StateStoreConformanceTest, LeaseOpsCompareUnequalOnKeysOfOtherTypesAndChangeNothing) {
  StateStore& store = this->store();
  const Key hash = TestKey("lease-hash");
  ASSERT_OK(store.HashSet(hash, {{"f", "replica-a"}}));
  EXPECT_FALSE(VALUE(store.SetIfAbsentWithExpiry(hash, "replica-a", std::chrono::seconds(30))));
  EXPECT_FALSE(VALUE(store.RenewIfEqual(hash, "replica-a", std::chrono::seconds(30))));
  EXPECT_FALSE(VALUE(store.DeleteIfEqual(hash, "replica-a")));
  EXPECT_EQ(VALUE(store.HashGetAll(hash)), (FieldMap{{"f", "replica-a"}}));
}

TYPED_TEST(StateStoreConformanceTest, LeaseWithANonPositiveTtlIsInvalidArgumentAndSetsNothing) {
  StateStore& store = this->store();
  const Key lease = TestKey("lease-ttl");
  auto taken = store.SetIfAbsentWithExpiry(lease, "replica-a", std::chrono::milliseconds(0));
  ASSERT_FALSE(taken.ok());
  EXPECT_EQ(taken.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(VALUE(store.Get(lease)), std::nullopt);
  ASSERT_OK(store.Set(lease, "replica-a"));
  auto renewed = store.RenewIfEqual(lease, "replica-a", std::chrono::milliseconds(-5));
  ASSERT_FALSE(renewed.ok());
  EXPECT_EQ(renewed.status().code(), StatusCode::kInvalidArgument);
}

TYPED_TEST(StateStoreConformanceTest, DeleteReportsWhetherTheKeyExisted) {
  StateStore& store = this->store();
  EXPECT_FALSE(VALUE(store.Delete(TestKey("d"))));
  ASSERT_OK(store.Set(TestKey("d"), "v"));
  ASSERT_OK(store.HashSet(TestKey("dh"), {{"f", "v"}}));
  EXPECT_TRUE(VALUE(store.Delete(TestKey("d"))));
  EXPECT_TRUE(VALUE(store.Delete(TestKey("dh"))));
  EXPECT_EQ(VALUE(store.Get(TestKey("d"))), std::nullopt);
  EXPECT_TRUE(VALUE(store.HashGetAll(TestKey("dh"))).empty());
  EXPECT_FALSE(VALUE(store.Delete(TestKey("d"))));
}

TYPED_TEST(StateStoreConformanceTest, IncrementStartsFromZeroAndAccumulates) {
  StateStore& store = this->store();
  EXPECT_EQ(VALUE(store.Increment(TestKey("n"), 5)), 5);
  EXPECT_EQ(VALUE(store.Increment(TestKey("n"), -7)), -2);
  EXPECT_EQ(VALUE(store.Get(TestKey("n"))), OptString("-2"));
  ASSERT_OK(store.Set(TestKey("m"), "40"));
  EXPECT_EQ(VALUE(store.Increment(TestKey("m"), 2)), 42);
}

TYPED_TEST(StateStoreConformanceTest, IncrementOfANonIntegerFailsAndKeepsTheValue) {
  StateStore& store = this->store();
  for (const std::string value : {"12abc", "007", "-0", " 1", "", "99999999999999999999"}) {
    ASSERT_OK(store.Set(TestKey("n"), value));
    Result<std::int64_t> result = store.Increment(TestKey("n"), 1);
    EXPECT_EQ(result.status().code(), StatusCode::kFailedPrecondition) << "value " << value;
    EXPECT_THAT(result.status().message(), HasSubstr("not an integer"));
    EXPECT_EQ(result.status().where(), TestKey("n").str());
    EXPECT_EQ(VALUE(store.Get(TestKey("n"))), OptString(value));
  }
}

TYPED_TEST(StateStoreConformanceTest, IncrementOverflowFailsAndKeepsTheValue) {
  StateStore& store = this->store();
  const std::int64_t max = std::numeric_limits<std::int64_t>::max();
  EXPECT_EQ(VALUE(store.Increment(TestKey("n"), max)), max);
  Result<std::int64_t> result = store.Increment(TestKey("n"), 1);
  EXPECT_EQ(result.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(result.status().message(), HasSubstr("overflow"));
  EXPECT_EQ(VALUE(store.Get(TestKey("n"))), OptString(std::to_string(max)));
}

TYPED_TEST(StateStoreConformanceTest, HashSetMergesFieldsAndHashGetReadsThem) {
  StateStore& store = this->store();
  ASSERT_OK(store.HashSet(TestKey("h"), {{"a", "1"}, {"b", kBinary}}));
  ASSERT_OK(store.HashSet(TestKey("h"), {{"b", "2"}, {"c", kBinary}}));
  EXPECT_EQ(VALUE(store.HashGetAll(TestKey("h"))),
            (FieldMap{{"a", "1"}, {"b", "2"}, {"c", kBinary}}));
  EXPECT_EQ(VALUE(store.HashGet(TestKey("h"), "c")), OptString(kBinary));
  EXPECT_EQ(VALUE(store.HashGet(TestKey("h"), "missing")), std::nullopt);
  EXPECT_EQ(VALUE(store.HashGet(TestKey("absent"), "a")), std::nullopt);
  EXPECT_TRUE(VALUE(store.HashGetAll(TestKey("absent"))).empty());
}

TYPED_TEST(StateStoreConformanceTest, HashSetWithNoFieldsIsInvalidArgument) {
  StateStore& store = this->store();
  Status status = store.HashSet(TestKey("h"), {});
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(status.where(), TestKey("h").str());
  EXPECT_FALSE(VALUE(store.Delete(TestKey("h"))));
}

TYPED_TEST(StateStoreConformanceTest, SetMembersAreSortedByUnsignedBytes) {
  StateStore& store = this->store();
  const Key key = TestKey("s");
  const std::vector<std::string> members = {std::string("b"),      std::string("a"),
                                            std::string("B"),      std::string("\xff"),
                                            std::string("a\0", 2), std::string()};
  for (const std::string& member : members) {
    EXPECT_TRUE(VALUE(store.SetAdd(key, member)));
  }
  EXPECT_FALSE(VALUE(store.SetAdd(key, "a")));
  EXPECT_THAT(VALUE(store.SetMembers(key)),
              ElementsAre("", "B", "a", std::string("a\0", 2), "b", "\xff"));
  EXPECT_TRUE(VALUE(store.SetMembers(TestKey("absent"))).empty());
}

TYPED_TEST(StateStoreConformanceTest, RemovingTheLastMemberRemovesTheSet) {
  StateStore& store = this->store();
  const Key key = TestKey("s");
  EXPECT_TRUE(VALUE(store.SetAdd(key, "x")));
  EXPECT_FALSE(VALUE(store.SetRemove(key, "y")));
  EXPECT_TRUE(VALUE(store.SetRemove(key, "x")));
  EXPECT_FALSE(VALUE(store.SetRemove(key, "x")));
  EXPECT_TRUE(VALUE(store.SetMembers(key)).empty());
  // Gone, not an empty set: another type may take the key.
  EXPECT_FALSE(VALUE(store.Delete(key)));
  ASSERT_OK(store.HashSet(key, {{"f", "v"}}));
}

TYPED_TEST(StateStoreConformanceTest, WrongTypeIsFailedPreconditionAndChangesNothing) {
  StateStore& store = this->store();
  const Key str = TestKey("str"), hash = TestKey("hash"), set = TestKey("set");
  ASSERT_OK(store.Set(str, "v"));
  ASSERT_OK(store.HashSet(hash, {{"f", "v"}}));
  ASSERT_TRUE(VALUE(store.SetAdd(set, "m")));

  auto expect_wrong_type = [](const Status& status, const Key& key, const char* what) {
    EXPECT_EQ(status.code(), StatusCode::kFailedPrecondition) << what << ": " << status;
    EXPECT_THAT(status.message(), HasSubstr("WRONGTYPE")) << what;
    EXPECT_EQ(status.where(), key.str()) << what;
  };
  expect_wrong_type(store.Get(hash).status(), hash, "Get(hash)");
  expect_wrong_type(store.Get(set).status(), set, "Get(set)");
  expect_wrong_type(store.HashSet(str, {{"f", "x"}}), str, "HashSet(string)");
  expect_wrong_type(store.HashSet(set, {{"f", "x"}}), set, "HashSet(set)");
  expect_wrong_type(store.HashGet(str, "f").status(), str, "HashGet(string)");
  expect_wrong_type(store.HashGetAll(set).status(), set, "HashGetAll(set)");
  expect_wrong_type(store.SetAdd(hash, "x").status(), hash, "SetAdd(hash)");
  expect_wrong_type(store.SetRemove(str, "v").status(), str, "SetRemove(string)");
  expect_wrong_type(store.SetMembers(hash).status(), hash, "SetMembers(hash)");
  expect_wrong_type(store.Increment(hash, 1).status(), hash, "Increment(hash)");
  expect_wrong_type(store.Increment(set, 1).status(), set, "Increment(set)");

  EXPECT_EQ(VALUE(store.Get(str)), OptString("v"));
  EXPECT_EQ(VALUE(store.HashGetAll(hash)), (FieldMap{{"f", "v"}}));
  EXPECT_THAT(VALUE(store.SetMembers(set)), ElementsAre("m"));
}

TYPED_TEST(StateStoreConformanceTest, GetManyKeepsOrderAndReportsAbsentKeys) {
  StateStore& store = this->store();
  ASSERT_OK(store.Set(TestKey("a"), "va"));
  ASSERT_OK(store.Set(TestKey("b"), kBinary));
  ASSERT_OK(store.HashSet(TestKey("h"), {{"f", "v"}}));
  EXPECT_THAT(VALUE(store.GetMany({TestKey("b"), TestKey("missing"), TestKey("a"), TestKey("b")})),
              ElementsAre(OptString(kBinary), std::nullopt, OptString("va"), OptString(kBinary)));
  // MGET semantics: a key of another type reads as absent.
  EXPECT_THAT(VALUE(store.GetMany({TestKey("h"), TestKey("a")})),
              ElementsAre(std::nullopt, OptString("va")));
  EXPECT_TRUE(VALUE(store.GetMany({})).empty());
}

TYPED_TEST(StateStoreConformanceTest, HashGetAllManyKeepsOrderAndGivesEmptyMapsForAbsentKeys) {
  StateStore& store = this->store();
  ASSERT_OK(store.HashSet(TestKey("h1"), {{"a", "1"}}));
  ASSERT_OK(store.HashSet(TestKey("h2"), {{"b", kBinary}, {"c", "3"}}));
  EXPECT_THAT(VALUE(store.HashGetAllMany({TestKey("h2"), TestKey("missing"), TestKey("h1")})),
              ElementsAre(FieldMap{{"b", kBinary}, {"c", "3"}}, FieldMap{}, FieldMap{{"a", "1"}}));
  EXPECT_TRUE(VALUE(store.HashGetAllMany({})).empty());

  ASSERT_OK(store.Set(TestKey("str"), "v"));
  Result<std::vector<FieldMap>> wrong = store.HashGetAllMany({TestKey("h1"), TestKey("str")});
  EXPECT_EQ(wrong.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(wrong.status().where(), TestKey("str").str());
}

TYPED_TEST(StateStoreConformanceTest, ApplyRunsEveryKindOfWrite) {
  StateStore& store = this->store();
  ASSERT_OK(store.Set(TestKey("gone"), "x"));
  ASSERT_TRUE(VALUE(store.SetAdd(TestKey("s"), "old")));
  WriteBatch batch;
  batch.Set(TestKey("a"), kBinary)
      .HashSet(TestKey("h"), {{"f", "v"}, {"g", kBinary}})
      .SetAdd(TestKey("s"), "new")
      .SetRemove(TestKey("s"), "old")
      .Increment(TestKey("c"), 3)
      .Delete(TestKey("gone"));
  ASSERT_OK(store.Apply(batch));
  EXPECT_EQ(VALUE(store.Get(TestKey("a"))), OptString(kBinary));
  EXPECT_EQ(VALUE(store.HashGetAll(TestKey("h"))), (FieldMap{{"f", "v"}, {"g", kBinary}}));
  EXPECT_THAT(VALUE(store.SetMembers(TestKey("s"))), ElementsAre("new"));
  EXPECT_EQ(VALUE(store.Get(TestKey("c"))), OptString("3"));
  EXPECT_EQ(VALUE(store.Get(TestKey("gone"))), std::nullopt);
}

TYPED_TEST(StateStoreConformanceTest, ApplyEntriesSeeEarlierEntriesOfTheSameBatch) {
  StateStore& store = this->store();
  ASSERT_OK(store.Set(TestKey("g"), "a string"));
  ASSERT_TRUE(VALUE(store.SetAdd(TestKey("t"), "x")));
  WriteBatch batch;
  batch.Set(TestKey("n"), "5")
      .Increment(TestKey("n"), 2)
      .SetRemove(TestKey("t"), "x")         // empties, so removes, the set
      .HashSet(TestKey("t"), {{"f", "v"}})  // hence no WRONGTYPE here
      .Delete(TestKey("g"))
      .SetAdd(TestKey("g"), "m");
  ASSERT_OK(store.Apply(batch));
  EXPECT_EQ(VALUE(store.Get(TestKey("n"))), OptString("7"));
  EXPECT_EQ(VALUE(store.HashGetAll(TestKey("t"))), (FieldMap{{"f", "v"}}));
  EXPECT_THAT(VALUE(store.SetMembers(TestKey("g"))), ElementsAre("m"));
}

TYPED_TEST(StateStoreConformanceTest, ApplyWithAWrongTypeEntryWritesNothing) {
  StateStore& store = this->store();
  ASSERT_OK(store.Set(TestKey("a"), "old"));
  ASSERT_OK(store.Set(TestKey("kept"), "keep"));
  ASSERT_OK(store.HashSet(TestKey("h"), {{"f", "1"}}));
  ASSERT_TRUE(VALUE(store.SetAdd(TestKey("s"), "m")));
  WriteBatch batch;
  batch.Set(TestKey("a"), "new")
      .Increment(TestKey("c"), 1)
      .HashSet(TestKey("h"), {{"f", "2"}, {"g", "3"}})
      .SetAdd(TestKey("s"), "m2")
      .Delete(TestKey("kept"))
      .SetAdd(TestKey("h"), "x");  // h is a hash: WRONGTYPE, after every other write
  Status status = store.Apply(batch);
  EXPECT_EQ(status.code(), StatusCode::kFailedPrecondition) << status;
  EXPECT_THAT(status.message(), HasSubstr("WRONGTYPE"));
  EXPECT_THAT(status.message(), HasSubstr("batch entry 5"));
  EXPECT_EQ(status.where(), TestKey("h").str());

  EXPECT_EQ(VALUE(store.Get(TestKey("a"))), OptString("old"));
  EXPECT_EQ(VALUE(store.Get(TestKey("c"))), std::nullopt);
  EXPECT_EQ(VALUE(store.HashGetAll(TestKey("h"))), (FieldMap{{"f", "1"}}));
  EXPECT_THAT(VALUE(store.SetMembers(TestKey("s"))), ElementsAre("m"));
  EXPECT_EQ(VALUE(store.Get(TestKey("kept"))), OptString("keep"));
}

TYPED_TEST(StateStoreConformanceTest, ApplyFailsWhenAnEarlierEntryGivesALaterOneTheWrongType) {
  StateStore& store = this->store();
  WriteBatch batch;
  batch.Set(TestKey("other"), "y").Set(TestKey("k"), "x").HashSet(TestKey("k"), {{"f", "v"}});
  Status status = store.Apply(batch);
  EXPECT_EQ(status.code(), StatusCode::kFailedPrecondition) << status;
  EXPECT_THAT(status.message(), HasSubstr("WRONGTYPE"));
  EXPECT_EQ(VALUE(store.GetMany({TestKey("other"), TestKey("k")})),
            (std::vector<OptString>{std::nullopt, std::nullopt}));
}

TYPED_TEST(StateStoreConformanceTest, ApplyWithANonIntegerIncrementWritesNothing) {
  StateStore& store = this->store();
  ASSERT_OK(store.Set(TestKey("n"), "abc"));
  WriteBatch batch;
  batch.Set(TestKey("a"), "1").Increment(TestKey("n"), 1);
  Status status = store.Apply(batch);
  EXPECT_EQ(status.code(), StatusCode::kFailedPrecondition) << status;
  EXPECT_THAT(status.message(), HasSubstr("not an integer"));
  EXPECT_EQ(VALUE(store.Get(TestKey("a"))), std::nullopt);
  EXPECT_EQ(VALUE(store.Get(TestKey("n"))), OptString("abc"));
}

TYPED_TEST(StateStoreConformanceTest, ApplyWithAnOverflowingIncrementWritesNothing) {
  StateStore& store = this->store();
  WriteBatch batch;
  batch.Set(TestKey("a"), "1")
      .Increment(TestKey("c"), std::numeric_limits<std::int64_t>::max())
      .Increment(TestKey("c"), 1);
  Status status = store.Apply(batch);
  EXPECT_EQ(status.code(), StatusCode::kFailedPrecondition) << status;
  EXPECT_THAT(status.message(), HasSubstr("overflow"));
  EXPECT_EQ(VALUE(store.GetMany({TestKey("a"), TestKey("c")})),
            (std::vector<OptString>{std::nullopt, std::nullopt}));
}

TYPED_TEST(StateStoreConformanceTest, ApplyRejectsAHashSetWithNoFieldsAndWritesNothing) {
  StateStore& store = this->store();
  WriteBatch batch;
  batch.Set(TestKey("a"), "1").HashSet(TestKey("h"), {});
  Status status = store.Apply(batch);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << status;
  EXPECT_EQ(status.where(), TestKey("h").str());
  EXPECT_EQ(VALUE(store.Get(TestKey("a"))), std::nullopt);
}

TYPED_TEST(StateStoreConformanceTest, ApplyOfOnlySetsAndDeletesReplacesAnyType) {
  StateStore& store = this->store();
  ASSERT_OK(store.HashSet(TestKey("h"), {{"f", "v"}}));
  ASSERT_TRUE(VALUE(store.SetAdd(TestKey("s"), "m")));
  WriteBatch batch;
  batch.Set(TestKey("h"), kBinary).Delete(TestKey("s")).Delete(TestKey("absent"));
  ASSERT_OK(store.Apply(batch));
  EXPECT_EQ(VALUE(store.Get(TestKey("h"))), OptString(kBinary));
  EXPECT_TRUE(VALUE(store.SetMembers(TestKey("s"))).empty());
}

TYPED_TEST(StateStoreConformanceTest, ApplyOfAnEmptyBatchSucceeds) {
  ASSERT_OK(this->store().Apply(WriteBatch()));
}

TYPED_TEST(StateStoreConformanceTest, StreamAppendGivesIncreasingIdsAndRangeReadsInOrder) {
  StateStore& store = this->store();
  const Key stream = TestKey("stream");
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    ids.push_back(VALUE(store.StreamAppend(stream, {{"n", std::to_string(i)}, {"b", kBinary}})));
  }
  for (std::size_t i = 1; i < ids.size(); ++i) {
    ASSERT_TRUE(ParseStreamId(ids[i]).has_value()) << ids[i];
    EXPECT_LT(*ParseStreamId(ids[i - 1]), *ParseStreamId(ids[i]));
  }
  const std::vector<StreamEntry> all = VALUE(store.StreamRange(stream));
  ASSERT_EQ(all.size(), 5u);
  for (std::size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(all[i].id, ids[i]);
    EXPECT_EQ(all[i].fields, (FieldMap{{"n", std::to_string(i)}, {"b", kBinary}}));
  }
}

TYPED_TEST(StateStoreConformanceTest, StreamAppendManyAppendsInOrderInOneCall) {
  StateStore& store = this->store();
  const Key stream = TestKey("stream-many");
  VALUE(store.StreamAppend(stream, {{"n", "first"}}));
  std::vector<FieldMap> entries;
  for (int i = 0; i < 50; ++i) entries.push_back({{"n", std::to_string(i)}, {"b", kBinary}});
  const std::vector<std::string> ids = VALUE(store.StreamAppendMany(stream, entries));
  ASSERT_EQ(ids.size(), 50u);
  const std::vector<StreamEntry> all = VALUE(store.StreamRange(stream));
  ASSERT_EQ(all.size(), 51u);
  for (std::size_t i = 0; i < ids.size(); ++i) {
    EXPECT_EQ(all[i + 1].id, ids[i]);
    EXPECT_EQ(all[i + 1].fields, entries[i]);
  }
  EXPECT_TRUE(VALUE(store.StreamAppendMany(stream, {})).empty());
  Status empty_entry = store.StreamAppendMany(stream, {{{"n", "x"}}, {}}).status();
  EXPECT_EQ(empty_entry.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(VALUE(store.StreamRange(stream)).size(), 51u);
}

TYPED_TEST(StateStoreConformanceTest, StreamRangeStartsAtFromIdInclusiveAndStopsAtCount) {
  StateStore& store = this->store();
  const Key stream = TestKey("stream");
  std::vector<std::string> ids;
  for (int i = 0; i < 6; ++i) {
    ids.push_back(VALUE(store.StreamAppend(stream, {{"n", std::to_string(i)}})));
  }
  const std::vector<StreamEntry> tail = VALUE(store.StreamRange(stream, ids[3]));
  ASSERT_EQ(tail.size(), 3u);
  EXPECT_EQ(tail[0].id, ids[3]);
  EXPECT_EQ(tail[2].fields, (FieldMap{{"n", "5"}}));
  const std::vector<StreamEntry> page = VALUE(store.StreamRange(stream, ids[1], 2));
  ASSERT_EQ(page.size(), 2u);
  EXPECT_EQ(page[0].id, ids[1]);
  EXPECT_EQ(page[1].id, ids[2]);
  EXPECT_EQ(VALUE(store.StreamRange(stream, "-", 1)).size(), 1u);
  // "<ms>" alone means "<ms>-0": every entry of a later millisecond.
  EXPECT_EQ(VALUE(store.StreamRange(stream, "0")).size(), 6u);
}

TYPED_TEST(StateStoreConformanceTest, StreamLastIsTheNewestEntry) {
  StateStore& store = this->store();
  const Key stream = TestKey("stream");
  EXPECT_EQ(VALUE(store.StreamLast(stream)), std::nullopt);
  VALUE(store.StreamAppend(stream, {{"n", "1"}}));
  const std::string last = VALUE(store.StreamAppend(stream, {{"n", "2"}, {"x", ""}}));
  EXPECT_EQ(VALUE(store.StreamLast(stream)),
            std::optional<StreamEntry>(StreamEntry{last, {{"n", "2"}, {"x", ""}}}));
}

TYPED_TEST(StateStoreConformanceTest, AnAbsentStreamHasNoEntries) {
  EXPECT_TRUE(VALUE(this->store().StreamRange(TestKey("absent"))).empty());
}

TYPED_TEST(StateStoreConformanceTest, StreamInputErrorsAreInvalidArgumentAndWriteNothing) {
  StateStore& store = this->store();
  const Key stream = TestKey("stream");
  Result<std::string> empty = store.StreamAppend(stream, {});
  EXPECT_EQ(empty.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(empty.status().where(), stream.str());
  EXPECT_EQ(VALUE(store.StreamLast(stream)), std::nullopt);
  for (const char* bad : {"", "x", "1-", "-1", "1-2-3", "+", "1-x"}) {
    Result<std::vector<StreamEntry>> range = store.StreamRange(stream, bad);
    EXPECT_EQ(range.status().code(), StatusCode::kInvalidArgument) << "from " << bad;
  }
}

TYPED_TEST(StateStoreConformanceTest, StreamsAndOtherTypesRefuseEachOther) {
  StateStore& store = this->store();
  const Key str = TestKey("str"), stream = TestKey("stream");
  ASSERT_OK(store.Set(str, "v"));
  VALUE(store.StreamAppend(stream, {{"f", "v"}}));
  EXPECT_EQ(store.StreamAppend(str, {{"f", "v"}}).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(store.StreamRange(str).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(store.StreamLast(str).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(store.HashGetAll(stream).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(store.Get(stream).status().code(), StatusCode::kFailedPrecondition);
  WriteBatch batch;
  batch.Set(TestKey("a"), "1").SetAdd(stream, "m");
  EXPECT_EQ(store.Apply(batch).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(VALUE(store.Get(TestKey("a"))), std::nullopt);
  EXPECT_EQ(VALUE(store.StreamRange(stream)).size(), 1u);
  EXPECT_EQ(VALUE(store.Get(str)), OptString("v"));
}

}  // namespace
}  // namespace fedrx::core
