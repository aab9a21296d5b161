#include "gateway/gateway_service.h"

#include <algorithm>
#include <cstdio>
#include <iostream>

#include "gateway/gateway_routes.h"
#include "services/core/keys.h"

namespace fedrx::gateway {

GatewayService::GatewayService(GatewayOptions options, core::Bus& bus, core::Metrics& metrics,
                               const core::Clock& clock, GatewaySecurity security)
    : options_(std::move(options)),
      bus_(bus),
      metrics_(metrics),
      clock_(clock),
      security_(security),
      to_coordinator_(metrics.Counter("forwarded_total", "Messages forwarded",
                                      {{"direction", "to_coordinator"}})),
      to_sites_(
          metrics.Counter("forwarded_total", "Messages forwarded", {{"direction", "to_site"}})),
      to_people_(
          metrics.Counter("forwarded_total", "Messages forwarded", {{"direction", "to_person"}})),
      unroutable_(metrics.Counter("unroutable_total",
                                  "Coordinator messages for a site not connected here")),
      sessions_dropped_(
          metrics.Counter("sessions_dropped_total",
                          "Sessions dropped because their institution stopped being active")),
      sites_gauge_(metrics.Gauge("sites_connected", "Sites bound to a connection")) {
  owner_changes_ = metrics.Counter("coordinator_owner_changes_total",
                                   "Studies whose coordinator replica changed (a takeover seen)");
  owner_unknown_ = metrics.Counter(
      "coordinator_owner_unknown_total",
      "Site messages about a study sent to every live coordinator replica because the one "
      "driving it was not known or not answering");
}

core::Result<std::vector<std::string>> CoordinatorEndpoints(const std::string& list) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (true) {
    const std::size_t comma = list.find(',', start);
    std::string item =
        list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    const std::size_t first = item.find_first_not_of(" \t");
    const std::size_t last = item.find_last_not_of(" \t");
    item = first == std::string::npos ? std::string() : item.substr(first, last - first + 1);
    if (item.empty()) {
      return core::InvalidArgument(
          "entry " + std::to_string(out.size()) + " of the coordinator endpoint list is empty",
          "gateway.coordinator_endpoint");
    }
    if (std::find(out.begin(), out.end(), item) != out.end()) {
      return core::InvalidArgument("coordinator endpoint " + item + " is listed twice",
                                   "gateway.coordinator_endpoint");
    }
    out.push_back(std::move(item));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

core::Status GatewayService::Start() {
  started_ = clock_.Now();
  FEDRX_RETURN_IF_ERROR(bus_.Serve(options_.sites_endpoint,
                                   [this](core::Inbound&& in) { OnSiteMessage(std::move(in)); }));
  FEDRX_ASSIGN_OR_RETURN(std::vector<std::string> endpoints,
                         CoordinatorEndpoints(options_.coordinator_endpoint));
  replicas_.clear();
  for (std::size_t i = 0; i < endpoints.size(); ++i) {
    Replica r;
    r.endpoint = endpoints[i];
    FEDRX_ASSIGN_OR_RETURN(r.channel, bus_.Connect(r.endpoint, [this, i](codec::Message&& m) {
      OnCoordinatorMessage(i, std::move(m));
    }));
    // Labelled by position in the list (bounded), not by address.
    const std::string label = std::to_string(i);
    r.up_gauge = metrics_.Gauge("coordinator_up",
                                "Whether a coordinator replica answered its last health probe "
                                "(1) or not (0), by position in gateway.coordinator_endpoint",
                                {{"replica", label}});
    r.up_gauge.Set(1);
    r.routed = metrics_.Counter("coordinator_routed_total",
                                "Messages sent to a coordinator replica (copies included)",
                                {{"replica", label}});
    replicas_.push_back(std::move(r));
  }
  for (const auto& [name, endpoint] : options_.service_endpoints) {
    if (std::find(DomainServices().begin(), DomainServices().end(), name) ==
        DomainServices().end()) {
      return core::InvalidArgument("no domain service is called '" + name + "'",
                                   "gateway.services." + name + ".endpoint");
    }
    Backend backend;
    backend.endpoint = endpoint;
    FEDRX_ASSIGN_OR_RETURN(backend.channel,
                           bus_.Connect(endpoint, [this, service = name](codec::Message&& m) {
                             OnServiceMessage(service, std::move(m));
                           }));
    backend.up_gauge = metrics_.Gauge("backend_up",
                                      "Whether a domain service behind the gateway answered its "
                                      "last health probe (1) or not (0)",
                                      {{"service", name}});
    backend.up_gauge.Set(1);
    backend.forwarded =
        metrics_.Counter("forwarded_total", "Messages forwarded", {{"direction", "to_" + name}});
    backends_.emplace(name, std::move(backend));
    TimeoutCounter(name);  // exported at zero from the start
  }
  TimeoutCounter(std::string(kCoordinatorService));
  return core::Status::Ok();
}

core::CounterRef GatewayService::TimeoutCounter(const std::string& service) {
  return CachedCounter("request_timeouts_total",
                       "People's requests the service behind the gateway did not answer within "
                       "the request timeout (the person is told)",
                       "service", service);
}

core::CounterRef GatewayService::CachedCounter(const char* name, const char* help,
                                               const char* label, const std::string& value) {
  // Label sets are bounded (reasons and roles), and a flood refuses many
  // messages a second: find each counter once.
  std::string key = std::string(name) + '\0' + value;
  auto it = counters_.find(key);
  if (it == counters_.end()) {
    it = counters_.emplace(std::move(key), metrics_.Counter(name, help, {{label, value}})).first;
  }
  return it->second;
}

void GatewayService::Refuse(const core::Inbound& in, const core::Status& status,
                            const char* reason) {
  CachedCounter("rejected_total", "Inputs refused (bad frames, bad fields, bad HTTP requests).",
                "reason", reason)
      .Inc();
  core::ReplyError(bus_, in, status).IgnoreError();
}

namespace {

std::uint64_t TensorBytes(const codec::Message& m) {
  std::uint64_t bytes = 0;
  for (const auto& t : m.tensors) bytes += t.data.size();
  return bytes;
}

// The study a body concerns, or empty.
std::string StudyOf(const codec::Body& body) {
  return std::visit(
      [](const auto& v) -> std::string {
        if constexpr (requires { v.study_id; }) {
          return v.study_id;
        } else {
          return {};
        }
      },
      body);
}

// A copy for another replica (messages are move-only). Tensors are copied:
// only a study message whose replica is unknown carries any, which is rare
// (sites upload after a grant, which names the replica).
codec::Message CopyOfMessage(const codec::Message& m) {
  codec::Message copy;
  copy.header = m.header;
  copy.body = m.body;
  for (const auto& t : m.tensors) {
    copy.tensors.push_back(
        codec::Tensor{t.name, t.dtype, t.shape, codec::Blob::CopyOf(t.data.bytes())});
  }
  return copy;
}

bool IsAdminBody(const codec::Body& body) {
  return std::holds_alternative<codec::EnrolInstitution>(body) ||
         std::holds_alternative<codec::ListInstitutions>(body) ||
         std::holds_alternative<codec::SetInstitutionStatus>(body) ||
         std::holds_alternative<codec::VerifyAudit>(body);
}

core::Status PermissionDenied(std::string message, std::string where) {
  return core::Status(core::StatusCode::kPermissionDenied, std::move(message), std::move(where));
}

}  // namespace

void GatewayService::Deny(const core::Inbound& in, const core::Status& status, const char* reason) {
  CachedCounter("denied_total", "Messages from authenticated peers refused", "reason", reason)
      .Inc();
  Audit(in, security::Decision::kDenied, status.message());
  Refuse(in, status, reason);
}

void GatewayService::Audit(const core::Inbound& in, security::Decision decision,
                           const std::string& reason) {
  security::AuditRecord record;
  record.actor = in.identity;
  record.role = in.role;
  record.action = codec::BodyName(in.message.body);
  record.decision = decision;
  record.reason = reason;
  record.message_id = in.message.header.message_id;
  record.bytes = TensorBytes(in.message);
  if (std::string study = StudyOf(in.message.body); !study.empty()) record.study = study;
  QueueAudit(record);
}

void GatewayService::AuditEvent(const std::string& actor, const std::string& role,
                                const std::string& action, security::Decision decision,
                                const std::string& reason) {
  security::AuditRecord record;
  record.actor = actor;
  record.role = role;
  record.action = action;
  record.decision = decision;
  record.reason = reason;
  QueueAudit(record);
}

void GatewayService::QueueAudit(const security::AuditRecord& record) {
  if (security_.audit == nullptr) return;
  // Queued, and written in one round trip per Tick; the log counts its own
  // failures, and the message's fate does not depend on them.
  if (core::Status queued = security_.audit->Enqueue(record); !queued.ok()) {
    std::cerr << "gateway: audit record refused for " << record.actor << ": " << queued << "\n";
  }
}

core::Status GatewayService::CheckActive(const std::string& id) {
  if (security_.registry == nullptr) return core::Status::Ok();
  const auto now = clock_.Now();
  auto cached = status_cache_.find(id);
  if (cached == status_cache_.end() || now - cached->second.checked_at >= security_.status_ttl) {
    auto found = security_.registry->Get(id);
    if (!found.ok()) {
      // Fail closed: an identity the registry cannot confirm is not admitted.
      status_cache_.erase(id);
      if (found.status().code() == core::StatusCode::kNotFound) {
        return PermissionDenied("institution '" + id + "' is not enrolled", "identity");
      }
      return core::Unavailable("cannot check institution '" + id + "': " + found.status().message(),
                               "identity");
    }
    cached = status_cache_.insert_or_assign(id, CachedStatus{found->status, now}).first;
  }
  if (cached->second.status != security::InstitutionStatus::kActive) {
    return PermissionDenied(
        "institution '" + id + "' is " + security::InstitutionStatusName(cached->second.status),
        "identity");
  }
  return core::Status::Ok();
}

GatewayService::IdentityState& GatewayService::StateOf(const core::Inbound& in) {
  IdentityState& state = identities_[in.identity];
  if (state.role != in.role || !state.replay.has_value()) {
    // First message of this identity, or its role changed with a new enrolment.
    state.role = in.role;
    state.bucket.reset();
    const auto limits = security_.limits.per_role.find(in.role);
    if (limits != security_.limits.per_role.end() && limits->second.messages_per_second > 0) {
      state.bucket.emplace(static_cast<double>(limits->second.messages_per_second),
                           static_cast<double>(limits->second.burst), clock_.Now());
    }
    state.replay.emplace(security_.limits.replay_window, security_.limits.replay_ids_per_identity);
  }
  return state;
}

void GatewayService::RateLimited(const core::Inbound& in, IdentityState& state,
                                 const RoleLimits& limits) {
  CachedCounter("rate_limited_total", "Messages refused over an identity's rate limit", "role",
                in.role)
      .Inc();
  CachedCounter("denied_total", "Messages from authenticated peers refused", "reason",
                "rate_limited")
      .Inc();
  char retry[32];
  std::snprintf(retry, sizeof retry, "%.3f", state.bucket->SecondsUntilNext(clock_.Now()));
  const core::Status status(core::StatusCode::kResourceExhausted,
                            "identity '" + in.identity + "' is over the " + in.role +
                                " rate limit of " + std::to_string(limits.messages_per_second) +
                                " messages/s (burst " + std::to_string(limits.burst) +
                                "); retry in " + retry + " s",
                            "identity");
  // A flood must not become a flood of audit writes: the first refusal is
  // audited as it happens, the rest are summed into one record per sweep.
  if (!state.limited_audited) {
    state.limited_audited = true;
    Audit(in, security::Decision::kDenied, status.message());
  } else {
    ++state.limited_since_audit;
  }
  Refuse(in, status, "rate_limited");
}

core::Status GatewayService::CheckStudyNamesSite(const std::string& study_id,
                                                 const std::string& site) {
  if (security_.store == nullptr) return core::Status::Ok();
  const auto now = clock_.Now();
  auto cached = study_sites_cache_.find(study_id);
  if (cached == study_sites_cache_.end() ||
      now - cached->second.checked_at >= security_.status_ttl) {
    FEDRX_ASSIGN_OR_RETURN(core::Key key, core::keys::StudySites(study_id));
    auto members = security_.store->SetMembers(key);
    if (!members.ok()) {
      study_sites_cache_.erase(study_id);
      return core::Unavailable(
          "cannot read the sites of study '" + study_id + "': " + members.status().message(),
          "study_id");
    }
    cached = study_sites_cache_.insert_or_assign(study_id, CachedSites{*members, now}).first;
  }
  const auto& sites = cached->second.sites;
  if (std::find(sites.begin(), sites.end(), site) == sites.end()) {
    return PermissionDenied("site '" + site + "' has not joined study '" + study_id + "'",
                            "study_id");
  }
  return core::Status::Ok();
}

core::Status GatewayService::CheckBody(const core::Inbound& in, const char** reason) {
  const codec::Body& body = in.message.body;
  *reason = "origin_mismatch";
  if (const auto* reg = std::get_if<codec::RegisterSite>(&body);
      reg != nullptr && reg->site_id != in.identity) {
    return PermissionDenied(
        "site_id '" + reg->site_id + "' is not the authenticated identity '" + in.identity + "'",
        "RegisterSite.site_id");
  }
  if (const auto* update = std::get_if<codec::ModelUpdate>(&body);
      update != nullptr && !update->site_id.empty() && update->site_id != in.identity) {
    return PermissionDenied(
        "site_id '" + update->site_id + "' is not the authenticated identity '" + in.identity + "'",
        "ModelUpdate.site_id");
  }
  if (in.role != security::RoleName(security::Role::kSite)) return core::Status::Ok();
  const std::string study = StudyOf(body);
  if (study.empty()) return core::Status::Ok();
  core::Status s = CheckStudyNamesSite(study, in.identity);
  if (!s.ok())
    *reason = s.code() == core::StatusCode::kPermissionDenied ? "not_joined" : "store_error";
  return s;
}

void GatewayService::OnIdentifiedMessage(core::Inbound&& in) {
  const char* type = codec::BodyName(in.message.body);
  if (core::Status s = CheckActive(in.identity); !s.ok()) {
    Deny(in, s, s.code() == core::StatusCode::kPermissionDenied ? "inactive" : "registry_error");
    return;
  }
  const auto& roles = RolesAllowed(in.message.body);
  if (roles.empty()) {
    Deny(in,
         PermissionDenied(std::string(type) + " is not accepted at the gateway", "envelope.body"),
         "message_type");
    return;
  }
  if (std::find(roles.begin(), roles.end(), in.role) == roles.end()) {
    std::string allowed;
    for (auto r : roles) allowed += (allowed.empty() ? "" : ", ") + std::string(r);
    Deny(in,
         PermissionDenied("role '" + in.role + "' may not send " + type + " (only " + allowed + ")",
                          "identity.role"),
         "role");
    return;
  }
  IdentityState& state = StateOf(in);
  const auto limits_it = security_.limits.per_role.find(in.role);
  const RoleLimits limits =
      limits_it == security_.limits.per_role.end() ? RoleLimits{} : limits_it->second;
  if (state.bucket.has_value() && !state.bucket->TryTake(clock_.Now())) {
    RateLimited(in, state, limits);
    return;
  }
  const std::uint64_t bytes = TensorBytes(in.message);
  auto histogram = tensor_bytes_.find(in.role);
  if (histogram == tensor_bytes_.end()) {
    histogram =
        tensor_bytes_
            .emplace(in.role, metrics_.Histogram(
                                  "message_tensor_bytes",
                                  "Tensor bytes of authenticated messages within their rate limit",
                                  {1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9}, {{"role", in.role}}))
            .first;
  }
  histogram->second.Observe(static_cast<double>(bytes));
  if (limits.max_message_bytes > 0 && bytes > limits.max_message_bytes) {
    Deny(in,
         core::Status(core::StatusCode::kResourceExhausted,
                      std::string(type) + " carries " + std::to_string(bytes) +
                          " tensor bytes; the " + in.role + " limit is " +
                          std::to_string(limits.max_message_bytes),
                      "envelope.tensors"),
         "too_large");
    return;
  }
  switch (state.replay->Check(in.message.header.message_id, in.message.header.sent_at_ms,
                              clock_.WallMillis(), clock_.Now())) {
    case ReplayGuard::Verdict::kFresh:
      break;
    case ReplayGuard::Verdict::kDuplicate:
      Deny(in,
           PermissionDenied("message id '" + in.message.header.message_id +
                                "' was already received from '" + in.identity + "' (a replay)",
                            "envelope.message_id"),
           "replay");
      return;
    case ReplayGuard::Verdict::kStale:
      Deny(in,
           PermissionDenied("sent_at_ms " + std::to_string(in.message.header.sent_at_ms) +
                                " is more than " +
                                std::to_string(security_.limits.replay_window.count()) +
                                " ms from the gateway's clock (stale or replayed)",
                            "envelope.sent_at_ms"),
           "stale");
      return;
    case ReplayGuard::Verdict::kFull:
      Deny(in,
           core::Status(core::StatusCode::kResourceExhausted,
                        "too many messages from '" + in.identity +
                            "' within the replay window to tell replays apart",
                        "envelope.message_id"),
           "replay_capacity");
      return;
  }
  const char* reason = "";
  if (core::Status s = CheckBody(in, &reason); !s.ok()) {
    Deny(in, s, reason);
    return;
  }
  const codec::Body& body = in.message.body;
  if (std::holds_alternative<codec::HealthCheck>(body)) {
    Audit(in, security::Decision::kAdmitted, "");
    AnswerHealth(in);
    return;
  }
  if (IsAdminBody(body)) {
    AnswerAdmin(in);  // audits with the action's target
    return;
  }
  Audit(in, security::Decision::kAdmitted, "");
  if (in.role == security::RoleName(security::Role::kSite)) {
    // The connection is authenticated, so any admitted message (re)binds it.
    const std::string site = in.identity;
    Bind(site, in.peer);
    Forward(std::move(in.message), site);
    return;
  }
  ForwardRequest(std::move(in));
}

void GatewayService::AnswerHealth(const core::Inbound& in) {
  const core::Readiness ready = CheckReady();
  const double uptime = std::chrono::duration<double>(clock_.Now() - started_).count();
  core::Reply(bus_, in,
              codec::HealthStatus{"gateway", ready.ready, options_.version, uptime, ready.reason})
      .IgnoreError();
}

namespace {

codec::InstitutionInfo InfoOf(const security::Institution& i) {
  return codec::InstitutionInfo{i.id,
                                i.name,
                                security::RoleName(i.role),
                                security::InstitutionStatusName(i.status),
                                i.public_key,
                                i.enrolled_at_ms,
                                i.updated_at_ms};
}

}  // namespace

core::Result<codec::Body> GatewayService::Administer(const core::Inbound& in) {
  const codec::Body& body = in.message.body;
  if (std::holds_alternative<codec::VerifyAudit>(body)) {
    if (security_.audit == nullptr) {
      return core::Unavailable("this gateway keeps no audit trail", "gateway");
    }
    auto report = security_.audit->Verify();
    if (report.ok()) {
      return codec::Body(
          codec::AuditReport{true, report->records, report->last_id, report->last_hash, ""});
    }
    if (report.status().code() != core::StatusCode::kDataLoss) return report.status();
    return codec::Body(codec::AuditReport{
        false, 0, "", "", "entry " + report.status().where() + ": " + report.status().message()});
  }
  if (security_.registry == nullptr) {
    return core::Unavailable("this gateway has no institution registry", "gateway");
  }
  security::InstitutionRegistry& registry = *security_.registry;
  if (const auto* enrol = std::get_if<codec::EnrolInstitution>(&body)) {
    FEDRX_ASSIGN_OR_RETURN(security::Role role,
                           security::ParseRole(enrol->role, "EnrolInstitution.role"));
    FEDRX_ASSIGN_OR_RETURN(security::Enrolment done, registry.Enrol(enrol->id, enrol->name, role));
    return codec::Body(
        codec::InstitutionEnrolled{InfoOf(done.institution), done.key_pair.secret_key});
  }
  if (std::holds_alternative<codec::ListInstitutions>(body)) {
    FEDRX_ASSIGN_OR_RETURN(std::vector<security::Institution> all, registry.List());
    codec::InstitutionList list;
    for (const auto& i : all) list.institutions.push_back(InfoOf(i));
    return codec::Body(std::move(list));
  }
  if (const auto* set = std::get_if<codec::SetInstitutionStatus>(&body)) {
    core::Result<security::Institution> changed = core::InvalidArgument(
        "status must be active, suspended or revoked, not '" + set->status + "'",
        "SetInstitutionStatus.status");
    if (set->status == "active") changed = registry.Reactivate(set->id);
    if (set->status == "suspended") changed = registry.Suspend(set->id);
    if (set->status == "revoked") changed = registry.Revoke(set->id);
    FEDRX_RETURN_IF_ERROR(changed.status());
    // The change holds for this gateway at once, not after the status cache.
    status_cache_.erase(set->id);
    codec::InstitutionList list;
    list.institutions.push_back(InfoOf(*changed));
    return codec::Body(std::move(list));
  }
  return core::Internal(std::string(codec::BodyName(body)) + " is not an administration body",
                        "envelope.body");
}

void GatewayService::AnswerAdmin(const core::Inbound& in) {
  std::string target;
  if (const auto* e = std::get_if<codec::EnrolInstitution>(&in.message.body)) {
    target = "enrol " + e->id + " as " + e->role;
  } else if (const auto* st = std::get_if<codec::SetInstitutionStatus>(&in.message.body)) {
    target = "set " + st->id + " " + st->status;
  }
  core::Result<codec::Body> answer = Administer(in);
  if (!answer.ok()) {
    metrics_.CountRejected("admin_failed");
    Audit(in, security::Decision::kDenied,
          (target.empty() ? "" : target + ": ") + answer.status().message());
    core::ReplyError(bus_, in, answer.status()).IgnoreError();
    return;
  }
  Audit(in, security::Decision::kAdmitted, target);
  core::Reply(bus_, in, std::move(*answer)).IgnoreError();
}

void GatewayService::ForwardRequest(core::Inbound&& in) {
  const std::string_view service = ServiceFor(in.message.body);
  // A study's replica answers from its runner; any other from the store.
  std::size_t replica = PrimaryReplica();
  if (std::optional<std::size_t> owner = OwnerOf(StudyOf(in.message.body))) replica = *owner;
  core::ChannelId channel = replicas_[replica].channel;
  Backend* backend = nullptr;
  if (service != kCoordinatorService) {
    auto found = backends_.find(service);
    if (found == backends_.end()) {
      CachedCounter("unavailable_total", "Requests for a service the gateway cannot reach",
                    "service", std::string(service))
          .Inc();
      core::ReplyError(
          bus_, in,
          core::Unavailable("no " + std::string(service) + " service is configured at this gateway",
                            "gateway.services." + std::string(service) + ".endpoint"))
          .IgnoreError();
      return;
    }
    backend = &found->second;
    if (!backend->up) {
      CachedCounter("unavailable_total", "Requests for a service the gateway cannot reach",
                    "service", std::string(service))
          .Inc();
      core::ReplyError(bus_, in,
                       core::Unavailable("the " + std::string(service) + " service at " +
                                             backend->endpoint + " is not answering",
                                         "gateway"))
          .IgnoreError();
      return;
    }
    channel = backend->channel;
  }
  // Ids are only unique per sender: the service sees the gateway's own.
  const std::string id = "gw-" + std::to_string(++next_request_);
  pending_[id] = Pending{in.peer, in.message.header.message_id,
                         clock_.Now() + options_.request_timeout, std::string(service)};
  codec::Message m = std::move(in.message);
  m.header.message_id = id;
  // A person is not a site: no origin, so the coordinator treats the request
  // as the gateway's own and answers it by correlation.
  m.header.origin.clear();
  m.header.route_to.clear();
  if (core::Status s = bus_.Send(channel, std::move(m)); !s.ok()) {
    pending_.erase(id);
    metrics_.CountError("gateway", "forward");
    core::ReplyError(
        bus_, in,
        core::Unavailable(std::string(service) + " unreachable: " + s.message(), "gateway"))
        .IgnoreError();
    return;
  }
  if (backend != nullptr) {
    backend->forwarded.Inc();
  } else {
    replicas_[replica].routed.Inc();
    to_coordinator_.Inc();
  }
}

void GatewayService::Sweep() {
  const auto now = clock_.Now();
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->second.expires > now) {
      ++it;
      continue;
    }
    // The person is told rather than left waiting; a late answer is then
    // counted as unroutable.
    const Pending& p = it->second;
    TimeoutCounter(p.service).Inc();
    codec::Message reply = core::MakeMessage(core::ToErrorBody(
        core::DeadlineExceeded("the " + p.service + " service did not answer within " +
                                   std::to_string(options_.request_timeout.count()) + " ms",
                               "gateway")));
    reply.header.correlation_id = p.original_id;
    if (core::Status s = bus_.SendTo(p.peer, std::move(reply)); !s.ok()) {
      metrics_.CountError("gateway", "deliver");
    }
    std::cerr << "gateway: a request to the " << p.service << " service (id " << it->first
              << ") had no answer in time; its sender was told\n";
    it = pending_.erase(it);
  }
  for (auto it = duplicate_ids_.begin(); it != duplicate_ids_.end();) {
    it = it->second <= now ? duplicate_ids_.erase(it) : std::next(it);
  }
  for (auto& [id, state] : identities_) {
    if (state.limited_since_audit > 0) {
      AuditEvent(id, state.role, "RateLimited", security::Decision::kDenied,
                 std::to_string(state.limited_since_audit) +
                     " further messages refused over the rate limit");
      state.limited_since_audit = 0;
    }
    state.limited_audited = false;
  }
  // Sessions of institutions no longer active are dropped: nothing is
  // delivered to them any more, and what they send is refused.
  std::vector<std::string> drop;
  for (const auto& [site, peer] : site_to_peer_) {
    if (!identities_.count(site)) continue;  // a plaintext-mode binding
    if (core::Status s = CheckActive(site); s.code() == core::StatusCode::kPermissionDenied) {
      drop.push_back(site);
      AuditEvent(site, identities_[site].role, "SessionDropped", security::Decision::kDenied,
                 s.message());
    }
  }
  for (const auto& site : drop) {
    Unbind(site);
    sessions_dropped_.Inc();
    std::cerr << "gateway: dropped the session of " << site << "\n";
  }
}

