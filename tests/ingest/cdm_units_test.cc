#include <gtest/gtest.h>

#include "services/ingest/units.h"

namespace fedrx::ingest::units {
namespace {

TEST(IngestCdmUnitsTest, MassNormalisesToGrams) {
  const auto kg = Normalise(2.5, "kg");
  ASSERT_TRUE(kg.ok()) << kg.status();
  EXPECT_DOUBLE_EQ(kg->value, 2500.0);
  EXPECT_EQ(kg->unit, "g");
  EXPECT_EQ(kg->quantity, Quantity::kMass);
  const auto mg = Normalise(361, "mg");
  ASSERT_TRUE(mg.ok());
  EXPECT_DOUBLE_EQ(mg->value, 0.361);
  // The international avoirdupois pound is exactly 453.59237 g.
  EXPECT_DOUBLE_EQ(Normalise(2, "LB")->value, 907.18474);
}

TEST(IngestCdmUnitsTest, DosePerBodyMassNormalisesToMgPerKg) {
  const auto d = Normalise(250, "ug/kg", Context::kDose);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_DOUBLE_EQ(d->value, 0.25);
  EXPECT_EQ(d->unit, "mg/kg");
  EXPECT_DOUBLE_EQ(Normalise(1.5, "g/kg/day", Context::kDose)->value, 1500.0);
  EXPECT_EQ(Normalise(1.5, "g/kg/day", Context::kDose)->unit, "mg/kg/day");
}

TEST(IngestCdmUnitsTest, DoseAmountsNormaliseToMgAndDropPerDose) {
  const auto d = Normalise(20, "ug/dose", Context::kDose);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_DOUBLE_EQ(d->value, 0.02);
  EXPECT_EQ(d->unit, "mg");
  // The same "mg" is a dose amount in the dose context and a mass in findings.
  EXPECT_EQ(Normalise(54, "mg", Context::kDose)->unit, "mg");
  EXPECT_EQ(Normalise(54, "mg", Context::kFinding)->unit, "g");
}

TEST(IngestCdmUnitsTest, GlucoseUsesDocumentedMolarMass) {
  ASSERT_TRUE(MolarMass("GLUC").has_value());
  EXPECT_DOUBLE_EQ(*MolarMass("GLUC"), 180.16);
  // 5.5 mmol/L * 180.16 g/mol = 990.88 mg/L = 99.088 mg/dL.
  const auto mgdl = Convert(5.5, "mmol/L", "mg/dL", "GLUC");
  ASSERT_TRUE(mgdl.ok()) << mgdl.status();
  EXPECT_NEAR(*mgdl, 99.088, 1e-12);
  // A glucose finding in mg/dL is normalised to mmol/L: 100 mg/dL = 1 g/L = 1000/180.16 mmol/L.
  const auto n = Normalise(100, "mg/dL", Context::kFinding, "GLUC");
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n->unit, "mmol/L");
  EXPECT_NEAR(n->value, 1000.0 / 180.16, 1e-12);
  // Creatinine: 1 mg/dL = 10 mg/L / 113.12 g/mol = 88.40... umol/L.
  EXPECT_NEAR(*Convert(1, "mg/dL", "umol/L", "CREAT"), 10.0 / 113.12 * 1000.0, 1e-9);
}

TEST(IngestCdmUnitsTest, MassAndSubstanceDoNotMixWithoutMolarMass) {
  const auto r = Convert(4, "g/dL", "mmol/L", "ALB");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), core::StatusCode::kInvalidArgument);
  // Albumin stays a mass concentration: 3.82 g/dL = 38.2 g/L.
  const auto alb = Normalise(3.82, "g/dL", Context::kFinding, "ALB");
  EXPECT_EQ(alb->unit, "g/L");
  EXPECT_DOUBLE_EQ(alb->value, 38.2);
}

TEST(IngestCdmUnitsTest, CountsActivitiesAndTemperatures) {
  EXPECT_DOUBLE_EQ(*Convert(7.1, "10^3/uL", "10^9/L"), 7.1);
  EXPECT_DOUBLE_EQ(*Convert(7.1, "/nL", "10^9/L"), 7.1);
  EXPECT_DOUBLE_EQ(Normalise(5.2, "10^12/L")->value, 5200.0);
  EXPECT_DOUBLE_EQ(*Convert(42, "IU/L", "U/L"), 42.0);
  EXPECT_NEAR(Normalise(98.6, "F")->value, 37.0, 1e-12);
  EXPECT_EQ(Normalise(98.6, "F")->unit, "C");
  EXPECT_DOUBLE_EQ(Normalise(400, "msec")->value, 0.4);
  EXPECT_DOUBLE_EQ(Normalise(1.5, "L")->value, 1500.0);
}

TEST(IngestCdmUnitsTest, UnknownUnitIsNotFoundNotACrash) {
  const auto r = Normalise(3, "furlongs/fortnight");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), core::StatusCode::kNotFound);
  EXPECT_EQ(FindUnit("furlongs/fortnight"), nullptr);
  EXPECT_EQ(Convert(1, "g", "bogus").status().code(), core::StatusCode::kNotFound);
  EXPECT_EQ(Convert(1, "g", "mL").status().code(), core::StatusCode::kInvalidArgument);
}

TEST(IngestCdmUnitsTest, LooksUpCaseInsensitivelyOnlyWhenUnambiguous) {
  ASSERT_NE(FindUnit("MG/DL"), nullptr);
  EXPECT_EQ(FindUnit("MG/DL")->code, "mg/dL");
  EXPECT_EQ(FindUnit(" kg ")->code, "kg");
}

TEST(IngestCdmUnitsTest, EveryTableRowIsItsOwnCanonicalOrConvertsToOne) {
  for (Context c : {Context::kFinding, Context::kDose}) {
    for (const UnitDef& d : UnitTable(c)) {
      const UnitDef* canonical = FindUnit(d.canonical, c);
      ASSERT_NE(canonical, nullptr) << d.code;
      EXPECT_EQ(canonical->quantity, d.quantity) << d.code;
      EXPECT_EQ(canonical->factor, 1.0) << d.code;
      EXPECT_EQ(canonical->offset, 0.0) << d.code;
    }
  }
}

}  // namespace
}  // namespace fedrx::ingest::units
