// SecAggServer: the coordinator's side of one secure-aggregation round
// (Bonawitz et al., CCS 2017; optional SecAgg+ neighbours, Bell et al., CCS
// 2020) as a state machine over the messages of secagg_protocol.h. It relays
// sealed shares it cannot read, folds each masked input into one running sum
// as it arrives (O(model) memory whatever the number of sites; no individual
// vector is kept) and, at the end, reconstructs the dropped sites' mask keys
// and the survivors' self-mask seeds to unmask the sum. Not thread-safe;
// nothing blocks. One per round.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "services/core/status.h"
#include "services/privacy/secagg_primitives.h"
#include "services/privacy/secagg_protocol.h"

namespace fedrx::privacy {

// Evidence the server collected against a site. What is and is not detected:
//  - kShareFailedAuthentication: `reporter` could not open the sealed share
//    `site` addressed to it (tampered in transit, sealed under the wrong key,
//    or the reporter lies; the server cannot tell which). The share is simply
//    missing; the round goes on while t shares remain.
//  - kInconsistentShares: the revealed shares of `site`'s secret do not all
//    lie on one polynomial of degree < t, i.e. different t-subsets would
//    reconstruct different secrets; `holder` is a share that Berlekamp-Welch
//    decoding puts off the majority polynomial (0 when decoding failed). A
//    dealer that dealt bad shares and a holder that revealed a bad one look
//    the same to the server, so both ids are given. Needs more than t shares;
//    holders are named only while at most (m - t) / 2 of the m shares are bad.
//  - kWrongReconstruction: the reconstructed secret does not match what
//    `site` committed to (s_sk must be clamped and match its advertised
//    s_pk, b must match its ShareKeys commitment). Caught even with exactly t
//    shares. Fatal.
// Not detected: a site masking a different input than it "should" (input
// poisoning is outside secure aggregation), a site using a b or s_sk other
// than the ones it shared (its mask then does not cancel and the sum is
// garbage: the caller's plausibility checks on the aggregate must catch it),
// and a malicious server (no signatures / consistency round in this variant).
struct SecAggDetection {
  enum class Kind { kShareFailedAuthentication, kInconsistentShares, kWrongReconstruction };
  Kind kind = Kind::kInconsistentShares;
  ParticipantId site = 0;      // the dealer: whose share or secret is in question
  ParticipantId reporter = 0;  // kShareFailedAuthentication: who complained
  ParticipantId holder = 0;    // kInconsistentShares: the share off the polynomial
  std::string ToString() const;
};

struct SecAggResult {
  // Σ_{u ∈ U3} w_u · clip(x_u), dequantised: within
  // |U3| · encoding.MaxErrorPerSite() of the exact sum, per coordinate.
  std::vector<float> weighted_sum;
  // Σ_{u ∈ U3} w_u, within |U3| · MaxErrorPerSite().
  double total_weight = 0;
  // U3: the sites whose inputs are in the sum, sorted.
  std::vector<ParticipantId> survivors;
  // Non-fatal evidence (fatal evidence fails Finish and is in detections()).
  std::vector<SecAggDetection> detections;
  // weighted_sum / total_weight (the weighted FedAvg mean); empty when the
  // total weight is not positive.
  std::vector<float> Mean() const;
};

class SecAggServer {
 public:
  enum class Stage { kAdvertiseKeys, kShareKeys, kMaskedInput, kUnmasking, kDone, kFailed };

  // kInvalidArgument for invalid params; kInternal when libsodium cannot start.
  // `threads` (>= 1) split the mask removal in Finish.
  static core::Result<SecAggServer> Create(const SecAggParams& params, unsigned threads = 1);

  // Called with every vector the server receives (each masked input) and
  // every vector it stores (the running sum after each input, and the final
  // unmasked sum). For tests and audits: lets them check that no vector the
  // server holds is an individual update. May be empty.
  using Observer = std::function<void(std::span<const std::uint32_t>)>;
  void SetObserver(Observer observer) { observer_ = std::move(observer); }

