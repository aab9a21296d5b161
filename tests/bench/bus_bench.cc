// fedrx_bus_bench: ZmqBus against raw libzmq, two processes over
// tcp://127.0.0.1, in the same run:
//   (a) throughput of a 40 MB tensor frame (10M float32), client Send to a
//       served ROUTER, vs a raw DEALER -> ROUTER with zmq_msg_init_data;
//   (b) request/reply round trips with a 100-byte body (Ack with a 100-char
//       detail) through Request/Poll, vs a raw DEALER/ROUTER echo.
// Appends JSON lines {"bench","metric","value","unit","baseline","ratio"}
// to --out (ratio = bus / raw). Terminates by itself (an alarm backs that up).
//
// Usage: fedrx_bus_bench [--out FILE] [--iterations N] [--round-trips M]
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <zmq.h>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <sstream>
#include <string>
#include <variant>
#include <vector>

#include "messages/codec/blob.h"
#include "messages/codec/message.h"
#include "services/core/bus.h"
#include "services/core/clock.h"
#include "services/core/metrics.h"
#include "services/core/zmq_bus.h"
#include "tests/bench/json_lines.h"

namespace fedrx::bench {
namespace {

using Steady = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr std::size_t kTensorFloats = 10'000'000;
constexpr std::size_t kTensorBytes = kTensorFloats * sizeof(float);
constexpr std::size_t kHeaderBytes = 100;  // the raw path's stand-in for an envelope
constexpr std::size_t kSmallBytes = 100;
constexpr int kTensorWarmup = 3;
constexpr int kRoundTripWarmup = 1000;
constexpr auto kChildPatience = 90s;

struct Config {
  std::string out;
  int iterations = 30;
  int round_trips = 20000;
};

[[noreturn]] void Die(const std::string& what) {
  std::cerr << "fedrx_bus_bench: " << what << "\n";
  std::exit(1);
}

// ---- Reusable send buffers -------------------------------------------------------

// A long-lived 40 MB buffer lent to zmq without a copy. A fresh 40 MB buffer
// per send would cost tens of ms in page faults; instead a slot is reused,
// but only after zmq handed it back (its free function ran).
struct Slot {
  Slot() : values(kTensorFloats) {
    for (std::size_t i = 0; i < kTensorFloats; ++i) values[i] = static_cast<float>(i % 4096);
  }
  void Take() {
    while (in_flight.load(std::memory_order_acquire)) in_flight.wait(true);
    in_flight.store(true, std::memory_order_relaxed);
  }
  void GiveBack() {
    in_flight.store(false, std::memory_order_release);
    in_flight.notify_all();
  }
  void* data() { return values.data(); }

