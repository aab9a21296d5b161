// Dose-escalation trials and their simulated operating characteristics: the
// 3+3, BOIN and CRM designs run by one engine against a patient-outcome
// source, so that the same design code serves fixed true DLT rates per dose
// (SimulateEscalation) and patients whose DLTs follow their own simulated
// exposure (RunVirtualTrial, virtual_trial.h).
// Pure functions and immutable designs; thread-safe (each simulated trial owns
// its random stream).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "messages/codec/message.h"
#include "services/core/random.h"
#include "services/core/status.h"

namespace fedrx::trial {

// Bounds on a request, so that an answer stays cheap to compute.
inline constexpr int kMaxEscalationTrials = 1000000;
inline constexpr int kMaxEscalationDoses = 50;
inline constexpr int kMaxEscalationPatients = 1000;
// Work bounds of one request: simulated patients (trials x patients per
// trial; 3+3 counts 6 per dose) and, for the CRM, posterior updates (trials x
// cohorts), each about a minute of one core at most.
inline constexpr double kMaxSimulatedPatients = 1e8;
inline constexpr double kMaxCrmUpdates = 1e7;

// Operating characteristics of a design on `request.true_tox` over
// `request.trials` simulated trials from `request.seed` (trial i uses a stream
// derived from (seed, i), so the answer is reproducible and does not depend on
// how trials are scheduled). InvalidArgument naming the field, e.g.
// "SimulateEscalation.true_tox[2]", for a bad request.
core::Result<codec::OperatingCharacteristics> SimulateEscalation(
    const codec::SimulateEscalation& request);

// --- The engine (used by the designs and by virtual trials) -----------------

// xoshiro256** (Blackman & Vigna 2018) seeded through splitmix64: small, fast
// and the same on every platform, with its own uniform and normal transforms
// (the standard library's distributions differ between implementations).
class Rng {
 public:
  explicit Rng(std::uint64_t seed);
  // The stream of trial `index` of a simulation seeded with `seed`.
  static Rng ForTrial(std::uint64_t seed, std::uint64_t index);

  std::uint64_t Next();
  // Uniform on [0, 1) with 53 random bits.
  double Uniform();
  // Standard normal (Marsaglia's polar method; the spare value is kept).
  double Normal();

 private:
  core::Xoshiro256 generator_;
  bool has_spare_ = false;
  double spare_ = 0;
};

// Where the patients' outcomes come from: the number of DLTs among `patients`
// new patients treated at dose level `dose` (0-based).
class OutcomeSource {
 public:
  virtual ~OutcomeSource() = default;
  virtual int CountDlts(int dose, int patients, Rng& rng) const = 0;
};

// Each patient at dose d has a DLT with probability rates[d].
class FixedRateSource final : public OutcomeSource {
 public:
  explicit FixedRateSource(std::vector<double> rates) : rates_(std::move(rates)) {}
  int CountDlts(int dose, int patients, Rng& rng) const override;

 private:
  std::vector<double> rates_;
};

// What one simulated trial did: patients and DLTs per dose (0-based), and the
// selected MTD (-1 when the trial stopped without selecting one).
struct TrialRecord {
  std::vector<int> patients;
  std::vector<int> dlts;
  int mtd = -1;
};

// A dose-finding design, validated and ready to run trials.
class DoseFinder {
 public:
  virtual ~DoseFinder() = default;
  virtual TrialRecord Run(const OutcomeSource& source, Rng& rng) const = 0;
  // Adds the design's own figures (e.g. BOIN's boundaries) and working.
  virtual void Describe(codec::OperatingCharacteristics& oc) const = 0;
};

// Checks `design` for `ndose` dose levels and builds its DoseFinder.
// InvalidArgument whose `where` is "<where>.<field>".
core::Result<std::unique_ptr<DoseFinder>> MakeDoseFinder(const codec::EscalationDesign& design,
                                                         int ndose, std::string_view where);

// What a simulation measured beyond the operating characteristics.
struct SimulationExtras {
  // Percent of trials that treated at least one patient at each dose.
  std::vector<double> reached_pct;
  // Mean over trials of the highest dose level treated (1-based).
  double highest_dose_mean = 0;
};

// Runs `trials` trials of `finder` against `source`; selection and counts are
// summarised into `oc` (the true rates `reference_tox` decide which doses are
// correct selections: those closest to `target`).
codec::OperatingCharacteristics Simulate(const DoseFinder& finder, const OutcomeSource& source,
                                         const std::vector<double>& reference_tox, double target,
                                         int trials, std::uint64_t seed,
                                         SimulationExtras* extras = nullptr);

// Validation shared with virtual trials: trials in 1..kMaxEscalationTrials.
core::Status ValidateTrials(std::int64_t trials, std::string_view where);
// The work bounds above for `trials` trials of a validated `design` with
// `ndose` levels; InvalidArgument at `where` (the trials field) beyond them.
core::Status CheckSimulationWork(const codec::EscalationDesign& design, int ndose,
                                 std::int64_t trials, std::string_view where);

}  // namespace fedrx::trial
