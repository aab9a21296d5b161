#include "services/ingest/controlled_terms.h"

#include <algorithm>
#include <array>
#include <string_view>

namespace fedrx::ingest {
namespace {

using namespace std::string_view_literals;

// SEX: CDISC SEX codelist submission values.
constexpr std::array kSexTerms = {"F"sv, "M"sv, "U"sv, "UNDIFFERENTIATED"sv};

// SPECIES: the laboratory species a nonclinical study commonly uses.
constexpr std::array kSpeciesTerms = {
    "CAT"sv,    "CATTLE"sv, "CHICKEN"sv,    "DOG"sv,     "FERRET"sv, "FISH"sv,
    "GERBIL"sv, "GOAT"sv,   "GUINEA PIG"sv, "HAMSTER"sv, "HORSE"sv,  "MONKEY"sv,
    "MOUSE"sv,  "PIG"sv,    "RABBIT"sv,     "RAT"sv,     "SHEEP"sv,
};

// STRAIN: common strains and breeds of those species (extensible in CDISC).
constexpr std::array kStrainTerms = {
    "AFRICAN GREEN"sv, "B6C3F1"sv,         "BALB/C"sv,
    "BEAGLE"sv,        "C57BL/6"sv,        "CD-1"sv,
    "CD1"sv,           "CYNOMOLGUS"sv,     "DUTCH BELTED"sv,
    "FISCHER 344"sv,   "GOTTINGEN"sv,      "HANFORD"sv,
    "LONG-EVANS"sv,    "MARMOSET"sv,       "NEW ZEALAND WHITE"sv,
    "RHESUS"sv,        "SPRAGUE-DAWLEY"sv, "SWISS WEBSTER"sv,
    "WISTAR"sv,        "WISTAR HAN"sv,     "YUCATAN"sv,
};

// ROUTE: the routes of administration the common data model distinguishes.
constexpr std::array kRouteTerms = {
    "BUCCAL"sv,
    "CUTANEOUS"sv,
    "DERMAL"sv,
    "INHALATION"sv,
    "INTRADERMAL"sv,
    "INTRAMUSCULAR"sv,
    "INTRANASAL"sv,
    "INTRAPERITONEAL"sv,
    "INTRATHECAL"sv,
    "INTRAVENOUS"sv,
    "INTRAVENOUS BOLUS"sv,
    "INTRAVENOUS DRIP"sv,
    "NASAL"sv,
    "OPHTHALMIC"sv,
    "ORAL"sv,
    "ORAL GAVAGE"sv,
    "RECTAL"sv,
    "RESPIRATORY (INHALATION)"sv,
    "SUBCUTANEOUS"sv,
    "SUBLINGUAL"sv,
    "TOPICAL"sv,
    "TRANSDERMAL"sv,
    "VAGINAL"sv,
};

// UNIT: units of the standardised results and doses the model converts.
constexpr std::array kUnitTerms = {
    // mass, volume, length
    "kg"sv,
    "g"sv,
    "mg"sv,
    "ug"sv,
    "ng"sv,
    "pg"sv,
    "L"sv,
    "dL"sv,
    "mL"sv,
    "uL"sv,
    "fL"sv,
    "m"sv,
    "cm"sv,
    "mm"sv,
    "um"sv,
    // ratios and counts
    "%"sv,
    "ratio"sv,
    "10^3/uL"sv,
    "10^6/uL"sv,
    "10^9/L"sv,
    "10^12/L"sv,
    "/HPF"sv,
    "/LPF"sv,
    // concentrations
    "g/L"sv,
    "g/dL"sv,
    "mg/L"sv,
    "mg/dL"sv,
    "mg/mL"sv,
    "ug/L"sv,
    "ug/dL"sv,
    "ug/mL"sv,
    "ng/L"sv,
    "ng/mL"sv,
    "pg/mL"sv,
    "mol/L"sv,
    "mmol/L"sv,
    "umol/L"sv,
    "nmol/L"sv,
    "pmol/L"sv,
    "fmol"sv,
    "mEq/L"sv,
    "mOsm/kg"sv,
    // enzyme activity
    "U/L"sv,
    "IU/L"sv,
    "mU/L"sv,
    "U/mL"sv,
    "mU/mL"sv,
    "uU/mL"sv,
    "IU/mL"sv,
    // doses
    "mg/kg"sv,
    "mg/kg/day"sv,
    "ug/kg"sv,
    "ug/kg/day"sv,
    "g/kg"sv,
    "mL/kg"sv,
    "mg/m2"sv,
    "mg/day"sv,
    "mg/dose"sv,
    "ug/dose"sv,
    // time, vital signs, physical
    "sec"sv,
    "s"sv,
    "min"sv,
    "h"sv,
    "DAYS"sv,
    "mmHg"sv,
    "beats/min"sv,
    "breaths/min"sv,
    "msec"sv,
    "C"sv,
    "h*ng/mL"sv,
    "h*ug/mL"sv,
    "kg/m2"sv,
    "g/day"sv,
    "g/animal/day"sv,
};

// BWTESTCD: the whole SEND codelist.
constexpr std::array kBwTestCodeTerms = {"BW"sv, "TERMBW"sv};

// LBTESTCD: clinical chemistry, haematology, coagulation and urinalysis codes
// the common data model maps to its lab features.
constexpr std::array kLbTestCodeTerms = {
    // clinical chemistry
    "ALB"sv,
    "ALBGLOB"sv,
    "ALP"sv,
    "ALT"sv,
    "AST"sv,
    "BILDIR"sv,
    "BILI"sv,
    "BUN"sv,
    "CA"sv,
    "CHOL"sv,
    "CK"sv,
    "CL"sv,
    "CREAT"sv,
    "GGT"sv,
    "GLOBUL"sv,
    "GLUC"sv,
    "HDL"sv,
    "K"sv,
    "LDH"sv,
    "LDL"sv,
    "MG"sv,
    "PHOS"sv,
    "PROT"sv,
    "SODIUM"sv,
    "TRIG"sv,
    "URATE"sv,
    "UREAN"sv,
    // haematology
    "BASO"sv,
    "EOS"sv,
    "HCT"sv,
    "HGB"sv,
    "LYM"sv,
    "MCH"sv,
    "MCHC"sv,
    "MCV"sv,
    "MONO"sv,
    "NEUT"sv,
    "PLAT"sv,
    "RBC"sv,
    "RETI"sv,
    "WBC"sv,
    // coagulation
    "APTT"sv,
    "FIBRINO"sv,
    "INR"sv,
    "PT"sv,
    // urinalysis
    "KETONES"sv,
    "PH"sv,
    "SPGRAV"sv,
    "UROBIL"sv,
    "VOLUME"sv,
};

}  // namespace

const char* CodelistName(Codelist codelist) {
  switch (codelist) {
    case Codelist::kSex:
      return "SEX";
    case Codelist::kSpecies:
      return "SPECIES";
    case Codelist::kStrain:
      return "STRAIN";
    case Codelist::kRoute:
      return "ROUTE";
    case Codelist::kUnit:
      return "UNIT";
    case Codelist::kBwTestCode:
      return "BWTESTCD";
    case Codelist::kLbTestCode:
      return "LBTESTCD";
  }
  return "UNKNOWN";
}

std::span<const std::string_view> CodelistTerms(Codelist codelist) {
  switch (codelist) {
    case Codelist::kSex:
      return kSexTerms;
    case Codelist::kSpecies:
      return kSpeciesTerms;
    case Codelist::kStrain:
      return kStrainTerms;
    case Codelist::kRoute:
      return kRouteTerms;
    case Codelist::kUnit:
      return kUnitTerms;
    case Codelist::kBwTestCode:
      return kBwTestCodeTerms;
    case Codelist::kLbTestCode:
      return kLbTestCodeTerms;
  }
  return {};
}

bool InCodelist(Codelist codelist, std::string_view value) {
  const auto terms = CodelistTerms(codelist);
  return std::find(terms.begin(), terms.end(), value) != terms.end();
}

}  // namespace fedrx::ingest
