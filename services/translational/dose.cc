#include "services/translational/dose.h"

#include <cctype>
#include <cmath>
#include <string>
#include <vector>

#include "services/domain/working.h"

namespace fedrx::translational {

using domain::FormatNumber;
using domain::Qty;
using domain::WorkingBuilder;
namespace {

// Lower case without spaces, '-' and '_': "Guinea_Pig" and "guinea pig" match.
std::string Normalise(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == ' ' || c == '-' || c == '_' || c == '\t') continue;
    out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  return out;
}

bool PositiveFinite(double x) { return std::isfinite(x) && x > 0; }

// The guidance's default safety factor and its reason (Section VII).
constexpr const char* kDefaultSafetyFactorReason =
    "default safety factor of 10 (FDA 2005, Section VII): accounts for uncertainty in "
    "extrapolating from animals to humans (species sensitivity, receptor density and "
    "affinity, unexpected toxicities, ADME differences)";
constexpr const char* kDefaultSpeciesReason = "most sensitive species (lowest HED)";

}  // namespace

// FDA (2005) Table 1, "Conversion of Animal Doses to Human Equivalent Doses
// Based on Body Surface Area". Columns: reference body weight (kg), working
// weight range (kg), body surface area (m²), Km (to convert mg/kg to mg/m²),
// "divide animal dose by" and "multiply animal dose by" (to get the HED in
// mg/kg for a 60 kg human).
// Where the values were checked (issue 7): reference weights, BSA, Km and both
// factor columns for every species agree with the table as reproduced by Nair
// & Jacob, J Basic Clin Pharm 7(2):27-31 (2016) (NovoPro summary page) and by
// the ToxCalc divide-factor list; the human adult 60 kg / 1.62 m² / Km 37 and
// the rat 6 / 0.162 also by several HED calculator pages. The child row (20 kg,
// 0.80 m², Km 25) agrees with the NCI Frederick Km table (Freireich et al.
// 1966). The working weight ranges are transcribed from the guidance's Table 1;
// no second source for them was found in the searchable corpus.
const std::vector<KmSpecies>& KmTable() {
  static const std::vector<KmSpecies> kTable = {
      // name, aliases, ref kg, range low, range high, Km, divide, multiply, BSA m², human
      {"human", {"human adult", "adult", "man"}, 60, 0, 0, 37, 0, 0, 1.62, true},
      {"child", {"human child"}, 20, 0, 0, 25, 0, 0, 0.80, true},
      {"mouse", {"mice"}, 0.020, 0.011, 0.034, 3, 12.3, 0.081, 0.007, false},
      {"hamster", {"hamsters"}, 0.080, 0.047, 0.157, 5, 7.4, 0.135, 0.016, false},
      {"rat", {"rats"}, 0.150, 0.080, 0.270, 6, 6.2, 0.162, 0.025, false},
      {"ferret", {"ferrets"}, 0.300, 0.160, 0.540, 7, 5.3, 0.189, 0.043, false},
      {"guinea pig", {"guinea pigs"}, 0.400, 0.208, 0.700, 8, 4.6, 0.216, 0.05, false},
      {"rabbit", {"rabbits"}, 1.8, 0.9, 3.0, 12, 3.1, 0.324, 0.15, false},
      {"dog", {"dogs", "beagle"}, 10, 5, 17, 20, 1.8, 0.541, 0.50, false},
      // "Primates: Monkeys", footnote: e.g. cynomolgus, rhesus and stumptail.
      {"monkey",
       {"monkeys", "rhesus", "rhesus monkey", "cynomolgus", "cynomolgus monkey", "cyno",
        "stumptail", "stumptail monkey"},
       3,
       1.4,
       4.9,
       12,
       3.1,
       0.324,
       0.25,
       false},
      {"marmoset", {"marmosets"}, 0.350, 0.140, 0.720, 6, 6.2, 0.162, 0.06, false},
      {"squirrel monkey", {"squirrel monkeys"}, 0.600, 0.290, 0.970, 7, 5.3, 0.189, 0.09, false},
      {"baboon", {"baboons"}, 12, 7, 23, 20, 1.8, 0.541, 0.60, false},
      {"micro-pig", {"micropig", "micro pig"}, 20, 10, 33, 27, 1.4, 0.730, 0.74, false},
      {"mini-pig", {"minipig", "mini pig", "minipigs"}, 40, 25, 64, 35, 1.1, 0.946, 1.14, false},
  };
  return kTable;
}

const KmSpecies* FindSpecies(std::string_view name) {
  const std::string key = Normalise(name);
  if (key.empty()) return nullptr;
  for (const KmSpecies& s : KmTable()) {
    if (Normalise(s.name) == key) return &s;
    for (const std::string& a : s.aliases) {
      if (Normalise(a) == key) return &s;
    }
  }
  return nullptr;
}

