// Published base rates: lookup by area name, the report's internal
// consistency, and unknown areas.
#include "services/clinical/base_rates.h"

#include <gtest/gtest.h>

namespace fedrx::clinical {
namespace {

// The overall row carries the report's four transitions and LOA.
TEST(BaseRatesTest, OverallRowHasReportFigures) {
  auto r = LookupBaseRates("all_indications");
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_TRUE(r->HasAllTransitions());
  EXPECT_DOUBLE_EQ(*r->transition[0], 0.520);
  EXPECT_DOUBLE_EQ(*r->transition[1], 0.289);
  EXPECT_DOUBLE_EQ(*r->transition[2], 0.578);
  EXPECT_DOUBLE_EQ(*r->transition[3], 0.906);
  EXPECT_DOUBLE_EQ(*r->loa_from_phase1, 0.079);
  EXPECT_FALSE(r->source.empty());
}

// LOA from Phase I equals the product of the four transitions within the
// report's rounding (each figure to 0.1 percentage point: at most ~0.0008).
TEST(BaseRatesTest, LoaIsProductOfTransitionsWithinRounding) {
  for (const std::string& area : KnownAreas()) {
    auto r = LookupBaseRates(area);
    ASSERT_TRUE(r.ok()) << area;
    if (!r->HasAllTransitions() || !r->loa_from_phase1) continue;
    EXPECT_NEAR(*r->TransitionProduct(), *r->loa_from_phase1, 0.001) << area;
  }
  auto all = LookupBaseRates("all");
  ASSERT_TRUE(all.ok());
  EXPECT_NEAR(*all->TransitionProduct(), 0.0787, 0.0001);
}

// Names match case-insensitively, with separators and aliases.
TEST(BaseRatesTest, LookupIsCaseInsensitiveWithAliases) {
  for (const char* name : {"All Indications", "OVERALL", " all-indications ", "all"}) {
    auto r = LookupBaseRates(name);
    ASSERT_TRUE(r.ok()) << name;
    EXPECT_EQ(r->area, "all_indications") << name;
  }
  auto h = LookupBaseRates("Haematology");
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->area, "hematology");
  EXPECT_DOUBLE_EQ(*h->loa_from_phase1, 0.239);
  auto o = LookupBaseRates("ONCOLOGY");
  ASSERT_TRUE(o.ok());
  EXPECT_DOUBLE_EQ(*o->loa_from_phase1, 0.053);
  EXPECT_DOUBLE_EQ(*LookupBaseRates("urology")->loa_from_phase1, 0.036);
  EXPECT_DOUBLE_EQ(*LookupBaseRates("Cardiovascular")->loa_from_phase1, 0.048);
}

// Areas with only a confirmed LOA have no transitions and no product.
TEST(BaseRatesTest, AreaWithOnlyLoaHasNoTransitions) {
  auto h = LookupBaseRates("hematology");
  ASSERT_TRUE(h.ok());
  EXPECT_FALSE(h->HasAllTransitions());
  EXPECT_FALSE(h->transition[0].has_value());
  EXPECT_FALSE(h->TransitionProduct().has_value());
}

// An unknown (or unconfirmed) area is InvalidArgument naming it and listing
// the known ones, at the caller's `where`.
TEST(BaseRatesTest, UnknownAreaIsInvalidArgumentListingKnown) {
  auto r = LookupBaseRates("Dermatology", "Request.area");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().where(), "Request.area");
  EXPECT_NE(r.status().message().find("Dermatology"), std::string::npos);
  EXPECT_NE(r.status().message().find("hematology"), std::string::npos);
  EXPECT_NE(r.status().message().find("all_indications"), std::string::npos);
  EXPECT_FALSE(LookupBaseRates("").ok());
}

}  // namespace
}  // namespace fedrx::clinical
