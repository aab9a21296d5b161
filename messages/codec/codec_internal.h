// Internal to messages/codec: helpers codec.cc and domain_codec.cc share, and
// the encoders and decoder of the domain bodies (translational.fbs, trial.fbs).
// Not for use outside messages/codec: it exposes the generated wire types.
// Stateless and thread-safe.
#pragma once

#include <flatbuffers/flatbuffers.h>

#include <bit>
#include <cstring>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "messages/codec/codec.h"
#include "messages/codec/message.h"
#include "messages/envelope_generated.h"

namespace fedrx::codec::internal {

// An absent string reads as empty.
inline std::string Str(const flatbuffers::String* s) {
  return s == nullptr ? std::string() : s->str();
}

// An absent vector of strings reads as empty.
inline std::vector<std::string> Strs(
    const flatbuffers::Vector<flatbuffers::Offset<flatbuffers::String>>* v) {
  std::vector<std::string> out;
  if (v == nullptr) return out;
  out.reserve(v->size());
  for (const auto* s : *v) out.push_back(Str(s));
  return out;
}

// Copies a scalar vector out of the buffer. The Verifier checks only a
// vector's 4-byte length alignment, not its elements', so a [long] or
// [double] from a peer can sit at an address that is not 8-aligned: the
// bytes are copied rather than read through a T pointer. FlatBuffers stores
// scalars little-endian, which the codec requires of the host.
static_assert(std::endian::native == std::endian::little, "the codec assumes a little-endian host");

template <typename T>
std::vector<T> Vec(const flatbuffers::Vector<T>* v) {
  static_assert(std::is_arithmetic_v<T>);
  if (v == nullptr) return {};
  std::vector<T> out(v->size());
  if (!out.empty()) std::memcpy(out.data(), v->Data(), out.size() * sizeof(T));
  return out;
}

using BodyOffset = std::pair<wire::Body, flatbuffers::Offset<void>>;

// Encoders of the domain bodies, one per body (BodyEncoder forwards to them).
BodyOffset EncodeDomain(flatbuffers::FlatBufferBuilder& b, const TranslateDose& v);
BodyOffset EncodeDomain(flatbuffers::FlatBufferBuilder& b, const DoseTranslation& v);
BodyOffset EncodeDomain(flatbuffers::FlatBufferBuilder& b, const SimulatePk& v);
BodyOffset EncodeDomain(flatbuffers::FlatBufferBuilder& b, const PkProfile& v);
BodyOffset EncodeDomain(flatbuffers::FlatBufferBuilder& b, const FitPk& v);
BodyOffset EncodeDomain(flatbuffers::FlatBufferBuilder& b, const PkFit& v);
BodyOffset EncodeDomain(flatbuffers::FlatBufferBuilder& b, const ComputeSampleSize& v);
BodyOffset EncodeDomain(flatbuffers::FlatBufferBuilder& b, const SampleSizeResult& v);
BodyOffset EncodeDomain(flatbuffers::FlatBufferBuilder& b, const SimulateEscalation& v);
BodyOffset EncodeDomain(flatbuffers::FlatBufferBuilder& b, const OperatingCharacteristics& v);
BodyOffset EncodeDomain(flatbuffers::FlatBufferBuilder& b, const RunVirtualTrial& v);
BodyOffset EncodeDomain(flatbuffers::FlatBufferBuilder& b, const VirtualTrialResult& v);

// Converts a verified envelope whose body is one of the domain bodies (its
// table present). Returns false with `error`'s fault, message and where set
// when a required table is missing.
bool DomainBodyOf(const wire::Envelope& env, Body& out, DecodeError& error);

}  // namespace fedrx::codec::internal
