// A minimal blocking HTTP/1.1 GET for tests against services' /metrics,
// /healthz and /readyz on loopback. Thread-safe (no shared state).
#pragma once

#include <chrono>
#include <string>

#include "services/core/status.h"

namespace fedrx::testing {

struct HttpResponse {
  int status = 0;
  std::string body;
};

// GET http://127.0.0.1:<port><path>; bounded by `timeout`.
core::Result<HttpResponse> HttpGet(int port, const std::string& path,
                                   std::chrono::milliseconds timeout = std::chrono::seconds(2));

// Polls `path` until it answers 200 or `timeout` passes; true on 200.
bool WaitForHttp200(int port, const std::string& path, std::chrono::milliseconds timeout);

// The value of one sample line `name{labels} value` in a Prometheus text
// exposition (labels as written, e.g. R"(reason="oversized")"; empty for none);
// -1 when absent.
double MetricValue(const std::string& exposition, const std::string& name,
                   const std::string& labels = "");

}  // namespace fedrx::testing
