#include "tests/support/redis_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <thread>

namespace fedrx::testing {
namespace {

constexpr auto kReadyTimeout = std::chrono::seconds(10);
constexpr int kStartAttempts = 3;

std::string ErrnoText(int err) { return std::strerror(err); }

// A blocking loopback connection whose every send and receive is bounded.
class RespConnection {
 public:
  ~RespConnection() {
    if (fd_ >= 0) close(fd_);
  }

  core::Status Open(int port, std::chrono::milliseconds timeout) {
    where_ = "127.0.0.1:" + std::to_string(port);
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return core::Internal("socket: " + ErrnoText(errno), where_);
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
    // Linux bounds a blocking connect() by SO_SNDTIMEO as well.
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      return core::Unavailable("connect: " + ErrnoText(errno), where_);
    }
    return core::Status::Ok();
  }

  core::Status Send(const std::vector<std::string>& args) {
    std::string out = "*" + std::to_string(args.size()) + "\r\n";
    for (const std::string& arg : args) {
      out += "$" + std::to_string(arg.size()) + "\r\n";
      out += arg;
      out += "\r\n";
    }
    std::size_t sent = 0;
    while (sent < out.size()) {
      const ssize_t n = send(fd_, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return core::Unavailable("send: " + ErrnoText(errno), where_);
      sent += static_cast<std::size_t>(n);
    }
    return core::Status::Ok();
  }

  // Reads one reply (see RedisServer::Command for the mapping).
  core::Result<std::string> Reply() {
    FEDRX_ASSIGN_OR_RETURN(std::string line, Line());
    if (line.empty()) return core::Internal("empty reply line", where_);
    const std::string rest = line.substr(1);
    switch (line[0]) {
      case '+':
      case ':':
        return rest;
      case '-':
        return core::FailedPrecondition(rest, where_);
      case '$': {
        long long len = 0;
        const auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), len);
        if (ec != std::errc() || end != rest.data() + rest.size()) {
          return core::Internal("bad bulk length", where_);
        }
        if (len < 0) return std::string();
        FEDRX_ASSIGN_OR_RETURN(std::string bulk, Bytes(static_cast<std::size_t>(len) + 2));
        bulk.resize(static_cast<std::size_t>(len));
        return bulk;
      }
      case '*':
        return core::Status(core::StatusCode::kUnimplemented, "array replies are not supported",
                            where_);
    }
    return core::Internal("unknown reply type", where_);
  }

 private:
  core::Status Fill() {
    char chunk[4096];
    ssize_t n;
    do {
      n = recv(fd_, chunk, sizeof(chunk), 0);
    } while (n < 0 && errno == EINTR);
    if (n == 0) return core::Unavailable("connection closed", where_);
    if (n < 0) {
      return core::Unavailable(errno == EAGAIN || errno == EWOULDBLOCK
                                   ? "no reply in time"
                                   : "recv: " + ErrnoText(errno),
                               where_);
    }
    buffer_.append(chunk, static_cast<std::size_t>(n));
    return core::Status::Ok();
  }

  core::Result<std::string> Line() {
    std::size_t end;
    while ((end = buffer_.find("\r\n")) == std::string::npos) FEDRX_RETURN_IF_ERROR(Fill());
    std::string line = buffer_.substr(0, end);
    buffer_.erase(0, end + 2);
    return line;
  }

  core::Result<std::string> Bytes(std::size_t n) {
    while (buffer_.size() < n) FEDRX_RETURN_IF_ERROR(Fill());
    std::string bytes = buffer_.substr(0, n);
    buffer_.erase(0, n);
    return bytes;
  }

  int fd_ = -1;
  std::string where_;
  std::string buffer_;
};

std::string FindRedisServer() {
  for (const char* dir : {"/usr/local/bin", "/usr/bin", "/usr/sbin"}) {
    std::string candidate = std::string(dir) + "/redis-server";
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "redis-server";  // let Spawn search PATH and report
}

}  // namespace

