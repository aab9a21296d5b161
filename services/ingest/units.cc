#include "services/ingest/units.h"

#include <cctype>

namespace fedrx::ingest::units {
namespace {

using Q = Quantity;

// The findings table. Factors are exact definitions except LB (international
// avoirdupois pound, 453.59237 g exactly) and F (C = (F - 32) * 5/9).
const std::vector<UnitDef>& FindingTable() {
  static const std::vector<UnitDef> kTable = {
      {"", Q::kDimensionless, "", 1, 0},
      {"g", Q::kMass, "g", 1, 0},
      {"kg", Q::kMass, "g", 1e3, 0},
      {"mg", Q::kMass, "g", 1e-3, 0},
      {"ug", Q::kMass, "g", 1e-6, 0},
      {"ng", Q::kMass, "g", 1e-9, 0},
      {"LB", Q::kMass, "g", 453.59237, 0},
      {"mg/kg", Q::kDosePerBodyMass, "mg/kg", 1, 0},
      {"ug/kg", Q::kDosePerBodyMass, "mg/kg", 1e-3, 0},
      {"g/kg", Q::kDosePerBodyMass, "mg/kg", 1e3, 0},
      {"ng/kg", Q::kDosePerBodyMass, "mg/kg", 1e-6, 0},
      {"mg/kg/day", Q::kDosePerBodyMassPerDay, "mg/kg/day", 1, 0},
      {"ug/kg/day", Q::kDosePerBodyMassPerDay, "mg/kg/day", 1e-3, 0},
      {"g/kg/day", Q::kDosePerBodyMassPerDay, "mg/kg/day", 1e3, 0},
      {"mg/m2", Q::kDosePerBodySurface, "mg/m2", 1, 0},
      {"mL", Q::kVolume, "mL", 1, 0},
      {"L", Q::kVolume, "mL", 1e3, 0},
      {"dL", Q::kVolume, "mL", 1e2, 0},
      {"uL", Q::kVolume, "mL", 1e-3, 0},
      {"mL/kg", Q::kVolumePerBodyMass, "mL/kg", 1, 0},
      {"g/L", Q::kMassConcentration, "g/L", 1, 0},
      {"g/dL", Q::kMassConcentration, "g/L", 10, 0},
      {"mg/dL", Q::kMassConcentration, "g/L", 1e-2, 0},
      {"mg/L", Q::kMassConcentration, "g/L", 1e-3, 0},
      {"mg/mL", Q::kMassConcentration, "g/L", 1, 0},
      {"ug/mL", Q::kMassConcentration, "g/L", 1e-3, 0},
      {"ug/dL", Q::kMassConcentration, "g/L", 1e-5, 0},
      {"ug/L", Q::kMassConcentration, "g/L", 1e-6, 0},
      {"ng/mL", Q::kMassConcentration, "g/L", 1e-6, 0},
      {"ng/L", Q::kMassConcentration, "g/L", 1e-9, 0},
      {"pg/mL", Q::kMassConcentration, "g/L", 1e-9, 0},
      {"mmol/L", Q::kSubstanceConcentration, "mmol/L", 1, 0},
      {"umol/L", Q::kSubstanceConcentration, "mmol/L", 1e-3, 0},
      {"nmol/L", Q::kSubstanceConcentration, "mmol/L", 1e-6, 0},
      {"pmol/L", Q::kSubstanceConcentration, "mmol/L", 1e-9, 0},
      {"mol/L", Q::kSubstanceConcentration, "mmol/L", 1e3, 0},
      {"mEq/L", Q::kEquivalentConcentration, "mEq/L", 1, 0},
      {"U/L", Q::kCatalyticActivity, "U/L", 1, 0},
      {"IU/L", Q::kCatalyticActivity, "U/L", 1, 0},
      {"mU/L", Q::kCatalyticActivity, "U/L", 1e-3, 0},
      {"mIU/L", Q::kCatalyticActivity, "U/L", 1e-3, 0},
      {"U/mL", Q::kCatalyticActivity, "U/L", 1e3, 0},
      {"IU/mL", Q::kCatalyticActivity, "U/L", 1e3, 0},
      {"uIU/mL", Q::kCatalyticActivity, "U/L", 1e-3, 0},
      {"ukat/L", Q::kCatalyticActivity, "U/L", 60, 0},
      {"10^9/L", Q::kNumberConcentration, "10^9/L", 1, 0},
      {"10^3/uL", Q::kNumberConcentration, "10^9/L", 1, 0},
      {"10^3/mm3", Q::kNumberConcentration, "10^9/L", 1, 0},
      {"/nL", Q::kNumberConcentration, "10^9/L", 1, 0},
      {"10^12/L", Q::kNumberConcentration, "10^9/L", 1e3, 0},
      {"10^6/uL", Q::kNumberConcentration, "10^9/L", 1e3, 0},
      {"10^6/mm3", Q::kNumberConcentration, "10^9/L", 1e3, 0},
      {"/uL", Q::kNumberConcentration, "10^9/L", 1e-3, 0},
      {"/mm3", Q::kNumberConcentration, "10^9/L", 1e-3, 0},
      {"10^6/L", Q::kNumberConcentration, "10^9/L", 1e-3, 0},
      {"%", Q::kFraction, "%", 1, 0},
      {"fL", Q::kCellVolume, "fL", 1, 0},
      {"pg", Q::kCellMass, "pg", 1, 0},
      {"fmol", Q::kCellAmount, "fmol", 1, 0},
      {"sec", Q::kTime, "sec", 1, 0},
      {"msec", Q::kTime, "sec", 1e-3, 0},
      {"min", Q::kTime, "sec", 60, 0},
      {"h", Q::kTime, "sec", 3600, 0},
      {"beats/min", Q::kRate, "beats/min", 1, 0},
      {"breaths/min", Q::kRate, "breaths/min", 1, 0},
      {"mmHg", Q::kPressure, "mmHg", 1, 0},
      {"C", Q::kTemperature, "C", 1, 0},
      {"F", Q::kTemperature, "C", 5.0 / 9.0, -160.0 / 9.0},
      {"cm", Q::kLength, "cm", 1, 0},
      {"mm", Q::kLength, "cm", 0.1, 0},
      {"m", Q::kLength, "cm", 100, 0},
      {"in", Q::kLength, "cm", 2.54, 0},
      {"g/day", Q::kMassRate, "g/day", 1, 0},
      {"kg/day", Q::kMassRate, "g/day", 1e3, 0},
      {"mg/day", Q::kMassRate, "g/day", 1e-3, 0},
      {"h*ng/mL", Q::kAreaUnderCurve, "h*ng/mL", 1, 0},
  };
  return kTable;
}

const std::vector<UnitDef>& DoseTable() {
  static const std::vector<UnitDef> kTable = {
      {"mg", Q::kDoseAmount, "mg", 1, 0},          {"ug", Q::kDoseAmount, "mg", 1e-3, 0},
      {"g", Q::kDoseAmount, "mg", 1e3, 0},         {"ng", Q::kDoseAmount, "mg", 1e-6, 0},
      {"mg/dose", Q::kDoseAmount, "mg", 1, 0},     {"ug/dose", Q::kDoseAmount, "mg", 1e-3, 0},
      {"g/dose", Q::kDoseAmount, "mg", 1e3, 0},    {"mg/day", Q::kDoseRate, "mg/day", 1, 0},
      {"ug/day", Q::kDoseRate, "mg/day", 1e-3, 0}, {"g/day", Q::kDoseRate, "mg/day", 1e3, 0},
  };
  return kTable;
}

struct Molar {
  std::string_view test_code;
  double grams_per_mol;
};
constexpr Molar kMolar[] = {
    {"GLUC", 180.16}, {"CREAT", 113.12}, {"UREAN", 28.014}, {"BUN", 28.014},
    {"CHOL", 386.65}, {"BILI", 584.66},  {"URATE", 168.11}, {"CA", 40.078},
    {"PHOS", 30.974}, {"MG", 24.305},    {"TRIG", 885.7},
};

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

const UnitDef* Lookup(const std::vector<UnitDef>& table, std::string_view code) {
  for (const UnitDef& d : table) {
    if (d.code == code) return &d;
  }
  // A case-insensitive match only when it is unambiguous ("MG/DL" but not "m"/"M").
  const UnitDef* found = nullptr;
  for (const UnitDef& d : table) {
    if (EqualsIgnoreCase(d.code, code)) {
      if (found != nullptr) return nullptr;
      found = &d;
    }
  }
  return found;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

}  // namespace

const char* QuantityName(Quantity quantity) {
  switch (quantity) {
    case Q::kDimensionless:
      return "dimensionless";
    case Q::kMass:
      return "mass";
    case Q::kDosePerBodyMass:
      return "dose_per_body_mass";
    case Q::kDosePerBodyMassPerDay:
      return "dose_per_body_mass_per_day";
    case Q::kDosePerBodySurface:
      return "dose_per_body_surface";
    case Q::kDoseAmount:
      return "dose_amount";
    case Q::kDoseRate:
      return "dose_rate";
    case Q::kVolume:
      return "volume";
    case Q::kVolumePerBodyMass:
      return "volume_per_body_mass";
    case Q::kMassConcentration:
      return "mass_concentration";
    case Q::kSubstanceConcentration:
      return "substance_concentration";
    case Q::kEquivalentConcentration:
      return "equivalent_concentration";
    case Q::kCatalyticActivity:
      return "catalytic_activity";
    case Q::kNumberConcentration:
      return "number_concentration";
    case Q::kFraction:
      return "fraction";
    case Q::kCellVolume:
      return "cell_volume";
    case Q::kCellMass:
      return "cell_mass";
    case Q::kCellAmount:
      return "cell_amount";
    case Q::kTime:
      return "time";
    case Q::kRate:
      return "rate";
    case Q::kPressure:
      return "pressure";
    case Q::kTemperature:
      return "temperature";
    case Q::kLength:
      return "length";
    case Q::kMassRate:
      return "mass_rate";
    case Q::kAreaUnderCurve:
      return "area_under_curve";
  }
  return "dimensionless";
}

const std::vector<UnitDef>& UnitTable(Context context) {
  return context == Context::kDose ? DoseTable() : FindingTable();
}

const UnitDef* FindUnit(std::string_view code, Context context) {
  code = Trim(code);
  if (context == Context::kDose) {
    if (const UnitDef* d = Lookup(DoseTable(), code)) return d;
  }
  return Lookup(FindingTable(), code);
}

std::optional<double> MolarMass(std::string_view test_code) {
  for (const Molar& m : kMolar) {
    if (m.test_code == test_code) return m.grams_per_mol;
  }
  return std::nullopt;
}

core::Result<Normalised> Normalise(double value, std::string_view unit, Context context,
                                   std::string_view test_code) {
  const UnitDef* def = FindUnit(unit, context);
  if (def == nullptr) return core::NotFound("unit not in the normalisation table", "unit");
  Normalised out;
  out.value = value * def->factor + def->offset;
  out.unit = std::string(def->canonical);
  out.quantity = def->quantity;
  if (def->quantity == Q::kMassConcentration && context == Context::kFinding) {
    if (const auto molar = MolarMass(test_code)) {
      // g/L / (g/mol) = mol/L; * 1000 = mmol/L.
      out.value = out.value / *molar * 1000.0;
      out.unit = "mmol/L";
      out.quantity = Q::kSubstanceConcentration;
    }
  }
  return out;
}

core::Result<double> Convert(double value, std::string_view from, std::string_view to,
                             std::string_view test_code, Context context) {
  const UnitDef* src = FindUnit(from, context);
  if (src == nullptr) return core::NotFound("source unit not in the normalisation table", "from");
  const UnitDef* dst = FindUnit(to, context);
  if (dst == nullptr) return core::NotFound("target unit not in the normalisation table", "to");
  double canonical = value * src->factor + src->offset;
  if (src->quantity != dst->quantity) {
    const auto molar = MolarMass(test_code);
    if (src->quantity == Q::kMassConcentration && dst->quantity == Q::kSubstanceConcentration &&
        molar) {
      canonical = canonical / *molar * 1000.0;  // g/L -> mmol/L
    } else if (src->quantity == Q::kSubstanceConcentration &&
               dst->quantity == Q::kMassConcentration && molar) {
      canonical = canonical * *molar / 1000.0;  // mmol/L -> g/L
    } else {
      return core::InvalidArgument(std::string("units measure different quantities: ") +
                                       QuantityName(src->quantity) + " vs " +
                                       QuantityName(dst->quantity),
                                   "to");
    }
  }
  return (canonical - dst->offset) / dst->factor;
}

}  // namespace fedrx::ingest::units