  std::vector<float> values;
  std::atomic<bool> in_flight{false};
};

void RawFree(void* /*data*/, void* hint) { static_cast<Slot*>(hint)->GiveBack(); }
void BlobFree(void* owner) { static_cast<Slot*>(owner)->GiveBack(); }

// ---- Processes ----------------------------------------------------------------------

// A forked peer that reports the endpoint it bound through a pipe.
struct Child {
  pid_t pid = -1;
  std::string endpoint;
};

using ChildBody = std::function<int(const std::function<void(const std::string&)>& announce)>;

Child Spawn(const ChildBody& body) {
  int fds[2];
  if (pipe(fds) != 0) Die("pipe failed");
  const pid_t pid = fork();
  if (pid < 0) Die("fork failed");
  if (pid == 0) {
    close(fds[0]);
    alarm(static_cast<unsigned>(kChildPatience.count()));
    const int rc = body([&](const std::string& endpoint) {
      const std::string line = endpoint + "\n";
      if (write(fds[1], line.data(), line.size()) != static_cast<ssize_t>(line.size())) _exit(4);
      close(fds[1]);
    });
    _exit(rc);
  }
  close(fds[1]);
  Child child{pid, {}};
  char c;
  while (read(fds[0], &c, 1) == 1 && c != '\n') child.endpoint.push_back(c);
  close(fds[0]);
  if (child.endpoint.empty()) Die("child reported no endpoint");
  return child;
}

void Reap(const Child& child, const char* what) {
  int status = 0;
  if (waitpid(child.pid, &status, 0) != child.pid) Die(std::string(what) + ": waitpid failed");
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    Die(std::string(what) + ": child failed (status " + std::to_string(status) + ")");
  }
}

core::BusOptions Options(const std::string& name) {
  core::BusOptions o;
  o.name = name;
  o.limits.max_tensor_bytes = 64u << 20;
  return o;
}

std::string TcpAny() { return "tcp://127.0.0.1:*"; }

// ---- Servers (child processes) -----------------------------------------------------

// Raw ROUTER. After the routing id: [tensor header][tensor] is a model
// update (no answer); a single frame is "sync" (answered "ok"), "quit"
// (answered "bye"), or a payload to echo.
int RawServer(const std::function<void(const std::string&)>& announce) {
  zmq::context_t context(1);
  zmq::socket_t router(context, zmq::socket_type::router);
  router.set(zmq::sockopt::linger, 0);
  router.bind(TcpAny());
  announce(router.get(zmq::sockopt::last_endpoint));
  for (;;) {
    std::vector<zmq::message_t> parts;
    if (!zmq::recv_multipart(router, std::back_inserter(parts))) return 5;
    if (parts.size() == 3) {
      if (parts[2].size() != kTensorBytes) return 6;
      continue;
    }
    if (parts.size() != 2) return 6;
    router.send(parts[0], zmq::send_flags::sndmore);
    if (parts[1].size() == 4 && parts[1].to_string() == "quit") {
      router.send(zmq::str_buffer("bye"), zmq::send_flags::none);
      return 0;
    }
    if (parts[1].size() == 4 && parts[1].to_string() == "sync") {
      router.send(zmq::str_buffer("ok"), zmq::send_flags::none);
    } else {
      router.send(parts[1], zmq::send_flags::none);
    }
  }
}

// The same over ZmqBus: ModelUpdate (no answer), HealthCheck (answered),
// Ack "quit" (answered), or an Ack to echo.
int BusServer(const std::function<void(const std::string&)>& announce) {
  core::SystemClock clock;
  core::Metrics metrics("bench_server");
  core::ZmqBus bus(Options("bench-server"), metrics, clock);
  bool quit = false;
  int bad = 0;
  core::Status s = bus.Serve(TcpAny(), [&](core::Inbound&& in) {
    const codec::Body& body = in.message.body;
    if (std::holds_alternative<codec::ModelUpdate>(body)) {
      if (in.message.tensors.size() != 1 || in.message.tensors[0].data.size() != kTensorBytes) {
        ++bad;
      }
    } else if (std::holds_alternative<codec::HealthCheck>(body)) {
      if (!core::Reply(bus, in, codec::Ack{"ok"}).ok()) ++bad;
    } else if (const auto* ack = std::get_if<codec::Ack>(&body)) {
      if (!core::Reply(bus, in, codec::Ack{ack->detail}).ok()) ++bad;
      quit = ack->detail == "quit";
    } else {
      ++bad;
      quit = true;
    }
  });
  if (!s.ok()) return 7;
  announce(bus.ServedEndpoint());
  const auto give_up = Steady::now() + kChildPatience;
  while (!quit && Steady::now() < give_up) {
    if (!bus.Poll(100ms).ok()) return 8;
  }
  return quit && bad == 0 ? 0 : 9;
}

// ---- Clients (this process) ------------------------------------------------------------

class Link {
 public:
  virtual ~Link() = default;
  // Lends `slot`'s 40 MB to the transport; returns once queued.
  virtual void SendTensor(Slot& slot) = 0;
  // Returns once everything sent before has been received.
  virtual void Sync() = 0;
  // One 100-byte request answered by its echo.
  virtual void RoundTrip() = 0;
  virtual void Quit() = 0;
};

class RawLink final : public Link {
 public:
  explicit RawLink(const std::string& endpoint)
      : dealer_(context_, zmq::socket_type::dealer), header_(kHeaderBytes, 'h'),
        payload_(kSmallBytes, 'x') {
    dealer_.set(zmq::sockopt::linger, 0);
    dealer_.connect(endpoint);
  }
  void SendTensor(Slot& slot) override {
    slot.Take();
    dealer_.send(zmq::buffer(header_), zmq::send_flags::sndmore);
    zmq_msg_t msg;  // zero copy: zmq gives the slot back through RawFree once written
    if (zmq_msg_init_data(&msg, slot.data(), kTensorBytes, &RawFree, &slot) != 0) {
      Die("zmq_msg_init_data failed");
    }
    if (zmq_msg_send(&msg, dealer_.handle(), 0) < 0) Die("raw tensor send failed");
  }
  void Sync() override {
    dealer_.send(zmq::str_buffer("sync"), zmq::send_flags::none);
    zmq::message_t reply;
    if (!dealer_.recv(reply)) Die("raw sync failed");
  }
  void RoundTrip() override {
    dealer_.send(zmq::buffer(payload_), zmq::send_flags::none);
    zmq::message_t reply;
    if (!dealer_.recv(reply) || reply.size() != kSmallBytes) Die("raw echo failed");
  }
  void Quit() override {
    dealer_.send(zmq::str_buffer("quit"), zmq::send_flags::none);
    zmq::message_t reply;
    if (!dealer_.recv(reply)) Die("raw quit failed");
  }

