// Dose translation: the Km table against FDA (2005) Table 1, HED and MRSD
// worked examples, the most sensitive species, the footnote's exponent
// formula outside the working weight range, the weight-based option, and
// bad input answered with InvalidArgument naming the field.
#include "services/translational/dose.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

namespace fedrx::translational {
namespace {

codec::TranslateDose Request(std::vector<codec::SpeciesNoael> noaels) {
  codec::TranslateDose r;
  r.noaels = std::move(noaels);
  return r;
}

codec::SpeciesNoael Noael(std::string species, double mg_per_kg, double weight = 0) {
  return {std::move(species), mg_per_kg, weight, "request"};
}

struct Row {
  const char* name;
  double ref_kg, low_kg, high_kg, bsa_m2, km, divide, multiply;
};

// Table 1 of the guidance, transcribed independently of dose.cc.
constexpr Row kTable1[] = {
    {"mouse", 0.020, 0.011, 0.034, 0.007, 3, 12.3, 0.081},
    {"hamster", 0.080, 0.047, 0.157, 0.016, 5, 7.4, 0.135},
    {"rat", 0.150, 0.080, 0.270, 0.025, 6, 6.2, 0.162},
    {"ferret", 0.300, 0.160, 0.540, 0.043, 7, 5.3, 0.189},
    {"guinea pig", 0.400, 0.208, 0.700, 0.05, 8, 4.6, 0.216},
    {"rabbit", 1.8, 0.9, 3.0, 0.15, 12, 3.1, 0.324},
    {"dog", 10, 5, 17, 0.50, 20, 1.8, 0.541},
    {"monkey", 3, 1.4, 4.9, 0.25, 12, 3.1, 0.324},
    {"marmoset", 0.350, 0.140, 0.720, 0.06, 6, 6.2, 0.162},
    {"squirrel monkey", 0.600, 0.290, 0.970, 0.09, 7, 5.3, 0.189},
    {"baboon", 12, 7, 23, 0.60, 20, 1.8, 0.541},
    {"micro-pig", 20, 10, 33, 0.74, 27, 1.4, 0.730},
    {"mini-pig", 40, 25, 64, 1.14, 35, 1.1, 0.946},
};

// Every animal row carries the guidance's values, and the columns agree with
// each other: Km ≈ weight / BSA, divide ≈ 37 / Km, multiply ≈ Km / 37.
TEST(KmTableTest, MatchesGuidanceTable1) {
  ASSERT_EQ(KmTable().size(), 15u);  // adult, child and 13 animals
  for (const Row& row : kTable1) {
    SCOPED_TRACE(row.name);
    const KmSpecies* s = FindSpecies(row.name);
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(s->name, row.name);
    EXPECT_FALSE(s->human);
    EXPECT_DOUBLE_EQ(s->reference_weight_kg, row.ref_kg);
    EXPECT_DOUBLE_EQ(s->working_range_low_kg, row.low_kg);
    EXPECT_DOUBLE_EQ(s->working_range_high_kg, row.high_kg);
    EXPECT_DOUBLE_EQ(s->body_surface_area_m2, row.bsa_m2);
    EXPECT_DOUBLE_EQ(s->km, row.km);
    EXPECT_DOUBLE_EQ(s->divide_factor, row.divide);
    EXPECT_DOUBLE_EQ(s->multiply_factor, row.multiply);
    EXPECT_NEAR(s->reference_weight_kg / s->body_surface_area_m2, s->km, 0.5);
    EXPECT_NEAR(kHumanKm / s->km, s->divide_factor, 0.051);
    EXPECT_NEAR(s->km / kHumanKm, s->multiply_factor, 0.0006);
    EXPECT_LT(s->working_range_low_kg, s->reference_weight_kg);
    EXPECT_GT(s->working_range_high_kg, s->reference_weight_kg);
  }
  const KmSpecies* human = FindSpecies("human");
  ASSERT_NE(human, nullptr);
  EXPECT_DOUBLE_EQ(human->reference_weight_kg, 60);
  EXPECT_DOUBLE_EQ(human->body_surface_area_m2, 1.62);
  EXPECT_DOUBLE_EQ(human->km, 37);
  const KmSpecies* child = FindSpecies("child");
  ASSERT_NE(child, nullptr);
  EXPECT_DOUBLE_EQ(child->reference_weight_kg, 20);
  EXPECT_DOUBLE_EQ(child->body_surface_area_m2, 0.80);
  EXPECT_DOUBLE_EQ(child->km, 25);
}

// Names match ignoring case, spaces, '-' and '_'; the monkey row accepts the
// guidance's examples (cynomolgus, rhesus, stumptail).
TEST(KmTableTest, FindsAliases) {
  EXPECT_EQ(FindSpecies("Cynomolgus")->name, "monkey");
  EXPECT_EQ(FindSpecies("rhesus monkey")->name, "monkey");
  EXPECT_EQ(FindSpecies("stumptail")->name, "monkey");
  EXPECT_EQ(FindSpecies("Guinea_Pig")->name, "guinea pig");
  EXPECT_EQ(FindSpecies("MINIPIG")->name, "mini-pig");
  EXPECT_EQ(FindSpecies("micro pig")->name, "micro-pig");
  EXPECT_EQ(FindSpecies("Squirrel-Monkey")->name, "squirrel monkey");
  EXPECT_EQ(FindSpecies("cat"), nullptr);
  EXPECT_EQ(FindSpecies(""), nullptr);
}

// The guidance's rat example: NOAEL 50 mg/kg. We compute 50 × 6/37 = 8.108;
// the table's "divide by 6.2" gives 8.065 and "multiply by 0.162" 8.1: all
// three round to the guidance's 8 mg/kg. MRSD = HED / 10, 60 kg adult.
TEST(TranslateDoseTest, GuidanceRatExample) {
  auto r = TranslateDose(Request({Noael("rat", 50)}));
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->heds.size(), 1u);
  const codec::SpeciesHed& h = r->heds[0];
  EXPECT_EQ(h.species, "rat");
  EXPECT_DOUBLE_EQ(h.km, 6);
  EXPECT_DOUBLE_EQ(h.body_weight_kg, 0.150);
  EXPECT_NEAR(h.conversion_factor, 6.0 / 37.0, 1e-15);
  EXPECT_NEAR(h.hed_mg_per_kg, 50.0 * 6 / 37, 1e-12);
  EXPECT_EQ(std::lround(h.hed_mg_per_kg), 8);
  EXPECT_EQ(std::lround(50 / 6.2), 8);
  EXPECT_EQ(std::lround(50 * 0.162), 8);
  EXPECT_EQ(r->chosen_species, "rat");
  EXPECT_EQ(r->species_reason, "most sensitive species (lowest HED)");
  EXPECT_DOUBLE_EQ(r->safety_factor, 10);
  EXPECT_NE(r->safety_factor_reason.find("default safety factor of 10"), std::string::npos);
  EXPECT_NEAR(r->mrsd_mg_per_kg, 50.0 * 6 / 37 / 10, 1e-12);
  EXPECT_DOUBLE_EQ(r->human_weight_kg, 60);
  EXPECT_NEAR(r->mrsd_mg, 50.0 * 6 / 37 / 10 * 60, 1e-10);  // 48.65 mg
  // The working shows the Km values, both table factors and the reference.
  ASSERT_FALSE(r->working.steps.empty());
  const codec::WorkStep& step = r->working.steps[0];
  EXPECT_NE(step.reference.find("Table 1"), std::string::npos);
  bool divide_shown = false;
  for (const auto& q : step.inputs) divide_shown |= (q.value == 6.2);
  EXPECT_TRUE(divide_shown);
  EXPECT_NE(r->working.guidance.find("FDA 2005"), std::string::npos);
}

// Rat 50, dog 10, monkey 15 mg/kg: HEDs 8.108, 5.405 and 4.865 mg/kg; the
// monkey is the most sensitive; MRSD 0.4865 mg/kg, 29.19 mg for 60 kg.
TEST(TranslateDoseTest, ChoosesMostSensitiveSpecies) {
  auto r = TranslateDose(Request({Noael("rat", 50), Noael("Dog", 10), Noael("cynomolgus", 15)}));
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->heds.size(), 3u);
  EXPECT_NEAR(r->heds[0].hed_mg_per_kg, 50.0 * 6 / 37, 1e-12);
  EXPECT_NEAR(r->heds[1].hed_mg_per_kg, 10.0 * 20 / 37, 1e-12);
  EXPECT_NEAR(r->heds[2].hed_mg_per_kg, 15.0 * 12 / 37, 1e-12);
  EXPECT_EQ(r->heds[2].species, "monkey");
  EXPECT_EQ(r->chosen_species, "monkey");
  EXPECT_NEAR(r->hed_mg_per_kg, 180.0 / 37, 1e-12);
  EXPECT_NEAR(r->mrsd_mg_per_kg, 18.0 / 37, 1e-12);
  EXPECT_NEAR(r->mrsd_mg, 18.0 / 37 * 60, 1e-10);
}

