// StudyStore's calibration records: a VersionCalibration survives the store
// value for value; an inconsistent one is refused on save naming the field;
// stored bytes that do not hang together load as kDataLoss naming the key.
#include <gtest/gtest.h>

#include <cstring>
#include <limits>

#include "services/coordinator/study_store.h"
#include "services/core/keys.h"
#include "services/core/testing/fake_state_store.h"

namespace fedrx::coordinator {
namespace {

using core::StatusCode;

VersionCalibration Example() {
  VersionCalibration c;
  c.version = 3;
  c.samples = 10;
  c.tasks = {"NR-AR", "SR-p53"};
  c.histograms.resize(2);
  c.histograms[0].neg = {4, 1, 0};
  c.histograms[0].pos = {0, 2, 3};
  c.histograms[1].neg = {7, 0, 0};
  c.histograms[1].pos = {0, 0, 1};
  c.embedding = {25, {1.5, 0, 12.25}, {3.75, 0, 40.5}};
  c.domain_histogram = {6, 3, 0, 1};
  return c;
}

class CalibrationStoreTest : public ::testing::Test {
 protected:
  std::string Key(std::uint32_t version = 3) {
    return core::keys::ModelCalibration("s1", version)->str();
  }
  // Overwrites one field of the stored hash, as a damaged store would hold it.
  void Damage(const char* field, std::string value) {
    ASSERT_TRUE(store_.HashSet(*core::keys::ModelCalibration("s1", 3), {{field, value}}).ok());
  }

  core::testing::FakeStateStore store_;
  StudyStore studies_{store_};
};

TEST_F(CalibrationStoreTest, RoundTripKeepsEveryValue) {
  const VersionCalibration c = Example();
  ASSERT_TRUE(studies_.SaveCalibration("s1", c).ok());
  auto loaded = studies_.LoadCalibration("s1", 3);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_TRUE(loaded->has_value());
  const VersionCalibration& l = **loaded;
  EXPECT_EQ(l.version, 3u);
  EXPECT_EQ(l.samples, 10u);
  EXPECT_EQ(l.tasks, c.tasks);
  ASSERT_EQ(l.histograms.size(), 2u);
  for (std::size_t t = 0; t < 2; ++t) {
    EXPECT_EQ(l.histograms[t].neg, c.histograms[t].neg) << t;
    EXPECT_EQ(l.histograms[t].pos, c.histograms[t].pos) << t;
  }
  EXPECT_EQ(l.embedding.rows, 25u);
  EXPECT_EQ(l.embedding.sum, c.embedding.sum);
  EXPECT_EQ(l.embedding.sum_squares, c.embedding.sum_squares);
  EXPECT_EQ(l.domain_histogram, c.domain_histogram);
}

// A calibration whose domain stage did not happen stores and loads with an
// empty domain histogram; another version has none at all.
TEST_F(CalibrationStoreTest, EmptyDomainHistogramAndMissingVersion) {
  VersionCalibration c = Example();
  c.domain_histogram.clear();
  ASSERT_TRUE(studies_.SaveCalibration("s1", c).ok());
  auto loaded = studies_.LoadCalibration("s1", 3);
  ASSERT_TRUE(loaded.ok() && loaded->has_value()) << loaded.status();
  EXPECT_TRUE((*loaded)->domain_histogram.empty());
  EXPECT_EQ((*loaded)->embedding.sum, c.embedding.sum);
  auto none = studies_.LoadCalibration("s1", 4);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
}

TEST_F(CalibrationStoreTest, InconsistentCalibrationIsRefusedOnSave) {
  VersionCalibration c = Example();
  c.histograms.pop_back();
  EXPECT_EQ(studies_.SaveCalibration("s1", c).where(), "VersionCalibration.histograms");
  c = Example();
  c.histograms[1].pos.push_back(0);
  EXPECT_EQ(studies_.SaveCalibration("s1", c).where(), "VersionCalibration.histograms[1]");
  c = Example();
  c.histograms[0].neg[0] = 6;  // 6 + 1 + 2 + 3 = 12 rows counted, 10 samples
  EXPECT_EQ(studies_.SaveCalibration("s1", c).where(), "VersionCalibration.histograms[0]");
  c = Example();
  c.domain_histogram = {11};
  EXPECT_EQ(studies_.SaveCalibration("s1", c).where(), "VersionCalibration.domain_histogram");
  c = Example();
  c.embedding.sum_squares[1] = -1;
  EXPECT_EQ(studies_.SaveCalibration("s1", c).where(),
            "VersionCalibration.embedding.sum_squares[1]");
  c = Example();
  c.tasks[1] = "a\nb";
  EXPECT_EQ(studies_.SaveCalibration("s1", c).where(), "VersionCalibration.tasks[1]");
  EXPECT_EQ(studies_.SaveCalibration("bad id", Example()).code(), StatusCode::kInvalidArgument);
  // Nothing was stored by the refused saves.
  auto loaded = studies_.LoadCalibration("s1", 3);
  ASSERT_TRUE(loaded.ok());
  EXPECT_FALSE(loaded->has_value());
}

// Each kind of damage loads as kDataLoss whose `where` is the key.
TEST_F(CalibrationStoreTest, CorruptBlobsLoadAsDataLossNamingTheKey) {
  struct Case {
    const char* field;
    std::string value;
  };
  std::string nan_moments(6 * sizeof(double), '\0');
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::memcpy(nan_moments.data(), &nan, sizeof nan);
  std::string too_many(4 * sizeof(std::uint64_t), '\0');
  const std::uint64_t eleven = 11;
  std::memcpy(too_many.data(), &eleven, sizeof eleven);
  const std::vector<Case> cases = {
      {"histograms", std::string(47, '\0')},         // ragged: not 2 x 2 x 3 counts
      {"embedding_moments", std::string(40, '\0')},  // 5 doubles, 6 expected
      {"embedding_moments", nan_moments},            // not finite
      {"domain_histogram", std::string(8, '\0')},    // 1 count, 4 bins declared
      {"domain_histogram", too_many},                // 11 rows scored of 10
      {"bins", "x3"},                                // not a number
      {"bins", "0"},                                 // no bins
      {"version", "4"},                              // another version's
      {"format", "9"},                               // a format this code does not know
      {"tasks", ""},                                 // no tasks
  };
  for (const Case& k : cases) {
    ASSERT_TRUE(studies_.SaveCalibration("s1", Example()).ok());
    Damage(k.field, k.value);
    auto loaded = studies_.LoadCalibration("s1", 3);
    ASSERT_FALSE(loaded.ok()) << k.field << " = '" << k.value << "' loaded";
    EXPECT_EQ(loaded.status().code(), StatusCode::kDataLoss) << k.field;
    EXPECT_EQ(loaded.status().where(), Key()) << k.field;
  }
}

}  // namespace
}  // namespace fedrx::coordinator