 private:
  zmq::context_t context_{1};
  zmq::socket_t dealer_;
  std::string header_;
  std::string payload_;
};

class BusLink final : public Link {
 public:
  explicit BusLink(const std::string& endpoint)
      : metrics_("bench_client"), bus_(Options("bench-client"), metrics_, clock_),
        detail_(kSmallBytes, 'x') {
    core::Result<core::ChannelId> channel = bus_.Connect(endpoint, nullptr);
    if (!channel.ok()) Die("connect: " + channel.status().ToString());
    channel_ = *channel;
  }
  void SendTensor(Slot& slot) override {
    slot.Take();
    codec::ModelUpdate update;
    update.study_id = "bench";
    update.site_id = "site-a";
    std::vector<codec::Tensor> tensors;
    tensors.push_back(codec::Tensor{
        "weights", codec::DType::kFloat32, {static_cast<std::int64_t>(kTensorFloats)},
        codec::Blob(&slot, static_cast<const std::byte*>(slot.data()), kTensorBytes, &BlobFree)});
    core::Status s = bus_.Send(channel_, core::MakeMessage(update, std::move(tensors)));
    if (!s.ok()) Die("bus tensor send: " + s.ToString());
  }
  void Sync() override {
    auto r = core::Call(bus_, channel_, core::MakeMessage(codec::HealthCheck{}), 30s);
    if (!r.ok()) Die("bus sync: " + r.status().ToString());
  }
  void RoundTrip() override {
    bool answered = false;
    core::Status s = bus_.Request(channel_, core::MakeMessage(codec::Ack{detail_}), 5s,
                                  [&](core::Result<codec::Message>&& r) {
                                    if (!r.ok()) Die("bus request: " + r.status().ToString());
                                    answered = true;
                                  });
    if (!s.ok()) Die("bus request: " + s.ToString());
    while (!answered) {
      if (!bus_.Poll(1000ms).ok()) Die("bus poll failed");
    }
  }
  void Quit() override {
    auto r = core::Call(bus_, channel_, core::MakeMessage(codec::Ack{"quit"}), 30s);
    if (!r.ok()) Die("bus quit: " + r.status().ToString());
  }

