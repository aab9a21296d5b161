#include "services/translational/pk_fit.h"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include "services/domain/working.h"
#include "services/translational/pk.h"

namespace fedrx::translational {

using domain::FormatNumber;
using domain::Qty;
using domain::WorkingBuilder;
namespace {

constexpr double kLn2 = 0.693147180559945309417;
constexpr const char* kParamNames[3] = {"lKe", "lKa", "lCl"};

struct Data {
  const std::vector<double>& t;
  const std::vector<double>& y;
  double dose;
};

// SSfol model values at p = (lKe, lKa, lCl); with `jac`, also ∂C/∂p.
void Evaluate(const Data& d, const Eigen::Vector3d& p, Eigen::VectorXd* f, Eigen::MatrixXd* jac) {
  const double ke = std::exp(p[0]), ka = std::exp(p[1]), cl = std::exp(p[2]);
  const std::size_t n = d.t.size();
  f->resize(static_cast<Eigen::Index>(n));
  if (jac != nullptr) jac->resize(static_cast<Eigen::Index>(n), 3);
  const double scale = d.dose * ke * ka / cl;
  const bool close = std::abs(ka - ke) <= 1e-6 * std::max(ka, ke);
  for (std::size_t i = 0; i < n; ++i) {
    const auto r = static_cast<Eigen::Index>(i);
    const double t = d.t[i];
    const double k = BatemanKernel(ke, ka, t);
    const double c = scale * k;
    (*f)[r] = c;
    if (jac == nullptr) continue;
    (*jac)(r, 2) = -c;
    if (!close) {
      // ∂K/∂ke = (K − t·e^(−ke t))/(ka − ke), ∂K/∂ka = (t·e^(−ka t) − K)/(ka − ke).
      const double dk_dke = (k - t * std::exp(-ke * t)) / (ka - ke);
      const double dk_dka = (t * std::exp(-ka * t) - k) / (ka - ke);
      (*jac)(r, 0) = c + scale * ke * dk_dke;
      (*jac)(r, 1) = c + scale * ka * dk_dka;
    } else {
      // Equal rates cancel in the closed form: central differences in log
      // space on the (stable) kernel instead.
      const double h = 1e-5;
      auto at = [&](double lke, double lka) {
        const double e = std::exp(lke), a = std::exp(lka);
        return d.dose * e * a / cl * BatemanKernel(e, a, t);
      };
      (*jac)(r, 0) = (at(p[0] + h, p[1]) - at(p[0] - h, p[1])) / (2 * h);
      (*jac)(r, 1) = (at(p[0], p[1] + h) - at(p[0], p[1] - h)) / (2 * h);
    }
  }
}

double SumSquares(const Data& d, const Eigen::Vector3d& p) {
  Eigen::VectorXd f;
  Evaluate(d, p, &f, nullptr);
  double ss = 0;
  for (std::size_t i = 0; i < d.y.size(); ++i) {
    const double r = d.y[i] - f[static_cast<Eigen::Index>(i)];
    ss += r * r;
  }
  return ss;
}

// Least-squares line y = a + b·x; nullopt with fewer than 2 distinct x.
std::optional<std::pair<double, double>> Line(const std::vector<double>& x,
                                              const std::vector<double>& y) {
  const double n = static_cast<double>(x.size());
  if (x.size() < 2) return std::nullopt;
  const double mx = std::accumulate(x.begin(), x.end(), 0.0) / n;
  const double my = std::accumulate(y.begin(), y.end(), 0.0) / n;
  double sxx = 0, sxy = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    sxx += (x[i] - mx) * (x[i] - mx);
    sxy += (x[i] - mx) * (y[i] - my);
  }
  if (!(sxx > 0)) return std::nullopt;
  const double b = sxy / sxx;
  return std::make_pair(my - b * mx, b);
}

// ka > ke with single-dose tmax = ln(ka/ke)/(ka − ke), by bisection on log ka
// (tmax falls from 1/ke towards 0 as ka grows); 2·ke if tmax >= 1/ke.
double KaFromTmax(double ke, double tmax) {
  if (!(tmax > 0) || tmax >= 1 / ke) return 2 * ke;
  double lo = std::log(ke) + 1e-9, hi = std::log(ke) + 30;
  for (int i = 0; i < 200; ++i) {
    const double mid = 0.5 * (lo + hi);
    const double ka = std::exp(mid);
    const double tm = std::log(ka / ke) / (ka - ke);
    (tm > tmax ? lo : hi) = mid;
  }
  return std::exp(0.5 * (lo + hi));
}

struct Start {
  Eigen::Vector3d p;
  std::vector<std::string> notes;
};

// Starting values from the data for the parameters not given:
//  ke: log-linear regression on the terminal phase (the later half, at least
//      3, of the positive points after the observed peak);
//  ka: method of residuals (log of back-extrapolated terminal line minus the
//      observations before the terminal phase); if that is not possible or
//      gives ka <= ke, the ka > ke that reproduces the observed tmax;
//  lCl: the clearance that best fits the data for those rates (the model is
//      linear in 1/CL), else Dose / AUC(0..inf) by trapezoids plus Clast/ke.
core::Result<Start> StartingValues(const Data& d, const std::optional<double> given[3]) {
  Start s;
  std::vector<std::size_t> idx(d.t.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](auto a, auto b) { return d.t[a] < d.t[b]; });
  std::size_t peak = idx[0];
  for (std::size_t i : idx) {
    if (d.y[i] > d.y[peak]) peak = i;
  }
  if (!(d.y[peak] > 0)) {
    return core::InvalidArgument("no positive concentration to fit", "FitPk.conc_mg_per_l");
  }
  const double tmax = d.t[peak];

