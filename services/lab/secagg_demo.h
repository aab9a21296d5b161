// One secure-aggregation round simulated in this process for `fedrx-lab
// secagg`: the real privacy::SecAggClient of every simulated site and the real
// privacy::SecAggServer exchange the protocol's four stages directly (no bus),
// with sites leaving at a scripted stage, and the unmasked sum is checked
// against the plain sum of the same updates. Pure apart from the clock it
// reads for the unmasking time; thread-compatible; blocks for the round.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "services/core/status.h"
#include "services/privacy/secagg_protocol.h"

namespace fedrx::lab {

// Where a simulated site leaves the round (it answers every stage before).
enum class SecAggLeave {
  kNever,
  kBeforeKeys,         // never advertises keys: not in U1
  kBeforeMaskedInput,  // keys and shares sent, no masked input: in U2, not U3
  kAfterMaskedInput,   // masked input sent, never answers the unmasking: in U3
};

struct SecAggSimSite {
  std::vector<float> update;  // the site's model delta (trained - global)
  double weight = 1;          // in [0, 1]: samples / the largest site's samples
  SecAggLeave leave = SecAggLeave::kNever;
};

struct SecAggSimReport {
  // Whether the server unmasked a sum; otherwise `failure` is the status of
  // the stage that fell short (kFailedPrecondition below the threshold).
  bool completed = false;
  core::Status failure;
  std::size_t sites = 0;
  std::size_t threshold = 0;
  int scale_bits = 0;          // the fixed point's fractional bits
  double clip = 0;             // each coordinate of weight x update is clipped to +-clip
  std::size_t advertised = 0;  // |U1|
  std::size_t shared = 0;      // |U2|
  std::vector<privacy::ParticipantId> survivors;  // U3: whose updates are in the sum
  std::size_t responders = 0;                     // sites that answered the unmasking
  // max over coordinates of |unmasked Σ_{U3} w x - Σ_{U3} w x| (the latter
  // in double from the same float updates), and the same for Σ w.
  double max_abs_error = 0;
  double weight_error = 0;
  // The documented bound: each site's fixed-point rounding is at most
  // e = 2^-(scale_bits+1) per coordinate, so |U3| e, plus the float32
  // rounding of the dequantised sum (|Σ| 2^-24, at most max_abs_sum 2^-24).
  double rounding_per_site = 0;  // e
  double error_bound = 0;        // |U3| e + max_abs_sum 2^-24
  double max_abs_sum = 0;
  // Every coordinate within its own bound |U3| e + |Σ_k| 2^-24, and the
  // weight within |U3| e.
  bool within_bound = false;
  // The weighted mean (what the coordinator adds to the global model) against
  // the exact Σ w x / Σ w.
  double mean_max_abs_error = 0;
  // Coordinates the fixed point clipped, over all sites (0 keeps the bound).
  std::size_t clipped_coordinates = 0;
  // Bytes each site's messages take encoded as the platform sends them
  // (codec envelope + tensor frames), by site; 0 for a site that sent nothing.
  std::vector<std::uint64_t> bytes_sent;
  // A plain FedAvg upload of the same model (float32 weights), for scale.
  std::uint64_t plain_update_bytes = 0;
  // Wall-clock time of SecAggServer::Finish (mask reconstruction and removal).
  double unmask_seconds = 0;
};

// Runs one round over `sites` (participant ids 1..n in order) with Shamir
// threshold `threshold` and the platform's encoding for n sites
// (coordinator::SecAggEncoding). kInvalidArgument for fewer than 2 sites,
// updates of different or zero size, a weight outside [0, 1] or a threshold
// outside [2, n]; a round that fails (too few sites left at a stage) is not an
// error but a report with completed = false.
core::Result<SecAggSimReport> SimulateSecAggRound(std::span<const SecAggSimSite> sites,
                                                  std::size_t threshold,
                                                  std::uint64_t round_tag = 1);

}  // namespace fedrx::lab