void GatewayService::Bind(const std::string& site, const core::PeerId& peer) {
  auto bound = site_to_peer_.find(site);
  if (bound != site_to_peer_.end() && bound->second != peer) {
    // The site reconnected (a restart gives it a new connection).
    peer_to_site_.erase(bound->second);
  }
  site_to_peer_[site] = peer;
  peer_to_site_[peer] = site;
  sites_gauge_.Set(static_cast<double>(site_to_peer_.size()));
}

void GatewayService::Unbind(const std::string& site) {
  auto bound = site_to_peer_.find(site);
  if (bound == site_to_peer_.end()) return;
  peer_to_site_.erase(bound->second);
  site_to_peer_.erase(bound);
  sites_gauge_.Set(static_cast<double>(site_to_peer_.size()));
}

void GatewayService::OnSiteMessage(core::Inbound&& in) {
  if (!in.identity.empty()) {
    OnIdentifiedMessage(std::move(in));
    return;
  }
  codec::Message& m = in.message;
  std::string site;
  if (const auto* reg = std::get_if<codec::RegisterSite>(&m.body)) {
    if (core::Status s = core::ValidateId(reg->site_id, "RegisterSite.site_id"); !s.ok()) {
      Refuse(in, s, "bad_site_id");
      return;
    }
    site = reg->site_id;
    Bind(site, in.peer);
  } else {
    auto it = peer_to_site_.find(in.peer);
    if (it == peer_to_site_.end()) {
      Refuse(in,
             core::FailedPrecondition(
                 std::string("a site must register before sending ") + codec::BodyName(m.body),
                 "envelope.origin"),
             "unregistered");
      return;
    }
    site = it->second;
  }
  Forward(std::move(m), site);
}

