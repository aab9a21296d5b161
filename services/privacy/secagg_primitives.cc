#include "services/privacy/secagg_primitives.h"

#include <sodium.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <thread>

namespace fedrx::privacy {
namespace {

static_assert(std::endian::native == std::endian::little,
              "the mask generator reads the keystream as little-endian words in place");

constexpr std::string_view kKeyLabel = "fedrx-secagg-key-v1";
constexpr std::string_view kCommitLabel = "fedrx-secagg-commit-v1";
constexpr std::string_view kShareLabel = "fedrx-secagg-share-v1";

void PutU32(std::uint8_t* out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out[i] = static_cast<std::uint8_t>(v >> (8 * i));
}
void PutU64(std::uint8_t* out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out[i] = static_cast<std::uint8_t>(v >> (8 * i));
}
std::uint32_t GetU32(const std::uint8_t* in) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= std::uint32_t{in[i]} << (8 * i);
  return v;
}
std::uint64_t GetU64(const std::uint8_t* in) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= std::uint64_t{in[i]} << (8 * i);
  return v;
}

// ---- GF(2^61 - 1) ------------------------------------------------------------------------
// A Mersenne prime: reduction is a shift and an add, products fit in 128 bits.

using u64 = std::uint64_t;
constexpr u64 kP = kShamirPrime;

u64 FAdd(u64 a, u64 b) {
  u64 s = a + b;
  return s >= kP ? s - kP : s;
}
u64 FSub(u64 a, u64 b) { return a >= b ? a - b : a + kP - b; }
u64 FMul(u64 a, u64 b) {
  const unsigned __int128 z = static_cast<unsigned __int128>(a) * b;
  u64 r = static_cast<u64>(z & kP) + static_cast<u64>(z >> 61);
  return r >= kP ? r - kP : r;
}
u64 FPow(u64 a, u64 e) {
  u64 r = 1;
  while (e != 0) {
    if (e & 1) r = FMul(r, a);
    a = FMul(a, a);
    e >>= 1;
  }
  return r;
}
u64 FInv(u64 a) { return FPow(a, kP - 2); }  // a != 0

u64 RandomField() {
  for (;;) {  // rejection sampling keeps the coefficients uniform
    u64 v;
    randombytes_buf(&v, sizeof v);
    v &= kP;  // 61 bits
    if (v < kP) return v;
  }
}

// Secret <-> field elements: bytes [0,7) [7,14) [14,21) [21,28) [28,32).
constexpr std::size_t kChunkBytes[kShareElements] = {7, 7, 7, 7, 4};

std::array<u64, kShareElements> SecretToField(const Key32& secret) {
  std::array<u64, kShareElements> out{};
  std::size_t at = 0;
  for (std::size_t e = 0; e < kShareElements; ++e) {
    for (std::size_t b = 0; b < kChunkBytes[e]; ++b) out[e] |= u64{secret[at + b]} << (8 * b);
    at += kChunkBytes[e];
  }
  return out;
}

std::optional<Key32> FieldToSecret(const std::array<u64, kShareElements>& elements) {
  Key32 out{};
  std::size_t at = 0;
  for (std::size_t e = 0; e < kShareElements; ++e) {
    if (elements[e] >> (8 * kChunkBytes[e]) != 0) return std::nullopt;
    for (std::size_t b = 0; b < kChunkBytes[e]; ++b) {
      out[at + b] = static_cast<std::uint8_t>(elements[e] >> (8 * b));
    }
    at += kChunkBytes[e];
  }
  return out;
}

// Montgomery's trick: inverts every (nonzero) element with one exponentiation.
void BatchInvert(std::vector<u64>& v) {
  std::vector<u64> prefix(v.size());
  u64 acc = 1;
  for (std::size_t i = 0; i < v.size(); ++i) {
    prefix[i] = acc;
    acc = FMul(acc, v[i]);
  }
  u64 inv = FInv(acc);
  for (std::size_t i = v.size(); i-- > 0;) {
    const u64 vi = v[i];
    v[i] = FMul(inv, prefix[i]);
    inv = FMul(inv, vi);
  }
}

