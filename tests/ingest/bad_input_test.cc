// Bad input: each case gives a clear error or a recorded problem that names
// the file and, where known, the record and column. Bad files are made here
// from the vendored good ones.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "services/ingest/dataset_json_reader.h"
#include "services/ingest/xport_reader.h"
#include "tests/ingest/ingest_test_util.h"

namespace fedrx::ingest {
namespace {

using testing::DataDir;
using ::testing::HasSubstr;
using testing::ReadBytes;
using testing::ScratchDir;
using testing::WriteBytes;

const std::string kSendDm = DataDir("send_cber_pilot_8326556") + "/dm.xpt";

// A sparse file of `size` bytes starting with `head`; takes no disk space.
void MakeSparseFile(const std::string& path, const std::string& head, off_t size) {
  const int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, head.data(), head.size()), static_cast<ssize_t>(head.size()));
  ASSERT_EQ(::ftruncate(fd, size), 0);
  ::close(fd);
}

constexpr off_t kTwoGiB = off_t{2} << 30;

// ---- XPORT ----

TEST(IngestXportBadInputTest, MissingFileIsNotFound) {
  ScratchDir dir;
  const auto t = ReadXport(dir.File("nope.xpt"));
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), core::StatusCode::kNotFound);
  EXPECT_THAT(t.status().where(), HasSubstr("nope.xpt"));
}

TEST(IngestXportBadInputTest, EmptyFile) {
  ScratchDir dir;
  WriteBytes(dir.File("dm.xpt"), "");
  const auto t = ReadXport(dir.File("dm.xpt"));
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_THAT(t.status().message(), HasSubstr("empty file"));
  EXPECT_THAT(t.status().where(), HasSubstr("dm.xpt"));
}

TEST(IngestXportBadInputTest, CorruptHeaderByteIsNotAnXportFile) {
  ScratchDir dir;
  std::string bytes = ReadBytes(kSendDm);
  ASSERT_EQ(bytes.size(), 3200u);
  bytes[20] = 'X';  // "LIBRARY" -> "XIBRARY"
  WriteBytes(dir.File("dm.xpt"), bytes);
  const auto t = ReadXport(dir.File("dm.xpt"));
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_THAT(t.status().message(), HasSubstr("not a SAS XPORT v5 file"));
  EXPECT_THAT(t.status().where(), HasSubstr("dm.xpt"));
}

TEST(IngestXportBadInputTest, JsonRenamedToXptIsNotAnXportFile) {
  ScratchDir dir;
  WriteBytes(dir.File("dm.xpt"), ReadBytes(DataDir("send_cber_pilot_8326556") + "/dm.json"));
  const auto t = ReadXport(dir.File("dm.xpt"));
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), core::StatusCode::kInvalidArgument);
}

TEST(IngestXportBadInputTest, Version8IsUnimplemented) {
  ScratchDir dir;
  std::string bytes = ReadBytes(kSendDm);
  bytes.replace(20, 7, "LIBV8  ");
  WriteBytes(dir.File("dm.xpt"), bytes);
  const auto t = ReadXport(dir.File("dm.xpt"));
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), core::StatusCode::kUnimplemented);
}

TEST(IngestXportBadInputTest, TruncatedMidRecordIsDataLoss) {
  ScratchDir dir;
  WriteBytes(dir.File("dm.xpt"), ReadBytes(kSendDm).substr(0, 3000));  // not a multiple of 80
  const auto t = ReadXport(dir.File("dm.xpt"));
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), core::StatusCode::kDataLoss);
  EXPECT_THAT(t.status().message(), HasSubstr("truncated"));
  EXPECT_THAT(t.status().where(), HasSubstr("dm.xpt"));
}

TEST(IngestXportBadInputTest, TruncatedAtRecordBoundaryInDataNamesTheCutObservation) {
  // dm.xpt: observations of 102 bytes start at byte 2720; cutting at 3120 (a
  // whole number of 80-byte records) leaves 3 whole observations and 94 bytes
  // of the 4th, which ReadStat alone would read as a 4th row.
  ScratchDir dir;
  WriteBytes(dir.File("dm.xpt"), ReadBytes(kSendDm).substr(0, 3120));
  const auto t = ReadXport(dir.File("dm.xpt"));
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), core::StatusCode::kDataLoss);
  EXPECT_THAT(t.status().message(), HasSubstr("last observation is cut off"));
  EXPECT_THAT(t.status().where(), HasSubstr("dm.xpt record 4"));
}

