#include "services/ml/chem.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace fedrx::ml {
namespace {

constexpr char kImatinib[] = "Cc1ccc(NC(=O)c2ccc(CN3CCN(C)CC3)cc2)cc1Nc1nccc(-c2cccnc2)n1";

PreparedMolecule Prepare(const std::string& smiles, const FingerprintOptions& options = {}) {
  auto r = PrepareMolecule(smiles, options);
  EXPECT_TRUE(r.ok()) << smiles << ": " << r.status();
  return r.ok() ? *r : PreparedMolecule{};
}

TEST(ChemTest, SaltKeepsLargestFragmentNeutralised) {
  EXPECT_EQ(Prepare("CC(=O)[O-].[Na+]").canonical_smiles, "CC(=O)O");
  EXPECT_EQ(Prepare("C[NH3+].[Cl-]").canonical_smiles, "CN");
  EXPECT_EQ(Prepare("OC(=O)CC(O)(CC(=O)O)C(=O)O.[K+]").canonical_smiles,
            "O=C(O)CC(O)(CC(=O)O)C(=O)O");
  // A permanent charge cannot be neutralised and is kept.
  EXPECT_EQ(Prepare("C[N+](C)(C)C.[Cl-]").canonical_smiles, "C[N+](C)(C)C");
}

TEST(ChemTest, SaltAndParentPrepareIdentically) {
  const PreparedMolecule salt = Prepare("CC(=O)[O-].[Na+]");
  const PreparedMolecule parent = Prepare("CC(O)=O");
  EXPECT_EQ(salt.canonical_smiles, parent.canonical_smiles);
  EXPECT_EQ(salt.bits, parent.bits);
}

TEST(ChemTest, ScaffoldOfTolueneIsBenzene) {
  const PreparedMolecule toluene = Prepare("Cc1ccccc1");
  EXPECT_EQ(toluene.canonical_smiles, "Cc1ccccc1");
  EXPECT_EQ(toluene.scaffold, "c1ccccc1");
}

TEST(ChemTest, ScaffoldKeepsRingsAndLinkersDropsSideChains) {
  const PreparedMolecule m = Prepare("c1ccccc1CCc1ccncc1CC(=O)O");
  EXPECT_EQ(m.scaffold, "c1ccc(CCc2ccncc2)cc1");
  EXPECT_EQ(Prepare("C1CCC2(CC1)OCCO2").scaffold, "C1CCC2(CC1)OCCO2");
}

TEST(ChemTest, AcyclicMoleculeHasEmptyScaffold) {
  EXPECT_EQ(Prepare("CCCCO").scaffold, "");
  EXPECT_EQ(Prepare("CC(=O)[O-].[Na+]").scaffold, "");
}

TEST(ChemTest, SameMoleculeFromDifferentSpellingsPreparesIdentically) {
  const PreparedMolecule a = Prepare("CC(=O)Oc1ccccc1C(=O)O");
  const PreparedMolecule b = Prepare("OC(=O)c1ccccc1OC(C)=O");
  const PreparedMolecule kekule = Prepare("CC(=O)OC1=CC=CC=C1C(=O)O");
  EXPECT_EQ(a.canonical_smiles, "CC(=O)Oc1ccccc1C(=O)O");
  EXPECT_EQ(b.canonical_smiles, a.canonical_smiles);
  EXPECT_EQ(kekule.canonical_smiles, a.canonical_smiles);
  ASSERT_FALSE(a.bits.empty());
  EXPECT_EQ(b.bits, a.bits);
  EXPECT_EQ(kekule.bits, a.bits);
  EXPECT_EQ(Prepare("  C(O)C \t").bits, Prepare("OCC").bits);
}

TEST(ChemTest, DifferentMoleculesHaveDifferentFingerprints) {
  EXPECT_NE(Prepare("CCO").bits, Prepare("CCN").bits);
  EXPECT_NE(Prepare("c1ccccc1O").bits, Prepare("c1ccccc1N").bits);
}

TEST(ChemTest, FingerprintBitsAreAscendingUniqueAndBelowLength) {
  for (std::uint32_t length : {1u, 64u, 1024u, 2048u, 4096u}) {
    FingerprintOptions o;
    o.bits = length;
    const PreparedMolecule m = Prepare(kImatinib, o);
    ASSERT_FALSE(m.bits.empty()) << length;
    EXPECT_TRUE(std::is_sorted(m.bits.begin(), m.bits.end()));
    EXPECT_EQ(std::adjacent_find(m.bits.begin(), m.bits.end()), m.bits.end());
    EXPECT_LT(m.bits.back(), length);
  }
  FingerprintOptions one;
  one.bits = 1;
  EXPECT_EQ(Prepare(kImatinib, one).bits, std::vector<std::uint32_t>{0});
}

TEST(ChemTest, LargerRadiusSetsMoreBits) {
  std::vector<std::size_t> counts;
  for (int radius : {0, 1, 2, 3}) {
    FingerprintOptions o;
    o.radius = radius;
    counts.push_back(Prepare(kImatinib, o).bits.size());
  }
  // Values from RDKit 2022.09 for imatinib at 2048 bits.
  EXPECT_EQ(counts, (std::vector<std::size_t>{10, 36, 65, 91}));
  // Radius 0 is the atom invariants alone: no more bits than distinct atom kinds.
  EXPECT_LT(counts[0], counts[1]);
  EXPECT_LT(counts[1], counts[3]);
}

TEST(ChemTest, ChiralityOptionSeparatesEnantiomers) {
  const std::string l_ala = "C[C@@H](N)C(=O)O";
  const std::string d_ala = "C[C@H](N)C(=O)O";
  // Canonical SMILES keep stereochemistry either way.
  EXPECT_NE(Prepare(l_ala).canonical_smiles, Prepare(d_ala).canonical_smiles);
  EXPECT_EQ(Prepare(l_ala).bits, Prepare(d_ala).bits);
  FingerprintOptions chiral;
  chiral.chirality = true;
  EXPECT_NE(Prepare(l_ala, chiral).bits, Prepare(d_ala, chiral).bits);
}

TEST(ChemTest, UnparseableSmilesIsInvalidArgumentWithRdkitsWords) {
  auto syntax = PrepareMolecule("garbage(", {});
  ASSERT_FALSE(syntax.ok());
  EXPECT_EQ(syntax.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_NE(syntax.status().message().find("SMILES Parse Error"), std::string::npos)
      << syntax.status();

  auto ring = PrepareMolecule("C1CC", {});
  ASSERT_FALSE(ring.ok());
  // RDKit's log line, without its "[hh:mm:ss] " time stamp.
  EXPECT_EQ(ring.status().message(),
            "unparseable SMILES: SMILES Parse Error: unclosed ring for input: 'C1CC'");

  auto valence = PrepareMolecule("N(C)(C)(C)(C)C", {});
  ASSERT_FALSE(valence.ok());
  EXPECT_EQ(valence.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_NE(valence.status().message().find("Explicit valence"), std::string::npos)
      << valence.status();

  auto kekulize = PrepareMolecule("c1cccc1", {});
  ASSERT_FALSE(kekulize.ok());
  EXPECT_NE(kekulize.status().message().find("kekulize"), std::string::npos) << kekulize.status();
}

TEST(ChemTest, EmptyBlankAndOverlongInputRejected) {
  for (std::string s :
       {std::string(), std::string("   \t"), std::string(kMaxSmilesLength + 1, 'C')}) {
    auto r = PrepareMolecule(s, {});
    ASSERT_FALSE(r.ok()) << s.size();
    EXPECT_EQ(r.status().code(), core::StatusCode::kInvalidArgument);
  }
  EXPECT_EQ(PrepareMolecule("", {}).status().message(), "empty SMILES");
}

TEST(ChemTest, HostileInputsAreErrorsNotCrashes) {
  const std::vector<std::string> hostile = {"((((((((",
                                            "C%",
                                            "C1CC1)",
                                            "[Xx]",
                                            std::string("C\0C", 3),
                                            "\xff\xfe\x00",
                                            "C=====C",
                                            "[C@@@@@H]",
                                            "C%99%99",
                                            "[C+99999]",
                                            "C\nC",
                                            "C\tC",
                                            "C\xc3\xa9",
                                            "C.",
                                            ".",
                                            "CCO name",
                                            "CCO |$a;b;c$|",
                                            "c1ccccc",
                                            "[NH5]",
                                            "*1**1*1",
                                            std::string(2000, '(') + "C" + std::string(2000, ')')};
  for (const std::string& s : hostile) {
    auto r = PrepareMolecule(s, {});
    EXPECT_FALSE(r.ok()) << "accepted: " << s;
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), core::StatusCode::kInvalidArgument) << r.status();
    }
  }
}