// Lagrange interpolation through fixed points x_0..x_{t-1}, evaluated at any
// point not among them, in O(t) per point after O(t^2) set-up (barycentric
// form): L_i(a) = l(a) / (a - x_i) * w_i with l(a) = prod_j (a - x_j) and
// w_i = 1 / prod_{j != i} (x_i - x_j).
class Lagrange {
 public:
  explicit Lagrange(std::span<const u64> xs) : xs_(xs.begin(), xs.end()), w_(xs.size()) {
    for (std::size_t i = 0; i < xs_.size(); ++i) {
      u64 d = 1;
      for (std::size_t j = 0; j < xs_.size(); ++j) {
        if (j != i) d = FMul(d, FSub(xs_[i], xs_[j]));
      }
      w_[i] = d;
    }
    BatchInvert(w_);
  }
  std::vector<u64> At(u64 a) const {
    std::vector<u64> c(xs_.size());
    u64 l = 1;
    for (std::size_t i = 0; i < xs_.size(); ++i) {
      c[i] = FSub(a, xs_[i]);
      l = FMul(l, c[i]);
    }
    BatchInvert(c);
    for (std::size_t i = 0; i < xs_.size(); ++i) c[i] = FMul(FMul(l, c[i]), w_[i]);
    return c;
  }

 private:
  std::vector<u64> xs_;
  std::vector<u64> w_;
};

u64 EvalPoly(std::span<const u64> coeffs, u64 x) {  // Horner
  u64 r = 0;
  for (std::size_t i = coeffs.size(); i-- > 0;) r = FAdd(FMul(r, x), coeffs[i]);
  return r;
}

// Berlekamp-Welch: the polynomial P of degree < t through all but at most
// e = (m - t) / 2 of the points, or nullopt when none exists. Solves
// Q(x_i) = y_i E(x_i) for Q of degree < t + e and monic E of degree e by
// Gaussian elimination (m <= a few hundred: O(m^3), only on the failure path),
// then P = Q / E.
std::optional<std::vector<u64>> BerlekampWelch(std::span<const u64> xs, std::span<const u64> ys,
                                               std::size_t t) {
  const std::size_t m = xs.size();
  if (m <= t) return std::nullopt;
  const std::size_t e = (m - t) / 2;
  const std::size_t nq = t + e;
  const std::size_t cols = nq + e;  // unknowns: q_0..q_{nq-1}, e_0..e_{e-1}
  std::vector<std::vector<u64>> rows(m, std::vector<u64>(cols + 1));
  for (std::size_t i = 0; i < m; ++i) {
    u64 pw = 1;
    for (std::size_t j = 0; j < nq; ++j) {
      rows[i][j] = pw;
      if (j < e) rows[i][nq + j] = FSub(0, FMul(ys[i], pw));
      pw = FMul(pw, xs[i]);
    }
    rows[i][cols] = FMul(ys[i], FPow(xs[i], e));
  }
  // Row reduction to reduced echelon form.
  std::vector<std::size_t> pivot_col;
  std::size_t r = 0;
  for (std::size_t c = 0; c < cols && r < m; ++c) {
    std::size_t p = r;
    while (p < m && rows[p][c] == 0) ++p;
    if (p == m) continue;
    std::swap(rows[p], rows[r]);
    const u64 inv = FInv(rows[r][c]);
    for (std::size_t k = c; k <= cols; ++k) rows[r][k] = FMul(rows[r][k], inv);
    for (std::size_t i = 0; i < m; ++i) {
      if (i == r || rows[i][c] == 0) continue;
      const u64 f = rows[i][c];
      for (std::size_t k = c; k <= cols; ++k) rows[i][k] = FSub(rows[i][k], FMul(f, rows[r][k]));
    }
    pivot_col.push_back(c);
    ++r;
  }
  for (std::size_t i = r; i < m; ++i) {
    if (rows[i][cols] != 0) return std::nullopt;  // inconsistent system
  }
  std::vector<u64> sol(cols, 0);  // free unknowns at 0
  for (std::size_t i = 0; i < r; ++i) sol[pivot_col[i]] = rows[i][cols];
  std::vector<u64> q(sol.begin(), sol.begin() + static_cast<std::ptrdiff_t>(nq));
  std::vector<u64> ev(sol.begin() + static_cast<std::ptrdiff_t>(nq), sol.end());
  ev.push_back(1);  // monic
  // Long division q / ev.
  std::vector<u64> quotient(nq >= e + 1 ? nq - e : 0, 0);
  for (std::size_t d = nq; d-- > e;) {
    const u64 coef = q[d];  // leading coefficient of ev is 1
    quotient[d - e] = coef;
    if (coef == 0) continue;
    for (std::size_t k = 0; k <= e; ++k) q[d - e + k] = FSub(q[d - e + k], FMul(coef, ev[k]));
  }
  for (std::size_t k = 0; k < e; ++k) {
    if (q[k] != 0) return std::nullopt;  // E does not divide Q
  }
  quotient.resize(t, 0);
  std::size_t disagree = 0;
  for (std::size_t i = 0; i < m; ++i) disagree += EvalPoly(quotient, xs[i]) != ys[i];
  if (disagree > e) return std::nullopt;
  return quotient;
}

}  // namespace

