#include "services/ml/csv_dataset.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "services/ml/chem.h"

namespace fedrx::ml {
namespace {

namespace fs = std::filesystem;

class CsvDatasetTest : public testing::Test {
 protected:
  void SetUp() override {
    const auto* info = testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("fedrx_csv_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }

  std::string Write(const std::string& name, const std::string& content) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << content;
    return path;
  }

  fs::path dir_;
};

std::vector<std::int8_t> Column(const Dataset& ds, std::size_t task) {
  std::vector<std::int8_t> out;
  for (std::size_t r = 0; r < ds.size(); ++r) out.push_back(ds.label(r, task));
  return out;
}

std::vector<std::uint32_t> Bits(const std::string& smiles) {
  auto m = PrepareMolecule(smiles, {});
  return m.ok() ? m->bits : std::vector<std::uint32_t>{};
}

TEST_F(CsvDatasetTest, ReadsQuotedFieldsCrlfBlankLinesAndMissingLabels) {
  const std::string path =
      Write("a.csv",
            "\xEF\xBB\xBFmol_id,\"Task A\",SMILES,\"task,B\",split\r\n"
            "m1,1,\"CC(=O)[O-].[Na+]\",,train\r\n"
            "\"id with \"\"quotes\"\"\r\nand a line break\",0.0,c1ccccc1C,1.0,valid\r\n"
            "\r\n"
            "m3,,CCO,0,test");  // no final line end
  LoadReport report;
  auto ds = LoadCsvDataset(path, {}, {}, &report);
  ASSERT_TRUE(ds.ok()) << ds.status();
  EXPECT_EQ(report.rows_read, 3u);
  EXPECT_EQ(report.rows_loaded, 3u);
  EXPECT_TRUE(report.skipped.empty());
  EXPECT_EQ(ds->tasks, (std::vector<std::string>{"Task A", "task,B"}));
  EXPECT_EQ(ds->smiles, (std::vector<std::string>{"CC(=O)O", "Cc1ccccc1", "CCO"}));
  EXPECT_EQ(ds->scaffolds, (std::vector<std::string>{"", "c1ccccc1", ""}));
  EXPECT_EQ(ds->split, (std::vector<std::string>{"train", "valid", "test"}));
  EXPECT_EQ(Column(*ds, 0), (std::vector<std::int8_t>{1, 0, kMissing}));
  EXPECT_EQ(Column(*ds, 1), (std::vector<std::int8_t>{kMissing, 1, 0}));
  EXPECT_EQ(ds->x.dim, 2048u);
  ASSERT_EQ(ds->x.rows(), 3u);
  const auto row1 = ds->x.row(1);
  EXPECT_EQ(std::vector<std::uint32_t>(row1.begin(), row1.end()), Bits("Cc1ccccc1"));
}

TEST_F(CsvDatasetTest, BadRowsAreSkippedAndReportedWithRowAndLine) {
  const std::string path = Write("bad.csv",
                                 "smiles,a,b\n"
                                 "CCO,1,0\n"           // row 1, line 2
                                 "not_a_smiles,1,0\n"  // row 2, line 3
                                 "CCN,2,0\n"           // row 3, line 4
                                 "CCC,1\n"             // row 4, line 5
                                 "\n"                  // line 6, blank: not a row
                                 "\"C\nC\",0,1\n"   // row 5, lines 7-8: a SMILES with a line break
                                 "c1ccccc1,,yes\n"  // row 6, line 9
                                 "\"CC\"x,1,1\n"    // row 7, line 10
                                 "c1ccncc1,0,\n");  // row 8, line 11
  LoadReport report;
  auto ds = LoadCsvDataset(path, {}, {}, &report);
  ASSERT_TRUE(ds.ok()) << ds.status();
  EXPECT_EQ(report.rows_read, 8u);
  EXPECT_EQ(report.rows_loaded, 2u);
  EXPECT_EQ(ds->smiles, (std::vector<std::string>{"CCO", "c1ccncc1"}));
  EXPECT_EQ(Column(*ds, 1), (std::vector<std::int8_t>{0, kMissing}));
  ASSERT_EQ(report.skipped.size(), 6u);
  std::vector<std::size_t> rows, lines;
  for (const auto& s : report.skipped) {
    rows.push_back(s.row);
    lines.push_back(s.line);
  }
  EXPECT_EQ(rows, (std::vector<std::size_t>{2, 3, 4, 5, 6, 7}));
  EXPECT_EQ(lines, (std::vector<std::size_t>{3, 4, 5, 7, 9, 10}));
  EXPECT_NE(report.skipped[0].reason.find("SMILES 'not_a_smiles'"), std::string::npos)
      << report.skipped[0].reason;
  EXPECT_NE(report.skipped[1].reason.find("task 'a' has label '2'"), std::string::npos)
      << report.skipped[1].reason;
  EXPECT_NE(report.skipped[2].reason.find("2 fields, the header has 3"), std::string::npos)
      << report.skipped[2].reason;
  EXPECT_NE(report.skipped[3].reason.find("SMILES 'C?C'"), std::string::npos)
      << report.skipped[3].reason;
  EXPECT_NE(report.skipped[4].reason.find("task 'b' has label 'yes'"), std::string::npos)
      << report.skipped[4].reason;
  EXPECT_NE(report.skipped[5].reason.find("after its closing quote"), std::string::npos)
      << report.skipped[5].reason;
}

TEST_F(CsvDatasetTest, ExplicitTaskColumnsAndNamedSmilesColumn) {
  const std::string path = Write("t.csv", "Structure,a,b,c\nCCO,1,0,1\nCCN,0,,1\n");
  CsvOptions o;
  o.smiles_column = "structure";
  o.task_columns = {"c", "a"};
  auto ds = LoadCsvDataset(path, o, {}, nullptr);
  ASSERT_TRUE(ds.ok()) << ds.status();
  EXPECT_EQ(ds->tasks, (std::vector<std::string>{"c", "a"}));
  EXPECT_EQ(ds->y, (std::vector<std::int8_t>{1, 1, 1, 0}));
  EXPECT_TRUE(ds->split.empty());

  o.task_columns = {"d"};
  auto missing = LoadCsvDataset(path, o, {}, nullptr);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().where(), path + ":1");
  EXPECT_NE(missing.status().message().find("'d'"), std::string::npos);
}

TEST_F(CsvDatasetTest, FingerprintOptionsReachTheRows) {
  const std::string path = Write("fp.csv", "smiles,y\nCc1ccc(NC(=O)c2ccccc2)cc1,1\n");
  FingerprintOptions fp;
  fp.bits = 128;
  fp.radius = 1;
  auto ds = LoadCsvDataset(path, {}, fp, nullptr);
  ASSERT_TRUE(ds.ok()) << ds.status();
  EXPECT_EQ(ds->x.dim, 128u);
  const auto row = ds->x.row(0);
  auto expected = PrepareMolecule("Cc1ccc(NC(=O)c2ccccc2)cc1", fp);
  ASSERT_TRUE(expected.ok());
  EXPECT_EQ(std::vector<std::uint32_t>(row.begin(), row.end()), expected->bits);
}

TEST_F(CsvDatasetTest, DuplicateMoleculesAreKeptAndCounted) {
  const std::string path = Write("dup.csv", "smiles,y\nCCO,1\nOCC,0\n[O-]CC.[Na+],1\nCCN,1\n");
  LoadReport report;
  auto ds = LoadCsvDataset(path, {}, {}, &report);
  ASSERT_TRUE(ds.ok()) << ds.status();
  EXPECT_EQ(ds->smiles, (std::vector<std::string>{"CCO", "CCO", "CCO", "CCN"}));
  EXPECT_EQ(report.duplicate_smiles, 2u);
}

TEST_F(CsvDatasetTest, MissingFileIsNotFoundWithPath) {
  const std::string path = (dir_ / "nope.csv").string();
  auto ds = LoadCsvDataset(path, {}, {}, nullptr);
  ASSERT_FALSE(ds.ok());
  EXPECT_EQ(ds.status().code(), core::StatusCode::kNotFound);
  EXPECT_EQ(ds.status().where(), path);
  auto dir = LoadCsvDataset(dir_.string(), {}, {}, nullptr);
  ASSERT_FALSE(dir.ok());
  EXPECT_EQ(dir.status().code(), core::StatusCode::kInvalidArgument);
}

TEST_F(CsvDatasetTest, StructuralProblemsAreClearErrors) {
  struct Case {
    std::string content;
    std::string where_suffix;  // after the path
    std::string says;
  };
  const std::vector<Case> cases = {
      {"", "", "empty CSV file"},
      {"\n\r\n  \n", "", "empty CSV file"},
      {"id,a,b\nm1,1,0\n", ":1", "no SMILES column 'smiles'"},
      {"\nsmiles,mol_id,split\nCCO,m1,train\n", ":2", "no task columns"},
      {"smiles,a,A\nCCO,1,0\n", ":1", "appears twice"},
      {"smiles,a,\nCCO,1,0\n", ":1", "column 3 has no name"},
      {"smiles,a\nCCO,1\n\"CC,1\nCCN,0\n", ":3", "never closed"},
      {"\"smiles\"x,a\nCCO,1\n", ":1", "malformed header"},
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const std::string path = Write("case" + std::to_string(i) + ".csv", cases[i].content);
    auto ds = LoadCsvDataset(path, {}, {}, nullptr);
    ASSERT_FALSE(ds.ok()) << i;
    EXPECT_EQ(ds.status().code(), core::StatusCode::kInvalidArgument) << i;
    EXPECT_EQ(ds.status().where(), path + cases[i].where_suffix) << i;
    EXPECT_NE(ds.status().message().find(cases[i].says), std::string::npos)
        << i << ": " << ds.status();
  }
  CsvOptions small;
  small.max_file_bytes = 10;
  const std::string big = Write("big.csv", "smiles,y\nCCO,1\nCCN,0\n");
  auto too_big = LoadCsvDataset(big, small, {}, nullptr);
  ASSERT_FALSE(too_big.ok());
  EXPECT_NE(too_big.status().message().find("larger than the limit"), std::string::npos);
  FingerprintOptions bad_fp;
  bad_fp.bits = 0;
  EXPECT_EQ(LoadCsvDataset(big, {}, bad_fp, nullptr).status().code(),
            core::StatusCode::kInvalidArgument);
}

TEST_F(CsvDatasetTest, HeaderOnlyFileLoadsZeroRows) {
  LoadReport report;
  auto ds = LoadCsvDataset(Write("h.csv", "smiles,y\n"), {}, {}, &report);
  ASSERT_TRUE(ds.ok()) << ds.status();
  EXPECT_EQ(ds->size(), 0u);
  EXPECT_EQ(ds->tasks, std::vector<std::string>{"y"});
  EXPECT_EQ(report.rows_read, 0u);
}

TEST_F(CsvDatasetTest, WriteThenLoadRoundTrips) {
  const std::string src = Write("src.csv",
                                "smiles,\"tox, acute\",b,split\n"
                                "CC(=O)[O-].[Na+],1,,train\n"
                                "Cc1ccccc1,0,1,\"va,lid\"\n"
                                "CCO,,,test\n");
  auto first = LoadCsvDataset(src, {}, {}, nullptr);
  ASSERT_TRUE(first.ok()) << first.status();
  const std::string out = (dir_ / "out.csv").string();
  ASSERT_TRUE(WriteCsvDataset(out, *first).ok());
  std::ifstream in(out, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(text.str(),
            "smiles,\"tox, acute\",b,split\n"
            "CC(=O)O,1,,train\n"
            "Cc1ccccc1,0,1,\"va,lid\"\n"
            "CCO,,,test\n");
  EXPECT_FALSE(fs::exists(out + ".tmp"));
  auto second = LoadCsvDataset(out, {}, {}, nullptr);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->tasks, first->tasks);
  EXPECT_EQ(second->smiles, first->smiles);
  EXPECT_EQ(second->scaffolds, first->scaffolds);
  EXPECT_EQ(second->split, first->split);
  EXPECT_EQ(second->y, first->y);
  EXPECT_EQ(second->x.offsets, first->x.offsets);
  EXPECT_EQ(second->x.indices, first->x.indices);

  // Without split tags no split column is written.
  Dataset no_split = first->Subset(std::vector<std::size_t>{2, 0});
  no_split.split.clear();
  ASSERT_TRUE(WriteCsvDataset(out, no_split).ok());
  std::ifstream in2(out, std::ios::binary);
  std::stringstream text2;
  text2 << in2.rdbuf();
  EXPECT_EQ(text2.str(), "smiles,\"tox, acute\",b\nCCO,,\nCC(=O)O,1,\n");
}

TEST_F(CsvDatasetTest, WriteRejectsInconsistentDatasetsAndUnwritablePaths) {
  Dataset ds;
  ds.tasks = {"a"};
  ds.smiles = {"CCO"};
  ds.scaffolds = {""};
  ds.x.AddRow({});
  ds.y = {1, 0};  // one label too many
  const std::string out = (dir_ / "x.csv").string();
  EXPECT_EQ(WriteCsvDataset(out, ds).code(), core::StatusCode::kInvalidArgument);
  ds.y = {3};
  EXPECT_EQ(WriteCsvDataset(out, ds).code(), core::StatusCode::kInvalidArgument);
  ds.y = {1};
  ds.tasks = {"split"};
  EXPECT_EQ(WriteCsvDataset(out, ds).code(), core::StatusCode::kInvalidArgument);
  EXPECT_FALSE(fs::exists(out));
  ds.tasks = {"a"};
  EXPECT_EQ(WriteCsvDataset((dir_ / "no_such_dir" / "x.csv").string(), ds).code(),
            core::StatusCode::kNotFound);
  EXPECT_TRUE(WriteCsvDataset(out, ds).ok());
}

TEST_F(CsvDatasetTest, ResultDoesNotDependOnThreadCount) {
  // The first 600 Tox21 rows: enough for the loader to use a second thread.
  std::ifstream in(FEDRX_TOX21_CSV);
  std::string line, head;
  for (int i = 0; i <= 600 && std::getline(in, line); ++i) head += line + "\n";
  head += "not_a_smiles,,,,,,,,,,,,,X\n";
  const std::string path = Write("head.csv", head);
  CsvOptions one, two;
  one.threads = 1;
  two.threads = 2;
  LoadReport r1, r2;
  auto a = LoadCsvDataset(path, one, {}, &r1);
  auto b = LoadCsvDataset(path, two, {}, &r2);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->size(), 600u);
  EXPECT_EQ(a->smiles, b->smiles);
  EXPECT_EQ(a->scaffolds, b->scaffolds);
  EXPECT_EQ(a->y, b->y);
  EXPECT_EQ(a->x.indices, b->x.indices);
  EXPECT_EQ(a->x.offsets, b->x.offsets);
  ASSERT_EQ(r2.skipped.size(), 1u);
  EXPECT_EQ(r2.skipped[0].row, 601u);
  EXPECT_EQ(r1.skipped[0].reason, r2.skipped[0].reason);
}

// Raw Tox21 label counts (positives, negatives, missing), all rows.
struct TaskCounts {
  const char* task;
  std::size_t pos, neg, missing;
};
constexpr TaskCounts kTox21Counts[] = {
    {"NR-AR", 309, 6956, 566},          {"NR-AR-LBD", 237, 6521, 1073},
    {"NR-AhR", 768, 5781, 1282},        {"NR-Aromatase", 300, 5521, 2010},
    {"NR-ER", 793, 5400, 1638},         {"NR-ER-LBD", 350, 6605, 876},
    {"NR-PPAR-gamma", 186, 6264, 1381}, {"SR-ARE", 942, 4890, 1999},
    {"SR-ATAD5", 264, 6808, 759},       {"SR-HSE", 372, 6095, 1364},
    {"SR-MMP", 918, 4892, 2021},        {"SR-p53", 423, 6351, 1057},
};

// What a site writes is what it reads back: every prepared Tox21 structure
// prepares to itself again (standardisation is idempotent and never yields a
// structure RDKit cannot re-read, e.g. a neutralised cyclopentadienide).
TEST(CsvTox21Test, PreparedStructuresRoundTripThroughTheirCanonicalSmiles) {
  auto ds = LoadCsvDataset(FEDRX_TOX21_CSV, {}, {}, nullptr);
  ASSERT_TRUE(ds.ok()) << ds.status();
  std::size_t failures = 0;
  for (std::size_t i = 0; i < ds->size(); ++i) {
    auto again = PrepareMolecule(ds->smiles[i], FingerprintOptions{});
    if (!again.ok() || again->canonical_smiles != ds->smiles[i] ||
        again->bits != std::vector<std::uint32_t>(ds->x.row(i).begin(), ds->x.row(i).end())) {
      if (++failures <= 5) {
        ADD_FAILURE() << "row " << i + 1 << " " << ds->smiles[i] << " -> "
                      << (again.ok() ? again->canonical_smiles : again.status().ToString());
      }
    }
  }
  EXPECT_EQ(failures, 0u);
}

TEST(CsvTox21Test, LoadsEveryRowWithTheRawLabelCounts) {
  LoadReport report;
  auto ds = LoadCsvDataset(FEDRX_TOX21_CSV, {}, {}, &report);
  ASSERT_TRUE(ds.ok()) << ds.status();
  EXPECT_EQ(report.rows_read, 7831u);
  // RDKit 2022.09 parses and standardises every Tox21 SMILES.
  EXPECT_EQ(report.rows_loaded, 7831u);
  for (const auto& s : report.skipped) ADD_FAILURE() << "row " << s.row << ": " << s.reason;
  // Salts and stereoisomers collapse onto one canonical parent (stereo is kept,
  // so these are the same structure written twice, or salts of one parent).
  EXPECT_EQ(report.duplicate_smiles, 210u);
  ASSERT_EQ(ds->size(), 7831u);
  ASSERT_EQ(ds->num_tasks(), 12u);
  EXPECT_TRUE(ds->split.empty());
  EXPECT_EQ(ds->x.dim, 2048u);
  for (std::size_t t = 0; t < 12; ++t) {
    EXPECT_EQ(ds->tasks[t], kTox21Counts[t].task);
    std::size_t pos = 0, neg = 0, missing = 0;
    for (std::size_t r = 0; r < ds->size(); ++r) {
      const std::int8_t v = ds->label(r, t);
      pos += v == 1;
      neg += v == 0;
      missing += v == kMissing;
    }
    EXPECT_EQ(pos, kTox21Counts[t].pos) << ds->tasks[t];
    EXPECT_EQ(neg, kTox21Counts[t].neg) << ds->tasks[t];
    EXPECT_EQ(missing, kTox21Counts[t].missing) << ds->tasks[t];
  }
  std::size_t empty_rows = 0, acyclic = 0;
  for (std::size_t r = 0; r < ds->size(); ++r) {
    empty_rows += ds->x.row(r).empty();
    acyclic += ds->scaffolds[r].empty();
  }
  EXPECT_EQ(empty_rows, 0u);
  EXPECT_EQ(acyclic, 1785u);
  // First row of the file: CCOc1ccc2nc(S(N)(=O)=O)sc2c1.
  EXPECT_EQ(ds->smiles[0], "CCOc1ccc2nc(S(N)(=O)=O)sc2c1");
  EXPECT_EQ(ds->scaffolds[0], "c1ccc2scnc2c1");
  EXPECT_EQ(ds->label(0, 2), 1);
  EXPECT_EQ(ds->label(0, 3), kMissing);
}

}  // namespace
}  // namespace fedrx::ml
