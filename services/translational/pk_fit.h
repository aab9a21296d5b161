// Nonlinear least-squares fit of a one-compartment, first-order-absorption
// model to one concentration-time profile, in R's SSfol parameterisation:
//   C(t) = Dose·exp(lKe + lKa − lCl)·(exp(−exp(lKe)·t) − exp(−exp(lKa)·t))
//          / (exp(lKa) − exp(lKe))
// (lKe, lKa: log rate constants; lCl: log apparent clearance CL/F).
// Pure function; thread-safe.
//
// Algorithm, as R's nls() default: Gauss-Newton with step halving (a step is
// accepted when the residual sum of squares does not increase; the factor
// halves down to 1/1024, then doubles back after a success), the Bates-Watts
// relative-offset convergence criterion (tolerance kFitTolerance, tighter than
// nls' 1e-5 so that both land on the same optimum to well within 4 significant
// digits), at most kFitMaxIterations steps. Standard errors
// are sigma·sqrt(diag((JᵀJ)⁻¹)) with sigma² = RSS/(n − 3), as summary.nls;
// the derived ke, ka, CL/F and t½ carry delta-method errors.
#pragma once

#include "messages/codec/message.h"
#include "services/core/status.h"

namespace fedrx::translational {

inline constexpr double kFitTolerance = 1e-6;
inline constexpr int kFitMaxIterations = 100;
inline constexpr double kFitMinStepFactor = 1.0 / 1024;
// A FitPk request carries 16 bytes an observation; this keeps it well inside
// the bus's 1 MiB envelope.
inline constexpr std::size_t kFitMaxObservations = 20000;

// Estimates in this order: lKe, lKa, lCl, ke, ka, cl, t_half. Starting values
// not given in request.start come from the data (see pk_fit.cc: log-linear
// terminal phase, method of residuals, then the best CL for those rates).
// InvalidArgument on bad input (sizes, NaN, negative times, dose <= 0, fewer
// than 4 observations, unknown start names); FailedPrecondition when the fit
// does not converge or the gradient is singular.
core::Result<codec::PkFit> FitPk(const codec::FitPk& request);

}  // namespace fedrx::translational
