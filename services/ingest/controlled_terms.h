// The controlled-terminology subsets that fedrx's conformance checks and its
// common data model rely on: sex, species, strain, route, units and the BW/LB
// test codes the model maps. Constant tables; thread-safe.
//
// These are deliberately small subsets of CDISC Controlled Terminology (SEND and
// SDTM), not the full codelists: a value outside them is not necessarily wrong
// CDISC, but it is a value the common data model will not map. Terms are matched
// exactly (case-sensitive), as CDISC submission values are.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace fedrx::ingest {

enum class Codelist : std::uint8_t {
  kSex,         // DM SEX (CDISC codelist SEX, C66731)
  kSpecies,     // SEND TS SPECIES / DM SPECIES (C77808)
  kStrain,      // SEND TS STRAIN / DM STRAIN (C77530), extensible
  kRoute,       // EXROUTE, TS ROUTE (C66729), extensible
  kUnit,        // --STRESU, EXDOSU (C71620), extensible
  kBwTestCode,  // BWTESTCD (C89962)
  kLbTestCode,  // LBTESTCD: the codes the common data model maps (C65047 subset)
};

// "SEX", "SPECIES", ... ; bounded, usable as a metric label.
const char* CodelistName(Codelist codelist);

// The terms, in table order; valid for the life of the program.
std::span<const std::string_view> CodelistTerms(Codelist codelist);

// Whether `value` is one of the terms (exact, case-sensitive match).
bool InCodelist(Codelist codelist, std::string_view value);

}  // namespace fedrx::ingest