TEST(ChemTest, OptionsOutOfRangeRejected) {
  FingerprintOptions o;
  o.radius = -1;
  EXPECT_EQ(PrepareMolecule("CCO", o).status().code(), core::StatusCode::kInvalidArgument);
  o.radius = kMaxFingerprintRadius + 1;
  EXPECT_EQ(PrepareMolecule("CCO", o).status().where(), "FingerprintOptions.radius");
  o = {};
  o.bits = 0;
  EXPECT_EQ(PrepareMolecule("CCO", o).status().where(), "FingerprintOptions.bits");
}

TEST(ChemTest, RdkitLogsDoNotReachStderr) {
  testing::internal::CaptureStderr();
  EXPECT_FALSE(PrepareMolecule("garbage(", {}).ok());
  EXPECT_FALSE(PrepareMolecule("N(C)(C)(C)(C)C", {}).ok());
  EXPECT_TRUE(PrepareMolecule("CC(=O)[O-].[Na+]", {}).ok());
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
}

TEST(ChemTest, ConcurrentCallsKeepTheirOwnErrorMessages) {
  // RDKit's log is process-wide; each thread must still see only its own words.
  auto run = [](const std::string& bad, const std::string& good, std::vector<std::string>* out) {
    for (int i = 0; i < 200; ++i) {
      auto r = PrepareMolecule(bad, {});
      out->push_back(r.ok() ? "ok" : r.status().message());
      auto g = PrepareMolecule(good, {});
      out->push_back(g.ok() ? g->canonical_smiles : g.status().message());
    }
  };
  std::vector<std::string> a, b;
  std::thread ta(run, "AAA(", "OCC", &a);
  std::thread tb(run, "C1CC", "c1ccccc1C", &b);
  ta.join();
  tb.join();
  ASSERT_EQ(a.size(), 400u);
  ASSERT_EQ(b.size(), 400u);
  for (std::size_t i = 0; i < a.size(); i += 2) {
    EXPECT_NE(a[i].find("'AAA('"), std::string::npos) << a[i];
    EXPECT_EQ(a[i].find("C1CC"), std::string::npos) << a[i];
    EXPECT_EQ(a[i + 1], "CCO");
    EXPECT_NE(b[i].find("unclosed ring for input: 'C1CC'"), std::string::npos) << b[i];
    EXPECT_EQ(b[i].find("AAA"), std::string::npos) << b[i];
    EXPECT_EQ(b[i + 1], "Cc1ccccc1");
  }
}

