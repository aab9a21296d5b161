#include "services/privacy/dp_mechanism.h"

#include <sodium.h>

#include <cmath>
#include <cstring>
#include <numbers>
#include <string>

namespace fedrx::privacy {
namespace {

// 64-bit words per ChaCha20 call (32 KiB): one call per 4096 normals.
constexpr std::size_t kBufferWords = 4096;

core::Status InitSodium() {
  if (sodium_init() < 0) {
    return core::Status(core::StatusCode::kInternal, "libsodium failed to initialise",
                        "GaussianNoise");
  }
  return core::Status::Ok();
}

}  // namespace

double L2Norm(std::span<const float> v) {
  double sum = 0;
  for (float x : v) sum += static_cast<double>(x) * x;
  return std::sqrt(sum);
}

double ClipToNorm(std::span<float> delta, double clip_norm) {
  const double norm = L2Norm(delta);
  if (norm > clip_norm && norm > 0) {
    const float scale = static_cast<float>(clip_norm / norm);
    for (float& x : delta) x *= scale;
  }
  return norm;
}

core::Result<GaussianNoise> GaussianNoise::Create() {
  FEDRX_RETURN_IF_ERROR(InitSodium());
  Seed seed;
  randombytes_buf(seed.data(), seed.size());
  GaussianNoise g(seed);
  sodium_memzero(seed.data(), seed.size());
  return g;
}

core::Result<GaussianNoise> GaussianNoise::FromSeed(const Seed& seed) {
  FEDRX_RETURN_IF_ERROR(InitSodium());
  return GaussianNoise(seed);
}

void GaussianNoise::Refill() {
  buffer_.resize(kBufferWords);
  unsigned char nonce[crypto_stream_chacha20_NONCEBYTES];
  static_assert(sizeof(block_) == crypto_stream_chacha20_NONCEBYTES);
  std::memcpy(nonce, &block_, sizeof nonce);
  ++block_;
  crypto_stream_chacha20(reinterpret_cast<unsigned char*>(buffer_.data()),
                         buffer_.size() * sizeof(std::uint64_t), nonce, key_.data());
  used_ = 0;
}

std::uint64_t GaussianNoise::NextBits() {
  if (used_ >= buffer_.size()) Refill();
  return buffer_[used_++];
}

double GaussianNoise::Next() {
  if (has_spare_) {
    has_spare_ = false;
    return spare_;
  }
  // Box-Muller on two uniforms: u1 in (0, 1] (so log(u1) is finite), u2 in [0, 1).
  constexpr double kTwo53 = 9007199254740992.0;
  const double u1 = (static_cast<double>(NextBits() >> 11) + 1.0) / kTwo53;
  const double u2 = static_cast<double>(NextBits() >> 11) / kTwo53;
  const double r = std::sqrt(-2.0 * std::log(u1));
  const double theta = 2.0 * std::numbers::pi * u2;
  spare_ = r * std::sin(theta);
  has_spare_ = true;
  return r * std::cos(theta);
}

void GaussianNoise::Add(std::span<float> values, double stddev) {
  for (float& x : values) x = static_cast<float>(x + stddev * Next());
}

core::Result<DpSiteReport> PrivatizeUpdate(std::span<float> trained, std::span<const float> global,
                                           const DpSiteOptions& o, GaussianNoise& noise) {
  if (trained.size() != global.size()) {
    return core::InvalidArgument("update has " + std::to_string(trained.size()) +
                                     " parameters, the global model " +
                                     std::to_string(global.size()),
                                 "PrivatizeUpdate");
  }
  if (!(o.clip_norm >= 0 && std::isfinite(o.clip_norm))) {
    return core::InvalidArgument("clip norm must be finite and >= 0", "DpSiteOptions.clip_norm");
  }
  if (!(o.noise_multiplier >= 0 && std::isfinite(o.noise_multiplier))) {
    return core::InvalidArgument("noise multiplier must be finite and >= 0",
                                 "DpSiteOptions.noise_multiplier");
  }
  if (o.noise_multiplier > 0 && o.clip_norm == 0) {
    return core::InvalidArgument("noise needs a clip norm (the noise is scaled to it)",
                                 "DpSiteOptions.clip_norm");
  }
  if (o.noise_shares == 0) {
    return core::InvalidArgument("noise shares must be at least 1", "DpSiteOptions.noise_shares");
  }
  DpSiteReport report;
  if (o.clip_norm == 0) return report;
  // The delta in place, then back to weights: one pass each, no copy.
  for (std::size_t i = 0; i < trained.size(); ++i) trained[i] -= global[i];
  report.norm_before_clip = ClipToNorm(trained, o.clip_norm);
  report.clipped = report.norm_before_clip > o.clip_norm;
  report.noise_stddev =
      o.noise_multiplier * o.clip_norm / std::sqrt(static_cast<double>(o.noise_shares));
  if (report.noise_stddev > 0) noise.Add(trained, report.noise_stddev);
  for (std::size_t i = 0; i < trained.size(); ++i) trained[i] += global[i];
  return report;
}

}  // namespace fedrx::privacy
