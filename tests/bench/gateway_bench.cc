// fedrx_gateway_bench: what the gateway costs, in one run, on tcp://127.0.0.1:
//   paths   (1) client -> backend directly, plaintext;
//           (2) client -> backend directly, CURVE;
//           (3) client -> gateway (CURVE, enrolled identity, real Redis
//               registry, audit trail and study membership) -> backend;
//   traffic small requests (a scientist's GetStudy answered by a 100-byte
//           Ack) and 40 MB model updates (a site's ModelUpdate with a 40 MB
//           float32 tensor, answered by an Ack), request/reply round trips;
//   fairness one scientist floods the gateway as fast as it can, throttled
//           by its token bucket, while another measures its round trips
//           (paced, well under its own limit): its p50/p99 with and without
//           the flood, and how many of the flooder's messages were rate
//           limited. Twice: the flooder at normal priority (on one machine it
//           also takes the gateway's CPU), then at nice 19 (closer to a
//           flooder elsewhere).
// The backend is a stand-in for the coordinator: a ZmqBus server answering
// every request with core::Reply (so a forwarded request goes back to its
// origin). Gateway and backends each run on their own thread with their own
// bus; a real redis-server on a free loopback port holds the registry, the
// audit stream and the study's site list. Throughput and latency are measured
// with unlimited per-role rates (the mechanism's cost, not the policy's);
// the fairness gateway has finite per-role limits so the flooder hits them.
// Paths run in alternating blocks so they see the same machine load.
// Appends JSON lines {"bench","metric","value","unit","baseline","ratio"}
// to --out; a gateway path the gateway refuses is reported as null with the
// refusal on stderr.
//
// Usage: fedrx_gateway_bench [--out FILE] [--round-trips N] [--updates N]
//                            [--fair-samples N] [--fair-rate MSGS_PER_S]
//                            [--only small|update|fairness]
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <future>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

#include "gateway/gateway_policy.h"
#include "gateway/gateway_service.h"
#include "gateway/registry_authenticator.h"
#include "messages/codec/blob.h"
#include "messages/codec/message.h"
#include "services/core/authenticator.h"
#include "services/core/bus.h"
#include "services/core/clock.h"
#include "services/core/curve_keys.h"
#include "services/core/keys.h"
#include "services/core/metrics.h"
#include "services/core/redis_state_store.h"
#include "services/core/zmq_bus.h"
#include "services/security/audit_log.h"
#include "services/security/institution_registry.h"
#include "tests/bench/json_lines.h"
#include "tests/support/redis_server.h"

namespace fedrx::bench {
namespace {

using Steady = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr char kBench[] = "gateway";
constexpr char kStudy[] = "bench-study";
constexpr char kScientist[] = "bench-scientist";
constexpr char kSite[] = "bench-site";
constexpr char kFlooder[] = "bench-flooder";
constexpr char kWatcher[] = "bench-watcher";

constexpr std::size_t kTensorFloats = 10'000'000;
constexpr std::size_t kTensorBytes = kTensorFloats * sizeof(float);
constexpr std::size_t kReplyBytes = 100;
constexpr std::size_t kMaxTensorBytes = 64u << 20;

constexpr int kBlocks = 4;
constexpr int kSmallWarmup = 500;
// Requests in flight at once in the pipelined small-message runs.
constexpr int kWindow = 64;
constexpr int kUpdateWarmup = 2;
constexpr auto kSmallTimeout = 10s;
constexpr auto kUpdateTimeout = 60s;
// The measured scientist's pace during the fairness runs.
constexpr auto kFairInterval = 4ms;
constexpr int kFairBlocks = 8;
constexpr int kFairWarmup = 100;
// Checks (each after a short wait) for the flood to start or to drain; it
// has drained once no answer came for kQuietChecks checks in a row (the
// gateway drops answers the flooder's full queue cannot take).
constexpr int kSettleChecks = 400;
constexpr auto kSettleWait = 5ms;
constexpr int kQuietChecks = 20;

struct Config {
  std::string out;
  int round_trips = 6000;
  int updates = 16;
  int fair_samples = 1000;
  std::int64_t fair_rate = 500;
  std::string only;  // one phase, or all when empty
  bool Runs(const std::string& phase) const { return only.empty() || only == phase; }
};

[[noreturn]] void Die(const std::string& what) {
  std::cerr << "fedrx_gateway_bench: " << what << "\n";
  std::exit(1);
}

template <typename T>
T Must(core::Result<T>&& r, const std::string& what) {
  if (!r.ok()) Die(what + ": " + r.status().ToString());
  return std::move(*r);
}

void Must(const core::Status& s, const std::string& what) {
  if (!s.ok()) Die(what + ": " + s.ToString());
}

core::BusOptions Options(const std::string& name) {
  core::BusOptions o;
  o.name = name;
  o.limits.max_tensor_bytes = kMaxTensorBytes;
  return o;
}

core::BusOptions CurveClientOptions(const std::string& name, const core::CurveKeyPair& own,
                                    const std::string& server_key) {
  core::BusOptions o = Options(name);
  o.curve_public_key = own.public_key;
  o.curve_secret_key = own.secret_key;
  o.curve_server_key = server_key;
  return o;
}

// ---- Backend: the coordinator's stand-in -------------------------------------------

// Admits a fixed set of keys (the direct CURVE path has no registry).
class KeySetAuthenticator final : public core::Authenticator {
 public:
  explicit KeySetAuthenticator(std::map<std::string, core::Identity> keys)
      : keys_(std::move(keys)) {}
  core::Result<core::Identity> Authenticate(std::string_view public_key_z85) override {
    auto it = keys_.find(std::string(public_key_z85));
    if (it == keys_.end()) {
      return core::Status(core::StatusCode::kPermissionDenied, "not a bench key", "backend");
    }
    return it->second;
  }

