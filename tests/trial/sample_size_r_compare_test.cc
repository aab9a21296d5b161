// NEEDS R: runs Rscript with the pwr package (declared dependencies,
// deploy/install-deps.sh) as a child process, once for the suite. The grid of
// inputs below is written into one R script that prints R's answers as CSV:
// power.t.test and power.prop.test (strict = TRUE, tol = 1e-10), pwr.t.test
// and pwr.2p.test (their default uniroot tolerance), Schoenfeld's formula and
// the event probability in base R (the latter by numerical integration,
// integrate()), and Simon's designs by brute force over dbinom/pbinom. Every
// figure must agree to at least 4 significant digits (tighter where R's own
// solver tolerance allows). Without Rscript or pwr the tests fail; they do not
// skip.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "services/trial/sample_size.h"
#include "tests/support/rscript.h"

namespace fedrx::trial {
namespace {

// --- The grid --------------------------------------------------------------------

constexpr double kEffects[] = {0.2, 0.5, 0.8, 1.2};  // delta / sd
constexpr double kSd = 2.5;
constexpr double kAlphas[] = {0.01, 0.05};
constexpr double kPowers[] = {0.8, 0.9};
constexpr int kSides[] = {1, 2};
constexpr double kNs[] = {5, 17.5, 64, 250};  // per group, for power
constexpr double kPairs[][2] = {{0.1, 0.2}, {0.3, 0.5}, {0.5, 0.55}, {0.7, 0.9}};
constexpr double kPropNs[] = {20, 100, 1500};
constexpr double kHazardRatios[] = {0.5, 0.7, 0.8, 1.3};
constexpr double kAllocations[] = {0.5, 2.0 / 3.0};
constexpr double kEvents[] = {60, 250};
// accrual_time, follow_up, median_control
constexpr double kSurvival[][3] = {{24, 12, 12}, {12, 0.5, 6}, {0, 18, 9}, {36, 24, 40}};

// Beyond df = 4e5 R's pt switches to a normal approximation; so does PowerTTest.
// {n or 0 (solve n), delta (sd 1), sides}
constexpr double kLargeDf[][3] = {{250000, 0.006, 2}, {500000, 0.004, 1}, {0, 0.005, 2}};

struct SimonCase {
  double p0, p1, alpha, beta;
  int max_n;
};
constexpr SimonCase kSimon[] = {
    {0.10, 0.30, 0.05, 0.20, 40},
    {0.20, 0.40, 0.10, 0.10, 45},
    {0.15, 0.35, 0.10, 0.20, 35},
};

std::string Num(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

const char* Alternative(int sides) { return sides == 2 ? "\"two.sided\"" : "\"one.sided\""; }
const char* PwrAlternative(int sides) { return sides == 2 ? "\"two.sided\"" : "\"greater\""; }

// Calls `f(key_suffix, effect, alpha, power, sides)` over the t-test grid.
template <typename F>
void ForTGrid(F f) {
  int i = 0;
  for (double e : kEffects)
    for (double a : kAlphas)
      for (double p : kPowers)
        for (int s : kSides) f(std::to_string(i++), e, a, p, s);
}

template <typename F>
void ForPropGrid(F f) {
  int i = 0;
  for (const auto& pr : kPairs)
    for (double a : kAlphas)
      for (double p : kPowers)
        for (int s : kSides) f(std::to_string(i++), pr[0], pr[1], a, p, s);
}

constexpr const char* kPrelude = R"R(
suppressPackageStartupMessages(library(pwr))
out <- file(commandArgs(trailingOnly = TRUE)[1], "w")
emit <- function(key, v) writeLines(sprintf("%s,%.15g", key, v), out)
# Probability of an event by the end of follow-up, entry uniform on [0, A].
pev <- function(lambda, A, F) {
  if (A == 0) return(1 - exp(-lambda * F))
  integrate(function(s) 1 - exp(-lambda * (A + F - s)), 0, A, rel.tol = 1e-12)$value / A
}
# Simon (1989) by brute force: every n <= nmax, n1 < n, r1 < n1, and the
# smallest r >= r1 meeting both error constraints.
simon_bf <- function(p0, p1, alpha, beta, nmax) {
  cand <- list()
  for (n in 2:nmax) for (n1 in 1:(n - 1)) {
    n2 <- n - n1; x1 <- 0:n1; r <- 0:(n - 1)
    k <- outer(x1, r, function(a, b) b - a)
    w0 <- dbinom(x1, n1, p0) * matrix(pbinom(k, n2, p0, lower.tail = FALSE), nrow = n1 + 1)
    w1 <- dbinom(x1, n1, p1) * matrix(pbinom(k, n2, p1, lower.tail = FALSE), nrow = n1 + 1)
    rc <- function(w) apply(w, 2, function(col) rev(cumsum(rev(col))))[-1, , drop = FALSE]
    a0 <- rc(w0); a1 <- rc(w1)
    ok <- a0 <= alpha & a1 >= 1 - beta & outer(0:(n1 - 1), r, "<=")
    for (i in which(rowSums(ok) > 0)) {
      j <- which(ok[i, ])[1]
      pet <- pbinom(i - 1, n1, p0)
      cand[[length(cand) + 1]] <-
        c(i - 1, n1, j - 1, n, n1 + (1 - pet) * n2, pet, a0[i, j], a1[i, j])
    }
  }
  m <- do.call(rbind, cand)
  list(optimal = m[order(round(m[, 5], 10), m[, 4], m[, 2])[1], ],
       minimax = m[order(m[, 4], round(m[, 5], 10), m[, 2])[1], ])
}
emit_simon <- function(key, d) {
  nm <- c("r1", "n1", "r", "n", "en0", "pet0", "alpha", "power")
  for (i in seq_along(nm)) emit(paste0(key, "/", nm[i]), d[i])
}
)R";

std::string BuildScript() {
  std::ostringstream r;
  r << kPrelude;
  ForTGrid([&](const std::string& k, double e, double a, double p, int s) {
    const std::string args = "delta = " + Num(e * kSd) + ", sd = " + Num(kSd) +
                             ", sig.level = " + Num(a) + ", alternative = " + Alternative(s) +
                             ", strict = TRUE, tol = 1e-10";
    r << "emit(\"t_n/" << k << "\", power.t.test(power = " << Num(p) << ", " << args << ")$n)\n";
    r << "emit(\"pwr_t_n/" << k << "\", pwr.t.test(d = " << Num(e) << ", power = " << Num(p)
      << ", sig.level = " << Num(a) << ", alternative = " << PwrAlternative(s) << ")$n)\n";
    int j = 0;
    for (double n : kNs) {
      r << "emit(\"t_power/" << k << "/" << j << "\", power.t.test(n = " << Num(n) << ", " << args
        << ")$power)\n";
      r << "emit(\"pwr_t_power/" << k << "/" << j++ << "\", pwr.t.test(d = " << Num(e)
        << ", n = " << Num(n) << ", sig.level = " << Num(a)
        << ", alternative = " << PwrAlternative(s) << ")$power)\n";
    }
  });
  ForPropGrid([&](const std::string& k, double p1, double p2, double a, double p, int s) {
    const std::string args = "p1 = " + Num(p1) + ", p2 = " + Num(p2) + ", sig.level = " + Num(a) +
                             ", alternative = " + Alternative(s) + ", strict = TRUE, tol = 1e-10";
    const std::string h = "abs(ES.h(" + Num(p1) + ", " + Num(p2) + "))";
    const std::string pwr_args = "sig.level = " + Num(a) + ", alternative = " + PwrAlternative(s);
    r << "emit(\"prop_n/" << k << "\", power.prop.test(power = " << Num(p) << ", " << args
      << ")$n)\n";
    r << "emit(\"pwr_2p_n/" << k << "\", pwr.2p.test(h = " << h << ", power = " << Num(p) << ", "
      << pwr_args << ")$n)\n";
    int j = 0;
    for (double n : kPropNs) {
      r << "emit(\"prop_power/" << k << "/" << j << "\", power.prop.test(n = " << Num(n) << ", "
        << args << ")$power)\n";
      r << "emit(\"pwr_2p_power/" << k << "/" << j++ << "\", pwr.2p.test(h = " << h
        << ", n = " << Num(n) << ", " << pwr_args << ")$power)\n";
    }
  });
  int i = 0;
  for (const auto& c : kLargeDf) {
    const std::string args = "delta = " + Num(c[1]) +
                             ", alternative = " + Alternative(static_cast<int>(c[2])) +
                             ", strict = TRUE, tol = 1e-10";
    if (c[0] > 0) {
      r << "emit(\"t_large_df/" << i++ << "\", power.t.test(n = " << Num(c[0]) << ", " << args
        << ")$power)\n";
    } else {
      r << "emit(\"t_large_df/" << i++ << "\", power.t.test(power = 0.8, " << args << ")$n)\n";
    }
  }
  i = 0;
  for (double hr : kHazardRatios)
    for (double al : kAllocations)
      for (double a : kAlphas)
        for (double p : kPowers)
          for (int s : kSides) {
            const std::string k = std::to_string(i++);
            const std::string za = "qnorm(1 - " + Num(a) + " / " + std::to_string(s) + ")";
            const std::string v = Num(al) + " * (1 - " + Num(al) + ")";
            r << "d <- (" << za << " + qnorm(" << Num(p) << "))^2 / (" << v << " * log(" << Num(hr)
              << ")^2)\n";
            r << "emit(\"events/" << k << "\", d)\n";
            int j = 0;
            for (const auto& sv : kSurvival) {
              r << "lc <- log(2) / " << Num(sv[2]) << "\n";
              r << "P <- " << Num(al) << " * pev(lc * " << Num(hr) << ", " << Num(sv[0]) << ", "
                << Num(sv[1]) << ") + (1 - " << Num(al) << ") * pev(lc, " << Num(sv[0]) << ", "
                << Num(sv[1]) << ")\n";
              r << "emit(\"pev/" << k << "/" << j << "\", P)\n";
              r << "emit(\"subjects/" << k << "/" << j++ << "\", d / P)\n";
            }
            j = 0;
            for (double ev : kEvents) {
              r << "emit(\"lr_power/" << k << "/" << j++ << "\", pnorm(sqrt(" << Num(ev) << " * "
                << v << ") * abs(log(" << Num(hr) << ")) - " << za << "))\n";
            }
          }
  i = 0;
  for (const auto& c : kSimon) {
    r << "s <- simon_bf(" << Num(c.p0) << ", " << Num(c.p1) << ", " << Num(c.alpha) << ", "
      << Num(c.beta) << ", " << c.max_n << ")\n";
    r << "emit_simon(\"simon/" << i << "/optimal\", s$optimal)\n";
    r << "emit_simon(\"simon/" << i++ << "/minimax\", s$minimax)\n";
  }
  r << "close(out)\n";
  return r.str();
}

// --- Running R once --------------------------------------------------------------

class SampleSizeVsR : public testing::RComparisonTest<SampleSizeVsR> {
 public:
  static std::string Script() { return BuildScript(); }
  static constexpr std::chrono::seconds kTimeout{90};
};

// |ours - R| <= rel |R|; 5e-5 is agreement to 4 significant digits.
void ExpectRel(double ours, double r, double rel, const std::string& what) {
  EXPECT_LE(std::fabs(ours - r), rel * std::fabs(r)) << what << ": ours " << ours << ", R " << r;
}

constexpr double kSig4 = 5e-5;

codec::ComputeSampleSize Request(const char* test, double alpha, double power, int sides) {
  codec::ComputeSampleSize rq;
  rq.test = test;
  rq.alpha = alpha;
  rq.power = power;
  rq.sides = sides;
  return rq;
}

// --- The comparisons ---------------------------------------------------------------

// n per group and power, ComputeSampleSize("t_two_sample") against
// power.t.test(strict = TRUE) (tol 1e-10: agreement to 1e-6 relative) and
// pwr.t.test (its default tolerance: 4 significant digits).
TEST_F(SampleSizeVsR, TTestMatchesPowerTTestAndPwr) {
  int compared = 0;
  ForTGrid([&](const std::string& k, double e, double a, double p, int s) {
    auto rq = Request("t_two_sample", a, p, s);
    rq.delta = e * kSd;
    rq.sd = kSd;
    auto r = ComputeSampleSize(rq);
    ASSERT_TRUE(r.ok()) << r.status();
    ExpectRel(r->n, R("t_n/" + k), 1e-6, "power.t.test n " + k);
    ExpectRel(r->n, R("pwr_t_n/" + k), kSig4, "pwr.t.test n " + k);
    int j = 0;
    for (double n : kNs) {
      rq.solve_for = "power";
      rq.n = n;
      auto pw = ComputeSampleSize(rq);
      ASSERT_TRUE(pw.ok()) << pw.status();
      const std::string key = k + "/" + std::to_string(j++);
      EXPECT_NEAR(pw->power, R("t_power/" + key), 1e-8) << "power.t.test power " << key;
      EXPECT_NEAR(pw->power, R("pwr_t_power/" + key), 1e-8) << "pwr.t.test power " << key;
      compared += 2;
    }
    rq.solve_for = "n";
    compared += 2;
  });
  EXPECT_EQ(compared, 32 * 10);
}

// Where R's noncentral t uses its large-df approximation, so does ours.
TEST_F(SampleSizeVsR, TTestLargeDfFollowsR) {
  int i = 0;
  for (const auto& c : kLargeDf) {
    const std::string key = "t_large_df/" + std::to_string(i++);
    const int sides = static_cast<int>(c[2]);
    if (c[0] > 0) {
      auto p = PowerTTest(c[0], c[1], 1.0, 0.05, sides);
      ASSERT_TRUE(p.ok()) << p.status();
      EXPECT_NEAR(*p, R(key), 1e-10) << key;
    } else {
      auto n = SolveNTTest(c[1], 1.0, 0.05, 0.8, sides);
      ASSERT_TRUE(n.ok()) << n.status();
      EXPECT_GT(*n, 2e5);  // df beyond 4e5: the approximation is in use
      ExpectRel(*n, R(key), 1e-6, key);
    }
  }
}

// power.prop.test's formula (test "two_proportions") and pwr.2p.test's
// arcsine formula (test "two_proportions_arcsine"), each against its own R
// function.
TEST_F(SampleSizeVsR, TwoProportionsMatchPowerPropTestAndPwr2p) {
  int compared = 0;
  ForPropGrid([&](const std::string& k, double p1, double p2, double a, double p, int s) {
    auto rq = Request("two_proportions", a, p, s);
    rq.p1 = p1;
    rq.p2 = p2;
    auto r = ComputeSampleSize(rq);
    ASSERT_TRUE(r.ok()) << r.status();
    ExpectRel(r->n, R("prop_n/" + k), 1e-6, "power.prop.test n " + k);
    rq.test = "two_proportions_arcsine";
    auto h = ComputeSampleSize(rq);
    ASSERT_TRUE(h.ok()) << h.status();
    ExpectRel(h->n, R("pwr_2p_n/" + k), kSig4, "pwr.2p.test n " + k);
    int j = 0;
    for (double n : kPropNs) {
      const std::string key = k + "/" + std::to_string(j++);
      rq.solve_for = "power";
      rq.n = n;
      rq.test = "two_proportions";
      auto pw = ComputeSampleSize(rq);
      ASSERT_TRUE(pw.ok()) << pw.status();
      EXPECT_NEAR(pw->power, R("prop_power/" + key), 1e-10) << "power.prop.test power " << key;
      rq.test = "two_proportions_arcsine";
      auto ph = ComputeSampleSize(rq);
      ASSERT_TRUE(ph.ok()) << ph.status();
      EXPECT_NEAR(ph->power, R("pwr_2p_power/" + key), 1e-10) << "pwr.2p.test power " << key;
      compared += 2;
    }
    compared += 2;
  });
  EXPECT_EQ(compared, 32 * 8);
}

// Schoenfeld events, power from events, the event probability (R integrates
// over entry times with integrate()) and total subjects.
TEST_F(SampleSizeVsR, LogRankMatchesBaseR) {
  int i = 0, compared = 0;
  for (double hr : kHazardRatios)
    for (double al : kAllocations)
      for (double a : kAlphas)
        for (double p : kPowers)
          for (int s : kSides) {
            const std::string k = std::to_string(i++);
            int j = 0;
            for (const auto& sv : kSurvival) {
              auto rq = Request("log_rank", a, p, s);
              rq.hazard_ratio = hr;
              rq.allocation = al;
              rq.accrual_time = sv[0];
              rq.follow_up = sv[1];
              rq.median_control = sv[2];
              auto r = ComputeSampleSize(rq);
              ASSERT_TRUE(r.ok()) << r.status();
              const std::string key = k + "/" + std::to_string(j++);
              ExpectRel(r->events, R("events/" + k), 1e-12, "events " + k);
              ExpectRel(r->event_probability, R("pev/" + key), 1e-9, "event probability " + key);
              ExpectRel(r->n, R("subjects/" + key), 1e-9, "subjects " + key);
              compared += 3;
            }
            j = 0;
            for (double ev : kEvents) {
              auto rq = Request("log_rank", a, p, s);
              rq.solve_for = "power";
              rq.n = ev;
              rq.hazard_ratio = hr;
              rq.allocation = al;
              auto r = ComputeSampleSize(rq);
              ASSERT_TRUE(r.ok()) << r.status();
              const std::string key = k + "/" + std::to_string(j++);
              EXPECT_NEAR(r->power, R("lr_power/" + key), 1e-12) << "log-rank power " << key;
              ++compared;
            }
          }
  EXPECT_EQ(compared, 64 * 14);
}

// Simon's optimal and minimax designs against a brute-force search in R over
// the same range of n.
TEST_F(SampleSizeVsR, SimonMatchesBruteForceInR) {
  int i = 0;
  for (const auto& c : kSimon) {
    for (auto criterion : {SimonCriterion::kOptimal, SimonCriterion::kMinimax}) {
      const std::string key = "simon/" + std::to_string(i) + "/" +
                              (criterion == SimonCriterion::kOptimal ? "optimal" : "minimax");
      auto s = SimonTwoStage(c.p0, c.p1, c.alpha, 1 - c.beta, criterion, c.max_n);
      ASSERT_TRUE(s.ok()) << key << ": " << s.status();
      EXPECT_EQ(s->r1, R(key + "/r1")) << key;
      EXPECT_EQ(s->n1, R(key + "/n1")) << key;
      EXPECT_EQ(s->r, R(key + "/r")) << key;
      EXPECT_EQ(s->n, R(key + "/n")) << key;
      EXPECT_NEAR(s->en0, R(key + "/en0"), 1e-10) << key;
      EXPECT_NEAR(s->pet0, R(key + "/pet0"), 1e-12) << key;
      EXPECT_NEAR(s->alpha, R(key + "/alpha"), 1e-12) << key;
      EXPECT_NEAR(s->power, R(key + "/power"), 1e-12) << key;
    }
    ++i;
  }
}

}  // namespace
}  // namespace fedrx::trial
