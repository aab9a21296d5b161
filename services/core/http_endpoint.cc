#include "services/core/http_endpoint.h"

#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <utility>

namespace fedrx::core {
namespace {

// Requests here are a line and a few headers; anything bigger is refused.
constexpr std::size_t kMaxHeadBytes = 8 * 1024;
// After the response, unread request bytes are drained for at most this
// long so that closing does not reset the connection before the client has
// read the response.
constexpr std::chrono::milliseconds kLingerTime{100};
constexpr std::size_t kMaxLingerBytes = 64 * 1024;

using Deadline = std::chrono::steady_clock::time_point;

// Socket timeouts are real time, whatever Clock the owner injects: a fake
// clock would otherwise let a slow client hold the server forever.
Deadline DeadlineIn(std::chrono::milliseconds d) { return std::chrono::steady_clock::now() + d; }

enum class Wait { kReady, kTimeout, kStop, kError };

// Waits until `fd` has `events`, `deadline` passes, or `wake_fd` is signalled.
Wait WaitFor(int fd, short events, int wake_fd, Deadline deadline) {
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return Wait::kTimeout;
    pollfd fds[2] = {{fd, events, 0}, {wake_fd, POLLIN, 0}};
    const int n = ::poll(fds, 2, static_cast<int>(left.count()) + 1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Wait::kError;
    }
    if (n == 0) continue;  // re-check the deadline
    if (fds[1].revents != 0) return Wait::kStop;
    // POLLHUP/POLLERR: let the following recv/send report what happened.
    return Wait::kReady;
  }
}

const char* ReasonPhrase(int code) {
  switch (code) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 503:
      return "Service Unavailable";
  }
  return "Error";
}

constexpr std::string_view kTextPlain = "text/plain; charset=utf-8";
constexpr std::string_view kPrometheusText = "text/plain; version=0.0.4; charset=utf-8";

bool IsTokenChar(char c) { return c >= 'A' && c <= 'Z'; }

bool IsTargetChar(char c) { return c > 0x20 && c < 0x7f; }

struct ParsedListen {
  std::string host;  // empty: any address
  std::string port;
};

Result<ParsedListen> ParseListen(const std::string& listen) {
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos) {
    return InvalidArgument("HTTP listen address \"" + listen + "\" is not host:port",
                           "http_listen");
  }
  ParsedListen out;
  out.host = listen.substr(0, colon);
  out.port = listen.substr(colon + 1);
  if (out.host.size() >= 2 && out.host.front() == '[' && out.host.back() == ']') {
    out.host = out.host.substr(1, out.host.size() - 2);
  }
  if (out.host == "*") out.host.clear();
  unsigned port = 0;
  const auto [ptr, ec] = std::from_chars(out.port.data(), out.port.data() + out.port.size(), port);
  if (out.port.empty() || ec != std::errc() || ptr != out.port.data() + out.port.size() ||
      port > 65535) {
    return InvalidArgument("HTTP listen address \"" + listen + "\" has no valid port (0-65535)",
                           "http_listen");
  }
  return out;
}

void LogError(std::string_view service, std::string_view what) {
  std::cerr << "fedrx " << service << ": http: " << what << "\n";
}

}  // namespace

Result<std::unique_ptr<HttpEndpoint>> HttpEndpoint::Start(HttpEndpointOptions options,
                                                          Metrics& metrics, const Clock& clock) {
  FEDRX_ASSIGN_OR_RETURN(const ParsedListen where, ParseListen(options.listen));

  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const int gai = ::getaddrinfo(where.host.empty() ? nullptr : where.host.c_str(),
                                where.port.c_str(), &hints, &found);
  if (gai != 0) {
    return InvalidArgument(
        "cannot resolve HTTP listen address " + options.listen + ": " + ::gai_strerror(gai),
        "http_listen");
  }

  int fd = -1;
  std::string last_error = "no address";
  for (addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
    fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0) {
      last_error = std::strerror(errno);
      continue;
    }
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && ::listen(fd, 16) == 0) break;
    last_error = std::strerror(errno);
    ::close(fd);
    fd = -1;
  }
  ::freeaddrinfo(found);
  if (fd < 0) {
    return Unavailable("cannot listen for HTTP on " + options.listen + ": " + last_error,
                       "http_listen");
  }

  sockaddr_storage bound{};
  socklen_t len = sizeof(bound);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len) != 0) {
    const std::string err = std::strerror(errno);
    ::close(fd);
    return Unavailable("cannot read the bound HTTP address: " + err, "http_listen");
  }
  std::uint16_t port = 0;
  if (bound.ss_family == AF_INET) {
    port = ntohs(reinterpret_cast<const sockaddr_in*>(&bound)->sin_port);
  } else if (bound.ss_family == AF_INET6) {
    port = ntohs(reinterpret_cast<const sockaddr_in6*>(&bound)->sin6_port);
  }

  const int wake_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd < 0) {
    const std::string err = std::strerror(errno);
    ::close(fd);
    return Unavailable("cannot create the HTTP stop eventfd: " + err, "http_listen");
  }
  return std::unique_ptr<HttpEndpoint>(
      new HttpEndpoint(std::move(options), metrics, clock, fd, wake_fd, port));
}