 private:
  std::map<std::string, core::Identity> keys_;
};

// Base of the threads that own a bus: started by the constructor of the
// subclass through Launch, stopped and joined by Stop (or the destructor).
class BusThread {
 public:
  virtual ~BusThread() { Stop(); }
  const std::string& endpoint() const { return endpoint_; }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }

 protected:
  // Runs `body` on a new thread and waits until it reported its endpoint
  // (or failed, which ends the bench).
  void Launch(std::function<void(std::promise<std::string>&)> body) {
    std::promise<std::string> ready;
    std::future<std::string> endpoint = ready.get_future();
    thread_ =
        std::thread([body = std::move(body), ready = std::move(ready)]() mutable { body(ready); });
    endpoint_ = endpoint.get();
    if (endpoint_.empty()) Die("a bench thread failed to start");
  }
  std::atomic<bool> stop_{false};

 private:
  std::thread thread_;
  std::string endpoint_;
};

// Answers GetStudy with a 100-byte Ack, ModelUpdate with an Ack once its
// 40 MB tensor arrived whole, HealthCheck with a HealthStatus.
class Backend final : public BusThread {
 public:
  // Plaintext, or with `server_keys` a CURVE server admitting `admitted`.
  Backend(std::string name, std::optional<core::CurveKeyPair> server_keys,
          std::map<std::string, core::Identity> admitted = {})
      : name_(std::move(name)), metrics_(name_) {
    Launch([this, server_keys, admitted](std::promise<std::string>& ready) {
      Run(server_keys, admitted, ready);
    });
  }
  ~Backend() override { Stop(); }
  std::uint64_t bad() const { return bad_; }

 private:
  void Run(const std::optional<core::CurveKeyPair>& keys,
           const std::map<std::string, core::Identity>& admitted,
           std::promise<std::string>& ready) {
    core::SystemClock clock;
    core::BusOptions o = Options(name_);
    KeySetAuthenticator authenticator(admitted);
    if (keys) {
      o.curve_public_key = keys->public_key;
      o.curve_secret_key = keys->secret_key;
    }
    core::ZmqBus bus(o, metrics_, clock);
    bus.SetAuthenticator(&authenticator);
    const std::string detail(kReplyBytes, 'r');
    core::Status served = bus.Serve("tcp://127.0.0.1:*", [&](core::Inbound&& in) {
      const codec::Body& body = in.message.body;
      core::Status s;
      if (std::holds_alternative<codec::GetStudy>(body)) {
        s = core::Reply(bus, in, codec::Ack{detail});
      } else if (std::holds_alternative<codec::ModelUpdate>(body)) {
        const bool whole =
            in.message.tensors.size() == 1 && in.message.tensors[0].data.size() == kTensorBytes;
        if (!whole) ++bad_;
        s = core::Reply(bus, in, codec::Ack{whole ? "stored" : "bad update"});
      } else if (std::holds_alternative<codec::HealthCheck>(body)) {
        codec::HealthStatus health;
        health.service = name_;
        health.ready = true;
        s = core::Reply(bus, in, std::move(health));
      } else {
        ++bad_;
        s = core::ReplyError(
            bus, in,
            core::Status(core::StatusCode::kUnimplemented, "the bench backend does not answer this",
                         codec::BodyName(body)));
      }
      if (!s.ok()) ++bad_;
    });
    if (!served.ok()) {
      std::cerr << name_ << ": " << served << "\n";
      ready.set_value("");
      return;
    }
    ready.set_value(bus.ServedEndpoint());
    while (!stop_) {
      if (core::Status s = bus.Poll(20ms); !s.ok()) std::cerr << name_ << ": " << s << "\n";
    }
  }