core::Result<std::unique_ptr<RedisServer>> RedisServer::Start(
    const std::vector<std::string>& extra_args) {
  std::unique_ptr<RedisServer> server(new RedisServer());
  server->binary_ = FindRedisServer();
  server->extra_args_ = extra_args;
  for (std::size_t i = 0; i + 1 < extra_args.size(); ++i) {
    if (extra_args[i] == "--requirepass") server->password_ = extra_args[i + 1];
  }
  server->dir_ = std::make_unique<TempDir>();
  if (server->dir_->path().empty()) {
    return core::Internal("cannot create a temporary directory", "RedisServer::Start");
  }
  // FreeTcpPort's port can be taken before redis-server binds it: retry.
  core::Status last;
  for (int attempt = 0; attempt < kStartAttempts; ++attempt) {
    server->port_ = FreeTcpPort();
    if (server->port_ == 0) return core::Internal("no free TCP port on 127.0.0.1", "FreeTcpPort");
    last = server->Launch();
    if (last.ok()) return server;
  }
  return last;
}

RedisServer::~RedisServer() {
  if (process_ != nullptr) Stop().IgnoreError();
}

core::Status RedisServer::Launch() {
  const std::string where = "redis-server on 127.0.0.1:" + std::to_string(port_);
  std::vector<std::string> args = {"--port",       std::to_string(port_),
                                   "--bind",       "127.0.0.1",
                                   "--save",       "",
                                   "--appendonly", "no",
                                   "--dir",        dir_->path(),
                                   "--daemonize",  "no"};
  args.insert(args.end(), extra_args_.begin(), extra_args_.end());
  FEDRX_ASSIGN_OR_RETURN(process_, ChildProcess::Spawn(binary_, args));

  const auto deadline = std::chrono::steady_clock::now() + kReadyTimeout;
  std::string last_error = "not tried";
  while (std::chrono::steady_clock::now() < deadline) {
    if (!process_->Running()) {
      last_log_ = process_->Log();
      process_.reset();
      return core::Unavailable("redis-server exited before answering PING; its log:\n" + last_log_,
                               where);
    }
    core::Result<std::string> pong = Command({"PING"}, std::chrono::milliseconds(500));
    if (pong.ok() && *pong == "PONG") return core::Status::Ok();
    last_error = pong.ok() ? "PING answered " + *pong : pong.status().ToString();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  last_log_ = process_->Log();
  process_.reset();  // kills it
  return core::Unavailable("redis-server did not answer PING within " +
                               std::to_string(kReadyTimeout.count()) + " s (last: " + last_error +
                               "); its log:\n" + last_log_,
                           where);
}

core::Status RedisServer::Stop() {
  if (process_ == nullptr) {
    return core::FailedPrecondition("redis-server is not running", std::to_string(port_));
  }
  // SIGCONT in case it is paused: a stopped process does not act on SIGTERM.
  core::Status term = process_->Signal(SIGTERM);
  process_->Signal(SIGCONT).IgnoreError();
  if (term.ok() && !process_->Wait(std::chrono::seconds(10)).ok()) {
    process_->Signal(SIGKILL).IgnoreError();
    process_->Wait(std::chrono::seconds(5)).status().IgnoreError();
  }
  last_log_ = process_->Log();
  process_.reset();
  return core::Status::Ok();
}

core::Status RedisServer::Kill() {
  if (process_ == nullptr) {
    return core::FailedPrecondition("redis-server is not running", std::to_string(port_));
  }
  FEDRX_RETURN_IF_ERROR(process_->Signal(SIGKILL));
  FEDRX_RETURN_IF_ERROR(process_->Wait(std::chrono::seconds(5)).status());
  last_log_ = process_->Log();
  process_.reset();
  return core::Status::Ok();
}

core::Status RedisServer::Restart() {
  if (process_ != nullptr) FEDRX_RETURN_IF_ERROR(Stop());
  return Launch();
}

core::Status RedisServer::Pause() {
  if (process_ == nullptr) return core::FailedPrecondition("redis-server is not running");
  return process_->Signal(SIGSTOP);
}

core::Status RedisServer::Resume() {
  if (process_ == nullptr) return core::FailedPrecondition("redis-server is not running");
  return process_->Signal(SIGCONT);
}

core::Result<std::string> RedisServer::Command(const std::vector<std::string>& args,
                                               std::chrono::milliseconds timeout) {
  RespConnection connection;
  FEDRX_RETURN_IF_ERROR(connection.Open(port_, timeout));
  if (!password_.empty()) {
    FEDRX_RETURN_IF_ERROR(connection.Send({"AUTH", password_}));
    FEDRX_ASSIGN_OR_RETURN(std::string ok, connection.Reply());
    (void)ok;
  }
  FEDRX_RETURN_IF_ERROR(connection.Send(args));
  return connection.Reply();
}

std::string RedisServer::Log() const { return process_ != nullptr ? process_->Log() : last_log_; }

}  // namespace fedrx::testing