TEST(IngestXportBadInputTest, TruncatedInsideHeadersIsDataLoss) {
  ScratchDir dir;
  WriteBytes(dir.File("dm.xpt"), ReadBytes(kSendDm).substr(0, 400));
  const auto t = ReadXport(dir.File("dm.xpt"));
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), core::StatusCode::kDataLoss);
  EXPECT_THAT(t.status().where(), HasSubstr("dm.xpt"));
}

TEST(IngestXportBadInputTest, HugeFileWithoutXportHeaderIsRefusedUpFront) {
  // 2 GiB of zeros: the header check answers after reading 80 bytes.
  ScratchDir dir;
  MakeSparseFile(dir.File("lb.xpt"), "", kTwoGiB);
  const auto t = ReadXport(dir.File("lb.xpt"));
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_THAT(t.status().message(), HasSubstr("not a SAS XPORT v5 file"));
}

TEST(IngestXportBadInputTest, HugeFileWithXportHeaderIsOverTheSizeLimit) {
  ScratchDir dir;
  MakeSparseFile(dir.File("lb.xpt"), ReadBytes(kSendDm).substr(0, 80), kTwoGiB);
  const auto t = ReadXport(dir.File("lb.xpt"));  // default limit: 1 GiB
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), core::StatusCode::kResourceExhausted);
  EXPECT_THAT(t.status().message(), HasSubstr("2147483648 bytes"));
}

TEST(IngestXportBadInputTest, MaxBytesIsConfigurable) {
  ReadOptions options;
  options.max_bytes = 3199;
  const auto t = ReadXport(kSendDm, options);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), core::StatusCode::kResourceExhausted);
  options.max_bytes = 3200;
  EXPECT_TRUE(ReadXport(kSendDm, options).ok());
}

// ---- Dataset-JSON ----

// A minimal Dataset-JSON 1.1 document around `columns` and `rows`.
std::string DatasetJson(const std::string& columns, const std::string& rows, int records) {
  return R"({"datasetJSONVersion":"1.1.0","itemGroupOID":"IG.XX","records":)" +
         std::to_string(records) + R"(,"name":"XX","label":"Test","columns":[)" + columns +
         R"(],"rows":[)" + rows + "]}";
}

const std::string kThreeColumns =
    R"({"itemOID":"IT.XX.USUBJID","name":"USUBJID","label":"Subject","dataType":"string","length":8},)"
    R"({"itemOID":"IT.XX.AGE","name":"AGE","label":"Age","dataType":"integer"},)"
    R"({"itemOID":"IT.XX.WT","name":"WT","label":"Weight","dataType":"float"})";

TEST(IngestDatasetJsonBadInputTest, MinimalDocumentReads) {
  ScratchDir dir;
  WriteBytes(dir.File("xx.json"),
             DatasetJson(kThreeColumns, R"(["S1",40,70.5],["S2",null,null])", 2));
  const auto t = ReadDatasetJson(dir.File("xx.json"));
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->num_rows, 2u);
  EXPECT_EQ(t->At(0, 0), Cell(std::string_view("S1")));
  EXPECT_EQ(t->At(0, 1), Cell(40.0));
  EXPECT_EQ(t->At(0, 2), Cell(70.5));
  EXPECT_EQ(t->At(1, 1), Cell(std::monostate{}));
  EXPECT_TRUE(t->problems.empty());
}

TEST(IngestDatasetJsonBadInputTest, EmptyFile) {
  ScratchDir dir;
  WriteBytes(dir.File("dm.json"), "");
  const auto t = ReadDatasetJson(dir.File("dm.json"));
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_THAT(t.status().message(), HasSubstr("empty file"));
  EXPECT_THAT(t.status().where(), HasSubstr("dm.json"));
}

TEST(IngestDatasetJsonBadInputTest, ShortRowNamesTheRecord) {
  ScratchDir dir;
  WriteBytes(dir.File("xx.json"),
             DatasetJson(kThreeColumns, R"(["S1",40,70.5],["S2",41,71],["S3",42])", 3));
  const auto t = ReadDatasetJson(dir.File("xx.json"));
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_THAT(t.status().message(), HasSubstr("record has 2 values; the dataset has 3 columns"));
  EXPECT_THAT(t.status().where(), HasSubstr("xx.json record 3"));
}