 private:
  core::SystemClock clock_;
  core::Metrics metrics_;
  core::ZmqBus bus_;
  core::ChannelId channel_ = -1;
  std::string detail_;
};

// ---- Measurements ---------------------------------------------------------------------

// Raw and bus run in alternating blocks so that both see the same machine
// load (other processes on 2 cores make back-to-back runs drift).
constexpr int kBlocks = 3;

struct Pair {
  double raw = 0;
  double bus = 0;
};

// Bytes per second for the tensor sends, each block timed up to the sync
// that proves its last frame arrived.
Pair TensorThroughput(Link& raw, Link& bus, int iterations) {
  static Slot slots[2];
  Link* links[2] = {&raw, &bus};
  for (Link* link : links) {
    for (int i = 0; i < kTensorWarmup; ++i) link->SendTensor(slots[i % 2]);
    link->Sync();
  }
  double seconds[2] = {0, 0};
  int sent = 0;
  for (int b = 0; b < kBlocks; ++b) {
    const int n = iterations / kBlocks + (b < iterations % kBlocks ? 1 : 0);
    for (int k = 0; k < 2; ++k) {
      const auto t0 = Steady::now();
      for (int i = 0; i < n; ++i) links[k]->SendTensor(slots[i % 2]);
      links[k]->Sync();
      seconds[k] += std::chrono::duration<double>(Steady::now() - t0).count();
    }
    sent += n;
  }
  const double bytes = static_cast<double>(kTensorBytes) * sent;
  return {bytes / seconds[0], bytes / seconds[1]};
}

struct RoundTrips {
  double per_second = 0;
  double p50_us = 0;
  double p99_us = 0;
};

RoundTrips Summarize(std::vector<double> latencies_us, double seconds) {
  RoundTrips r;
  r.per_second = static_cast<double>(latencies_us.size()) / seconds;
  std::sort(latencies_us.begin(), latencies_us.end());
  r.p50_us = latencies_us[latencies_us.size() / 2];
  r.p99_us = latencies_us[latencies_us.size() * 99 / 100];
  return r;
}

std::pair<RoundTrips, RoundTrips> RoundTripRates(Link& raw, Link& bus, int count) {
  Link* links[2] = {&raw, &bus};
  for (Link* link : links) {
    for (int i = 0; i < kRoundTripWarmup; ++i) link->RoundTrip();
  }
  std::vector<double> latencies[2];
  double seconds[2] = {0, 0};
  constexpr int kRoundTripBlocks = 4 * kBlocks;
  for (int b = 0; b < kRoundTripBlocks; ++b) {
    const int n = count / kRoundTripBlocks + (b < count % kRoundTripBlocks ? 1 : 0);
    for (int k = 0; k < 2; ++k) {
      const auto start = Steady::now();
      for (int i = 0; i < n; ++i) {
        const auto t0 = Steady::now();
        links[k]->RoundTrip();
        latencies[k].push_back(
            std::chrono::duration<double, std::micro>(Steady::now() - t0).count());
      }
      seconds[k] += std::chrono::duration<double>(Steady::now() - start).count();
    }
  }
  return {Summarize(std::move(latencies[0]), seconds[0]),
          Summarize(std::move(latencies[1]), seconds[1])};
}

Config ParseArgs(int argc, char** argv) {
  Config c;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) Die(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--out") {
      c.out = value();
    } else if (arg == "--iterations") {
      c.iterations = std::atoi(value().c_str());
    } else if (arg == "--round-trips") {
      c.round_trips = std::atoi(value().c_str());
    } else {
      Die("unknown argument " + arg +
          " (usage: fedrx_bus_bench [--out FILE] [--iterations N] [--round-trips M])");
    }
  }
  if (c.iterations < 1 || c.round_trips < 100) Die("--iterations >= 1, --round-trips >= 100");
  return c;
}

int Main(int argc, char** argv) {
  const Config config = ParseArgs(argc, argv);
  alarm(240);  // the whole run normally takes seconds; never hang a CI job
  fedrx::bench::JsonLines sink(config.out);

  // Both servers start before this process opens any zmq context (fork safety).
  const Child raw_server = Spawn(RawServer);
  const Child bus_server = Spawn(BusServer);
  Pair tensor;
  std::pair<RoundTrips, RoundTrips> small;
  {
    RawLink raw(raw_server.endpoint);
    BusLink bus(bus_server.endpoint);
    tensor = TensorThroughput(raw, bus, config.iterations);
    small = RoundTripRates(raw, bus, config.round_trips);
    raw.Quit();
    bus.Quit();
  }
  Reap(raw_server, "raw server");
  Reap(bus_server, "bus server");

  sink.Emit("bus_tensor_40MB", "throughput", tensor.bus / 1e9, "GB/s", tensor.raw / 1e9);
  const auto& [raw, bus] = small;
  sink.Emit("bus_request_reply_100B", "round_trips", bus.per_second, "msg/s", raw.per_second);
  sink.Emit("bus_request_reply_100B", "latency_p50", bus.p50_us, "us", raw.p50_us);
  sink.Emit("bus_request_reply_100B", "latency_p99", bus.p99_us, "us", raw.p99_us);
  return 0;
}

}  // namespace
}  // namespace fedrx::bench

int main(int argc, char** argv) { return fedrx::bench::Main(argc, argv); }
