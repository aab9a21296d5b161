// Applicability domain from the trunk's embedding: sites sum the last hidden
// layer over their training rows (EmbeddingMoments, only sums leave a site),
// the platform merges the sums into a reference (mean and scale per unit),
// and a structure's DomainScore says how far its embedding lies from the
// training rows. Pure functions; thread-compatible.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "services/core/status.h"

namespace fedrx::ml {

// Per-dimension sums and sums of squares of embeddings over `rows` rows.
// Empty vectors with rows == 0 are the neutral element of MergeMoments.
struct EmbeddingMoments {
  std::uint64_t rows = 0;
  std::vector<double> sum, sum_squares;
};

// The moments of `embeddings` (row-major, rows x dims, as
// PredictWithEmbedding returns them). InvalidArgument when dims is 0, the
// size is not a multiple of dims, or a value is not finite.
core::Result<EmbeddingMoments> MomentsOf(std::span<const float> embeddings, std::size_t dims);

// Checks moments from outside: sum and sum_squares of one size, finite,
// sums of squares >= 0, all zero when rows == 0. `where` names the field.
core::Status ValidateMoments(const EmbeddingMoments& m, const std::string& where);

// Adds `add` into `into`. An empty `into` (no rows, no dimensions) takes
// `add`'s shape; an empty `add` changes nothing. InvalidArgument when either
// is invalid (ValidateMoments), the dimensions differ, or the row count would
// overflow; `into` is unchanged then.
core::Status MergeMoments(EmbeddingMoments& into, const EmbeddingMoments& add);

// Where the training rows lie: per unit, the mean and the scale that
// DomainScore divides by.
struct EmbeddingReference {
  std::vector<double> mean, scale;
};

// The scale floor. A unit's scale is its (population) standard deviation,
// but at least
//   kRelativeScaleFloor x the median standard deviation of the units that
//   vary at all (sd > 0), and at least kAbsoluteScaleFloor.
// A unit never active in training (a dead ReLU: mean 0, sd 0) so gets a tenth
// of a typical unit's spread instead of dividing by 0: a query that does
// activate it, by a typical amount, stands about 10 scales off on that unit,
// which raises the score without one unit saturating it. The absolute floor
// only matters when no unit varies (a degenerate model).
inline constexpr double kRelativeScaleFloor = 0.1;
inline constexpr double kAbsoluteScaleFloor = 1e-6;

// The reference of summed training moments: mean = sum / rows, sd =
// sqrt(max(0, sum_squares / rows - mean^2)), scale = sd with the floor above.
// InvalidArgument when the moments are invalid, have no rows or no
// dimensions.
core::Result<EmbeddingReference> ReferenceFromMoments(const EmbeddingMoments& m);

// Checks a reference from outside against `dims` units: mean and scale of
// that size, finite, every scale >= kAbsoluteScaleFloor. `where` names the
// message or tensor.
core::Status ValidateReference(const EmbeddingReference& ref, std::size_t dims,
                               const std::string& where);

// u = s / (1 + s), s = sqrt(mean_k ((e_k - mean_k) / scale_k)^2): 0 at the
// training mean, towards 1 far from it; in [0, 1) (exactly 1 only when s is
// too large for the quotient to be told from 1). NaN when the sizes differ,
// the embedding is empty, a value is not finite or a scale is not positive
// (ValidateReference first to rule that out).
double DomainScore(std::span<const float> embedding, const EmbeddingReference& ref);

// Counts of the DomainScore of each row of `embeddings` (row-major, rows x
// ref.mean.size()) in `bins` equal bins over [0, 1): bin b holds
// [b/bins, (b+1)/bins), a score of 1 goes to the last bin. InvalidArgument
// when the reference is invalid, the size is not a multiple of its
// dimensions, a value is not finite, or bins is 0 or above kMaxHistogramBins
// (metrics.h).
core::Result<std::vector<std::uint64_t>> DomainHistogram(std::span<const float> embeddings,
                                                         const EmbeddingReference& ref,
                                                         std::size_t bins);

}  // namespace fedrx::ml
