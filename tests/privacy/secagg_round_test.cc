// The secure-aggregation round end to end: SecAggClients and a SecAggServer
// exchanging messages in-process (tests/privacy/secagg_harness.h).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "services/privacy/secagg_client.h"
#include "services/privacy/secagg_server.h"
#include "tests/privacy/secagg_harness.h"

namespace fedrx::privacy {
namespace {

using testing::DropPlan;
using testing::Hooks;
using testing::Params;
using testing::RoundOutcome;
using testing::RunRound;

// Σ_{u ∈ survivors} quantised_u, modulo 2^32.
std::vector<std::uint32_t> QuantisedSum(const RoundOutcome& run,
                                        const std::vector<ParticipantId>& survivors) {
  std::vector<std::uint32_t> sum(run.quantised[0].size(), 0);
  for (ParticipantId u : survivors) {
    for (std::size_t i = 0; i < sum.size(); ++i) sum[i] += run.quantised[u - 1][i];
  }
  return sum;
}

// The result against the exact float sum of the survivors' w·x: within the
// documented bound |U3| · 2^-(scale_bits+1) per coordinate (no clipping here).
void ExpectSumWithinBound(const SecAggParams& params, const RoundOutcome& run,
                          const std::vector<ParticipantId>& expected_survivors) {
  ASSERT_TRUE(run.result.ok()) << run.result.status();
  const SecAggResult& r = *run.result;
  EXPECT_EQ(r.survivors, expected_survivors);
  const double bound =
      static_cast<double>(expected_survivors.size()) * params.encoding.MaxErrorPerSite() +
      1e-6;  // + float32 rounding of the decoded sum
  double max_err = 0, w_sum = 0;
  for (ParticipantId u : expected_survivors) w_sum += run.weights[u - 1];
  ASSERT_EQ(r.weighted_sum.size(), params.dimension);
  for (std::size_t i = 0; i < params.dimension; ++i) {
    double exact = 0;
    for (ParticipantId u : expected_survivors) {
      exact += run.weights[u - 1] * static_cast<double>(run.inputs[u - 1][i]);
    }
    max_err = std::max(max_err, std::abs(r.weighted_sum[i] - exact));
  }
  EXPECT_LE(max_err, bound);
  EXPECT_NEAR(r.total_weight, w_sum, bound);
}

std::vector<ParticipantId> Ids(std::initializer_list<ParticipantId> ids) { return ids; }
std::vector<ParticipantId> Range(ParticipantId from, ParticipantId to) {
  std::vector<ParticipantId> out;
  for (ParticipantId i = from; i <= to; ++i) out.push_back(i);
  return out;
}
std::vector<ParticipantId> Without(std::vector<ParticipantId> all, std::set<ParticipantId> gone) {
  std::erase_if(all, [&](ParticipantId id) { return gone.contains(id); });
  return all;
}

// The final vector the server holds (the observer's last call) is the
// quantised sum bit for bit: the masks cancel exactly.
TEST(SecAggRoundTest, MasksCancelExactly) {
  const auto params = Params(5, 3, 1000);
  std::vector<std::uint32_t> last;
  Hooks hooks;
  hooks.observer = [&](std::span<const std::uint32_t> v) { last.assign(v.begin(), v.end()); };
  const auto run = RunRound(params, 5, {}, hooks);
  ASSERT_TRUE(run.result.ok()) << run.result.status();
  EXPECT_EQ(last, QuantisedSum(run, Range(1, 5)));
}

TEST(SecAggRoundTest, ThreadedMaskingGivesTheSameSum) {
  const auto params = Params(5, 3, 300000);
  DropPlan plan;
  plan.after_share = {2};
  std::vector<std::uint32_t> last;
  Hooks hooks;
  hooks.threads = 3;
  hooks.observer = [&](std::span<const std::uint32_t> v) { last.assign(v.begin(), v.end()); };
  const auto run = RunRound(params, 5, plan, hooks);
  ASSERT_TRUE(run.result.ok()) << run.result.status();
  EXPECT_EQ(last, QuantisedSum(run, Ids({1, 3, 4, 5})));
}

TEST(SecAggRoundTest, SumEqualsPlainSumWithinQuantisationBound) {
  const auto params = Params(6, 4, 2000);
  const auto run = RunRound(params, 6, {}, {}, /*seed=*/11, /*range=*/7.9f);
  ExpectSumWithinBound(params, run, Range(1, 6));
  ASSERT_TRUE(run.result.ok());
  EXPECT_TRUE(run.result->detections.empty());
}

TEST(SecAggRoundTest, MeanIsTheWeightedFedAvgMean) {
  const auto params = Params(4, 3, 500);
  const auto run = RunRound(params, 4, {}, {}, /*seed=*/3);
  ASSERT_TRUE(run.result.ok()) << run.result.status();
  const auto mean = run.result->Mean();
  ASSERT_EQ(mean.size(), 500u);
  double w = 0;
  for (double x : run.weights) w += x;
  for (std::size_t i = 0; i < mean.size(); ++i) {
    double exact = 0;
    for (std::size_t u = 0; u < 4; ++u) exact += run.weights[u] * run.inputs[u][i];
    exact /= w;
    // Numerator and denominator each within 4 · 2^-17; w >= 0.4.
    EXPECT_NEAR(mean[i], exact, 4 * params.encoding.MaxErrorPerSite() * (1 + 1 / w) / w + 1e-6);
  }
}

TEST(SecAggRoundTest, InputsBeyondTheClipAreClipped) {
  const auto params = Params(3, 2, 100);
  // Inputs in [-20, 20] against clip 8.
  const auto run = RunRound(params, 3, {}, {}, /*seed=*/5, /*range=*/20.0f, /*unit=*/true);
  ASSERT_TRUE(run.result.ok()) << run.result.status();
  for (std::size_t i = 0; i < 100; ++i) {
    double exact = 0;
    for (std::size_t u = 0; u < 3; ++u) exact += std::clamp<double>(run.inputs[u][i], -8, 8);
    EXPECT_NEAR(run.result->weighted_sum[i], exact, 3 * params.encoding.MaxErrorPerSite() + 1e-5);
  }
}

TEST(SecAggRoundTest, WeightsAreNotClippedWhenTheClipIsBelowOne) {
  auto params = Params(4, 3, 100);
  params.encoding = FixedPointEncoding{0.25, 20};
  const auto run = RunRound(params, 4, {}, {}, /*seed=*/4, /*range=*/0.2f);
  ASSERT_TRUE(run.result.ok()) << run.result.status();
  double w = 0;
  for (double x : run.weights) w += x;
  EXPECT_NEAR(run.result->total_weight, w, 4 * params.encoding.MaxErrorPerSite());
  // Some weights lie above the clip, and still count in full.
  EXPECT_GT(*std::max_element(run.weights.begin(), run.weights.end()), 0.25);
}

// ---- dropouts at every stage, down to the threshold ---------------------------------------

TEST(SecAggRoundTest, DropoutsBeforeAndAfterAdvertiseKeysDownToThreshold) {
  const auto params = Params(8, 5, 300);
  DropPlan plan;
  plan.before_advertise = {2};
  plan.after_advertise = {4, 7};  // in U1, never share: nobody masks with them
  const auto run = RunRound(params, 8, plan);
  ExpectSumWithinBound(params, run, Ids({1, 3, 5, 6, 8}));
}

TEST(SecAggRoundTest, DropoutsAfterShareKeysHaveTheirPairwiseMasksRemoved) {
  const auto params = Params(8, 5, 300);
  DropPlan plan;
  plan.after_share = {1, 5, 8};  // masks with them were added; s_sk reconstructed
  std::vector<std::uint32_t> last;
  Hooks hooks;
  hooks.observer = [&](std::span<const std::uint32_t> v) { last.assign(v.begin(), v.end()); };
  const auto run = RunRound(params, 8, plan, hooks);
  ExpectSumWithinBound(params, run, Ids({2, 3, 4, 6, 7}));
  EXPECT_EQ(last, QuantisedSum(run, Ids({2, 3, 4, 6, 7})));
  // Only their mask keys were revealed, and only the survivors' seeds.
  for (const auto& r : run.unmask_responses) {
    for (const auto& s : r.mask_key_shares) EXPECT_TRUE(plan.after_share.contains(s.owner));
    for (const auto& s : r.self_seed_shares) EXPECT_FALSE(plan.after_share.contains(s.owner));
    EXPECT_EQ(r.mask_key_shares.size(), 3u);
    EXPECT_EQ(r.self_seed_shares.size(), 5u);
  }
}

TEST(SecAggRoundTest, LateMaskedInputIsRefusedAndTreatedAsDropped) {
  const auto params = Params(6, 4, 200);
  DropPlan plan;
  plan.late_masked_input = {3, 6};
  const auto run = RunRound(params, 6, plan);
  ExpectSumWithinBound(params, run, Ids({1, 2, 4, 5}));
}

TEST(SecAggRoundTest, DropoutsAfterMaskedInputAreInTheSumViaReconstructedSeeds) {
  const auto params = Params(8, 5, 300);
  DropPlan plan;
  plan.after_masked = {2, 4, 6};  // sent y, never answer Unmasking: 5 responders
  const auto run = RunRound(params, 8, plan);
  ExpectSumWithinBound(params, run, Range(1, 8));
}

TEST(SecAggRoundTest, DropoutsAtEveryStageTogetherDownToThreshold) {
  const auto params = Params(12, 4, 300);
  DropPlan plan;
  plan.before_advertise = {12};   // U1 = 11
  plan.after_advertise = {1, 2};  // U2 = 9
  plan.after_share = {3, 4};
  plan.late_masked_input = {11};  // U3 = 5..10
  plan.after_masked = {5, 6};     // 4 responders = t
  const auto run = RunRound(params, 12, plan);
  ExpectSumWithinBound(params, run, Ids({5, 6, 7, 8, 9, 10}));
}

// The scenario: 10 sites, 3 drop after sending their masked input
// (self masks removed from reconstructed b), and 10 sites with 3 dropping
// after ShareKeys (pairwise masks removed via reconstructed s_sk).
TEST(SecAggRoundTest, TenSitesThreeDroppingAfterMaskedInput) {
  const auto params = Params(10, 6, 1000);
  DropPlan plan;
  plan.after_masked = {2, 5, 9};
  const auto run = RunRound(params, 10, plan, {}, /*seed=*/10);
  ExpectSumWithinBound(params, run, Range(1, 10));
}

TEST(SecAggRoundTest, TenSitesThreeDroppingBeforeTheirMaskedInput) {
  const auto params = Params(10, 6, 1000);
  DropPlan plan;
  plan.after_share = {2, 5, 9};
  const auto run = RunRound(params, 10, plan, {}, /*seed=*/10);
  ExpectSumWithinBound(params, run, Without(Range(1, 10), {2, 5, 9}));
}

// ---- below the threshold the round fails cleanly, naming the stage ------------------------

void ExpectFailsAt(const core::Status& status, const std::string& stage,
                   const std::string& counts) {
  EXPECT_EQ(status.code(), core::StatusCode::kFailedPrecondition) << status;
  EXPECT_NE(status.message().find(stage), std::string::npos) << status;
  EXPECT_NE(status.message().find(counts), std::string::npos) << status;
}

TEST(SecAggRoundTest, BelowThresholdAtAdvertiseKeysFails) {
  DropPlan plan;
  plan.before_advertise = {1, 2, 3};
  const auto run = RunRound(Params(6, 4, 10), 6, plan);
  ExpectFailsAt(run.result.status(), "AdvertiseKeys", "3 of 6 sites advertised keys, threshold 4");
}

TEST(SecAggRoundTest, BelowThresholdAtShareKeysFails) {
  DropPlan plan;
  plan.after_advertise = {1, 2, 3};
  const auto run = RunRound(Params(6, 4, 10), 6, plan);
  ExpectFailsAt(run.result.status(), "ShareKeys", "3 of 6 sites sent shares, threshold 4");
}

TEST(SecAggRoundTest, BelowThresholdAtMaskedInputFails) {
  DropPlan plan;
  plan.after_share = {1, 2};
  plan.late_masked_input = {3};
  const auto run = RunRound(Params(6, 4, 10), 6, plan);
  ExpectFailsAt(run.result.status(), "MaskedInput", "3 of 6 sites sent masked inputs, threshold 4");
}

TEST(SecAggRoundTest, BelowThresholdAtUnmaskingFails) {
  DropPlan plan;
  plan.after_masked = {1, 2, 3};
  const auto run = RunRound(Params(6, 4, 10), 6, plan);
  ExpectFailsAt(run.result.status(), "Unmasking", "3 of 6 survivors answered, threshold 4");
}

TEST(SecAggRoundTest, ServerRefusesEverythingAfterAFailedStage) {
  auto server = SecAggServer::Create(Params(3, 2, 4));
  ASSERT_TRUE(server.ok());
  auto client = SecAggClient::Create(Params(3, 2, 4), 1);
  ASSERT_TRUE(client.ok());
  auto adv = client->AdvertiseKeys();
  ASSERT_TRUE(adv.ok());
  ASSERT_TRUE(server->AcceptKeys(*adv).ok());
  EXPECT_EQ(server->CloseKeys().status().code(), core::StatusCode::kFailedPrecondition);
  EXPECT_EQ(server->stage(), SecAggServer::Stage::kFailed);
  EXPECT_EQ(server->AcceptKeys(*adv).code(), core::StatusCode::kFailedPrecondition);
  EXPECT_EQ(server->Finish().status().code(), core::StatusCode::kFailedPrecondition);
}

// ---- the server never holds an individual update ------------------------------------------

TEST(SecAggRoundTest, NoVectorTheServerHoldsResemblesAnIndividualInput) {
  const auto params = Params(6, 4, 2000);
  std::vector<std::vector<std::uint32_t>> seen;
  Hooks hooks;
  hooks.observer = [&](std::span<const std::uint32_t> v) { seen.emplace_back(v.begin(), v.end()); };
  DropPlan plan;
  plan.after_share = {6};  // the dropped site's pairwise masks are removed too
  plan.after_masked = {1};
  const auto run = RunRound(params, 6, plan, hooks);
  ASSERT_TRUE(run.result.ok()) << run.result.status();
  // 5 inputs + 5 running sums + the final sum.
  ASSERT_EQ(seen.size(), 11u);
  for (const auto& v : seen) {
    for (const auto& q : run.quantised) {
      std::size_t equal = 0;
      for (std::size_t i = 0; i < q.size(); ++i) equal += v[i] == q[i];
      EXPECT_LT(equal, q.size() / 100);  // agree in under 1% of the coordinates
    }
  }
}

// ---- detection ------------------------------------------------------------------------------

TEST(SecAggRoundTest, ShareTamperedInTransitIsReportedAndTheRoundSucceeds) {
  const auto params = Params(6, 4, 200);
  Hooks hooks;
  hooks.bundle = [](ShareBundle& b) {
    if (b.to != 5) return;
    for (auto& s : b.shares) {
      if (s.from == 3) s.ciphertext[10] ^= 0x80;
    }
  };
  const auto run = RunRound(params, 6, {}, hooks);
  ExpectSumWithinBound(params, run, Range(1, 6));
  ASSERT_TRUE(run.result.ok());
  ASSERT_EQ(run.result->detections.size(), 1u);
  const auto& d = run.result->detections[0];
  EXPECT_EQ(d.kind, SecAggDetection::Kind::kShareFailedAuthentication);
  EXPECT_EQ(d.site, 3u);
  EXPECT_EQ(d.reporter, 5u);
}

// A wrong revealed share of site 2's seed (as a lying holder, or a dealer
// that dealt it, would produce) among 6 is located and outvoted.
TEST(SecAggRoundTest, InconsistentShareIsLocatedAndTheRoundSucceeds) {
  const auto params = Params(6, 3, 200);
  Hooks hooks;
  hooks.unmask = [](UnmaskResponse& r) {
    if (r.id != 4) return;
    for (auto& s : r.self_seed_shares) {
      if (s.owner == 2) s.share.y[1] = (s.share.y[1] + 7) % kShamirPrime;
    }
  };
  const auto run = RunRound(params, 6, {}, hooks);
  ExpectSumWithinBound(params, run, Range(1, 6));
  ASSERT_TRUE(run.result.ok());
  ASSERT_EQ(run.result->detections.size(), 1u);
  const auto& d = run.result->detections[0];
  EXPECT_EQ(d.kind, SecAggDetection::Kind::kInconsistentShares);
  EXPECT_EQ(d.site, 2u);
  EXPECT_EQ(d.holder, 4u);
  EXPECT_NE(d.ToString().find("site 2"), std::string::npos);
}

TEST(SecAggRoundTest, InconsistentMaskKeySharesOfADroppedSiteAreLocated) {
  const auto params = Params(7, 3, 200);
  DropPlan plan;
  plan.after_share = {7};
  Hooks hooks;
  hooks.unmask = [](UnmaskResponse& r) {
    if (r.id != 1) return;
    for (auto& s : r.mask_key_shares) s.share.y[0] = (s.share.y[0] + 1) % kShamirPrime;
  };
  const auto run = RunRound(params, 7, plan, hooks);
  ExpectSumWithinBound(params, run, Range(1, 6));
  ASSERT_TRUE(run.result.ok());
  ASSERT_EQ(run.result->detections.size(), 1u);
  EXPECT_EQ(run.result->detections[0].site, 7u);
  EXPECT_EQ(run.result->detections[0].holder, 1u);
}

TEST(SecAggRoundTest, SharesInconsistentBeyondCorrectionFailTheRoundNamingTheSite) {
  const auto params = Params(6, 4, 50);
  Hooks hooks;
  hooks.unmask = [](UnmaskResponse& r) {
    if (r.id != 1 && r.id != 2) return;
    for (auto& s : r.self_seed_shares) {
      if (s.owner == 5) s.share.y[0] = (s.share.y[0] + r.id) % kShamirPrime;
    }
  };
  const auto run = RunRound(params, 6, {}, hooks);
  EXPECT_EQ(run.result.status().code(), core::StatusCode::kDataLoss);
  EXPECT_NE(run.result.status().message().find("site 5"), std::string::npos) << run.result.status();
}

// With exactly t answers nothing can be cross-checked; the commitment to b
// still catches a wrong reconstruction (and the public key catches a wrong s_sk).
TEST(SecAggRoundTest, WrongShareWithExactlyTAnswersIsCaughtByTheCommitment) {
  for (bool dropped_key : {false, true}) {
    const auto params = Params(6, 4, 50);
    DropPlan plan;
    if (dropped_key) plan.after_share = {6};  // 5 survivors
    plan.after_masked = dropped_key ? std::set<ParticipantId>{5} : std::set<ParticipantId>{5, 6};
    Hooks hooks;
    hooks.unmask = [&](UnmaskResponse& r) {
      if (r.id != 1) return;
      auto& shares = dropped_key ? r.mask_key_shares : r.self_seed_shares;
      for (auto& s : shares) {
        if (s.owner == 6 || (!dropped_key && s.owner == 3)) {
          s.share.y[0] = (s.share.y[0] + 1) % kShamirPrime;
        }
      }
    };
    const auto run = RunRound(params, 6, plan, hooks);
    EXPECT_EQ(run.result.status().code(), core::StatusCode::kDataLoss)
        << run.result.status() << " dropped_key " << dropped_key;
    const std::string site = dropped_key ? "site 6" : "site 3";
    EXPECT_NE(run.result.status().message().find(site), std::string::npos) << run.result.status();
  }
}

// ---- SecAgg+ ----------------------------------------------------------------------------------

TEST(SecAggRoundTest, SecAggPlusSparseGraphSumsCorrectlyWithDropouts) {
  const auto params = Params(20, 4, 500, /*neighbours=*/8);
  DropPlan plan;
  plan.after_advertise = {20};
  plan.after_share = {3, 11};
  plan.after_masked = {7};
  std::vector<std::uint32_t> last;
  Hooks hooks;
  hooks.observer = [&](std::span<const std::uint32_t> v) { last.assign(v.begin(), v.end()); };
  const auto run = RunRound(params, 20, plan, hooks, /*seed=*/2);
  const auto survivors = Without(Range(1, 19), {3, 11});
  ExpectSumWithinBound(params, run, survivors);
  EXPECT_EQ(last, QuantisedSum(run, survivors));
  for (const auto& m : run.share_messages) EXPECT_EQ(m.shares.size(), 8u);  // k, not n - 1
}

// ---- the state machines refuse what they should ---------------------------------------------

TEST(SecAggRoundTest, ClientRejectsARosterWithoutItsOwnKeys) {
  const auto params = Params(3, 2, 4);
  auto a = SecAggClient::Create(params, 1);
  auto b = SecAggClient::Create(params, 2);
  auto c = SecAggClient::Create(params, 3);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  auto ka = a->AdvertiseKeys();
  auto kb = b->AdvertiseKeys();
  auto kc = c->AdvertiseKeys();
  KeyRoster roster{{*kb, *kc}, {}};
  EXPECT_EQ(a->ShareKeys(roster).status().code(), core::StatusCode::kInvalidArgument);
  // Failed once, it stays out of the round.
  roster.sites.insert(roster.sites.begin(), *ka);
  EXPECT_EQ(a->ShareKeys(roster).status().code(), core::StatusCode::kFailedPrecondition);
  // A roster that hands b someone else's keys.
  KeyAdvertisement forged = *kc;
  forged.id = 2;
  EXPECT_EQ(b->ShareKeys(KeyRoster{{*ka, forged, *kc}, {}}).status().code(),
            core::StatusCode::kInvalidArgument);
}

TEST(SecAggRoundTest, ClientRefusesToRevealWhenTheServerDropsIt) {
  const auto params = Params(3, 2, 4);
  auto server = SecAggServer::Create(params);
  ASSERT_TRUE(server.ok());
  std::vector<SecAggClient> clients;
  for (ParticipantId id = 1; id <= 3; ++id) {
    auto c = SecAggClient::Create(params, id);
    ASSERT_TRUE(c.ok());
    clients.push_back(std::move(*c));
    auto k = clients.back().AdvertiseKeys();
    ASSERT_TRUE(k.ok() && server->AcceptKeys(*k).ok());
  }
  auto roster = server->CloseKeys();
  ASSERT_TRUE(roster.ok());
  for (auto& c : clients) {
    auto m = c.ShareKeys(*roster);
    ASSERT_TRUE(m.ok() && server->AcceptShares(*m).ok());
  }
  auto bundles = server->CloseShares();
  ASSERT_TRUE(bundles.ok());
  const std::vector<float> x(4, 0.5f);
  for (auto& b : *bundles) {
    // A wrong-sized update is the caller's error: refused, the stage stays open.
    const std::vector<float> short_update(3, 0.5f);
    EXPECT_EQ(clients[b.to - 1].MaskInput(b, short_update, 1.0).status().code(),
              core::StatusCode::kInvalidArgument);
    EXPECT_EQ(clients[b.to - 1].MaskInput(b, x, 1.5).status().code(),
              core::StatusCode::kInvalidArgument);
    auto y = clients[b.to - 1].MaskInput(b, x, 1.0);
    ASSERT_TRUE(y.ok());
    if (b.to != 3) {
      ASSERT_TRUE(server->AcceptMaskedInput(*y).ok());
    }
  }
  // A survivor list that includes 3 would be a lie; without 3, site 3 is out.
  EXPECT_EQ(clients[2].Unmask(UnmaskRequest{{1, 2}}).status().code(),
            core::StatusCode::kFailedPrecondition);
  // Stages run in order only.
  auto fresh = SecAggClient::Create(params, 1);
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ(fresh->MaskInput({}, x, 1.0).status().code(), core::StatusCode::kFailedPrecondition);
}

TEST(SecAggRoundTest, ServerRejectsMalformedAndRepeatedMessages) {
  const auto params = Params(3, 2, 4);
  auto server = SecAggServer::Create(params);
  ASSERT_TRUE(server.ok());
  auto c = SecAggClient::Create(params, 1);
  ASSERT_TRUE(c.ok());
  auto k = c->AdvertiseKeys();
  ASSERT_TRUE(k.ok());
  EXPECT_TRUE(server->AcceptKeys(*k).ok());
  EXPECT_EQ(server->AcceptKeys(*k).code(), core::StatusCode::kInvalidArgument);
  KeyAdvertisement copy = *k;
  copy.id = 2;  // same keys under another id
  EXPECT_EQ(server->AcceptKeys(copy).code(), core::StatusCode::kInvalidArgument);
  KeyAdvertisement zero = *k;
  zero.id = 0;
  EXPECT_EQ(server->AcceptKeys(zero).code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(server->advertised(), 1u);
  EXPECT_EQ(server->AcceptMaskedInput({1, std::vector<std::uint32_t>(5)}).code(),
            core::StatusCode::kFailedPrecondition);
}

TEST(SecAggRoundTest, ParamsAreValidated) {
  EXPECT_TRUE(Params(10, 6, 100).Validate().ok());
  EXPECT_EQ(Params(10, 1, 100).Validate().code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(Params(10, 11, 100).Validate().code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(Params(10, 6, 0).Validate().code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(Params(10, 6, 100, 3).Validate().code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(Params(10, 6, 100, 4).Validate().code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(Params(5000, 6, 100).Validate().code(), core::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace fedrx::privacy