core::Status InitSecAggCrypto() {
  if (sodium_init() < 0) return core::Internal("libsodium failed to initialise", "secagg");
  return core::Status::Ok();
}

// ---- key agreement ----------------------------------------------------------------------

KeyPair GenerateKeyPair() {
  KeyPair kp;
  randombytes_buf(kp.secret_key.data(), kp.secret_key.size());
  // Clamped here rather than only inside X25519 (RFC 7748), so that two
  // different secret keys never act as the same scalar: IsClampedScalar then
  // lets a reconstructed key be checked exactly against its public key.
  kp.secret_key[0] &= 248;
  kp.secret_key[31] &= 127;
  kp.secret_key[31] |= 64;
  crypto_scalarmult_base(kp.public_key.data(), kp.secret_key.data());
  return kp;
}

bool IsClampedScalar(const Key32& secret_key) {
  return (secret_key[0] & 7) == 0 && (secret_key[31] & 0xc0) == 0x40;
}

Key32 PublicKeyOf(const Key32& secret_key) {
  Key32 pk{};
  crypto_scalarmult_base(pk.data(), secret_key.data());
  return pk;
}

core::Result<Key32> AgreeKey(const Key32& my_secret, const Key32& my_public,
                             const Key32& their_public, KeyPurpose purpose, std::uint64_t round) {
  std::uint8_t shared[crypto_scalarmult_BYTES];
  if (crypto_scalarmult(shared, my_secret.data(), their_public.data()) != 0) {
    return core::InvalidArgument("peer public key is a low-order point", "secagg key agreement");
  }
  const bool mine_first = std::memcmp(my_public.data(), their_public.data(), 32) < 0;
  const Key32& lo = mine_first ? my_public : their_public;
  const Key32& hi = mine_first ? their_public : my_public;
  std::uint8_t header[9];
  header[0] = static_cast<std::uint8_t>(purpose);
  PutU64(header + 1, round);
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, 32);
  crypto_generichash_update(&st, reinterpret_cast<const std::uint8_t*>(kKeyLabel.data()),
                            kKeyLabel.size());
  crypto_generichash_update(&st, header, sizeof header);
  crypto_generichash_update(&st, shared, sizeof shared);
  crypto_generichash_update(&st, lo.data(), lo.size());
  crypto_generichash_update(&st, hi.data(), hi.size());
  Key32 key{};
  crypto_generichash_final(&st, key.data(), key.size());
  sodium_memzero(shared, sizeof shared);
  return key;
}

// ---- mask generator ---------------------------------------------------------------------

Key32 RandomSeed() {
  Key32 seed{};
  randombytes_buf(seed.data(), seed.size());
  return seed;
}

namespace {

// 16 KiB of keystream at a time: a multiple of the 64-byte ChaCha20 block (16
// words), so the block counter at word offset w is w / 16.
constexpr std::size_t kChunkWords = 4096;

// acc[0, n) += / -= PRG(seed)[offset, offset + n); offset a multiple of 16.
void AccumulateChunk(const Key32& seed, std::uint32_t* acc, std::size_t n, std::size_t offset,
                     bool subtract, std::uint32_t* stream) {
  static const std::uint8_t kZeroNonce[crypto_stream_chacha20_ietf_NONCEBYTES] = {};
  std::memset(stream, 0, n * sizeof(std::uint32_t));
  crypto_stream_chacha20_ietf_xor_ic(
      reinterpret_cast<std::uint8_t*>(stream), reinterpret_cast<const std::uint8_t*>(stream),
      n * sizeof(std::uint32_t), kZeroNonce, static_cast<std::uint32_t>(offset / 16), seed.data());
  if (subtract) {
    for (std::size_t i = 0; i < n; ++i) acc[i] -= stream[i];
  } else {
    for (std::size_t i = 0; i < n; ++i) acc[i] += stream[i];
  }
}

void AccumulateRange(std::span<const MaskTerm> terms, std::span<std::uint32_t> acc,
                     std::size_t begin, std::size_t end) {
  alignas(64) std::uint32_t stream[kChunkWords];
  for (std::size_t at = begin; at < end; at += kChunkWords) {
    const std::size_t n = std::min(kChunkWords, end - at);
    for (const MaskTerm& t : terms)
      AccumulateChunk(t.seed, acc.data() + at, n, at, t.subtract, stream);
  }
  sodium_memzero(stream, sizeof stream);
}

}  // namespace

