// StaticAuthenticator: admits the fixed set of CURVE client keys named in an
// "authorised clients" file, for traffic between the platform's own services
// (the gateway connecting to the coordinator, say). Immutable once built;
// Authenticate is const in effect and safe to call from one thread at a time.
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "services/core/authenticator.h"
#include "services/core/status.h"

namespace fedrx::core {

// One line of an authorised clients file.
struct AuthorisedClient {
  std::string id;          // [A-Za-z0-9._-]{1,64}
  std::string role;        // same alphabet, e.g. "gateway"
  std::string public_key;  // 40 Z85 characters
};

class StaticAuthenticator final : public Authenticator {
 public:
  // Parses an authorised clients file's text: one client a line,
  // `<id> <role> <public_key_z85>` separated by spaces or tabs; blank lines
  // and lines starting with '#' are ignored. Refuses (kInvalidArgument, the
  // error naming `source:line`): a line without exactly three fields, an id
  // or role outside [A-Za-z0-9._-]{1,64}, a key that is not 40 characters of
  // valid Z85 (never quoted), a key listed twice, and a text naming no client
  // at all (a CURVE server that admits nobody is a configuration mistake).
  // An id may appear with several keys (key rotation).
  static Result<std::unique_ptr<StaticAuthenticator>> Parse(std::string_view text,
                                                            std::string_view source);

  // Reads and parses `path` (at most 1 MiB). Also refuses a missing file
  // (kNotFound), anything but a regular file, and a file others may write
  // (kPermissionDenied: whoever can write it can admit a key). Blocks on file I/O.
  static Result<std::unique_ptr<StaticAuthenticator>> Load(const std::string& path);

  // The client's identity; kPermissionDenied for a key not in the file.
  // Never blocks.
  Result<Identity> Authenticate(std::string_view public_key_z85) override;

  std::size_t size() const { return clients_.size(); }

 private:
  explicit StaticAuthenticator(std::map<std::string, Identity, std::less<>> clients)
      : clients_(std::move(clients)) {}

  // Public key -> identity.
  std::map<std::string, Identity, std::less<>> clients_;
};

}  // namespace fedrx::core