std::size_t GatewayService::PrimaryReplica() const {
  for (std::size_t i = 0; i < replicas_.size(); ++i) {
    if (replicas_[i].up) return i;
  }
  return 0;
}

std::optional<std::size_t> GatewayService::OwnerOf(const std::string& study) const {
  if (study.empty()) return std::nullopt;
  auto it = study_owner_.find(study);
  if (it == study_owner_.end() || !replicas_[it->second].up) return std::nullopt;
  return it->second;
}

core::Status GatewayService::SendToReplica(std::size_t replica, codec::Message m) {
  FEDRX_RETURN_IF_ERROR(bus_.Send(replicas_[replica].channel, std::move(m)));
  replicas_[replica].routed.Inc();
  return core::Status::Ok();
}

core::Status GatewayService::SendToEveryReplica(codec::Message m, bool duplicate_ids) {
  std::vector<std::size_t> targets;
  for (std::size_t i = 0; i < replicas_.size(); ++i) {
    if (replicas_[i].up) targets.push_back(i);
  }
  if (targets.empty()) {
    for (std::size_t i = 0; i < replicas_.size(); ++i) targets.push_back(i);
  }
  core::Status first_error;
  bool sent = false;
  for (std::size_t k = 0; k < targets.size(); ++k) {
    codec::Message copy = k + 1 == targets.size() ? std::move(m) : CopyOfMessage(m);
    if (duplicate_ids && k > 0) {
      // Only the first replica's answer reaches the site.
      copy.header.message_id = "gw-dup-" + std::to_string(++next_duplicate_);
      duplicate_ids_[copy.header.message_id] = clock_.Now() + options_.request_timeout;
    }
    if (core::Status s = SendToReplica(targets[k], std::move(copy)); !s.ok()) {
      if (first_error.ok()) first_error = s;
    } else {
      sent = true;
    }
  }
  return sent ? core::Status::Ok() : first_error;
}

