#include "services/ml/domain.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

namespace fedrx::ml {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// Sums and sums of squares per unit: rows [1,0], [2,0], [3,4].
TEST(EmbeddingMomentsTest, SumsPerUnit) {
  const std::vector<float> e = {1, 0, 2, 0, 3, 4};
  auto m = MomentsOf(e, 2);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->rows, 3u);
  EXPECT_THAT(m->sum, ElementsAre(6.0, 4.0));
  EXPECT_THAT(m->sum_squares, ElementsAre(14.0, 16.0));
}

// Ragged input, zero units and non-finite values are refused with the place.
TEST(EmbeddingMomentsTest, RefusesRaggedAndNonFinite) {
  EXPECT_EQ(MomentsOf(std::vector<float>{1, 2, 3}, 2).status().where(), "embeddings");
  EXPECT_EQ(MomentsOf(std::vector<float>{1, 2}, 0).status().where(), "dims");
  auto nan = MomentsOf(std::vector<float>{1, 2, 3, kNaN}, 2);
  EXPECT_EQ(nan.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(nan.status().where(), "embeddings[1][1]");
}

// Merging adds rows and both sums unit by unit: {2 rows} + {3 rows}.
TEST(MergeMomentsTest, AddsRowsAndSums) {
  EmbeddingMoments into{2, {1, 2}, {1, 4}};
  ASSERT_TRUE(MergeMoments(into, EmbeddingMoments{3, {3, -1}, {5, 1}}).ok());
  EXPECT_EQ(into.rows, 5u);
  EXPECT_THAT(into.sum, ElementsAre(4.0, 1.0));
  EXPECT_THAT(into.sum_squares, ElementsAre(6.0, 5.0));
}

// An empty accumulator takes the first site's moments; an empty addition
// (a site without training rows) changes nothing.
TEST(MergeMomentsTest, EmptyIsNeutral) {
  EmbeddingMoments into;
  ASSERT_TRUE(MergeMoments(into, EmbeddingMoments{2, {1, 2}, {1, 4}}).ok());
  ASSERT_TRUE(MergeMoments(into, EmbeddingMoments{}).ok());
  EXPECT_EQ(into.rows, 2u);
  EXPECT_THAT(into.sum, ElementsAre(1.0, 2.0));
  EXPECT_THAT(into.sum_squares, ElementsAre(1.0, 4.0));
}

// Different dimensions, negative sums of squares, NaN, non-zero sums of no
// rows and row-count overflow are refused and leave the accumulator as it was.
TEST(MergeMomentsTest, RefusesInconsistentMomentsUnchanged) {
  EmbeddingMoments into{2, {1, 2}, {1, 4}};
  const EmbeddingMoments before = into;
  core::Status dims = MergeMoments(into, EmbeddingMoments{1, {1}, {1}});
  EXPECT_EQ(dims.code(), core::StatusCode::kInvalidArgument);
  EXPECT_THAT(dims.message(), HasSubstr("1 dimensions"));
  EXPECT_EQ(MergeMoments(into, EmbeddingMoments{1, {1, 1}, {1, -1}}).where(), "add.sum_squares[1]");
  EXPECT_EQ(MergeMoments(into, EmbeddingMoments{1, {std::nan(""), 1}, {1, 1}}).where(),
            "add.sum[0]");
  EXPECT_EQ(MergeMoments(into, EmbeddingMoments{0, {1, 0}, {1, 0}}).where(), "add.sum[0]");
  EXPECT_EQ(MergeMoments(into, EmbeddingMoments{1, {1}, {1, 1}}).where(), "add.sum_squares");
  EXPECT_EQ(MergeMoments(
                into, EmbeddingMoments{std::numeric_limits<std::uint64_t>::max(), {1, 1}, {1, 1}})
                .where(),
            "add.rows");
  EXPECT_EQ(into.rows, before.rows);
  EXPECT_EQ(into.sum, before.sum);
  EXPECT_EQ(into.sum_squares, before.sum_squares);
}

// The moments of four units over two rows:
//   unit 0: {0, 2}  mean 1, sd 1
//   unit 1: {0, 4}  mean 2, sd 2
//   unit 2: {1, 1}  mean 1, sd 0 (constant)
//   unit 3: {0, 0}  mean 0, sd 0 (never active)
// The units that vary have sds {1, 2}; their (upper) median 2 gives the floor
// 0.1 * 2 = 0.2 for units 2 and 3.
EmbeddingMoments FourUnits() { return EmbeddingMoments{2, {2, 4, 2, 0}, {4, 16, 2, 0}}; }

TEST(ReferenceFromMomentsTest, MeanAndFlooredScale) {
  auto ref = ReferenceFromMoments(FourUnits());
  ASSERT_TRUE(ref.ok()) << ref.status();
  EXPECT_THAT(ref->mean, ElementsAre(1.0, 2.0, 1.0, 0.0));
  ASSERT_EQ(ref->scale.size(), 4u);
  EXPECT_DOUBLE_EQ(ref->scale[0], 1.0);
  EXPECT_DOUBLE_EQ(ref->scale[1], 2.0);
  EXPECT_DOUBLE_EQ(ref->scale[2], 0.2);
  EXPECT_DOUBLE_EQ(ref->scale[3], 0.2);
}

// With an odd number of varying units the floor is a tenth of the middle one:
// sds {1, 3, 5} (rows {0,2}, {0,6}, {0,10}) -> floor 0.3 for the dead unit.
TEST(ReferenceFromMomentsTest, FloorFromMedianOfVaryingUnits) {
  auto ref = ReferenceFromMoments(EmbeddingMoments{2, {2, 6, 10, 0}, {4, 36, 100, 0}});
  ASSERT_TRUE(ref.ok()) << ref.status();
  EXPECT_DOUBLE_EQ(ref->scale[0], 1.0);
  EXPECT_DOUBLE_EQ(ref->scale[1], 3.0);
  EXPECT_DOUBLE_EQ(ref->scale[2], 5.0);
  EXPECT_DOUBLE_EQ(ref->scale[3], 0.3);
}

// When no unit varies the absolute floor is all that is left.
TEST(ReferenceFromMomentsTest, AbsoluteFloorWhenNothingVaries) {
  auto ref = ReferenceFromMoments(EmbeddingMoments{3, {0, 3}, {0, 3}});
  ASSERT_TRUE(ref.ok()) << ref.status();
  EXPECT_THAT(ref->mean, ElementsAre(0.0, 1.0));
  EXPECT_THAT(ref->scale, ElementsAre(kAbsoluteScaleFloor, kAbsoluteScaleFloor));
}

TEST(ReferenceFromMomentsTest, RefusesNoRowsOrNoUnits) {
  EXPECT_EQ(ReferenceFromMoments(EmbeddingMoments{}).status().where(), "moments.rows");
  EXPECT_EQ(ReferenceFromMoments(EmbeddingMoments{2, {}, {}}).status().where(), "moments.sum");
  EXPECT_EQ(ReferenceFromMoments(EmbeddingMoments{2, {1}, {-1}}).status().where(),
            "moments.sum_squares[0]");
}

// Scores by hand on the four-unit reference (mean [1,2,1,0], scale [1,2,.2,.2]):
//   at the mean: s = 0, u = 0;
//   [2,4,1,0]: z = [1,1,0,0], s = sqrt(2/4), u = s/(1+s) = sqrt(2) - 1;
//   [1,2,1,0.2]: the never-active unit alone, z = [0,0,0,1], s = 1/2, u = 1/3;
//   far away the score approaches 1 without reaching it.
TEST(DomainScoreTest, ValuesByHand) {
  auto ref = ReferenceFromMoments(FourUnits());
  ASSERT_TRUE(ref.ok());
  EXPECT_DOUBLE_EQ(DomainScore(std::vector<float>{1, 2, 1, 0}, *ref), 0.0);
  EXPECT_NEAR(DomainScore(std::vector<float>{2, 4, 1, 0}, *ref), std::sqrt(2.0) - 1, 1e-12);
  EXPECT_NEAR(DomainScore(std::vector<float>{1, 2, 1, 0.2f}, *ref), 1.0 / 3, 1e-7);
  const double far = DomainScore(std::vector<float>{1e6f, 2, 1, 0}, *ref);
  EXPECT_GT(far, 0.999);
  EXPECT_LT(far, 1.0);
}

// A unit that was never active in training still raises the score when a
// query activates it, and more the more it is activated.
TEST(DomainScoreTest, UnitActiveOnlyInQueryRaisesScore) {
  auto ref = ReferenceFromMoments(FourUnits());
  ASSERT_TRUE(ref.ok());
  const double quiet = DomainScore(std::vector<float>{1, 2, 1, 0}, *ref);
  const double some = DomainScore(std::vector<float>{1, 2, 1, 0.5f}, *ref);
  const double more = DomainScore(std::vector<float>{1, 2, 1, 2.0f}, *ref);
  EXPECT_LT(quiet, some);
  EXPECT_LT(some, more);
  EXPECT_TRUE(std::isfinite(more));
}

TEST(DomainScoreTest, NaNForMismatchOrNonFinite) {
  auto ref = ReferenceFromMoments(FourUnits());
  ASSERT_TRUE(ref.ok());
  EXPECT_TRUE(std::isnan(DomainScore(std::vector<float>{1, 2, 1}, *ref)));
  EXPECT_TRUE(std::isnan(DomainScore(std::vector<float>{1, 2, 1, kNaN}, *ref)));
  EXPECT_TRUE(std::isnan(DomainScore(std::vector<float>{}, EmbeddingReference{})));
  EXPECT_TRUE(std::isnan(DomainScore(std::vector<float>{1}, EmbeddingReference{{0}, {0}})));
}

// One unit, mean 0, scale 1: u = |e| / (1 + |e|); e = 0, 1, 3, -1 give
// u = 0, 1/2, 3/4, 1/2, counted in 4 bins over [0, 1).
TEST(DomainHistogramTest, CountsScoresInBins) {
  const EmbeddingReference ref{{0}, {1}};
  auto h = DomainHistogram(std::vector<float>{0, 1, 3, -1}, ref, 4);
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_THAT(*h, ElementsAre(1u, 0u, 2u, 1u));
}

TEST(DomainHistogramTest, RefusesBadInput) {
  const EmbeddingReference ref{{0, 0}, {1, 1}};
  EXPECT_EQ(DomainHistogram(std::vector<float>{0, 1}, ref, 0).status().where(), "bins");
  EXPECT_EQ(DomainHistogram(std::vector<float>{0, 1, 2}, ref, 4).status().where(), "embeddings");
  EXPECT_EQ(DomainHistogram(std::vector<float>{0, 1, 2, kNaN}, ref, 4).status().where(),
            "embeddings[1]");
  EXPECT_EQ(DomainHistogram(std::vector<float>{0, 1}, EmbeddingReference{{0, 0}, {1, 0}}, 4)
                .status()
                .where(),
            "reference.scale[1]");
}

TEST(ValidateReferenceTest, NamesTheWrongField) {
  const EmbeddingReference good{{0, 1}, {1, 0.5}};
  EXPECT_TRUE(ValidateReference(good, 2, "r").ok());
  EXPECT_EQ(ValidateReference(good, 3, "r").where(), "r.mean");
  EXPECT_EQ(ValidateReference(EmbeddingReference{{0, 1}, {1}}, 2, "r").where(), "r.scale");
  EXPECT_EQ(ValidateReference(EmbeddingReference{{0, std::nan("")}, {1, 1}}, 2, "r").where(),
            "r.mean[1]");
  EXPECT_EQ(ValidateReference(EmbeddingReference{{0, 1}, {1, -1}}, 2, "r").where(), "r.scale[1]");
  EXPECT_EQ(ValidateReference(EmbeddingReference{{}, {}}, 0, "r").code(),
            core::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace fedrx::ml