  std::string name_;
  core::Metrics metrics_;
  std::atomic<std::uint64_t> bad_{0};
};

// ---- Gateway -------------------------------------------------------------------------

// The real GatewayService in CURVE mode on its own thread, with its own Redis
// connection for the registry, the audit trail and study membership.
class Gateway final : public BusThread {
 public:
  Gateway(int redis_port, const core::CurveKeyPair& keys, std::string coordinator,
          gateway::GatewayLimits limits)
      : metrics_("gateway") {
    Launch([this, redis_port, keys, coordinator = std::move(coordinator),
            limits = std::move(limits)](std::promise<std::string>& ready) {
      Run(redis_port, keys, coordinator, limits, ready);
    });
  }
  ~Gateway() override { Stop(); }
  const core::Metrics& metrics() const { return metrics_; }

 private:
  void Run(int redis_port, const core::CurveKeyPair& keys, const std::string& coordinator,
           const gateway::GatewayLimits& limits, std::promise<std::string>& ready) {
    core::SystemClock clock;
    core::RedisOptions redis;
    redis.port = redis_port;
    auto store = core::RedisStateStore::Connect(redis, &metrics_);
    if (!store.ok()) {
      std::cerr << "gateway: " << store.status() << "\n";
      ready.set_value("");
      return;
    }
    security::InstitutionRegistry registry(**store, clock);
    security::AuditLog audit(**store, clock, metrics_);
    gateway::RegistryAuthenticator authenticator(registry);
    core::BusOptions o = Options("gateway");
    o.curve_public_key = keys.public_key;
    o.curve_secret_key = keys.secret_key;
    core::ZmqBus bus(o, metrics_, clock);
    bus.SetAuthenticator(&authenticator);
    gateway::GatewayOptions options;
    options.sites_endpoint = "tcp://127.0.0.1:*";
    options.coordinator_endpoint = coordinator;
    gateway::GatewaySecurity security;
    security.registry = &registry;
    security.audit = &audit;
    security.store = store->get();
    security.limits = limits;
    gateway::GatewayService service(options, bus, metrics_, clock, security);
    if (core::Status s = service.Start(); !s.ok()) {
      std::cerr << "gateway: " << s << "\n";
      ready.set_value("");
      return;
    }
    ready.set_value(bus.ServedEndpoint());
    while (!stop_) {
      if (core::Status s = bus.Poll(10ms); !s.ok()) std::cerr << "gateway poll: " << s << "\n";
      if (core::Status s = service.Tick(); !s.ok()) std::cerr << "gateway tick: " << s << "\n";
    }
  }

  core::Metrics metrics_;
};

// ---- Clients -------------------------------------------------------------------------

// A 40 MB float32 tensor lent to the bus for each update without a copy, and
// lent again only once zmq gave it back (a fresh 40 MB buffer per send would
// be measured as page faults).
class UpdateTensor {
 public:
  UpdateTensor() : values_(kTensorFloats, 0.25f) {}
  codec::Tensor Lend() {
    while (lent_.load(std::memory_order_acquire)) lent_.wait(true);
    lent_.store(true, std::memory_order_relaxed);
    return codec::Tensor{"weights",
                         codec::DType::kFloat32,
                         {static_cast<std::int64_t>(kTensorFloats)},
                         codec::Blob(this, reinterpret_cast<const std::byte*>(values_.data()),
                                     kTensorBytes, &GiveBack)};
  }

 private:
  // May run on zmq's I/O thread.
  static void GiveBack(void* owner) {
    auto* self = static_cast<UpdateTensor*>(owner);
    self->lent_.store(false, std::memory_order_release);
    self->lent_.notify_all();
  }
  std::vector<float> values_;
  std::atomic<bool> lent_{false};
};

// One client bus and its connection, used from the main thread.
class Client {
 public:
  Client(const std::string& name, core::BusOptions options, const std::string& endpoint)
      : metrics_(name), bus_(std::move(options), metrics_, clock_) {
    channel_ = Must(bus_.Connect(endpoint, nullptr), name + " connect");
  }
  core::Result<codec::Message> Call(codec::Message m, std::chrono::milliseconds timeout) {
    return core::Call(bus_, channel_, std::move(m), timeout);
  }
  core::Status Request(codec::Message m, std::chrono::milliseconds timeout,
                       core::Bus::ReplyCallback on_reply) {
    return bus_.Request(channel_, std::move(m), timeout, std::move(on_reply));
  }
  core::Status Poll(std::chrono::milliseconds max_wait) { return bus_.Poll(max_wait); }
  // Bytes this client sent and received (envelopes and tensors).
  double BytesMoved() const {
    const std::string name = "fedrx_" + metrics_.service() + "_bytes_total";
    return metrics_.Read(name, {{"direction", "out"}}) + metrics_.Read(name, {{"direction", "in"}});
  }

