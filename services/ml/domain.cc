#include "services/ml/domain.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "services/ml/metrics.h"

namespace fedrx::ml {
namespace {

bool Empty(const EmbeddingMoments& m) {
  return m.rows == 0 && m.sum.empty() && m.sum_squares.empty();
}

std::string At(const std::string& where, const char* field, std::size_t k) {
  return where + "." + field + "[" + std::to_string(k) + "]";
}

}  // namespace

core::Result<EmbeddingMoments> MomentsOf(std::span<const float> embeddings, std::size_t dims) {
  if (dims == 0) return core::InvalidArgument("an embedding has at least one unit", "dims");
  if (embeddings.size() % dims != 0) {
    return core::InvalidArgument("embedding values (" + std::to_string(embeddings.size()) +
                                     ") are not a whole number of rows of " + std::to_string(dims),
                                 "embeddings");
  }
  EmbeddingMoments m;
  m.rows = embeddings.size() / dims;
  m.sum.assign(dims, 0.0);
  m.sum_squares.assign(dims, 0.0);
  for (std::size_t i = 0; i < embeddings.size(); ++i) {
    const double e = embeddings[i];
    if (!std::isfinite(e)) {
      return core::InvalidArgument(
          "embedding value is not finite",
          "embeddings[" + std::to_string(i / dims) + "][" + std::to_string(i % dims) + "]");
    }
    m.sum[i % dims] += e;
    m.sum_squares[i % dims] += e * e;
  }
  return m;
}

core::Status ValidateMoments(const EmbeddingMoments& m, const std::string& where) {
  if (m.sum.size() != m.sum_squares.size()) {
    return core::InvalidArgument("sum has " + std::to_string(m.sum.size()) +
                                     " dimensions, sum_squares " +
                                     std::to_string(m.sum_squares.size()),
                                 where + ".sum_squares");
  }
  for (std::size_t k = 0; k < m.sum.size(); ++k) {
    if (!std::isfinite(m.sum[k])) {
      return core::InvalidArgument("sum is not finite", At(where, "sum", k));
    }
    if (!std::isfinite(m.sum_squares[k]) || m.sum_squares[k] < 0) {
      return core::InvalidArgument("a sum of squares is finite and >= 0",
                                   At(where, "sum_squares", k));
    }
    if (m.rows == 0 && (m.sum[k] != 0 || m.sum_squares[k] != 0)) {
      return core::InvalidArgument("the moments of 0 rows are 0", At(where, "sum", k));
    }
  }
  return core::Status::Ok();
}

core::Status MergeMoments(EmbeddingMoments& into, const EmbeddingMoments& add) {
  FEDRX_RETURN_IF_ERROR(ValidateMoments(into, "into"));
  FEDRX_RETURN_IF_ERROR(ValidateMoments(add, "add"));
  if (Empty(add)) return core::Status::Ok();
  if (Empty(into)) {
    into = add;
    return core::Status::Ok();
  }
  if (add.sum.size() != into.sum.size()) {
    return core::InvalidArgument("moments of " + std::to_string(add.sum.size()) +
                                     " dimensions cannot be added to moments of " +
                                     std::to_string(into.sum.size()),
                                 "add.sum");
  }
  if (add.rows > std::numeric_limits<std::uint64_t>::max() - into.rows) {
    return core::InvalidArgument("the row count would overflow", "add.rows");
  }
  std::vector<double> sum = into.sum, squares = into.sum_squares;
  for (std::size_t k = 0; k < sum.size(); ++k) {
    sum[k] += add.sum[k];
    squares[k] += add.sum_squares[k];
    if (!std::isfinite(sum[k]) || !std::isfinite(squares[k])) {
      return core::InvalidArgument("the merged sums would overflow", At("add", "sum", k));
    }
  }
  into.rows += add.rows;
  into.sum = std::move(sum);
  into.sum_squares = std::move(squares);
  return core::Status::Ok();
}

core::Result<EmbeddingReference> ReferenceFromMoments(const EmbeddingMoments& m) {
  FEDRX_RETURN_IF_ERROR(ValidateMoments(m, "moments"));
  if (m.rows == 0) return core::InvalidArgument("no rows behind the moments", "moments.rows");
  if (m.sum.empty()) {
    return core::InvalidArgument("the moments have no dimensions", "moments.sum");
  }
  const std::size_t dims = m.sum.size();
  const double n = static_cast<double>(m.rows);
  EmbeddingReference ref;
  ref.mean.resize(dims);
  std::vector<double> sd(dims);
  std::vector<double> varying;
  for (std::size_t k = 0; k < dims; ++k) {
    ref.mean[k] = m.sum[k] / n;
    // E[e^2] - E[e]^2 can come out slightly negative by rounding.
    sd[k] = std::sqrt(std::max(0.0, m.sum_squares[k] / n - ref.mean[k] * ref.mean[k]));
    if (sd[k] > 0) varying.push_back(sd[k]);
  }
  double floor = kAbsoluteScaleFloor;
  if (!varying.empty()) {
    // The median (upper median for an even count: no averaging needed for a floor).
    auto mid = varying.begin() + static_cast<std::ptrdiff_t>(varying.size() / 2);
    std::nth_element(varying.begin(), mid, varying.end());
    floor = std::max(floor, kRelativeScaleFloor * *mid);
  }
  ref.scale.resize(dims);
  for (std::size_t k = 0; k < dims; ++k) ref.scale[k] = std::max(sd[k], floor);
  return ref;
}

core::Status ValidateReference(const EmbeddingReference& ref, std::size_t dims,
                               const std::string& where) {
  if (dims == 0) return core::InvalidArgument("an embedding has at least one unit", where);
  if (ref.mean.size() != dims) {
    return core::InvalidArgument("mean has " + std::to_string(ref.mean.size()) +
                                     " values, the embedding " + std::to_string(dims),
                                 where + ".mean");
  }
  if (ref.scale.size() != dims) {
    return core::InvalidArgument("scale has " + std::to_string(ref.scale.size()) +
                                     " values, the embedding " + std::to_string(dims),
                                 where + ".scale");
  }
  for (std::size_t k = 0; k < dims; ++k) {
    if (!std::isfinite(ref.mean[k])) {
      return core::InvalidArgument("mean is not finite", At(where, "mean", k));
    }
    if (!std::isfinite(ref.scale[k]) || !(ref.scale[k] >= kAbsoluteScaleFloor)) {
      return core::InvalidArgument("scale is finite and at least 1e-6", At(where, "scale", k));
    }
  }
  return core::Status::Ok();
}

double DomainScore(std::span<const float> embedding, const EmbeddingReference& ref) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const std::size_t dims = embedding.size();
  if (dims == 0 || ref.mean.size() != dims || ref.scale.size() != dims) return nan;
  double squares = 0;
  for (std::size_t k = 0; k < dims; ++k) {
    if (!(ref.scale[k] > 0) || !std::isfinite(embedding[k]) || !std::isfinite(ref.mean[k])) {
      return nan;
    }
    const double z = (static_cast<double>(embedding[k]) - ref.mean[k]) / ref.scale[k];
    squares += z * z;
  }
  // Finite inputs can still overflow the sum: as far as it gets.
  const double s = std::sqrt(squares / static_cast<double>(dims));
  if (std::isinf(s)) return 1.0;
  return s / (1.0 + s);
}

