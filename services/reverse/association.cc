#include "services/reverse/association.h"

#include <algorithm>
#include <boost/math/distributions/normal.hpp>
#include <cctype>
#include <cmath>
#include <limits>
#include <numeric>

namespace fedrx::reverse {
namespace {

bool IsInchiKey(const std::string& key) {
  // 14 letters (connectivity hash), '-', 10 letters (stereo hash, flag,
  // version), '-', 1 letter (protonation).
  if (key.size() != 27 || key[14] != '-' || key[25] != '-') return false;
  for (std::size_t i = 0; i < key.size(); ++i) {
    if (i == 14 || i == 25) continue;
    if (key[i] < 'A' || key[i] > 'Z') return false;
  }
  return true;
}

core::Status CheckTable(const LabelTable& table, const std::string& where) {
  for (const auto& [key, row] : table.by_inchikey) {
    if (!IsInchiKey(key)) {
      return core::InvalidArgument("'" + key + "' is not an InChIKey", where + ".by_inchikey");
    }
    if (row.size() != table.names.size()) {
      return core::InvalidArgument("compound " + key + " has " + std::to_string(row.size()) +
                                       " labels, expected " + std::to_string(table.names.size()),
                                   where + ".by_inchikey[" + key + "]");
    }
  }
  return core::Status::Ok();
}

core::Result<std::size_t> IndexOf(const LabelTable& table, const std::string& name,
                                  const std::string& where) {
  auto it = std::find(table.names.begin(), table.names.end(), name);
  if (it == table.names.end()) {
    return core::InvalidArgument("no label named '" + name + "'", where);
  }
  return static_cast<std::size_t>(it - table.names.begin());
}

template <typename Word>
core::Result<std::vector<PairCounts>> UnflattenWords(std::span<const Word> flat,
                                                     std::size_t expected_pairs) {
  if (flat.size() != 4 * expected_pairs) {
    return core::InvalidArgument("flattened counts have " + std::to_string(flat.size()) +
                                     " words, expected 4 x " + std::to_string(expected_pairs),
                                 "Unflatten.flat");
  }
  std::vector<PairCounts> out(expected_pairs);
  for (std::size_t i = 0; i < expected_pairs; ++i) {
    out[i] = {flat[4 * i], flat[4 * i + 1], flat[4 * i + 2], flat[4 * i + 3]};
  }
  return out;
}

core::Status CheckTableNotEmpty(const PairCounts& t, const char* where) {
  for (std::uint64_t v : {t.a, t.b, t.c, t.d}) {
    if (v > kMaxTableTotal) {
      return core::InvalidArgument("a count of " + std::to_string(v) + " exceeds the maximum of " +
                                       std::to_string(kMaxTableTotal) + " compounds",
                                   where);
    }
  }
  if (t.total() > kMaxTableTotal) {
    return core::InvalidArgument("the table holds " + std::to_string(t.total()) +
                                     " compounds, more than " + std::to_string(kMaxTableTotal),
                                 where);
  }
  if (t.total() == 0) return core::InvalidArgument("the 2x2 table is empty", where);
  return core::Status::Ok();
}

}  // namespace

PairCounts& PairCounts::operator+=(const PairCounts& o) {
  a += o.a;
  b += o.b;
  c += o.c;
  d += o.d;
  return *this;
}

std::vector<PairKey> AllPairs(const std::vector<std::string>& clinical_labels,
                              const std::vector<std::string>& preclinical_labels) {
  std::vector<PairKey> out;
  out.reserve(clinical_labels.size() * preclinical_labels.size());
  for (const auto& c : clinical_labels) {
    for (const auto& p : preclinical_labels) out.push_back({c, p});
  }
  return out;
}

core::Result<std::vector<PairCounts>> CountPairs(const std::vector<PairKey>& pairs,
                                                 const LabelTable& clinical,
                                                 const LabelTable& preclinical) {
  FEDRX_RETURN_IF_ERROR(CheckTable(clinical, "CountPairs.clinical"));
  FEDRX_RETURN_IF_ERROR(CheckTable(preclinical, "CountPairs.preclinical"));
  std::vector<std::pair<std::size_t, std::size_t>> columns;
  columns.reserve(pairs.size());
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    const std::string where = "CountPairs.pairs[" + std::to_string(i) + "]";
    FEDRX_ASSIGN_OR_RETURN(std::size_t ci,
                           IndexOf(clinical, pairs[i].clinical, where + ".clinical"));
    FEDRX_ASSIGN_OR_RETURN(std::size_t pi,
                           IndexOf(preclinical, pairs[i].preclinical, where + ".preclinical"));
    columns.emplace_back(ci, pi);
  }
  std::vector<PairCounts> counts(pairs.size());
  // Both maps are ordered by key: walk them together to match compounds.
  auto c_it = clinical.by_inchikey.begin();
  auto p_it = preclinical.by_inchikey.begin();
  while (c_it != clinical.by_inchikey.end() && p_it != preclinical.by_inchikey.end()) {
    if (c_it->first < p_it->first) {
      ++c_it;
    } else if (p_it->first < c_it->first) {
      ++p_it;
    } else {
      for (std::size_t i = 0; i < columns.size(); ++i) {
        const auto& cl = c_it->second[columns[i].first];
        const auto& pr = p_it->second[columns[i].second];
        if (!cl || !pr) continue;
        PairCounts& t = counts[i];
        if (*cl) {
          ++(*pr ? t.a : t.b);
        } else {
          ++(*pr ? t.c : t.d);
        }
      }
      ++c_it;
      ++p_it;
    }
  }
  return counts;
}

