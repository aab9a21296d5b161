// Pharmacokinetics: closed-form checks of the three models (AUC = F·Dose/CL,
// tmax, two-compartment macro constants), superposition against the closed
// form of accumulation at steady state, metrics and exposure margins, and bad
// input answered with InvalidArgument naming the field.
#include "services/translational/pk.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

namespace fedrx::translational {
namespace {

codec::PkModel Iv1(double cl = 5, double v = 50) {
  codec::PkModel m;
  m.kind = "iv_bolus_1cmt";
  m.cl_l_per_h = cl;
  m.v_l = v;
  return m;
}

codec::PkModel Oral1(double cl = 5, double v = 50, double ka = 1.2, double f = 0.8) {
  codec::PkModel m;
  m.kind = "oral_1cmt";
  m.cl_l_per_h = cl;
  m.v_l = v;
  m.ka_per_h = ka;
  m.bioavailability = f;
  return m;
}

codec::PkModel Iv2(double cl = 4, double v1 = 20, double q = 8, double v2 = 60) {
  codec::PkModel m;
  m.kind = "iv_bolus_2cmt";
  m.cl_l_per_h = cl;
  m.v_l = v1;
  m.q_l_per_h = q;
  m.v2_l = v2;
  return m;
}

double Metric(const codec::PkProfile& p, const std::string& name) {
  for (const auto& q : p.metrics) {
    if (q.name == name) return q.value;
  }
  ADD_FAILURE() << "no metric " << name;
  return std::nan("");
}

bool HasMetric(const codec::PkProfile& p, const std::string& name) {
  for (const auto& q : p.metrics) {
    if (q.name == name) return true;
  }
  return false;
}

// ∫ C over [a, b] by composite Simpson with `n` (even) panels.
template <typename F>
double Simpson(F f, double a, double b, int n = 20000) {
  const double h = (b - a) / n;
  double s = f(a) + f(b);
  for (int i = 1; i < n; ++i) s += f(a + i * h) * (i % 2 ? 4 : 2);
  return s * h / 3;
}

// IV bolus: C(0) = D/V, C(t) = D/V·e^(−kt), AUC = D/CL both analytically and
// by integrating the profile, t½ = ln 2·V/CL.
TEST(PkTest, IvBolusOneCompartmentClosedForm) {
  const codec::PkModel m = Iv1(5, 50);
  EXPECT_DOUBLE_EQ(Concentration(m, 100, 0), 2.0);
  EXPECT_NEAR(Concentration(m, 100, 3), 2.0 * std::exp(-0.1 * 3), 1e-15);
  EXPECT_DOUBLE_EQ(Concentration(m, 100, -1), 0);
  EXPECT_DOUBLE_EQ(AucInf(m, 100), 20.0);
  EXPECT_NEAR(Simpson([&](double t) { return Concentration(m, 100, t); }, 0, 400), 20.0, 1e-9);
  EXPECT_NEAR(TerminalHalfLife(m), std::log(2.0) * 10, 1e-12);
  EXPECT_DOUBLE_EQ(Cmax(m, 100), 2.0);
  EXPECT_DOUBLE_EQ(Tmax(m), 0);
}

// Oral: AUC = F·D/CL; tmax = ln(ka/k)/(ka − k); dC/dt = 0 there; Cmax = C(tmax).
TEST(PkTest, OralOneCompartmentClosedForm) {
  const codec::PkModel m = Oral1(5, 50, 1.2, 0.8);
  const double k = 0.1, ka = 1.2;
  EXPECT_NEAR(AucInf(m, 100), 0.8 * 100 / 5, 1e-12);
  EXPECT_NEAR(Simpson([&](double t) { return Concentration(m, 100, t); }, 0, 500), 16.0, 1e-8);
  const double tmax = std::log(ka / k) / (ka - k);  // 2.259 h
  EXPECT_NEAR(Tmax(m), tmax, 1e-13);
  const double expected_c =
      0.8 * 100 * ka / (50 * (ka - k)) * (std::exp(-k * 5) - std::exp(-ka * 5));
  EXPECT_NEAR(Concentration(m, 100, 5), expected_c, 1e-14);
  const double cmax = Cmax(m, 100);
  EXPECT_NEAR(cmax, Concentration(m, 100, tmax), 1e-15);
  EXPECT_GT(cmax, Concentration(m, 100, tmax - 1e-3));
  EXPECT_GT(cmax, Concentration(m, 100, tmax + 1e-3));
  EXPECT_EQ(Concentration(m, 100, 0), 0);
}

// ka == k: the limit F·D·k/V·t·e^(−kt), tmax = 1/k; ka within 1e-9 of k gives
// the same numbers (no cancellation); AUC still F·D/CL.
TEST(PkTest, OralEqualRatesUsesTheLimit) {
  const codec::PkModel m = Oral1(5, 50, 0.1, 1);
  EXPECT_NEAR(Concentration(m, 100, 4), 100 * 0.1 / 50 * 4 * std::exp(-0.4), 1e-15);
  EXPECT_NEAR(Tmax(m), 10, 1e-12);
  const codec::PkModel near = Oral1(5, 50, 0.1 * (1 + 1e-9), 1);
  EXPECT_NEAR(Concentration(near, 100, 4), Concentration(m, 100, 4), 1e-9);
  EXPECT_NEAR(Tmax(near), 10, 1e-6);
  EXPECT_NEAR(Simpson([&](double t) { return Concentration(m, 100, t); }, 0, 800), 20.0, 1e-8);
  auto p = SimulatePk({m, 100, 12, 30, {}, 0, 0});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE(std::isfinite(Metric(*p, "css_max")));
  // Steady-state trough by brute-force superposition of 1000 doses.
  double trough = 0;
  for (int j = 1; j <= 1000; ++j) trough += Concentration(m, 100, j * 12.0);
  EXPECT_NEAR(Metric(*p, "css_min"), trough, 1e-9 * trough);
}

// Two compartments: α + β = k10 + k12 + k21, α·β = k10·k21, A + B = D/V1,
// AUC = A/α + B/β = D/CL, and integrating the profile agrees.
TEST(PkTest, TwoCompartmentMacroConstants) {
  const codec::PkModel m = Iv2(4, 20, 8, 60);
  const double k10 = 0.2, k12 = 0.4, k21 = 8.0 / 60;
  auto p = SimulatePk({m, 100, 0, 1, {}, 0, 0});
  ASSERT_TRUE(p.ok()) << p.status();
  double alpha = 0, beta = 0, a = 0, b = 0;
  for (const auto& s : p->working.steps) {
    if (s.result.name == "alpha") alpha = s.result.value;
    if (s.result.name == "beta") beta = s.result.value;
    if (s.result.name == "A") a = s.result.value;
    if (s.result.name == "B") b = s.result.value;
  }
  EXPECT_NEAR(alpha + beta, k10 + k12 + k21, 1e-14);
  EXPECT_NEAR(alpha * beta, k10 * k21, 1e-15);
  EXPECT_NEAR(a + b, 100.0 / 20, 1e-13);
  EXPECT_NEAR(a / alpha + b / beta, 100.0 / 4, 1e-12);
  EXPECT_NEAR(Concentration(m, 100, 0), 5.0, 1e-14);
  EXPECT_NEAR(Concentration(m, 100, 7), a * std::exp(-alpha * 7) + b * std::exp(-beta * 7), 1e-14);
  EXPECT_DOUBLE_EQ(AucInf(m, 100), 25.0);
  EXPECT_NEAR(Simpson([&](double t) { return Concentration(m, 100, t); }, 0, 2000, 200000), 25.0,
              1e-7);
  EXPECT_NEAR(Metric(*p, "t_half"), std::log(2.0) / beta, 1e-12);
  EXPECT_NEAR(Metric(*p, "auc_0_inf"), 25.0, 1e-12);
  EXPECT_NEAR(Metric(*p, "cmax"), 5.0, 1e-14);
}

// Superposition of many doses reaches the closed-form steady state:
// Css(s) = D/V·e^(−ks)/(1 − e^(−kτ)); accumulation ratio 1/(1 − e^(−kτ));
// Css,avg = AUC/τ; the last interval's AUC tends to the single-dose AUC∞.
TEST(PkTest, IvSuperpositionReachesClosedFormSteadyState) {
  const codec::PkModel m = Iv1(5, 50);
  const double k = 0.1, tau = 8, d = 100;
  auto p = SimulatePk({m, d, tau, 400, {}, 0, 0});
  ASSERT_TRUE(p.ok()) << p.status();
  const double r = 1 / (1 - std::exp(-k * tau));
  EXPECT_NEAR(Metric(*p, "accumulation_ratio"), r, 1e-13);
  EXPECT_NEAR(Metric(*p, "css_max"), d / 50 * r, 1e-13);
  EXPECT_NEAR(Metric(*p, "css_min"), d / 50 * std::exp(-k * tau) * r, 1e-13);
  EXPECT_NEAR(Metric(*p, "css_avg"), 20.0 / tau, 1e-13);
  EXPECT_NEAR(Metric(*p, "auc_0_tau"), 20.0, 1e-9);
  EXPECT_NEAR(Metric(*p, "cmax"), d / 50 * r, 1e-10);  // 400 doses: at steady state
  EXPECT_NEAR(Metric(*p, "tmax"), 399 * tau, 1e-9);
  // The profile's last sampled interval equals the closed form.
  auto q = SimulatePk({m, d, tau, 400, {399 * tau + 3}, 0, 0});
  ASSERT_TRUE(q.ok());
  EXPECT_NEAR(q->conc_mg_per_l[0], d / 50 * std::exp(-k * 3) * r, 1e-12);
}

// Oral at steady state: superposed peak and trough equal the closed form, the
// peak time being ln(ka(1 − e^(−kτ)) / (k(1 − e^(−ka τ))))/(ka − k).
TEST(PkTest, OralSuperpositionReachesClosedFormSteadyState) {
  const codec::PkModel m = Oral1(5, 50, 1.2, 0.8);
  const double k = 0.1, ka = 1.2, tau = 12, d = 100;
  const double c = 0.8 * d * ka / (50 * (ka - k));
  auto css = [&](double s) {
    return c * (std::exp(-k * s) / (1 - std::exp(-k * tau)) -
                std::exp(-ka * s) / (1 - std::exp(-ka * tau)));
  };
  const double s_peak =
      std::log(ka * (1 - std::exp(-k * tau)) / (k * (1 - std::exp(-ka * tau)))) / (ka - k);
  auto p = SimulatePk({m, d, tau, 300, {}, 0, 0});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_NEAR(Metric(*p, "css_max"), css(s_peak), 1e-12);
  EXPECT_NEAR(Metric(*p, "css_min"), css(tau), 1e-12);
  EXPECT_NEAR(Metric(*p, "css_avg"), 0.8 * d / 5 / tau, 1e-13);
  EXPECT_NEAR(Metric(*p, "cmax"), css(s_peak), 1e-9);
  EXPECT_NEAR(Metric(*p, "tmax"), 299 * tau + s_peak, 1e-5);
  EXPECT_NEAR(Metric(*p, "accumulation_ratio"), 1 / (1 - std::exp(-k * tau)), 1e-13);
}

// Two doses: Cmax over the regimen equals a brute-force grid maximum after the
// second dose, and the last interval's AUC equals the integral of the profile.
TEST(PkTest, FewDosesMetricsMatchBruteForce) {
  const codec::PkModel m = Oral1(5, 50, 0.7, 1);
  const double tau = 6, d = 100;
  auto conc = [&](double t) { return Concentration(m, d, t) + Concentration(m, d, t - tau); };
  double grid_max = 0;
  for (int i = 0; i <= 200000; ++i) grid_max = std::max(grid_max, conc(tau + i * 1e-4 * 2));
  auto p = SimulatePk({m, d, tau, 2, {}, 0, 0});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_GE(Metric(*p, "cmax"), grid_max - 1e-14);
  EXPECT_NEAR(Metric(*p, "cmax"), grid_max, 1e-7);
  EXPECT_GT(Metric(*p, "tmax"), tau);
  EXPECT_NEAR(Metric(*p, "auc_0_tau"), Simpson(conc, tau, 2 * tau), 1e-9);
  // Profile at given times is the superposed concentration.
  auto q = SimulatePk({m, d, tau, 2, {1, 7, 9.5}, 0, 0});
  ASSERT_TRUE(q.ok());
  EXPECT_NEAR(q->conc_mg_per_l[1], conc(7), 1e-15);
  EXPECT_NEAR(q->conc_mg_per_l[2], conc(9.5), 1e-15);
}

// Margins: NOAEL exposure over human exposure; single dose uses AUC∞ and
// Cmax, multiple dosing the steady-state AUCτ and Css,max.
TEST(PkTest, ExposureMargins) {
  const codec::PkModel m = Iv1(5, 50);
  auto single = SimulatePk({m, 100, 0, 1, {}, 200, 10});
  ASSERT_TRUE(single.ok());
  EXPECT_NEAR(Metric(*single, "margin_auc"), 200.0 / 20, 1e-12);
  EXPECT_NEAR(Metric(*single, "margin_cmax"), 10.0 / 2, 1e-12);
  EXPECT_FALSE(HasMetric(*single, "css_max"));
  auto multi = SimulatePk({m, 100, 8, 3, {}, 200, 10});
  ASSERT_TRUE(multi.ok());
  EXPECT_NEAR(Metric(*multi, "margin_auc"), 200.0 / 20, 1e-12);
  EXPECT_NEAR(Metric(*multi, "margin_cmax"), 10.0 / Metric(*multi, "css_max"), 1e-12);
  auto none = SimulatePk({m, 100, 0, 1, {}, 0, 0});
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(HasMetric(*none, "margin_auc"));
  EXPECT_FALSE(HasMetric(*none, "margin_cmax"));
}

// The default grid starts at 0 and runs past five half-lives.
TEST(PkTest, DefaultGrid) {
  auto p = SimulatePk({Iv1(5, 50), 100, 0, 1, {}, 0, 0});
  ASSERT_TRUE(p.ok());
  ASSERT_EQ(p->times_h.size(), p->conc_mg_per_l.size());
  ASSERT_GT(p->times_h.size(), 10u);
  EXPECT_EQ(p->times_h.front(), 0);
  EXPECT_DOUBLE_EQ(p->conc_mg_per_l.front(), 2.0);
  EXPECT_NEAR(p->times_h.back(), 5 * std::log(2.0) * 10, 1e-9);  // 5 t½ + tmax (0)
  // Many doses: an even grid of 2001 points over the whole regimen.
  auto many = SimulatePk({Iv1(5, 50), 100, 1, 5000, {}, 0, 0});
  ASSERT_TRUE(many.ok()) << many.status();
  EXPECT_EQ(many->times_h.size(), 2001u);
  EXPECT_DOUBLE_EQ(many->times_h.back(), 5000);
}

void ExpectInvalid(const codec::SimulatePk& req, const std::string& where) {
  auto r = SimulatePk(req);
  ASSERT_FALSE(r.ok()) << "expected an error at " << where;
  EXPECT_EQ(r.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().where(), where) << r.status();
}

// Bad input: InvalidArgument naming the field.
TEST(PkTest, RejectsBadInput) {
  codec::PkModel m = Iv1();
  m.kind = "three_cmt";
  ExpectInvalid({m, 100, 0, 1, {}, 0, 0}, "SimulatePk.model.kind");
  ExpectInvalid({Iv1(-5, 50), 100, 0, 1, {}, 0, 0}, "SimulatePk.model.cl_l_per_h");
  ExpectInvalid({Iv1(5, std::nan("")), 100, 0, 1, {}, 0, 0}, "SimulatePk.model.v_l");
  ExpectInvalid({Oral1(5, 50, 0, 1), 100, 0, 1, {}, 0, 0}, "SimulatePk.model.ka_per_h");
  ExpectInvalid({Oral1(5, 50, 1, 0), 100, 0, 1, {}, 0, 0}, "SimulatePk.model.bioavailability");
  ExpectInvalid({Oral1(5, 50, 1, 1.5), 100, 0, 1, {}, 0, 0}, "SimulatePk.model.bioavailability");
  ExpectInvalid({Iv2(4, 20, 0, 60), 100, 0, 1, {}, 0, 0}, "SimulatePk.model.q_l_per_h");
  ExpectInvalid({Iv2(4, 20, 8, -1), 100, 0, 1, {}, 0, 0}, "SimulatePk.model.v2_l");
  ExpectInvalid({Iv1(), -100, 0, 1, {}, 0, 0}, "SimulatePk.dose_mg");
  ExpectInvalid({Iv1(), INFINITY, 0, 1, {}, 0, 0}, "SimulatePk.dose_mg");
  ExpectInvalid({Iv1(), 100, 0, 0, {}, 0, 0}, "SimulatePk.doses");
  ExpectInvalid({Iv1(), 100, 0, kMaxDoses + 1, {}, 0, 0}, "SimulatePk.doses");
  ExpectInvalid({Iv1(), 100, 0, 2, {}, 0, 0}, "SimulatePk.tau_h");
  ExpectInvalid({Iv1(), 100, 0, 1, {0, 1, -2}, 0, 0}, "SimulatePk.times_h[2]");
  ExpectInvalid({Iv1(), 100, 0, 1, {std::nan("")}, 0, 0}, "SimulatePk.times_h[0]");
  ExpectInvalid({Iv1(), 100, 0, 1, {}, -1, 0}, "SimulatePk.noael_auc_mg_h_per_l");
  ExpectInvalid({Iv1(), 100, 0, 1, {}, 0, std::nan("")}, "SimulatePk.noael_cmax_mg_per_l");
  ExpectInvalid({Iv1(), 100, 1, kMaxDoses, std::vector<double>(10000, 1.0), 0, 0},
                "SimulatePk.times_h");  // times × doses over the bound
  EXPECT_EQ(ValidatePkModel(Iv1(0, 50), "X").where(), "X.cl_l_per_h");
  EXPECT_TRUE(ValidatePkModel(Iv2(), "X").ok());
}

}  // namespace
}  // namespace fedrx::translational
