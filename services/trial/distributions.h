// Probability distributions the trial-design calculations need: standard
// normal, central and noncentral Student t, binomial. Thin wrappers so that the
// numerical library stays inside the .cc. Pure functions; thread-safe.
//
// Arguments are the caller's to check (sample_size.cc validates its inputs
// before calling); out-of-range arguments give NaN, never an exception.
#pragma once

namespace fedrx::trial {

// Standard normal: P(Z <= z) and P(Z > z) (the upper tail computed directly,
// not as 1 - cdf, so small tails keep their precision).
double NormalCdf(double z);
double NormalUpper(double z);
// z with P(Z <= z) = p, p in (0, 1) (R's qnorm(p)).
double NormalQuantile(double p);

// Central t with `df` > 0 degrees of freedom: t with P(T > t) = p (R's
// qt(p, df, lower.tail = FALSE)).
double StudentTUpperQuantile(double p, double df);

// Noncentral t with `df` > 0 and noncentrality `ncp`: P(T <= t) and P(T > t)
// (R's pt(t, df, ncp) and pt(t, df, ncp, lower.tail = FALSE)), with R's
// switch to the normal approximation (Abramowitz & Stegun 26.7.10) when
// df > 4e5 or |ncp| > 37.62, so that the numbers are R's there too.
double NoncentralTCdf(double t, double df, double ncp);
double NoncentralTUpper(double t, double df, double ncp);

// Binomial(n, p): P(X = k); 0 outside 0..n.
double BinomialPmf(int k, int n, double p);

}  // namespace fedrx::trial
