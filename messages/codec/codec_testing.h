// Test support: envelopes no well-behaved sender would build, for tests of
// how receivers refuse them. Not for production code paths. Thread-safe.
#pragma once

#include <cstdint>
#include <string>

#include "messages/codec/blob.h"

namespace fedrx::codec::testing {

// A verifiable envelope (current schema version) whose body type number is
// `body_type` (e.g. one beyond the known union) with an empty table as body.
Blob EnvelopeWithBodyType(const std::string& message_id, std::uint8_t body_type);

// A verifiable envelope whose body type is `body_type` and whose body table
// is absent: the FlatBuffers Verifier accepts it (an absent table verifies).
Blob EnvelopeWithBodyTypeOnly(const std::string& message_id, std::uint8_t body_type);

}  // namespace fedrx::codec::testing
