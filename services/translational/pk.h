// Linear pharmacokinetics for first-in-human planning: one-compartment IV
// bolus, one-compartment first-order oral absorption (Bateman function) and
// two-compartment IV bolus; repeated doses by superposition; exposure metrics
// and NOAEL exposure margins, each answer with its working.
// Pure functions; thread-safe.
//
// Units: dose mg, volume L, clearance L/h, rate constants 1/h, time h,
// concentration mg/L, AUC mg·h/L.
//
// Models (codec::PkModel.kind):
//   "iv_bolus_1cmt"  cl_l_per_h, v_l.          C = D/V · e^(−k t), k = CL/V
//   "oral_1cmt"      cl_l_per_h, v_l, ka_per_h, bioavailability F in (0, 1].
//                    C = F·D·ka / (V (ka − k)) · (e^(−k t) − e^(−ka t));
//                    ka == k by its limit F·D·k/V · t·e^(−k t)
//   "iv_bolus_2cmt"  cl_l_per_h, v_l (central V1), q_l_per_h, v2_l.
//                    C = A e^(−α t) + B e^(−β t) (macro constants)
#pragma once

#include <string_view>

#include "messages/codec/message.h"
#include "services/core/status.h"

namespace fedrx::translational {

// Bounds on a request, so that an answer stays cheap to compute and its
// PkProfile (times and concentrations, 16 bytes a point) fits the bus's 1 MiB
// envelope with room to spare.
inline constexpr int kMaxDoses = 10000;
inline constexpr std::size_t kMaxTimes = 20000;
// Bound on times × doses (each concentration sums over the earlier doses).
inline constexpr double kMaxEvaluations = 5e7;

// OK when `model` names a known kind and its parameters for that kind are
// finite and positive (F in (0, 1]); otherwise InvalidArgument whose `where`
// is "<where>.<field>", e.g. "SimulatePk.model.cl_l_per_h".
core::Status ValidatePkModel(const codec::PkModel& model, std::string_view where);

// Concentration (mg/L) at t_h hours after one dose of dose_mg (model
// validated). 0 for t_h < 0; at t_h == 0 an IV bolus gives its peak D/V.
double Concentration(const codec::PkModel& model, double dose_mg, double t_h);

// AUC 0..inf (mg·h/L) of one dose: F·Dose/CL (model validated).
double AucInf(const codec::PkModel& model, double dose_mg);

// Cmax (mg/L) and tmax (h) of one dose (model validated): IV at t = 0; oral
// at tmax = ln(ka/k)/(ka − k) (1/k when ka == k).
double Cmax(const codec::PkModel& model, double dose_mg);
double Tmax(const codec::PkModel& model);

// The Bateman kernel (e^(−a t) − e^(−b t)) / (b − a) for rates a, b > 0,
// t >= 0, computed without cancellation when a and b are close; its limit
// t·e^(−a t) when they are equal. Symmetric in a and b.
double BatemanKernel(double a, double b, double t);

// Terminal half-life (h): ln 2 over the slowest rate (k; β for two
// compartments; min(k, ka) for oral, which covers flip-flop kinetics).
double TerminalHalfLife(const codec::PkModel& model);

// Concentration-time profile of `request.doses` doses every tau_h (first at
// t = 0), concentrations by superposition of single doses, and metrics by name
// (messages/translational.fbs documents each): auc_0_inf, cmax, tmax,
// t_half; with doses > 1 also auc_0_tau (last interval), accumulation_ratio,
// css_max, css_min, css_avg, auc_0_tau_ss; margin_auc / margin_cmax when the
// NOAEL exposures are given. InvalidArgument on a bad request.
core::Result<codec::PkProfile> SimulatePk(const codec::SimulatePk& request);

}  // namespace fedrx::translational
