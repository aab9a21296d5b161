#include "services/core/service_runner.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <csignal>
#include <functional>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "services/core/testing/fake_bus.h"
#include "services/core/testing/fake_clock.h"

namespace fedrx::core {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

BusOptions Named(std::string name) {
  BusOptions options;
  options.name = std::move(name);
  return options;
}

struct Got {
  int code = 0;
  std::string body;
};

// GET over loopback; the runner's HTTP endpoint is real.
Got HttpGet(std::uint16_t port, const std::string& path) {
  Got got;
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return got;
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return got;
  }
  const std::string request = "GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n";
  ::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  std::string raw;
  char buf[4096];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof(buf), 0)) > 0) raw.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  const auto split = raw.find("\r\n\r\n");
  if (raw.size() < 12 || split == std::string::npos) return got;
  got.code = std::stoi(raw.substr(9, 3));
  got.body = raw.substr(split + 4);
  return got;
}

// A Service whose every step is scripted by the test. Its methods run on the
// runner's thread.
class ScriptedService : public Service {
 public:
  Status Start() override {
    ++starts;
    return start_status;
  }
  Status Tick() override {
    ++ticks;
    return on_tick ? on_tick(ticks) : Status::Ok();
  }
  Readiness CheckReady() override {
    ++ready_checks;
    return readiness;
  }
  void BeginDrain() override { ++drains_begun; }
  bool Drained() override {
    ++drained_calls;
    return on_drained ? on_drained(drained_calls) : true;
  }

  Status start_status;
  Readiness readiness{true, ""};
  std::function<Status(int)> on_tick;
  std::function<bool(int)> on_drained;

  int starts = 0;
  int ticks = 0;
  int ready_checks = 0;
  int drains_begun = 0;
  int drained_calls = 0;
};

// A Bus whose Poll always fails; nothing else is used by the runner.
class FailingPollBus final : public Bus {
 public:
  Status Serve(const std::string&, RequestHandler) override { return Unused(); }
  std::string ServedEndpoint() const override { return {}; }
  void SetAuthenticator(Authenticator*) override {}
  Status SendTo(const PeerId&, codec::Message) override { return Unused(); }
  Result<ChannelId> Connect(const std::string&, PushHandler) override { return Unused(); }
  Status Send(ChannelId, codec::Message) override { return Unused(); }
  Status Request(ChannelId, codec::Message, milliseconds, ReplyCallback) override {
    return Unused();
  }
  Status BindPublisher(const std::string&) override { return Unused(); }
  std::string PublisherEndpoint() const override { return {}; }
  Status Publish(std::string_view, codec::Message) override { return Unused(); }
  Status Subscribe(const std::string&, std::string_view, EventHandler) override { return Unused(); }
  Status Poll(milliseconds) override {
    ++polls;
    return Unavailable("socket gone", "bus");
  }
  int polls = 0;

 private:
  static Status Unused() { return Status(StatusCode::kUnimplemented, "not used by the runner"); }
};

class ServiceRunnerTest : public ::testing::Test {
 protected:
  ServiceRunnerTest() {
    options_.http_listen = "127.0.0.1:0";
    options_.handle_signals = false;
    options_.ready_interval = milliseconds(0);
    options_.drain_timeout = seconds(5);
  }

  double Read(const std::string& name, const Labels& labels = {}) const {
    return metrics_.Read("fedrx_t_" + name, labels);
  }

  Metrics metrics_{"t"};
  testing::FakeClock clock_;
  testing::FakeNetwork network_;
  testing::FakeBus bus_{network_, Named("t"), metrics_, clock_};
  RunnerOptions options_;
  ScriptedService service_;
};

TEST_F(ServiceRunnerTest, StartFailureExitsWithOneWithoutTickingOrDraining) {
  service_.start_status = Unavailable("redis unreachable", "redis.url");
  ServiceRunner runner(options_, bus_, metrics_, clock_);
  EXPECT_EQ(runner.Run(service_), 1);
  EXPECT_EQ(service_.starts, 1);
  EXPECT_EQ(service_.ticks, 0);
  EXPECT_EQ(service_.drains_begun, 0);
  EXPECT_EQ(Read("up"), 0);
}