  // Each Accept* validates one site's message against the stage and what the
  // server knows; a bad one is rejected with kInvalidArgument (unknown or
  // repeated site, wrong shape) or kFailedPrecondition (wrong stage, e.g. a
  // masked input arriving after CloseMaskedInput: that site counts as
  // dropped), and nothing already accepted changes. Each Close* ends a stage:
  // kFailedPrecondition "<Stage>: k of n sites ..., threshold t" when fewer
  // than t sites got through, after which the round is over (stage kFailed)
  // and the caller goes on with the next round.

  core::Status AcceptKeys(const KeyAdvertisement& message);
  // U1 with a fresh graph seed: send it to every site in U1.
  core::Result<KeyRoster> CloseKeys();

  core::Status AcceptShares(const ShareKeysMessage& message);
  // One bundle per site of U2: deliver each to its `to`. The relayed
  // ciphertexts are handed over (not kept).
  core::Result<std::vector<ShareBundle>> CloseShares();

  // Adds y_u to the running sum and forgets it.
  core::Status AcceptMaskedInput(const MaskedInputMessage& message);
  // U3: send it to every site of U3.
  core::Result<UnmaskRequest> CloseMaskedInput();

  core::Status AcceptUnmask(const UnmaskResponse& message);
  // Reconstructs s_sk_v for v ∈ U2 \ U3 and b_u for u ∈ U3 (each from the
  // shares of at least t responders, checked for consistency and against the
  // site's commitment), removes their masks from the running sum and
  // dequantises. kFailedPrecondition when fewer than t sites answered, or
  // fewer than t shares of a secret arrived (naming the site);
  // kDataLoss naming the sites when a secret cannot be reconstructed
  // correctly (see SecAggDetection). The sum buffer is handed over.
  // CPU-bound and blocking: one ChaCha20 mask per survivor plus one per
  // (dropped site, adjacent survivor) pair, each `dimension` words (about 2 s
  // for 100 sites, 10 dropped, 1M parameters, on one core of the bench box).
  core::Result<SecAggResult> Finish();

  Stage stage() const { return stage_; }
  // |U1|, |U2|, |U3| and the number of unmasking responders so far.
  std::size_t advertised() const { return keys_.size(); }
  std::size_t shared() const { return commitments_.size(); }
  std::size_t masked() const { return survivors_.size(); }
  std::size_t responded() const { return responders_.size(); }
  // Everything detected so far, fatal or not.
  const std::vector<SecAggDetection>& detections() const { return detections_; }

 private:
  SecAggServer(const SecAggParams& params, unsigned threads) : params_(params), threads_(threads) {}
  core::Status ExpectStage(Stage stage, const char* name) const;
  core::Status Fail(core::Status status);
  void Observe(std::span<const std::uint32_t> v) const;
  bool InU3(ParticipantId id) const;
  // Reconstructs one secret of `owner` from `shares`; records detections.
  core::Result<Key32> Reconstruct(ParticipantId owner, const char* what,
                                  const std::vector<Share>& shares);

  SecAggParams params_;
  unsigned threads_ = 1;
  Stage stage_ = Stage::kAdvertiseKeys;
  Observer observer_;
  std::map<ParticipantId, KeyAdvertisement> keys_;  // U1
  std::optional<NeighbourGraph> graph_;
  std::map<ParticipantId, Key32> commitments_;                      // U2
  std::map<ParticipantId, std::vector<EncryptedShare>> shares_to_;  // by holder
  std::set<ParticipantId> survivors_;                               // U3
  std::vector<std::uint32_t> sum_;                                  // running Σ y_u
  std::map<ParticipantId, bool> responders_;                        // U5
  std::map<ParticipantId, std::vector<Share>> seed_shares_;         // b_u, u ∈ U3
  std::map<ParticipantId, std::vector<Share>> key_shares_;          // s_sk_v, v ∈ U2\U3
  std::vector<SecAggDetection> detections_;
};

}  // namespace fedrx::privacy
