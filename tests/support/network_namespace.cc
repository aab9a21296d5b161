#include "tests/support/network_namespace.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <thread>

namespace fedrx::testing {
namespace {

// Where `ip netns add` mounts its namespaces.
constexpr char kNetnsDir[] = "/var/run/netns";

// `ip` by absolute path when it is in one of the usual places (root's PATH
// has /usr/sbin, a test runner's may not), else whatever PATH finds.
std::string IpBinary() {
  for (const char* candidate : {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"}) {
    if (access(candidate, X_OK) == 0) return candidate;
  }
  return "ip";
}

std::string Joined(const std::vector<std::string>& args) {
  std::string out;
  for (const auto& a : args) out += (out.empty() ? "" : " ") + a;
  return out;
}

bool SaysPermissionDenied(const std::string& output) {
  return output.find("Operation not permitted") != std::string::npos ||
         output.find("Permission denied") != std::string::npos;
}

}  // namespace

core::Result<std::string> RunIp(const std::vector<std::string>& args,
                                std::chrono::milliseconds timeout) {
  FEDRX_ASSIGN_OR_RETURN(std::unique_ptr<ChildProcess> ip, ChildProcess::Spawn(IpBinary(), args));
  core::Result<int> code = ip->Wait(timeout);
  const std::string output = ip->Log();
  const std::string what = "ip " + Joined(args);
  if (!code.ok()) return core::DeadlineExceeded("did not finish: " + output, what);
  if (*code == 0) return output;
  if (SaysPermissionDenied(output)) {
    return core::Status(core::StatusCode::kPermissionDenied, output, what);
  }
  return core::Internal("exit code " + std::to_string(*code) + ": " + output, what);
}

core::Result<std::unique_ptr<NetworkNamespace>> NetworkNamespace::Create(const std::string& name) {
  FEDRX_RETURN_IF_ERROR(RunIp({"netns", "add", name}).status());
  // From here on the destructor deletes it, whatever fails next.
  std::unique_ptr<NetworkNamespace> ns(new NetworkNamespace(name));
  FEDRX_RETURN_IF_ERROR(RunIp({"-n", name, "link", "set", "lo", "up"}).status());
  return ns;
}

NetworkNamespace::~NetworkNamespace() {
  if (auto deleted = RunIp({"netns", "delete", name_}); !deleted.ok()) {
    std::cerr << "network namespace " << name_ << " not deleted: " << deleted.status() << "\n";
  }
}

core::Result<std::unique_ptr<ChildProcess>> NetworkNamespace::Spawn(
    const std::string& path, const std::vector<std::string>& args,
    const std::map<std::string, std::string>& extra_env) const {
  std::vector<std::string> ip_args = {"netns", "exec", name_, path};
  ip_args.insert(ip_args.end(), args.begin(), args.end());
  return ChildProcess::Spawn(IpBinary(), ip_args, extra_env);
}

core::Status NetworkNamespace::Run(const std::function<void()>& fn) const {
  const std::string path = std::string(kNetnsDir) + "/" + name_;
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return core::NotFound(std::strerror(errno), path);
  core::Status status;
  // setns(CLONE_NEWNET) moves only the calling thread, so a thread of its own
  // joins and the caller's sockets stay where they are.
  std::thread inside([&] {
    if (setns(fd, CLONE_NEWNET) != 0) {
      status = core::Internal(std::string("setns: ") + std::strerror(errno), path);
      return;
    }
    fn();
  });
  inside.join();
  close(fd);
  return status;
}

core::Status LinkNamespaces(const NetworkNamespace& a, const std::string& a_if,
                            const std::string& a_cidr, const NetworkNamespace& b,
                            const std::string& b_if, const std::string& b_cidr) {
  FEDRX_RETURN_IF_ERROR(RunIp({"link", "add", "name", a_if, "netns", a.name(), "type", "veth",
                               "peer", "name", b_if, "netns", b.name()})
                            .status());
  struct End {
    const NetworkNamespace& ns;
    const std::string& dev;
    const std::string& cidr;
  };
  for (const End& end : {End{a, a_if, a_cidr}, End{b, b_if, b_cidr}}) {
    const std::string& ns = end.ns.name();
    // Without IPv6 the kernel has no such setting; then there is nothing to silence.
    RunIp({"-n", ns, "link", "set", "dev", end.dev, "addrgenmode", "none"}).status().IgnoreError();
    FEDRX_RETURN_IF_ERROR(RunIp({"-n", ns, "addr", "add", end.cidr, "dev", end.dev}).status());
    FEDRX_RETURN_IF_ERROR(RunIp({"-n", ns, "link", "set", "dev", end.dev, "up"}).status());
  }
  return core::Status::Ok();
}

int RemoveStaleNamespaces(const std::string& prefix) {
  int removed = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(kNetnsDir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(prefix, 0) != 0) continue;
    const std::string rest = name.substr(prefix.size());
    const std::size_t dash = rest.find('-');
    if (dash == 0 || dash == std::string::npos) continue;
    const std::string digits = rest.substr(0, dash);
    if (digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t pid = static_cast<pid_t>(std::stol(digits));
    if (kill(pid, 0) == 0 || errno != ESRCH) continue;  // its owner is alive
    if (RunIp({"netns", "delete", name}).ok()) ++removed;
  }
  return removed;
}

core::Result<std::vector<std::string>> ListNamespaces() {
  FEDRX_ASSIGN_OR_RETURN(std::string listing, RunIp({"netns", "list"}));
  // Each line is a name, optionally followed by " (id: N)".
  std::vector<std::string> names;
  std::istringstream lines(listing);
  std::string line;
  while (std::getline(lines, line)) {
    const std::string name = line.substr(0, line.find(' '));
    if (!name.empty()) names.push_back(name);
  }
  return names;
}

const char* ConnectOutcomeName(ConnectOutcome outcome) {
  switch (outcome) {
    case ConnectOutcome::kConnected:
      return "connected";
    case ConnectOutcome::kRefused:
      return "refused";
    case ConnectOutcome::kNetworkUnreachable:
      return "network unreachable";
    case ConnectOutcome::kHostUnreachable:
      return "host unreachable";
    case ConnectOutcome::kTimedOut:
      return "timed out";
    case ConnectOutcome::kOtherError:
      return "other error";
  }
  return "?";
}

std::ostream& operator<<(std::ostream& os, ConnectOutcome outcome) {
  return os << ConnectOutcomeName(outcome);
}

ConnectOutcome ProbeTcpConnect(const std::string& ipv4, int port,
                               std::chrono::milliseconds timeout) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  if (inet_pton(AF_INET, ipv4.c_str(), &addr.sin_addr) != 1) return ConnectOutcome::kOtherError;
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return ConnectOutcome::kOtherError;
  int err = 0;
  if (connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    err = errno;
    if (err == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      int ready;
      do {
        ready = poll(&p, 1, static_cast<int>(timeout.count()));
      } while (ready < 0 && errno == EINTR);
      if (ready == 0) {
        close(fd);
        return ConnectOutcome::kTimedOut;
      }
      socklen_t len = sizeof(err);
      if (ready < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = EIO;
    }
  }
  close(fd);
  switch (err) {
    case 0:
      return ConnectOutcome::kConnected;
    case ECONNREFUSED:
      return ConnectOutcome::kRefused;
    case ENETUNREACH:
      return ConnectOutcome::kNetworkUnreachable;
    case EHOSTUNREACH:
      return ConnectOutcome::kHostUnreachable;
    case ETIMEDOUT:
      return ConnectOutcome::kTimedOut;
    default:
      return ConnectOutcome::kOtherError;
  }
}

}  // namespace fedrx::testing
