#include "services/coordinator/robust_strategy.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

namespace fedrx::coordinator {
namespace {

core::Status WrongSize(std::size_t got, std::size_t want) {
  return core::InvalidArgument(
      "update has " + std::to_string(got) + " parameters, the model has " + std::to_string(want),
      "update");
}

// Parameters gathered per pass, so the strided reads of one column of
// updates are batched into cache-friendly blocks.
constexpr std::size_t kBlock = 256;

// Calls fn(j, column) for each parameter j with column[i] = updates[i][j].
template <typename Fn>
void ForEachColumn(const float* updates, std::size_t n, std::size_t parameters, Fn&& fn) {
  std::vector<float> block(kBlock * n);
  std::vector<float> column(n);
  for (std::size_t j0 = 0; j0 < parameters; j0 += kBlock) {
    const std::size_t width = std::min(kBlock, parameters - j0);
    for (std::size_t i = 0; i < n; ++i) {
      const float* row = updates + i * parameters + j0;
      for (std::size_t c = 0; c < width; ++c) block[c * n + i] = row[c];
    }
    for (std::size_t c = 0; c < width; ++c) {
      std::copy(block.begin() + c * n, block.begin() + (c + 1) * n, column.begin());
      fn(j0 + c, std::span<float>(column));
    }
  }
}

}  // namespace

void BufferedStrategy::Begin(std::size_t parameters) {
  parameters_ = parameters;
  count_ = 0;
  updates_.clear();
}

core::Status BufferedStrategy::Accept(std::span<const float> update, double weight) {
  if (update.size() != parameters_) return WrongSize(update.size(), parameters_);
  if (!(weight > 0)) return core::InvalidArgument("update weight must be positive", "num_samples");
  updates_.insert(updates_.end(), update.begin(), update.end());
  ++count_;
  return core::Status::Ok();
}

core::Result<std::vector<float>> BufferedStrategy::Finish() {
  if (count_ == 0) return core::FailedPrecondition("no update was accepted", "round");
  std::vector<float> out(parameters_);
  core::Status s = Combine(updates_.data(), count_, parameters_, out);
  count_ = 0;
  std::vector<float>().swap(updates_);  // give the n x model back now
  if (!s.ok()) return s;
  return out;
}

core::Status CoordinateMedian::Combine(const float* updates, std::size_t n,
                                       std::size_t parameters, std::vector<float>& out) {
  const std::size_t mid = n / 2;
  ForEachColumn(updates, n, parameters, [&](std::size_t j, std::span<float> col) {
    std::nth_element(col.begin(), col.begin() + static_cast<std::ptrdiff_t>(mid), col.end());
    const float upper = col[mid];
    if (n % 2 == 1) {
      out[j] = upper;
    } else {
      const float lower = *std::max_element(col.begin(), col.begin() + static_cast<std::ptrdiff_t>(mid));
      out[j] = static_cast<float>((static_cast<double>(lower) + upper) / 2);
    }
  });
  return core::Status::Ok();
}

core::Status TrimmedMean::Combine(const float* updates, std::size_t n, std::size_t parameters,
                                  std::vector<float>& out) {
  const auto trim = static_cast<std::size_t>(std::floor(beta_ * static_cast<double>(n)));
  if (2 * trim >= n) {
    return core::FailedPrecondition("trimming " + std::to_string(trim) + " from each side of " +
                                        std::to_string(n) + " updates leaves none",
                                    "StudySpec.trim_fraction");
  }
  const std::size_t kept = n - 2 * trim;
  ForEachColumn(updates, n, parameters, [&](std::size_t j, std::span<float> col) {
    std::sort(col.begin(), col.end());
    double sum = 0;
    for (std::size_t i = trim; i < n - trim; ++i) sum += col[i];
    out[j] = static_cast<float>(sum / static_cast<double>(kept));
  });
  return core::Status::Ok();
}

core::Status Krum::Combine(const float* updates, std::size_t n, std::size_t parameters,
                           std::vector<float>& out) {
  const std::size_t f = byzantine_;
  if (n < 2 * f + 3) {
    return core::FailedPrecondition("Krum with f = " + std::to_string(f) + " needs at least " +
                                        std::to_string(2 * f + 3) + " updates, got " +
                                        std::to_string(n),
                                    "StudySpec.krum_byzantine");
  }
  // Pairwise squared distances, in double.
  std::vector<double> d(n * n, 0.0);
  for (std::size_t a = 0; a < n; ++a) {
    const float* x = updates + a * parameters;
    for (std::size_t b = a + 1; b < n; ++b) {
      const float* y = updates + b * parameters;
      double s = 0;
      for (std::size_t j = 0; j < parameters; ++j) {
        const double t = static_cast<double>(x[j]) - y[j];
        s += t * t;
      }
      d[a * n + b] = d[b * n + a] = s;
    }
  }
  // score(i): the sum over its n - f - 2 nearest neighbours.
  const std::size_t neighbours = n - f - 2;
  std::vector<double> score(n), row;
  for (std::size_t i = 0; i < n; ++i) {
    row.clear();
    for (std::size_t k = 0; k < n; ++k) {
      if (k != i) row.push_back(d[i * n + k]);
    }
    std::partial_sort(row.begin(), row.begin() + static_cast<std::ptrdiff_t>(neighbours), row.end());
    score[i] = std::accumulate(row.begin(), row.begin() + static_cast<std::ptrdiff_t>(neighbours), 0.0);
  }
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return score[a] < score[b]; });
  std::size_t m = selected_ == 0 ? n - f : std::min<std::size_t>(selected_, n - f);
  chosen_.assign(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(m));
  std::vector<double> sum(parameters, 0.0);
  for (std::size_t i : chosen_) {
    const float* x = updates + i * parameters;
    for (std::size_t j = 0; j < parameters; ++j) sum[j] += x[j];
  }
  for (std::size_t j = 0; j < parameters; ++j) {
    out[j] = static_cast<float>(sum[j] / static_cast<double>(m));
  }
  return core::Status::Ok();
}

