// The real-process harness (tests/support) that integration tests rely on.
#include "tests/support/child_process.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <string>

namespace fedrx::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::HasSubstr;

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

TEST(ChildProcessTest, FreeTcpPortGivesAPort) {
  const int port = FreeTcpPort();
  EXPECT_GT(port, 0);
  EXPECT_LT(port, 65536);
}

TEST(ChildProcessTest, TempDirIsRemovedWithItsContents) {
  std::string path;
  {
    TempDir dir;
    path = dir.path();
    ASSERT_FALSE(path.empty());
    ASSERT_EQ(mkdir((path + "/sub").c_str(), 0700), 0);
    EXPECT_TRUE(Exists(path + "/sub"));
  }
  EXPECT_FALSE(Exists(path));
}

TEST(ChildProcessTest, RunsWithArgumentsAndExtraEnvironmentAndLogsOutput) {
  auto child = ChildProcess::Spawn("env", {}, {{"FEDRX_HARNESS_PROBE", "a value"}});
  ASSERT_TRUE(child.ok()) << child.status();
  core::Result<int> code = (*child)->Wait(seconds(10));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0);
  EXPECT_THAT((*child)->Log(), HasSubstr("FEDRX_HARNESS_PROBE=a value\n"));
  EXPECT_THAT((*child)->Log(), HasSubstr("PATH="));  // this process's environment too

  auto echo = ChildProcess::Spawn("/bin/echo", {"two words", ""});
  ASSERT_TRUE(echo.ok()) << echo.status();
  ASSERT_TRUE((*echo)->Wait(seconds(10)).ok());
  EXPECT_EQ((*echo)->Log(), "two words \n");
}

TEST(ChildProcessTest, WaitReportsExitCodesAndSignals) {
  auto failing = ChildProcess::Spawn("false", {});
  ASSERT_TRUE(failing.ok()) << failing.status();
  EXPECT_EQ(*(*failing)->Wait(seconds(10)), 1);
  EXPECT_FALSE((*failing)->Running());

  auto sleeper = ChildProcess::Spawn("sleep", {"30"});
  ASSERT_TRUE(sleeper.ok()) << sleeper.status();
  EXPECT_TRUE((*sleeper)->Running());
  core::Result<int> early = (*sleeper)->Wait(milliseconds(50));
  EXPECT_EQ(early.status().code(), core::StatusCode::kDeadlineExceeded);
  ASSERT_TRUE((*sleeper)->Signal(SIGTERM).ok());
  EXPECT_EQ(*(*sleeper)->Wait(seconds(10)), 128 + SIGTERM);
  EXPECT_EQ((*sleeper)->Signal(SIGTERM).code(), core::StatusCode::kFailedPrecondition);
}

TEST(ChildProcessTest, DestructorKillsARunningChild) {
  int pid = 0;
  {
    auto sleeper = ChildProcess::Spawn("sleep", {"30"});
    ASSERT_TRUE(sleeper.ok()) << sleeper.status();
    pid = (*sleeper)->pid();
  }
  EXPECT_NE(kill(pid, 0), 0);  // reaped: no such process
}

TEST(ChildProcessTest, SpawningSomethingNotExecutableIsNotFound) {
  auto missing = ChildProcess::Spawn("/nonexistent/fedrx-binary", {});
  EXPECT_EQ(missing.status().code(), core::StatusCode::kNotFound);
  EXPECT_EQ(missing.status().where(), "/nonexistent/fedrx-binary");
  EXPECT_EQ(ChildProcess::Spawn("fedrx-no-such-program", {}).status().code(),
            core::StatusCode::kNotFound);
}

}  // namespace
}  // namespace fedrx::testing
