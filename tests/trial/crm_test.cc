// CRM: the dfcrm skeleton (indifference-interval spacing), posterior
// summaries against brute-force integration (1e-6), the dosing rules (no
// skipping, overdose control, safety stop) and selection in a scenario with a
// clearly correct dose.
#include "services/trial/crm.h"

#include <gtest/gtest.h>

#include <cmath>
#include <deque>
#include <vector>

#include "tests/trial/scripted_source.h"

namespace fedrx::trial {
namespace {

// getprior's defining property: s_nu = target, and for each pair of
// neighbours the a where the upper dose reaches target + halfwidth is where
// the lower reaches target - halfwidth.
TEST(CrmSkeletonTest, IndifferenceIntervalSpacing) {
  for (int nlevel : {1, 4, 5, 6}) {
    const double target = 0.25, hw = 0.05;
    const int nu = (nlevel + 1) / 2;
    const std::vector<double> s = DfcrmSkeleton(hw, target, nu, nlevel);
    ASSERT_EQ(static_cast<int>(s.size()), nlevel);
    EXPECT_DOUBLE_EQ(s[nu - 1], target);
    for (int k = 1; k < nlevel; ++k) {
      EXPECT_GT(s[k], s[k - 1]);
      const double b_upper = std::log(std::log(target + hw) / std::log(s[k]));
      const double b_lower = std::log(std::log(target - hw) / std::log(s[k - 1]));
      EXPECT_NEAR(b_upper, b_lower, 1e-12);
    }
  }
  // Hand-computed: target 0.3, 5 levels, nu 3: s2 = 0.25^(ln 0.3 / ln 0.35).
  const std::vector<double> s = DfcrmSkeleton(0.05, 0.3, 3, 5);
  EXPECT_NEAR(s[1], std::pow(0.25, std::log(0.3) / std::log(0.35)), 1e-12);
  EXPECT_NEAR(s[1], 0.2040, 5e-4);
}

struct Brute {
  std::vector<double> mean, above;
};

// Posterior by composite Simpson with 400000 intervals on [-14 sd, 14 sd].
Brute BruteForce(const std::vector<double>& skel, double sd, double target,
                 const std::vector<int>& n, const std::vector<int>& y) {
  const int m = 400000;
  const double lo = -14 * sd, hi = 14 * sd, h = (hi - lo) / m;
  const int k = static_cast<int>(skel.size());
  std::vector<double> lpost(m + 1);
  double mx = -INFINITY;
  for (int i = 0; i <= m; ++i) {
    const double a = lo + i * h;
    double l = -a * a / (2 * sd * sd);
    for (int d = 0; d < k; ++d) {
      const double lp = std::exp(a) * std::log(skel[d]);
      l += y[d] * lp + (n[d] - y[d]) * std::log(-std::expm1(lp));
    }
    lpost[i] = l;
    mx = std::max(mx, l);
  }
  Brute b;
  b.mean.assign(k, 0);
  b.above.assign(k, 0);
  double z = 0;
  for (int i = 0; i <= m; ++i) {
    const double a = lo + i * h;
    const double w = std::exp(lpost[i] - mx) * ((i == 0 || i == m) ? 1 : (i % 2 ? 4 : 2));
    z += w;
    for (int d = 0; d < k; ++d) {
      b.mean[d] += w * std::pow(skel[d], std::exp(a));
    }
  }
  for (int d = 0; d < k; ++d) b.mean[d] /= z;
  // Tails: p_d > target <=> a < c_d; Simpson on [lo, c_d] with its own grid.
  for (int d = 0; d < k; ++d) {
    const double c = std::min(hi, std::log(std::log(target) / std::log(skel[d])));
    if (c <= lo) continue;
    const double hc = (c - lo) / m;
    double t = 0;
    for (int i = 0; i <= m; ++i) {
      const double a = lo + i * hc;
      double l = -a * a / (2 * sd * sd);
      for (int e = 0; e < k; ++e) {
        const double lp = std::exp(a) * std::log(skel[e]);
        l += y[e] * lp + (n[e] - y[e]) * std::log(-std::expm1(lp));
      }
      t += std::exp(l - mx) * ((i == 0 || i == m) ? 1 : (i % 2 ? 4 : 2));
    }
    b.above[d] = t * hc / (z * h);
  }
  return b;
}

// Posterior means of p_d and tails P(p_d > target) to 1e-6 for data sets
// from none to many DLTs.
TEST(CrmPosteriorTest, MatchesBruteForceIntegration) {
  const std::vector<double> skel = {0.05, 0.12, 0.25, 0.40, 0.55};
  const CrmPosterior post(skel, 1.16, 0.25, 30);
  const std::vector<std::vector<int>> ns = {
      {0, 0, 0, 0, 0}, {3, 0, 0, 0, 0}, {3, 3, 6, 3, 0}, {3, 3, 12, 9, 3}, {3, 0, 0, 0, 0}};
  const std::vector<std::vector<int>> ys = {
      {0, 0, 0, 0, 0}, {3, 0, 0, 0, 0}, {0, 1, 2, 2, 0}, {0, 0, 3, 4, 3}, {0, 0, 0, 0, 0}};
  for (std::size_t c = 0; c < ns.size(); ++c) {
    CrmPosterior::Summary s;
    post.Update(ns[c], ys[c], s);
    const Brute b = BruteForce(skel, 1.16, 0.25, ns[c], ys[c]);
    for (int d = 0; d < 5; ++d) {
      EXPECT_NEAR(s.mean_tox[d], b.mean[d], 1e-6) << "case " << c << " dose " << d;
      EXPECT_NEAR(s.p_above[d], b.above[d], 1e-6) << "case " << c << " dose " << d;
      if (d > 0) {
        EXPECT_GE(s.p_above[d], s.p_above[d - 1]);
      }
    }
  }
}

// With no data the posterior is the prior: P(p_d > target) = P(a < c_d) =
// Phi(c_d / sd), c_d = ln(ln target / ln s_d).
TEST(CrmPosteriorTest, PriorTailIsNormalCdf) {
  const std::vector<double> skel = {0.05, 0.12, 0.25, 0.40, 0.55};
  const CrmPosterior post(skel, 1.16, 0.25, 30);
  CrmPosterior::Summary s;
  post.Update({0, 0, 0, 0, 0}, {0, 0, 0, 0, 0}, s);
  for (int d = 0; d < 5; ++d) {
    const double c = std::log(std::log(0.25) / std::log(skel[d]));
    EXPECT_NEAR(s.p_above[d], 0.5 * std::erfc(-c / 1.16 / std::sqrt(2.0)), 1e-9);
  }
  EXPECT_NEAR(s.mean_a, 0.0, 1e-9);
}

using test_support::ScriptedSource;

codec::EscalationDesign CrmDesignRequest(int max_patients, double odp = 1.0) {
  codec::EscalationDesign d;
  d.design = "crm";
  d.target = 0.3;
  d.cohort_size = 3;
  d.max_patients = max_patients;
  d.overdose_probability = odp;
  return d;
}

// Without DLTs the CRM climbs one level per cohort (no skipping), even
// without overdose control, and selects the top dose.
TEST(CrmDesignTest, NoSkippingWhenEscalating) {
  auto f = MakeDoseFinder(CrmDesignRequest(15), 5, "design");
  ASSERT_TRUE(f.ok()) << f.status();
  ScriptedSource src({{}, {}, {}, {}, {}});
  Rng rng(3);
  const TrialRecord r = (*f)->Run(src, rng);
  EXPECT_EQ(r.patients, (std::vector<int>{3, 3, 3, 3, 3}));
  EXPECT_EQ(r.mtd, 4);
}

// Overdose control: after 0/3 at dose 1 the model recommends escalating, but
// dose 2's P(p > 0.3) exceeds 0.05, so a limit of 0.05 keeps the second
// cohort at dose 1 while no limit (1.0) escalates to dose 2.
TEST(CrmDesignTest, OverdoseControlLimitsEscalation) {
  auto strict = MakeDoseFinder(CrmDesignRequest(6, 0.05), 5, "design");
  auto loose = MakeDoseFinder(CrmDesignRequest(6, 1.0), 5, "design");
  ASSERT_TRUE(strict.ok() && loose.ok());
  auto* crm = dynamic_cast<CrmDesign*>(strict->get());
  ASSERT_NE(crm, nullptr);
  CrmPosterior::Summary s;
  crm->posterior().Update({3, 0, 0, 0, 0}, {0, 0, 0, 0, 0}, s);
  ASSERT_GT(s.p_above[1], 0.05);
  EXPECT_GE(crm->Recommend(s, 1), 1);
  EXPECT_EQ(crm->NextDose(s, 0, 0), 0);
  Rng rng(5);
  ScriptedSource a({{}, {}, {}, {}, {}}), b({{}, {}, {}, {}, {}});
  EXPECT_EQ((*strict)->Run(a, rng).patients, (std::vector<int>{6, 0, 0, 0, 0}));
  EXPECT_EQ((*loose)->Run(b, rng).patients, (std::vector<int>{3, 3, 0, 0, 0}));
}

// 3/3 DLTs at the lowest dose: P(p_1 > 0.3) > 0.9, the trial stops with no
// MTD after 3 patients.
TEST(CrmDesignTest, SafetyStopAtLowestDose) {
  auto f = MakeDoseFinder(CrmDesignRequest(30), 5, "design");
  ASSERT_TRUE(f.ok());
  ScriptedSource src({{3}, {}, {}, {}, {}});
  Rng rng(3);
  const TrialRecord r = (*f)->Run(src, rng);
  auto* crm = dynamic_cast<CrmDesign*>(f->get());
  CrmPosterior::Summary s;
  crm->posterior().Update({3, 0, 0, 0, 0}, {3, 0, 0, 0, 0}, s);
  EXPECT_GT(s.p_above[0], kCrmSafetyStopProbability);
  EXPECT_EQ(r.patients, (std::vector<int>{3, 0, 0, 0, 0}));
  EXPECT_EQ(r.mtd, -1);
}

// A scenario with a clearly correct dose (0.02, 0.06, 0.12, 0.30, 0.55,
// 0.75), target 0.3, default overdose control 0.25: dose 4 is selected most
// often. With a gentler slope (0.05, 0.10, 0.20, 0.30, 0.50, 0.70) overdose
// control at 0.25 keeps most patients below dose 4 (the dose below is then
// chosen more often); without it (1.0) dose 4 is again the most selected. A
// deadly scenario mostly stops early.
TEST(CrmDesignTest, SelectsClearlyCorrectDose) {
  codec::SimulateEscalation req;
  req.design = CrmDesignRequest(30, 0.25);
  req.true_tox = {0.02, 0.06, 0.12, 0.30, 0.55, 0.75};
  req.trials = 2000;
  req.seed = 11;
  auto oc = SimulateEscalation(req);
  ASSERT_TRUE(oc.ok()) << oc.status();
  for (int d : {0, 1, 2, 4, 5}) EXPECT_GT(oc->selection_pct[3], oc->selection_pct[d]);
  EXPECT_GT(oc->correct_selection_pct, 50.0);
  EXPECT_DOUBLE_EQ(oc->correct_selection_pct, oc->selection_pct[3]);

  req.design.overdose_probability = 1.0;
  req.true_tox = {0.05, 0.10, 0.20, 0.30, 0.50, 0.70};
  oc = SimulateEscalation(req);
  ASSERT_TRUE(oc.ok());
  for (int d : {0, 1, 2, 4, 5}) EXPECT_GT(oc->selection_pct[3], oc->selection_pct[d]);

  req.true_tox = {0.7, 0.8, 0.85, 0.9, 0.95, 0.97};
  auto toxic = SimulateEscalation(req);
  ASSERT_TRUE(toxic.ok());
  EXPECT_GT(toxic->early_stop_pct, 80.0);
}

// Bad skeletons are rejected with the index in `where`.
TEST(CrmDesignTest, RejectsBadSkeleton) {
  codec::SimulateEscalation req;
  req.design = CrmDesignRequest(30);
  req.true_tox = {0.1, 0.2, 0.3};
  req.design.skeleton = {0.1, 0.3, 0.2};
  auto oc = SimulateEscalation(req);
  ASSERT_FALSE(oc.ok());
  EXPECT_EQ(oc.status().where(), "SimulateEscalation.design.skeleton[2]");
  req.design.skeleton = {0.1, 0.3};
  oc = SimulateEscalation(req);
  ASSERT_FALSE(oc.ok());
  EXPECT_EQ(oc.status().where(), "SimulateEscalation.design.skeleton");
  req.design.skeleton = {};
  req.design.prior_sd = 0;
  oc = SimulateEscalation(req);
  ASSERT_FALSE(oc.ok());
  EXPECT_EQ(oc.status().where(), "SimulateEscalation.design.prior_sd");
}

}  // namespace
}  // namespace fedrx::trial