 private:
  core::SystemClock clock_;
  core::Metrics metrics_;
  core::ZmqBus bus_;
  core::ChannelId channel_ = -1;
};

codec::Message SmallRequest() { return core::MakeMessage(codec::GetStudy{kStudy}); }

// ---- Measurement ---------------------------------------------------------------------

struct Path {
  std::string name;
  Client* client;
  std::string failure;  // why the path was dropped; empty while it works
  std::vector<double> latencies_us;
  double seconds = 0;
  double bytes = 0;
};

struct Summary {
  std::optional<double> per_second;
  std::optional<double> mb_per_second;
  std::optional<double> p50_us;
  std::optional<double> p99_us;
};

double Percentile(std::vector<double>& sorted, double q) {
  const std::size_t i = static_cast<std::size_t>(q * static_cast<double>(sorted.size() - 1));
  return sorted[i];
}

Summary Summarize(Path& path) {
  Summary s;
  if (!path.failure.empty() || path.latencies_us.empty()) return s;
  std::sort(path.latencies_us.begin(), path.latencies_us.end());
  s.per_second = static_cast<double>(path.latencies_us.size()) / path.seconds;
  s.mb_per_second = path.bytes / path.seconds / 1e6;
  s.p50_us = Percentile(path.latencies_us, 0.50);
  s.p99_us = Percentile(path.latencies_us, 0.99);
  return s;
}

// One round trip of `make()`'s message; the reply must be an Ack.
core::Status RoundTrip(Client& client, const std::function<codec::Message()>& make,
                       std::chrono::milliseconds timeout) {
  core::Result<codec::Message> reply = client.Call(make(), timeout);
  if (!reply.ok()) return reply.status();
  if (!std::holds_alternative<codec::Ack>(reply->body)) {
    return core::Internal(std::string("expected an Ack, got ") + codec::BodyName(reply->body),
                          "reply");
  }
  return core::Status::Ok();
}

// Warms every path up, then runs `count` timed round trips on each, in
// kBlocks alternating blocks. A path whose round trip fails is dropped.
void MeasureRoundTrips(std::vector<Path>& paths, const std::function<codec::Message()>& make,
                       int warmup, int count, std::chrono::milliseconds timeout) {
  for (Path& p : paths) {
    for (int i = 0; i < warmup && p.failure.empty(); ++i) {
      if (core::Status s = RoundTrip(*p.client, make, timeout); !s.ok()) p.failure = s.ToString();
    }
  }
  for (int b = 0; b < kBlocks; ++b) {
    const int n = count / kBlocks + (b < count % kBlocks ? 1 : 0);
    for (Path& p : paths) {
      if (!p.failure.empty()) continue;
      const double bytes_before = p.client->BytesMoved();
      const auto start = Steady::now();
      for (int i = 0; i < n; ++i) {
        const auto t0 = Steady::now();
        if (core::Status s = RoundTrip(*p.client, make, timeout); !s.ok()) {
          p.failure = s.ToString();
          break;
        }
        p.latencies_us.push_back(
            std::chrono::duration<double, std::micro>(Steady::now() - t0).count());
      }
      p.seconds += std::chrono::duration<double>(Steady::now() - start).count();
      p.bytes += p.client->BytesMoved() - bytes_before;
    }
  }
  for (const Path& p : paths) {
    if (!p.failure.empty()) std::cerr << "path " << p.name << " dropped: " << p.failure << "\n";
  }
}

// `count` small requests with up to kWindow of them unanswered at a time:
// what a path carries when it is kept busy, rather than one round trip at a
// time. Adds to p.seconds and p.bytes.
core::Status Pipelined(Path& p, int count) {
  int sent = 0;
  int answered = 0;
  core::Status failure;
  const auto on_reply = [&](core::Result<codec::Message>&& reply) {
    ++answered;
    if (!failure.ok()) return;
    if (!reply.ok()) {
      failure = reply.status();
    } else if (!std::holds_alternative<codec::Ack>(reply->body)) {
      failure = core::Internal(std::string("expected an Ack, got ") + codec::BodyName(reply->body),
                               "reply");
    }
  };
  const double bytes_before = p.client->BytesMoved();
  const auto start = Steady::now();
  while (answered < count && failure.ok()) {
    while (sent < count && sent - answered < kWindow) {
      core::Status s = p.client->Request(SmallRequest(), kSmallTimeout, on_reply);
      if (s.code() == core::StatusCode::kResourceExhausted) break;  // queue full: poll first
      FEDRX_RETURN_IF_ERROR(s);
      ++sent;
    }
    FEDRX_RETURN_IF_ERROR(p.client->Poll(kSmallTimeout));
  }
  p.seconds += std::chrono::duration<double>(Steady::now() - start).count();
  p.bytes += p.client->BytesMoved() - bytes_before;
  p.latencies_us.resize(p.latencies_us.size() + static_cast<std::size_t>(count));
  return failure;
}

// Runs Pipelined on every path in kBlocks alternating blocks and emits the
// rates, the gateway's against direct CURVE and direct CURVE's against
// plaintext.
void MeasurePipelined(JsonLines& out, std::vector<Path>& paths, int count) {
  for (int b = 0; b < kBlocks; ++b) {
    const int n = count / kBlocks + (b < count % kBlocks ? 1 : 0);
    for (Path& p : paths) {
      if (!p.failure.empty()) continue;
      if (core::Status s = Pipelined(p, n); !s.ok()) {
        p.failure = s.ToString();
        std::cerr << "pipelined path " << p.name << " dropped: " << p.failure << "\n";
      }
    }
  }
  std::map<std::string, Summary> s;
  for (Path& p : paths) s[p.name] = Summarize(p);
  const std::map<std::string, std::string> baseline_of = {{"direct_curve", "direct_plain"},
                                                          {"gateway", "direct_curve"}};
  for (const Path& p : paths) {
    Summary base;
    if (auto it = baseline_of.find(p.name); it != baseline_of.end()) base = s[it->second];
    const std::string prefix = "small_pipelined_" + p.name + "_";
    out.Emit(kBench, prefix + "msgs_per_s", s[p.name].per_second, "msg/s", base.per_second);
    out.Emit(kBench, prefix + "mb_per_s", s[p.name].mb_per_second, "MB/s", base.mb_per_second);
  }
}

// Emits each path's figures; the gateway's against the direct CURVE path
// (the same encryption, without the gateway) and direct CURVE's against
// plaintext. Ratios are path / baseline: above 1 for latency means slower,
// below 1 for throughput means fewer.
void Report(JsonLines& out, const std::string& traffic, std::vector<Path>& paths,
            double latency_scale, const char* latency_unit) {
  std::map<std::string, Summary> s;
  for (Path& p : paths) s[p.name] = Summarize(p);
  const std::map<std::string, std::string> baseline_of = {{"direct_curve", "direct_plain"},
                                                          {"gateway", "direct_curve"}};
  const auto scaled = [&](std::optional<double> us) -> std::optional<double> {
    if (!us) return std::nullopt;
    return *us / latency_scale;
  };
  for (const Path& p : paths) {
    const Summary& mine = s[p.name];
    Summary base;
    if (auto it = baseline_of.find(p.name); it != baseline_of.end()) base = s[it->second];
    const std::string prefix = traffic + "_" + p.name + "_";
    out.Emit(kBench, prefix + "msgs_per_s", mine.per_second, "msg/s", base.per_second);
    out.Emit(kBench, prefix + "mb_per_s", mine.mb_per_second, "MB/s", base.mb_per_second);
    out.Emit(kBench, prefix + "p50", scaled(mine.p50_us), latency_unit, scaled(base.p50_us));
    out.Emit(kBench, prefix + "p99", scaled(mine.p99_us), latency_unit, scaled(base.p99_us));
  }
  // What the gateway adds to a round trip over the direct CURVE connection.
  const Summary& gw = s["gateway"];
  const Summary& direct = s["direct_curve"];
  const auto added = [&](std::optional<double> a, std::optional<double> b) {
    return a && b ? std::optional<double>((*a - *b) / latency_scale) : std::nullopt;
  };
  out.Emit(kBench, traffic + "_gateway_added_p50", added(gw.p50_us, direct.p50_us), latency_unit);
  out.Emit(kBench, traffic + "_gateway_added_p99", added(gw.p99_us, direct.p99_us), latency_unit);
}

// ---- Fairness --------------------------------------------------------------------------

// A scientist sending GetStudy one-way as fast as its connection takes them
// while `flooding`, counting the answers: Acks (forwarded and answered by the
// backend), rate-limit refusals (kResourceExhausted), other errors.
class Flooder {
 public:
  // `nice` > 0 lowers the priority of the flooder's thread and of the zmq I/O
  // thread its bus starts (which inherits it).
  Flooder(core::BusOptions options, std::string endpoint, int nice)
      : options_(std::move(options)), endpoint_(std::move(endpoint)), nice_(nice) {
    thread_ = std::thread([this] { Run(); });
  }
  ~Flooder() {
    stop_ = true;
    thread_.join();
  }
  std::atomic<bool> flooding{false};
  std::atomic<std::uint64_t> sent{0};
  std::atomic<std::uint64_t> admitted{0};
  std::atomic<std::uint64_t> rate_limited{0};
  std::atomic<std::uint64_t> other_errors{0};
  std::uint64_t answered() const { return admitted + rate_limited + other_errors; }

