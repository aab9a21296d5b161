// HttpEndpoint over a real loopback socket (the endpoint is a socket adapter).
#include "services/core/http_endpoint.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <mutex>
#include <string>

#include "services/core/testing/fake_clock.h"

namespace fedrx::core {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// FakeClock behind a lock: the endpoint reads time on its own thread.
class LockedFakeClock final : public Clock {
 public:
  std::chrono::steady_clock::time_point Now() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return clock_.Now();
  }
  std::int64_t WallMillis() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return clock_.WallMillis();
  }
  void Advance(milliseconds d) {
    std::lock_guard<std::mutex> lock(mu_);
    clock_.Advance(d);
  }

 private:
  mutable std::mutex mu_;
  testing::FakeClock clock_;
};

struct HttpReply {
  int code = 0;
  std::string head;  // status line and headers
  std::string body;
};

// Connects to 127.0.0.1:port, sends `request` (then half-closes if asked),
// and reads the reply until the server closes. Fails the test on socket errors.
HttpReply Exchange(std::uint16_t port, const std::string& request, bool half_close = false) {
  HttpReply reply;
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  EXPECT_GE(fd, 0);
  if (fd < 0) return reply;
  // A bound on every read, so a broken server fails the test instead of hanging it.
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ADD_FAILURE() << "connect failed";
    ::close(fd);
    return reply;
  }
  std::size_t sent = 0;
  while (sent < request.size()) {
    const ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<std::size_t>(n);
  }
  if (half_close) ::shutdown(fd, SHUT_WR);
  std::string raw;
  char buf[4096];
  while (true) {
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    raw.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  const auto split = raw.find("\r\n\r\n");
  if (split == std::string::npos || raw.rfind("HTTP/1.1 ", 0) != 0) {
    ADD_FAILURE() << "not an HTTP response: " << raw;
    return reply;
  }
  reply.head = raw.substr(0, split);
  reply.body = raw.substr(split + 4);
  reply.code = std::stoi(raw.substr(9, 3));
  return reply;
}

HttpReply Get(std::uint16_t port, const std::string& path) {
  return Exchange(port, "GET " + path + " HTTP/1.1\r\nHost: localhost\r\n\r\n");
}

class HttpEndpointTest : public ::testing::Test {
 protected:
  void SetUp() override { endpoint_ = StartEndpoint({}); }

  std::unique_ptr<HttpEndpoint> StartEndpoint(HttpEndpointOptions options) {
    options.listen = "127.0.0.1:0";
    auto endpoint = HttpEndpoint::Start(std::move(options), metrics_, clock_);
    EXPECT_TRUE(endpoint.ok()) << endpoint.status();
    if (!endpoint.ok()) return nullptr;
    EXPECT_NE((*endpoint)->port(), 0);
    return std::move(endpoint).value();
  }

  double BadRequests() const {
    return metrics_.Read("fedrx_t_rejected_total", {{"reason", "http_bad_request"}});
  }

  Metrics metrics_{"t"};
  LockedFakeClock clock_;
  std::unique_ptr<HttpEndpoint> endpoint_;
};

TEST_F(HttpEndpointTest, MetricsServesTheTextExpositionWithCounterValues) {
  metrics_.Counter("widgets_total", "Widgets.").Inc(7);
  const HttpReply reply = Get(endpoint_->port(), "/metrics");
  EXPECT_EQ(reply.code, 200);
  EXPECT_NE(reply.head.find("Content-Type: text/plain; version=0.0.4"), std::string::npos)
      << reply.head;
  EXPECT_NE(reply.head.find("Connection: close"), std::string::npos);
  EXPECT_NE(reply.head.find("Content-Length: " + std::to_string(reply.body.size())),
            std::string::npos);
  EXPECT_NE(reply.body.find("fedrx_t_widgets_total 7"), std::string::npos) << reply.body;
}

TEST_F(HttpEndpointTest, ReadyzIsUnavailableWithTheReasonUntilReady) {
  HttpReply reply = Get(endpoint_->port(), "/readyz");
  EXPECT_EQ(reply.code, 503);
  EXPECT_EQ(reply.body, "starting\n");

  endpoint_->SetReadiness(false, "redis unreachable");
  reply = Get(endpoint_->port(), "/readyz");
  EXPECT_EQ(reply.code, 503);
  EXPECT_EQ(reply.body, "redis unreachable\n");

  endpoint_->SetReadiness(true, "");
  reply = Get(endpoint_->port(), "/readyz?verbose=1");
  EXPECT_EQ(reply.code, 200);
  EXPECT_EQ(reply.body, "ready\n");
}

TEST_F(HttpEndpointTest, HealthzFailsOnceTheLoopStallsBeyondTheWindow) {
  endpoint_.reset();
  HttpEndpointOptions options;
  options.liveness_window = seconds(30);
  endpoint_ = StartEndpoint(options);

  endpoint_->MarkAlive();
  HttpReply reply = Get(endpoint_->port(), "/healthz");
  EXPECT_EQ(reply.code, 200);
  EXPECT_EQ(reply.body, "ok\n");

  clock_.Advance(seconds(30));
  EXPECT_EQ(Get(endpoint_->port(), "/healthz").code, 200);

  clock_.Advance(milliseconds(1500));
  reply = Get(endpoint_->port(), "/healthz");
  EXPECT_EQ(reply.code, 503);
  EXPECT_EQ(reply.body, "no loop progress for 31.5s (liveness window 30.0s)\n");

  endpoint_->MarkAlive();
  EXPECT_EQ(Get(endpoint_->port(), "/healthz").code, 200);
}

