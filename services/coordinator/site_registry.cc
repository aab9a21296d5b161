#include "services/coordinator/site_registry.h"

#include <charconv>
#include <string>

namespace fedrx::coordinator {
namespace {

// Field names of a site's hash in the store.
constexpr char kInstitution[] = "institution";
constexpr char kNumSamples[] = "num_samples";
constexpr char kTasks[] = "tasks";
constexpr char kSchemaHash[] = "schema_hash";
constexpr char kRegisteredAt[] = "registered_at_ms";
constexpr char kLastSeen[] = "last_seen_ms";

// Task names never contain '\n' (Validate refuses it), so it separates them.
std::string JoinTasks(const std::vector<std::string>& tasks) {
  std::string out;
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    if (i > 0) out += '\n';
    out += tasks[i];
  }
  return out;
}

std::vector<std::string> SplitTasks(std::string_view s) {
  std::vector<std::string> out;
  if (s.empty()) return out;
  std::size_t start = 0;
  while (true) {
    const std::size_t nl = s.find('\n', start);
    out.emplace_back(s.substr(start, nl == std::string_view::npos ? s.npos : nl - start));
    if (nl == std::string_view::npos) break;
    start = nl + 1;
  }
  return out;
}

template <typename T>
T NumberOr(const core::FieldMap& fields, const char* name, T fallback) {
  auto it = fields.find(name);
  if (it == fields.end()) return fallback;
  T value{};
  const auto* end = it->second.data() + it->second.size();
  auto [ptr, ec] = std::from_chars(it->second.data(), end, value);
  return (ec == std::errc() && ptr == end) ? value : fallback;
}

std::string FieldOr(const core::FieldMap& fields, const char* name) {
  auto it = fields.find(name);
  return it == fields.end() ? std::string() : it->second;
}

bool Printable(std::string_view s) {
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) return false;
  }
  return true;
}

}  // namespace

SiteRegistry::SiteRegistry(core::StateStore& store, const core::Clock& clock,
                           core::Metrics& metrics, SiteLimits limits)
    : store_(store),
      clock_(clock),
      limits_(limits),
      registered_new_(metrics.Counter("site_registrations_total", "Site registrations accepted",
                                      {{"kind", "new"}})),
      registered_again_(metrics.Counter("site_registrations_total",
                                        "Site registrations accepted", {{"kind", "refresh"}})),
      refused_(metrics.Counter("site_registrations_refused_total",
                               "Site registrations refused (invalid or store unavailable)")),
      sites_(metrics.Gauge("sites_registered", "Sites registered with the coordinator")) {}

core::Status SiteRegistry::Validate(const codec::RegisterSite& r) const {
  FEDRX_RETURN_IF_ERROR(core::ValidateId(r.site_id, "RegisterSite.site_id"));
  if (r.institution.empty()) {
    return core::InvalidArgument("institution is empty", "RegisterSite.institution");
  }
  if (r.institution.size() > limits_.max_institution_bytes || !Printable(r.institution)) {
    return core::InvalidArgument("institution must be printable and at most " +
                                     std::to_string(limits_.max_institution_bytes) + " bytes",
                                 "RegisterSite.institution");
  }
  if (r.tasks.size() > limits_.max_tasks) {
    return core::InvalidArgument(std::to_string(r.tasks.size()) + " tasks exceed the limit of " +
                                     std::to_string(limits_.max_tasks),
                                 "RegisterSite.tasks");
  }
  for (std::size_t i = 0; i < r.tasks.size(); ++i) {
    const auto& t = r.tasks[i];
    if (t.empty() || t.size() > limits_.max_task_bytes || !Printable(t)) {
      return core::InvalidArgument("task name must be printable and 1.." +
                                       std::to_string(limits_.max_task_bytes) + " bytes",
                                   "RegisterSite.tasks[" + std::to_string(i) + "]");
    }
  }
  if (r.schema_hash.size() > limits_.max_schema_hash_bytes || !Printable(r.schema_hash)) {
    return core::InvalidArgument("schema hash must be printable and at most " +
                                     std::to_string(limits_.max_schema_hash_bytes) + " bytes",
                                 "RegisterSite.schema_hash");
  }
  return core::Status::Ok();
}