 private:
  void Run() {
    if (nice_ != 0 && setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), nice_) != 0) {
      Die("setpriority of the flooder failed");
    }
    core::SystemClock clock;
    core::Metrics metrics("flooder");
    core::ZmqBus bus(options_, metrics, clock);
    const core::ChannelId channel = Must(
        bus.Connect(endpoint_,
                    [this](codec::Message&& m) {
                      if (std::holds_alternative<codec::Ack>(m.body)) {
                        ++admitted;
                      } else if (const auto* e = std::get_if<codec::Error>(&m.body);
                                 e != nullptr && e->code == codec::ErrorCode::kResourceExhausted) {
                        ++rate_limited;
                      } else {
                        ++other_errors;
                      }
                    }),
        "flooder connect");
    while (!stop_) {
      bool full = false;
      if (flooding) {
        // A burst, then the answers: the queue's high-water mark is the limit.
        for (int i = 0; i < 256; ++i) {
          if (!bus.Send(channel, SmallRequest()).ok()) {
            full = true;
            break;
          }
          ++sent;
        }
      }
      const auto wait = !flooding ? 5ms : full ? 1ms : 0ms;
      if (core::Status s = bus.Poll(wait); !s.ok()) std::cerr << "flooder: " << s << "\n";
    }
  }

  core::BusOptions options_;
  std::string endpoint_;
  int nice_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

