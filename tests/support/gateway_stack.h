// A fixture base for integration tests of the domain services behind the
// gateway: a real Redis, backends (the coordinator, domain services) started
// as CURVE servers that admit only the gateway's key, the CURVE gateway
// routing to them, and an enrolled scientist asking through the `fedrx` CLI.
// Not thread-safe: use from the test's thread.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "services/core/curve_keys.h"
#include "services/core/redis_state_store.h"
#include "tests/support/child_process.h"
#include "tests/support/redis_server.h"

namespace fedrx::testing {

// The binaries a stack runs (the build's FEDRX_*_BIN paths).
struct StackBinaries {
  std::string coordinator;
  std::string gateway;
  std::string cli;
};

// One backend process: a CURVE server on loopback, ready once started.
struct Backend {
  std::string name;  // its config keys are FEDRX_<NAME>_* ("tox": FEDRX_TOX_*)
  std::unique_ptr<ChildProcess> process;
  std::string endpoint;
  int http = 0;
  core::CurveKeyPair keys;
  std::string public_file;
};

// A fresh CURVE key pair; a test failure (and an empty pair) if none could be made.
core::CurveKeyPair NewCurveKeyPair();

class GatewayStackTest : public ::testing::Test {
 protected:
  explicit GatewayStackTest(StackBinaries binaries) : binaries_(std::move(binaries)) {}

  // The temporary directory, Redis, and the gateway's key pair with the
  // clients file admitting it. Call first, under ASSERT_NO_FATAL_FAILURE.
  void StartRedis();
  // A client of the test's Redis (to seed the registry); nullptr, and a test
  // failure, when it cannot connect.
  std::unique_ptr<core::RedisStateStore> ConnectStore();
  // The coordinator as coordinator_, in CURVE mode.
  void StartCoordinator();
  // `binary` as backend `name` in CURVE mode admitting only the gateway (and
  // the clients AddClient added), with Redis, its endpoint, keys and HTTP port
  // in its environment (`extra` added over them); returns once its /readyz
  // answers 200. An endpoint, HTTP port or key pair already in `s` is kept:
  // a backend stopped by the test restarts where its clients expect it.
  void StartBackend(const std::string& name, const std::string& binary,
                    const std::map<std::string, std::string>& extra, Backend& s);
  // A new key pair for a client of the backends besides the gateway (the
  // orchestrator calls the domain services), added to the clients file the
  // backends started afterwards read.
  core::CurveKeyPair AddClient(const std::string& id, const std::string& role);
  // The gateway, with coordinator_ (CURVE when it has a public key file,
  // else plaintext) and the domain services `services` behind it; then
  // scientist-1 is enrolled directly in Redis (the bootstrap), its key in
  // scientist_key_.
  void StartGateway(const std::vector<const Backend*>& services);

  // Prints every process's output when the test failed.
  void TearDown() override;

  std::string Path(const std::string& name) const { return dir_.path() + "/" + name; }
  // Writes `text` to Path(name), mode 0644; returns the path.
  std::string Write(const std::string& name, const std::string& text);
  // FEDRX_REDIS_* naming the test's Redis, and a short drain timeout.
  std::map<std::string, std::string> RedisEnv() const;
  std::string RedisAddress() const { return "127.0.0.1:" + std::to_string(redis_->port()); }

  // Runs the `fedrx` CLI with `args`; its exit code (-1 if it could not run or
  // did not exit within a minute) and its output.
  std::pair<int, std::string> Cli(const std::vector<std::string>& args);
  // The CLI as the enrolled scientist, through the gateway.
  std::pair<int, std::string> Ask(std::vector<std::string> args);
  // One sample of the Prometheus exposition at 127.0.0.1:<port>/metrics (-1 when absent).
  double Metric(int port, const std::string& name, const std::string& labels);

  StackBinaries binaries_;
  TempDir dir_;
  std::unique_ptr<RedisServer> redis_;
  core::CurveKeyPair gateway_keys_;
  std::string clients_file_;
  Backend coordinator_;
  std::unique_ptr<ChildProcess> gateway_;
  std::string gateway_endpoint_, gateway_public_file_, scientist_key_;
  int gateway_http_ = 0;

 private:
  std::vector<const Backend*> started_;
};

}  // namespace fedrx::testing
