// Virtual first-in-human trials: a simulated population with log-normal
// between-subject variability in its pharmacokinetics, exposure-toxicity and
// exposure-response curves on AUC, and a dose-escalation design run on
// patients whose DLTs follow their own exposure. Pure function; thread-safe.
#pragma once

#include "messages/codec/message.h"
#include "services/core/status.h"

namespace fedrx::trial {

// Modified Fibonacci multiples of the start dose used when request.dose_mg is
// empty.
inline constexpr double kDefaultDoseMultiples[] = {1, 2, 3.3, 5, 7};
inline constexpr int kMaxPopulation = 100000;

// Per dose level: the population's AUC(0-inf) median and 5th/95th
// percentiles (R's type 7 quantiles), and the population averages of
// P(DLT | AUC) = 1 / (1 + (tox_auc50 / AUC)^tox_hill) and P(response | AUC) =
// emax AUC^h / (auc50^h + AUC^h), over `population` subjects (the same
// subjects at every dose). Individual parameters are typical x exp(eta),
// eta ~ N(0, omega^2), omega^2 = ln(1 + bsv_cv^2), independently on CL, V
// (central) and ka (oral); the typical value is the median. Then
// `request.trials` escalation trials in which each enrolled patient draws
// their own parameters and a DLT with their own P(DLT | AUC); the operating
// characteristics take the population p_dlt as each dose's true rate.
// InvalidArgument with `where` "RunVirtualTrial.<field>" for a bad request.
core::Result<codec::VirtualTrialResult> RunVirtualTrial(const codec::RunVirtualTrial& request);

}  // namespace fedrx::trial
