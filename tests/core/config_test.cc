#include "services/core/config.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <string>

namespace fedrx::core {
namespace {

using std::chrono::milliseconds;

Config MustParse(std::string_view text, const Environment& env = {}) {
  auto config = Config::Parse(text, "svc.conf", env);
  EXPECT_TRUE(config.ok()) << config.status();
  return std::move(config).value();
}

TEST(ConfigTest, ParsesKeyValueLinesSkippingCommentsAndBlankLines) {
  const Config config = MustParse(
      "# the coordinator\n"
      "\n"
      "bus.endpoint = tcp://127.0.0.1:5555\n"
      "   redis.url=redis://localhost:6379/0   \r\n"
      "  # indented comment\n"
      "empty.value =\n");
  EXPECT_EQ(*config.String("bus.endpoint"), "tcp://127.0.0.1:5555");
  EXPECT_EQ(*config.String("redis.url"), "redis://localhost:6379/0");
  EXPECT_EQ(*config.String("empty.value"), "");
  EXPECT_EQ(config.SourceOf("bus.endpoint"), "svc.conf:3");
  EXPECT_EQ(config.SourceOf("redis.url"), "svc.conf:4");
  EXPECT_FALSE(config.Has("indented"));
}

TEST(ConfigTest, HashInsideAValueIsPartOfTheValue) {
  const Config config = MustParse("secret.name = a#b\n");
  EXPECT_EQ(*config.String("secret.name"), "a#b");
}

TEST(ConfigTest, LineWithoutEqualsIsRejectedWithFileAndLine) {
  const auto config = Config::Parse("a = 1\nthis is not a setting\n", "svc.conf", {});
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(config.status().message(),
            "svc.conf:2: expected `key = value`, got \"this is not a setting\"");
}

TEST(ConfigTest, KeyWithUpperCaseOrDashIsRejected) {
  for (const char* text : {"Bus.endpoint = x\n", "bus-endpoint = x\n", " = x\n"}) {
    const auto config = Config::Parse(text, "svc.conf", {});
    ASSERT_FALSE(config.ok()) << text;
    EXPECT_EQ(config.status().message().rfind("svc.conf:1: ", 0), 0u) << config.status().message();
  }
}

TEST(ConfigTest, DuplicateKeyNamesBothLines) {
  const auto config = Config::Parse("a = 1\nb = 2\na = 3\n", "svc.conf", {});
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().message(), "svc.conf:3: duplicate key a (first set at svc.conf:1)");
}

TEST(ConfigTest, EnvNameUpperCasesAndReplacesDots) {
  EXPECT_EQ(Config::EnvName("bus.high_water_mark"), "FEDRX_BUS_HIGH_WATER_MARK");
  EXPECT_EQ(Config::EnvName("redis.url"), "FEDRX_REDIS_URL");
}

TEST(ConfigTest, EnvironmentOverridesTheFileAndIsNamedAsTheSource) {
  const Config config = MustParse("bus.endpoint = tcp://file:1\nother = x\n",
                                  {{"FEDRX_BUS_ENDPOINT", "tcp://env:2"}});
  EXPECT_EQ(*config.String("bus.endpoint"), "tcp://env:2");
  EXPECT_EQ(config.SourceOf("bus.endpoint"), "env FEDRX_BUS_ENDPOINT");
  EXPECT_EQ(*config.String("other"), "x");
}

TEST(ConfigTest, EnvironmentAloneCanSupplyAKey) {
  const Config config = MustParse("", {{"FEDRX_BUS_HIGH_WATER_MARK", "500"}});
  EXPECT_TRUE(config.Has("bus.high_water_mark"));
  EXPECT_EQ(*config.Int("bus.high_water_mark", 1, 1000), 500);
}

TEST(ConfigTest, NonFedrxEnvironmentVariablesAreIgnored) {
  const Config config = MustParse("", {{"HOME", "/root"}, {"FEDRX_", "x"}});
  EXPECT_FALSE(config.Has("home"));
  EXPECT_EQ(config.StringOr("home", "none"), "none");
}

TEST(ConfigTest, BadIntegerErrorSaysKeySourceValueAndRange) {
  const auto config = Config::Parse(
      "a = 1\nb = 2\nc = 3\nd = 4\ne = 5\n\nbus.high_water_mark = lots\n", "coordinator.conf", {});
  ASSERT_TRUE(config.ok()) << config.status();
  const auto value = config->Int("bus.high_water_mark", 1, 1000000);
  ASSERT_FALSE(value.ok());
  EXPECT_EQ(value.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(value.status().message(),
            "coordinator.conf:7: bus.high_water_mark = \"lots\": expected an integer in [1, "
            "1000000]");
}

TEST(ConfigTest, IntegerOutsideRangeIsRejected) {
  const Config config = MustParse("n = 0\nm = 1000001\nk = +42\nneg = -3\n");
  EXPECT_FALSE(config.Int("n", 1, 1000000).ok());
  EXPECT_FALSE(config.Int("m", 1, 1000000).ok());
  EXPECT_EQ(*config.Int("k", 1, 1000000), 42);
  EXPECT_EQ(*config.Int("neg", -10, 10), -3);
}

TEST(ConfigTest, BadEnvironmentValueNamesTheVariable) {
  const Config config = MustParse("", {{"FEDRX_WORKERS", "many"}});
  const auto value = config.IntOr("workers", 4, 1, 64);
  ASSERT_FALSE(value.ok());
  EXPECT_EQ(value.status().message(),
            "env FEDRX_WORKERS: workers = \"many\": expected an integer in [1, 64]");
}

TEST(ConfigTest, MissingRequiredKeyNamesTheKeyAndItsVariable) {
  const Config config = MustParse("");
  const auto value = config.String("bus.endpoint");
  ASSERT_FALSE(value.ok());
  EXPECT_EQ(value.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(value.status().message(),
            "missing required setting bus.endpoint: set it in the config file or in env "
            "FEDRX_BUS_ENDPOINT");
  EXPECT_FALSE(config.Int("bus.endpoint", 0, 1).ok());
}

TEST(ConfigTest, FallbacksApplyOnlyWhenKeyIsAbsent) {
  const Config config = MustParse("present = 7\n");
  EXPECT_EQ(*config.IntOr("absent", 3, 0, 10), 3);
  EXPECT_EQ(*config.IntOr("present", 3, 0, 10), 7);
  EXPECT_EQ(config.StringOr("absent", "fb"), "fb");
  EXPECT_EQ(*config.BoolOr("absent", true), true);
  EXPECT_EQ(*config.DurationOr("absent", milliseconds(9)), milliseconds(9));
  EXPECT_EQ(*config.BytesOr("absent", 11u), 11u);
}

TEST(ConfigTest, BoolAcceptsWordsAndDigitsInAnyCase) {
  const Config config =
      MustParse("a = true\nb = FALSE\nc = 1\nd = 0\ne = yes\nf = No\ng = maybe\n");
  EXPECT_EQ(*config.BoolOr("a", false), true);
  EXPECT_EQ(*config.BoolOr("b", true), false);
  EXPECT_EQ(*config.BoolOr("c", false), true);
  EXPECT_EQ(*config.BoolOr("d", true), false);
  EXPECT_EQ(*config.BoolOr("e", false), true);
  EXPECT_EQ(*config.BoolOr("f", true), false);
  const auto bad = config.BoolOr("g", true);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            "svc.conf:7: g = \"maybe\": expected true, false, 1, 0, yes or no");
}

TEST(ConfigTest, DurationAcceptsUnitsAndBareMilliseconds) {
  const Config config = MustParse("a = 250ms\nb = 5s\nc = 2m\nd = 1h\ne = 40\nf = 3 s\n");
  EXPECT_EQ(*config.DurationOr("a", {}), milliseconds(250));
  EXPECT_EQ(*config.DurationOr("b", {}), milliseconds(5000));
  EXPECT_EQ(*config.DurationOr("c", {}), milliseconds(120000));
  EXPECT_EQ(*config.DurationOr("d", {}), milliseconds(3600000));
  EXPECT_EQ(*config.DurationOr("e", {}), milliseconds(40));
  EXPECT_EQ(*config.DurationOr("f", {}), milliseconds(3000));
}

TEST(ConfigTest, DurationRejectsUnknownUnitsNegativesAndOverflow) {
  const Config config =
      MustParse("a = 5 parsecs\nb = -5s\nc = 1.5s\nd = 99999999999999999h\ne = s\n");
  for (const char* key : {"a", "b", "c", "d", "e"}) {
    EXPECT_FALSE(config.DurationOr(key, {}).ok()) << key;
  }
  EXPECT_EQ(config.DurationOr("a", {}).status().message(),
            "svc.conf:1: a = \"5 parsecs\": expected a duration like 250ms, 5s, 2m or 1h (a bare "
            "number is milliseconds)");
}

TEST(ConfigTest, BytesAcceptsBinaryUnits) {
  const Config config = MustParse("a = 64KiB\nb = 40MiB\nc = 2GiB\nd = 12345\ne = 7B\n");
  EXPECT_EQ(*config.BytesOr("a", 0), 64u * 1024);
  EXPECT_EQ(*config.BytesOr("b", 0), 40u * 1024 * 1024);
  EXPECT_EQ(*config.BytesOr("c", 0), 2ull * 1024 * 1024 * 1024);
  EXPECT_EQ(*config.BytesOr("d", 0), 12345u);
  EXPECT_EQ(*config.BytesOr("e", 0), 7u);
}

TEST(ConfigTest, BytesRejectsDecimalUnitsAndOverflow) {
  const Config config = MustParse("a = 40MB\nb = 99999999999999GiB\nc = lots\n");
  EXPECT_FALSE(config.BytesOr("a", 0).ok());
  EXPECT_EQ(config.BytesOr("b", 0).status().message(),
            "svc.conf:2: b = \"99999999999999GiB\": size is too large");
  EXPECT_FALSE(config.BytesOr("c", 0).ok());
}

TEST(ConfigTest, LoadReadsAFileAndNamesItInSources) {
  const std::string path = ::testing::TempDir() + "config_test_load.conf";
  {
    std::ofstream out(path);
    out << "# test\nbus.endpoint = tcp://x:1\n";
  }
  const auto config = Config::Load(path, {});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(*config->String("bus.endpoint"), "tcp://x:1");
  EXPECT_EQ(config->SourceOf("bus.endpoint"), path + ":2");
  std::remove(path.c_str());
}

TEST(ConfigTest, LoadOfMissingFileFailsNamingThePath) {
  const std::string path = ::testing::TempDir() + "config_test_does_not_exist.conf";
  const auto config = Config::Load(path, {});
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().message(),
            "cannot read config file " + path + ": No such file or directory");
}

TEST(ConfigTest, ProcessEnvironmentCollectsOnlyFedrxVariables) {
  ::setenv("FEDRX_CONFIG_TEST_SETTING", "on", 1);
  ::setenv("CONFIG_TEST_NOT_OURS", "off", 1);
  const Environment env = ProcessEnvironment();
  ::unsetenv("FEDRX_CONFIG_TEST_SETTING");
  ::unsetenv("CONFIG_TEST_NOT_OURS");
  ASSERT_EQ(env.count("FEDRX_CONFIG_TEST_SETTING"), 1u);
  EXPECT_EQ(env.at("FEDRX_CONFIG_TEST_SETTING"), "on");
  EXPECT_EQ(env.count("CONFIG_TEST_NOT_OURS"), 0u);
  for (const auto& [name, value] : env) EXPECT_EQ(name.rfind("FEDRX_", 0), 0u) << name;
}

}  // namespace
}  // namespace fedrx::core
