// domain::RedisOptionsAt, the Redis a serving process (and fedrx-reverse)
// names by its own `<name>.redis` key: host and port from "host:port" over
// the shared redis.* options, the redis.host/redis.port default, and each
// malformed address refused naming the key.
#include "services/domain/redis_address.h"

#include <gtest/gtest.h>

#include <string>

#include "services/core/config.h"

namespace fedrx::domain {
namespace {

core::Config ConfigOf(const std::string& text) {
  auto config = core::Config::Parse(text, "test.conf", {});
  EXPECT_TRUE(config.ok()) << config.status();
  return config.ok() ? *config : core::Config{};
}

TEST(RedisOptionsAtTest, TakesHostAndPortFromTheServiceKeyOverTheSharedOptions) {
  auto o = RedisOptionsAt(ConfigOf("tox.redis = 10.0.0.5:6390\n"
                                   "redis.unix_socket = /tmp/redis.sock\n"
                                   "redis.db = 3\n"
                                   "redis.password = secret\n"),
                          "tox.redis");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->host, "10.0.0.5");
  EXPECT_EQ(o->port, 6390);
  EXPECT_EQ(o->unix_socket, "") << "the service's own address wins over a socket";
  EXPECT_EQ(o->db, 3);
  EXPECT_EQ(o->password, "secret");
}

TEST(RedisOptionsAtTest, WithoutTheKeyUsesRedisHostAndPort) {
  auto o = RedisOptionsAt(ConfigOf("redis.host = redis-1\nredis.port = 7000\n"), "clinical.redis");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->host, "redis-1");
  EXPECT_EQ(o->port, 7000);
  auto defaults = RedisOptionsAt(ConfigOf(""), "clinical.redis");
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  EXPECT_EQ(defaults->host, "127.0.0.1");
  EXPECT_EQ(defaults->port, 6379);
}

TEST(RedisOptionsAtTest, RefusesAnAddressThatIsNotHostAndPortNamingTheKey) {
  for (const char* address : {"redis-1", ":6379", "redis-1:", "redis-1:63a9", "redis-1:0",
                              "redis-1:65536", "redis-1:123456", "redis-1:-1"}) {
    auto o =
        RedisOptionsAt(ConfigOf(std::string("reverse.redis = ") + address + "\n"), "reverse.redis");
    ASSERT_FALSE(o.ok()) << address;
    EXPECT_EQ(o.status().code(), core::StatusCode::kInvalidArgument) << address;
    EXPECT_EQ(o.status().where(), "reverse.redis") << address;
    EXPECT_NE(o.status().message().find(address), std::string::npos) << o.status();
  }
}

}  // namespace
}  // namespace fedrx::domain
