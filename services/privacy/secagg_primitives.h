// The cryptographic and arithmetic building blocks of secure aggregation
// (Bonawitz et al., "Practical Secure Aggregation for Privacy-Preserving
// Machine Learning", CCS 2017): X25519 key agreement, a ChaCha20 mask
// generator, fixed-point encoding modulo 2^32, Shamir secret sharing over
// GF(2^61 - 1) and authenticated encryption of shares. Free functions and
// value types; all thread-safe once InitSecAggCrypto() has returned OK.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "services/core/status.h"

namespace fedrx::privacy {

// A site's number in one secure-aggregation round: 1..2^31-1, unique per round.
// It is also the site's Shamir evaluation point, so it must never be 0.
using ParticipantId = std::uint32_t;

// Public keys, secret keys, seeds and symmetric keys are all 32 bytes.
using Key32 = std::array<std::uint8_t, 32>;

// Initialises libsodium (idempotent, thread-safe). Every other function here
// assumes it returned OK; kInternal when libsodium cannot start.
core::Status InitSecAggCrypto();

// ---- key agreement --------------------------------------------------------------------

struct KeyPair {
  Key32 public_key{};
  Key32 secret_key{};
};

// A fresh X25519 key pair from the OS random source; the secret key is stored
// clamped (RFC 7748), as IsClampedScalar checks.
KeyPair GenerateKeyPair();

// Whether `secret_key` is in the clamped form GenerateKeyPair produces. Among
// clamped keys the public key determines the secret key, so a reconstructed
// s_sk is right exactly when it is clamped and PublicKeyOf matches.
bool IsClampedScalar(const Key32& secret_key);

// The X25519 public key of `secret_key` (used to check a reconstructed key).
Key32 PublicKeyOf(const Key32& secret_key);

// What a pairwise key is for; each purpose gives an independent key.
enum class KeyPurpose : std::uint8_t { kShareEncryption = 1, kPairwiseMask = 2 };

// The key both ends of a pair derive: BLAKE2b-256 over a label, the purpose,
// the round, the X25519 shared point and the two public keys in sorted order
// (so AgreeKey(a_sk, a_pk, b_pk) == AgreeKey(b_sk, b_pk, a_pk)).
// kInvalidArgument when `their_public` is a low-order point (all-zero shared
// secret), which an honest peer never sends.
core::Result<Key32> AgreeKey(const Key32& my_secret, const Key32& my_public,
                             const Key32& their_public, KeyPurpose purpose, std::uint64_t round);

// ---- mask generator ---------------------------------------------------------------------

// 32 bytes from the OS random source.
Key32 RandomSeed();

// PRG(seed): the ChaCha20 (IETF, zero nonce, block counter from 0) keystream
// of `seed` read as little-endian uint32 words. Each seed is used for one
// round only (fresh b_u, fresh pairwise keys), so the fixed nonce is safe.
// acc[i] += PRG(seed)[i] (mod 2^32), or -= when `subtract`. Streams in chunks
// that stay in cache; never allocates more than a few kilobytes.
void AccumulateMask(const Key32& seed, std::span<std::uint32_t> acc, bool subtract = false);

// One term of a masked sum: ±PRG(seed).
struct MaskTerm {
  Key32 seed{};
  bool subtract = false;
};

// acc += Σ ±PRG(term.seed), equal to calling AccumulateMask per term, but
// chunk-major (every term over one cache-resident chunk of acc before the
// next) and split over `threads` threads (contiguous ranges of acc; each range
// starts on a ChaCha20 block, so the result does not depend on `threads`).
// Blocks until done.
void AccumulateMasks(std::span<const MaskTerm> terms, std::span<std::uint32_t> acc,
                     unsigned threads = 1);

// A binding commitment to a self-mask seed: BLAKE2b-256 over a label, the
// round, the owner and the seed. Lets the server check a reconstructed seed.
Key32 CommitSeed(const Key32& seed, std::uint64_t round, ParticipantId owner);

// ---- fixed-point encoding ---------------------------------------------------------------

// Each coordinate v is clipped to [-clip, clip] and rounded to the nearest
// integer of v * 2^scale_bits (ties away from zero), stored modulo 2^32 (two's
// complement). Round-to-nearest is deterministic: the per-site, per-coordinate
// error is at most 2^-(scale_bits+1) (plus whatever clipping removed), so a sum
// over n sites is within n * 2^-(scale_bits+1) of the sum of the clipped inputs.
// A sum decodes without wrap-around while n * Bound() <= 2^31 - 1, i.e. up to
// MaxSites() sites. Defaults (clip 8, 16 bits): Bound() = 2^19, 4095 sites,
// error <= 7.63e-6 per site per coordinate.
struct FixedPointEncoding {
  double clip = 8.0;
  int scale_bits = 16;