HttpEndpoint::HttpEndpoint(HttpEndpointOptions options, Metrics& metrics, const Clock& clock,
                           int listen_fd, int wake_fd, std::uint16_t port)
    : options_(std::move(options)),
      metrics_(metrics),
      clock_(clock),
      listen_fd_(listen_fd),
      wake_fd_(wake_fd),
      port_(port),
      last_alive_ns_(
          std::chrono::duration_cast<std::chrono::nanoseconds>(clock.Now().time_since_epoch())
              .count()) {
  thread_ = std::thread([this] { Serve(); });
}

HttpEndpoint::~HttpEndpoint() {
  const std::uint64_t one = 1;
  // An eventfd write of 1 cannot fail short of a counter overflow.
  [[maybe_unused]] const ssize_t n = ::write(wake_fd_, &one, sizeof(one));
  if (thread_.joinable()) thread_.join();
  ::close(listen_fd_);
  ::close(wake_fd_);
}

void HttpEndpoint::SetReadiness(bool ready, std::string reason) {
  std::lock_guard<std::mutex> lock(mu_);
  ready_ = ready;
  not_ready_reason_ = std::move(reason);
}

void HttpEndpoint::MarkAlive() {
  last_alive_ns_.store(
      std::chrono::duration_cast<std::chrono::nanoseconds>(clock_.Now().time_since_epoch())
          .count());
}

void HttpEndpoint::Serve() {
  bool accept_failing = false;
  while (true) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      LogError(metrics_.service(),
               std::string("poll failed, endpoint stopped: ") + std::strerror(errno));
      metrics_.CountError("http", "poll");
      return;
    }
    if (fds[1].revents != 0) return;
    if (fds[0].revents == 0) continue;
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNABORTED) {
        continue;
      }
      // E.g. out of file descriptors: counted every time, logged once per streak.
      metrics_.CountError("http", "accept");
      if (!accept_failing) {
        LogError(metrics_.service(), std::string("accept failed: ") + std::strerror(errno));
      }
      accept_failing = true;
      // Back off without sleeping on the listen socket (it stays readable).
      pollfd wake = {wake_fd_, POLLIN, 0};
      if (::poll(&wake, 1, 100) > 0) return;
      continue;
    }
    accept_failing = false;
    HandleConnection(fd);
    ::close(fd);
  }
}

