// NEEDS R: runs Rscript (base R only, a declared dependency) as a child
// process, once for the suite, on a script written here:
//   - BOIN boundaries as the BOIN package's get.boundary computes them
//     (floor(n lambda_e), ceiling(n lambda_d), elimination from pbeta, the
//     de-escalation boundary capped at elimination) for 6 targets, 2 cutoffs,
//     n = 1..60: every entry must be equal;
//   - BOIN MTD selection on 300 random data sets with select.mtd's rules
//     (elimination by pbeta, weighted pava by repeatedly pooling the first
//     violating pair, the +k*1e-10 tie-break, which.min): the same dose;
//   - CRM posterior means of p_d and P(p_d > target) for the empiric model by
//     R's adaptive integrate() on 40 data sets: within 1e-6.
// Without Rscript the tests fail; they do not skip.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "services/trial/boin.h"
#include "services/trial/crm.h"
#include "services/trial/escalation.h"
#include "tests/support/rscript.h"

namespace fedrx::trial {
namespace {

constexpr double kTargets[] = {0.15, 0.2, 0.25, 0.3, 0.33, 0.4};
constexpr double kCutoffs[] = {0.95, 0.9};
constexpr int kMaxN = 60;
constexpr int kMtdCases = 300;
constexpr int kCrmCases = 40;
const std::vector<double> kSkeleton = {0.04, 0.10, 0.20, 0.32, 0.45};
constexpr double kPriorSd = 1.16;
constexpr double kCrmTarget = 0.25;

std::string Num(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

std::string Vec(const std::vector<int>& v) {
  std::string s = "c(";
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s + ")";
}

// Random data sets: patients per dose in multiples of 3 (some untried), DLTs
// up to the patients.
struct DataSet {
  std::vector<int> n, y;
  double target;
};

std::vector<DataSet> MtdCases() {
  std::vector<DataSet> out;
  Rng rng(2024);
  for (int i = 0; i < kMtdCases; ++i) {
    DataSet c;
    c.target = kTargets[i % 6];
    const int ndose = 2 + static_cast<int>(rng.Uniform() * 5);
    const int tried = 1 + static_cast<int>(rng.Uniform() * ndose);
    for (int d = 0; d < ndose; ++d) {
      const int n = d < tried ? 3 * (1 + static_cast<int>(rng.Uniform() * 5)) : 0;
      // Rising toxicity, with noise, so every branch (pools, eliminations) occurs.
      // Every tenth case is toxic from the lowest dose on ("no MTD").
      const double p =
          i % 10 == 0 ? 0.8 : std::min(0.95, c.target * (0.3 + 0.5 * d) * (0.5 + rng.Uniform()));
      int y = 0;
      for (int k = 0; k < n; ++k) y += rng.Uniform() < p ? 1 : 0;
      c.n.push_back(n);
      c.y.push_back(y);
    }
    out.push_back(c);
  }
  return out;
}

std::vector<DataSet> CrmCases() {
  std::vector<DataSet> out;
  Rng rng(77);
  for (int i = 0; i < kCrmCases; ++i) {
    DataSet c;
    c.target = kCrmTarget;
    for (int d = 0; d < 5; ++d) {
      const int n = 3 * static_cast<int>(rng.Uniform() * 5);
      const double p = std::min(0.9, 0.05 + 0.12 * d * (i % 3 + 1) * rng.Uniform());
      int y = 0;
      for (int k = 0; k < n; ++k) y += rng.Uniform() < p ? 1 : 0;
      c.n.push_back(n);
      c.y.push_back(y);
    }
    out.push_back(c);
  }
  return out;
}

std::string BuildScript() {
  std::ostringstream r;
  r << "args <- commandArgs(trailingOnly = TRUE)\n"
       "out <- file(args[1], 'w')\n"
       "emit <- function(k, v) writeLines(paste0(k, ',', format(v, digits = 17)), out)\n";
  // get.boundary's table.
  r << "bnd <- function(target, npts, cutoff) {\n"
       "  p.saf <- 0.6 * target; p.tox <- 1.4 * target\n"
       "  l1 <- log((1-p.saf)/(1-target))/log(target*(1-p.saf)/(p.saf*(1-target)))\n"
       "  l2 <- log((1-target)/(1-p.tox))/log(p.tox*(1-target)/(target*(1-p.tox)))\n"
       "  be <- floor(l1 * (1:npts)); bd <- ceiling(l2 * (1:npts)); el <- rep(-1, npts)\n"
       "  for (n in 3:npts) for (ntox in 1:n)\n"
       "    if (1 - pbeta(target, ntox + 1, n - ntox + 1) > cutoff) { el[n] <- ntox; break }\n"
       "  bd <- ifelse(el >= 0 & bd > el, el, bd)\n"
       "  list(be = be, bd = bd, el = el)\n"
       "}\n";
  for (int t = 0; t < 6; ++t) {
    for (int c = 0; c < 2; ++c) {
      r << "b <- bnd(" << Num(kTargets[t]) << ", " << kMaxN << ", " << Num(kCutoffs[c]) << ")\n"
        << "for (n in 1:" << kMaxN << ") {\n"
        << "  emit(paste0('bnd/" << t << "/" << c << "/', n, '/esc'), b$be[n])\n"
        << "  emit(paste0('bnd/" << t << "/" << c << "/', n, '/dei'), b$bd[n])\n"
        << "  emit(paste0('bnd/" << t << "/" << c << "/', n, '/eli'), b$el[n])\n"
        << "}\n";
    }
  }
  // select.mtd's rules, pava pooling the first violating pair each time.
  r << "pava1 <- function(x, wt) {\n"
       "  n <- length(x); if (n <= 1) return(x)\n"
       "  lv <- 1:n\n"
       "  repeat {\n"
       "    viol <- diff(x) < 0\n"
       "    if (!any(viol)) break\n"
       "    i <- min(which(viol)); s <- lv == lv[i] | lv == lv[i + 1]\n"
       "    x[s] <- sum(x[s] * wt[s]) / sum(wt[s]); lv[s] <- lv[i]\n"
       "  }\n"
       "  x\n"
       "}\n"
       "selmtd <- function(target, n, y, cutoff = 0.95) {\n"
       "  nd <- length(n); el <- rep(0, nd)\n"
       "  for (i in 1:nd) if (n[i] >= 3 && 1 - pbeta(target, y[i] + 1, n[i] - y[i] + 1) > cutoff)"
       " { el[i:nd] <- 1; break }\n"
       "  if (el[1] == 1 || sum(n[el == 0]) == 0) return(-1)\n"
       "  ok <- n != 0 & el == 0; idx <- which(ok); yy <- y[ok]; nn <- n[ok]\n"
       "  ph <- (yy + 0.05) / (nn + 0.1)\n"
       "  v <- (yy + 0.05) * (nn - yy + 0.05) / ((nn + 0.1)^2 * (nn + 0.1 + 1))\n"
       "  ph <- pava1(ph, 1 / v) + (1:length(ph)) * 1e-10\n"
       "  idx[which.min(abs(ph - target))] - 1\n"
       "}\n";
  const auto mtd = MtdCases();
  for (int i = 0; i < kMtdCases; ++i) {
    r << "emit('mtd/" << i << "', selmtd(" << Num(mtd[i].target) << ", " << Vec(mtd[i].n) << ", "
      << Vec(mtd[i].y) << "))\n";
  }
  // CRM posterior by integrate() on pieces of [-12 sd, 12 sd], rescaled by
  // the log-posterior's maximum.
  r << "skel <- c(";
  for (std::size_t d = 0; d < kSkeleton.size(); ++d) r << (d ? "," : "") << Num(kSkeleton[d]);
  r << ")\nsd <- " << Num(kPriorSd) << "; tgt <- " << Num(kCrmTarget) << "\n"
    << "crm <- function(k, n, y) {\n"
       "  lpost <- function(a) sapply(a, function(b) { lp <- exp(b) * log(skel);\n"
       "    -b^2 / (2 * sd^2) + sum(y * lp + (n - y) * log(-expm1(lp))) })\n"
       "  m <- optimize(lpost, c(-12 * sd, 12 * sd), maximum = TRUE)$objective\n"
       "  f <- function(a, g) exp(lpost(a) - m) * g(a)\n"
       "  integ <- function(g, lo, hi) { br <- seq(lo, hi, length.out = 49); s <- 0\n"
       "    for (i in 1:48) s <- s + integrate(f, br[i], br[i + 1], g = g, rel.tol = 1e-10,\n"
       "      abs.tol = 1e-15, subdivisions = 1000)$value; s }\n"
       "  z <- integ(function(a) 1, -12 * sd, 12 * sd)\n"
       "  for (d in seq_along(skel)) {\n"
       "    emit(paste0('crm/', k, '/mean/', d - 1),\n"
       "      integ(function(a) skel[d]^exp(a), -12 * sd, 12 * sd) / z)\n"
       "    cd <- min(12 * sd, log(log(tgt) / log(skel[d])))\n"
       "    tail <- if (cd <= -12 * sd) 0 else integ(function(a) 1, -12 * sd, cd) / z\n"
       "    emit(paste0('crm/', k, '/above/', d - 1), tail)\n"
       "  }\n"
       "}\n";
  const auto crm = CrmCases();
  for (int i = 0; i < kCrmCases; ++i) {
    r << "crm(" << i << ", " << Vec(crm[i].n) << ", " << Vec(crm[i].y) << ")\n";
  }
  r << "close(out)\n";
  return r.str();
}

class EscalationVsR : public testing::RComparisonTest<EscalationVsR> {
 public:
  static std::string Script() { return BuildScript(); }
  static constexpr std::chrono::seconds kTimeout{100};
};

TEST_F(EscalationVsR, BoinBoundariesEqualGetBoundary) {
  for (int t = 0; t < 6; ++t) {
    for (int c = 0; c < 2; ++c) {
      auto b = BoinBoundaryTable(kTargets[t], kMaxN, 3, 0, 0, kCutoffs[c], kMaxN);
      ASSERT_TRUE(b.ok()) << b.status();
      ASSERT_EQ(b->rows.size(), static_cast<std::size_t>(kMaxN));
      for (int n = 1; n <= kMaxN; ++n) {
        const std::string k =
            "bnd/" + std::to_string(t) + "/" + std::to_string(c) + "/" + std::to_string(n);
        const codec::BoundaryRow& row = b->rows[n - 1];
        EXPECT_EQ(row.escalate_at_most, R(k + "/esc")) << k;
        EXPECT_EQ(row.deescalate_at_least, R(k + "/dei")) << k;
        EXPECT_EQ(row.eliminate_at_least, R(k + "/eli")) << k;
      }
    }
  }
}

TEST_F(EscalationVsR, BoinMtdEqualsSelectMtdRules) {
  const auto cases = MtdCases();
  int eliminated = 0, none = 0;
  for (int i = 0; i < kMtdCases; ++i) {
    const int ours = BoinSelectMtd(cases[i].n, cases[i].y, cases[i].target, 0.95, false);
    EXPECT_EQ(ours, R("mtd/" + std::to_string(i))) << "case " << i << " target " << cases[i].target;
    none += ours < 0;
    for (std::size_t d = 0; d < cases[i].n.size(); ++d) {
      eliminated += cases[i].n[d] >= 3 &&
                    BetaPosteriorAbove(cases[i].target, cases[i].y[d], cases[i].n[d]) > 0.95;
    }
  }
  // The cases exercise elimination and "no MTD".
  EXPECT_GT(eliminated, 10);
  EXPECT_GT(none, 3);
}

TEST_F(EscalationVsR, CrmPosteriorMatchesIntegrate) {
  const auto cases = CrmCases();
  const CrmPosterior post(kSkeleton, kPriorSd, kCrmTarget, 60);
  for (int i = 0; i < kCrmCases; ++i) {
    CrmPosterior::Summary s;
    post.Update(cases[i].n, cases[i].y, s);
    for (int d = 0; d < 5; ++d) {
      const std::string k = "crm/" + std::to_string(i) + "/";
      EXPECT_NEAR(s.mean_tox[d], R(k + "mean/" + std::to_string(d)), 1e-6) << k << d;
      EXPECT_NEAR(s.p_above[d], R(k + "above/" + std::to_string(d)), 1e-6) << k << d;
    }
  }
}

}  // namespace
}  // namespace fedrx::trial