core::Result<codec::SiteRegistered> SiteRegistry::Register(const codec::RegisterSite& r) {
  if (core::Status s = Validate(r); !s.ok()) {
    refused_.Inc();
    return s;
  }
  auto key = core::keys::Site(r.site_id);
  if (!key.ok()) return key.status();

  auto previous = store_.HashGet(*key, kRegisteredAt);
  if (!previous.ok()) {
    refused_.Inc();
    return previous.status().WithContext("reading site " + r.site_id);
  }
  const std::int64_t now = clock_.WallMillis();
  const bool first = !previous->has_value();
  std::int64_t registered_at = now;
  if (!first) {
    registered_at = NumberOr<std::int64_t>({{kRegisteredAt, **previous}}, kRegisteredAt, now);
  }

  core::WriteBatch batch;
  batch.HashSet(*key, {{kInstitution, r.institution},
                       {kNumSamples, std::to_string(r.num_samples)},
                       {kTasks, JoinTasks(r.tasks)},
                       {kSchemaHash, r.schema_hash},
                       {kRegisteredAt, std::to_string(registered_at)},
                       {kLastSeen, std::to_string(now)}});
  batch.SetAdd(core::keys::SiteIndex(), r.site_id);
  if (core::Status s = store_.Apply(batch); !s.ok()) {
    refused_.Inc();
    return s.WithContext("storing site " + r.site_id);
  }
  (first ? registered_new_ : registered_again_).Inc();
  if (first) sites_.Inc();
  return codec::SiteRegistered{r.site_id, registered_at, first};
}

core::Result<codec::SiteList> SiteRegistry::List() {
  auto ids = store_.SetMembers(core::keys::SiteIndex());
  if (!ids.ok()) return ids.status().WithContext("listing sites");
  std::vector<core::Key> keys;
  keys.reserve(ids->size());
  for (const auto& id : *ids) {
    auto key = core::keys::Site(id);
    if (!key.ok()) {
      return core::Status(core::StatusCode::kDataLoss,
                          "the site index holds an invalid id: " + key.status().message(),
                          core::keys::SiteIndex().str());
    }
    keys.push_back(std::move(*key));
  }
  auto records = store_.HashGetAllMany(keys);
  if (!records.ok()) return records.status().WithContext("reading sites");

  codec::SiteList list;
  list.sites.reserve(ids->size());
  for (std::size_t i = 0; i < ids->size(); ++i) {
    const auto& f = (*records)[i];
    if (f.empty()) continue;  // removed between the two reads
    list.sites.push_back(codec::SiteInfo{
        (*ids)[i], FieldOr(f, kInstitution), NumberOr<std::uint64_t>(f, kNumSamples, 0),
        SplitTasks(FieldOr(f, kTasks)), FieldOr(f, kSchemaHash),
        NumberOr<std::int64_t>(f, kRegisteredAt, 0), NumberOr<std::int64_t>(f, kLastSeen, 0)});
  }
  sites_.Set(static_cast<double>(list.sites.size()));
  return list;
}

core::Status SiteRegistry::Touch(std::string_view site_id) {
  FEDRX_ASSIGN_OR_RETURN(core::Key key, core::keys::Site(site_id));
  auto existing = store_.HashGet(key, kRegisteredAt);
  if (!existing.ok()) return existing.status();
  if (!existing->has_value()) {
    return core::NotFound("site " + std::string(site_id) + " is not registered", "site_id");
  }
  return store_.HashSet(key, {{kLastSeen, std::to_string(clock_.WallMillis())}});
}

}  // namespace fedrx::coordinator