core::Result<std::vector<std::uint64_t>> DomainHistogram(std::span<const float> embeddings,
                                                         const EmbeddingReference& ref,
                                                         std::size_t bins) {
  if (bins == 0 || bins > kMaxHistogramBins) {
    return core::InvalidArgument("bins is 1.." + std::to_string(kMaxHistogramBins), "bins");
  }
  const std::size_t dims = ref.mean.size();
  FEDRX_RETURN_IF_ERROR(ValidateReference(ref, dims, "reference"));
  if (embeddings.size() % dims != 0) {
    return core::InvalidArgument("embedding values (" + std::to_string(embeddings.size()) +
                                     ") are not a whole number of rows of " + std::to_string(dims),
                                 "embeddings");
  }
  std::vector<std::uint64_t> counts(bins, 0);
  const std::size_t rows = embeddings.size() / dims;
  for (std::size_t i = 0; i < rows; ++i) {
    const double u = DomainScore(embeddings.subspan(i * dims, dims), ref);
    if (std::isnan(u)) {
      return core::InvalidArgument("embedding holds a value that is not finite",
                                   "embeddings[" + std::to_string(i) + "]");
    }
    const auto b = static_cast<std::size_t>(u * static_cast<double>(bins));
    ++counts[std::min(b, bins - 1)];
  }
  return counts;
}

}  // namespace fedrx::ml
