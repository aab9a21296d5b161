// HttpEndpoint: the minimal HTTP/1.1 server behind every service's
// /metrics, /healthz and /readyz, on its own thread (one connection at a
// time, Connection: close). Setters and MarkAlive() are thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "services/core/clock.h"
#include "services/core/metrics.h"
#include "services/core/status.h"

namespace fedrx::core {

struct HttpEndpointOptions {
  // "host:port" ("0.0.0.0:9464", "127.0.0.1:0", "[::]:9464"); port 0 picks a free one.
  std::string listen = "0.0.0.0:9464";
  // /healthz answers 503 when MarkAlive() has not been called for this long.
  std::chrono::milliseconds liveness_window{30000};
  // A client gets this long to send its request, and to take the response.
  std::chrono::milliseconds io_timeout{2000};
};

class HttpEndpoint {
 public:
  // Binds and starts serving. Errors: kInvalidArgument for a malformed
  // `listen`, kUnavailable when the address cannot be bound. `metrics` and
  // `clock` must outlive the endpoint; `clock` is read from the server thread.
  static Result<std::unique_ptr<HttpEndpoint>> Start(HttpEndpointOptions options, Metrics& metrics,
                                                     const Clock& clock);
  // Stops the server thread (an in-flight request is cut short) and closes sockets.
  ~HttpEndpoint();
  HttpEndpoint(const HttpEndpoint&) = delete;
  HttpEndpoint& operator=(const HttpEndpoint&) = delete;

  // The port actually bound.
  std::uint16_t port() const { return port_; }

  // What /readyz answers: 200 "ready", or 503 with `reason`. Starts as not
  // ready, reason "starting".
  void SetReadiness(bool ready, std::string reason);
  // Records that the owner's loop made progress now (liveness for /healthz).
  void MarkAlive();

 private:
  struct Response {
    int code;
    std::string content_type;
    std::string body;
  };

  HttpEndpoint(HttpEndpointOptions options, Metrics& metrics, const Clock& clock, int listen_fd,
               int wake_fd, std::uint16_t port);

  void Serve();
  void HandleConnection(int fd);
  Response Route(std::string_view request_head);
  Response Health() const;
  Response Ready() const;

  const HttpEndpointOptions options_;
  Metrics& metrics_;
  const Clock& clock_;
  const int listen_fd_;
  const int wake_fd_;  // eventfd: written by the destructor to stop Serve()
  const std::uint16_t port_;

  // Clock::Now() of the last MarkAlive(), as nanoseconds since the clock's epoch.
  std::atomic<std::int64_t> last_alive_ns_;
  mutable std::mutex mu_;
  bool ready_ = false;                         // guarded by mu_
  std::string not_ready_reason_ = "starting";  // guarded by mu_

  std::thread thread_;
};

}  // namespace fedrx::core
