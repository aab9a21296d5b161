// libFuzzer target on the gateway's intake: whatever bytes a connected peer
// sends, with whatever identity the CURVE handshake gave it, go through the
// bus's decode and verify and the gateway's authorisation on the in-memory
// bus, as they would on the real one. Besides the sanitizers' checks, three
// properties must hold for every input (a violation aborts):
//   - every message the gateway sends back to a peer decodes (no malformed
//     output, whatever the input);
//   - a peer whose identity is not an active institution gets nothing but
//     Error replies, and nothing it sent reaches the coordinator;
//   - what an authenticated site gets through reaches the coordinator with
//     its authenticated identity as the origin, never one it wrote itself;
//     what a scientist or an admin gets through carries no origin at all
//     (a person is not a site).
//
// The second holds until an admin has sent anything in the input (an admin
// may enrol or reactivate). Input format: fuzz_input.h.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <sanitizer/common_interface_defs.h>

#include "gateway/gateway_service.h"
#include "messages/codec/codec.h"
#include "services/core/keys.h"
#include "services/core/testing/fake_bus.h"
#include "services/core/testing/fake_clock.h"
#include "services/core/testing/fake_state_store.h"
#include "services/security/audit_log.h"
#include "services/security/institution_registry.h"
#include "tests/fuzz/fuzz_input.h"

namespace fedrx::fuzz {
namespace {

using std::chrono::milliseconds;

constexpr char kSitesEndpoint[] = "inproc://sites";
constexpr char kCoordinatorEndpoint[] = "inproc://coordinator";

const std::string kNoOrigin;

[[noreturn]] void Violation(const std::string& what) {
  const std::string text = "gateway_intake_fuzz: property violated: " + what;
  std::fprintf(stderr, "%s\n", text.c_str());
  // Also to the sanitizers' report stream, which survives -close_fd_mask=2.
  __sanitizer_report_error_summary(text.c_str());
  std::abort();
}

void MustBeOk(const core::Status& s, const char* what) {
  if (!s.ok()) Violation(std::string("harness setup failed: ") + what + ": " + s.ToString());
}

// One peer of the gateway: its raw peer id, and the identity the CURVE
// handshake would have given it (empty id: a plaintext connection).
struct Peer {
  std::string raw_id;
  core::Identity identity;
  // True when the gateway must admit nothing from it.
  bool refused = false;
};

// A message the coordinator stand-in received.
struct Seen {
  std::string origin;
  std::string body;
};

// Everything one input runs against; fresh for every input so that inputs
// are independent and a crash reproduces from its input alone.
class Harness {
 public:
  Harness() {
    MustBeOk(registry_.Enrol("site-1", "Site One", security::Role::kSite).status(), "enrol site");
    MustBeOk(registry_.Enrol("sci-1", "Scientist One", security::Role::kScientist).status(),
             "enrol scientist");
    MustBeOk(registry_.Enrol("admin-1", "Admin One", security::Role::kAdmin).status(),
             "enrol admin");
    MustBeOk(registry_.Enrol("site-2", "Site Two", security::Role::kSite).status(),
             "enrol suspended site");
    MustBeOk(registry_.Suspend("site-2").status(), "suspend");
    // Study "study" names site-1, so its study messages pass the gateway.
    auto sites = core::keys::StudySites("study");
    MustBeOk(sites.status(), "study sites key");
    MustBeOk(store_.SetAdd(*sites, "site-1").status(), "study sites");

    peers_[kNone] = Peer{"peer-plain", {}, false};
    peers_[kSite] = Peer{"peer-site", {"site-1", "site"}, false};
    peers_[kScientist] = Peer{"peer-scientist", {"sci-1", "scientist"}, false};
    peers_[kAdmin] = Peer{"peer-admin", {"admin-1", "admin"}, false};
    peers_[kUnenrolled] = Peer{"peer-unenrolled", {"stranger-9", "site"}, true};
    peers_[kSuspended] = Peer{"peer-suspended", {"site-2", "site"}, true};
    for (const Peer& p : peers_) {
      if (!p.identity.id.empty()) network_.SetIdentity(p.raw_id, p.identity);
    }

    MustBeOk(coordinator_bus_.Serve(kCoordinatorEndpoint,
                                    [this](core::Inbound&& in) { OnCoordinator(std::move(in)); }),
             "coordinator serve");
    MustBeOk(gateway_.Start(), "gateway start");
  }