void NormBounded::Begin(std::size_t parameters) {
  has_global_ = false;
  global_ = {};
  mean_.assign(parameters, 0.0f);
  total_weight_ = 0;
  accepted_ = 0;
  clipped_ = 0;
}

void NormBounded::BeginFrom(std::span<const float> global) {
  Begin(global.size());
  global_ = global;
  has_global_ = true;
}

core::Status NormBounded::Accept(std::span<const float> update, double weight) {
  if (!has_global_) {
    return core::FailedPrecondition("norm bounding needs the global model (BeginFrom)", "round");
  }
  if (update.size() != mean_.size()) return WrongSize(update.size(), mean_.size());
  if (!(weight > 0)) return core::InvalidArgument("update weight must be positive", "num_samples");
  const std::size_t n = mean_.size();
  const float* g = global_.data();
  const float* x = update.data();
  double sq = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double t = static_cast<double>(x[i]) - g[i];
    sq += t * t;
  }
  const double norm = std::sqrt(sq);
  const float scale = norm > bound_ ? static_cast<float>(bound_ / norm) : 1.0f;
  if (norm > bound_) ++clipped_;
  total_weight_ += weight;
  const float step = static_cast<float>(weight / total_weight_);
  float* m = mean_.data();
  for (std::size_t i = 0; i < n; ++i) {
    const float clipped = g[i] + scale * (x[i] - g[i]);
    m[i] += step * (clipped - m[i]);
  }
  ++accepted_;
  return core::Status::Ok();
}

core::Result<std::vector<float>> NormBounded::Finish() {
  if (accepted_ == 0) return core::FailedPrecondition("no update was accepted", "round");
  accepted_ = 0;
  total_weight_ = 0;
  has_global_ = false;
  global_ = {};
  return std::move(mean_);
}

}  // namespace fedrx::coordinator