void HttpEndpoint::HandleConnection(int fd) {
  const Deadline deadline = DeadlineIn(options_.io_timeout);
  std::string head;
  Response response;
  bool have_response = false;
  char buf[2048];
  while (!have_response) {
    switch (WaitFor(fd, POLLIN, wake_fd_, deadline)) {
      case Wait::kStop:
      case Wait::kError:
        return;
      case Wait::kTimeout:
        metrics_.CountRejected("http_timeout");
        response = {408, std::string(kTextPlain), "request not received in time\n"};
        have_response = true;
        continue;
      case Wait::kReady:
        break;
    }
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) continue;
      return;  // reset by the peer: nobody to answer
    }
    if (n == 0) {
      // A connect-and-close (a TCP probe) is not a bad request.
      if (head.empty()) return;
      metrics_.CountRejected("http_bad_request");
      response = {400, std::string(kTextPlain), "incomplete request\n"};
      have_response = true;
      continue;
    }
    const std::size_t scan_from = head.size() < 3 ? 0 : head.size() - 3;
    head.append(buf, static_cast<std::size_t>(n));
    const auto end = head.find("\r\n\r\n", scan_from);
    if (end != std::string::npos && end + 4 <= kMaxHeadBytes) {
      head.resize(end + 2);  // keep the last header line's CRLF
      response = Route(head);
      have_response = true;
    } else if (head.size() > kMaxHeadBytes) {
      metrics_.CountRejected("http_bad_request");
      response = {400, std::string(kTextPlain),
                  "request header larger than " + std::to_string(kMaxHeadBytes) + " bytes\n"};
      have_response = true;
    }
  }

  std::string out = "HTTP/1.1 " + std::to_string(response.code) + " " +
                    ReasonPhrase(response.code) + "\r\nContent-Type: " + response.content_type +
                    "\r\nContent-Length: " + std::to_string(response.body.size()) +
                    "\r\nConnection: close\r\n";
  if (response.code == 405) out += "Allow: GET\r\n";
  out += "\r\n";
  out += response.body;

  const Deadline write_deadline = DeadlineIn(options_.io_timeout);
  std::size_t sent = 0;
  while (sent < out.size()) {
    const ssize_t n = ::send(fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
      const Wait w = WaitFor(fd, POLLOUT, wake_fd_, write_deadline);
      if (w == Wait::kReady) continue;
      if (w == Wait::kTimeout) metrics_.CountRejected("http_timeout");
    }
    return;
  }

  ::shutdown(fd, SHUT_WR);
  const Deadline linger = DeadlineIn(kLingerTime);
  std::size_t drained = 0;
  while (drained < kMaxLingerBytes && WaitFor(fd, POLLIN, wake_fd_, linger) == Wait::kReady) {
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) break;
    if (n > 0) drained += static_cast<std::size_t>(n);
  }
}

HttpEndpoint::Response HttpEndpoint::Route(std::string_view head) {
  auto bad = [this](std::string why) {
    metrics_.CountRejected("http_bad_request");
    return Response{400, std::string(kTextPlain), std::move(why) + "\n"};
  };

  // Request line: METHOD SP target SP HTTP/1.x CRLF, then header lines.
  const auto line_end = head.find("\r\n");
  const std::string_view line = head.substr(0, line_end);
  const auto sp1 = line.find(' ');
  const auto sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
    return bad("malformed request line");
  }
  const std::string_view method = line.substr(0, sp1);
  const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (method.empty() || method.size() > 16) return bad("malformed method");
  for (char c : method) {
    if (!IsTokenChar(c)) return bad("malformed method");
  }
  if (target.empty() || target.front() != '/') return bad("request target must start with '/'");
  for (char c : target) {
    if (!IsTargetChar(c)) return bad("malformed request target");
  }
  if (version != "HTTP/1.1" && version != "HTTP/1.0") return bad("unsupported HTTP version");

  std::size_t pos = line_end + 2;
  while (pos < head.size()) {
    const auto end = head.find("\r\n", pos);
    const std::string_view header = head.substr(pos, end - pos);
    const auto colon = header.find(':');
    if (colon == 0 || colon == std::string_view::npos ||
        header.substr(0, colon).find_first_of(" \t") != std::string_view::npos) {
      return bad("malformed header line");
    }
    pos = end + 2;
  }

  if (method != "GET") {
    return {405, std::string(kTextPlain), "only GET is supported\n"};
  }
  const std::string_view path = target.substr(0, target.find('?'));
  if (path == "/metrics") {
    return {200, std::string(kPrometheusText), metrics_.Serialize()};
  }
  if (path == "/healthz") return Health();
  if (path == "/readyz") return Ready();
  return {404, std::string(kTextPlain), "not found; try /metrics, /healthz or /readyz\n"};
}

HttpEndpoint::Response HttpEndpoint::Health() const {
  const auto now =
      std::chrono::duration_cast<std::chrono::nanoseconds>(clock_.Now().time_since_epoch());
  const auto since = now - std::chrono::nanoseconds(last_alive_ns_.load());
  if (since <= options_.liveness_window) {
    return {200, std::string(kTextPlain), "ok\n"};
  }
  char why[160];
  std::snprintf(why, sizeof(why), "no loop progress for %.1fs (liveness window %.1fs)\n",
                std::chrono::duration<double>(since).count(),
                std::chrono::duration<double>(options_.liveness_window).count());
  return {503, std::string(kTextPlain), why};
}

HttpEndpoint::Response HttpEndpoint::Ready() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (ready_) return {200, std::string(kTextPlain), "ready\n"};
  return {503, std::string(kTextPlain), not_ready_reason_ + "\n"};
}

}  // namespace fedrx::core
