#include "services/orchestrator/bus_step_caller.h"

#include <utility>

#include "services/core/curve_keys.h"

namespace fedrx::orchestrator {

namespace {
constexpr char kOwnServerKey[] = "orchestrator.curve_key_file";
constexpr char kOwnClientKey[] = "orchestrator.key_file";

std::string ServiceKey(std::string_view service, std::string_view what) {
  return "orchestrator.services." + std::string(service) + "." + std::string(what);
}
}  // namespace

const std::vector<std::string>& CallableServices() {
  static const std::vector<std::string> kServices = {"translational", "trial",   "tox",
                                                     "clinical",      "reverse", "report"};
  return kServices;
}

core::Result<std::map<std::string, std::string>> ServiceEndpointsFrom(const core::Config& config) {
  std::map<std::string, std::string> out;
  for (const std::string& svc : CallableServices()) {
    const std::string key = ServiceKey(svc, "endpoint");
    if (!config.Has(key)) continue;
    FEDRX_ASSIGN_OR_RETURN(out[svc], config.String(key));
  }
  return out;
}

core::Status ConfigureOrchestratorBus(const core::Config& config, core::BusOptions& bus) {
  std::string own_file;
  if (config.Has(kOwnClientKey)) {
    FEDRX_ASSIGN_OR_RETURN(own_file, config.String(kOwnClientKey));
  }
  if (config.Has(kOwnServerKey)) {
    FEDRX_ASSIGN_OR_RETURN(std::string server_file, config.String(kOwnServerKey));
    if (own_file.empty()) own_file = server_file;
    if (server_file != own_file) {
      // Compare the pairs, not the paths: two copies of one pair are fine.
      FEDRX_ASSIGN_OR_RETURN(core::CurveKeyPair a, core::LoadCurveKeyPair(server_file));
      FEDRX_ASSIGN_OR_RETURN(core::CurveKeyPair b, core::LoadCurveKeyPair(own_file));
      if (a.public_key != b.public_key) {
        return core::InvalidArgument(
            std::string("the orchestrator serves and connects with one key pair: ") +
                kOwnServerKey + " and " + kOwnClientKey + " hold different pairs",
            kOwnClientKey);
      }
    }
  }
  for (const std::string& svc : CallableServices()) {
    const std::string key_file = ServiceKey(svc, "public_key_file");
    if (!config.Has(key_file)) continue;
    if (own_file.empty()) {
      return core::InvalidArgument("a CURVE connection to the " + svc +
                                       " service needs the orchestrator's own key pair: set " +
                                       kOwnClientKey,
                                   kOwnClientKey);
    }
    const std::string endpoint_key = ServiceKey(svc, "endpoint");
    if (!config.Has(endpoint_key)) {
      return core::InvalidArgument("a public key without an endpoint", endpoint_key);
    }
    FEDRX_ASSIGN_OR_RETURN(std::string endpoint, config.String(endpoint_key));
    FEDRX_ASSIGN_OR_RETURN(std::string path, config.String(key_file));
    FEDRX_ASSIGN_OR_RETURN(bus.curve_server_keys[endpoint], core::LoadCurvePublicKey(path));
  }
  if (!own_file.empty() && !config.Has(kOwnServerKey)) {
    // A bus with a key pair serves CURVE only; the orchestrator's clients
    // (the gateway) must then be listed too.
    return core::InvalidArgument(
        std::string("the orchestrator's key pair also secures its own endpoint: set ") +
            kOwnServerKey + " (the same pair) and orchestrator.clients_file as well",
        kOwnServerKey);
  }
  if (!own_file.empty()) {
    FEDRX_ASSIGN_OR_RETURN(core::CurveKeyPair pair, core::LoadCurveKeyPair(own_file));
    bus.curve_public_key = pair.public_key;
    bus.curve_secret_key = pair.secret_key;
  }
  return core::Status::Ok();
}

BusStepCaller::BusStepCaller(core::Bus& bus, std::map<std::string, std::string> endpoints,
                             const core::Clock* clock, ProbeOptions probes)
    : bus_(bus), clock_(clock), probes_(probes) {
  for (auto& [svc, ep] : endpoints) endpoints_.emplace(svc, std::move(ep));
}

void BusStepCaller::Maintain() {
  if (clock_ == nullptr) return;
  const auto now = clock_->Now();
  for (const auto& [svc, channel] : channels_) {
    std::shared_ptr<Health>& h = health_[svc];
    if (!h) h = std::make_shared<Health>();
    if (h->in_flight || now < h->next) continue;
    h->in_flight = true;
    h->next = now + probes_.interval;
    std::weak_ptr<Health> weak = h;
    const core::Status sent =
        bus_.Request(channel, core::MakeMessage(codec::HealthCheck{}), probes_.timeout,
                     [weak](core::Result<codec::Message>&& reply) {
                       const std::shared_ptr<Health> health = weak.lock();
                       if (!health) return;
                       health->in_flight = false;
                       health->missed = reply.ok() ? 0 : health->missed + 1;
                     });
    if (!sent.ok()) {
      h->in_flight = false;
      ++h->missed;
    }
  }
}

bool BusStepCaller::Down(std::string_view service) const {
  auto it = health_.find(service);
  return it != health_.end() && it->second->missed >= probes_.down_after;
}

core::Status BusStepCaller::Connect() {
  for (const auto& [svc, endpoint] : endpoints_) {
    if (channels_.count(svc) != 0) continue;
    // Services answer requests only; a push from one is not expected and dropped.
    FEDRX_ASSIGN_OR_RETURN(core::ChannelId ch, bus_.Connect(endpoint, [](codec::Message&&) {}));
    channels_.emplace(svc, ch);
  }
  return core::Status::Ok();
}

void BusStepCaller::Call(std::string_view service, codec::Body body,
                         std::chrono::milliseconds timeout, Callback done) {
  auto it = channels_.find(service);
  if (it == channels_.end()) {
    done(core::Unavailable("the " + std::string(service) + " service is not configured",
                           ServiceKey(service, "endpoint")));
    return;
  }
  if (Down(service)) {
    done(core::Unavailable("the " + std::string(service) + " service at " +
                               endpoints_.find(service)->second + " has not answered its last " +
                               std::to_string(health_.find(service)->second->missed) +
                               " health probes",
                           ServiceKey(service, "endpoint")));
    return;
  }
  // `done` is moved into the reply callback only once Request accepts the message.
  auto shared = std::make_shared<Callback>(std::move(done));
  core::Status sent = bus_.Request(it->second, core::MakeMessage(std::move(body)), timeout,
                                   [shared](core::Result<codec::Message>&& reply) {
                                     if (reply.ok()) {
                                       (*shared)(std::move(reply->body));
                                     } else {
                                       (*shared)(reply.status());
                                     }
                                   });
  if (!sent.ok()) {
    // A full queue stays ResourceExhausted (retryable); anything else means the
    // service cannot be reached now.
    const core::StatusCode code = sent.code() == core::StatusCode::kResourceExhausted
                                      ? sent.code()
                                      : core::StatusCode::kUnavailable;
    (*shared)(core::Status(
        code, "could not send to the " + std::string(service) + " service: " + sent.message(),
        sent.where()));
  }
}

}  // namespace fedrx::orchestrator