TEST(ChemScrambleTest, IsAPermutationOfAllPositions) {
  const BitScrambler s(0xFEDC0FFEEull, 2048);
  std::vector<std::uint32_t> image;
  for (std::uint32_t b = 0; b < 2048; ++b) image.push_back(s.Map(b));
  std::sort(image.begin(), image.end());
  for (std::uint32_t b = 0; b < 2048; ++b) ASSERT_EQ(image[b], b);
}

TEST(ChemScrambleTest, MatchesTheDocumentedAlgorithm) {
  // Computed independently from the header's description (a Python port).
  const BitScrambler s(12345, 10);
  std::vector<std::uint32_t> perm;
  for (std::uint32_t b = 0; b < 10; ++b) perm.push_back(s.Map(b));
  EXPECT_EQ(perm, (std::vector<std::uint32_t>{8, 6, 7, 2, 1, 3, 9, 5, 0, 4}));
  const BitScrambler zero(0, 16);
  std::vector<std::uint32_t> perm0;
  for (std::uint32_t b = 0; b < 16; ++b) perm0.push_back(zero.Map(b));
  EXPECT_EQ(perm0,
            (std::vector<std::uint32_t>{2, 10, 14, 11, 6, 1, 5, 13, 8, 3, 4, 7, 12, 9, 0, 15}));
  const BitScrambler big(0xFEDC0FFEEull, 2048);
  std::vector<std::uint32_t> head;
  for (std::uint32_t b = 0; b < 8; ++b) head.push_back(big.Map(b));
  EXPECT_EQ(head, (std::vector<std::uint32_t>{1815, 1368, 54, 508, 226, 975, 1753, 350}));
}