TEST_F(ServiceRunnerTest, HttpListenFailureExitsWithOneBeforeStartingTheService) {
  options_.http_listen = "not-an-address";
  ServiceRunner runner(options_, bus_, metrics_, clock_);
  EXPECT_EQ(runner.Run(service_), 1);
  EXPECT_EQ(service_.starts, 0);
}

TEST_F(ServiceRunnerTest, StopFromAnotherThreadDrainsAndExitsZero) {
  std::promise<void> ticking;
  service_.on_tick = [&ticking](int tick) {
    if (tick == 1) ticking.set_value();
    return Status::Ok();
  };
  ServiceRunner runner(options_, bus_, metrics_, clock_);
  std::thread stopper([&runner, started = ticking.get_future()]() mutable {
    started.wait();
    runner.RequestStop();
  });
  const int code = runner.Run(service_);
  stopper.join();
  EXPECT_EQ(code, 0);
  EXPECT_GE(service_.ticks, 1);
  EXPECT_EQ(service_.drains_begun, 1);
  EXPECT_EQ(service_.drained_calls, 1);
}

TEST_F(ServiceRunnerTest, StopRequestedBeforeRunStopsRightAfterStart) {
  ServiceRunner runner(options_, bus_, metrics_, clock_);
  runner.RequestStop();
  EXPECT_EQ(runner.Run(service_), 0);
  EXPECT_EQ(service_.starts, 1);
  EXPECT_EQ(service_.ticks, 0);
  EXPECT_EQ(service_.drains_begun, 1);
}

TEST_F(ServiceRunnerTest, SigtermStopsTheLoopWhenSignalsAreHandled) {
  options_.handle_signals = true;
  service_.on_tick = [](int tick) {
    if (tick == 2) std::raise(SIGTERM);
    return Status::Ok();
  };
  ServiceRunner runner(options_, bus_, metrics_, clock_);
  EXPECT_EQ(runner.Run(service_), 0);
  EXPECT_EQ(service_.ticks, 2);
  EXPECT_EQ(service_.drains_begun, 1);
}

TEST_F(ServiceRunnerTest, ReadinessIsServedOnReadyzAndAsAGauge) {
  ServiceRunner runner(options_, bus_, metrics_, clock_);
  std::vector<Got> seen;
  std::vector<double> gauge;
  service_.readiness = {true, ""};
  // Ticks run on the runner's thread while its HTTP thread serves, so the
  // test can look at /readyz between loop iterations.
  service_.on_tick = [&](int tick) {
    seen.push_back(HttpGet(runner.http_port(), "/readyz"));
    gauge.push_back(Read("ready"));
    if (tick == 1) service_.readiness = {false, "redis unreachable"};
    if (tick == 2) runner.RequestStop();
    return Status::Ok();
  };
  std::vector<Got> draining;
  service_.on_drained = [&](int) {
    draining.push_back(HttpGet(runner.http_port(), "/readyz"));
    return true;
  };

  EXPECT_EQ(runner.Run(service_), 0);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].code, 200);
  EXPECT_EQ(seen[0].body, "ready\n");
  EXPECT_EQ(seen[1].code, 503);
  EXPECT_EQ(seen[1].body, "redis unreachable\n");
  EXPECT_EQ(gauge, (std::vector<double>{1, 0}));
  ASSERT_EQ(draining.size(), 1u);
  EXPECT_EQ(draining[0].code, 503);
  EXPECT_EQ(draining[0].body, "draining\n");
}

