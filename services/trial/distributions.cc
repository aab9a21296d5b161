#include "services/trial/distributions.h"

#include <boost/math/distributions/binomial.hpp>
#include <boost/math/distributions/non_central_t.hpp>
#include <boost/math/distributions/normal.hpp>
#include <boost/math/distributions/students_t.hpp>
#include <boost/math/policies/policy.hpp>
#include <cmath>
#include <exception>
#include <limits>
#include <numbers>

namespace fedrx::trial {
namespace {

// Domain and evaluation errors become NaN (the callers turn NaN into an error
// status) instead of exceptions; overflow saturates to infinity.
using Policy = boost::math::policies::policy<
    boost::math::policies::domain_error<boost::math::policies::ignore_error>,
    boost::math::policies::pole_error<boost::math::policies::ignore_error>,
    boost::math::policies::overflow_error<boost::math::policies::ignore_error>,
    boost::math::policies::evaluation_error<boost::math::policies::ignore_error>,
    boost::math::policies::rounding_error<boost::math::policies::ignore_error>>;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

const boost::math::normal_distribution<double, Policy>& StandardNormal() {
  static const boost::math::normal_distribution<double, Policy> kStandard(0.0, 1.0);
  return kStandard;
}

// P(T <= t) (lower = true) or P(T > t), following R's pnt (nmath/pnt.c) branch
// for branch so that answers equal R's: a far left tail is 0, and a large df or
// noncentrality uses the normal approximation of Abramowitz & Stegun 26.7.10,
// as R does; the rest is the exact series (Boost). Keeping to R's switch also
// keeps Boost away from noncentralities where its series gives up.
double NoncentralT(double t, double df, double ncp, bool lower) {
  if (!(df > 0.0) || std::isnan(t) || !std::isfinite(ncp)) return kNaN;
  if (std::isinf(t)) return (t > 0) == lower ? 1.0 : 0.0;
  double tt = t, del = ncp;
  bool negdel = false;
  if (t < 0.0) {
    // pt(t, df, ncp) <= pnorm(-ncp): zero in double for ncp > 40.
    if (ncp > 40.0) return lower ? 0.0 : 1.0;
    negdel = true;
    tt = -t;
    del = -ncp;
  }
  // R: df > 4e5 || del^2 > 2 ln 2 (-DBL_MIN_EXP), i.e. |ncp| > 37.62.
  if (df > 4e5 || del * del > 2.0 * std::numbers::ln2 * 1021.0) {
    const double s = 1.0 / (4.0 * df);
    const double z = (tt * (1.0 - s) - del) / std::sqrt(1.0 + tt * tt * 2.0 * s);
    return (lower != negdel) ? NormalCdf(z) : NormalUpper(z);
  }
  try {
    const boost::math::non_central_t_distribution<double, Policy> dist(df, ncp);
    return lower ? boost::math::cdf(dist, t) : boost::math::cdf(boost::math::complement(dist, t));
  } catch (const std::exception&) {
    // Some Boost internals raise whatever the policy says; NaN reaches the
    // caller, which reports it as an error.
    return kNaN;
  }
}

}  // namespace

double NormalCdf(double z) {
  if (std::isnan(z)) return kNaN;
  if (std::isinf(z)) return z > 0 ? 1.0 : 0.0;
  return boost::math::cdf(StandardNormal(), z);
}

double NormalUpper(double z) {
  if (std::isnan(z)) return kNaN;
  if (std::isinf(z)) return z > 0 ? 0.0 : 1.0;
  return boost::math::cdf(boost::math::complement(StandardNormal(), z));
}

double NormalQuantile(double p) {
  if (!(p > 0.0 && p < 1.0)) return kNaN;
  return boost::math::quantile(StandardNormal(), p);
}

double StudentTUpperQuantile(double p, double df) {
  if (!(p > 0.0 && p < 1.0) || !(df > 0.0) || std::isnan(df)) return kNaN;
  try {
    const boost::math::students_t_distribution<double, Policy> t(df);
    return boost::math::quantile(boost::math::complement(t, p));
  } catch (const std::exception&) {
    return kNaN;  // see NoncentralT
  }
}

double NoncentralTCdf(double t, double df, double ncp) { return NoncentralT(t, df, ncp, true); }

double NoncentralTUpper(double t, double df, double ncp) { return NoncentralT(t, df, ncp, false); }

double BinomialPmf(int k, int n, double p) {
  if (n < 0 || !(p >= 0.0 && p <= 1.0)) return kNaN;
  if (k < 0 || k > n) return 0.0;
  const boost::math::binomial_distribution<double, Policy> dist(n, p);
  return boost::math::pdf(dist, k);
}

}  // namespace fedrx::trial
