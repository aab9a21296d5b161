// Authenticator: decides who may connect to a CURVE server, by public key. The
// bus asks it once per connection handshake, on the bus's own thread, inside
// Bus::Poll(). Implementations need not be thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "services/core/status.h"

namespace fedrx::core {

// Who a client is, as established when its connection was authenticated.
struct Identity {
  // The institution or site id (bounded: never use it as a metric label).
  std::string id;
  // What the holder may do: "site", "scientist" or "admin".
  std::string role;
};

class Authenticator {
 public:
  virtual ~Authenticator() = default;

  // The identity enrolled for `public_key_z85` (a client's CURVE public key,
  // 40 Z85 characters). A non-OK status refuses the connection: its message
  // becomes the ZAP status text; kUnavailable, kInternal or kDeadlineExceeded
  // mark a failure of the authenticator itself (counted as "error", not
  // "denied"). May block briefly (e.g. a StateStore lookup): the bus handles no
  // other traffic meanwhile.
  virtual Result<Identity> Authenticate(std::string_view public_key_z85) = 0;
};

}  // namespace fedrx::core
