#include "gateway/registry_authenticator.h"

#include <string>

namespace fedrx::gateway {

core::Result<core::Identity> RegistryAuthenticator::Authenticate(std::string_view public_key_z85) {
  auto found = registry_.Lookup(public_key_z85);
  if (!found.ok()) {
    const core::StatusCode code = found.status().code();
    if (code == core::StatusCode::kNotFound || code == core::StatusCode::kInvalidArgument) {
      return core::Status(core::StatusCode::kPermissionDenied, "key not enrolled", "curve key");
    }
    return found.status();
  }
  if (found->status != security::InstitutionStatus::kActive) {
    return core::Status(
        core::StatusCode::kPermissionDenied,
        std::string("institution is ") + security::InstitutionStatusName(found->status), found->id);
  }
  return core::Identity{found->id, security::RoleName(found->role)};
}

}  // namespace fedrx::gateway