void AccumulateMask(const Key32& seed, std::span<std::uint32_t> acc, bool subtract) {
  const MaskTerm term{seed, subtract};
  AccumulateRange(std::span<const MaskTerm>(&term, 1), acc, 0, acc.size());
}

void AccumulateMasks(std::span<const MaskTerm> terms, std::span<std::uint32_t> acc,
                     unsigned threads) {
  const std::size_t blocks = (acc.size() + 15) / 16;
  // Below ~64 KiB per thread, starting a thread costs more than it saves.
  const std::size_t useful = std::max<std::size_t>(1, blocks / 1024);
  threads = static_cast<unsigned>(std::clamp<std::size_t>(threads, 1, useful));
  if (threads <= 1) {
    AccumulateRange(terms, acc, 0, acc.size());
    return;
  }
  std::vector<std::thread> workers;
  const std::size_t per = (blocks + threads - 1) / threads * 16;  // words, block-aligned
  for (unsigned i = 1; i < threads; ++i) {
    const std::size_t begin = std::min(acc.size(), per * i);
    const std::size_t end = std::min(acc.size(), per * (i + 1));
    workers.emplace_back([=] { AccumulateRange(terms, acc, begin, end); });
  }
  AccumulateRange(terms, acc, 0, std::min(acc.size(), per));
  for (auto& w : workers) w.join();
}

Key32 CommitSeed(const Key32& seed, std::uint64_t round, ParticipantId owner) {
  std::uint8_t header[12];
  PutU64(header, round);
  PutU32(header + 8, owner);
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, 32);
  crypto_generichash_update(&st, reinterpret_cast<const std::uint8_t*>(kCommitLabel.data()),
                            kCommitLabel.size());
  crypto_generichash_update(&st, header, sizeof header);
  crypto_generichash_update(&st, seed.data(), seed.size());
  Key32 out{};
  crypto_generichash_final(&st, out.data(), out.size());
  return out;
}

// ---- fixed-point encoding ---------------------------------------------------------------

double FixedPointEncoding::scale() const { return std::ldexp(1.0, scale_bits); }

std::uint64_t FixedPointEncoding::Bound() const {
  return static_cast<std::uint64_t>(std::llround(std::max(clip, 1.0) * scale()));
}

std::uint64_t FixedPointEncoding::MaxSites() const {
  const std::uint64_t b = Bound();
  return b == 0 ? 0 : ((std::uint64_t{1} << 31) - 1) / b;
}

core::Status FixedPointEncoding::Validate(std::size_t sites) const {
  if (!(clip > 0) || !std::isfinite(clip)) {
    return core::InvalidArgument("clip must be positive and finite", "FixedPointEncoding.clip");
  }
  if (scale_bits < 0 || scale_bits > 30) {
    return core::InvalidArgument("scale_bits must be in [0, 30]", "FixedPointEncoding.scale_bits");
  }
  if (std::max(clip, 1.0) * scale() > 2147483647.0) {
    return core::InvalidArgument("clip * 2^scale_bits does not fit in 31 bits",
                                 "FixedPointEncoding");
  }
  if (sites > MaxSites()) {
    return core::InvalidArgument("encoding supports at most " + std::to_string(MaxSites()) +
                                     " sites without wrap-around, asked for " +
                                     std::to_string(sites),
                                 "FixedPointEncoding");
  }
  return core::Status::Ok();
}

std::uint32_t FixedPointEncoding::Encode(double value) const {
  if (std::isnan(value)) value = 0;  // a NaN carries no information; never wraps
  const double clipped = std::clamp(value, -clip, clip);
  const auto q = static_cast<std::int64_t>(std::llround(clipped * scale()));
  return static_cast<std::uint32_t>(q);  // mod 2^32
}

std::uint32_t FixedPointEncoding::EncodeWeight(double weight) const {
  const double w = std::isnan(weight) ? 0.0 : std::clamp(weight, 0.0, 1.0);
  return static_cast<std::uint32_t>(std::llround(w * scale()));
}

double FixedPointEncoding::Decode(std::uint32_t sum) const {
  return static_cast<double>(static_cast<std::int32_t>(sum)) / scale();
}

// ---- Shamir -----------------------------------------------------------------------------

