// Association statistics between clinical labels (SIDER organ classes,
// ClinTox) and preclinical labels (Tox21, ToxCast): per-site 2x2 counts that
// are summed across sites (as plain integers, so secure aggregation can sum
// them), and, on the summed counts, odds ratios with confidence intervals,
// Fisher's exact p-values and Benjamini-Hochberg q-values. Pure functions;
// thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "services/core/status.h"

namespace fedrx::reverse {

// One (clinical label, preclinical label) pair, e.g. ("Hepatobiliary
// disorders", "SR-MMP").
struct PairKey {
  std::string clinical;
  std::string preclinical;
  bool operator==(const PairKey&) const = default;
};

// The 2x2 table of one pair over compounds that carry both labels:
//                  preclinical +   preclinical -
//   clinical +          a               b
//   clinical -          c               d
struct PairCounts {
  std::uint64_t a = 0;  // both positive
  std::uint64_t b = 0;  // clinical positive, preclinical negative
  std::uint64_t c = 0;  // clinical negative, preclinical positive
  std::uint64_t d = 0;  // both negative

  std::uint64_t total() const { return a + b + c + d; }
  PairCounts& operator+=(const PairCounts& o);
  bool operator==(const PairCounts&) const = default;
};

// Every clinical x preclinical pair, clinical-major.
std::vector<PairKey> AllPairs(const std::vector<std::string>& clinical_labels,
                              const std::vector<std::string>& preclinical_labels);

// One site's labels: the label names, and per compound (by InChIKey) one value
// per name, in the same order; nullopt where the compound was not measured.
struct LabelTable {
  std::vector<std::string> names;
  std::map<std::string, std::vector<std::optional<bool>>> by_inchikey;
};

// Site side: the 2x2 counts of each pair in `pairs` over the compounds present
// in both tables (matched by InChIKey). A compound missing either label of a
// pair does not count for that pair. InvalidArgument (naming the field) when a
// pair names a label absent from its table, a row's size differs from its
// names, or a key is not an InChIKey (14-10-1 upper-case letters).
core::Result<std::vector<PairCounts>> CountPairs(const std::vector<PairKey>& pairs,
                                                 const LabelTable& clinical,
                                                 const LabelTable& preclinical);

// Four integers per pair (a, b, c, d), pair after pair: the vector a site
// contributes to the secure sum. Unflatten inverts it; InvalidArgument if the
// size is not 4 * expected_pairs.
std::vector<std::uint64_t> Flatten(const std::vector<PairCounts>& counts);
core::Result<std::vector<PairCounts>> Unflatten(std::span<const std::uint64_t> flat,
                                                std::size_t expected_pairs);
// The same as 32-bit words for the secure-aggregation ring (mod 2^32):
// InvalidArgument if a count does not fit. The caller must keep the summed
// counts below 2^32 (the sum wraps silently otherwise; 4e9 compounds).
core::Result<std::vector<std::uint32_t>> FlattenU32(const std::vector<PairCounts>& counts);
core::Result<std::vector<PairCounts>> UnflattenU32(std::span<const std::uint32_t> flat,
                                                   std::size_t expected_pairs);

// Sums per-site count vectors pair by pair (what the secure sum computes, for
// tests and for the non-secure path). InvalidArgument if sizes differ.
core::Result<std::vector<PairCounts>> SumCounts(const std::vector<std::vector<PairCounts>>& sites);

// More compounds than any library holds: tables above it (a cell or the
// total) are rejected, which bounds the exact test's work and keeps every sum
// of cells far from overflow.
inline constexpr std::uint64_t kMaxTableTotal = 100'000'000;

// Woolf's log odds ratio with a Wald interval:
//   log OR = ln(a d / (b c)),  SE = sqrt(1/a + 1/b + 1/c + 1/d),
//   CI = exp(log OR -/+ z SE), z the normal quantile of (1 + confidence) / 2.
// When any cell is 0, 0.5 is added to all four cells first (Haldane-Anscombe
// correction), so the estimate and interval are finite; `corrected` says so.
struct OddsRatio {
  double estimate = 0;
  double ci_low = 0;
  double ci_high = 0;
  double log_se = 0;
  bool corrected = false;
};
// InvalidArgument when the table is empty or above kMaxTableTotal, or
// confidence is not in (0, 1).
core::Result<OddsRatio> ComputeOddsRatio(const PairCounts& counts, double confidence = 0.95);

// Fisher's exact test, two-sided, as R's fisher.test computes it for a 2x2
// table: the sum of the hypergeometric probabilities (margins fixed) of all
// tables no more probable than the observed one, "no more" with R's relative
// tolerance 1 + 1e-7; clamped to [0, 1]. InvalidArgument when the table is
// empty or above kMaxTableTotal.
core::Result<double> FisherExactTwoSided(const PairCounts& counts);

// Benjamini-Hochberg adjusted p-values as R's p.adjust(p, method = "BH"):
// q_(i) = min_{j >= i} min(1, n p_(j) / j) over p sorted ascending, returned
// in the input order. InvalidArgument when empty, or a p is NaN or outside
// [0, 1] (naming its index).
core::Result<std::vector<double>> BenjaminiHochberg(const std::vector<double>& p);

// Below this many compounds in any margin of the 2x2 table (clinical
// positives a+b, clinical negatives c+d, preclinical positives a+c,
// preclinical negatives b+d) a pair is "insufficient evidence": no odds ratio
// or p-value is reported for it and it is left out of the FDR family.
inline constexpr std::uint64_t kMinMarginCount = 5;

// The statistics of one pair on the summed counts.
struct Association {
  PairKey pair;
  PairCounts counts;
  bool sufficient_evidence = false;
  std::string insufficient_reason;  // when !sufficient_evidence
  OddsRatio odds_ratio;             // when sufficient_evidence
  double p_value = 1;               // when sufficient_evidence
  double q_value = 1;               // BH over the sufficient pairs of this call
};

// Statistics of every pair; q-values are adjusted over all pairs of the call
// with sufficient evidence (one FDR family). InvalidArgument when sizes differ
// or a table is above kMaxTableTotal.
core::Result<std::vector<Association>> Analyze(const std::vector<PairKey>& pairs,
                                               const std::vector<PairCounts>& summed,
                                               std::uint64_t min_margin = kMinMarginCount);

}  // namespace fedrx::reverse