TEST(IngestDatasetJsonBadInputTest, ShortRowInRealFileNamesTheRecord) {
  // The vendored DM with the last value of its 2nd record removed.
  ScratchDir dir;
  std::string bytes = ReadBytes(DataDir("send_cber_pilot_8326556") + "/dm.json");
  const std::string second_tail =
      R"("I10809","2015-07-31","2015-09-25","2015-07-31T09:06:17","2015-08-28T10:15:00","2-7","YEARS","F","1","Dose","1"])";
  const auto at = bytes.find(second_tail);
  ASSERT_NE(at, std::string::npos);
  bytes.replace(at + second_tail.size() - 5, 4, "");  // drop ,"1"
  WriteBytes(dir.File("dm.json"), bytes);
  const auto t = ReadDatasetJson(dir.File("dm.json"));
  ASSERT_FALSE(t.ok());
  EXPECT_THAT(t.status().message(), HasSubstr("record has 13 values; the dataset has 14"));
  EXPECT_THAT(t.status().where(), HasSubstr("dm.json record 2"));
}

TEST(IngestDatasetJsonBadInputTest, NumberStoredAsTextIsAProblemAndReadingGoesOn) {
  ScratchDir dir;
  WriteBytes(dir.File("xx.json"),
             DatasetJson(kThreeColumns,
                         R"(["S1",40,70.5],["S2","41",71],["S3",42,"heavy"],["S4",43.5,72])", 4));
  const auto t = ReadDatasetJson(dir.File("xx.json"));
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->num_rows, 4u);
  ASSERT_EQ(t->problems.size(), 3u);
  EXPECT_EQ(t->problems[0].row, 1);
  EXPECT_EQ(t->problems[0].column, 1);
  EXPECT_THAT(t->problems[0].message, HasSubstr("number stored as text"));
  EXPECT_EQ(t->problems[1].row, 2);
  EXPECT_EQ(t->problems[1].column, 2);
  EXPECT_THAT(t->problems[1].message, HasSubstr("text in a numeric column"));
  EXPECT_EQ(t->problems[2].row, 3);
  EXPECT_THAT(t->problems[2].message, HasSubstr("fractional number in an integer column"));
  // The cells concerned are missing; the rest of the row is read.
  EXPECT_EQ(t->At(1, 1), Cell(std::monostate{}));
  EXPECT_EQ(t->At(1, 2), Cell(71.0));
  EXPECT_EQ(t->At(2, 2), Cell(std::monostate{}));
  EXPECT_EQ(t->At(3, 0), Cell(std::string_view("S4")));
}

TEST(IngestDatasetJsonBadInputTest, DecimalColumnsTakeNumericText) {
  ScratchDir dir;
  const std::string columns =
      R"({"itemOID":"IT.XX.D","name":"D","label":"Dose","dataType":"decimal"})";
  WriteBytes(dir.File("xx.json"), DatasetJson(columns, R"([" 2.50"],[3],["NA"],[""])", 4));
  const auto t = ReadDatasetJson(dir.File("xx.json"));
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->At(0, 0), Cell(2.5));
  EXPECT_EQ(t->At(1, 0), Cell(3.0));
  EXPECT_EQ(t->At(2, 0), Cell(std::monostate{}));
  EXPECT_EQ(t->At(3, 0), Cell(std::monostate{}));
  ASSERT_EQ(t->problems.size(), 1u);  // "NA"; "" is plain missing
  EXPECT_EQ(t->problems[0].row, 2);
  EXPECT_THAT(t->problems[0].message, HasSubstr("not a number in a decimal column"));
}

TEST(IngestDatasetJsonBadInputTest, ProblemsBeyondTheLimitAreCounted) {
  ScratchDir dir;
  std::string rows;
  for (int i = 0; i < 10; ++i)
    rows += std::string(i ? "," : "") + R"(["S",")" + std::to_string(i) + R"(",1])";
  WriteBytes(dir.File("xx.json"), DatasetJson(kThreeColumns, rows, 10));
  ReadOptions options;
  options.max_problems = 4;
  const auto t = ReadDatasetJson(dir.File("xx.json"), options);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->problems.size(), 4u);
  EXPECT_EQ(t->problems_dropped, 6u);
}

TEST(IngestDatasetJsonBadInputTest, RecordsCountMismatchIsAProblem) {
  ScratchDir dir;
  WriteBytes(dir.File("xx.json"), DatasetJson(kThreeColumns, R"(["S1",40,70.5])", 5));
  const auto t = ReadDatasetJson(dir.File("xx.json"));
  ASSERT_TRUE(t.ok()) << t.status();
  ASSERT_EQ(t->problems.size(), 1u);
  EXPECT_EQ(t->problems[0].row, -1);
  EXPECT_THAT(t->problems[0].message, HasSubstr("\"records\" says 5"));
}