void GatewayService::Forward(codec::Message&& m, const std::string& site) {
  // Whatever the sender wrote, the origin is the site bound to this connection.
  m.header.origin = site;
  m.header.route_to.clear();
  core::Status s;
  if (replicas_.size() == 1) {
    s = SendToReplica(0, std::move(m));
  } else if (std::holds_alternative<codec::Heartbeat>(m.body)) {
    // Every replica keeps its own view of which sites are alive.
    s = SendToEveryReplica(std::move(m), false);
  } else if (std::holds_alternative<codec::RegisterSite>(m.body)) {
    // The registration is stored once (in Redis); each replica learns the
    // site's preparation hash from its copy.
    s = SendToEveryReplica(std::move(m), true);
  } else if (const std::string study = StudyOf(m.body); !study.empty()) {
    if (std::optional<std::size_t> owner = OwnerOf(study)) {
      s = SendToReplica(*owner, std::move(m));
    } else {
      owner_unknown_.Inc();
      s = SendToEveryReplica(std::move(m), false);
    }
  } else {
    s = SendToReplica(PrimaryReplica(), std::move(m));
  }
  if (!s.ok()) {
    metrics_.CountError("gateway", "forward");
    std::cerr << "gateway: could not forward a message from " << site << ": " << s << "\n";
    return;
  }
  to_coordinator_.Inc();
}

