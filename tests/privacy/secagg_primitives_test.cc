#include "services/privacy/secagg_primitives.h"

#include <gtest/gtest.h>
#include <sodium.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "services/privacy/secagg_protocol.h"

namespace fedrx::privacy {
namespace {

class SecAggPrimitivesTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(InitSecAggCrypto().ok()); }
};

Key32 Pattern(std::uint8_t start) {
  Key32 k{};
  for (std::size_t i = 0; i < k.size(); ++i) k[i] = static_cast<std::uint8_t>(start + 37 * i);
  return k;
}

// ---- key agreement ------------------------------------------------------------------------

TEST_F(SecAggPrimitivesTest, KeyAgreementGivesBothEndsTheSameKey) {
  const KeyPair a = GenerateKeyPair(), b = GenerateKeyPair();
  auto ab = AgreeKey(a.secret_key, a.public_key, b.public_key, KeyPurpose::kPairwiseMask, 3);
  auto ba = AgreeKey(b.secret_key, b.public_key, a.public_key, KeyPurpose::kPairwiseMask, 3);
  ASSERT_TRUE(ab.ok() && ba.ok());
  EXPECT_EQ(*ab, *ba);
  EXPECT_EQ(PublicKeyOf(a.secret_key), a.public_key);
  EXPECT_TRUE(IsClampedScalar(a.secret_key));
  // A key differing only in bits X25519 clamps away has the same public key:
  // the clamping check is what tells them apart.
  Key32 twin = a.secret_key;
  twin[0] |= 4;
  EXPECT_EQ(PublicKeyOf(twin), a.public_key);
  EXPECT_FALSE(IsClampedScalar(twin));
}

TEST_F(SecAggPrimitivesTest, KeyAgreementSeparatesPurposesAndRounds) {
  const KeyPair a = GenerateKeyPair(), b = GenerateKeyPair();
  auto mask = AgreeKey(a.secret_key, a.public_key, b.public_key, KeyPurpose::kPairwiseMask, 3);
  auto enc = AgreeKey(a.secret_key, a.public_key, b.public_key, KeyPurpose::kShareEncryption, 3);
  auto next = AgreeKey(a.secret_key, a.public_key, b.public_key, KeyPurpose::kPairwiseMask, 4);
  ASSERT_TRUE(mask.ok() && enc.ok() && next.ok());
  EXPECT_NE(*mask, *enc);
  EXPECT_NE(*mask, *next);
}

TEST_F(SecAggPrimitivesTest, KeyAgreementRejectsLowOrderPoint) {
  const KeyPair a = GenerateKeyPair();
  const Key32 zero{};
  auto k = AgreeKey(a.secret_key, a.public_key, zero, KeyPurpose::kPairwiseMask, 1);
  EXPECT_EQ(k.status().code(), core::StatusCode::kInvalidArgument);
}

// ---- mask generator -------------------------------------------------------------------------

TEST_F(SecAggPrimitivesTest, MaskIsTheChaCha20KeystreamAcrossChunks) {
  const Key32 seed = Pattern(5);
  const std::size_t n = 3 * 4096 + 17;  // crosses the generator's chunk boundaries
  std::vector<std::uint32_t> acc(n, 0);
  AccumulateMask(seed, acc);
  std::vector<std::uint8_t> stream(n * 4);
  const std::uint8_t nonce[crypto_stream_chacha20_ietf_NONCEBYTES] = {};
  crypto_stream_chacha20_ietf(stream.data(), stream.size(), nonce, seed.data());
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint32_t w = stream[4 * i] | (stream[4 * i + 1] << 8) | (stream[4 * i + 2] << 16) |
                            (std::uint32_t{stream[4 * i + 3]} << 24);
    ASSERT_EQ(acc[i], w) << "word " << i;
  }
}

TEST_F(SecAggPrimitivesTest, AddingThenSubtractingAMaskRestoresTheVector) {
  std::vector<std::uint32_t> v(10000);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<std::uint32_t>(i * 2654435761u);
  const auto original = v;
  AccumulateMask(Pattern(1), v);
  std::size_t same = 0;
  for (std::size_t i = 0; i < v.size(); ++i) same += v[i] == original[i];
  EXPECT_LT(same, 5u);
  AccumulateMask(Pattern(1), v, /*subtract=*/true);
  EXPECT_EQ(v, original);
}