core::Result<codec::DoseTranslation> TranslateDose(const codec::TranslateDose& r) {
  constexpr std::string_view kWhere = "TranslateDose";
  const bool bsa = r.method == "bsa" || r.method.empty();
  if (!bsa && r.method != "weight_exponent") {
    return core::InvalidArgument("unknown method '" + r.method + "' (bsa, weight_exponent)",
                                 "TranslateDose.method");
  }
  if (!bsa && !(r.exponent > 0 && r.exponent <= 1)) {
    return core::InvalidArgument("exponent must be in (0, 1], got " + FormatNumber(r.exponent),
                                 "TranslateDose.exponent");
  }
  if (r.noaels.empty()) {
    return core::InvalidArgument("at least one species NOAEL is needed", "TranslateDose.noaels");
  }
  if (!(std::isfinite(r.safety_factor) && r.safety_factor >= 1)) {
    return core::InvalidArgument(
        "safety factor must be finite and >= 1, got " + FormatNumber(r.safety_factor),
        "TranslateDose.safety_factor");
  }
  if (!PositiveFinite(r.human_weight_kg)) {
    return core::InvalidArgument(
        "human weight must be finite and > 0, got " + FormatNumber(r.human_weight_kg),
        "TranslateDose.human_weight_kg");
  }

  // Validate every row before computing any.
  std::vector<const KmSpecies*> rows;
  for (std::size_t i = 0; i < r.noaels.size(); ++i) {
    const codec::SpeciesNoael& n = r.noaels[i];
    const std::string at = std::string(kWhere) + ".noaels[" + std::to_string(i) + "]";
    const KmSpecies* s = FindSpecies(n.species);
    if (s == nullptr) {
      return core::InvalidArgument("unknown species '" + n.species + "' (not in Table 1)",
                                   at + ".species");
    }
    if (s->human) {
      return core::InvalidArgument("'" + n.species + "' is a human row, not a test species",
                                   at + ".species");
    }
    for (std::size_t j = 0; j < rows.size(); ++j) {
      if (rows[j] == s) {
        return core::InvalidArgument(
            "species '" + s->name + "' given twice (also noaels[" + std::to_string(j) + "])",
            at + ".species");
      }
    }
    if (!PositiveFinite(n.noael_mg_per_kg)) {
      return core::InvalidArgument(
          "NOAEL must be finite and > 0, got " + FormatNumber(n.noael_mg_per_kg),
          at + ".noael_mg_per_kg");
    }
    if (!std::isfinite(n.body_weight_kg) || n.body_weight_kg < 0) {
      return core::InvalidArgument("body weight must be finite and >= 0 (0 = reference), got " +
                                       FormatNumber(n.body_weight_kg),
                                   at + ".body_weight_kg");
    }
    rows.push_back(s);
  }

  codec::DoseTranslation out;
  WorkingBuilder wb(&out.working);
  out.working.guidance = kFda2005Guidance;
  out.working.method = bsa ? "HED by body surface area (Km, Table 1); MRSD = HED / safety factor"
                           : "HED by the weight-based option, NOAEL × (Wa/Wh)^(1 − " +
                                 FormatNumber(r.exponent) + "); MRSD = HED / safety factor";
  const double wh = kHumanReferenceWeightKg;
  wb.Note(
      "HED in mg/kg refers to the guidance's 60 kg reference adult (Km 37); "
      "human_weight_kg only converts the MRSD to mg");

  for (std::size_t i = 0; i < r.noaels.size(); ++i) {
    const codec::SpeciesNoael& n = r.noaels[i];
    const KmSpecies& s = *rows[i];
    const double wa = n.body_weight_kg > 0 ? n.body_weight_kg : s.reference_weight_kg;
    codec::SpeciesHed h;
    h.species = s.name;
    h.noael_mg_per_kg = n.noael_mg_per_kg;
    h.body_weight_kg = wa;
    h.source = n.source.empty() ? "request" : n.source;
    const std::string label = "HED " + s.name;
    if (bsa && wa >= s.working_range_low_kg && wa <= s.working_range_high_kg) {
      h.conversion_factor = s.km / kHumanKm;
      h.km = s.km;
      h.hed_mg_per_kg = n.noael_mg_per_kg * h.conversion_factor;
      wb.Step(label, "HED = NOAEL × (animal Km / human Km) = NOAEL / (human Km / animal Km)",
              {Qty("noael", n.noael_mg_per_kg, "mg/kg"), Qty("animal_km", s.km, "kg/m²"),
               Qty("human_km", kHumanKm, "kg/m²"), Qty("body_weight", wa, "kg"),
               Qty("divide_by (Table 1)", s.divide_factor, ""),
               Qty("multiply_by (Table 1)", s.multiply_factor, "")},
              Qty("hed", h.hed_mg_per_kg, "mg/kg"),
              "Table 1 (" + s.name + ": reference " + FormatNumber(s.reference_weight_kg) +
                  " kg, working range " + FormatNumber(s.working_range_low_kg) + "-" +
                  FormatNumber(s.working_range_high_kg) + " kg)");
    } else {
      const double b = bsa ? 0.33 : 1 - r.exponent;
      h.conversion_factor = std::pow(wa / wh, b);
      h.hed_mg_per_kg = n.noael_mg_per_kg * h.conversion_factor;
      // The Km that would give the same HED, so that km × NOAEL stays the mg/m² dose.
      h.km = kHumanKm * h.conversion_factor;
      wb.Step(label, "HED = NOAEL × (Wa / Wh)^" + FormatNumber(b),
              {Qty("noael", n.noael_mg_per_kg, "mg/kg"), Qty("Wa", wa, "kg"), Qty("Wh", wh, "kg"),
               Qty("exponent", b, "")},
              Qty("hed", h.hed_mg_per_kg, "mg/kg"),
              bsa ? "Table 1 footnote (weight outside the working range)"
                  : "weight-based option: dose ∝ W^" + FormatNumber(r.exponent));
      if (bsa) {
        wb.Note(s.name + ": body weight " + FormatNumber(wa) + " kg is outside the working range " +
                FormatNumber(s.working_range_low_kg) + "-" + FormatNumber(s.working_range_high_kg) +
                " kg; the footnote's exponent formula is used (reported km = 37 × factor)");
      }
    }
    out.heds.push_back(h);
  }

  // The species: the requested one, else the lowest HED (first on ties).
  std::size_t lowest = 0;
  for (std::size_t i = 1; i < out.heds.size(); ++i) {
    if (out.heds[i].hed_mg_per_kg < out.heds[lowest].hed_mg_per_kg) lowest = i;
  }
  std::size_t chosen = lowest;
  if (r.species.empty()) {
    out.species_reason = r.species_reason.empty() ? kDefaultSpeciesReason : r.species_reason;
  } else {
    const KmSpecies* s = FindSpecies(r.species);
    std::size_t found = rows.size();
    for (std::size_t i = 0; i < rows.size(); ++i) {
      if (rows[i] == s) found = i;
    }
    if (found == rows.size()) {
      return core::InvalidArgument("species '" + r.species + "' is not among the NOAELs given",
                                   "TranslateDose.species");
    }
    chosen = found;
    out.species_reason =
        r.species_reason.empty() ? "chosen in the request (no reason given)" : r.species_reason;
    if (out.heds[chosen].hed_mg_per_kg > out.heds[lowest].hed_mg_per_kg) {
      wb.Note("the chosen species is not the most sensitive: " + out.heds[lowest].species +
              " gives the lower HED " + FormatNumber(out.heds[lowest].hed_mg_per_kg) + " mg/kg");
    }
  }
  out.chosen_species = out.heds[chosen].species;
  out.hed_mg_per_kg = out.heds[chosen].hed_mg_per_kg;
  {
    std::vector<codec::Quantity> in;
    for (const auto& h : out.heds) in.push_back(Qty("hed_" + h.species, h.hed_mg_per_kg, "mg/kg"));
    wb.Step("species: " + out.chosen_species, r.species.empty() ? "lowest HED" : "requested",
            std::move(in), Qty("hed", out.hed_mg_per_kg, "mg/kg"),
            "Section VI (most appropriate species): " + out.species_reason);
  }

  out.safety_factor = r.safety_factor;
  if (!r.safety_factor_reason.empty()) {
    out.safety_factor_reason = r.safety_factor_reason;
  } else if (r.safety_factor == 10) {
    out.safety_factor_reason = kDefaultSafetyFactorReason;
  } else {
    out.safety_factor_reason =
        "safety factor " + FormatNumber(r.safety_factor) +
        " set in the request (no reason given; the guidance's default is 10)";
  }
  out.mrsd_mg_per_kg = out.hed_mg_per_kg / out.safety_factor;
  wb.Step("MRSD", "MRSD = HED / safety factor",
          {Qty("hed", out.hed_mg_per_kg, "mg/kg"), Qty("safety_factor", out.safety_factor, "")},
          Qty("mrsd", out.mrsd_mg_per_kg, "mg/kg"), "Section VII (application of a safety factor)");
  out.human_weight_kg = r.human_weight_kg;
  out.mrsd_mg = out.mrsd_mg_per_kg * r.human_weight_kg;
  wb.Step("MRSD in mg", "MRSD (mg) = MRSD (mg/kg) × human weight",
          {Qty("mrsd", out.mrsd_mg_per_kg, "mg/kg"), Qty("human_weight", r.human_weight_kg, "kg")},
          Qty("mrsd_mg", out.mrsd_mg, "mg"), "Section VII");
  wb.Note("values are not rounded; the guidance rounds the HED and MRSD for presentation");
  return out;
}

}  // namespace fedrx::translational