  double ke = given[0] ? std::exp(*given[0]) : 0;
  double intercept = 0;
  bool have_terminal_line = false;
  double t_terminal = tmax;
  if (!given[0]) {
    std::vector<std::size_t> post;
    for (std::size_t i : idx) {
      if (d.t[i] > tmax && d.y[i] > 0) post.push_back(i);
    }
    const std::size_t m = std::min(post.size(), std::max<std::size_t>(3, (post.size() + 1) / 2));
    std::vector<double> x, ly;
    for (std::size_t j = post.size() - m; j < post.size(); ++j) {
      x.push_back(d.t[post[j]]);
      ly.push_back(std::log(d.y[post[j]]));
    }
    auto line = Line(x, ly);
    if (line && line->second < 0) {
      ke = -line->second;
      intercept = line->first;
      have_terminal_line = true;
      t_terminal = x.front();
      s.notes.push_back("start lKe: log-linear terminal phase over " + std::to_string(m) +
                        " points, ke = " + FormatNumber(ke) + " 1/h");
    } else {
      const double span = d.t[idx.back()] - tmax;
      ke = span > 0 ? kLn2 / span : kLn2;
      s.notes.push_back("start lKe: no falling terminal phase; ke = ln 2 / (tlast − tmax)");
    }
  }
  double ka = given[1] ? std::exp(*given[1]) : 0;
  if (!given[1]) {
    std::vector<double> x, lr;
    if (have_terminal_line) {
      for (std::size_t i : idx) {
        if (d.t[i] >= t_terminal) break;
        const double resid = std::exp(intercept - ke * d.t[i]) - d.y[i];
        if (resid > 0) {
          x.push_back(d.t[i]);
          lr.push_back(std::log(resid));
        }
      }
    }
    auto line = Line(x, lr);
    if (line && -line->second > 1.05 * ke) {
      ka = -line->second;
      s.notes.push_back("start lKa: method of residuals over " + std::to_string(x.size()) +
                        " points, ka = " + FormatNumber(ka) + " 1/h");
    } else {
      ka = KaFromTmax(ke, tmax);
      s.notes.push_back("start lKa: from the observed tmax, ka = " + FormatNumber(ka) + " 1/h");
    }
  }
  double cl = given[2] ? std::exp(*given[2]) : 0;
  if (!given[2]) {
    double sgy = 0, sgg = 0;
    for (std::size_t i = 0; i < d.t.size(); ++i) {
      const double g = d.dose * ke * ka * BatemanKernel(ke, ka, d.t[i]);
      sgy += g * d.y[i];
      sgg += g * g;
    }
    if (sgg > 0 && sgy > 0) {
      cl = sgg / sgy;
      s.notes.push_back("start lCl: least squares in 1/CL for the starting rates, CL = " +
                        FormatNumber(cl));
    } else {
      double auc = 0;
      for (std::size_t j = 1; j < idx.size(); ++j) {
        auc += 0.5 * (d.y[idx[j]] + d.y[idx[j - 1]]) * (d.t[idx[j]] - d.t[idx[j - 1]]);
      }
      auc += std::max(0.0, d.y[idx.back()]) / ke;
      if (!(auc > 0)) {
        return core::InvalidArgument("concentrations give no positive AUC to start from",
                                     "FitPk.conc_mg_per_l");
      }
      cl = d.dose / auc;
      s.notes.push_back("start lCl: Dose / AUC (trapezoids + Clast/ke), CL = " + FormatNumber(cl));
    }
  }
  s.p = Eigen::Vector3d(std::log(ke), std::log(ka), std::log(cl));
  for (int i = 0; i < 3; ++i) {
    if (!std::isfinite(s.p[i])) {
      return core::FailedPrecondition(std::string("no finite starting value for ") +
                                          kParamNames[i] + " from the data; give one in start",
                                      "FitPk.start");
    }
  }
  return s;
}

}  // namespace