// A requested species is used even when it is not the most sensitive, and
// the working says so; the safety factor and weight come from the request.
TEST(TranslateDoseTest, UsesRequestedSpeciesAndSafetyFactor) {
  auto req = Request({Noael("rat", 50), Noael("dog", 10)});
  req.species = "rat";
  req.species_reason = "rat is the pharmacologically relevant species";
  req.safety_factor = 20;
  req.safety_factor_reason = "steep dose-response";
  req.human_weight_kg = 70;
  auto r = TranslateDose(req);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->chosen_species, "rat");
  EXPECT_EQ(r->species_reason, "rat is the pharmacologically relevant species");
  EXPECT_EQ(r->safety_factor_reason, "steep dose-response");
  EXPECT_NEAR(r->mrsd_mg_per_kg, 50.0 * 6 / 37 / 20, 1e-12);
  EXPECT_NEAR(r->mrsd_mg, 50.0 * 6 / 37 / 20 * 70, 1e-10);
  bool noted = false;
  for (const auto& n : r->working.notes)
    noted |= n.find("not the most sensitive") != std::string::npos;
  EXPECT_TRUE(noted);
}

// A rat of 0.25 kg is inside the working range (Km used); one of 0.5 kg is
// outside: HED = NOAEL × (0.5/60)^0.33 (Table 1 footnote), noted.
TEST(TranslateDoseTest, ExponentFormulaOutsideWorkingRange) {
  auto inside = TranslateDose(Request({Noael("rat", 50, 0.25)}));
  ASSERT_TRUE(inside.ok());
  EXPECT_NEAR(inside->heds[0].hed_mg_per_kg, 50.0 * 6 / 37, 1e-12);

  auto outside = TranslateDose(Request({Noael("rat", 50, 0.5)}));
  ASSERT_TRUE(outside.ok()) << outside.status();
  const double expected = 50 * std::pow(0.5 / 60, 0.33);  // 10.330 mg/kg
  EXPECT_NEAR(outside->heds[0].hed_mg_per_kg, expected, 1e-12);
  EXPECT_NEAR(outside->heds[0].conversion_factor, std::pow(0.5 / 60, 0.33), 1e-15);
  EXPECT_NEAR(outside->heds[0].km, 37 * std::pow(0.5 / 60, 0.33), 1e-12);
  bool noted = false;
  for (const auto& n : outside->working.notes)
    noted |= n.find("outside the working range") != std::string::npos;
  EXPECT_TRUE(noted);
  EXPECT_NE(outside->working.steps[0].reference.find("footnote"), std::string::npos);
}

