#include "services/security/institution_registry.h"

#include <charconv>
#include <optional>
#include <utility>

#include "services/core/keys.h"

namespace fedrx::security {
namespace {

constexpr std::size_t kMaxNameBytes = 128;

// Hash field names of keys::Institution.
constexpr char kName[] = "name";
constexpr char kRole[] = "role";
constexpr char kStatus[] = "status";
constexpr char kPublicKey[] = "public_key";
constexpr char kEnrolledAt[] = "enrolled_at";
constexpr char kUpdatedAt[] = "updated_at";

std::optional<InstitutionStatus> ParseStatus(std::string_view text) {
  for (InstitutionStatus s :
       {InstitutionStatus::kActive, InstitutionStatus::kSuspended, InstitutionStatus::kRevoked}) {
    if (text == InstitutionStatusName(s)) return s;
  }
  return std::nullopt;
}

std::optional<std::int64_t> ParseMillis(const std::string& text) {
  std::int64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return v;
}

core::Status ValidateName(std::string_view name) {
  if (name.empty()) return core::InvalidArgument("name is empty", "name");
  if (name.size() > kMaxNameBytes) {
    return core::InvalidArgument("name is " + std::to_string(name.size()) + " bytes, at most " +
                                     std::to_string(kMaxNameBytes) + " allowed",
                                 "name");
  }
  for (std::size_t i = 0; i < name.size(); ++i) {
    const auto c = static_cast<unsigned char>(name[i]);
    if (c < 0x20 || c == 0x7f) {
      return core::InvalidArgument("name has a control character at offset " + std::to_string(i),
                                   "name");
    }
  }
  return core::Status::Ok();
}

// A stored record back into an Institution; kDataLoss names the key when a
// field is missing or unreadable (the record was not written by Enrol).
core::Result<Institution> FromFields(std::string id, const core::FieldMap& fields,
                                     const core::Key& key) {
  auto field = [&](const char* name) -> const std::string* {
    auto it = fields.find(name);
    return it == fields.end() ? nullptr : &it->second;
  };
  auto corrupt = [&](const char* name) {
    return core::Status(core::StatusCode::kDataLoss,
                        std::string("institution record has a missing or bad '") + name + "'",
                        key.str());
  };
  Institution out;
  out.id = std::move(id);
  const std::string* name = field(kName);
  if (name == nullptr) return corrupt(kName);
  out.name = *name;
  const std::string* role = field(kRole);
  if (role == nullptr) return corrupt(kRole);
  core::Result<Role> parsed_role = ParseRole(*role, kRole);
  if (!parsed_role.ok()) return corrupt(kRole);
  out.role = *parsed_role;
  const std::string* status = field(kStatus);
  std::optional<InstitutionStatus> parsed_status =
      status == nullptr ? std::nullopt : ParseStatus(*status);
  if (!parsed_status) return corrupt(kStatus);
  out.status = *parsed_status;
  const std::string* public_key = field(kPublicKey);
  if (public_key == nullptr || !core::CheckCurveKey(*public_key, kPublicKey).ok()) {
    return corrupt(kPublicKey);
  }
  out.public_key = *public_key;
  const std::string* enrolled = field(kEnrolledAt);
  std::optional<std::int64_t> enrolled_ms = enrolled ? ParseMillis(*enrolled) : std::nullopt;
  if (!enrolled_ms) return corrupt(kEnrolledAt);
  out.enrolled_at_ms = *enrolled_ms;
  const std::string* updated = field(kUpdatedAt);
  std::optional<std::int64_t> updated_ms = updated ? ParseMillis(*updated) : std::nullopt;
  if (!updated_ms) return corrupt(kUpdatedAt);
  out.updated_at_ms = *updated_ms;
  return out;
}

}  // namespace

const char* RoleName(Role role) {
  switch (role) {
    case Role::kSite:
      return "site";
    case Role::kScientist:
      return "scientist";
    case Role::kAdmin:
      return "admin";
  }
  return "?";
}

const char* InstitutionStatusName(InstitutionStatus status) {
  switch (status) {
    case InstitutionStatus::kActive:
      return "active";
    case InstitutionStatus::kSuspended:
      return "suspended";
    case InstitutionStatus::kRevoked:
      return "revoked";
  }
  return "?";
}

core::Result<Role> ParseRole(std::string_view text, std::string_view what) {
  for (Role role : {Role::kSite, Role::kScientist, Role::kAdmin}) {
    if (text == RoleName(role)) return role;
  }
  return core::InvalidArgument("role must be site, scientist or admin", std::string(what));
}

InstitutionRegistry::InstitutionRegistry(core::StateStore& store, const core::Clock& clock)
    : store_(store), clock_(clock) {}

core::Result<Enrolment> InstitutionRegistry::Enrol(std::string_view id, std::string_view name,
                                                   Role role) {
  FEDRX_RETURN_IF_ERROR(core::ValidateId(id, "id"));
  FEDRX_RETURN_IF_ERROR(ValidateName(name));
  FEDRX_ASSIGN_OR_RETURN(core::Key key, core::keys::Institution(id));
  FEDRX_ASSIGN_OR_RETURN(core::FieldMap existing, store_.HashGetAll(key));
  if (!existing.empty()) {
    return core::Status(core::StatusCode::kAlreadyExists,
                        "institution " + std::string(id) + " is already enrolled", "id");
  }
  FEDRX_ASSIGN_OR_RETURN(core::CurveKeyPair pair, core::GenerateCurveKeyPair());
  FEDRX_ASSIGN_OR_RETURN(core::Key by_key, core::keys::InstitutionByKey(pair.public_key));

  Institution institution;
  institution.id = std::string(id);
  institution.name = std::string(name);
  institution.role = role;
  institution.status = InstitutionStatus::kActive;
  institution.public_key = pair.public_key;
  institution.enrolled_at_ms = clock_.WallMillis();
  institution.updated_at_ms = institution.enrolled_at_ms;

  core::WriteBatch batch;
  batch
      .HashSet(key, {{kName, institution.name},
                     {kRole, RoleName(role)},
                     {kStatus, InstitutionStatusName(institution.status)},
                     {kPublicKey, institution.public_key},
                     {kEnrolledAt, std::to_string(institution.enrolled_at_ms)},
                     {kUpdatedAt, std::to_string(institution.updated_at_ms)}})
      .SetAdd(core::keys::InstitutionIndex(), institution.id)
      .Set(by_key, institution.id);
  FEDRX_RETURN_IF_ERROR(store_.Apply(batch));
  return Enrolment{std::move(institution), std::move(pair)};
}

core::Result<std::vector<Institution>> InstitutionRegistry::List() {
  FEDRX_ASSIGN_OR_RETURN(std::vector<std::string> ids,
                         store_.SetMembers(core::keys::InstitutionIndex()));
  std::vector<core::Key> keys;
  keys.reserve(ids.size());
  for (const std::string& id : ids) {
    core::Result<core::Key> key = core::keys::Institution(id);
    if (!key.ok()) {
      return core::Status(core::StatusCode::kDataLoss,
                          "institution index holds a malformed id: " + key.status().message(),
                          core::keys::InstitutionIndex().str());
    }
    keys.push_back(std::move(key).value());
  }
  FEDRX_ASSIGN_OR_RETURN(std::vector<core::FieldMap> records, store_.HashGetAllMany(keys));
  std::vector<Institution> out;
  out.reserve(ids.size());
  for (std::size_t i = 0; i < ids.size(); ++i) {
    FEDRX_ASSIGN_OR_RETURN(Institution institution, FromFields(ids[i], records[i], keys[i]));
    out.push_back(std::move(institution));
  }
  return out;
}

core::Result<Institution> InstitutionRegistry::Get(std::string_view id) {
  FEDRX_RETURN_IF_ERROR(core::ValidateId(id, "id"));
  FEDRX_ASSIGN_OR_RETURN(core::Key key, core::keys::Institution(id));
  FEDRX_ASSIGN_OR_RETURN(core::FieldMap fields, store_.HashGetAll(key));
  if (fields.empty()) {
    return core::NotFound("no institution " + std::string(id) + " is enrolled", "id");
  }
  return FromFields(std::string(id), fields, key);
}

core::Result<Institution> InstitutionRegistry::SetStatus(std::string_view id,
                                                         InstitutionStatus status) {
  FEDRX_ASSIGN_OR_RETURN(Institution institution, Get(id));
  if (institution.status == status) return institution;
  if (institution.status == InstitutionStatus::kRevoked) {
    return core::FailedPrecondition(
        "institution " + institution.id + " is revoked, which is final; enrol it anew", "id");
  }
  institution.status = status;
  institution.updated_at_ms = clock_.WallMillis();
  FEDRX_ASSIGN_OR_RETURN(core::Key key, core::keys::Institution(id));
  FEDRX_RETURN_IF_ERROR(
      store_.HashSet(key, {{kStatus, InstitutionStatusName(status)},
                           {kUpdatedAt, std::to_string(institution.updated_at_ms)}}));
  return institution;
}

core::Result<Institution> InstitutionRegistry::Suspend(std::string_view id) {
  return SetStatus(id, InstitutionStatus::kSuspended);
}

core::Result<Institution> InstitutionRegistry::Reactivate(std::string_view id) {
  return SetStatus(id, InstitutionStatus::kActive);
}

core::Result<Institution> InstitutionRegistry::Revoke(std::string_view id) {
  return SetStatus(id, InstitutionStatus::kRevoked);
}

core::Result<Institution> InstitutionRegistry::Lookup(std::string_view public_key) {
  FEDRX_ASSIGN_OR_RETURN(core::Key by_key, core::keys::InstitutionByKey(public_key));
  FEDRX_ASSIGN_OR_RETURN(std::optional<std::string> id, store_.Get(by_key));
  if (!id) return core::NotFound("no institution is enrolled with this public key", "public_key");
  FEDRX_ASSIGN_OR_RETURN(core::Key key, core::keys::Institution(*id));
  FEDRX_ASSIGN_OR_RETURN(core::FieldMap fields, store_.HashGetAll(key));
  if (fields.empty()) {
    return core::Status(core::StatusCode::kDataLoss,
                        "public key maps to institution " + *id + ", which has no record",
                        by_key.str());
  }
  FEDRX_ASSIGN_OR_RETURN(Institution institution, FromFields(*id, fields, key));
  // A superseded key (see Enrol's race) must not pass as the current one.
  if (institution.public_key != public_key) {
    return core::NotFound("public key is no longer the key of institution " + *id, "public_key");
  }
  return institution;
}

}  // namespace fedrx::security