struct Fairness {
  std::vector<double> quiet_us;
  std::vector<double> flood_us;
  double flood_seconds = 0;
  std::string failure;
};

// Polls `done` up to kSettleChecks times, kSettleWait apart.
bool Settle(const std::function<bool()>& done) {
  for (int i = 0; i < kSettleChecks; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(kSettleWait);
  }
  return done();
}

// The watcher's paced round trips, appended to `latencies_us`.
core::Status PacedRoundTrips(Client& watcher, int n, std::vector<double>& latencies_us) {
  auto next = Steady::now();
  for (int i = 0; i < n; ++i) {
    std::this_thread::sleep_until(next);
    const auto t0 = Steady::now();
    FEDRX_RETURN_IF_ERROR(RoundTrip(watcher, SmallRequest, kSmallTimeout));
    const auto t1 = Steady::now();
    latencies_us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
    next = std::max(next + kFairInterval, t1);
  }
  return core::Status::Ok();
}

Fairness MeasureFairness(Client& watcher, Flooder& flooder, int samples) {
  Fairness f;
  // Paced like the measurement: a burst would spend the watcher's own tokens.
  std::vector<double> warmup;
  if (core::Status s = PacedRoundTrips(watcher, kFairWarmup, warmup); !s.ok()) {
    f.failure = "warmup: " + s.ToString();
  }
  for (int b = 0; b < kFairBlocks && f.failure.empty(); ++b) {
    const int n = samples / kFairBlocks + (b < samples % kFairBlocks ? 1 : 0);
    if (core::Status s = PacedRoundTrips(watcher, n, f.quiet_us); !s.ok()) {
      f.failure = "quiet: " + s.ToString();
      break;
    }
    // The flood is on once the gateway has started refusing it.
    const std::uint64_t limited_before = flooder.rate_limited;
    flooder.flooding = true;
    Settle([&] { return flooder.rate_limited > limited_before; });
    const auto start = Steady::now();
    core::Status s = PacedRoundTrips(watcher, n, f.flood_us);
    f.flood_seconds += std::chrono::duration<double>(Steady::now() - start).count();
    flooder.flooding = false;
    if (!s.ok()) {
      f.failure = "under flood: " + s.ToString();
      break;
    }
    // Quiet again once the answers stopped coming.
    std::uint64_t last = flooder.answered();
    int unchanged = 0;
    Settle([&] {
      const std::uint64_t now = flooder.answered();
      unchanged = now == last ? unchanged + 1 : 0;
      last = now;
      return unchanged >= kQuietChecks;
    });
  }
  if (!f.failure.empty()) std::cerr << "fairness dropped: " << f.failure << "\n";
  return f;
}

