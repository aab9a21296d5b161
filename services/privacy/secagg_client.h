// SecAggClient: one site's side of one secure-aggregation round (Bonawitz et
// al., CCS 2017, semi-honest variant; optional SecAgg+ neighbours, Bell et al.,
// CCS 2020), as a state machine over the plain messages of secagg_protocol.h.
// Create one per site per round; never reuse. Holds the round's secrets and
// wipes them when done or destroyed. Not thread-safe; nothing blocks.
#pragma once

#include <cstddef>
#include <map>
#include <span>
#include <vector>

#include "services/core/status.h"
#include "services/privacy/secagg_primitives.h"
#include "services/privacy/secagg_protocol.h"

namespace fedrx::privacy {

class SecAggClient {
 public:
  // kInvalidArgument when `params` are invalid or `id` is 0; kInternal when
  // libsodium cannot start. `threads` (>= 1) split the mask generation of
  // MaskInput, the one step whose cost grows with the model size times the
  // number of neighbours; the result does not depend on it.
  static core::Result<SecAggClient> Create(const SecAggParams& params, ParticipantId id,
                                           unsigned threads = 1);

  SecAggClient(SecAggClient&&) noexcept = default;
  SecAggClient& operator=(SecAggClient&&) noexcept = default;
  ~SecAggClient();

  ParticipantId id() const { return id_; }

  // Stage 0: draws the round's two key pairs and returns their public halves.
  // Each stage method may be called once, in order; any other call, and any
  // call after a stage failed, returns kFailedPrecondition. A failed stage
  // ends the site's part in the round (the caller drops out; the server copes).
  core::Result<KeyAdvertisement> AdvertiseKeys();

  // Stage 1: checks the roster (sorted, distinct ids and keys, this site in
  // it with its own keys, at least t sites, at most max_sites) and returns the
  // sealed shares of s_sk and of a fresh b_u for each neighbour.
  // kInvalidArgument for a malformed roster; kFailedPrecondition when fewer
  // than t sites (or, for SecAgg+, fewer than t holders in the neighbourhood).
  core::Result<ShareKeysMessage> ShareKeys(const KeyRoster& roster);

  // Stage 2: stores the relayed shares (opened only in stage 3, as in the
  // paper) and returns y_u, the masked fixed-point encoding of
  // weight * update (each coordinate clipped to ±clip) followed by the weight.
  // Weighted FedAvg: pass weight = samples / cap in [0, 1] for a cap the
  // coordinator announces (e.g. the largest site's samples); the server
  // returns Σ w_u x_u and Σ w_u, and the caller divides. weight = 1 gives a
  // plain sum. kInvalidArgument for a wrong size, a weight outside [0, 1], or
  // a bundle not addressed to this site / from a non-neighbour / repeated;
  // kFailedPrecondition when fewer than t sites remain.
  core::Result<MaskedInputMessage> MaskInput(const ShareBundle& bundle,
                                             std::span<const float> update, double weight);

  // Stage 3: for each neighbour in U2 (and itself) reveals its share of b_v
  // when v is in `request.survivors` (U3), else of s_sk_v; never both. Shares
  // that fail authentication are listed in failed_shares, not revealed.
  // kInvalidArgument when U3 is not a sorted subset of this site's U2 view;
  // kFailedPrecondition when |U3| < t or this site is not in U3 (the server
  // counted it as dropped). Wipes the round's secrets.
  core::Result<UnmaskResponse> Unmask(const UnmaskRequest& request);

  // Coordinates of weight * update that clipping changed (after MaskInput);
  // a NaN coordinate counts here and is sent as 0.
  std::size_t clipped_coordinates() const { return clipped_; }

 private:
  enum class Stage { kAdvertise, kShareKeys, kMaskInput, kUnmask, kDone, kFailed };

  SecAggClient(const SecAggParams& params, ParticipantId id, unsigned threads)
      : params_(params), id_(id), threads_(threads) {}
  core::Status Fail(core::Status status);
  core::Status ExpectStage(Stage stage, const char* name) const;
  void Wipe();

  SecAggParams params_;
  ParticipantId id_ = 0;
  unsigned threads_ = 1;
  Stage stage_ = Stage::kAdvertise;
  KeyPair encryption_;  // c_pk, c_sk
  KeyPair mask_;        // s_pk, s_sk
  Key32 self_seed_{};   // b_u
  Share own_mask_key_share_;
  Share own_self_seed_share_;
  std::map<ParticipantId, KeyAdvertisement> roster_;             // U1
  std::vector<ParticipantId> neighbours_;                        // N(u) in U1, sorted
  std::map<ParticipantId, std::vector<std::uint8_t>> received_;  // U2 view \ {u}
  std::size_t clipped_ = 0;
};

}  // namespace fedrx::privacy
