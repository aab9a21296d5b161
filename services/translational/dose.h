// Animal-to-human dose translation for first-in-human trials: the Km table,
// human equivalent doses (HED) per species, the most sensitive species and the
// maximum recommended starting dose (MRSD), each answer with its working.
// Follows FDA (2005), "Estimating the Maximum Safe Starting Dose in Initial
// Clinical Trials for Therapeutics in Adult Healthy Volunteers", Table 1.
// Pure functions over constant data; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "messages/codec/message.h"
#include "services/core/status.h"

namespace fedrx::translational {

inline constexpr const char* kFda2005Guidance =
    "FDA 2005, Estimating the Maximum Safe Starting Dose in Initial Clinical Trials for "
    "Therapeutics in Adult Healthy Volunteers";

// Human Km (kg/m²) of the guidance's 60 kg reference adult, and that weight.
inline constexpr double kHumanKm = 37;
inline constexpr double kHumanReferenceWeightKg = 60;

// One row of the guidance's Table 1. Working range bounds are 0 for the human
// rows (the table gives none).
struct KmSpecies {
  std::string name;                  // canonical name, e.g. "guinea pig"
  std::vector<std::string> aliases;  // other accepted names, e.g. "rhesus"
  double reference_weight_kg = 0;
  double working_range_low_kg = 0;
  double working_range_high_kg = 0;
  double km = 0;               // body weight / body surface area (kg/m²)
  double divide_factor = 0;    // "divide animal dose by" (human Km / animal Km, rounded)
  double multiply_factor = 0;  // "multiply animal dose by" (animal Km / human Km, rounded)
  double body_surface_area_m2 = 0;
  bool human = false;  // the adult and child rows: not a test species
};

// Table 1, in the guidance's order (human adult, child, then the animals).
const std::vector<KmSpecies>& KmTable();

// The row whose name or alias matches `name` ignoring case, spaces, '-' and
// '_' (e.g. "Guinea_Pig", "cynomolgus", "minipig"); nullptr if none.
const KmSpecies* FindSpecies(std::string_view name);

// HED per species (BSA by Km, or the weight-exponent option), the chosen
// species (default the most sensitive: lowest HED), MRSD = HED / safety
// factor, in mg/kg and in mg for human_weight_kg. InvalidArgument naming the
// field (e.g. "TranslateDose.noaels[1].noael_mg_per_kg") on bad input.
core::Result<codec::DoseTranslation> TranslateDose(const codec::TranslateDose& request);

}  // namespace fedrx::translational
