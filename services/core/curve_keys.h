// CurveZMQ key pairs for the bus: generation, validation, and the key file a
// service loads at startup. Stateless and thread-safe.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "services/core/status.h"

namespace fedrx::core {

// Length of a CURVE key in Z85 text (32 bytes of key).
inline constexpr std::size_t kCurveKeyZ85Length = 40;

// A CURVE key pair in Z85 text. `secret_key` is a secret: never log it.
struct CurveKeyPair {
  std::string public_key;
  std::string secret_key;
};

// kInvalidArgument unless `key` is 40 characters of valid Z85; `what` names the
// key in the message (e.g. "BusOptions.curve_server_key").
Status CheckCurveKey(std::string_view key, std::string_view what);

// kInvalidArgument unless both keys are valid and `public_key` is the one that
// belongs to `secret_key`.
Status CheckCurveKeyPair(const CurveKeyPair& pair, std::string_view where);

// A fresh key pair (zmq_curve_keypair). kUnimplemented when libzmq was built
// without CURVE support.
Result<CurveKeyPair> GenerateCurveKeyPair();

// Reads a key file of two lines, `public = <Z85>` and `secret = <Z85>` (blank
// lines and lines starting with '#' are ignored; `public-key`/`secret-key`
// are accepted as the same names). Refuses, with a message
// naming the file: a file group or others may access (kPermissionDenied; the
// fix is chmod 600), a missing file (kNotFound), anything but a regular file,
// an unknown or repeated line, a missing key, a key that is not Z85 of the
// right length, or a public key that does not belong to the secret key
// (kInvalidArgument). Blocks on file I/O.
Result<CurveKeyPair> LoadCurveKeyPair(const std::string& path);

// Writes `pair` to `path` in the format above, mode 0600, through a temporary
// file in the same directory and a rename, so a reader never sees half a file
// and an existing file is replaced whole or not at all. Refuses an invalid
// pair (kInvalidArgument). Blocks on file I/O.
Status WriteCurveKeyPair(const std::string& path, const CurveKeyPair& pair);

// Reads the public key a client needs to reach a CURVE server: either a file
// holding only `public = <Z85>` (what WriteCurvePublicKey writes; it may be
// world-readable), or a whole key-pair file, which is then held to every rule
// of LoadCurveKeyPair (0600, the pair matches). Refuses, naming the file and
// line: a missing file (kNotFound), anything but a regular file, an unknown
// or repeated line, no public key, or a key that is not 40 characters of Z85
// (kInvalidArgument). Blocks on file I/O.
Result<std::string> LoadCurvePublicKey(const std::string& path);

// Writes `public = <public_key>` to `path` (mode 0644, through a temporary
// file and a rename): the file to hand to a server's clients. Refuses a key
// that is not valid Z85 (kInvalidArgument). Blocks on file I/O.
Status WriteCurvePublicKey(const std::string& path, std::string_view public_key);

}  // namespace fedrx::core
