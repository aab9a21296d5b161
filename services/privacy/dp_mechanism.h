// Client-level differential privacy for federated rounds (DP-FedAvg,
// McMahan, Ramage, Talwar, Zhang, "Learning Differentially Private Recurrent
// Language Models", ICLR 2018): a site clips its update's delta from the
// global model to L2 norm C and adds Gaussian noise before the update leaves.
// GaussianNoise is not thread-safe (one per thread); the functions are pure.
//
// Where the noise goes:
//  - without secure aggregation the coordinator sees each update, so each
//    site adds the full N(0, sigma^2 C^2): every update is private on its own;
//  - with secure aggregation the coordinator only sees the sum, so the noise
//    is distributed: each of the sites adds N(0, sigma^2 C^2 / t), and the sum
//    of s >= t surviving updates carries s/t >= 1 times the full variance.
//    t must be the fewest updates a round can be aggregated from (the secure
//    aggregation threshold): if t were the number selected and some dropped
//    out, the sum would carry less noise than the accountant assumes.
//  - the RDP accountant (dp_accountant.h) charges sigma per round in both
//    cases, which is exact for the distributed sum at s = t and
//    conservative otherwise.
// Caveat: the sampler draws floating-point normals (Box-Muller on 53-bit
// uniforms); like every floating-point sampler it leaks in its low-order
// bits in theory (Mironov, CCS 2012), a known limitation shared with Opacus
// and TensorFlow Privacy.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "services/core/status.h"

namespace fedrx::privacy {

// L2 norm, accumulated in double.
double L2Norm(std::span<const float> v);

// Scales `delta` in place to L2 norm at most `clip_norm` (> 0): multiplies by
// min(1, clip_norm / ||delta||). Returns the norm before clipping.
double ClipToNorm(std::span<float> delta, double clip_norm);

// Normal variates from a ChaCha20 stream keyed by a 32-byte seed. Create()
// draws the seed from the OS (libsodium's randombytes); FromSeed() exists
// so that tests are reproducible.
class GaussianNoise {
 public:
  using Seed = std::array<std::uint8_t, 32>;
  // kInternal if libsodium cannot initialise.
  static core::Result<GaussianNoise> Create();
  static core::Result<GaussianNoise> FromSeed(const Seed& seed);

  // One N(0, 1) draw.
  double Next();
  // Adds N(0, stddev^2) independently to each element.
  void Add(std::span<float> values, double stddev);

 private:
  explicit GaussianNoise(const Seed& seed) : key_(seed) {}
  std::uint64_t NextBits();
  void Refill();

  Seed key_;
  std::uint64_t block_ = 0;  // the ChaCha20 nonce: one per buffer of bits
  std::vector<std::uint64_t> buffer_;
  std::size_t used_ = 0;
  bool has_spare_ = false;
  double spare_ = 0;
};

struct DpSiteOptions {
  // C: the L2 bound of a site's update delta; 0 disables clipping and noise.
  double clip_norm = 0;
  // sigma: the noise stddev of the aggregate divided by C; 0 clips only.
  double noise_multiplier = 0;
  // t: how many sites share the noise (1 without secure aggregation, the
  // secure-aggregation threshold with it); each adds variance sigma^2 C^2 / t.
  std::uint32_t noise_shares = 1;
};

struct DpSiteReport {
  double norm_before_clip = 0;
  bool clipped = false;
  double noise_stddev = 0;
};

// The site's step: delta = trained - global, clipped to C, plus the noise
// share; `trained` becomes global + that. kInvalidArgument for mismatched
// sizes or out-of-range options; `trained` is unchanged then.
core::Result<DpSiteReport> PrivatizeUpdate(std::span<float> trained, std::span<const float> global,
                                           const DpSiteOptions& options, GaussianNoise& noise);

}  // namespace fedrx::privacy