bool GatewayService::DeliverToPerson(codec::Message& message) {
  auto p = pending_.find(message.header.correlation_id);
  if (p == pending_.end()) return false;
  const core::PeerId peer = p->second.peer;
  message.header.correlation_id = p->second.original_id;
  pending_.erase(p);
  if (core::Status s = bus_.SendTo(peer, std::move(message)); !s.ok()) {
    metrics_.CountError("gateway", "deliver");
    std::cerr << "gateway: could not deliver an answer: " << s << "\n";
    return true;
  }
  to_people_.Inc();
  return true;
}

void GatewayService::OnServiceMessage(const std::string& service, codec::Message&& message) {
  if (DeliverToPerson(message)) return;
  // Domain services only answer; an answer nobody waits for (expired) is dropped, counted.
  unroutable_.Inc();
  std::cerr << "gateway: a " << codec::BodyName(message.body) << " from the " << service
            << " service answers no pending request (id " << message.header.correlation_id << ")\n";
}

void GatewayService::OnCoordinatorMessage(std::size_t replica, codec::Message&& message) {
  if (!message.header.correlation_id.empty() &&
      duplicate_ids_.erase(message.header.correlation_id) > 0) {
    return;  // the answer to a registration copy; the site had its answer
  }
  if (DeliverToPerson(message)) return;
  if (replicas_.size() > 1) {
    // The replica that sends a study's messages to sites drives the study.
    if (const std::string study = StudyOf(message.body); !study.empty()) {
      auto [it, added] = study_owner_.try_emplace(study, replica);
      if (!added && it->second != replica) {
        std::cerr << "gateway: study " << study << " is now driven by coordinator replica "
                  << replica << " (was " << it->second << ")\n";
        it->second = replica;
        owner_changes_.Inc();
      }
    }
  }
  const std::string site = message.header.route_to;
  auto it = site_to_peer_.find(site);
  if (site.empty() || it == site_to_peer_.end()) {
    unroutable_.Inc();
    std::cerr << "gateway: no connected site '" << site << "' for a "
              << codec::BodyName(message.body) << " (id " << message.header.message_id << ")\n";
    return;
  }
  if (core::Status s = bus_.SendTo(it->second, std::move(message)); !s.ok()) {
    metrics_.CountError("gateway", "deliver");
    std::cerr << "gateway: could not deliver to " << site << ": " << s << "\n";
    if (s.code() == core::StatusCode::kUnavailable) {
      // The connection is gone; the site will register again when it returns.
      peer_to_site_.erase(it->second);
      site_to_peer_.erase(it);
      sites_gauge_.Set(static_cast<double>(site_to_peer_.size()));
    }
    return;
  }
  to_sites_.Inc();
}