TEST_F(HttpEndpointTest, UnknownPathIsNotFound) {
  const HttpReply reply = Get(endpoint_->port(), "/admin");
  EXPECT_EQ(reply.code, 404);
  EXPECT_EQ(BadRequests(), 0);
}

TEST_F(HttpEndpointTest, NonGetMethodIsNotAllowed) {
  const HttpReply reply =
      Exchange(endpoint_->port(), "POST /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello");
  EXPECT_EQ(reply.code, 405);
  EXPECT_NE(reply.head.find("Allow: GET"), std::string::npos) << reply.head;
  EXPECT_EQ(BadRequests(), 0);
}

TEST_F(HttpEndpointTest, GarbageRequestIsBadRequestAndCounted) {
  const HttpReply reply = Exchange(endpoint_->port(), "hello\r\n\r\n");
  EXPECT_EQ(reply.code, 400);
  EXPECT_EQ(reply.body, "malformed request line\n");
  EXPECT_EQ(BadRequests(), 1);
  const HttpReply binary = Exchange(endpoint_->port(), "\x16\x03\x01 \x02\x7f x\r\n\r\n");
  EXPECT_EQ(binary.code, 400);
  EXPECT_EQ(BadRequests(), 2);
}

TEST_F(HttpEndpointTest, MalformedPartsOfTheRequestAreEachRefused) {
  const std::uint16_t port = endpoint_->port();
  EXPECT_EQ(Exchange(port, "get /metrics HTTP/1.1\r\n\r\n").body, "malformed method\n");
  EXPECT_EQ(Exchange(port, "GET metrics HTTP/1.1\r\n\r\n").body,
            "request target must start with '/'\n");
  EXPECT_EQ(Exchange(port, "GET /metrics HTTP/2.0\r\n\r\n").body, "unsupported HTTP version\n");
  EXPECT_EQ(Exchange(port, "GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n").body,
            "malformed header line\n");
  EXPECT_EQ(BadRequests(), 4);
}

TEST_F(HttpEndpointTest, OversizedHeaderIsBadRequestAndCounted) {
  const std::string request =
      "GET /metrics HTTP/1.1\r\nX-Filler: " + std::string(9000, 'a') + "\r\n\r\n";
  const HttpReply reply = Exchange(endpoint_->port(), request);
  EXPECT_EQ(reply.code, 400);
  EXPECT_EQ(reply.body, "request header larger than 8192 bytes\n");
  EXPECT_EQ(BadRequests(), 1);
}

TEST_F(HttpEndpointTest, RequestCutShortIsBadRequest) {
  const HttpReply reply = Exchange(endpoint_->port(), "GET /metrics HTTP/1.1\r\n", true);
  EXPECT_EQ(reply.code, 400);
  EXPECT_EQ(reply.body, "incomplete request\n");
  EXPECT_EQ(BadRequests(), 1);
}

TEST_F(HttpEndpointTest, SilentClientTimesOutAndTheNextClientIsServed) {
  endpoint_.reset();
  HttpEndpointOptions options;
  options.io_timeout = milliseconds(100);
  endpoint_ = StartEndpoint(options);

  // Sends half a request line and then nothing: the server must give up on it.
  const HttpReply slow = Exchange(endpoint_->port(), "GET /met");
  EXPECT_EQ(slow.code, 408);
  EXPECT_EQ(metrics_.Read("fedrx_t_rejected_total", {{"reason", "http_timeout"}}), 1);

  endpoint_->SetReadiness(true, "");
  EXPECT_EQ(Get(endpoint_->port(), "/readyz").code, 200);
}

TEST_F(HttpEndpointTest, SecondEndpointOnTheSamePortIsUnavailable) {
  HttpEndpointOptions options;
  options.listen = "127.0.0.1:" + std::to_string(endpoint_->port());
  const auto second = HttpEndpoint::Start(options, metrics_, clock_);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(second.status().message().find("Address already in use"), std::string::npos)
      << second.status();
}

TEST_F(HttpEndpointTest, MalformedListenAddressIsInvalidArgument) {
  for (const char* listen : {"no-port", "127.0.0.1:http", "127.0.0.1:70000", "127.0.0.1:"}) {
    HttpEndpointOptions options;
    options.listen = listen;
    const auto endpoint = HttpEndpoint::Start(options, metrics_, clock_);
    ASSERT_FALSE(endpoint.ok()) << listen;
    EXPECT_EQ(endpoint.status().code(), StatusCode::kInvalidArgument) << listen;
    EXPECT_EQ(endpoint.status().where(), "http_listen");
  }
}

}  // namespace
}  // namespace fedrx::core
