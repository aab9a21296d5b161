// What the `fedrx` command tests that go through the gateway share: a
// scripted gateway on the in-memory bus that records every request and
// answers it with `answer`, and the CLI run against it. Single-threaded.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "services/cli/cli.h"
#include "services/core/metrics.h"
#include "services/core/testing/fake_bus.h"
#include "services/core/testing/fake_clock.h"
#include "tests/support/child_process.h"

namespace fedrx::cli::testing {

inline constexpr char kGateway[] = "inproc://gateway";

class ScriptedGatewayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    ASSERT_TRUE(gateway_bus_
                    .Serve(kGateway,
                           [this](core::Inbound&& in) {
                             requests_.push_back(in.message.body);
                             core::Result<codec::Body> reply = answer(in.message.body);
                             if (reply.ok()) {
                               EXPECT_TRUE(core::Reply(gateway_bus_, in, *reply).ok());
                             } else {
                               EXPECT_TRUE(core::ReplyError(gateway_bus_, in, reply.status()).ok());
                             }
                           })
                    .ok());
  }

  // Runs `fedrx --gateway kGateway --key-file <key_file_> ... args`; the exit
  // code, with what it printed in out_ and err_.
  int Run(std::vector<std::string> args) {
    args.insert(args.begin(), {"--gateway", kGateway, "--key-file", key_file_, "--server-key-file",
                               "gateway.pub"});
    out_.str("");
    err_.str("");
    return RunCommand(args, cli_bus_, out_, err_);
  }

  std::string Path(const std::string& name) { return dir_.path() + "/" + name; }

  std::string key_file_ = "s.key";
  fedrx::testing::TempDir dir_;
  core::testing::FakeNetwork network_;
  core::testing::FakeClock clock_;
  core::Metrics metrics_{"test"};
  core::testing::FakeBus gateway_bus_{network_, core::BusOptions{"gateway"}, metrics_, clock_};
  core::testing::FakeBus cli_bus_{network_, core::BusOptions{"fedrx-cli"}, metrics_, clock_};
  // The gateway's answer to each request (by default an Internal error).
  std::function<core::Result<codec::Body>(const codec::Body&)> answer =
      [](const codec::Body&) -> core::Result<codec::Body> {
    return core::Internal("no answer scripted", "test");
  };
  std::vector<codec::Body> requests_;
  std::ostringstream out_, err_;
};

}  // namespace fedrx::cli::testing
