// Internal to messages/codec: helpers codec.cc, domain_codec.cc,
// prediction_codec.cc and workflow_codec.cc share, and the encoders and
// decoders of the domain bodies (translational.fbs, trial.fbs, prediction.fbs)
// and of the orchestrator and report bodies (orchestration.fbs, report.fbs).
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

// A vector of tables, one per element of `v`, each written by `write(b, x)`.
// Each codec file passes its own Write() overloads (its WriteAll), which are
// out of reach of lookup from here.
template <typename T, typename WriteFn>
auto WriteTables(flatbuffers::FlatBufferBuilder& b, const std::vector<T>& v, WriteFn write) {
  std::vector<decltype(write(b, std::declval<const T&>()))> out;
  out.reserve(v.size());
  for (const T& x : v) out.push_back(write(b, x));
  return b.CreateVector(out);
}

// The plain values of a vector of tables, each read by `read(table)`; an
// absent vector reads as empty.
template <typename W, typename ReadFn>
auto ReadTables(const flatbuffers::Vector<flatbuffers::Offset<W>>* v, ReadFn read) {
  std::vector<decltype(read(static_cast<const W*>(nullptr)))> out;
  if (v == nullptr) return out;
  out.reserve(v->size());
  for (const W* x : *v) out.push_back(read(x));
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

// The Working table every domain answer carries (domain_codec.cc); an absent
// table reads as an empty Working.
flatbuffers::Offset<wire::Working> WriteWorking(flatbuffers::FlatBufferBuilder& b,
                                                const Working& v);
Working ReadWorking(const wire::Working* v);

// Encoders of the ML domain bodies (prediction.fbs; prediction_codec.cc).
BodyOffset EncodeDomain(flatbuffers::FlatBufferBuilder& b, const PredictToxicity& v);
BodyOffset EncodeDomain(flatbuffers::FlatBufferBuilder& b, const ToxicityPanel& v);
BodyOffset EncodeDomain(flatbuffers::FlatBufferBuilder& b, const AssessClinical& v);
BodyOffset EncodeDomain(flatbuffers::FlatBufferBuilder& b, const ClinicalAssessment& v);
BodyOffset EncodeDomain(flatbuffers::FlatBufferBuilder& b, const ReverseTranslate& v);
BodyOffset EncodeDomain(flatbuffers::FlatBufferBuilder& b, const ReverseTranslation& v);

// Converts a verified envelope whose body is one of the ML domain bodies (its
// table present), as DomainBodyOf does for the others.
bool PredictionBodyOf(const wire::Envelope& env, Body& out, DecodeError& error);

// Encoders of the orchestrator and report bodies (orchestration.fbs,
// report.fbs; workflow_codec.cc).
BodyOffset EncodeWorkflow(flatbuffers::FlatBufferBuilder& b, const RunWorkflow& v);
BodyOffset EncodeWorkflow(flatbuffers::FlatBufferBuilder& b, const GetWorkflowRun& v);
BodyOffset EncodeWorkflow(flatbuffers::FlatBufferBuilder& b, const WorkflowRun& v);
BodyOffset EncodeWorkflow(flatbuffers::FlatBufferBuilder& b, const ListWorkflows& v);
BodyOffset EncodeWorkflow(flatbuffers::FlatBufferBuilder& b, const WorkflowList& v);
BodyOffset EncodeWorkflow(flatbuffers::FlatBufferBuilder& b, const ListWorkflowRuns& v);
BodyOffset EncodeWorkflow(flatbuffers::FlatBufferBuilder& b, const WorkflowRunList& v);
BodyOffset EncodeWorkflow(flatbuffers::FlatBufferBuilder& b, const CreateReport& v);
BodyOffset EncodeWorkflow(flatbuffers::FlatBufferBuilder& b, const ReportInfo& v);
BodyOffset EncodeWorkflow(flatbuffers::FlatBufferBuilder& b, const GetReport& v);
BodyOffset EncodeWorkflow(flatbuffers::FlatBufferBuilder& b, const ReportDocument& v);
BodyOffset EncodeWorkflow(flatbuffers::FlatBufferBuilder& b, const ListReports& v);
BodyOffset EncodeWorkflow(flatbuffers::FlatBufferBuilder& b, const ReportList& v);

// Converts a verified envelope whose body is one of the orchestrator or
// report bodies (its table present), as DomainBodyOf does for the others.
bool WorkflowBodyOf(const wire::Envelope& env, Body& out, DecodeError& error);

}  // namespace fedrx::codec::internal
