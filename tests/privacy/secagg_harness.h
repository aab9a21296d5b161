// A secure-aggregation round simulated in one process: n SecAggClients and a
// SecAggServer exchanging the protocol's messages directly, with scripted
// dropouts at each stage and hooks to tamper with messages in transit. Test
// support only; not thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <set>
#include <vector>

#include "services/privacy/secagg_client.h"
#include "services/privacy/secagg_server.h"

namespace fedrx::privacy::testing {

struct DropPlan {
  std::set<ParticipantId> before_advertise;   // never shows up
  std::set<ParticipantId> after_advertise;    // keys sent, then silent
  std::set<ParticipantId> after_share;        // shares sent, no masked input
  std::set<ParticipantId> late_masked_input;  // masked input arrives after the stage closed
  std::set<ParticipantId> after_masked;       // masked input sent, no unmasking answer
};

struct Hooks {
  std::function<void(ShareBundle&)> bundle;     // server -> site, in transit
  std::function<void(UnmaskResponse&)> unmask;  // site -> server, in transit
  SecAggServer::Observer observer;
  unsigned threads = 1;  // for every client and the server
};

struct RoundOutcome {
  // The status of the first stage that failed, or the result.
  core::Result<SecAggResult> result = core::Internal("round not run");
  // Each site's Encode(w * x) followed by EncodeWeight(w) (what it masked).
  std::vector<std::vector<std::uint32_t>> quantised;  // by id - 1
  std::vector<std::vector<float>> inputs;             // by id - 1
  std::vector<double> weights;                        // by id - 1
  std::vector<ShareKeysMessage> share_messages;
  std::vector<UnmaskResponse> unmask_responses;
  std::set<ParticipantId> expected_survivors;  // U3 by the plan
};

// Inputs uniform in [-range, range], weights uniform in [0.1, 1] (or 1 when
// `unit_weights`), from `seed`.
inline RoundOutcome RunRound(const SecAggParams& params, std::size_t sites, const DropPlan& plan,
                             const Hooks& hooks = {}, std::uint32_t seed = 1, float range = 1.0f,
                             bool unit_weights = false) {
  RoundOutcome out;
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> value(-range, range);
  std::uniform_real_distribution<double> weight(0.1, 1.0);
  for (std::size_t i = 0; i < sites; ++i) {
    std::vector<float> x(params.dimension);
    for (auto& v : x) v = value(rng);
    const double w = unit_weights ? 1.0 : weight(rng);
    std::vector<std::uint32_t> q(params.masked_length());
    for (std::size_t k = 0; k < params.dimension; ++k) {
      q[k] = params.encoding.Encode(w * static_cast<double>(x[k]));
    }
    q[params.dimension] = params.encoding.EncodeWeight(w);
    out.inputs.push_back(std::move(x));
    out.weights.push_back(w);
    out.quantised.push_back(std::move(q));
  }

  auto server = SecAggServer::Create(params, hooks.threads);
  if (!server.ok()) {
    out.result = server.status();
    return out;
  }
  if (hooks.observer) server->SetObserver(hooks.observer);
  std::vector<std::optional<SecAggClient>> clients(sites);
  for (std::size_t i = 0; i < sites; ++i) {
    auto c = SecAggClient::Create(params, static_cast<ParticipantId>(i + 1), hooks.threads);
    if (!c.ok()) {
      out.result = c.status();
      return out;
    }
    clients[i].emplace(std::move(*c));
  }
  auto alive = [&](ParticipantId id) { return clients[id - 1].has_value(); };
  auto drop = [&](const std::set<ParticipantId>& ids) {
    for (ParticipantId id : ids) clients[id - 1].reset();
  };

  // Stage 0.
  drop(plan.before_advertise);
  for (std::size_t i = 0; i < sites; ++i) {
    if (!clients[i]) continue;
    auto adv = clients[i]->AdvertiseKeys();
    if (!adv.ok() || !server->AcceptKeys(*adv).ok()) {
      out.result = core::Internal("advertise failed");
      return out;
    }
  }
  drop(plan.after_advertise);
  auto roster = server->CloseKeys();
  if (!roster.ok()) {
    out.result = roster.status();
    return out;
  }
  // Stage 1.
  for (std::size_t i = 0; i < sites; ++i) {
    if (!clients[i]) continue;
    auto msg = clients[i]->ShareKeys(*roster);
    if (!msg.ok()) {
      out.result = msg.status();
      return out;
    }
    out.share_messages.push_back(*msg);
    auto accepted = server->AcceptShares(*msg);
    if (!accepted.ok()) {
      out.result = accepted;
      return out;
    }
  }
  drop(plan.after_share);
  auto bundles = server->CloseShares();
  if (!bundles.ok()) {
    out.result = bundles.status();
    return out;
  }
  // Stage 2.
  std::vector<MaskedInputMessage> late;
  for (auto& bundle : *bundles) {
    if (!alive(bundle.to)) continue;
    if (hooks.bundle) hooks.bundle(bundle);
    const std::size_t i = bundle.to - 1;
    auto y = clients[i]->MaskInput(bundle, out.inputs[i], out.weights[i]);
    if (!y.ok()) {
      out.result = y.status();
      return out;
    }
    if (plan.late_masked_input.contains(bundle.to)) {
      late.push_back(std::move(*y));
      continue;
    }
    auto accepted = server->AcceptMaskedInput(*y);
    if (!accepted.ok()) {
      out.result = accepted;
      return out;
    }
    out.expected_survivors.insert(bundle.to);
  }
  auto request = server->CloseMaskedInput();
  if (!request.ok()) {
    out.result = request.status();
    return out;
  }
  for (const auto& y : late) {
    if (server->AcceptMaskedInput(y).code() != core::StatusCode::kFailedPrecondition) {
      out.result = core::Internal("late masked input was not refused");
      return out;
    }
  }
  drop(plan.after_masked);
  // Stage 3.
  for (ParticipantId id : request->survivors) {
    if (!alive(id)) continue;
    auto response = clients[id - 1]->Unmask(*request);
    if (!response.ok()) {
      out.result = response.status();
      return out;
    }
    if (hooks.unmask) hooks.unmask(*response);
    out.unmask_responses.push_back(*response);
    auto accepted = server->AcceptUnmask(*response);
    if (!accepted.ok()) {
      out.result = accepted;
      return out;
    }
  }
  out.result = server->Finish();
  return out;
}

inline SecAggParams Params(std::size_t sites, std::size_t threshold, std::size_t dimension,
                           std::size_t neighbours = 0) {
  SecAggParams p;
  p.round = 7;
  p.dimension = dimension;
  p.threshold = threshold;
  p.max_sites = sites;
  p.neighbours = neighbours;
  return p;
}

}  // namespace fedrx::privacy::testing