std::vector<std::uint64_t> Flatten(const std::vector<PairCounts>& counts) {
  std::vector<std::uint64_t> flat;
  flat.reserve(4 * counts.size());
  for (const auto& t : counts) flat.insert(flat.end(), {t.a, t.b, t.c, t.d});
  return flat;
}

core::Result<std::vector<PairCounts>> Unflatten(std::span<const std::uint64_t> flat,
                                                std::size_t expected_pairs) {
  return UnflattenWords(flat, expected_pairs);
}

core::Result<std::vector<std::uint32_t>> FlattenU32(const std::vector<PairCounts>& counts) {
  std::vector<std::uint32_t> flat;
  flat.reserve(4 * counts.size());
  for (std::size_t i = 0; i < counts.size(); ++i) {
    const auto& t = counts[i];
    for (std::uint64_t v : {t.a, t.b, t.c, t.d}) {
      if (v > std::numeric_limits<std::uint32_t>::max()) {
        return core::InvalidArgument("count " + std::to_string(v) + " does not fit 32 bits",
                                     "FlattenU32.counts[" + std::to_string(i) + "]");
      }
      flat.push_back(static_cast<std::uint32_t>(v));
    }
  }
  return flat;
}

core::Result<std::vector<PairCounts>> UnflattenU32(std::span<const std::uint32_t> flat,
                                                   std::size_t expected_pairs) {
  return UnflattenWords(flat, expected_pairs);
}

core::Result<std::vector<PairCounts>> SumCounts(const std::vector<std::vector<PairCounts>>& sites) {
  if (sites.empty()) return core::InvalidArgument("no sites to sum", "SumCounts.sites");
  std::vector<PairCounts> sum(sites[0].size());
  for (std::size_t s = 0; s < sites.size(); ++s) {
    if (sites[s].size() != sum.size()) {
      return core::InvalidArgument("site has " + std::to_string(sites[s].size()) +
                                       " pairs, the first has " + std::to_string(sum.size()),
                                   "SumCounts.sites[" + std::to_string(s) + "]");
    }
    for (std::size_t i = 0; i < sum.size(); ++i) sum[i] += sites[s][i];
  }
  return sum;
}

core::Result<OddsRatio> ComputeOddsRatio(const PairCounts& counts, double confidence) {
  FEDRX_RETURN_IF_ERROR(CheckTableNotEmpty(counts, "ComputeOddsRatio.counts"));
  if (!(confidence > 0 && confidence < 1)) {
    return core::InvalidArgument("confidence must be in (0, 1)", "ComputeOddsRatio.confidence");
  }
  OddsRatio out;
  double a = static_cast<double>(counts.a), b = static_cast<double>(counts.b);
  double c = static_cast<double>(counts.c), d = static_cast<double>(counts.d);
  if (counts.a == 0 || counts.b == 0 || counts.c == 0 || counts.d == 0) {
    a += 0.5;
    b += 0.5;
    c += 0.5;
    d += 0.5;
    out.corrected = true;
  }
  // Logs of each cell rather than of the products: no overflow for large counts.
  const double log_or = std::log(a) + std::log(d) - std::log(b) - std::log(c);
  out.log_se = std::sqrt(1 / a + 1 / b + 1 / c + 1 / d);
  const double z =
      boost::math::quantile(boost::math::normal_distribution<double>(), (1 + confidence) / 2);
  out.estimate = std::exp(log_or);
  out.ci_low = std::exp(log_or - z * out.log_se);
  out.ci_high = std::exp(log_or + z * out.log_se);
  return out;
}