void GatewayService::FlushAudit() {
  if (security_.audit == nullptr || security_.audit->queued() == 0) return;
  const std::size_t queued = security_.audit->queued();
  if (core::Status s = security_.audit->Flush(); !s.ok()) {
    std::cerr << "gateway: " << queued << " audit records could not be stored: " << s << "\n";
  }
}

void GatewayService::BeginDrain() { FlushAudit(); }

core::Status GatewayService::Tick() {
  const auto now = clock_.Now();
  if (now >= next_sweep_) {
    next_sweep_ = now + std::min<std::chrono::milliseconds>(security_.status_ttl,
                                                            std::chrono::milliseconds(1000));
    Sweep();
  }
  FlushAudit();
  if (now < next_probe_) return core::Status::Ok();
  next_probe_ = now + options_.probe_interval;
  ProbeServices();
  ProbeCoordinators();
  return core::Status::Ok();
}

void GatewayService::ProbeCoordinators() {
  for (std::size_t i = 0; i < replicas_.size(); ++i) {
    Replica& replica = replicas_[i];
    if (replica.probe_in_flight) continue;
    replica.probe_in_flight = true;
    auto on_reply = [this, i](core::Result<codec::Message>&& reply) {
      Replica& r = replicas_[i];
      r.probe_in_flight = false;
      if (reply.ok()) r.last_answer = clock_.Now();
      if (r.up != reply.ok() && replicas_.size() > 1) {
        std::cerr << "gateway: coordinator replica " << i << " at " << r.endpoint
                  << (reply.ok() ? " answers again\n" : " stopped answering\n");
      }
      r.up = reply.ok();
      r.up_gauge.Set(r.up ? 1 : 0);
    };
    const core::Status sent = bus_.Request(replica.channel, core::MakeMessage(codec::HealthCheck{}),
                                           options_.probe_interval, std::move(on_reply));
    if (!sent.ok()) {
      replica.probe_in_flight = false;
      replica.up = false;
      replica.up_gauge.Set(0);
      metrics_.CountError("gateway", "probe");
    }
  }
}

