// Network namespaces for integration tests that isolate processes from each
// other: named namespaces made with `ip netns`, veth links between them, code
// run on a thread inside one, and a TCP connect probe. Needs root (or
// CAP_SYS_ADMIN and CAP_NET_ADMIN). Not thread-safe: use each object from one
// thread.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "services/core/status.h"
#include "tests/support/child_process.h"

namespace fedrx::testing {

// Runs `ip args...` in the caller's namespaces and waits for it (bounded by
// `timeout`). Returns what it printed; an error carrying that output when it
// fails, kPermissionDenied when it says the kernel refused (EPERM, EACCES),
// kNotFound when there is no `ip` to run.
core::Result<std::string> RunIp(const std::vector<std::string>& args,
                                std::chrono::milliseconds timeout = std::chrono::seconds(10));

class NetworkNamespace {
 public:
  // `ip netns add name`, then loopback up inside it. kPermissionDenied when
  // the kernel refuses to make a namespace (not root, no CAP_SYS_ADMIN).
  static core::Result<std::unique_ptr<NetworkNamespace>> Create(const std::string& name);

  // `ip netns delete`: links inside go with it. Processes still inside keep
  // the namespace alive (unnamed), so stop them first.
  ~NetworkNamespace();
  NetworkNamespace(const NetworkNamespace&) = delete;
  NetworkNamespace& operator=(const NetworkNamespace&) = delete;

  const std::string& name() const { return name_; }

  // Starts `path args...` inside this namespace (`ip netns exec`, which execs,
  // so the child's pid is the program's). As ChildProcess::Spawn otherwise:
  // the child dies with the calling thread, so call it from the thread that
  // outlives the child.
  core::Result<std::unique_ptr<ChildProcess>> Spawn(
      const std::string& path, const std::vector<std::string>& args,
      const std::map<std::string, std::string>& extra_env = {}) const;

  // Runs `fn` on a new thread that has joined this namespace's network
  // (setns), so that every socket `fn` opens lives here; blocks until it
  // returns. Fails, without running `fn`, if the thread cannot join.
  core::Status Run(const std::function<void()>& fn) const;

 private:
  explicit NetworkNamespace(std::string name) : name_(std::move(name)) {}

  std::string name_;
};

// Joins `a` and `b` with a veth pair: `a_if` in `a` with address `a_cidr`
// (e.g. "10.213.1.1/30"), `b_if` in `b` with `b_cidr`, both up. The pair is
// made directly inside the two namespaces, never in the caller's, so its names
// need only be unique there. No IPv6 link-local addresses are configured, so
// the link stays silent until something is sent on it.
core::Status LinkNamespaces(const NetworkNamespace& a, const std::string& a_if,
                            const std::string& a_cidr, const NetworkNamespace& b,
                            const std::string& b_if, const std::string& b_cidr);

// Deletes the namespaces named `<prefix><pid>-...` whose creating process
// `<pid>` no longer exists (a test killed before its destructors ran).
// Returns how many it deleted.
int RemoveStaleNamespaces(const std::string& prefix);

// The names of every named network namespace (`ip netns list`).
core::Result<std::vector<std::string>> ListNamespaces();

enum class ConnectOutcome {
  kConnected,
  kRefused,             // ECONNREFUSED: the host answered, nothing listens there
  kNetworkUnreachable,  // ENETUNREACH: no route, nothing was sent
  kHostUnreachable,     // EHOSTUNREACH
  kTimedOut,            // no answer within the timeout
  kOtherError,
};

const char* ConnectOutcomeName(ConnectOutcome outcome);
// Writes ConnectOutcomeName (so that test failures print it).
std::ostream& operator<<(std::ostream& os, ConnectOutcome outcome);

// One TCP connect from the calling thread's network namespace to
// `ipv4`:`port`, closed at once; blocks up to `timeout`.
ConnectOutcome ProbeTcpConnect(const std::string& ipv4, int port,
                               std::chrono::milliseconds timeout = std::chrono::seconds(2));

}  // namespace fedrx::testing
