// InstitutionRegistry: which institutions may connect (their CURVE public
// keys), in what role, and whether they are active, suspended or revoked. The
// gateway's authenticator calls Lookup; the `fedrx` CLI enrols and manages.
// Not thread-safe (it uses one StateStore, which is not): one per thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "services/core/clock.h"
#include "services/core/curve_keys.h"
#include "services/core/state_store.h"
#include "services/core/status.h"

namespace fedrx::security {

enum class Role { kSite, kScientist, kAdmin };
// Revoked is final; suspended can be reactivated.
enum class InstitutionStatus { kActive, kSuspended, kRevoked };

// "site", "scientist", "admin" / "active", "suspended", "revoked".
const char* RoleName(Role role);
const char* InstitutionStatusName(InstitutionStatus status);
// kInvalidArgument naming `what` for any other text.
core::Result<Role> ParseRole(std::string_view text, std::string_view what);

struct Institution {
  std::string id;
  std::string name;
  Role role = Role::kSite;
  InstitutionStatus status = InstitutionStatus::kActive;
  std::string public_key;  // Z85; the secret key is never stored
  std::int64_t enrolled_at_ms = 0;
  std::int64_t updated_at_ms = 0;  // of the last status change
};

// What Enrol hands back: the record, and the key pair that only the caller
// ever sees (write it to the institution's key file; it cannot be recovered).
struct Enrolment {
  Institution institution;
  core::CurveKeyPair key_pair;
};

// Stored as (see services/core/keys.h): keys::Institution(id) hash {name,
// role, status, public_key, enrolled_at, updated_at}; id in
// keys::InstitutionIndex(); keys::InstitutionByKey(public_key) -> id.
class InstitutionRegistry {
 public:
  // Both must outlive the registry.
  InstitutionRegistry(core::StateStore& store, const core::Clock& clock);

  // Generates a key pair and stores the institution as active, its hash,
  // index entry and key mapping in one atomic batch. kInvalidArgument for a
  // bad id or an empty/oversized name (where = "id"/"name"); kAlreadyExists
  // for an id already enrolled (whatever its status); store errors as is.
  //
  // The duplicate check is a read before the batch: two admins enrolling the
  // same id at the same instant could both pass it. The later write wins the
  // hash; the loser's key then maps to a record holding another key, which
  // Lookup refuses (NotFound), so no key is ever admitted as someone else.
  core::Result<Enrolment> Enrol(std::string_view id, std::string_view name, Role role);

  // Every institution, by id. Blocks for two round trips.
  core::Result<std::vector<Institution>> List();
  // One institution; kNotFound for an unknown id.
  core::Result<Institution> Get(std::string_view id);

  // Status changes; each returns the updated record. kNotFound for an unknown
  // id. Suspend and Reactivate of a revoked institution are
  // kFailedPrecondition (revoked is final); repeating a change is a no-op.
  // Revoking keeps the key mapping, so Lookup still names the key as revoked.
  // A change reads the record, then writes the status: a Reactivate racing a
  // Revoke from another admin could undo it. Admin changes are rare and made
  // by hand; the admin path through the gateway should serialise them.
  core::Result<Institution> Suspend(std::string_view id);
  core::Result<Institution> Reactivate(std::string_view id);
  core::Result<Institution> Revoke(std::string_view id);

  // The institution a CURVE public key belongs to, whatever its status (the
  // caller admits only kActive). kInvalidArgument for a key that is not Z85;
  // kNotFound for a key never enrolled (or superseded, see Enrol).
  core::Result<Institution> Lookup(std::string_view public_key);

 private:
  core::Result<Institution> SetStatus(std::string_view id, InstitutionStatus status);

  core::StateStore& store_;
  const core::Clock& clock_;
};

}  // namespace fedrx::security
