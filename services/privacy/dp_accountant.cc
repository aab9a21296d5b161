#include "services/privacy/dp_accountant.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <string>

namespace fedrx::privacy {
namespace {

using Real = long double;

constexpr Real kNegInf = -std::numeric_limits<Real>::infinity();

// log(exp(a) + exp(b)).
Real LogAdd(Real a, Real b) {
  if (a == kNegInf) return b;
  if (b == kNegInf) return a;
  const Real hi = std::max(a, b);
  return hi + std::log1p(std::exp(std::min(a, b) - hi));
}

// log(erfc(x)). erfcl underflows near x = 106; past that the asymptotic
// series erfc(x) ~ exp(-x^2) / (x sqrt(pi)) * (1 - 1/(2x^2) + 3/(4x^4) - ...)
// is exact to long double precision.
Real LogErfc(Real x) {
  if (x < 25) return std::log(std::erfc(x));
  const Real x2 = x * x;
  const Real series = 1 - 1 / (2 * x2) + 3 / (4 * x2 * x2) - 15 / (8 * x2 * x2 * x2);
  return -x2 - std::log(x) - 0.5L * std::log(std::numbers::pi_v<Real>) + std::log(series);
}

// log |binom(alpha, k)| for real alpha >= 0 and integer k >= 0, and its sign.
// binom(alpha, k) = prod_{j<k} (alpha - j) / (j + 1): one negative factor for
// each j > alpha, so for fractional alpha the sign alternates once k > alpha + 1.
Real LogAbsBinom(Real alpha, std::uint64_t k, int& sign) {
  const Real kk = static_cast<Real>(k);
  const Real floor_alpha = std::floor(alpha);
  const std::int64_t negatives =
      std::max<std::int64_t>(0, static_cast<std::int64_t>(k) - static_cast<std::int64_t>(floor_alpha) - 1);
  sign = negatives % 2 == 0 ? 1 : -1;
  return std::lgamma(alpha + 1) - std::lgamma(kk + 1) - std::lgamma(alpha - kk + 1);
}

// log A_alpha for integer alpha (Mironov et al. 2019, Sec. 3.3):
//   A = sum_{k=0}^{alpha} binom(alpha, k) (1-q)^{alpha-k} q^k exp((k^2 - k) / (2 sigma^2)).
Real LogAInteger(Real q, Real sigma, std::uint64_t alpha) {
  const Real log_q = std::log(q), log_1mq = std::log1p(-q);
  const Real a = static_cast<Real>(alpha);
  Real log_a = kNegInf;
  for (std::uint64_t k = 0; k <= alpha; ++k) {
    const Real kk = static_cast<Real>(k);
    const Real log_binom = std::lgamma(a + 1) - std::lgamma(kk + 1) - std::lgamma(a - kk + 1);
    const Real term =
        log_binom + kk * log_q + (a - kk) * log_1mq + (kk * kk - kk) / (2 * sigma * sigma);
    log_a = LogAdd(log_a, term);
  }
  return log_a;
}

// log A_alpha for fractional alpha (Mironov et al. 2019, Sec. 3.3): with
// z0 = sigma^2 log(1/q - 1) + 1/2, A = A0 + A1 where
//   A0 = sum_k binom(alpha,k) q^k (1-q)^{alpha-k} exp((k^2-k)/(2 sigma^2)) erfc((k - z0)/(sqrt2 sigma)) / 2
//   A1 = sum_k binom(alpha,k) q^{alpha-k} (1-q)^k exp(((alpha-k)^2-(alpha-k))/(2 sigma^2))
//        erfc((z0 - (alpha-k))/(sqrt2 sigma)) / 2.
// The terms change sign past k = alpha + 1, so positive and negative parts
// are summed apart in log space and subtracted at the end.
Real LogAFractional(Real q, Real sigma, Real alpha) {
  const Real log_q = std::log(q), log_1mq = std::log1p(-q);
  const Real z0 = sigma * sigma * (std::log(1 / q - 1)) + 0.5L;
  const Real s2 = 2 * sigma * sigma;
  const Real root2_sigma = std::sqrt(static_cast<Real>(2)) * sigma;
  const Real log_half = std::log(static_cast<Real>(0.5));
  Real pos = kNegInf, neg = kNegInf;
  // Past k = alpha + 1 the terms alternate in sign and shrink (like a power
  // of k, the erfc factors cancelling the exp), so the remainder is smaller
  // than the last term: stop once a term is below e^-30 (A >= 1, so that is a
  // relative error under 1e-13), as Opacus does.
  for (std::uint64_t k = 0; k < 1000000; ++k) {
    int sign = 1;
    const Real kk = static_cast<Real>(k);
    const Real log_binom = LogAbsBinom(alpha, k, sign);
    const Real j = alpha - kk;
    const Real t0 = log_binom + kk * log_q + j * log_1mq + (kk * kk - kk) / s2 + log_half +
                    LogErfc((kk - z0) / root2_sigma);
    const Real t1 = log_binom + j * log_q + kk * log_1mq + (j * j - j) / s2 + log_half +
                    LogErfc((z0 - j) / root2_sigma);
    const Real term = LogAdd(t0, t1);
    if (sign > 0) {
      pos = LogAdd(pos, term);
    } else {
      neg = LogAdd(neg, term);
    }
    if (kk > alpha + 1 && term < -30) break;
  }
  if (neg == kNegInf) return pos;
  if (neg >= pos) return std::numeric_limits<Real>::quiet_NaN();
  return pos + std::log1p(-std::exp(neg - pos));
}

bool IsInteger(double x) { return std::floor(x) == x; }

}  // namespace

std::vector<double> DefaultRdpOrders() {
  std::vector<double> orders;
  for (int x = 1; x < 100; ++x) orders.push_back(1 + x / 10.0);
  for (int a = 12; a < 64; ++a) orders.push_back(a);
  return orders;
}

double SampledGaussianRdp(double q, double sigma, double alpha) {
  if (!(q >= 0 && q <= 1) || !(sigma > 0) || !(alpha > 1) || std::isnan(alpha)) {
    return std::numeric_limits<double>::quiet_NaN();
  }
  if (q == 0) return 0;
  if (std::isinf(alpha)) return std::numeric_limits<double>::infinity();
  if (q == 1) return alpha / (2 * sigma * sigma);
  const Real log_a = IsInteger(alpha) && alpha < 1e6
                         ? LogAInteger(q, sigma, static_cast<std::uint64_t>(alpha))
                         : LogAFractional(q, sigma, alpha);
  const Real rdp = log_a / (static_cast<Real>(alpha) - 1);
  // A >= 1 always; rounding can leave log A a hair below 0 for tiny q.
  return static_cast<double>(std::max<Real>(rdp, 0));
}

core::Result<EpsilonAt> RdpToEpsilon(std::span<const double> orders, std::span<const double> rdp,
                                     double delta, RdpConversion conversion) {
  if (orders.empty() || orders.size() != rdp.size()) {
    return core::InvalidArgument("orders and rdp must be non-empty and of the same length",
                                 "RdpToEpsilon");
  }
  if (!(delta > 0 && delta < 1)) return core::InvalidArgument("delta must be in (0, 1)", "delta");
  EpsilonAt best{std::numeric_limits<double>::infinity(), 0};
  const double log_delta = std::log(delta);
  for (std::size_t i = 0; i < orders.size(); ++i) {
    const double a = orders[i];
    if (!(a > 1)) return core::InvalidArgument("RDP orders must be above 1", "orders");
    double eps = 0;
    switch (conversion) {
      case RdpConversion::kClassic:
        eps = rdp[i] - log_delta / (a - 1);
        break;
      case RdpConversion::kBalle2020:
        eps = rdp[i] - (log_delta + std::log(a)) / (a - 1) + std::log((a - 1) / a);
        break;
    }
    if (std::isnan(eps)) continue;
    if (eps < best.epsilon) best = {eps, a};
  }
  if (best.epsilon < 0) best.epsilon = 0;
  return best;
}

core::Result<RdpAccountant> RdpAccountant::Create(Options o) {
  if (!(o.sampling_rate > 0 && o.sampling_rate <= 1)) {
    return core::InvalidArgument("sampling rate must be in (0, 1]", "sampling_rate");
  }
  if (!(o.noise_multiplier > 0 && std::isfinite(o.noise_multiplier))) {
    return core::InvalidArgument("noise multiplier must be positive and finite",
                                 "noise_multiplier");
  }
  if (!(o.delta > 0 && o.delta < 1)) return core::InvalidArgument("delta must be in (0, 1)", "delta");
  if (!(o.epsilon_budget >= 0 && std::isfinite(o.epsilon_budget))) {
    return core::InvalidArgument("epsilon budget must be finite and >= 0 (0: unlimited)",
                                 "epsilon_budget");
  }
  if (o.orders.empty()) return core::InvalidArgument("no RDP orders", "orders");
  RdpAccountant acc(std::move(o));
  for (double a : acc.options_.orders) {
    if (!(a > 1) || !std::isfinite(a)) {
      return core::InvalidArgument("RDP order " + std::to_string(a) + " is not a finite value above 1",
                                   "orders");
    }
    acc.round_rdp_.push_back(
        SampledGaussianRdp(acc.options_.sampling_rate, acc.options_.noise_multiplier, a));
  }
  return acc;
}

EpsilonAt RdpAccountant::SpentAfter(std::uint64_t rounds) const {
  if (rounds == 0) return {0, 0};
  std::vector<double> total(round_rdp_.size());
  for (std::size_t i = 0; i < total.size(); ++i) {
    total[i] = round_rdp_[i] * static_cast<double>(rounds);
  }
  // Arguments were checked in Create.
  return *RdpToEpsilon(options_.orders, total, options_.delta, options_.conversion);
}

bool RdpAccountant::WouldExceed(std::uint64_t next_round) const {
  if (options_.epsilon_budget == 0) return false;
  return EpsilonAfter(next_round) > options_.epsilon_budget;
}

std::uint64_t RdpAccountant::RoundsAllowed() const {
  if (options_.epsilon_budget == 0) return kMaxRounds;
  // epsilon grows with the round count (each order's RDP does, and the
  // conversion is increasing in it): find the last round within budget.
  std::uint64_t lo = 0, hi = 1;
  while (hi < kMaxRounds && !WouldExceed(hi)) {
    lo = hi;
    hi = std::min(kMaxRounds, hi * 2);
  }
  if (!WouldExceed(hi)) return hi;
  while (hi - lo > 1) {
    const std::uint64_t mid = lo + (hi - lo) / 2;
    if (WouldExceed(mid)) {
      hi = mid;
    } else {
      lo = mid;
    }
  }
  return lo;
}

}  // namespace fedrx::privacy
