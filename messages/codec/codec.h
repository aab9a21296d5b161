// Encoding and decoding between Message and its frames: frame 0 is the
// FlatBuffers envelope, frames 1..n are the tensors' bytes, moved not copied.
// Every received envelope passes the FlatBuffers Verifier before it is read.
// Stateless and thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "messages/codec/blob.h"
#include "messages/codec/message.h"

namespace fedrx::codec {

// Why a received message was refused. Bounded: used as a metric label.
enum class DecodeFault {
  kNoFrames,          // nothing arrived
  kOversized,         // a frame or the whole message exceeds the limits
  kNotAnEnvelope,     // too short or wrong file identifier
  kVerifyFailed,      // the FlatBuffers Verifier rejected the envelope
  kNewerSchema,       // schema_version above kSchemaVersion
  kUnknownBody,       // a body type this build does not know, or none
  kMissingField,      // a required field is absent or empty
  kBadField,          // a field is out of range or malformed
  kTensorMismatch,    // tensor specs and frames disagree
};
const char* DecodeFaultName(DecodeFault fault);

struct DecodeError {
  DecodeFault fault;
  // What was wrong, in words, e.g. "schema version 7 is newer than 1".
  std::string message;
  // Where, e.g. "frame 0", "envelope.message_id", "tensor 2 (weights)".
  std::string where;
  // Identity fields that could still be read (empty when the envelope was unreadable),
  // so that an error reply can name the request it answers.
  std::string message_id;
};

struct Limits {
  std::size_t max_envelope_bytes = 1 << 20;         // 1 MiB
  std::size_t max_tensor_bytes = std::size_t{1} << 31;  // 2 GiB per tensor frame
  std::size_t max_tensors = 64;
  std::size_t max_id_bytes = 64;
};

class Decoded {
 public:
  explicit Decoded(Message message) : message_(std::move(message)) {}
  explicit Decoded(DecodeError error) : error_(std::move(error)) {}
  bool ok() const { return message_.has_value(); }
  Message& message() { return *message_; }
  const DecodeError& error() const { return *error_; }

 private:
  std::optional<Message> message_;
  std::optional<DecodeError> error_;
};

// Frame 0: the envelope; frames 1..n: the tensors' data, moved out of `message`.
// Header fields are written as given (the transport fills ids and time).
std::vector<Blob> Encode(Message&& message);

// Verifies and decodes `frames` (consumed: tensor frames are moved into the
// result's tensors, not copied). Never throws; a bad input yields a DecodeError.
Decoded Decode(std::vector<Blob>&& frames, const Limits& limits = Limits{});

}  // namespace fedrx::codec