// method "weight_exponent": HED = NOAEL × (Wa/Wh)^(1 − exponent), labelled as
// the weight-based option; the dog at its 10 kg reference weight.
TEST(TranslateDoseTest, WeightExponentOption) {
  auto req = Request({Noael("dog", 10)});
  req.method = "weight_exponent";
  req.exponent = 0.75;
  auto r = TranslateDose(req);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_NEAR(r->hed_mg_per_kg, 10 * std::pow(10.0 / 60, 0.25), 1e-12);  // 6.389
  EXPECT_NE(r->working.method.find("weight-based option"), std::string::npos);
  // Exponent 0.67 reproduces the footnote's 0.33.
  req.exponent = 0.67;
  auto r67 = TranslateDose(req);
  ASSERT_TRUE(r67.ok());
  EXPECT_NEAR(r67->hed_mg_per_kg, 10 * std::pow(10.0 / 60, 0.33), 1e-12);
}

void ExpectInvalid(const codec::TranslateDose& req, const std::string& where) {
  auto r = TranslateDose(req);
  ASSERT_FALSE(r.ok()) << "expected an error at " << where;
  EXPECT_EQ(r.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().where(), where) << r.status();
  EXPECT_FALSE(r.status().message().empty());
}

// Bad input: each answered with InvalidArgument whose `where` names the field.
TEST(TranslateDoseTest, RejectsBadInput) {
  ExpectInvalid(Request({}), "TranslateDose.noaels");
  ExpectInvalid(Request({Noael("rat", 50), Noael("dog", -1)}),
                "TranslateDose.noaels[1].noael_mg_per_kg");
  ExpectInvalid(Request({Noael("rat", 0)}), "TranslateDose.noaels[0].noael_mg_per_kg");
  ExpectInvalid(Request({Noael("rat", std::nan(""))}), "TranslateDose.noaels[0].noael_mg_per_kg");
  ExpectInvalid(Request({Noael("rat", INFINITY)}), "TranslateDose.noaels[0].noael_mg_per_kg");
  ExpectInvalid(Request({Noael("unicorn", 5)}), "TranslateDose.noaels[0].species");
  ExpectInvalid(Request({Noael("human", 5)}), "TranslateDose.noaels[0].species");
  ExpectInvalid(Request({Noael("rat", 50), Noael("Rats", 40)}), "TranslateDose.noaels[1].species");
  ExpectInvalid(Request({Noael("rat", 50, -0.2)}), "TranslateDose.noaels[0].body_weight_kg");
  ExpectInvalid(Request({Noael("rat", 50, std::nan(""))}),
                "TranslateDose.noaels[0].body_weight_kg");

  auto req = Request({Noael("rat", 50)});
  req.safety_factor = 0.5;
  ExpectInvalid(req, "TranslateDose.safety_factor");
  req.safety_factor = std::nan("");
  ExpectInvalid(req, "TranslateDose.safety_factor");
  req = Request({Noael("rat", 50)});
  req.species = "dog";
  ExpectInvalid(req, "TranslateDose.species");
  req = Request({Noael("rat", 50)});
  req.human_weight_kg = 0;
  ExpectInvalid(req, "TranslateDose.human_weight_kg");
  req = Request({Noael("rat", 50)});
  req.method = "allometric";
  ExpectInvalid(req, "TranslateDose.method");
  req.method = "weight_exponent";
  req.exponent = 0;
  ExpectInvalid(req, "TranslateDose.exponent");
}

}  // namespace
}  // namespace fedrx::translational