void ReportFairness(JsonLines& out, const std::string& prefix, Fairness& f, const Flooder& flooder,
                    const core::Metrics& gateway_metrics) {
  std::optional<double> quiet50, quiet99, flood50, flood99;
  if (f.failure.empty() && !f.quiet_us.empty() && !f.flood_us.empty()) {
    std::sort(f.quiet_us.begin(), f.quiet_us.end());
    std::sort(f.flood_us.begin(), f.flood_us.end());
    quiet50 = Percentile(f.quiet_us, 0.50);
    quiet99 = Percentile(f.quiet_us, 0.99);
    flood50 = Percentile(f.flood_us, 0.50);
    flood99 = Percentile(f.flood_us, 0.99);
  }
  // Ratio flood / quiet: 1.10 is the "not slowed beyond 10%".
  out.Emit(kBench, prefix + "watcher_quiet_p50", quiet50, "us");
  out.Emit(kBench, prefix + "watcher_quiet_p99", quiet99, "us");
  out.Emit(kBench, prefix + "watcher_flood_p50", flood50, "us", quiet50);
  out.Emit(kBench, prefix + "watcher_flood_p99", flood99, "us", quiet99);
  const double sent = static_cast<double>(flooder.sent);
  const std::optional<double> seconds =
      f.flood_seconds > 0 ? std::optional<double>(f.flood_seconds) : std::nullopt;
  out.Emit(kBench, prefix + "flood_sent", sent, "msg");
  out.Emit(kBench, prefix + "flood_sent_per_s",
           seconds ? std::optional(sent / *seconds) : std::nullopt, "msg/s");
  out.Emit(kBench, prefix + "flood_admitted", static_cast<double>(flooder.admitted), "msg");
  // baseline = sent, so ratio is the share refused over the limit.
  out.Emit(kBench, prefix + "flood_rate_limited", static_cast<double>(flooder.rate_limited), "msg",
           sent);
  out.Emit(kBench, prefix + "flood_other_errors", static_cast<double>(flooder.other_errors), "msg");
  // Refusals the gateway could not deliver: the flooder's queue was full.
  out.Emit(kBench, prefix + "flood_unanswered",
           static_cast<double>(flooder.sent - flooder.answered()), "msg");
  out.Emit(kBench, prefix + "gateway_rate_limited_total",
           gateway_metrics.Read("fedrx_gateway_rate_limited_total", {{"role", "scientist"}}),
           "msg");
}

// ---- Setup -----------------------------------------------------------------------------

Config ParseArgs(int argc, char** argv) {
  Config c;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) Die(arg + " needs a value");
      return argv[++i];
    };
    const auto positive = [&]() -> long long {
      const std::string v = value();
      char* end = nullptr;
      const long long n = std::strtoll(v.c_str(), &end, 10);
      if (end == v.c_str() || *end != '\0' || n <= 0) Die(arg + " needs a positive integer");
      return n;
    };
    if (arg == "--out") {
      c.out = value();
    } else if (arg == "--round-trips") {
      c.round_trips = static_cast<int>(positive());
    } else if (arg == "--updates") {
      c.updates = static_cast<int>(positive());
    } else if (arg == "--fair-samples") {
      c.fair_samples = static_cast<int>(positive());
    } else if (arg == "--fair-rate") {
      c.fair_rate = positive();
    } else if (arg == "--only") {
      c.only = value();
      if (c.only != "small" && c.only != "update" && c.only != "fairness") {
        Die("--only takes small, update or fairness");
      }
    } else {
      Die("usage: fedrx_gateway_bench [--out FILE] [--round-trips N] [--updates N] "
          "[--fair-samples N] [--fair-rate MSGS_PER_S] [--only small|update|fairness]");
    }
  }
  return c;
}

// Every role unlimited: the gateway's own cost.
gateway::GatewayLimits UnlimitedLimits() {
  gateway::GatewayLimits limits;
  for (auto& [role, l] : limits.per_role) l = gateway::RoleLimits{0, 0, 0};
  return limits;
}

// Scientists limited to `rate` a second (burst `rate`), well above the
// watcher's pace and far below what a flood sends.
gateway::GatewayLimits FairnessLimits(std::int64_t rate) {
  gateway::GatewayLimits limits;
  limits.per_role["scientist"] = gateway::RoleLimits{rate, rate, 1u << 20};
  return limits;
}

