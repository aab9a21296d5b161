#include "services/translational/pk.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "services/domain/working.h"

namespace fedrx::translational {

using domain::FormatNumber;
using domain::Qty;
using domain::WorkingBuilder;
namespace {

constexpr double kLn2 = 0.693147180559945309417;
constexpr std::string_view kIv1 = "iv_bolus_1cmt";
constexpr std::string_view kOral1 = "oral_1cmt";
constexpr std::string_view kIv2 = "iv_bolus_2cmt";
constexpr const char* kPkGuidance =
    "Gibaldi & Perrier, Pharmacokinetics (2nd ed.): one- and two-compartment "
    "models, Bateman function, superposition";

bool PositiveFinite(double x) { return std::isfinite(x) && x > 0; }

// Divided difference (f(b) − f(a)) / (b − a). Close rates would cancel
// digits, so there the midpoint derivative is used instead: its error is
// about (b − a)² f'''/24, below 1e-11 relative at the switch-over.
template <typename F, typename Fp>
double DividedDifference(F f, Fp fprime, double a, double b) {
  if (std::abs(b - a) <= 1e-5 * std::max(std::abs(a), std::abs(b))) {
    return fprime(0.5 * (a + b));
  }
  return (f(b) - f(a)) / (b - a);
}

// Two-compartment macro constants for one dose.
struct TwoCmt {
  double k10, k12, k21, alpha, beta, a, b;
};

TwoCmt Macro(const codec::PkModel& m, double dose_mg) {
  TwoCmt t{};
  t.k10 = m.cl_l_per_h / m.v_l;
  t.k12 = m.q_l_per_h / m.v_l;
  t.k21 = m.q_l_per_h / m.v2_l;
  const double sum = t.k10 + t.k12 + t.k21;
  // sum² − 4·k10·k21 = (k10 + k12 − k21)² + 4·k12·k21 > 0: two distinct roots.
  const double disc = std::sqrt(sum * sum - 4 * t.k10 * t.k21);
  t.alpha = 0.5 * (sum + disc);
  t.beta = t.k10 * t.k21 / t.alpha;  // product of roots; avoids cancellation
  const double c0 = dose_mg / m.v_l;
  t.a = c0 * (t.alpha - t.k21) / (t.alpha - t.beta);
  t.b = c0 * (t.k21 - t.beta) / (t.alpha - t.beta);
  return t;
}

double Ke(const codec::PkModel& m) { return m.cl_l_per_h / m.v_l; }

// Terminal rate constant λz (1/h).
double TerminalRate(const codec::PkModel& m) {
  if (m.kind == kIv2) return Macro(m, 1).beta;
  if (m.kind == kOral1) return std::min(Ke(m), m.ka_per_h);
  return Ke(m);
}

// AUC of one dose from 0 to t_end (exact).
double AucPartial(const codec::PkModel& m, double dose_mg, double t_end) {
  if (m.kind == kIv2) {
    const TwoCmt t = Macro(m, dose_mg);
    return t.a / t.alpha * -std::expm1(-t.alpha * t_end) +
           t.b / t.beta * -std::expm1(-t.beta * t_end);
  }
  const double k = Ke(m);
  if (m.kind == kIv1) return dose_mg / m.cl_l_per_h * -std::expm1(-k * t_end);
  // ∫0..T Bateman kernel = −u[k, ka] with u(λ) = (1 − e^(−λT)) / λ.
  auto u = [t_end](double l) { return -std::expm1(-l * t_end) / l; };
  auto du = [t_end](double l) {
    return (l * t_end * std::exp(-l * t_end) + std::expm1(-l * t_end)) / (l * l);
  };
  const double scale = m.bioavailability * dose_mg * m.ka_per_h / m.v_l;
  return -scale * DividedDifference(u, du, k, m.ka_per_h);
}

// Steady-state concentration s hours after a dose (0 <= s <= tau): the sum of
// the infinitely many earlier doses in closed form (geometric series per
// exponential). At s == tau it is the trough just before the next dose.
double SteadyState(const codec::PkModel& m, double dose_mg, double tau, double s) {
  auto h = [tau, s](double l) { return std::exp(-l * s) / -std::expm1(-l * tau); };
  if (m.kind == kIv2) {
    const TwoCmt t = Macro(m, dose_mg);
    return t.a * h(t.alpha) + t.b * h(t.beta);
  }
  const double k = Ke(m);
  if (m.kind == kIv1) return dose_mg / m.v_l * h(k);
  auto dh = [tau, s, &h](double l) {
    const double one_minus_r = -std::expm1(-l * tau);
    return -s * h(l) - tau * std::exp(-l * (s + tau)) / (one_minus_r * one_minus_r);
  };
  const double scale = m.bioavailability * dose_mg * m.ka_per_h / m.v_l;
  return -scale * DividedDifference(h, dh, k, m.ka_per_h);
}

// Concentration after `doses` doses every tau at time t (superposition).
double MultiDose(const codec::PkModel& m, double dose_mg, double tau, int doses, double t) {
  double c = 0;
  for (int j = 0; j < doses; ++j) {
    const double since = t - j * tau;
    if (since < 0) break;
    c += Concentration(m, dose_mg, since);
  }
  return c;
}

// Maximum of a unimodal f on [lo, hi] by golden-section search; returns
// {argmax, max}. The location is good to about 1e-8 relative (the peak is
// flat), the value to rounding.
template <typename F>
std::pair<double, double> GoldenMax(F f, double lo, double hi) {
  const double g = 0.5 * (std::sqrt(5.0) - 1);
  double x1 = hi - g * (hi - lo), x2 = lo + g * (hi - lo);
  double f1 = f(x1), f2 = f(x2);
  for (int i = 0; i < 200 && hi - lo > 1e-13 * std::max(1.0, hi); ++i) {
    if (f1 < f2) {
      lo = x1, x1 = x2, f1 = f2;
      x2 = lo + g * (hi - lo), f2 = f(x2);
    } else {
      hi = x2, x2 = x1, f2 = f1;
      x1 = hi - g * (hi - lo), f1 = f(x1);
    }
  }
  std::pair<double, double> best{x1, f1};
  if (f2 > best.second) best = {x2, f2};
  for (double x : {lo, hi}) {
    const double fx = f(x);
    if (fx > best.second) best = {x, fx};
  }
  return best;
}

std::vector<double> DefaultGrid(const codec::PkModel& m, double tau, int doses) {
  std::vector<double> t;
  if (doses == 1) {
    const double end = 5 * TerminalHalfLife(m) + Tmax(m);
    for (int i = 0; i <= 200; ++i) t.push_back(end * i / 200);
    return t;
  }
  // Up to 48 points per interval, about 2000 in all; beyond 2000 doses an even
  // grid (each point costs a sum over the doses before it).
  if (doses <= 2000) {
    const int per = std::clamp(2000 / doses, 1, 48);
    for (int j = 0; j < doses; ++j) {
      for (int i = 0; i < per; ++i) t.push_back(j * tau + tau * i / per);
    }
    t.push_back(doses * tau);
  } else {
    for (int i = 0; i <= 2000; ++i) t.push_back(doses * tau * i / 2000);
  }
  return t;
}

}  // namespace

core::Status ValidatePkModel(const codec::PkModel& model, std::string_view where) {
  const std::string w(where);
  auto positive = [&](double v, const char* field) -> core::Status {
    if (!PositiveFinite(v)) {
      return core::InvalidArgument(
          std::string(field) + " must be finite and > 0, got " + std::to_string(v),
          w + "." + field);
    }
    return core::Status::Ok();
  };
  if (model.kind != kIv1 && model.kind != kOral1 && model.kind != kIv2) {
    return core::InvalidArgument(
        "unknown model kind '" + model.kind + "' (iv_bolus_1cmt, oral_1cmt, iv_bolus_2cmt)",
        w + ".kind");
  }
  FEDRX_RETURN_IF_ERROR(positive(model.cl_l_per_h, "cl_l_per_h"));
  FEDRX_RETURN_IF_ERROR(positive(model.v_l, "v_l"));
  if (!PositiveFinite(Ke(model))) {
    return core::InvalidArgument("cl_l_per_h / v_l is not a finite positive rate",
                                 w + ".cl_l_per_h");
  }
  if (model.kind == kOral1) {
    FEDRX_RETURN_IF_ERROR(positive(model.ka_per_h, "ka_per_h"));
    if (!(model.bioavailability > 0 && model.bioavailability <= 1)) {
      return core::InvalidArgument(
          "bioavailability must be in (0, 1], got " + std::to_string(model.bioavailability),
          w + ".bioavailability");
    }
  }
  if (model.kind == kIv2) {
    FEDRX_RETURN_IF_ERROR(positive(model.q_l_per_h, "q_l_per_h"));
    FEDRX_RETURN_IF_ERROR(positive(model.v2_l, "v2_l"));
    const TwoCmt t = Macro(model, 1);
    if (!PositiveFinite(t.alpha) || !PositiveFinite(t.beta) || !(t.alpha > t.beta)) {
      return core::InvalidArgument("parameters give no finite distinct macro rate constants",
                                   w + ".q_l_per_h");
    }
  }
  return core::Status::Ok();
}

double BatemanKernel(double a, double b, double t) {
  // Factor out the slower exponential: e^(−lo t)·(1 − e^(−d t))/d, d = |b − a|.
  const double lo = std::min(a, b);
  const double d = std::max(a, b) - lo;
  if (d == 0) return t * std::exp(-lo * t);
  return std::exp(-lo * t) * (-std::expm1(-d * t)) / d;
}

double Concentration(const codec::PkModel& m, double dose_mg, double t_h) {
  if (t_h < 0) return 0;
  if (m.kind == kIv2) {
    const TwoCmt t = Macro(m, dose_mg);
    return t.a * std::exp(-t.alpha * t_h) + t.b * std::exp(-t.beta * t_h);
  }
  const double k = Ke(m);
  if (m.kind == kIv1) return dose_mg / m.v_l * std::exp(-k * t_h);
  return m.bioavailability * dose_mg * m.ka_per_h / m.v_l * BatemanKernel(k, m.ka_per_h, t_h);
}

double AucInf(const codec::PkModel& m, double dose_mg) {
  const double f = m.kind == kOral1 ? m.bioavailability : 1.0;
  return f * dose_mg / m.cl_l_per_h;
}

double Tmax(const codec::PkModel& m) {
  if (m.kind != kOral1) return 0;
  const double k = Ke(m);
  const double d = m.ka_per_h - k;
  // ln(ka/k)/(ka − k) = log1p(d/k)/d, which tends to 1/k as d → 0.
  if (std::abs(d) <= 1e-12 * k) return 1 / k;
  return std::log1p(d / k) / d;
}

double Cmax(const codec::PkModel& m, double dose_mg) { return Concentration(m, dose_mg, Tmax(m)); }

double TerminalHalfLife(const codec::PkModel& m) { return kLn2 / TerminalRate(m); }

core::Result<codec::PkProfile> SimulatePk(const codec::SimulatePk& r) {
  FEDRX_RETURN_IF_ERROR(ValidatePkModel(r.model, "SimulatePk.model"));
  if (!PositiveFinite(r.dose_mg)) {
    return core::InvalidArgument("dose_mg must be finite and > 0", "SimulatePk.dose_mg");
  }
  if (r.doses < 1 || r.doses > kMaxDoses) {
    return core::InvalidArgument("doses must be in [1, " + std::to_string(kMaxDoses) + "]",
                                 "SimulatePk.doses");
  }
  if (r.doses > 1 && !PositiveFinite(r.tau_h)) {
    return core::InvalidArgument("tau_h must be finite and > 0 when doses > 1", "SimulatePk.tau_h");
  }
  if (r.times_h.size() > kMaxTimes) {
    return core::InvalidArgument("at most " + std::to_string(kMaxTimes) + " times",
                                 "SimulatePk.times_h");
  }
  if (static_cast<double>(r.times_h.size()) * r.doses > kMaxEvaluations) {
    return core::InvalidArgument("times × doses exceeds " + std::to_string(kMaxEvaluations),
                                 "SimulatePk.times_h");
  }
  for (std::size_t i = 0; i < r.times_h.size(); ++i) {
    if (!std::isfinite(r.times_h[i]) || r.times_h[i] < 0) {
      return core::InvalidArgument("time must be finite and >= 0",
                                   "SimulatePk.times_h[" + std::to_string(i) + "]");
    }
  }
  if (!std::isfinite(r.noael_auc_mg_h_per_l) || r.noael_auc_mg_h_per_l < 0) {
    return core::InvalidArgument("must be finite and >= 0 (0 = not given)",
                                 "SimulatePk.noael_auc_mg_h_per_l");
  }
  if (!std::isfinite(r.noael_cmax_mg_per_l) || r.noael_cmax_mg_per_l < 0) {
    return core::InvalidArgument("must be finite and >= 0 (0 = not given)",
                                 "SimulatePk.noael_cmax_mg_per_l");
  }

  const codec::PkModel& m = r.model;
  const double dose = r.dose_mg;
  const int n = r.doses;
  const double tau = n > 1 ? r.tau_h : 0;
  codec::PkProfile out;
  WorkingBuilder wb(&out.working);
  out.working.method =
      "Linear " + m.kind + " model, " +
      (n > 1 ? std::to_string(n) + " doses by superposition" : std::string("single dose"));
  out.working.guidance = kPkGuidance;

  const double k = Ke(m);
  wb.Step("elimination rate constant", "k = CL / V",
          {Qty("CL", m.cl_l_per_h, "L/h"), Qty("V", m.v_l, "L")}, Qty("k", k, "1/h"),
          "one-compartment model");
  if (m.kind == kIv1) {
    wb.Note("C(t) = D/V · exp(−k t)");
  } else if (m.kind == kOral1) {
    wb.Note(
        "C(t) = F·D·ka / (V (ka − k)) · (exp(−k t) − exp(−ka t)) (Bateman function); "
        "at ka == k its limit F·D·k/V · t·exp(−k t)");
    if (std::abs(m.ka_per_h - k) <= 1e-5 * k) {
      wb.Note("ka and k are (nearly) equal: the limit form is used where they cancel");
    }
    if (m.ka_per_h < k) wb.Note("ka < k: flip-flop kinetics, the terminal phase is absorption");
  } else {
    const TwoCmt t = Macro(m, dose);
    wb.Step("micro constants", "k10 = CL/V1, k12 = Q/V1, k21 = Q/V2",
            {Qty("CL", m.cl_l_per_h, "L/h"), Qty("V1", m.v_l, "L"), Qty("Q", m.q_l_per_h, "L/h"),
             Qty("V2", m.v2_l, "L")},
            Qty("k21", t.k21, "1/h"), "two-compartment model");
    wb.Step("alpha", "α = (k10 + k12 + k21 + sqrt((k10 + k12 + k21)² − 4·k10·k21)) / 2",
            {Qty("k10", t.k10, "1/h"), Qty("k12", t.k12, "1/h"), Qty("k21", t.k21, "1/h")},
            Qty("alpha", t.alpha, "1/h"), "two-compartment macro constants");
    wb.Step("beta", "β = k10·k21 / α", {Qty("alpha", t.alpha, "1/h")}, Qty("beta", t.beta, "1/h"),
            "two-compartment macro constants");
    wb.Step("A", "A = D/V1 · (α − k21) / (α − β)", {Qty("D", dose, "mg")}, Qty("A", t.a, "mg/L"),
            "two-compartment macro constants");
    wb.Step("B", "B = D/V1 · (k21 − β) / (α − β)", {Qty("D", dose, "mg")}, Qty("B", t.b, "mg/L"),
            "two-compartment macro constants");
    wb.Note("C(t) = A·exp(−α t) + B·exp(−β t)");
  }

  auto metric = [&](const char* name, double v, const char* unit) {
    out.metrics.push_back(Qty(name, v, unit));
  };

  const double auc_inf = AucInf(m, dose);
  wb.Step("AUC 0..inf of one dose", m.kind == kOral1 ? "AUC = F·D / CL" : "AUC = D / CL",
          {Qty("F", m.kind == kOral1 ? m.bioavailability : 1.0, ""), Qty("D", dose, "mg"),
           Qty("CL", m.cl_l_per_h, "L/h")},
          Qty("auc_0_inf", auc_inf, "mg·h/L"), "integral of C(t)");
  metric("auc_0_inf", auc_inf, "mg·h/L");

  const double lz = TerminalRate(m);
  const double t_half = kLn2 / lz;
  wb.Step("terminal half-life", "t½ = ln 2 / λz", {Qty("lambda_z", lz, "1/h")},
          Qty("t_half", t_half, "h"),
          m.kind == kIv2 ? "λz = β" : (m.kind == kOral1 ? "λz = min(k, ka)" : "λz = k"));

  double cmax, tmax;
  if (n == 1) {
    tmax = Tmax(m);
    cmax = Concentration(m, dose, tmax);
    wb.Step("tmax", m.kind == kOral1 ? "tmax = ln(ka/k) / (ka − k)" : "tmax = 0 (bolus)",
            {Qty("ka", m.ka_per_h, "1/h"), Qty("k", k, "1/h")}, Qty("tmax", tmax, "h"),
            "dC/dt = 0");
    wb.Step("Cmax", "Cmax = C(tmax)", {Qty("tmax", tmax, "h")}, Qty("cmax", cmax, "mg/L"),
            "model equation");
  } else {
    // Linear kinetics: the concentration s hours after the last dose is the
    // largest of all intervals, and it only falls after the single-dose tmax.
    const double t_last = (n - 1) * tau;
    auto after_last = [&](double s) { return MultiDose(m, dose, tau, n, t_last + s); };
    std::pair<double, double> peak{0, after_last(0)};
    if (m.kind == kOral1) peak = GoldenMax(after_last, 0, Tmax(m));
    tmax = t_last + peak.first;
    cmax = peak.second;
    wb.Step("Cmax over the regimen", "max over s of Σj C1(s + j·τ), after the last dose",
            {Qty("doses", n, ""), Qty("tau", tau, "h")}, Qty("cmax", cmax, "mg/L"),
            m.kind == kOral1 ? "superposition; golden-section search on [0, tmax single dose]"
                             : "superposition; bolus peak at the last dose");
  }
  metric("cmax", cmax, "mg/L");
  metric("tmax", tmax, "h");
  metric("t_half", t_half, "h");

  double auc_ref = auc_inf, cmax_ref = cmax;
  if (n > 1) {
    const double auc_tau = AucPartial(m, dose, n * tau);
    wb.Step("AUC over the last interval", "AUC(τ, last) = ∫0..nτ C1(t) dt",
            {Qty("doses", n, ""), Qty("tau", tau, "h")}, Qty("auc_0_tau", auc_tau, "mg·h/L"),
            "superposition: the n intervals' shifted single-dose AUCs telescope");
    metric("auc_0_tau", auc_tau, "mg·h/L");
    const double rac = 1 / -std::expm1(-lz * tau);
    wb.Step("accumulation ratio", "R = 1 / (1 − exp(−λz τ))",
            {Qty("lambda_z", lz, "1/h"), Qty("tau", tau, "h")}, Qty("accumulation_ratio", rac, ""),
            "geometric series of repeated doses");
    metric("accumulation_ratio", rac, "");
    const double css_min = SteadyState(m, dose, tau, tau);
    std::pair<double, double> ss_peak{0, SteadyState(m, dose, tau, 0)};
    if (m.kind == kOral1) {
      ss_peak = GoldenMax([&](double s) { return SteadyState(m, dose, tau, s); }, 0, tau);
    }
    const double css_avg = auc_inf / tau;
    wb.Step("steady-state peak", "Css(s) = Σ over exponentials c·exp(−λ s) / (1 − exp(−λ τ))",
            {Qty("tau", tau, "h"), Qty("s_peak", ss_peak.first, "h")},
            Qty("css_max", ss_peak.second, "mg/L"), "superposition of infinitely many doses");
    wb.Step("steady-state trough", "Css(τ)", {Qty("tau", tau, "h")},
            Qty("css_min", css_min, "mg/L"), "superposition of infinitely many doses");
    wb.Step("steady-state average", "Css,avg = AUC(0..inf, one dose) / τ",
            {Qty("auc_0_inf", auc_inf, "mg·h/L"), Qty("tau", tau, "h")},
            Qty("css_avg", css_avg, "mg/L"), "linear kinetics: AUCτ,ss = AUC0..inf");
    metric("css_max", ss_peak.second, "mg/L");
    metric("css_min", css_min, "mg/L");
    metric("css_avg", css_avg, "mg/L");
    metric("auc_0_tau_ss", auc_inf, "mg·h/L");
    auc_ref = auc_inf;
    cmax_ref = ss_peak.second;
    wb.Note("margins use steady-state exposure: AUCτ,ss (= single-dose AUC0..inf) and Css,max");
  }
  if (r.noael_auc_mg_h_per_l > 0) {
    const double margin = r.noael_auc_mg_h_per_l / auc_ref;
    wb.Step("AUC exposure margin", n > 1 ? "NOAEL AUC / AUCτ,ss" : "NOAEL AUC / AUC0..inf",
            {Qty("noael_auc", r.noael_auc_mg_h_per_l, "mg·h/L"), Qty("auc", auc_ref, "mg·h/L")},
            Qty("margin_auc", margin, ""), "exposure margin to the animal NOAEL");
    metric("margin_auc", margin, "");
  }
  if (r.noael_cmax_mg_per_l > 0) {
    const double margin = r.noael_cmax_mg_per_l / cmax_ref;
    wb.Step("Cmax exposure margin", n > 1 ? "NOAEL Cmax / Css,max" : "NOAEL Cmax / Cmax",
            {Qty("noael_cmax", r.noael_cmax_mg_per_l, "mg/L"), Qty("cmax", cmax_ref, "mg/L")},
            Qty("margin_cmax", margin, ""), "exposure margin to the animal NOAEL");
    metric("margin_cmax", margin, "");
  }

  out.times_h = r.times_h.empty() ? DefaultGrid(m, tau, n) : r.times_h;
  out.conc_mg_per_l.reserve(out.times_h.size());
  for (double t : out.times_h) {
    out.conc_mg_per_l.push_back(n == 1 ? Concentration(m, dose, t) : MultiDose(m, dose, tau, n, t));
  }
  if (r.times_h.empty()) wb.Note("default time grid");
  wb.Note("at a dose time the concentration includes that dose (bolus: the post-dose peak)");

  for (const auto& q : out.metrics) {
    if (!std::isfinite(q.value)) {
      return core::InvalidArgument("parameters give a non-finite " + q.name, "SimulatePk.model");
    }
  }
  for (double c : out.conc_mg_per_l) {
    if (!std::isfinite(c)) {
      return core::InvalidArgument("parameters give a non-finite concentration",
                                   "SimulatePk.model");
    }
  }
  return out;
}

}  // namespace fedrx::translational