TEST_F(SecAggPrimitivesTest, ManyMasksOnManyThreadsEqualOneAtATime) {
  std::vector<MaskTerm> terms;
  for (std::uint8_t i = 0; i < 5; ++i) terms.push_back({Pattern(i), i % 2 == 1});
  const std::size_t n = 1000003;  // not a multiple of a block or a chunk
  std::vector<std::uint32_t> expected(n, 7);
  for (const auto& t : terms) AccumulateMask(t.seed, expected, t.subtract);
  for (unsigned threads : {1u, 2u, 3u, 8u}) {
    std::vector<std::uint32_t> got(n, 7);
    AccumulateMasks(terms, got, threads);
    EXPECT_EQ(got, expected) << threads << " threads";
  }
}

TEST_F(SecAggPrimitivesTest, CommitmentBindsSeedRoundAndOwner) {
  const Key32 s = Pattern(9);
  EXPECT_EQ(CommitSeed(s, 1, 2), CommitSeed(s, 1, 2));
  EXPECT_NE(CommitSeed(s, 1, 2), CommitSeed(s, 1, 3));
  EXPECT_NE(CommitSeed(s, 1, 2), CommitSeed(s, 2, 2));
  EXPECT_NE(CommitSeed(s, 1, 2), CommitSeed(Pattern(10), 1, 2));
}

// ---- fixed point ----------------------------------------------------------------------------

TEST_F(SecAggPrimitivesTest, FixedPointDefaultsSupport4095SitesWithinHalfAStep) {
  const FixedPointEncoding enc;  // clip 8, 16 bits
  EXPECT_EQ(enc.Bound(), 1u << 19);
  EXPECT_EQ(enc.MaxSites(), 4095u);
  EXPECT_DOUBLE_EQ(enc.MaxErrorPerSite(), 0.5 / 65536);
  EXPECT_TRUE(enc.Validate(4095).ok());
  EXPECT_EQ(enc.Validate(4096).code(), core::StatusCode::kInvalidArgument);
  for (double v : {0.0, 1e-6, -1e-6, 0.123456789, -7.99999, 3.14159265}) {
    EXPECT_LE(std::abs(enc.Decode(enc.Encode(v)) - v), enc.MaxErrorPerSite()) << v;
  }
}

TEST_F(SecAggPrimitivesTest, FixedPointClipsAndMapsNaNToZero) {
  const FixedPointEncoding enc{2.0, 10};
  EXPECT_DOUBLE_EQ(enc.Decode(enc.Encode(5.0)), 2.0);
  EXPECT_DOUBLE_EQ(enc.Decode(enc.Encode(-1e30)), -2.0);
  EXPECT_DOUBLE_EQ(enc.Decode(enc.Encode(std::numeric_limits<double>::quiet_NaN())), 0.0);
  EXPECT_DOUBLE_EQ(enc.Decode(enc.Encode(0.5 / 1024 + 1e-9)), 1.0 / 1024);  // to nearest
}

TEST_F(SecAggPrimitivesTest, FixedPointSumOfMaxSitesAtTheClipDoesNotWrap) {
  const FixedPointEncoding enc;
  std::uint32_t hi = 0, lo = 0;
  for (std::uint64_t i = 0; i < enc.MaxSites(); ++i) {
    hi += enc.Encode(8.0);
    lo += enc.Encode(-8.0);
  }
  EXPECT_DOUBLE_EQ(enc.Decode(hi), 8.0 * 4095);
  EXPECT_DOUBLE_EQ(enc.Decode(lo), -8.0 * 4095);
}

// ---- Shamir ---------------------------------------------------------------------------------

