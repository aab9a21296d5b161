// Standard InChIKeys through libinchi: known molecules give their published
// keys, stereo is carried (L- and D-alanine differ), salts and charged forms
// standardise to the parent's key, and molfile blocks prepare like SMILES.
#include <gtest/gtest.h>

#include "services/ml/chem.h"

namespace fedrx::ml {
namespace {

std::string Key(const std::string& smiles) {
  auto k = InChIKeyOfSmiles(smiles);
  EXPECT_TRUE(k.ok()) << k.status();
  return k.ok() ? *k : "";
}

std::string StandardKey(const std::string& smiles) {
  auto m = PrepareStructure(smiles, StructureFormat::kSmiles, FingerprintOptions{}, true);
  EXPECT_TRUE(m.ok()) << m.status();
  return m.ok() ? m->inchikey : "";
}

TEST(InChIKeyTest, KnownMoleculesGiveTheirPublishedKeys) {
  EXPECT_EQ(Key("CCO"), "LFQSCWFLJHTTHZ-UHFFFAOYSA-N");                      // ethanol
  EXPECT_EQ(Key("CC(=O)Oc1ccccc1C(=O)O"), "BSYNRYMUTXBXSQ-UHFFFAOYSA-N");    // aspirin
  EXPECT_EQ(Key("Cn1cnc2c1c(=O)n(C)c(=O)n2C"), "RYYVLZVUVIJVGH-UHFFFAOYSA-N");  // caffeine
  EXPECT_EQ(Key("c1ccccc1"), "UHOVQNZJYSORNB-UHFFFAOYSA-N");                 // benzene
}

TEST(InChIKeyTest, TetrahedralStereoIsCarried) {
  EXPECT_EQ(Key("C[C@@H](C(=O)O)N"), "QNAYBMKLOCPYGJ-REOHCLBHSA-N");  // L-alanine
  EXPECT_EQ(Key("C[C@H](C(=O)O)N"), "QNAYBMKLOCPYGJ-UWTATZPHSA-N");   // D-alanine
  EXPECT_EQ(Key("CC(C(=O)O)N"), "QNAYBMKLOCPYGJ-UHFFFAOYSA-N");       // unspecified
  // The same centre written from another atom.
  EXPECT_EQ(Key("N[C@@H](C)C(=O)O"), "QNAYBMKLOCPYGJ-REOHCLBHSA-N");
}

TEST(InChIKeyTest, DoubleBondStereoIsCarried) {
  EXPECT_EQ(Key("C/C=C/C"), "IAQRGUVFOMOMEM-ONEGZZNKSA-N");   // (E)-but-2-ene
  EXPECT_EQ(Key("C/C=C\\C"), "IAQRGUVFOMOMEM-ARJAWSKDSA-N");  // (Z)-but-2-ene
}

TEST(InChIKeyTest, SaltsAndChargedFormsStandardiseToTheParentKey) {
  const std::string acid = StandardKey("CC(=O)O");
  EXPECT_EQ(acid, "QTBSBXVTEAMEQO-UHFFFAOYSA-N");  // acetic acid
  EXPECT_EQ(StandardKey("CC(=O)[O-].[Na+]"), acid);
  EXPECT_EQ(StandardKey("CC(=O)[O-]"), acid);
  // As written, the sodium salt is a different substance.
  EXPECT_NE(Key("CC(=O)[O-].[Na+]"), acid);
  const std::string amine = StandardKey("CCN");
  EXPECT_EQ(StandardKey("CC[NH3+].[Cl-]"), amine);
}

TEST(InChIKeyTest, MolBlockPreparesLikeItsSmiles) {
  const std::string block =
      "ethanol\n  test\n\n"
      "  3  2  0  0  0  0  0  0  0  0999 V2000\n"
      "    0.0000    0.0000    0.0000 C   0  0  0  0  0  0  0  0  0  0  0  0\n"
      "    1.2990    0.7500    0.0000 C   0  0  0  0  0  0  0  0  0  0  0  0\n"
      "    2.5981    0.0000    0.0000 O   0  0  0  0  0  0  0  0  0  0  0  0\n"
      "  1  2  1  0\n  2  3  1  0\nM  END\n";
  auto m = PrepareStructure(block, StructureFormat::kMolBlock, FingerprintOptions{}, true);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->inchikey, "LFQSCWFLJHTTHZ-UHFFFAOYSA-N");
  EXPECT_EQ(m->canonical_smiles, "CCO");
}

TEST(InChIKeyTest, UnparseableInputIsAnErrorNotACrash) {
  EXPECT_FALSE(InChIKeyOfSmiles("C1CC").ok());
  EXPECT_FALSE(PrepareStructure("not a molfile", StructureFormat::kMolBlock, FingerprintOptions{},
                                true)
                   .ok());
}

TEST(InChIKeyTest, WithoutInChIKeyTheFieldStaysEmpty) {
  auto m = PrepareStructure("CCO", StructureFormat::kSmiles, FingerprintOptions{}, false);
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(m->inchikey.empty());
  EXPECT_EQ(m->canonical_smiles, "CCO");
}

}  // namespace
}  // namespace fedrx::ml