core::Result<std::vector<Share>> ShamirSplit(const Key32& secret,
                                             std::span<const ParticipantId> holders,
                                             std::size_t threshold) {
  if (threshold < 1 || threshold > holders.size()) {
    return core::InvalidArgument("threshold " + std::to_string(threshold) + " outside [1, " +
                                     std::to_string(holders.size()) + "]",
                                 "ShamirSplit");
  }
  std::vector<ParticipantId> sorted(holders.begin(), holders.end());
  std::sort(sorted.begin(), sorted.end());
  if (sorted.front() == 0 || std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end()) {
    return core::InvalidArgument("evaluation points must be distinct and nonzero", "ShamirSplit");
  }
  const auto elements = SecretToField(secret);
  std::vector<Share> shares(holders.size());
  for (std::size_t i = 0; i < holders.size(); ++i) shares[i].x = holders[i];
  std::vector<u64> coeffs(threshold);
  for (std::size_t e = 0; e < kShareElements; ++e) {
    coeffs[0] = elements[e];
    for (std::size_t k = 1; k < threshold; ++k) coeffs[k] = RandomField();
    for (auto& s : shares) s.y[e] = EvalPoly(coeffs, s.x);
  }
  sodium_memzero(coeffs.data(), coeffs.size() * sizeof(u64));
  return shares;
}

core::Result<Key32> ShamirReconstruct(std::span<const Share> shares, std::size_t threshold,
                                      ShamirReport* report) {
  if (report != nullptr) *report = ShamirReport{};
  if (threshold < 1 || shares.size() < threshold) {
    return core::InvalidArgument(
        "need " + std::to_string(threshold) + " shares, have " + std::to_string(shares.size()),
        "ShamirReconstruct");
  }
  std::vector<u64> xs(shares.size());
  for (std::size_t i = 0; i < shares.size(); ++i) {
    xs[i] = shares[i].x;
    if (shares[i].x == 0) return core::InvalidArgument("share at point 0", "ShamirReconstruct");
    for (u64 y : shares[i].y) {
      if (y >= kP) return core::InvalidArgument("share element >= p", "ShamirReconstruct");
    }
  }
  {
    std::vector<u64> sorted = xs;
    std::sort(sorted.begin(), sorted.end());
    if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end()) {
      return core::InvalidArgument("repeated evaluation point", "ShamirReconstruct");
    }
  }
  const Lagrange base(std::span<const u64>(xs.data(), threshold));
  const std::vector<u64> at_zero = base.At(0);
  // The base polynomial evaluated at each further point: every t-subset agrees
  // exactly when every further share lies on it.
  std::vector<std::vector<u64>> at_extra;
  for (std::size_t k = threshold; k < shares.size(); ++k) at_extra.push_back(base.At(xs[k]));

  std::array<u64, kShareElements> secret{};
  bool consistent = true;
  for (std::size_t e = 0; e < kShareElements; ++e) {
    u64 s = 0;
    for (std::size_t i = 0; i < threshold; ++i) s = FAdd(s, FMul(at_zero[i], shares[i].y[e]));
    secret[e] = s;
    for (std::size_t k = threshold; k < shares.size() && consistent; ++k) {
      u64 v = 0;
      for (std::size_t i = 0; i < threshold; ++i) {
        v = FAdd(v, FMul(at_extra[k - threshold][i], shares[i].y[e]));
      }
      consistent = v == shares[k].y[e];
    }
  }
  if (!consistent) {
    if (report != nullptr) report->consistent = false;
    std::vector<bool> bad(shares.size(), false);
    std::vector<u64> ys(shares.size());
    for (std::size_t e = 0; e < kShareElements; ++e) {
      for (std::size_t i = 0; i < shares.size(); ++i) ys[i] = shares[i].y[e];
      auto poly = BerlekampWelch(xs, ys, threshold);
      if (!poly) {
        return core::Status(core::StatusCode::kDataLoss,
                            "shares disagree beyond what " + std::to_string(shares.size()) +
                                " shares at threshold " + std::to_string(threshold) +
                                " can correct",
                            "ShamirReconstruct");
      }
      secret[e] = (*poly)[0];
      for (std::size_t i = 0; i < shares.size(); ++i) {
        if (EvalPoly(*poly, xs[i]) != ys[i]) bad[i] = true;
      }
    }
    if (report != nullptr) {
      for (std::size_t i = 0; i < shares.size(); ++i) {
        if (bad[i]) report->bad_holders.push_back(shares[i].x);
      }
      std::sort(report->bad_holders.begin(), report->bad_holders.end());
    }
  }
  auto out = FieldToSecret(secret);
  if (!out) {
    return core::Status(core::StatusCode::kDataLoss,
                        "reconstructed value is not a 32-byte secret (wrong shares)",
                        "ShamirReconstruct");
  }
  return *out;
}