TEST(ChemScrambleTest, ScrambledFingerprintIsTheMappedSetSorted) {
  const PreparedMolecule m = Prepare(kImatinib);
  const BitScrambler s(42, 2048);
  const std::vector<std::uint32_t> out = s.Apply(m.bits);
  ASSERT_EQ(out.size(), m.bits.size());
  EXPECT_TRUE(std::is_sorted(out.begin(), out.end()));
  std::set<std::uint32_t> expected;
  for (std::uint32_t b : m.bits) expected.insert(s.Map(b));
  EXPECT_EQ(std::vector<std::uint32_t>(expected.begin(), expected.end()), out);
  EXPECT_NE(out, m.bits);
  EXPECT_EQ(ScrambleBits(m.bits, 42, 2048), out);
  // Positions outside the permutation are dropped, not wrapped.
  const std::vector<std::uint32_t> outside = {5, 2048, 90000};
  EXPECT_EQ(s.Apply(outside), std::vector<std::uint32_t>{s.Map(5)});
}

TEST(ChemScrambleTest, SameKeySameResultOtherKeyDifferent) {
  const PreparedMolecule m = Prepare(kImatinib);
  EXPECT_EQ(ScrambleBits(m.bits, 7, 2048), ScrambleBits(m.bits, 7, 2048));
  EXPECT_NE(ScrambleBits(m.bits, 7, 2048), ScrambleBits(m.bits, 8, 2048));
  std::size_t moved = 0;
  const BitScrambler a(7, 2048), b(8, 2048);
  for (std::uint32_t i = 0; i < 2048; ++i) moved += a.Map(i) != b.Map(i);
  EXPECT_GT(moved, 2000u);
  EXPECT_TRUE(ScrambleBits(m.bits, 7, 0).empty());
}

TEST(ChemTest, PreparationHashNamesEverythingThatChangesFeatures) {
  const FingerprintOptions base;
  const std::string h = PreparationHash(base, "");
  EXPECT_EQ(h.rfind("fedrx-prep1;rdkit", 0), 0u) << h;
  EXPECT_NE(h.find(";lf+unc;ecfp-r2-b2048-c0;key-none"), std::string::npos) << h;
  EXPECT_LE(h.size(), 128u);  // RegisterSite.schema_hash limit
  EXPECT_TRUE(std::all_of(h.begin(), h.end(), [](char c) { return c > 0x20 && c < 0x7f; })) << h;
  EXPECT_EQ(PreparationHash(base, ""), h);

  std::set<std::string> variants = {h};
  FingerprintOptions o = base;
  o.radius = 3;
  variants.insert(PreparationHash(o, ""));
  o = base;
  o.bits = 1024;
  variants.insert(PreparationHash(o, ""));
  o = base;
  o.chirality = true;
  variants.insert(PreparationHash(o, ""));
  variants.insert(PreparationHash(base, "sha256:ab12"));
  variants.insert(PreparationHash(base, "sha256:ab13"));
  EXPECT_EQ(variants.size(), 6u);
  const std::string keyed = PreparationHash(base, std::string(1000, 'k'));
  EXPECT_LE(keyed.size(), 128u);
  EXPECT_EQ(keyed.find("kkkk"), std::string::npos);
}

}  // namespace
}  // namespace fedrx::ml