TEST_F(ServiceRunnerTest, ReadinessIsRecheckedOnlyEveryReadyInterval) {
  options_.ready_interval = seconds(1);
  ServiceRunner runner(options_, bus_, metrics_, clock_);
  service_.on_tick = [&](int tick) {
    // Ticks 1-3 at t=0; t advances by 1s on tick 4.
    if (tick == 4) clock_.Advance(seconds(1));
    if (tick == 6) runner.RequestStop();
    return Status::Ok();
  };
  EXPECT_EQ(runner.Run(service_), 0);
  // Once before the loop, once after tick 4.
  EXPECT_EQ(service_.ready_checks, 2);
}

TEST_F(ServiceRunnerTest, ExportsUpStartTimeAndServesMetricsAndHealth) {
  ServiceRunner runner(options_, bus_, metrics_, clock_);
  Got metrics_page;
  Got health;
  double up_while_running = -1;
  service_.on_tick = [&](int) {
    metrics_page = HttpGet(runner.http_port(), "/metrics");
    health = HttpGet(runner.http_port(), "/healthz");
    up_while_running = Read("up");
    runner.RequestStop();
    return Status::Ok();
  };
  EXPECT_EQ(runner.Run(service_), 0);
  EXPECT_EQ(up_while_running, 1);
  EXPECT_EQ(Read("up"), 0);
  EXPECT_EQ(Read("start_time_seconds"), 1'700'000'000.0);
  EXPECT_EQ(metrics_page.code, 200);
  EXPECT_NE(metrics_page.body.find("fedrx_t_up 1"), std::string::npos) << metrics_page.body;
  EXPECT_EQ(health.code, 200);
  EXPECT_EQ(health.body, "ok\n");
}

TEST_F(ServiceRunnerTest, DrainGivesUpAtTheTimeoutAndCountsIt) {
  ServiceRunner runner(options_, bus_, metrics_, clock_);
  runner.RequestStop();
  service_.on_drained = [&](int) {
    clock_.Advance(seconds(1));
    return false;
  };
  EXPECT_EQ(runner.Run(service_), 0);
  // Drain timeout 5s, one second per check: checks at t=1..5, the fifth hits the deadline.
  EXPECT_EQ(service_.drained_calls, 5);
  EXPECT_EQ(Read("errors_total", {{"component", "runner"}, {"reason", "drain_timeout"}}), 1);
}

TEST_F(ServiceRunnerTest, DrainKeepsTickingUntilDrained) {
  ServiceRunner runner(options_, bus_, metrics_, clock_);
  runner.RequestStop();
  service_.on_drained = [](int call) { return call == 3; };
  EXPECT_EQ(runner.Run(service_), 0);
  EXPECT_EQ(service_.drained_calls, 3);
  EXPECT_EQ(service_.ticks, 2);
  EXPECT_EQ(Read("errors_total", {{"component", "runner"}, {"reason", "drain_timeout"}}), 0);
}

TEST_F(ServiceRunnerTest, TickErrorsAreCountedAndTheLoopGoesOn) {
  ServiceRunner runner(options_, bus_, metrics_, clock_);
  service_.on_tick = [&](int tick) {
    if (tick == 3) {
      runner.RequestStop();
      return Status::Ok();
    }
    return Internal("heartbeat sweep failed");
  };
  EXPECT_EQ(runner.Run(service_), 0);
  EXPECT_EQ(service_.ticks, 3);
  EXPECT_EQ(Read("errors_total", {{"component", "runner"}, {"reason", "tick"}}), 2);
}

TEST_F(ServiceRunnerTest, PollErrorsAreCountedAndTheLoopGoesOn) {
  FailingPollBus failing;
  ServiceRunner runner(options_, failing, metrics_, clock_);
  service_.on_tick = [&](int tick) {
    if (tick == 3) runner.RequestStop();
    return Status::Ok();
  };
  EXPECT_EQ(runner.Run(service_), 0);
  EXPECT_EQ(failing.polls, 3);
  EXPECT_EQ(Read("errors_total", {{"component", "runner"}, {"reason", "poll"}}), 3);
}

}  // namespace
}  // namespace fedrx::core