// ---- authenticated encryption -----------------------------------------------------------

namespace {

constexpr std::size_t kPlainBytes = 8 + 2 * kShareElements * 8;
static_assert(kSealedShareBytes == kPlainBytes + crypto_aead_chacha20poly1305_ietf_ABYTES);

void ShareNonceAndAd(std::uint64_t round, ParticipantId from, ParticipantId to,
                     std::uint8_t (&nonce)[crypto_aead_chacha20poly1305_ietf_NPUBBYTES],
                     std::string& ad) {
  // (from, to) differs between the two directions of a pair, and each
  // pair key exists for one round only: no nonce repeats under a key.
  std::memset(nonce, 0, sizeof nonce);
  PutU32(nonce, from);
  PutU32(nonce + 4, to);
  ad.assign(kShareLabel);
  std::uint8_t tail[16];
  PutU64(tail, round);
  PutU32(tail + 8, from);
  PutU32(tail + 12, to);
  ad.append(reinterpret_cast<const char*>(tail), sizeof tail);
}

}  // namespace

std::vector<std::uint8_t> SealShare(const Key32& key, std::uint64_t round,
                                    const SharePlaintext& plaintext) {
  std::uint8_t plain[kPlainBytes];
  PutU32(plain, plaintext.from);
  PutU32(plain + 4, plaintext.to);
  for (std::size_t e = 0; e < kShareElements; ++e) {
    PutU64(plain + 8 + 8 * e, plaintext.mask_key_share.y[e]);
    PutU64(plain + 8 + 8 * (kShareElements + e), plaintext.self_seed_share.y[e]);
  }
  std::uint8_t nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES];
  std::string ad;
  ShareNonceAndAd(round, plaintext.from, plaintext.to, nonce, ad);
  std::vector<std::uint8_t> out(kSealedShareBytes);
  unsigned long long out_len = 0;
  crypto_aead_chacha20poly1305_ietf_encrypt(out.data(), &out_len, plain, sizeof plain,
                                            reinterpret_cast<const std::uint8_t*>(ad.data()),
                                            ad.size(), nullptr, nonce, key.data());
  sodium_memzero(plain, sizeof plain);
  return out;
}

core::Result<SharePlaintext> OpenShare(const Key32& key, std::uint64_t round, ParticipantId from,
                                       ParticipantId to, std::span<const std::uint8_t> ciphertext) {
  const std::string where = "share " + std::to_string(from) + "->" + std::to_string(to);
  if (ciphertext.size() != kSealedShareBytes) {
    return core::Status(core::StatusCode::kUnauthenticated,
                        "sealed share is " + std::to_string(ciphertext.size()) + " bytes, not " +
                            std::to_string(kSealedShareBytes),
                        where);
  }
  std::uint8_t nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES];
  std::string ad;
  ShareNonceAndAd(round, from, to, nonce, ad);
  std::uint8_t plain[kPlainBytes];
  unsigned long long plain_len = 0;
  if (crypto_aead_chacha20poly1305_ietf_decrypt(
          plain, &plain_len, nullptr, ciphertext.data(), ciphertext.size(),
          reinterpret_cast<const std::uint8_t*>(ad.data()), ad.size(), nonce, key.data()) != 0) {
    return core::Status(core::StatusCode::kUnauthenticated, "sealed share failed authentication",
                        where);
  }
  SharePlaintext out;
  out.from = GetU32(plain);
  out.to = GetU32(plain + 4);
  out.mask_key_share.x = out.self_seed_share.x = to;
  for (std::size_t e = 0; e < kShareElements; ++e) {
    out.mask_key_share.y[e] = GetU64(plain + 8 + 8 * e);
    out.self_seed_share.y[e] = GetU64(plain + 8 + 8 * (kShareElements + e));
  }
  sodium_memzero(plain, sizeof plain);
  if (out.from != from || out.to != to) {
    return core::InvalidArgument("sealed share names other ids", where);
  }
  for (std::size_t e = 0; e < kShareElements; ++e) {
    if (out.mask_key_share.y[e] >= kP || out.self_seed_share.y[e] >= kP) {
      return core::InvalidArgument("sealed share holds an element >= p", where);
    }
  }
  return out;
}

}  // namespace fedrx::privacy
