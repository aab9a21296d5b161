// Compound ingest on values: salts and charged forms merge by InChIKey with the
// documented label rule; unparseable rows are findings with their record
// numbers (on the real ClinTox and Tox21); SD files read labels from data items
// and report a record without a structure; keyed folds are stable and depend on
// the key; the reference-set hash is reproducible and key-dependent; bad input
// is refused before it is read; a written version loads back as it was.
#include "services/ingest/compounds.h"

#include <gtest/gtest.h>

#include <set>

#include "tests/ingest/ingest_test_util.h"

namespace fedrx::ingest {
namespace {

using testing::ScratchDir;
using testing::WriteBytes;

std::string Vendored(const std::string& rel) { return std::string(FEDRX_SOURCE_DIR) + "/" + rel; }

PreparedCompounds Prepare(const std::string& path, const ConsortiumKey& key = {},
                          CompoundReadOptions read = {}) {
  auto src = ReadCompoundFile(path, read);
  EXPECT_TRUE(src.ok()) << src.status();
  if (!src.ok()) return {};
  auto p = PrepareCompounds(*src, PrepOptions{}, key);
  EXPECT_TRUE(p.ok()) << p.status();
  return p.ok() ? *p : PreparedCompounds{};
}

std::vector<std::size_t> RecordsWith(const PreparedCompounds& p, const std::string& code) {
  std::vector<std::size_t> out;
  for (const auto& f : p.findings) {
    if (f.code == code) out.push_back(f.record);
  }
  return out;
}

TEST(CompoundsTest, SaltsAndChargedFormsMergeByInChIKeyWithTheConflictRule) {
  ScratchDir dir;
  WriteBytes(dir.File("in.csv"),
             "smiles,a,b,c\n"
             "CC(=O)O,1,0,\n"              // acetic acid
             "CC(=O)[O-].[Na+],1,1,0\n"    // its sodium salt: a agrees, b conflicts, c fills in
             "CCO,0,,1\n"                  // ethanol
             "CC(=O)[O-],,0,0\n"           // acetate: b stays missing once conflicted
             "C1CC,1,1,1\n");              // unparseable
  PreparedCompounds p = Prepare(dir.File("in.csv"));
  ASSERT_EQ(p.compounds.size(), 2u);
  EXPECT_EQ(p.records_read, 5u);
  EXPECT_EQ(p.duplicates_merged, 2u);
  EXPECT_EQ(p.label_conflicts, 1u);
  EXPECT_EQ(p.unparseable, 1u);
  const PreparedCompound& acid = p.compounds[0];
  EXPECT_EQ(acid.inchikey, "QTBSBXVTEAMEQO-UHFFFAOYSA-N");
  EXPECT_EQ(acid.smiles, "CC(=O)O");
  EXPECT_EQ(acid.records, 3u);
  EXPECT_EQ(acid.labels, (std::vector<std::int8_t>{1, ml::kMissing, 0}));
  EXPECT_EQ(p.compounds[1].inchikey, "LFQSCWFLJHTTHZ-UHFFFAOYSA-N");
  EXPECT_EQ(p.compounds[1].labels, (std::vector<std::int8_t>{0, ml::kMissing, 1}));
  EXPECT_EQ(RecordsWith(p, kFindingUnparseable), (std::vector<std::size_t>{5}));
  EXPECT_EQ(RecordsWith(p, kFindingLabelConflict), (std::vector<std::size_t>{1}));
}

TEST(CompoundsTest, ClinToxUnparseableRowsAreReportedWithTheirRecordNumbers) {
  PreparedCompounds p = Prepare(Vendored("deploy/data/clintox/clintox.csv"));
  EXPECT_EQ(p.tasks, (std::vector<std::string>{"FDA_APPROVED", "CT_TOX"}));
  EXPECT_EQ(p.records_read, 1484u);
  const auto bad = RecordsWith(p, kFindingUnparseable);
  EXPECT_EQ(bad.size(), p.unparseable);
  EXPECT_GE(bad.size(), 1u);
  EXPECT_LE(bad.size(), 10u);
  for (std::size_t r : bad) EXPECT_LE(r, 1484u);
  EXPECT_EQ(p.compounds.size() + p.unparseable + p.duplicates_merged, p.records_read);
}

// BBBP (CC0) holds structures RDKit refuses (nitrogen valences written as
// [NH]=, for one): they are findings with their record numbers, and the rest
// of the table ingests.
TEST(CompoundsTest, BbbpIngestsWithItsUnreadableStructuresReported) {
  PreparedCompounds p = Prepare(Vendored("deploy/data/bbbp/bbbp.csv"));
  EXPECT_EQ(p.tasks, (std::vector<std::string>{"BBBP"}));
  EXPECT_EQ(p.records_read, 2050u);
  const auto bad = RecordsWith(p, kFindingUnparseable);
  EXPECT_EQ(bad.size(), p.unparseable);
  EXPECT_EQ(p.unparseable, 11u);
  for (std::size_t r : bad) EXPECT_LE(r, 2050u);
  EXPECT_GT(p.compounds.size(), 1900u);
  EXPECT_EQ(p.compounds.size() + p.unparseable + p.duplicates_merged, p.records_read);
}

TEST(CompoundsTest, Tox21IngestsWithTwelveTasksAndMergesItsDuplicates) {
  PreparedCompounds p = Prepare(Vendored("deploy/data/tox21/tox21.csv"));
  ASSERT_EQ(p.tasks.size(), 12u);  // mol_id is an identifier, smiles the structure
  EXPECT_EQ(p.tasks[0], "NR-AR");
  EXPECT_EQ(p.records_read, 7831u);
  EXPECT_GT(p.duplicates_merged, 0u);  // salts of one parent, stereo-less duplicates
  EXPECT_EQ(p.compounds.size() + p.unparseable + p.duplicates_merged, 7831u);
  std::set<std::string> keys;
  for (const auto& c : p.compounds) {
    EXPECT_EQ(c.inchikey.size(), 27u);
    EXPECT_TRUE(keys.insert(c.inchikey).second);
    EXPECT_LT(c.fold, 5u);
  }
}

TEST(CompoundsTest, SdfLabelsFromDataItemsAndARecordWithoutStructureIsAFinding) {
  ScratchDir dir;
  const std::string ethanol =
      "ethanol\n  test\n\n"
      "  3  2  0  0  0  0  0  0  0  0999 V2000\n"
      "    0.0000    0.0000    0.0000 C   0  0  0  0  0  0  0  0  0  0  0  0\n"
      "    1.2990    0.7500    0.0000 C   0  0  0  0  0  0  0  0  0  0  0  0\n"
      "    2.5981    0.0000    0.0000 O   0  0  0  0  0  0  0  0  0  0  0  0\n"
      "  1  2  1  0\n  2  3  1  0\nM  END\n";
  WriteBytes(dir.File("in.sdf"), ethanol + "> <TOX>\n1\n\n> <NAME>\nethanol\n\n$$$$\n" +
                                     "> <TOX>\n0\n\n$$$$\n" +  // no structure
                                     ethanol + "> <TOX>\n1\n\n$$$$\n");
  auto src = ReadCompoundFile(dir.File("in.sdf"), CompoundReadOptions{});
  ASSERT_TRUE(src.ok()) << src.status();
  EXPECT_EQ(src->format, CompoundSource::Format::kSdf);
  EXPECT_EQ(src->tasks, (std::vector<std::string>{"TOX"}));
  EXPECT_EQ(src->records_read, 3u);
  auto p = PrepareCompounds(*src, PrepOptions{}, ConsortiumKey{});
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_EQ(p->compounds.size(), 1u);
  EXPECT_EQ(p->compounds[0].inchikey, "LFQSCWFLJHTTHZ-UHFFFAOYSA-N");
  EXPECT_EQ(p->compounds[0].labels, (std::vector<std::int8_t>{1}));
  EXPECT_EQ(p->duplicates_merged, 1u);
  EXPECT_EQ(RecordsWith(*p, kFindingMissingStructure), (std::vector<std::size_t>{2}));
}

TEST(CompoundsTest, KeyedFoldsAreStableAndDependOnTheKey) {
  const ConsortiumKey a("consortium-key-a-0123456789"), b("consortium-key-b-0123456789");
  EXPECT_EQ(a.Fold("c1ccccc1", 5), a.Fold("c1ccccc1", 5));
  std::size_t differ = 0;
  std::vector<std::size_t> per_fold(5, 0);
  for (int i = 0; i < 200; ++i) {
    const std::string scaffold = "c1ccc(C" + std::string(i % 20, 'C') + std::to_string(i) + ")cc1";
    const auto fa = a.Fold(scaffold, 5);
    differ += fa != b.Fold(scaffold, 5);
    ++per_fold[fa];
  }
  EXPECT_GT(differ, 100u);  // about 4 in 5 differ by chance
  for (std::size_t n : per_fold) EXPECT_GT(n, 15u);  // every fold used
  EXPECT_NE(a.ScrambleKey(), b.ScrambleKey());
  EXPECT_NE(a.Fingerprint(), b.Fingerprint());
  EXPECT_EQ(a.Fingerprint().size(), 64u);
  EXPECT_EQ(a.Fingerprint().find("consortium"), std::string::npos);
}

TEST(CompoundsTest, ReferenceSetHashIsReproducibleAndKeyDependent) {
  const ConsortiumKey a("consortium-key-a-0123456789"), b("consortium-key-b-0123456789");
  EXPECT_EQ(ReferenceSmiles().size(), 50u);
  auto h1 = ReferenceSetHash(PrepOptions{}, a);
  auto h2 = ReferenceSetHash(PrepOptions{}, a);
  auto h3 = ReferenceSetHash(PrepOptions{}, b);
  PrepOptions wide;
  wide.fingerprint.bits = 1024;
  auto h4 = ReferenceSetHash(wide, a);
  ASSERT_TRUE(h1.ok() && h2.ok() && h3.ok() && h4.ok());
  EXPECT_EQ(h1->size(), 64u);
  EXPECT_EQ(*h1, *h2);
  EXPECT_NE(*h1, *h3);
  EXPECT_NE(*h1, *h4);
  const std::string prep = IngestPreparationHash(PrepOptions{}, a, *h1);
  EXPECT_LT(prep.size(), 128u);
  EXPECT_NE(prep, IngestPreparationHash(PrepOptions{}, b, *h3));
  EXPECT_NE(prep.find(";ref-" + h1->substr(0, 16)), std::string::npos);
}

TEST(CompoundsTest, ScrambledBitsAreAPermutationOfThePlainOnes) {
  ScratchDir dir;
  WriteBytes(dir.File("in.csv"), "smiles,t\nCC(=O)Oc1ccccc1C(=O)O,1\n");
  PreparedCompounds plain = Prepare(dir.File("in.csv"));
  PreparedCompounds keyed = Prepare(dir.File("in.csv"), ConsortiumKey("consortium-key-a-0123456789"));
  ASSERT_EQ(plain.compounds.size(), 1u);
  ASSERT_EQ(keyed.compounds.size(), 1u);
  EXPECT_EQ(plain.compounds[0].bits.size(), keyed.compounds[0].bits.size());
  EXPECT_NE(plain.compounds[0].bits, keyed.compounds[0].bits);
  EXPECT_NE(plain.preparation_hash, keyed.preparation_hash);
}

TEST(CompoundsTest, BadInputIsRefusedWithAClearError) {
  ScratchDir dir;
  WriteBytes(dir.File("empty.csv"), "");
  EXPECT_EQ(ReadCompoundFile(dir.File("empty.csv"), {}).status().code(),
            core::StatusCode::kInvalidArgument);
  WriteBytes(dir.File("header.csv"), "name,value\nx,1\n");
  auto no_smiles = ReadCompoundFile(dir.File("header.csv"), {});
  ASSERT_FALSE(no_smiles.ok());
  EXPECT_NE(no_smiles.status().message().find("no SMILES column"), std::string::npos);
  WriteBytes(dir.File("gz.csv"), std::string("\x1f\x8b\x08\x00", 4) + "garbage");
  auto gz = ReadCompoundFile(dir.File("gz.csv"), {});
  ASSERT_FALSE(gz.ok());
  EXPECT_NE(gz.status().message().find("gzip"), std::string::npos);
  // Too large for the limit: refused from its size, before it is read.
  WriteBytes(dir.File("big.csv"), "smiles,t\n" + std::string(5000, 'C') + ",1\n");
  CompoundReadOptions small;
  small.max_file_bytes = 1000;
  auto big = ReadCompoundFile(dir.File("big.csv"), small);
  ASSERT_FALSE(big.ok());
  EXPECT_NE(big.status().message().find("larger than the limit"), std::string::npos);
  WriteBytes(dir.File("fake.sdf"), "smiles,t\nCCO,1\n");
  EXPECT_FALSE(ReadCompoundFile(dir.File("fake.sdf"), {}).ok());
  WriteBytes(dir.File("tasks.csv"), "smiles,t\nCCO,1\n");
  CompoundReadOptions wrong;
  wrong.tasks = {"u"};
  EXPECT_FALSE(ReadCompoundFile(dir.File("tasks.csv"), wrong).ok());
}

TEST(CompoundsTest, TsvWithANamedSmilesColumnAndBadLabels) {
  ScratchDir dir;
  WriteBytes(dir.File("in.tsv"), "id\tDrug\tp\tq\n1\tCCO\t1\t0\n2\tCCN\tyes\t1\n3\tCCC\t0\n");
  CompoundReadOptions read;
  read.tasks = {"p", "q"};
  auto src = ReadCompoundFile(dir.File("in.tsv"), read);
  ASSERT_TRUE(src.ok()) << src.status();
  EXPECT_EQ(src->format, CompoundSource::Format::kTsv);
  ASSERT_EQ(src->records.size(), 2u);
  EXPECT_EQ(src->records[1].labels, (std::vector<std::int8_t>{ml::kMissing, 1}));
  std::vector<std::string> codes;
  for (const auto& f : src->findings) codes.push_back(std::to_string(f.record) + ":" + f.code);
  EXPECT_EQ(codes, (std::vector<std::string>{"2:bad_label", "3:field_count"}));
}

TEST(CompoundsTest, AWrittenVersionLoadsBackWithItsSplitFoldsAndDescriptor) {
  ScratchDir dir;
  WriteBytes(dir.File("in.csv"),
             "smiles,t1,t2,split\nCCO,1,0,train\nc1ccccc1O,0,,valid\nCC(=O)[O-].[Na+],,1,train\n");
  const ConsortiumKey key("consortium-key-a-0123456789");
  auto src = ReadCompoundFile(dir.File("in.csv"), {});
  ASSERT_TRUE(src.ok()) << src.status();
  EXPECT_EQ(src->tasks, (std::vector<std::string>{"t1", "t2"}));
  auto p = PrepareCompounds(*src, PrepOptions{}, key);
  ASSERT_TRUE(p.ok());
  const CompoundDescriptor d = DescribeCompounds(*p, *src, PrepOptions{});
  EXPECT_EQ(d.balance[0].positives, 1u);
  EXPECT_EQ(d.balance[0].negatives, 1u);
  EXPECT_EQ(d.balance[0].missing, 1u);
  EXPECT_EQ(d.source_sha256.size(), 64u);
  std::filesystem::create_directories(dir.File("v"));
  ASSERT_TRUE(WriteCompoundVersion(dir.File("v"), *p, d).ok());
  auto loaded = LoadCompoundVersion(dir.File("v"));
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->dataset.size(), 3u);
  EXPECT_EQ(loaded->dataset.tasks, (std::vector<std::string>{"t1", "t2"}));
  EXPECT_EQ(loaded->dataset.split, (std::vector<std::string>{"train", "valid", "train"}));
  EXPECT_EQ(loaded->dataset.smiles[2], "CC(=O)O");
  EXPECT_EQ(loaded->dataset.label(1, 1), ml::kMissing);
  EXPECT_EQ(loaded->dataset.x.dim, 2048u);
  const auto row = loaded->dataset.x.row(0);
  EXPECT_EQ(std::vector<std::uint32_t>(row.begin(), row.end()), p->compounds[0].bits);
  EXPECT_EQ(loaded->folds[0], p->compounds[0].fold);
  EXPECT_EQ(loaded->descriptor.preparation_hash, p->preparation_hash);
  // A table edited behind the descriptor's back is refused.
  WriteBytes(dir.File("v/compounds.csv"), testing::ReadBytes(dir.File("v/compounds.csv")) +
                                              "XXXXXXXXXXXXXX-UHFFFAOYSA-N,C,,0,train,1,1,1\n");
  EXPECT_FALSE(LoadCompoundVersion(dir.File("v")).ok());
}

}  // namespace
}  // namespace fedrx::ingest