TEST_F(SecAggPrimitivesTest, ShamirReconstructsFromEveryTSubset) {
  const Key32 secret = RandomSeed();
  const std::vector<ParticipantId> holders = {3, 5, 8, 13, 21, 34, 55};
  auto shares = ShamirSplit(secret, holders, 4);
  ASSERT_TRUE(shares.ok());
  int subsets = 0;
  for (unsigned mask = 0; mask < (1u << 7); ++mask) {
    if (__builtin_popcount(mask) != 4) continue;
    std::vector<Share> subset;
    for (int i = 0; i < 7; ++i) {
      if (mask & (1u << i)) subset.push_back((*shares)[i]);
    }
    auto got = ShamirReconstruct(subset, 4);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, secret);
    ++subsets;
  }
  EXPECT_EQ(subsets, 35);
}

TEST_F(SecAggPrimitivesTest, ShamirWithAllSharesIsConsistent) {
  const Key32 secret = Pattern(77);
  std::vector<ParticipantId> holders;
  for (ParticipantId i = 1; i <= 100; ++i) holders.push_back(i);
  auto shares = ShamirSplit(secret, holders, 51);
  ASSERT_TRUE(shares.ok());
  ShamirReport report;
  auto got = ShamirReconstruct(*shares, 51, &report);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, secret);
  EXPECT_TRUE(report.consistent);
  EXPECT_TRUE(report.bad_holders.empty());
}

TEST_F(SecAggPrimitivesTest, ShamirLocatesBadSharesAndStillRecoversTheSecret) {
  const Key32 secret = Pattern(1);
  const std::vector<ParticipantId> holders = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  auto shares = ShamirSplit(secret, holders, 4);
  ASSERT_TRUE(shares.ok());
  (*shares)[0].y[2] = ((*shares)[0].y[2] + 1) % kShamirPrime;  // in the base t-subset
  (*shares)[8].y[4] = ((*shares)[8].y[4] + 12345) % kShamirPrime;
  ShamirReport report;
  auto got = ShamirReconstruct(*shares, 4, &report);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, secret);
  EXPECT_FALSE(report.consistent);
  EXPECT_EQ(report.bad_holders, (std::vector<ParticipantId>{1, 9}));
}

TEST_F(SecAggPrimitivesTest, ShamirTooManyBadSharesIsDataLoss) {
  const std::vector<ParticipantId> holders = {1, 2, 3, 4, 5, 6, 7};
  auto shares = ShamirSplit(Pattern(2), holders, 4);
  ASSERT_TRUE(shares.ok());
  for (int i : {1, 3, 5}) (*shares)[i].y[0] = ((*shares)[i].y[0] + 99 * i) % kShamirPrime;
  ShamirReport report;
  auto got = ShamirReconstruct(*shares, 4, &report);
  EXPECT_EQ(got.status().code(), core::StatusCode::kDataLoss);
  EXPECT_FALSE(report.consistent);
}

TEST_F(SecAggPrimitivesTest, ShamirWithExactlyTSharesCannotSeeABadShare) {
  // The documented limit: t shares fit some polynomial whatever they are; the
  // protocol's commitments catch this case instead.
  const Key32 secret = Pattern(3);
  const std::vector<ParticipantId> holders = {1, 2, 3, 4, 5};
  auto shares = ShamirSplit(secret, holders, 5);
  ASSERT_TRUE(shares.ok());
  (*shares)[2].y[0] = ((*shares)[2].y[0] + 1) % kShamirPrime;
  ShamirReport report;
  auto got = ShamirReconstruct(*shares, 5, &report);
  if (got.ok()) {
    EXPECT_NE(*got, secret);  // or kDataLoss: not a 32-byte secret
  }
  EXPECT_TRUE(report.consistent);
}

TEST_F(SecAggPrimitivesTest, ShamirRejectsBadInput) {
  const std::vector<ParticipantId> repeated = {1, 2, 2};
  EXPECT_EQ(ShamirSplit(Pattern(0), repeated, 2).status().code(),
            core::StatusCode::kInvalidArgument);
  const std::vector<ParticipantId> zero = {0, 1, 2};
  EXPECT_EQ(ShamirSplit(Pattern(0), zero, 2).status().code(), core::StatusCode::kInvalidArgument);
  const std::vector<ParticipantId> ok = {1, 2, 3};
  EXPECT_EQ(ShamirSplit(Pattern(0), ok, 4).status().code(), core::StatusCode::kInvalidArgument);
  auto shares = ShamirSplit(Pattern(0), ok, 3);
  ASSERT_TRUE(shares.ok());
  EXPECT_EQ(ShamirReconstruct(std::span(shares->data(), 2), 3).status().code(),
            core::StatusCode::kInvalidArgument);
  (*shares)[1].x = (*shares)[0].x;
  EXPECT_EQ(ShamirReconstruct(*shares, 3).status().code(), core::StatusCode::kInvalidArgument);
}

