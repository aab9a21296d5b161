#include "services/lab/secagg_demo.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <optional>

#include "messages/codec/codec.h"
#include "services/coordinator/study_runner.h"
#include "services/core/bus.h"
#include "services/privacy/secagg_client.h"
#include "services/privacy/secagg_server.h"
#include "services/privacy/secagg_wire.h"

namespace fedrx::lab {
namespace {

// What the simulated sites' messages carry as study id: only its length
// matters, for the byte counts (as long as the demo's).
constexpr char kStudyId[] = "tox21-secagg";

// The frames a site's message takes, with the header fields the transport
// fills (a 128-bit message id in hex, the sender, the time) at their usual size.
std::uint64_t EncodedBytes(codec::Body body, std::vector<codec::Tensor> tensors = {}) {
  codec::Message message = core::MakeMessage(std::move(body), std::move(tensors));
  message.header.message_id = std::string(32, 'f');
  message.header.sender = "sim-site-01";
  message.header.sent_at_ms = 1'700'000'000'000;
  std::uint64_t bytes = 0;
  for (const codec::Blob& frame : codec::Encode(std::move(message))) bytes += frame.size();
  return bytes;
}

std::uint64_t MaskedInputBytes(const privacy::MaskedInputMessage& m) {
  std::vector<codec::Tensor> tensors;
  tensors.push_back(codec::Tensor{"masked",
                                  codec::DType::kUInt32,
                                  {static_cast<std::int64_t>(m.masked.size())},
                                  codec::Blob::CopyOf(std::as_bytes(std::span(m.masked)))});
  return EncodedBytes(codec::SecAggMaskedInput{kStudyId, 1, m.id}, std::move(tensors));
}

// The plain upload the same site would send without secure aggregation.
std::uint64_t PlainUpdateBytes(std::size_t dimension) {
  std::vector<codec::Tensor> tensors;
  tensors.push_back(codec::Tensor{"weights",
                                  codec::DType::kFloat32,
                                  {static_cast<std::int64_t>(dimension)},
                                  codec::Blob::FromFloats(std::vector<float>(dimension, 0.f))});
  codec::ModelUpdate update;
  update.study_id = kStudyId;
  update.round = 1;
  update.site_id = "sim-site-01";
  update.num_samples = 1;
  return EncodedBytes(std::move(update), std::move(tensors));
}

// A round that stopped at a stage: a report, not an error (see the header).
SecAggSimReport Stopped(SecAggSimReport report, core::Status status) {
  report.completed = false;
  report.failure = std::move(status);
  return report;
}

}  // namespace

core::Result<SecAggSimReport> SimulateSecAggRound(std::span<const SecAggSimSite> sites,
                                                  std::size_t threshold, std::uint64_t round_tag) {
  const std::size_t n = sites.size();
  if (n < 2) return core::InvalidArgument("secure aggregation needs at least 2 sites", "sites");
  const std::size_t dimension = sites[0].update.size();
  for (std::size_t i = 0; i < n; ++i) {
    if (sites[i].update.size() != dimension || dimension == 0) {
      return core::InvalidArgument("site " + std::to_string(i + 1) + " has " +
                                       std::to_string(sites[i].update.size()) +
                                       " update coordinates, site 1 " + std::to_string(dimension),
                                   "sites");
    }
    if (!(sites[i].weight >= 0 && sites[i].weight <= 1)) {
      return core::InvalidArgument("site " + std::to_string(i + 1) + " weight outside [0, 1]",
                                   "sites");
    }
  }
  if (threshold < 2 || threshold > n) {
    return core::InvalidArgument(
        "threshold " + std::to_string(threshold) + " outside [2, " + std::to_string(n) + "]",
        "threshold");
  }
  privacy::SecAggParams params;
  params.round = round_tag;
  params.dimension = dimension;
  params.threshold = threshold;
  params.max_sites = n;
  params.encoding = coordinator::SecAggEncoding(n);

  SecAggSimReport report;
  report.sites = n;
  report.threshold = threshold;
  report.scale_bits = params.encoding.scale_bits;
  report.clip = params.encoding.clip;
  report.rounding_per_site = params.encoding.MaxErrorPerSite();
  report.bytes_sent.assign(n, 0);
  report.plain_update_bytes = PlainUpdateBytes(dimension);

  FEDRX_ASSIGN_OR_RETURN(privacy::SecAggServer server, privacy::SecAggServer::Create(params));
  std::vector<std::optional<privacy::SecAggClient>> clients(n);
  for (std::size_t i = 0; i < n; ++i) {
    FEDRX_ASSIGN_OR_RETURN(
        privacy::SecAggClient c,
        privacy::SecAggClient::Create(params, static_cast<privacy::ParticipantId>(i + 1)));
    clients[i].emplace(std::move(c));
  }
  const auto leave = [&](SecAggLeave stage) {
    for (std::size_t i = 0; i < n; ++i) {
      if (sites[i].leave == stage) clients[i].reset();
    }
  };

  // Stage 0: keys.
  leave(SecAggLeave::kBeforeKeys);
  for (std::size_t i = 0; i < n; ++i) {
    if (!clients[i]) continue;
    FEDRX_ASSIGN_OR_RETURN(privacy::KeyAdvertisement keys, clients[i]->AdvertiseKeys());
    report.bytes_sent[i] += EncodedBytes(codec::SecAggKeys{kStudyId, 1, privacy::ToWire(keys)});
    FEDRX_RETURN_IF_ERROR(server.AcceptKeys(keys));
  }
  report.advertised = server.advertised();
  auto roster = server.CloseKeys();
  if (!roster.ok()) return Stopped(std::move(report), roster.status());

  // Stage 1: sealed shares.
  for (std::size_t i = 0; i < n; ++i) {
    if (!clients[i]) continue;
    auto shares = clients[i]->ShareKeys(*roster);
    if (!shares.ok()) return Stopped(std::move(report), shares.status());
    codec::SecAggShares wire = privacy::ToWire(*shares);
    wire.study_id = kStudyId;
    wire.round = 1;
    report.bytes_sent[i] += EncodedBytes(std::move(wire));
    FEDRX_RETURN_IF_ERROR(server.AcceptShares(*shares));
  }
  report.shared = server.shared();
  leave(SecAggLeave::kBeforeMaskedInput);
  auto bundles = server.CloseShares();
  if (!bundles.ok()) return Stopped(std::move(report), bundles.status());

  // Stage 2: masked inputs.
  for (const privacy::ShareBundle& bundle : *bundles) {
    const std::size_t i = bundle.to - 1;
    if (!clients[i]) continue;
    auto masked = clients[i]->MaskInput(bundle, sites[i].update, sites[i].weight);
    if (!masked.ok()) return Stopped(std::move(report), masked.status());
    report.clipped_coordinates += clients[i]->clipped_coordinates();
    report.bytes_sent[i] += MaskedInputBytes(*masked);
    FEDRX_RETURN_IF_ERROR(server.AcceptMaskedInput(*masked));
  }
  auto request = server.CloseMaskedInput();
  if (!request.ok()) return Stopped(std::move(report), request.status());
  report.survivors = request->survivors;
  leave(SecAggLeave::kAfterMaskedInput);

  // Stage 3: unmasking, by those still there.
  for (privacy::ParticipantId id : request->survivors) {
    const std::size_t i = id - 1;
    if (!clients[i]) continue;
    auto response = clients[i]->Unmask(*request);
    if (!response.ok()) return Stopped(std::move(report), response.status());
    codec::SecAggUnmaskResponse wire = privacy::ToWire(*response);
    wire.study_id = kStudyId;
    wire.round = 1;
    report.bytes_sent[i] += EncodedBytes(std::move(wire));
    FEDRX_RETURN_IF_ERROR(server.AcceptUnmask(*response));
  }
  report.responders = server.responded();
  const auto started = std::chrono::steady_clock::now();
  core::Result<privacy::SecAggResult> result = server.Finish();
  report.unmask_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (!result.ok()) return Stopped(std::move(report), result.status());
  report.completed = true;
  report.survivors = result->survivors;

  // The plain sum of the same sites' updates, in double.
  std::vector<double> exact(dimension, 0.0);
  double exact_weight = 0;
  for (privacy::ParticipantId id : result->survivors) {
    const SecAggSimSite& s = sites[id - 1];
    for (std::size_t k = 0; k < dimension; ++k) {
      exact[k] += s.weight * static_cast<double>(s.update[k]);
    }
    exact_weight += s.weight;
  }
  if (result->weighted_sum.size() != dimension) {
    return core::Internal("the unmasked sum has " + std::to_string(result->weighted_sum.size()) +
                          " coordinates, the updates " + std::to_string(dimension));
  }
  const double quantisation =
      static_cast<double>(result->survivors.size()) * report.rounding_per_site;
  const double float_rounding = std::ldexp(1.0, -24);
  bool within = true;
  const std::vector<float> mean = result->Mean();
  for (std::size_t k = 0; k < dimension; ++k) {
    const double error = std::abs(static_cast<double>(result->weighted_sum[k]) - exact[k]);
    report.max_abs_error = std::max(report.max_abs_error, error);
    report.max_abs_sum = std::max(report.max_abs_sum, std::abs(exact[k]));
    within = within && error <= quantisation + std::abs(exact[k]) * float_rounding;
    if (!mean.empty() && exact_weight > 0) {
      report.mean_max_abs_error =
          std::max(report.mean_max_abs_error,
                   std::abs(static_cast<double>(mean[k]) - exact[k] / exact_weight));
    }
  }
  report.weight_error = std::abs(result->total_weight - exact_weight);
  report.error_bound = quantisation + report.max_abs_sum * float_rounding;
  report.within_bound = within && report.weight_error <= quantisation;
  return report;
}

}  // namespace fedrx::lab
