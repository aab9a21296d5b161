// The XPORT and Dataset-JSON copies of each vendored domain read into the same
// records, and known values sit at known rows.
//
// Numbers are compared exactly: for every vendored domain the IBM-float values
// of the .xpt, converted by ReadStat, equal the Dataset-JSON decimal text parsed
// to double bit for bit. (Not so for the SDTM-MSG sample's LB, not vendored:
// 695 of 20544 numbers differ by up to 2 ulp, relative 3.2e-16, e.g. 8.55 in the
// JSON is 8.5499999999999989 in the .xpt. A comparison over such data needs a
// tolerance of a few ulp.)
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <tuple>

#include "services/ingest/dataset_json_reader.h"
#include "services/ingest/xport_reader.h"
#include "tests/ingest/ingest_test_util.h"

namespace fedrx::ingest {
namespace {

using testing::DataDir;

struct Domain {
  const char* study;
  const char* file;  // stem: dm -> dm.xpt, dm.json
  const char* name;
  std::size_t rows;
  std::size_t columns;
};

void PrintTo(const Domain& d, std::ostream* os) { *os << d.study << "/" << d.file; }

class IngestXportMatchesDatasetJsonTest : public ::testing::TestWithParam<Domain> {};

TEST_P(IngestXportMatchesDatasetJsonTest, SameColumnsAndEveryCellEqual) {
  const Domain& d = GetParam();
  const std::string base = DataDir(d.study) + "/" + d.file;
  const core::Result<Table> xpt = ReadXport(base + ".xpt");
  const core::Result<Table> json = ReadDatasetJson(base + ".json");
  ASSERT_TRUE(xpt.ok()) << xpt.status();
  ASSERT_TRUE(json.ok()) << json.status();

  EXPECT_EQ(xpt->name, d.name);
  EXPECT_EQ(json->name, d.name);
  EXPECT_EQ(xpt->format, SourceFormat::kXport);
  EXPECT_EQ(json->format, SourceFormat::kDatasetJson);
  EXPECT_TRUE(xpt->problems.empty());
  EXPECT_TRUE(json->problems.empty());
  ASSERT_EQ(xpt->num_rows, d.rows);
  ASSERT_EQ(json->num_rows, d.rows);
  ASSERT_EQ(xpt->columns.size(), d.columns);
  ASSERT_EQ(json->columns.size(), d.columns);

  for (std::size_t c = 0; c < d.columns; ++c) {
    const Column& x = xpt->columns[c];
    const Column& j = json->columns[c];
    SCOPED_TRACE("column " + x.name);
    EXPECT_EQ(x.name, j.name);
    EXPECT_EQ(x.label, j.label);
    // XPORT knows only text/number; Dataset-JSON's dataType refines it.
    ASSERT_EQ(x.storage, j.storage);
    ASSERT_EQ(x.size(), d.rows);
    ASSERT_EQ(j.size(), d.rows);
    if (x.storage == StorageType::kNumber) {
      EXPECT_EQ(x.length, 8);
      EXPECT_TRUE(j.data_type == DataType::kInteger || j.data_type == DataType::kFloat)
          << DataTypeName(j.data_type);
    }
    for (std::size_t r = 0; r < d.rows; ++r) {
      ASSERT_EQ(x.At(r), j.At(r)) << "row " << r;
      if (x.storage == StorageType::kNumber) {
        EXPECT_EQ(x.missing[r], j.missing[r]) << "row " << r;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Vendored, IngestXportMatchesDatasetJsonTest,
                         ::testing::Values(Domain{"send_cber_pilot_8326556", "dm", "DM", 4, 14},
                                           Domain{"send_cber_pilot_8326556", "ex", "EX", 8, 14},
                                           Domain{"send_cber_pilot_8326556", "bw", "BW", 44, 17},
                                           Domain{"send_cber_pilot_8326556", "ts", "TS", 32, 8},
                                           Domain{"cdisc_sdtm_msg_sample", "dm", "DM", 18, 26},
                                           Domain{"cdisc_sdtm_msg_sample", "ae", "AE", 74, 37}),
                         [](const auto& info) {
                           return std::string(info.param.study).substr(0, 4) == "send"
                                      ? std::string("send_") + info.param.file
                                      : std::string("sdtm_") + info.param.file;
                         });

std::string TextAt(const Table& t, std::size_t row, const char* column) {
  const int c = t.ColumnIndex(column);
  EXPECT_GE(c, 0) << column;
  if (c < 0) return "<no column>";
  return t.columns[c].text.at(row);
}

double NumberAt(const Table& t, std::size_t row, const char* column) {
  const int c = t.ColumnIndex(column);
  EXPECT_GE(c, 0) << column;
  if (c < 0) return std::nan("");
  EXPECT_EQ(t.columns[c].missing.at(row), kPresent) << column << " row " << row;
  return t.columns[c].number.at(row);
}

TEST(IngestXportReaderTest, SdtmDemographicsKnownValues) {
  const auto dm = ReadXport(DataDir("cdisc_sdtm_msg_sample") + "/dm.xpt");
  ASSERT_TRUE(dm.ok()) << dm.status();
  EXPECT_EQ(dm->label, "Demographics");
  EXPECT_EQ(dm->num_rows, 18u);
  EXPECT_EQ(TextAt(*dm, 0, "STUDYID"), "CDISCPILOT01");
  EXPECT_EQ(TextAt(*dm, 0, "USUBJID"), "CDISC001");
  EXPECT_EQ(TextAt(*dm, 17, "USUBJID"), "CDISC018");
  const int age = dm->ColumnIndex("AGE");
  ASSERT_GE(age, 0);
  EXPECT_EQ(dm->columns[age].storage, StorageType::kNumber);
  EXPECT_EQ(dm->columns[age].label, "Age");
  // Trailing SAS blanks are trimmed: USUBJID is 8 bytes wide, values 8 long.
  EXPECT_EQ(dm->columns[dm->ColumnIndex("USUBJID")].length, 8);
}

TEST(IngestDatasetJsonReaderTest, SdtmDemographicsKnownValues) {
  const auto dm = ReadDatasetJson(DataDir("cdisc_sdtm_msg_sample") + "/dm.json");
  ASSERT_TRUE(dm.ok()) << dm.status();
  EXPECT_EQ(dm->label, "Demographics");
  EXPECT_EQ(dm->num_rows, 18u);
  EXPECT_EQ(TextAt(*dm, 0, "USUBJID"), "CDISC001");
  const int age = dm->ColumnIndex("AGE");
  ASSERT_GE(age, 0);
  EXPECT_EQ(dm->columns[age].data_type, DataType::kInteger);
  EXPECT_EQ(dm->columns[age].oid, "IT.DM.AGE");
  const int brthdtc = dm->ColumnIndex("BRTHDTC");
  ASSERT_GE(brthdtc, 0);
  EXPECT_EQ(dm->columns[brthdtc].data_type, DataType::kDate);
  EXPECT_EQ(dm->columns[brthdtc].storage, StorageType::kText);
}

TEST(IngestXportReaderTest, SendStudyKnownValues) {
  const std::string dir = DataDir("send_cber_pilot_8326556");
  const auto dm = ReadXport(dir + "/dm.xpt");
  ASSERT_TRUE(dm.ok()) << dm.status();
  EXPECT_EQ(dm->num_rows, 4u);
  EXPECT_EQ(TextAt(*dm, 0, "USUBJID"), "8326556-I10808");
  EXPECT_EQ(TextAt(*dm, 3, "USUBJID"), "8326556-I10811");
  EXPECT_EQ(TextAt(*dm, 0, "SEX"), "F");
  // The XPORT member label of the CBER pilot's DM is blank; the JSON says "Demographics".
  EXPECT_EQ(dm->label, "");

  const auto ex = ReadXport(dir + "/ex.xpt");
  ASSERT_TRUE(ex.ok()) << ex.status();
  EXPECT_EQ(NumberAt(*ex, 0, "EXDOSE"), 20.0);

  const auto bw = ReadXport(dir + "/bw.xpt");
  ASSERT_TRUE(bw.ok()) << bw.status();
  EXPECT_EQ(NumberAt(*bw, 0, "BWSTRESN"), 2.7);
  const int stresn = bw->ColumnIndex("BWSTRESN");
  EXPECT_EQ(bw->columns[stresn].format, ".1");  // a SAS format with only decimals
  EXPECT_EQ(bw->columns[stresn].data_type, DataType::kDouble);
}

TEST(IngestDatasetJsonReaderTest, MissingNumbersAreNullInJsonAndDotInXport) {
  // AE's AEENDY is empty where the event had not ended.
  const std::string dir = DataDir("cdisc_sdtm_msg_sample");
  const auto x = ReadXport(dir + "/ae.xpt");
  const auto j = ReadDatasetJson(dir + "/ae.json");
  ASSERT_TRUE(x.ok() && j.ok());
  const int c = x->ColumnIndex("AEENDY");
  ASSERT_GE(c, 0);
  std::size_t missing = 0;
  for (std::size_t r = 0; r < x->num_rows; ++r) {
    if (x->columns[c].missing[r] != kPresent) {
      ++missing;
      EXPECT_EQ(x->columns[c].missing[r], kSystemMissing);
      EXPECT_TRUE(std::isnan(x->columns[c].number[r]));
      EXPECT_TRUE(std::holds_alternative<std::monostate>(j->At(r, c)));
    }
  }
  EXPECT_GT(missing, 0u);
}

}  // namespace
}  // namespace fedrx::ingest