// ---- authenticated encryption -----------------------------------------------------------------

SharePlaintext SamplePlaintext() {
  SharePlaintext p;
  p.from = 4;
  p.to = 9;
  p.mask_key_share.x = p.self_seed_share.x = 9;
  for (std::size_t e = 0; e < kShareElements; ++e) {
    p.mask_key_share.y[e] = 1000 + e;
    p.self_seed_share.y[e] = kShamirPrime - 1 - e;
  }
  return p;
}

TEST_F(SecAggPrimitivesTest, SealedShareOpensOnlyForTheRightPairAndRound) {
  const Key32 key = Pattern(40);
  const auto sealed = SealShare(key, 12, SamplePlaintext());
  ASSERT_EQ(sealed.size(), kSealedShareBytes);
  auto opened = OpenShare(key, 12, 4, 9, sealed);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(opened->mask_key_share.y, SamplePlaintext().mask_key_share.y);
  EXPECT_EQ(opened->self_seed_share.y, SamplePlaintext().self_seed_share.y);
  EXPECT_EQ(opened->self_seed_share.x, 9u);
  EXPECT_EQ(OpenShare(key, 13, 4, 9, sealed).status().code(), core::StatusCode::kUnauthenticated);
  EXPECT_EQ(OpenShare(key, 12, 9, 4, sealed).status().code(), core::StatusCode::kUnauthenticated);
  EXPECT_EQ(OpenShare(Pattern(41), 12, 4, 9, sealed).status().code(),
            core::StatusCode::kUnauthenticated);
}

TEST_F(SecAggPrimitivesTest, TamperedSealedShareFailsAuthentication) {
  const Key32 key = Pattern(40);
  for (std::size_t at : {std::size_t{0}, std::size_t{30}, kSealedShareBytes - 1}) {
    auto sealed = SealShare(key, 12, SamplePlaintext());
    sealed[at] ^= 0x01;
    EXPECT_EQ(OpenShare(key, 12, 4, 9, sealed).status().code(), core::StatusCode::kUnauthenticated)
        << "byte " << at;
  }
  auto sealed = SealShare(key, 12, SamplePlaintext());
  sealed.pop_back();
  EXPECT_EQ(OpenShare(key, 12, 4, 9, sealed).status().code(), core::StatusCode::kUnauthenticated);
}

// ---- neighbour graph ------------------------------------------------------------------------

TEST_F(SecAggPrimitivesTest, HararyGraphIsSymmetricKRegularAndSeedDetermined) {
  std::vector<ParticipantId> u1;
  for (ParticipantId i = 1; i <= 30; ++i) u1.push_back(i * 3);
  const NeighbourGraph g(u1, 6, Pattern(8)), same(u1, 6, Pattern(8)), other(u1, 6, Pattern(9));
  ASSERT_FALSE(g.complete());
  bool differs = false;
  for (ParticipantId u : u1) {
    const auto n = g.Of(u);
    EXPECT_EQ(n.size(), 6u);
    EXPECT_EQ(n, same.Of(u));
    differs |= n != other.Of(u);
    for (ParticipantId v : u1) {
      const bool in = std::binary_search(n.begin(), n.end(), v);
      EXPECT_EQ(in, g.Adjacent(u, v));
      EXPECT_EQ(g.Adjacent(u, v), g.Adjacent(v, u));
    }
  }
  EXPECT_TRUE(differs);
  const NeighbourGraph complete(u1, 0, Pattern(8));
  EXPECT_TRUE(complete.complete());
  EXPECT_EQ(complete.Of(3).size(), 29u);
}

}  // namespace
}  // namespace fedrx::privacy