  double scale() const;
  // Largest |encoded coordinate| of one site; the weight coordinate (in [0, 1])
  // is covered too because Bound() uses max(clip, 1).
  std::uint64_t Bound() const;
  // Sites whose sum cannot wrap around.
  std::uint64_t MaxSites() const;
  // Worst-case rounding error of one site's coordinate.
  double MaxErrorPerSite() const { return 0.5 / scale(); }
  // kInvalidArgument when clip or scale_bits are out of range or `sites`
  // exceeds MaxSites().
  core::Status Validate(std::size_t sites) const;

  std::uint32_t Encode(double value) const;
  // A weight in [0, 1], encoded with the same scale but never clipped (Bound()
  // covers it whatever the clip).
  std::uint32_t EncodeWeight(double weight) const;
  // Reads a sum of encoded values back (two's complement, then / scale).
  double Decode(std::uint32_t sum) const;
};

// ---- Shamir secret sharing over GF(2^61 - 1) -------------------------------------------

inline constexpr std::uint64_t kShamirPrime = (std::uint64_t{1} << 61) - 1;
// A 32-byte secret is four 7-byte and one 4-byte field elements, each shared
// with its own polynomial (same evaluation points).
inline constexpr std::size_t kShareElements = 5;

struct Share {
  ParticipantId x = 0;  // the holder's evaluation point
  std::array<std::uint64_t, kShareElements> y{};
};

// t-of-n shares of `secret`, one per evaluation point in `holders` (distinct,
// nonzero). kInvalidArgument for t < 1, t > holders.size(), a repeated or zero
// point.
core::Result<std::vector<Share>> ShamirSplit(const Key32& secret,
                                             std::span<const ParticipantId> holders,
                                             std::size_t threshold);

// What reconstruction found out about the shares it was given.
struct ShamirReport {
  // Every share lies on one polynomial of degree < t (so every t-subset
  // reconstructs the same secret). Meaningful only with more than t shares.
  bool consistent = true;
  // Holders whose shares lie off the polynomial that Berlekamp-Welch decoding
  // found (identified only while at most (m - t) / 2 of the m shares are bad).
  std::vector<ParticipantId> bad_holders;
};

// Reconstructs by Lagrange interpolation at 0 from the first t shares and
// checks every further share against that polynomial. When a further share
// disagrees it decodes the whole set with Berlekamp-Welch: the secret then
// comes from the majority polynomial and `report` names the holders off it.
// kInvalidArgument for fewer than t shares, a zero or repeated point or an
// element >= p; kDataLoss when the shares disagree beyond what decoding can
// correct, or the result is not a 32-byte secret (an element too large).
core::Result<Key32> ShamirReconstruct(std::span<const Share> shares, std::size_t threshold,
                                      ShamirReport* report = nullptr);

// ---- authenticated encryption of shares -------------------------------------------------

// A share in transit from `from` (its owner) to `to` (its holder): the holder's
// share of the owner's mask secret key and of its self-mask seed.
struct SharePlaintext {
  ParticipantId from = 0;
  ParticipantId to = 0;
  Share mask_key_share;   // x == to
  Share self_seed_share;  // x == to
};

// Bytes of SealShare's output: 4 + 4 + 2 * 5 * 8 plaintext + 16 tag.
inline constexpr std::size_t kSealedShareBytes = 8 + 2 * kShareElements * 8 + 16;

// ChaCha20-Poly1305 (IETF) under the pair's share-encryption key; the nonce is
// (from, to) and the associated data binds the round and both ids, so a
// ciphertext cannot be replayed in another round or to another holder.
std::vector<std::uint8_t> SealShare(const Key32& key, std::uint64_t round,
                                    const SharePlaintext& plaintext);
// kUnauthenticated when the tag does not verify (tampered, wrong key, wrong
// round or ids) or the size is wrong; kInvalidArgument when the authenticated
// plaintext names other ids than (from, to) or a field element >= p.
core::Result<SharePlaintext> OpenShare(const Key32& key, std::uint64_t round, ParticipantId from,
                                       ParticipantId to, std::span<const std::uint8_t> ciphertext);

}  // namespace fedrx::privacy