void GatewayService::ProbeServices() {
  for (auto& [name, backend] : backends_) {
    if (backend.probe_in_flight) continue;
    backend.probe_in_flight = true;
    Backend* b = &backend;
    const core::Status sent =
        bus_.Request(backend.channel, core::MakeMessage(codec::HealthCheck{}),
                     options_.probe_interval, [b](core::Result<codec::Message>&& reply) {
                       b->probe_in_flight = false;
                       b->up = reply.ok();
                       b->up_gauge.Set(b->up ? 1 : 0);
                     });
    if (!sent.ok()) {
      backend.probe_in_flight = false;
      backend.up = false;
      backend.up_gauge.Set(0);
    }
  }
}

core::Readiness GatewayService::CheckReady() {
  for (const Replica& r : replicas_) {
    if (r.last_answer != std::chrono::steady_clock::time_point{} &&
        clock_.Now() - r.last_answer <= options_.probe_stale_after) {
      return {true, ""};
    }
  }
  return {false, "coordinator not answering at " + options_.coordinator_endpoint};
}

std::string GatewayService::SiteOf(const core::PeerId& peer) const {
  auto it = peer_to_site_.find(peer);
  return it == peer_to_site_.end() ? std::string() : it->second;
}

}  // namespace fedrx::gateway