TEST(IngestDatasetJsonBadInputTest, NonJsonFile) {
  ScratchDir dir;
  WriteBytes(dir.File("dm.json"), ReadBytes(kSendDm));  // an XPORT file named .json
  const auto t = ReadDatasetJson(dir.File("dm.json"));
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_THAT(t.status().message(), HasSubstr("not a JSON object"));
  EXPECT_THAT(t.status().where(), HasSubstr("dm.json"));
}

TEST(IngestDatasetJsonBadInputTest, TruncatedJson) {
  ScratchDir dir;
  const std::string bytes = ReadBytes(DataDir("send_cber_pilot_8326556") + "/dm.json");
  WriteBytes(dir.File("dm.json"), bytes.substr(0, bytes.size() / 2));
  const auto t = ReadDatasetJson(dir.File("dm.json"));
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_THAT(t.status().message(), HasSubstr("truncated"));
}

TEST(IngestDatasetJsonBadInputTest, SyntaxErrorNamesTheByte) {
  ScratchDir dir;
  WriteBytes(dir.File("xx.json"), R"({"datasetJSONVersion":"1.1.0", oops})");
  const auto t = ReadDatasetJson(dir.File("xx.json"));
  ASSERT_FALSE(t.ok());
  EXPECT_THAT(t.status().message(), HasSubstr("syntax error at byte"));
}

TEST(IngestDatasetJsonBadInputTest, OtherJsonIsNotDatasetJson) {
  ScratchDir dir;
  WriteBytes(dir.File("xx.json"), R"({"hello":"world","rows":[[1]]})");
  const auto t = ReadDatasetJson(dir.File("xx.json"));
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_THAT(t.status().message(), HasSubstr("no \"datasetJSONVersion\""));
}

TEST(IngestDatasetJsonBadInputTest, OtherVersionIsUnimplemented) {
  ScratchDir dir;
  WriteBytes(dir.File("xx.json"), R"({"datasetJSONVersion":"2.0.0","columns":[],"rows":[]})");
  const auto t = ReadDatasetJson(dir.File("xx.json"));
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), core::StatusCode::kUnimplemented);
}

TEST(IngestDatasetJsonBadInputTest, UnknownDataTypeNamesTheColumn) {
  ScratchDir dir;
  WriteBytes(dir.File("xx.json"),
             DatasetJson(R"({"itemOID":"IT.XX.A","name":"A","dataType":"text"})", "", 0));
  const auto t = ReadDatasetJson(dir.File("xx.json"));
  ASSERT_FALSE(t.ok());
  EXPECT_THAT(t.status().message(), HasSubstr("unknown dataType \"text\""));
  EXPECT_THAT(t.status().where(), HasSubstr("columns[0] (A)"));
}

TEST(IngestDatasetJsonBadInputTest, NestedValueInARecord) {
  ScratchDir dir;
  WriteBytes(dir.File("xx.json"), DatasetJson(kThreeColumns, R"(["S1",[40],70.5])", 1));
  const auto t = ReadDatasetJson(dir.File("xx.json"));
  ASSERT_FALSE(t.ok());
  EXPECT_THAT(t.status().message(), HasSubstr("nested"));
  EXPECT_THAT(t.status().where(), HasSubstr("record 1 column AGE"));
}

TEST(IngestDatasetJsonBadInputTest, RowsBeforeColumnsStillRead) {
  ScratchDir dir;
  WriteBytes(dir.File("xx.json"),
             R"({"datasetJSONVersion":"1.1.0","itemGroupOID":"IG.XX","name":"XX","records":1,)"
             R"("rows":[["S1",40,70.5]],"columns":[)" +
                 kThreeColumns + "]}");
  const auto t = ReadDatasetJson(dir.File("xx.json"));
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->At(0, 2), Cell(70.5));
}

TEST(IngestDatasetJsonBadInputTest, HugeFileThatIsNotJsonIsRefusedUpFront) {
  ScratchDir dir;
  MakeSparseFile(dir.File("lb.json"), "", kTwoGiB);
  const auto t = ReadDatasetJson(dir.File("lb.json"));
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_THAT(t.status().message(), HasSubstr("not a JSON object"));
}

TEST(IngestDatasetJsonBadInputTest, HugeJsonIsOverTheSizeLimit) {
  ScratchDir dir;
  MakeSparseFile(dir.File("lb.json"), R"({"datasetJSONVersion":"1.1.0",)", kTwoGiB);
  const auto t = ReadDatasetJson(dir.File("lb.json"));
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), core::StatusCode::kResourceExhausted);
  EXPECT_THAT(t.status().where(), HasSubstr("lb.json"));
}

}  // namespace
}  // namespace fedrx::ingest
