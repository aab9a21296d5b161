#include "tests/support/gateway_stack.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <fstream>
#include <iostream>

#include "tests/support/http_client.h"

namespace fedrx::testing {
namespace {

using namespace std::chrono_literals;

constexpr auto kStartTimeout = 20s;

// "tox" -> "TOX", for the FEDRX_<NAME>_* environment variables.
std::string Upper(std::string name) {
  for (char& c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return name;
}

std::string LoopbackEndpoint() { return "tcp://127.0.0.1:" + std::to_string(FreeTcpPort()); }

}  // namespace

core::CurveKeyPair NewCurveKeyPair() {
  auto pair = core::GenerateCurveKeyPair();
  EXPECT_TRUE(pair.ok()) << pair.status();
  return pair.ok() ? *pair : core::CurveKeyPair{};
}

void GatewayStackTest::StartRedis() {
  ASSERT_FALSE(dir_.path().empty());
  auto redis = RedisServer::Start();
  ASSERT_TRUE(redis.ok()) << redis.status();
  redis_ = std::move(*redis);
  gateway_keys_ = NewCurveKeyPair();
  clients_file_ = Write("clients", "gateway-1 gateway " + gateway_keys_.public_key + "\n");
}

std::unique_ptr<core::RedisStateStore> GatewayStackTest::ConnectStore() {
  core::RedisOptions options;
  options.port = redis_->port();
  auto store = core::RedisStateStore::Connect(options, nullptr);
  EXPECT_TRUE(store.ok()) << store.status();
  return store.ok() ? std::move(*store) : nullptr;
}

void GatewayStackTest::StartCoordinator() {
  ASSERT_NO_FATAL_FAILURE(StartBackend("coordinator", binaries_.coordinator, {}, coordinator_));
}

void GatewayStackTest::StartBackend(const std::string& name, const std::string& binary,
                                    const std::map<std::string, std::string>& extra, Backend& s) {
  s.name = name;
  if (s.endpoint.empty()) s.endpoint = LoopbackEndpoint();
  if (s.http == 0) s.http = FreeTcpPort();
  if (s.keys.public_key.empty()) s.keys = NewCurveKeyPair();
  const std::string key_file = Path(name + ".key");
  ASSERT_TRUE(core::WriteCurveKeyPair(key_file, s.keys).ok());
  s.public_file = Path(name + ".pub");
  ASSERT_TRUE(core::WriteCurvePublicKey(s.public_file, s.keys.public_key).ok());
  const std::string upper = Upper(name);
  std::map<std::string, std::string> env = RedisEnv();
  env["FEDRX_" + upper + "_ENDPOINT"] = s.endpoint;
  env["FEDRX_" + upper + "_CURVE_KEY_FILE"] = key_file;
  env["FEDRX_" + upper + "_CLIENTS_FILE"] = clients_file_;
  env["FEDRX_HTTP_LISTEN"] = "127.0.0.1:" + std::to_string(s.http);
  for (const auto& [k, v] : extra) env[k] = v;
  auto child = ChildProcess::Spawn(binary, {}, env);
  ASSERT_TRUE(child.ok()) << child.status();
  s.process = std::move(*child);
  if (std::find(started_.begin(), started_.end(), &s) == started_.end()) started_.push_back(&s);
  ASSERT_TRUE(WaitForHttp200(s.http, "/readyz", kStartTimeout))
      << name << " never became ready: " << s.process->Log();
}

core::CurveKeyPair GatewayStackTest::AddClient(const std::string& id, const std::string& role) {
  core::CurveKeyPair keys = NewCurveKeyPair();
  std::ofstream(clients_file_, std::ios::app)
      << id << " " << role << " " << keys.public_key << "\n";
  return keys;
}

void GatewayStackTest::StartGateway(const std::vector<const Backend*>& services) {
  const std::string key_file = Path("gateway.key");
  ASSERT_TRUE(core::WriteCurveKeyPair(key_file, gateway_keys_).ok());
  gateway_public_file_ = Path("gateway.pub");
  ASSERT_TRUE(core::WriteCurvePublicKey(gateway_public_file_, gateway_keys_.public_key).ok());
  gateway_endpoint_ = LoopbackEndpoint();
  gateway_http_ = FreeTcpPort();
  std::map<std::string, std::string> env = RedisEnv();
  env["FEDRX_GATEWAY_SITES_ENDPOINT"] = gateway_endpoint_;
  env["FEDRX_GATEWAY_COORDINATOR_ENDPOINT"] = coordinator_.endpoint;
  env["FEDRX_GATEWAY_CURVE_KEY_FILE"] = key_file;
  // A coordinator a test started in plaintext has no public key.
  if (!coordinator_.public_file.empty()) {
    env["FEDRX_GATEWAY_COORDINATOR_PUBLIC_KEY_FILE"] = coordinator_.public_file;
  }
  env["FEDRX_HTTP_LISTEN"] = "127.0.0.1:" + std::to_string(gateway_http_);
  // These stacks check the services behind the gateway, some with bursts of
  // requests from one scientist; the gateway's rate limits have their own
  // tests (tests/gateway), so they do not throttle here.
  env["FEDRX_GATEWAY_LIMITS_SCIENTIST_RATE"] = "0";
  for (const Backend* s : services) {
    const std::string upper = Upper(s->name);
    env["FEDRX_GATEWAY_SERVICES_" + upper + "_ENDPOINT"] = s->endpoint;
    env["FEDRX_GATEWAY_SERVICES_" + upper + "_PUBLIC_KEY_FILE"] = s->public_file;
  }
  auto child = ChildProcess::Spawn(binaries_.gateway, {}, env);
  ASSERT_TRUE(child.ok()) << child.status();
  gateway_ = std::move(*child);
  ASSERT_TRUE(WaitForHttp200(gateway_http_, "/readyz", kStartTimeout))
      << "the gateway never became ready: " << gateway_->Log();
  // The first enrolled institution goes to Redis directly (the bootstrap).
  scientist_key_ = Path("scientist.key");
  auto [code, out] = Cli({"institutions", "enrol", "--redis", RedisAddress(), "--id", "scientist-1",
                          "--name", "Dr S", "--role", "scientist", "--key-out", scientist_key_});
  ASSERT_EQ(code, 0) << out;
}

void GatewayStackTest::TearDown() {
  if (!HasFailure()) return;
  for (const Backend* s : started_) {
    if (s->process != nullptr) std::cerr << "--- " << s->name << "\n" << s->process->Log();
  }
  if (gateway_ != nullptr) std::cerr << "--- gateway\n" << gateway_->Log();
}

std::string GatewayStackTest::Write(const std::string& name, const std::string& text) {
  const std::string path = Path(name);
  std::ofstream(path) << text;
  EXPECT_EQ(::chmod(path.c_str(), 0644), 0);
  return path;
}

std::map<std::string, std::string> GatewayStackTest::RedisEnv() const {
  return {{"FEDRX_REDIS_HOST", "127.0.0.1"},
          {"FEDRX_REDIS_PORT", std::to_string(redis_->port())},
          {"FEDRX_REDIS_STARTUP_WAIT", "5s"},
          {"FEDRX_RUNNER_DRAIN_TIMEOUT", "2s"}};
}

std::pair<int, std::string> GatewayStackTest::Cli(const std::vector<std::string>& args) {
  auto child = ChildProcess::Spawn(binaries_.cli, args);
  EXPECT_TRUE(child.ok()) << child.status();
  if (!child.ok()) return {-1, ""};
  auto code = (*child)->Wait(60s);
  EXPECT_TRUE(code.ok()) << "the CLI did not exit: " << (*child)->Log();
  return {code.ok() ? *code : -1, (*child)->Log()};
}

std::pair<int, std::string> GatewayStackTest::Ask(std::vector<std::string> args) {
  args.insert(args.begin(), {"--gateway", gateway_endpoint_, "--key-file", scientist_key_,
                             "--server-key-file", gateway_public_file_});
  return Cli(args);
}

double GatewayStackTest::Metric(int port, const std::string& name, const std::string& labels) {
  auto r = HttpGet(port, "/metrics");
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? MetricValue(r->body, name, labels) : -1;
}

}  // namespace fedrx::testing
