// Unit normalisation for the common data model: a documented table of CDISC
// UNIT codes, each with the quantity it measures, the canonical unit of that
// quantity and the factor (and offset) to it, plus molar masses for the few
// laboratory tests where mass and substance concentrations are interconverted.
// Stateless; the tables are constants. Thread-safe.
//
// Canonical units (findings context):
//   mass                      g        (kg, mg, ug, ng, LB)
//   dose per body mass        mg/kg    (ug/kg, g/kg, ng/kg)
//   dose per body mass a day  mg/kg/day (ug/kg/day, g/kg/day)
//   volume                    mL       (L, dL, uL)
//   mass concentration        g/L      (g/dL, mg/dL, mg/L, mg/mL, ug/mL, ug/dL,
//                                       ug/L, ng/mL, ng/L, pg/mL)
//   substance concentration   mmol/L   (umol/L, nmol/L, pmol/L, mol/L)
//   catalytic activity        U/L      (IU/L, mU/L, mIU/L, U/mL, IU/mL, uIU/mL, ukat/L)
//   number concentration      10^9/L   (10^3/uL, 10^3/mm3, /nL, 10^12/L, 10^6/uL,
//                                       10^6/mm3, /uL, /mm3, 10^6/L)
//   fraction                  %
//   time                      sec      (msec, min, h)
//   temperature               C        (F)
//   length                    cm       (mm, m, in)
//   mass rate                 g/day    (kg/day, mg/day)
// and units that are their own canonical (no alternative is converted):
//   "" (no unit), mg/m2, mL/kg, mEq/L (equivalents depend on valence), fL, pg and
//   fmol (erythrocyte indices), beats/min, breaths/min, mmHg, h*ng/mL.
// In the dose context (EX EXDOSU, TX TRTDOSU) an amount is normalised to mg,
// not g, and a "/dose" suffix is dropped (EXDOSE is per administration):
//   dose amount mg (ug, g, ng, mg/dose, ug/dose, g/dose), dose rate mg/day
//   (ug/day, g/day); every other code falls back to the findings table.
//
// Mass <-> substance concentration (g/L <-> mmol/L) is converted only for the
// tests of MolarMass(); a finding of such a test is normalised to mmol/L (SI),
// e.g. glucose 100 mg/dL -> 100 * 10 / 180.16 = 5.5506... mmol/L.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "services/core/status.h"

namespace fedrx::ingest::units {

enum class Quantity : std::uint8_t {
  kDimensionless,
  kMass,
  kDosePerBodyMass,
  kDosePerBodyMassPerDay,
  kDosePerBodySurface,
  kDoseAmount,
  kDoseRate,
  kVolume,
  kVolumePerBodyMass,
  kMassConcentration,
  kSubstanceConcentration,
  kEquivalentConcentration,
  kCatalyticActivity,
  kNumberConcentration,
  kFraction,
  kCellVolume,
  kCellMass,
  kCellAmount,
  kTime,
  kRate,
  kPressure,
  kTemperature,
  kLength,
  kMassRate,
  kAreaUnderCurve,
};

// "mass", "mass_concentration", ...; bounded.
const char* QuantityName(Quantity quantity);

// Where a unit is used: dose amounts normalise to mg, finding masses to g.
enum class Context : std::uint8_t { kFinding, kDose };

// One row of the table: value_in_canonical = value * factor + offset.
struct UnitDef {
  std::string_view code;  // CDISC UNIT submission value, e.g. "mg/dL"
  Quantity quantity;
  std::string_view canonical;
  double factor;
  double offset;
};

// The whole table of a context (the dose context lists only its own rows).
const std::vector<UnitDef>& UnitTable(Context context);

// Looks `code` up: the context's table, then (dose context) the findings table;
// an exact match first, then a case-insensitive one. nullptr when unknown.
const UnitDef* FindUnit(std::string_view code, Context context = Context::kFinding);

// The molar mass (g/mol) used to interconvert g/L and mmol/L for a laboratory
// test code (LBTESTCD), or nullopt. Documented values:
//   GLUC 180.16 (glucose), CREAT 113.12 (creatinine), UREAN and BUN 28.014
//   (urea nitrogen: two N per urea), CHOL 386.65 (cholesterol), BILI 584.66
//   (bilirubin), URATE 168.11 (uric acid), CA 40.078 (calcium), PHOS 30.974
//   (inorganic phosphorus as P), MG 24.305 (magnesium), TRIG 885.7 (as triolein).
std::optional<double> MolarMass(std::string_view test_code);

struct Normalised {
  double value = 0;
  std::string unit;  // canonical
  Quantity quantity = Quantity::kDimensionless;
};

// `value` in `unit` converted to its canonical unit; for a test of MolarMass()
// a mass concentration becomes mmol/L. Errors: kNotFound for a unit not in the
// table (the caller keeps the value in its original unit and reports it).
core::Result<Normalised> Normalise(double value, std::string_view unit,
                                   Context context = Context::kFinding,
                                   std::string_view test_code = {});

// `value` from one unit to another of the same quantity, or between mass and
// substance concentration when `test_code` has a molar mass. Errors: kNotFound
// for an unknown unit; kInvalidArgument when the units measure different
// quantities (and no molar mass bridges them).
core::Result<double> Convert(double value, std::string_view from, std::string_view to,
                             std::string_view test_code = {}, Context context = Context::kFinding);

}  // namespace fedrx::ingest::units