int Main(int argc, char** argv) {
  const Config config = ParseArgs(argc, argv);
  JsonLines out(config.out);
  if (std::chrono::duration<double>(1s) / kFairInterval >= static_cast<double>(config.fair_rate)) {
    Die("--fair-rate must exceed the watcher's pace of " +
        std::to_string(static_cast<int>(1s / kFairInterval)) + " msg/s");
  }

  // Redis: the registry, the audit trail and the study's site list.
  auto redis = Must(testing::RedisServer::Start(), "redis-server");
  core::SystemClock clock;
  core::RedisOptions redis_options;
  redis_options.port = redis->port();
  auto store = Must(core::RedisStateStore::Connect(redis_options, nullptr), "redis");
  security::InstitutionRegistry registry(*store, clock);
  const auto enrol = [&](const char* id, security::Role role) {
    return Must(registry.Enrol(id, id, role), std::string("enrol ") + id).key_pair;
  };
  const core::CurveKeyPair scientist = enrol(kScientist, security::Role::kScientist);
  const core::CurveKeyPair site = enrol(kSite, security::Role::kSite);
  const core::CurveKeyPair flooder_keys = enrol(kFlooder, security::Role::kScientist);
  const core::CurveKeyPair watcher_keys = enrol(kWatcher, security::Role::kScientist);
  // The site joined the study: the gateway admits its updates only then.
  const core::Key study_sites = Must(core::keys::StudySites(kStudy), "study sites key");
  Must(store->SetAdd(study_sites, kSite).status(), "study membership");

  const core::CurveKeyPair gateway_keys = Must(core::GenerateCurveKeyPair(), "gateway keys");
  const core::CurveKeyPair backend_keys = Must(core::GenerateCurveKeyPair(), "backend keys");

  Backend plain_backend("backend_plain", std::nullopt);
  Backend curve_backend("backend_curve", backend_keys,
                        {{scientist.public_key, core::Identity{kScientist, "scientist"}},
                         {site.public_key, core::Identity{kSite, "site"}}});

  if (config.Runs("small") || config.Runs("update")) {
    auto gateway = std::make_unique<Gateway>(redis->port(), gateway_keys, plain_backend.endpoint(),
                                             UnlimitedLimits());
    Client small_plain("c_small_plain", Options("c-small-plain"), plain_backend.endpoint());
    Client small_curve("c_small_curve",
                       CurveClientOptions("c-small-curve", scientist, backend_keys.public_key),
                       curve_backend.endpoint());
    Client small_gateway("c_small_gateway",
                         CurveClientOptions("c-small-gateway", scientist, gateway_keys.public_key),
                         gateway->endpoint());
    std::vector<Path> small = {{"direct_plain", &small_plain},
                               {"direct_curve", &small_curve},
                               {"gateway", &small_gateway}};
    if (config.Runs("small")) {
      MeasureRoundTrips(small, SmallRequest, kSmallWarmup, config.round_trips, kSmallTimeout);
      Report(out, "small", small, 1, "us");
      std::vector<Path> pipelined = {{"direct_plain", &small_plain},
                                     {"direct_curve", &small_curve},
                                     {"gateway", &small_gateway}};
      MeasurePipelined(out, pipelined, config.round_trips);
    }

    UpdateTensor tensor;
    const auto update = [&tensor] {
      codec::ModelUpdate u;
      u.study_id = kStudy;
      u.site_id = kSite;
      u.num_samples = 1000;
      std::vector<codec::Tensor> tensors;
      tensors.push_back(tensor.Lend());
      return core::MakeMessage(std::move(u), std::move(tensors));
    };
    Client update_plain("c_update_plain", Options("c-update-plain"), plain_backend.endpoint());
    Client update_curve("c_update_curve",
                        CurveClientOptions("c-update-curve", site, backend_keys.public_key),
                        curve_backend.endpoint());
    Client update_gateway("c_update_gateway",
                          CurveClientOptions("c-update-gateway", site, gateway_keys.public_key),
                          gateway->endpoint());
    std::vector<Path> updates = {{"direct_plain", &update_plain},
                                 {"direct_curve", &update_curve},
                                 {"gateway", &update_gateway}};
    if (config.Runs("update")) {
      MeasureRoundTrips(updates, update, kUpdateWarmup, config.updates, kUpdateTimeout);
      Report(out, "update40mb", updates, 1000, "ms");
    }
  }

  // The flooder at the same priority as everything else (on this machine it
  // takes CPU from the gateway too), then at nice 19 (closer to a flooder on
  // another machine: the gateway's threads come first). A fresh gateway
  // each time, so every bucket starts full.
  const std::pair<const char*, int> variants[] = {{"fair_", 0}, {"fair_nice19_", 19}};
  for (const auto& [prefix, nice] : variants) {
    if (!config.Runs("fairness")) break;
    Gateway gateway(redis->port(), gateway_keys, plain_backend.endpoint(),
                    FairnessLimits(config.fair_rate));
    Client watcher("c_watcher",
                   CurveClientOptions("c-watcher", watcher_keys, gateway_keys.public_key),
                   gateway.endpoint());
    Flooder flooder(CurveClientOptions("c-flooder", flooder_keys, gateway_keys.public_key),
                    gateway.endpoint(), nice);
    Fairness fairness = MeasureFairness(watcher, flooder, config.fair_samples);
    out.Emit(kBench, std::string(prefix) + "scientist_rate_limit",
             static_cast<double>(config.fair_rate), "msg/s");
    ReportFairness(out, prefix, fairness, flooder, gateway.metrics());
  }

  if (plain_backend.bad() + curve_backend.bad() != 0) {
    Die("the backends saw " + std::to_string(plain_backend.bad() + curve_backend.bad()) +
        " malformed or unanswerable messages");
  }
  return 0;
}

}  // namespace
}  // namespace fedrx::bench

int main(int argc, char** argv) { return fedrx::bench::Main(argc, argv); }