core::Result<double> FisherExactTwoSided(const PairCounts& counts) {
  FEDRX_RETURN_IF_ERROR(CheckTableNotEmpty(counts, "FisherExactTwoSided.counts"));
  // Margins as R names them: x = a, m = first column (preclinical +),
  // n = second column, k = first row (clinical +).
  const double m = static_cast<double>(counts.a + counts.c);
  const double n = static_cast<double>(counts.b + counts.d);
  const double k = static_cast<double>(counts.a + counts.b);
  const std::uint64_t lo =
      counts.a + counts.b > counts.b + counts.d ? (counts.a + counts.b) - (counts.b + counts.d) : 0;
  const std::uint64_t hi = std::min(counts.a + counts.b, counts.a + counts.c);
  if (lo == hi) return 1.0;
  // Hypergeometric weights relative to the mode, from the ratio
  // P(x+1)/P(x) = (k-x)(m-x) / ((x+1)(n-k+x+1)): no log-gamma cancellation, so
  // the weights keep near full precision even for large counts. They differ
  // from R's exp(logdc - max(logdc)) only by rounding. Walked twice (to the
  // observed table, then over the support) in constant memory.
  auto up = [&](double w, std::uint64_t x) {  // w(x+1) from w(x)
    const double xd = static_cast<double>(x);
    return w * ((k - xd) * (m - xd)) / ((xd + 1) * (n - k + xd + 1));
  };
  auto down = [&](double w, std::uint64_t x) {  // w(x-1) from w(x)
    const double xd = static_cast<double>(x - 1);
    return w * ((xd + 1) * (n - k + xd + 1)) / ((k - xd) * (m - xd));
  };
  std::uint64_t mode = static_cast<std::uint64_t>(std::floor((k + 1) * (m + 1) / (m + n + 2)));
  mode = std::clamp(mode, lo, hi);
  double observed = 1;
  for (std::uint64_t x = mode; x < counts.a; ++x) observed = up(observed, x);
  for (std::uint64_t x = mode; x > counts.a; --x) observed = down(observed, x);
  const double threshold = observed * (1 + 1e-7);
  double total = 1, tail = 1 <= threshold ? 1 : 0;
  double w = 1;
  for (std::uint64_t x = mode; x < hi && w > 0; ++x) {
    w = up(w, x);
    total += w;
    if (w <= threshold) tail += w;
  }
  w = 1;
  for (std::uint64_t x = mode; x > lo && w > 0; --x) {
    w = down(w, x);
    total += w;
    if (w <= threshold) tail += w;
  }
  return std::clamp(tail / total, 0.0, 1.0);
}

core::Result<std::vector<double>> BenjaminiHochberg(const std::vector<double>& p) {
  if (p.empty()) return core::InvalidArgument("no p-values", "BenjaminiHochberg.p");
  for (std::size_t i = 0; i < p.size(); ++i) {
    if (!(p[i] >= 0 && p[i] <= 1)) {
      return core::InvalidArgument("p-value " + std::to_string(p[i]) + " is not in [0, 1]",
                                   "BenjaminiHochberg.p[" + std::to_string(i) + "]");
    }
  }
  const std::size_t n = p.size();
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  // Descending p, ties in input order: R's order(p, decreasing = TRUE) is
  // stable, and with ties the cumulative minimum gives the same q either way.
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t x, std::size_t y) { return p[x] > p[y]; });
  std::vector<double> q(n);
  double running = 1;
  for (std::size_t r = 0; r < n; ++r) {
    const double rank = static_cast<double>(n - r);  // 1-based rank in ascending order
    running = std::min(running, static_cast<double>(n) / rank * p[order[r]]);
    q[order[r]] = std::min(1.0, running);
  }
  return q;
}

core::Result<std::vector<Association>> Analyze(const std::vector<PairKey>& pairs,
                                               const std::vector<PairCounts>& summed,
                                               std::uint64_t min_margin) {
  if (pairs.size() != summed.size()) {
    return core::InvalidArgument("there are " + std::to_string(pairs.size()) + " pairs but " +
                                     std::to_string(summed.size()) + " count tables",
                                 "Analyze.summed");
  }
  std::vector<Association> out(pairs.size());
  std::vector<double> p_values;
  std::vector<std::size_t> tested;
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    Association& row = out[i];
    row.pair = pairs[i];
    row.counts = summed[i];
    const PairCounts& t = summed[i];
    if (t.total() > 0) {
      core::Status bounded = CheckTableNotEmpty(t, "Analyze.summed");
      if (!bounded.ok()) {
        return core::InvalidArgument(bounded.message(),
                                     "Analyze.summed[" + std::to_string(i) + "]");
      }
    }
    const std::pair<const char*, std::uint64_t> margins[] = {{"clinical positives", t.a + t.b},
                                                             {"clinical negatives", t.c + t.d},
                                                             {"preclinical positives", t.a + t.c},
                                                             {"preclinical negatives", t.b + t.d}};
    for (const auto& [what, count] : margins) {
      if (count < min_margin) {
        row.insufficient_reason = "insufficient evidence: " + std::to_string(count) + " " + what +
                                  " (minimum " + std::to_string(min_margin) + ")";
        break;
      }
    }
    if (!row.insufficient_reason.empty() || t.total() == 0) {
      if (row.insufficient_reason.empty())
        row.insufficient_reason = "insufficient evidence: no compounds";
      continue;
    }
    row.sufficient_evidence = true;
    FEDRX_ASSIGN_OR_RETURN(row.odds_ratio, ComputeOddsRatio(t));
    FEDRX_ASSIGN_OR_RETURN(row.p_value, FisherExactTwoSided(t));
    p_values.push_back(row.p_value);
    tested.push_back(i);
  }
  if (!p_values.empty()) {
    FEDRX_ASSIGN_OR_RETURN(std::vector<double> q, BenjaminiHochberg(p_values));
    for (std::size_t j = 0; j < tested.size(); ++j) out[tested[j]].q_value = q[j];
  }
  return out;
}

}  // namespace fedrx::reverse
