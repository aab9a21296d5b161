#include "services/privacy/dp_accountant.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>
#include <numbers>
#include <vector>

namespace fedrx::privacy {
namespace {

using Real = long double;

// --- An independent reference ------------------------------------------------
//
// The RDP of one step of the sampled Gaussian mechanism at order a is
// log(A_a) / (a - 1) with A_a = E_{z ~ mu0}[(mu(z) / mu0(z))^a], mu0 = N(0, s^2)
// and mu = (1 - q) N(0, s^2) + q N(1, s^2) (Mironov et al. 2019, Sec. 3). Here
// A_a is integrated directly, by adaptive Gauss-Kronrod (7/15) quadrature in
// long double, with nothing shared with the accountant's series.

// log of the integrand mu0(z) (mu(z)/mu0(z))^a; the ratio is
// (1 - q) + q exp((2z - 1) / (2 s^2)).
Real LogIntegrand(Real z, Real q, Real s, Real a) {
  const Real log_mu0 =
      -z * z / (2 * s * s) - std::log(s * std::sqrt(2 * std::numbers::pi_v<Real>));
  const Real e = (2 * z - 1) / (2 * s * s);
  // log((1-q) + q e^e), stably for large e.
  const Real log_ratio = e > 0 ? e + std::log(q + (1 - q) * std::exp(-e))
                               : std::log((1 - q) + q * std::exp(e));
  return log_mu0 + a * log_ratio;
}

struct Kronrod {
  Real value, error;
};

// G7-K15 on [lo, hi] of f.
Kronrod GaussKronrod(const std::function<Real(Real)>& f, Real lo, Real hi) {
  static const Real xk[8] = {0.991455371120812639206854697526329L, 0.949107912342758524526189684047851L,
                             0.864864423359769072789712788640926L, 0.741531185599394439863864773280788L,
                             0.586087235467691130294144845693013L, 0.405845151377397166906606412076961L,
                             0.207784955007898467600689403773245L, 0.000000000000000000000000000000000L};
  static const Real wk[8] = {0.022935322010529224963732008058970L, 0.063092092629978553290700663189204L,
                             0.104790010322250183839876322541518L, 0.140653259715525918745189590510238L,
                             0.169004726639267902826583426598550L, 0.190350578064785409913256402421014L,
                             0.204432940075298892414161999234649L, 0.209482141084727828012999174891714L};
  static const Real wg[4] = {0.129484966168869693270611432679082L, 0.279705391489276667901467771423780L,
                             0.381830050505118944950369775488975L, 0.417959183673469387755102040816327L};
  const Real c = (lo + hi) / 2, h = (hi - lo) / 2;
  Real k = wk[7] * f(c), g = wg[3] * f(c);
  for (int i = 0; i < 7; ++i) {
    const Real a = f(c - h * xk[i]), b = f(c + h * xk[i]);
    k += wk[i] * (a + b);
    if (i % 2 == 1) g += wg[i / 2] * (a + b);
  }
  return {k * h, std::fabs((k - g) * h)};
}

// Bisects until the Kronrod error estimate is within `tol` (absolute).
Real Adaptive(const std::function<Real(Real)>& f, Real lo, Real hi, Real tol, int depth) {
  const Kronrod whole = GaussKronrod(f, lo, hi);
  if (depth == 0 || whole.error <= tol) return whole.value;
  const Real mid = (lo + hi) / 2;
  return Adaptive(f, lo, mid, tol / 2, depth - 1) + Adaptive(f, mid, hi, tol / 2, depth - 1);
}

// RDP by integration.
double ReferenceRdp(double q, double sigma, double alpha) {
  const Real Q = q, S = sigma, A = alpha;
  // The integrand's mass lies around its two humps (near 0 and near a);
  // scan for its peak to scale by, then integrate well past both.
  const Real lo = -40 * S - 2, hi = A + 40 * S + 2;
  Real peak = -std::numeric_limits<Real>::infinity();
  for (int i = 0; i <= 4000; ++i) {
    peak = std::max(peak, LogIntegrand(lo + (hi - lo) * i / 4000, Q, S, A));
  }
  auto f = [&](Real z) { return std::exp(LogIntegrand(z, Q, S, A) - peak); };
  const int pieces = 400;
  const Real width = (hi - lo) / pieces;
  // A coarse pass sizes the absolute tolerance: 1e-14 of the integral.
  Real coarse = 0;
  for (int i = 0; i < pieces; ++i) coarse += GaussKronrod(f, lo + width * i, lo + width * (i + 1)).value;
  const Real tol = 1e-14L * coarse / pieces;
  Real sum = 0;
  for (int i = 0; i < pieces; ++i) sum += Adaptive(f, lo + width * i, lo + width * (i + 1), tol, 20);
  return static_cast<double>((std::log(sum) + peak) / (A - 1));
}

// The reference RDP of one step at each default order.
std::vector<double> ReferenceRdps(double q, double sigma) {
  std::vector<double> out;
  for (double a : DefaultRdpOrders()) out.push_back(ReferenceRdp(q, sigma, a));
  return out;
}

// The two conversions, written out again here.
double ReferenceEpsilon(const std::vector<double>& rdp1, std::uint64_t steps, double delta,
                        bool balle) {
  const std::vector<double> orders = DefaultRdpOrders();
  double best = std::numeric_limits<double>::infinity();
  for (std::size_t i = 0; i < orders.size(); ++i) {
    const double a = orders[i];
    const double rdp = rdp1[i] * static_cast<double>(steps);
    const double eps = balle ? rdp + std::log1p(-1 / a) - std::log(delta * a) / (a - 1)
                             : rdp + std::log(1 / delta) / (a - 1);
    best = std::min(best, eps);
  }
  return best;
}

// --- Tests --------------------------------------------------------------------

TEST(DpAccountantTest, DefaultOrdersAreOpacus) {
  const std::vector<double> o = DefaultRdpOrders();
  ASSERT_EQ(o.size(), 99u + 52u);
  EXPECT_DOUBLE_EQ(o.front(), 1.1);
  EXPECT_DOUBLE_EQ(o[98], 10.9);
  EXPECT_EQ(o[99], 12.0);
  EXPECT_EQ(o.back(), 63.0);
}

TEST(DpAccountantTest, FullBatchIsThePlainGaussianMechanism) {
  for (double sigma : {0.5, 1.0, 3.7}) {
    for (double a : {1.5, 2.0, 7.3, 32.0, 63.0}) {
      EXPECT_DOUBLE_EQ(SampledGaussianRdp(1.0, sigma, a), a / (2 * sigma * sigma));
    }
  }
  EXPECT_EQ(SampledGaussianRdp(0.0, 1.0, 5.0), 0.0);
  // The integral gives the same for q = 1 (a check on the reference itself).
  EXPECT_NEAR(ReferenceRdp(1.0 - 1e-12, 2.0, 4.5), 4.5 / 8, 1e-6);
}

TEST(DpAccountantTest, OutOfRangeArgumentsAreNan) {
  EXPECT_TRUE(std::isnan(SampledGaussianRdp(-0.1, 1, 2)));
  EXPECT_TRUE(std::isnan(SampledGaussianRdp(0.1, 0, 2)));
  EXPECT_TRUE(std::isnan(SampledGaussianRdp(0.1, 1, 1)));
}

TEST(DpAccountantTest, RdpMatchesNumericalIntegrationAtIntegerAndFractionalOrders) {
  struct Case {
    double q, sigma;
  };
  for (const Case c : {Case{0.01, 1.1}, Case{0.1, 2.0}, Case{0.05, 0.8}, Case{0.5, 1.5},
                       Case{0.004, 4.0}, Case{0.9, 1.0}}) {
    for (double a : {1.1, 1.5, 2.0, 2.7, 4.0, 8.5, 12.0, 20.0, 32.0, 63.0}) {
      const double got = SampledGaussianRdp(c.q, c.sigma, a);
      const double want = ReferenceRdp(c.q, c.sigma, a);
      EXPECT_NEAR(got, want, 1e-6 * std::max(1.0, std::fabs(want)) + 1e-12)
          << "q=" << c.q << " sigma=" << c.sigma << " alpha=" << a;
    }
  }
}

TEST(DpAccountantTest, EpsilonWithinOnePercentOfReferenceAccountant) {
  struct Case {
    double q, sigma;
    std::uint64_t steps;
    double delta;
  };
  // DP-SGD-like (q small, many steps) and federated-like (q large, few
  // rounds) settings.
  const Case cases[] = {
      {256.0 / 60000, 1.1, 14070, 1e-5},  // MNIST, 60 epochs of batch 256
      {0.01, 1.0, 1000, 1e-5},
      {0.1, 2.0, 100, 1e-6},
      {0.05, 0.8, 500, 1e-5},
      {1.0, 5.0, 50, 1e-5},
      {0.3, 1.2, 30, 1e-4},
  };
  for (const Case& c : cases) {
    const std::vector<double> reference = ReferenceRdps(c.q, c.sigma);
    for (RdpConversion conv : {RdpConversion::kBalle2020, RdpConversion::kClassic}) {
      RdpAccountant::Options o;
      o.sampling_rate = c.q;
      o.noise_multiplier = c.sigma;
      o.delta = c.delta;
      o.conversion = conv;
      auto acc = RdpAccountant::Create(o);
      ASSERT_TRUE(acc.ok()) << acc.status();
      const double got = acc->EpsilonAfter(c.steps);
      const double want =
          ReferenceEpsilon(reference, c.steps, c.delta, conv == RdpConversion::kBalle2020);
      std::printf("  q=%-9.6g sigma=%-4g steps=%-6llu delta=%-6g %-7s eps=%.6f reference=%.6f "
                  "(rel. diff %.2e)\n",
                  c.q, c.sigma, static_cast<unsigned long long>(c.steps), c.delta,
                  conv == RdpConversion::kBalle2020 ? "balle" : "classic", got, want,
                  std::fabs(got - want) / want);
      EXPECT_NEAR(got, want, 0.01 * want) << "q=" << c.q << " sigma=" << c.sigma;
      EXPECT_GT(got, 0);
    }
  }
}

TEST(DpAccountantTest, TighterConversionIsNeverLooser) {
  RdpAccountant::Options o;
  o.sampling_rate = 0.02;
  o.noise_multiplier = 1.0;
  o.conversion = RdpConversion::kClassic;
  auto classic = RdpAccountant::Create(o);
  o.conversion = RdpConversion::kBalle2020;
  auto balle = RdpAccountant::Create(o);
  ASSERT_TRUE(classic.ok() && balle.ok());
  for (std::uint64_t t : {1u, 10u, 100u, 1000u}) {
    EXPECT_LT(balle->EpsilonAfter(t), classic->EpsilonAfter(t)) << t;
  }
}

TEST(DpAccountantTest, GaussianMechanismEpsilonHasClosedFormMinimum) {
  // q = 1: rdp(a) = T a / (2 s^2), classic eps = min_a T a/(2s^2) + log(1/d)/(a-1),
  // minimised at a* = 1 + s sqrt(2 log(1/d) / T) with value
  // T/(2s^2) + sqrt(2 T log(1/d)) / s. The orders are a grid, so the
  // accountant is at or a little above it.
  const double s = 4.0, d = 1e-5;
  const std::uint64_t t = 20;
  RdpAccountant::Options o;
  o.sampling_rate = 1.0;
  o.noise_multiplier = s;
  o.delta = d;
  o.conversion = RdpConversion::kClassic;
  auto acc = RdpAccountant::Create(o);
  ASSERT_TRUE(acc.ok());
  const double bound = t / (2 * s * s) + std::sqrt(2.0 * t * std::log(1 / d)) / s;
  const EpsilonAt e = acc->SpentAfter(t);
  EXPECT_GE(e.epsilon, bound - 1e-12);
  EXPECT_LT(e.epsilon, bound * 1.001);
  EXPECT_NEAR(e.order, 1 + s * std::sqrt(2 * std::log(1 / d) / t), 0.6);
}

TEST(DpAccountantTest, BudgetGivesRoundsAllowedAndWouldExceed) {
  RdpAccountant::Options o;
  o.sampling_rate = 1.0;
  o.noise_multiplier = 1.0;
  o.delta = 1e-5;
  o.epsilon_budget = 8.0;
  auto acc = RdpAccountant::Create(o);
  ASSERT_TRUE(acc.ok());
  const std::uint64_t n = acc->RoundsAllowed();
  ASSERT_GT(n, 0u);
  EXPECT_LE(acc->EpsilonAfter(n), 8.0);
  EXPECT_GT(acc->EpsilonAfter(n + 1), 8.0);
  EXPECT_FALSE(acc->WouldExceed(n));
  EXPECT_TRUE(acc->WouldExceed(n + 1));
  EXPECT_EQ(acc->EpsilonAfter(0), 0.0);
  // Epsilon grows with the rounds.
  for (std::uint64_t t = 1; t < 40; ++t) EXPECT_LT(acc->EpsilonAfter(t), acc->EpsilonAfter(t + 1));

  o.epsilon_budget = 0;  // unlimited
  auto unlimited = RdpAccountant::Create(o);
  ASSERT_TRUE(unlimited.ok());
  EXPECT_FALSE(unlimited->WouldExceed(1'000'000));
  EXPECT_EQ(unlimited->RoundsAllowed(), RdpAccountant::kMaxRounds);

  // A budget below one round's epsilon allows none.
  o.epsilon_budget = 0.01;
  auto tiny = RdpAccountant::Create(o);
  ASSERT_TRUE(tiny.ok());
  EXPECT_EQ(tiny->RoundsAllowed(), 0u);
  EXPECT_TRUE(tiny->WouldExceed(1));
}

TEST(DpAccountantTest, CreateRejectsOutOfRangeOptions) {
  RdpAccountant::Options o;
  o.noise_multiplier = 0;
  EXPECT_EQ(RdpAccountant::Create(o).status().code(), core::StatusCode::kInvalidArgument);
  o.noise_multiplier = 1;
  o.delta = 1;
  EXPECT_EQ(RdpAccountant::Create(o).status().code(), core::StatusCode::kInvalidArgument);
  o.delta = 1e-5;
  o.sampling_rate = 0;
  EXPECT_EQ(RdpAccountant::Create(o).status().code(), core::StatusCode::kInvalidArgument);
  o.sampling_rate = 1;
  o.orders = {0.5};
  EXPECT_EQ(RdpAccountant::Create(o).status().code(), core::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace fedrx::privacy