  void Run(const Message& m) {
    clock_.Advance(m.clock_advance);
    if (m.tick) {
      // The gateway's readiness probe; its traffic settles before the
      // injected message so that what the coordinator sees next is the peer's.
      gateway_.Tick().IgnoreError();
      network_.Pump();
    }
    const Peer& peer = peers_[m.sender];
    seen_.clear();
    push_back_ = m.push_back;
    std::vector<codec::Blob> frames;
    frames.reserve(m.frames.size());
    for (const auto& f : m.frames) frames.push_back(codec::Blob::CopyOf(std::as_bytes(f)));
    network_.InjectRaw(kSitesEndpoint, peer.raw_id, std::move(frames));
    network_.Pump();

    CheckCoordinatorSaw(peer);
    for (const Peer& p : peers_) CheckReplies(p);
    // What an admin sent may have changed who is enrolled and active.
    if (m.sender == kAdmin) {
      for (Peer& p : peers_) p.refused = false;
    }
  }

 private:
  // The coordinator stand-in: answers what a coordinator answers and, when
  // asked to, pushes a task with a tensor back to the sender's site.
  void OnCoordinator(core::Inbound&& in) {
    const codec::Body& body = in.message.body;
    seen_.push_back({in.message.header.origin, codec::BodyName(body)});
    core::Status s;
    if (const auto* reg = std::get_if<codec::RegisterSite>(&body)) {
      s = core::Reply(coordinator_bus_, in, codec::SiteRegistered{reg->site_id, 1, true});
    } else if (std::holds_alternative<codec::HealthCheck>(body)) {
      s = core::Reply(coordinator_bus_, in, codec::HealthStatus{"coordinator", true, "", 0, ""});
    } else {
      s = core::Reply(coordinator_bus_, in, codec::Ack{"ok"});
    }
    s.IgnoreError();
    if (push_back_ && !in.message.header.origin.empty()) {
      codec::Message task = core::MakeMessage(codec::TrainTask{"study", 1, 0, 1, 8, 0.1f, 7, 0});
      task.header.route_to = in.message.header.origin;
      task.tensors.push_back(
          codec::Tensor{"w", codec::DType::kFloat32, {2}, codec::Blob::FromFloats({1, 2})});
      coordinator_bus_.SendTo(in.peer, std::move(task)).IgnoreError();
    }
  }

  void CheckCoordinatorSaw(const Peer& peer) {
    if (peer.identity.id.empty()) return;  // plaintext: the origin is what it registered as
    for (const Seen& s : seen_) {
      if (peer.refused) {
        Violation("a " + s.body + " from refused identity '" + peer.identity.id +
                  "' reached the coordinator");
      }
      const std::string& expected = peer.identity.role == "site" ? peer.identity.id : kNoOrigin;
      if (s.origin != expected) {
        Violation("a " + s.body + " from " + peer.identity.role + " '" + peer.identity.id +
                  "' reached the coordinator with origin '" + s.origin + "'");
      }
    }
  }

  void CheckReplies(const Peer& peer) {
    while (auto frames = network_.TakeRaw(peer.raw_id)) {
      codec::Decoded decoded = codec::Decode(std::move(*frames));
      if (!decoded.ok()) {
        Violation("the gateway sent '" + peer.raw_id + "' a message that does not decode: " +
                  decoded.error().message + " at " + decoded.error().where);
      }
      const codec::Body& body = decoded.message().body;
      if (peer.refused && !std::holds_alternative<codec::Error>(body)) {
        Violation("refused identity '" + peer.identity.id + "' was answered with a " +
                  codec::BodyName(body));
      }
    }
  }

  gateway::GatewaySecurity Security() {
    gateway::GatewaySecurity security;
    security.registry = &registry_;
    security.audit = &audit_;
    security.store = &store_;
    security.status_ttl = milliseconds(2000);
    return security;
  }

  core::testing::FakeNetwork network_;
  core::testing::FakeClock clock_;
  core::Metrics gateway_metrics_{"gateway"};
  core::Metrics other_metrics_{"coordinator"};
  core::testing::FakeStateStore store_;
  security::InstitutionRegistry registry_{store_, clock_};
  security::AuditLog audit_{store_, clock_, gateway_metrics_};
  core::testing::FakeBus coordinator_bus_{network_, core::BusOptions{"coordinator"},
                                          other_metrics_, clock_};
  core::testing::FakeBus gateway_bus_{network_, core::BusOptions{"gateway"}, gateway_metrics_,
                                      clock_};
  gateway::GatewayService gateway_{
      gateway::GatewayOptions{kSitesEndpoint, kCoordinatorEndpoint}, gateway_bus_,
      gateway_metrics_, clock_, Security()};
  Peer peers_[kSenderCount];
  std::vector<Seen> seen_;
  bool push_back_ = false;
};

}  // namespace
}  // namespace fedrx::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::vector<fedrx::fuzz::Message> messages = fedrx::fuzz::ParseInput(data, size);
  if (messages.empty()) return 0;
  fedrx::fuzz::Harness harness;
  for (const auto& m : messages) harness.Run(m);
  return 0;
}
