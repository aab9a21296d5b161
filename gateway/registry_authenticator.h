// RegistryAuthenticator: admits a CURVE client whose public key is enrolled in
// the InstitutionRegistry and active; the identity is the institution's id and
// role. Called on the bus's thread; not thread-safe (like the registry).
#pragma once

#include <string_view>

#include "services/core/authenticator.h"
#include "services/security/institution_registry.h"

namespace fedrx::gateway {

class RegistryAuthenticator final : public core::Authenticator {
 public:
  // `registry` must outlive the authenticator.
  explicit RegistryAuthenticator(security::InstitutionRegistry& registry) : registry_(registry) {}

  // kPermissionDenied for a key never enrolled, or an institution suspended or
  // revoked; registry (store) failures as is (kUnavailable: counted as an
  // error by the bus). Blocks for one registry lookup.
  core::Result<core::Identity> Authenticate(std::string_view public_key_z85) override;

 private:
  security::InstitutionRegistry& registry_;
};

}  // namespace fedrx::gateway
