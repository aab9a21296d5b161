// FitPk without R: recovers known parameters from a profile with small fixed
// errors, gives the same optimum from given starts, derives ke, ka, CL/F and
// t½ with delta-method errors, fails with FailedPrecondition (never a number)
// when the gradient is singular, and rejects bad input with InvalidArgument.
#include "services/translational/pk_fit.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "services/translational/pk.h"

namespace fedrx::translational {
namespace {

// Theophylline-like profile (dose 320 mg, ke 0.08, ka 1.5, CL/F 3 L/h) with
// fixed ±3 % errors so that the residuals are not zero.
codec::FitPk Profile() {
  codec::FitPk r;
  r.dose_mg = 320;
  r.times_h = {0.25, 0.5, 1, 2, 3.5, 5, 7, 9, 12, 24};
  codec::PkModel m;
  m.kind = "oral_1cmt";
  m.cl_l_per_h = 3;
  m.v_l = 3 / 0.08;
  m.ka_per_h = 1.5;
  m.bioavailability = 1;
  const double err[] = {0.03, -0.02, 0.01, -0.03, 0.02, -0.01, 0.03, -0.02, 0.01, -0.03};
  for (std::size_t i = 0; i < r.times_h.size(); ++i) {
    r.conc_mg_per_l.push_back(Concentration(m, 320, r.times_h[i]) * (1 + err[i]));
  }
  return r;
}

const codec::Estimate& Est(const codec::PkFit& f, const std::string& name) {
  for (const auto& e : f.estimates) {
    if (e.name == name) return e;
  }
  static codec::Estimate none;
  ADD_FAILURE() << "no estimate " << name;
  return none;
}

TEST(FitPkTest, RecoversParametersAndDerivesQuantities) {
  auto fit = FitPk(Profile());
  ASSERT_TRUE(fit.ok()) << fit.status();
  EXPECT_NEAR(Est(*fit, "ke").value, 0.08, 0.004);
  EXPECT_NEAR(Est(*fit, "ka").value, 1.5, 0.15);
  EXPECT_NEAR(Est(*fit, "cl").value, 3, 0.1);
  EXPECT_EQ(fit->df, 7);
  EXPECT_GT(fit->iterations, 0);
  EXPECT_GT(fit->residual_se, 0);
  ASSERT_EQ(fit->fitted.size(), 10u);
  // Derived values and their delta-method errors.
  const auto& lke = Est(*fit, "lKe");
  EXPECT_NEAR(Est(*fit, "ke").value, std::exp(lke.value), 1e-15);
  EXPECT_NEAR(Est(*fit, "ke").std_error, std::exp(lke.value) * lke.std_error, 1e-15);
  EXPECT_NEAR(Est(*fit, "t_half").value, std::log(2.0) / std::exp(lke.value), 1e-12);
  EXPECT_NEAR(Est(*fit, "t_half").std_error, Est(*fit, "t_half").value * lke.std_error, 1e-12);
  const auto& lcl = Est(*fit, "lCl");
  EXPECT_NEAR(Est(*fit, "cl").std_error, std::exp(lcl.value) * lcl.std_error, 1e-15);
  // residual_se² · df is the residual sum of squares of the fitted values.
  double rss = 0;
  for (std::size_t i = 0; i < 10; ++i) {
    const double r = Profile().conc_mg_per_l[i] - fit->fitted[i];
    rss += r * r;
  }
  EXPECT_NEAR(fit->residual_se * fit->residual_se * 7, rss, 1e-12 * rss + 1e-15);
}

// Given starting values lead to the same optimum as the data-derived ones.
TEST(FitPkTest, GivenStartReachesSameOptimum) {
  auto automatic = FitPk(Profile());
  ASSERT_TRUE(automatic.ok());
  codec::FitPk req = Profile();
  req.start = {{"lKe", std::log(0.05), ""}, {"lKa", std::log(3.0), ""}, {"lCl", std::log(5.0), ""}};
  auto given = FitPk(req);
  ASSERT_TRUE(given.ok()) << given.status();
  for (int i = 0; i < 3; ++i) {
    EXPECT_NEAR(given->estimates[i].value, automatic->estimates[i].value, 1e-5);
    EXPECT_NEAR(given->estimates[i].std_error, automatic->estimates[i].std_error, 1e-5);
  }
}

// Rates so large that every prediction is 0: the gradient is singular and the
// answer is FailedPrecondition, not a number.
TEST(FitPkTest, SingularGradientIsFailedPrecondition) {
  codec::FitPk req = Profile();
  req.start = {{"lKe", 40, ""}, {"lKa", 41, ""}, {"lCl", 0, ""}};
  auto fit = FitPk(req);
  ASSERT_FALSE(fit.ok());
  EXPECT_EQ(fit.status().code(), core::StatusCode::kFailedPrecondition) << fit.status();
  EXPECT_EQ(fit.status().where(), "FitPk");
}

void ExpectInvalid(const codec::FitPk& req, const std::string& where) {
  auto r = FitPk(req);
  ASSERT_FALSE(r.ok()) << "expected an error at " << where;
  EXPECT_EQ(r.status().code(), core::StatusCode::kInvalidArgument) << r.status();
  EXPECT_EQ(r.status().where(), where) << r.status();
}

TEST(FitPkTest, RejectsBadInput) {
  codec::FitPk r = Profile();
  r.conc_mg_per_l.pop_back();
  ExpectInvalid(r, "FitPk.conc_mg_per_l");
  ExpectInvalid({{0, 1, 2}, {0, 1, 0.5}, 100, {}}, "FitPk.times_h");
  r = Profile();
  r.conc_mg_per_l[3] = std::nan("");
  ExpectInvalid(r, "FitPk.conc_mg_per_l[3]");
  r = Profile();
  r.times_h[2] = -1;
  ExpectInvalid(r, "FitPk.times_h[2]");
  r = Profile();
  r.dose_mg = 0;
  ExpectInvalid(r, "FitPk.dose_mg");
  r = Profile();
  r.start = {{"lV", 1, ""}};
  ExpectInvalid(r, "FitPk.start[0].name");
  r.start = {{"lKe", 1, ""}, {"lKe", 2, ""}};
  ExpectInvalid(r, "FitPk.start[1].name");
  r.start = {{"lKa", INFINITY, ""}};
  ExpectInvalid(r, "FitPk.start[0].value");
  r = Profile();
  for (double& c : r.conc_mg_per_l) c = 0;
  ExpectInvalid(r, "FitPk.conc_mg_per_l");
}

}  // namespace
}  // namespace fedrx::translational
