#include "tests/support/http_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <sstream>
#include <thread>

namespace fedrx::testing {
namespace {

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

}  // namespace

core::Result<HttpResponse> HttpGet(int port, const std::string& path,
                                   std::chrono::milliseconds timeout) {
  Fd fd(socket(AF_INET, SOCK_STREAM, 0));
  if (fd.get() < 0) return core::Internal("socket() failed", "http");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{static_cast<time_t>(timeout.count() / 1000),
             static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
  setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return core::Unavailable("connect failed", "127.0.0.1:" + std::to_string(port));
  }
  const std::string req = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  if (send(fd.get(), req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
    return core::Unavailable("send failed", "127.0.0.1:" + std::to_string(port));
  }
  std::string raw;
  char buf[8192];
  while (true) {
    const ssize_t n = recv(fd.get(), buf, sizeof buf, 0);
    if (n < 0) return core::DeadlineExceeded("no complete response", path);
    if (n == 0) break;
    raw.append(buf, static_cast<std::size_t>(n));
  }
  HttpResponse r;
  if (raw.rfind("HTTP/1.", 0) != 0 || raw.size() < 12) {
    return core::Internal("not an HTTP response", path);
  }
  r.status = std::atoi(raw.c_str() + 9);
  const auto body_at = raw.find("\r\n\r\n");
  if (body_at != std::string::npos) r.body = raw.substr(body_at + 4);
  return r;
}

bool WaitForHttp200(int port, const std::string& path, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    auto r = HttpGet(port, path, std::chrono::milliseconds(500));
    if (r.ok() && r->status == 200) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

double MetricValue(const std::string& exposition, const std::string& name,
                   const std::string& labels) {
  const std::string prefix = labels.empty() ? name + " " : name + "{";
  std::istringstream in(exposition);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) != 0) continue;
    if (!labels.empty()) {
      const auto close = line.find('}');
      if (close == std::string::npos) continue;
      const std::string got = line.substr(prefix.size(), close - prefix.size());
      // Every wanted label must appear in the sample's label set.
      bool all = true;
      std::istringstream want(labels);
      std::string pair;
      while (std::getline(want, pair, ',')) {
        if (got.find(pair) == std::string::npos) all = false;
      }
      if (!all) continue;
      return std::atof(line.c_str() + close + 2);
    }
    return std::atof(line.c_str() + prefix.size());
  }
  return -1;
}

}  // namespace fedrx::testing