core::Result<codec::PkFit> FitPk(const codec::FitPk& r) {
  const std::size_t n = r.times_h.size();
  if (r.conc_mg_per_l.size() != n) {
    return core::InvalidArgument("conc_mg_per_l has " + std::to_string(r.conc_mg_per_l.size()) +
                                     " values, times_h " + std::to_string(n),
                                 "FitPk.conc_mg_per_l");
  }
  if (n < 4) {
    return core::InvalidArgument(
        "at least 4 observations are needed (3 parameters), got " + std::to_string(n),
        "FitPk.times_h");
  }
  if (n > kFitMaxObservations) {
    return core::InvalidArgument("too many observations", "FitPk.times_h");
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (!std::isfinite(r.times_h[i]) || r.times_h[i] < 0) {
      return core::InvalidArgument("time must be finite and >= 0",
                                   "FitPk.times_h[" + std::to_string(i) + "]");
    }
    if (!std::isfinite(r.conc_mg_per_l[i])) {
      return core::InvalidArgument("concentration must be finite",
                                   "FitPk.conc_mg_per_l[" + std::to_string(i) + "]");
    }
  }
  if (!(std::isfinite(r.dose_mg) && r.dose_mg > 0)) {
    return core::InvalidArgument("dose must be finite and > 0", "FitPk.dose_mg");
  }
  std::optional<double> given[3];
  for (std::size_t i = 0; i < r.start.size(); ++i) {
    const std::string at = "FitPk.start[" + std::to_string(i) + "]";
    int k = -1;
    for (int j = 0; j < 3; ++j) {
      if (r.start[i].name == kParamNames[j]) k = j;
    }
    if (k < 0) {
      return core::InvalidArgument("unknown start '" + r.start[i].name + "' (lKe, lKa, lCl)",
                                   at + ".name");
    }
    if (given[k]) return core::InvalidArgument("start given twice", at + ".name");
    if (!std::isfinite(r.start[i].value)) {
      return core::InvalidArgument("start value must be finite", at + ".value");
    }
    given[k] = r.start[i].value;
  }

  const Data d{r.times_h, r.conc_mg_per_l, r.dose_mg};
  FEDRX_ASSIGN_OR_RETURN(Start start, StartingValues(d, given));
  codec::PkFit out;
  WorkingBuilder wb(&out.working);
  out.working.method =
      "nonlinear least squares, Gauss-Newton with step halving (as R nls), SSfol model";
  out.working.guidance = "R stats::nls and stats::SSfol; Bates & Watts (1988) relative offset";
  for (auto& note : start.notes) wb.Note(std::move(note));

  const Eigen::Map<const Eigen::VectorXd> y(r.conc_mg_per_l.data(), static_cast<Eigen::Index>(n));
  Eigen::Vector3d p = start.p;
  Eigen::VectorXd f;
  Eigen::MatrixXd jac;
  Evaluate(d, p, &f, nullptr);
  double ss = (y - f).squaredNorm();
  if (!std::isfinite(ss)) {
    return core::FailedPrecondition("the starting values give a non-finite fit", "FitPk.start");
  }
  wb.Step("starting values", "RSS = Σ (C_obs − C(t; lKe, lKa, lCl))²",
          {Qty("lKe", start.p[0], "log(1/h)"), Qty("lKa", start.p[1], "log(1/h)"),
           Qty("lCl", start.p[2], "log(L/h)")},
          Qty("rss_start", ss, "(mg/L)²"), "request start, else from the data (notes)");
  double factor = 1;
  int iterations = 0;
  double offset = 0;
  for (;;) {
    Evaluate(d, p, &f, &jac);
    const Eigen::VectorXd resid = y - f;
    Eigen::ColPivHouseholderQR<Eigen::MatrixXd> qr(jac);
    qr.setThreshold(1e-7);  // R's qr() rank tolerance
    if (qr.rank() < 3) {
      return core::FailedPrecondition("singular gradient at iteration " +
                                          std::to_string(iterations) +
                                          ": the parameters are not identifiable from these data",
                                      "FitPk");
    }
    const Eigen::Vector3d delta = qr.solve(resid);
    const double along = (jac * delta).squaredNorm();
    const double across = (resid - jac * delta).squaredNorm();
    offset = across > 0 ? std::sqrt(along / across) : (along > 0 ? INFINITY : 0.0);
    if (offset <= kFitTolerance) break;
    if (iterations >= kFitMaxIterations) {
      return core::FailedPrecondition("no convergence in " + std::to_string(kFitMaxIterations) +
                                          " iterations (relative offset " + FormatNumber(offset) +
                                          ")",
                                      "FitPk");
    }
    for (;;) {
      const Eigen::Vector3d next = p + factor * delta;
      const double ss_next = SumSquares(d, next);
      if (std::isfinite(ss_next) && ss_next <= ss) {
        p = next;
        ss = ss_next;
        factor = std::min(2 * factor, 1.0);
        break;
      }
      factor /= 2;
      if (factor < kFitMinStepFactor) {
        return core::FailedPrecondition("step factor reduced below 1/1024 at iteration " +
                                            std::to_string(iterations) + " (relative offset " +
                                            FormatNumber(offset) + ")",
                                        "FitPk");
      }
    }
    ++iterations;
  }

  // Final gradient, covariance sigma²·(JᵀJ)⁻¹ through R of J = QR.
  Evaluate(d, p, &f, &jac);
  const int df = static_cast<int>(n) - 3;
  const double sigma = std::sqrt(ss / df);
  Eigen::HouseholderQR<Eigen::MatrixXd> hqr(jac);
  const Eigen::Matrix3d rmat = hqr.matrixQR().topLeftCorner(3, 3).triangularView<Eigen::Upper>();
  const Eigen::Matrix3d rinv = rmat.inverse();
  const Eigen::Matrix3d cov = sigma * sigma * rinv * rinv.transpose();
  for (int i = 0; i < 3; ++i) {
    if (!std::isfinite(cov(i, i)) || !std::isfinite(p[i])) {
      return core::FailedPrecondition("singular gradient at the solution", "FitPk");
    }
  }
  const double se[3] = {std::sqrt(cov(0, 0)), std::sqrt(cov(1, 1)), std::sqrt(cov(2, 2))};

  out.estimates = {
      {"lKe", p[0], se[0], "log(1/h)"},
      {"lKa", p[1], se[1], "log(1/h)"},
      {"lCl", p[2], se[2], "log(L/h)"},
  };
  const double ke = std::exp(p[0]), ka = std::exp(p[1]), cl = std::exp(p[2]);
  const double t_half = kLn2 / ke;
  // Delta method: d exp(x) = exp(x)·dx; t½ = ln 2·exp(−lKe).
  out.estimates.push_back({"ke", ke, ke * se[0], "1/h"});
  out.estimates.push_back({"ka", ka, ka * se[1], "1/h"});
  out.estimates.push_back({"cl", cl, cl * se[2], "L/h"});
  out.estimates.push_back({"t_half", t_half, t_half * se[0], "h"});
  out.residual_se = sigma;
  out.df = df;
  out.iterations = iterations;
  out.fitted.assign(f.data(), f.data() + f.size());

  wb.Step("convergence",
          "relative offset = sqrt(|Q1ᵀr|² / |Q2ᵀr|²) <= " + FormatNumber(kFitTolerance),
          {Qty("iterations", iterations, ""), Qty("rss", ss, "(mg/L)²")},
          Qty("relative_offset", offset, ""), "Bates & Watts (1988); R nls");
  wb.Step("residual standard error", "sigma = sqrt(RSS / (n − 3))",
          {Qty("rss", ss, "(mg/L)²"), Qty("df", df, "")}, Qty("residual_se", sigma, "mg/L"),
          "R summary.nls");
  wb.Step("standard errors", "SE = sigma·sqrt(diag((JᵀJ)⁻¹)), J = ∂C/∂(lKe, lKa, lCl)",
          {Qty("se_lKe", se[0], ""), Qty("se_lKa", se[1], ""), Qty("se_lCl", se[2], "")},
          Qty("sigma", sigma, "mg/L"), "R summary.nls");
  wb.Step("derived",
          "ke = exp(lKe), ka = exp(lKa), CL/F = exp(lCl), t½ = ln 2 / ke; "
          "SE(exp(x)) = exp(x)·SE(x)",
          {Qty("ke", ke, "1/h"), Qty("ka", ka, "1/h"), Qty("cl", cl, "L/h")},
          Qty("t_half", t_half, "h"), "delta method");
  wb.Note(
      "cl is the apparent clearance CL/F (bioavailability is not identifiable from oral "
      "data); units follow the dose (a dose in mg/kg gives CL in L/h/kg)");
  wb.Note(
      "the model is symmetric in ke and ka (flip-flop): which rate is called ke follows "
      "from the starting values (terminal slope -> ke)");
  return out;
}

}  // namespace fedrx::translational
