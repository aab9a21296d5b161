#include "services/ml/model.h"

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <string>
#include <thread>

#include "services/ml/net_kernels.h"
#include "services/core/random.h"

namespace fedrx::ml {
namespace {

using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MatMap = Eigen::Map<RowMajor>;
using ConstMatMap = Eigen::Map<const RowMajor>;
using ConstRowVec = Eigen::Map<const Eigen::RowVectorXf>;

// Rows per inference chunk: fixed, so a row's result never depends on how many
// threads shared the work.
constexpr std::size_t kPredictChunk = 64;

float Sigmoid(float z) {
  // Split by sign so exp never overflows.
  if (z >= 0) return 1.0f / (1.0f + std::exp(-z));
  const float e = std::exp(z);
  return e / (1.0f + e);
}

// Forward pass of rows [begin, end) of x into probs (row-major, num_tasks
// wide) and, when `embedding` is not null, the last hidden layer's
// activations into it (row-major, hidden.back() wide).
void PredictChunk(const NetSpec& spec, std::span<const float> params,
                  const std::vector<LayerLayout>& layout, const SparseRows& x, std::size_t begin,
                  std::size_t end, std::vector<float>& a, std::vector<float>& b, float* probs,
                  float* embedding) {
  const std::size_t n = end - begin;
  std::vector<std::size_t> rows(n);
  for (std::size_t i = 0; i < n; ++i) rows[i] = begin + i;
  const LayerLayout& first = layout.front();
  a.resize(n * first.out);
  internal::SparseForward(x, rows, params.data() + first.offset,
                          params.data() + first.bias_offset(), first.out, a.data());
  for (float& v : a) v = std::max(v, 0.0f);
  // Layers 0 .. layout.size() - 2 are the trunk's; the last is the output.
  const std::size_t last_hidden = layout.size() - 2;
  if (embedding != nullptr && last_hidden == 0) std::copy(a.begin(), a.end(), embedding);
  for (std::size_t l = 1; l < layout.size(); ++l) {
    const LayerLayout& ly = layout[l];
    b.resize(n * ly.out);
    MatMap z(b.data(), static_cast<Eigen::Index>(n), ly.out);
    z.noalias() = ConstMatMap(a.data(), static_cast<Eigen::Index>(n), ly.in) *
                  ConstMatMap(params.data() + ly.offset, ly.in, ly.out);
    z.rowwise() += ConstRowVec(params.data() + ly.bias_offset(), ly.out);
    if (l + 1 < layout.size()) {
      for (float& v : b) v = std::max(v, 0.0f);
    }
    std::swap(a, b);
    if (embedding != nullptr && l == last_hidden) std::copy(a.begin(), a.end(), embedding);
  }
  for (std::size_t i = 0; i < n * spec.num_tasks; ++i) probs[i] = Sigmoid(a[i]);
}

}  // namespace

core::Status ValidateSpec(const NetSpec& spec) {
  if (spec.input_dim == 0) return core::InvalidArgument("input_dim is 0", "NetSpec.input_dim");
  if (spec.num_tasks == 0) return core::InvalidArgument("num_tasks is 0", "NetSpec.num_tasks");
  if (spec.hidden.empty()) {
    return core::InvalidArgument("no hidden layer (the first layer is the sparse one)",
                                 "NetSpec.hidden");
  }
  for (std::size_t i = 0; i < spec.hidden.size(); ++i) {
    if (spec.hidden[i] == 0) {
      return core::InvalidArgument("hidden layer width is 0",
                                   "NetSpec.hidden[" + std::to_string(i) + "]");
    }
  }
  if (!(spec.dropout >= 0.0f && spec.dropout < 1.0f)) {
    return core::InvalidArgument("dropout " + std::to_string(spec.dropout) + " is not in [0, 1)",
                                 "NetSpec.dropout");
  }
  // Each layer's size fits in 64 bits (32-bit factors); saturate the running
  // total so it cannot wrap.
  std::size_t total = 0;
  std::uint64_t in = spec.input_dim;
  auto add_layer = [&](std::uint64_t out) {
    const std::uint64_t size = in * out + out;
    total = (size > kMaxParameters || total + size > kMaxParameters) ? kMaxParameters + 1
                                                                      : total + size;
    in = out;
  };
  for (std::uint32_t h : spec.hidden) add_layer(h);
  add_layer(spec.num_tasks);
  if (total > kMaxParameters) {
    return core::InvalidArgument(
        "network has more than " + std::to_string(kMaxParameters) + " parameters", "NetSpec");
  }
  return core::Status::Ok();
}

std::vector<LayerLayout> Layout(const NetSpec& spec) {
  std::vector<LayerLayout> layers;
  layers.reserve(spec.hidden.size() + 1);
  std::uint32_t in = spec.input_dim;
  std::size_t offset = 0;
  auto add = [&](std::uint32_t out) {
    layers.push_back(LayerLayout{in, out, offset});
    offset = layers.back().end();
    in = out;
  };
  for (std::uint32_t h : spec.hidden) add(h);
  add(spec.num_tasks);
  return layers;
}

std::size_t ParameterCount(const NetSpec& spec) { return Layout(spec).back().end(); }

std::size_t TrunkParameterCount(const NetSpec& spec) { return Layout(spec).back().offset; }

LayerView<const float> Layer(const NetSpec& spec, std::span<const float> params,
                             std::size_t layer) {
  const LayerLayout ly = Layout(spec).at(layer);
  return {ly.in, ly.out, params.subspan(ly.offset, ly.weight_count()),
          params.subspan(ly.bias_offset(), ly.out)};
}

LayerView<float> Layer(const NetSpec& spec, std::span<float> params, std::size_t layer) {
  const LayerLayout ly = Layout(spec).at(layer);
  return {ly.in, ly.out, params.subspan(ly.offset, ly.weight_count()),
          params.subspan(ly.bias_offset(), ly.out)};
}

std::vector<float> InitParameters(const NetSpec& spec, std::uint64_t seed) {
  const std::vector<LayerLayout> layout = Layout(spec);
  std::vector<float> params(layout.back().end());
  core::Xoshiro256 rng(seed);
  for (const LayerLayout& ly : layout) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(ly.in));
    for (std::size_t i = ly.offset; i < ly.end(); ++i) {
      params[i] = static_cast<float>((2.0 * rng.NextDouble() - 1.0) * bound);
    }
  }
  return params;
}

namespace {

// Size and finiteness of `params` against the layers of `layout`; `head` says
// whether the last entry is the head (for the error message).
core::Status CheckParameters(const std::vector<LayerLayout>& layout, bool head,
                             std::span<const float> params) {
  const std::size_t expected = layout.empty() ? 0 : layout.back().end();
  if (params.size() != expected) {
    return core::InvalidArgument("expected " + std::to_string(expected) + " parameters, got " +
                                     std::to_string(params.size()),
                                 "parameters");
  }
  // Fast path, vectorisable: x * 0 is 0 for every finite x and NaN for NaN
  // and +-Inf, so the sum is NaN exactly when some parameter is not finite.
  // The per-element search below runs only then, to name the culprit.
  float poison[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  const float* p = params.data();
  const std::size_t n = params.size();
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int k = 0; k < 8; ++k) poison[k] += p[i + k] * 0.0f;
  }
  for (; i < n; ++i) poison[0] += p[i] * 0.0f;
  float any = 0;
  for (float v : poison) any += v;
  if (any == 0.0f) return core::Status::Ok();
  for (std::size_t l = 0; l < layout.size(); ++l) {
    const LayerLayout& ly = layout[l];
    for (std::size_t i = ly.offset; i < ly.end(); ++i) {
      if (std::isfinite(params[i])) continue;
      const bool is_weight = i < ly.bias_offset();
      const std::size_t local = is_weight ? i - ly.offset : i - ly.bias_offset();
      std::string where = "parameters[" + std::to_string(i) + "] = layer " + std::to_string(l) +
                          (head && l + 1 == layout.size() ? " (head) " : " ");
      where += is_weight ? "W[" + std::to_string(local / ly.out) + "][" +
                               std::to_string(local % ly.out) + "]"
                         : "b[" + std::to_string(local) + "]";
      return core::InvalidArgument(std::isnan(params[i]) ? "parameter is NaN"
                                                         : "parameter is infinite",
                                   where);
    }
  }
  return core::Status::Ok();
}

}  // namespace

core::Status ValidateParameters(const NetSpec& spec, std::span<const float> params) {
  FEDRX_RETURN_IF_ERROR(ValidateSpec(spec));
  return CheckParameters(Layout(spec), /*head=*/true, params);
}

std::size_t HeadParameterCount(const NetSpec& spec) {
  return std::size_t{spec.hidden.back()} * spec.num_tasks + spec.num_tasks;
}

NetSpec WithHead(NetSpec trunk, std::uint32_t num_tasks) {
  trunk.num_tasks = num_tasks;
  return trunk;
}

core::Status ValidateTrunkSpec(const NetSpec& spec) {
  // A one-task head stands in for the missing one: every trunk check is the
  // same, and the bound on the parameter count moves by hidden.back() + 1.
  return ValidateSpec(WithHead(spec, 1));
}

core::Status ValidateTrunkParameters(const NetSpec& spec, std::span<const float> params) {
  FEDRX_RETURN_IF_ERROR(ValidateTrunkSpec(spec));
  std::vector<LayerLayout> layout = Layout(spec);
  layout.pop_back();  // the head
  return CheckParameters(layout, /*head=*/false, params);
}

std::vector<float> InitHead(const NetSpec& spec, std::uint64_t seed) {
  const LayerLayout head = Layout(spec).back();
  std::vector<float> params(head.size());
  core::Xoshiro256 rng(seed);
  const double bound = 1.0 / std::sqrt(static_cast<double>(head.in));
  for (float& v : params) v = static_cast<float>((2.0 * rng.NextDouble() - 1.0) * bound);
  return params;
}

core::Result<std::vector<float>> JoinTrunkHead(const NetSpec& spec, std::span<const float> trunk,
                                               std::span<const float> head) {
  const std::size_t trunk_size = TrunkParameterCount(spec);
  const std::size_t head_size = HeadParameterCount(spec);
  if (trunk.size() != trunk_size) {
    return core::InvalidArgument("trunk has " + std::to_string(trunk.size()) +
                                     " parameters, the network's trunk " +
                                     std::to_string(trunk_size),
                                 "trunk");
  }
  if (head.size() != head_size) {
    return core::InvalidArgument("head has " + std::to_string(head.size()) +
                                     " parameters, the network's head " + std::to_string(head_size),
                                 "head");
  }
  std::vector<float> params;
  params.reserve(trunk_size + head_size);
  params.insert(params.end(), trunk.begin(), trunk.end());
  params.insert(params.end(), head.begin(), head.end());
  return params;
}

core::Status SplitTrunk(const NetSpec& spec, std::span<const float> params,
                        std::vector<float>& trunk, std::vector<float>& head) {
  const std::size_t trunk_size = TrunkParameterCount(spec);
  const std::size_t total = trunk_size + HeadParameterCount(spec);
  if (params.size() != total) {
    return core::InvalidArgument(
        "expected " + std::to_string(total) + " parameters, got " + std::to_string(params.size()),
        "parameters");
  }
  trunk.assign(params.begin(), params.begin() + static_cast<std::ptrdiff_t>(trunk_size));
  head.assign(params.begin() + static_cast<std::ptrdiff_t>(trunk_size), params.end());
  return core::Status::Ok();
}

core::Status ValidateInput(const NetSpec& spec, const SparseRows& x) {
  if (x.dim != spec.input_dim) {
    return core::InvalidArgument("input dim " + std::to_string(x.dim) + " != network input_dim " +
                                     std::to_string(spec.input_dim),
                                 "SparseRows.dim");
  }
  if (x.offsets.empty() || x.offsets.front() != 0 || x.offsets.back() != x.indices.size()) {
    return core::InvalidArgument("offsets do not span the indices", "SparseRows.offsets");
  }
  for (std::size_t r = 0; r < x.rows(); ++r) {
    if (x.offsets[r + 1] < x.offsets[r]) {
      return core::InvalidArgument("offsets decrease",
                                   "SparseRows.offsets[" + std::to_string(r + 1) + "]");
    }
    for (std::uint32_t j : x.row(r)) {
      if (j >= spec.input_dim) {
        return core::InvalidArgument("bit index " + std::to_string(j) + " >= input_dim " +
                                         std::to_string(spec.input_dim),
                                     "SparseRows row " + std::to_string(r));
      }
    }
  }
  return core::Status::Ok();
}

namespace {

// Predict and PredictWithEmbedding: `embedding` empty means not wanted.
core::Status Forward(const NetSpec& spec, std::span<const float> params, const SparseRows& x,
                     int threads, std::vector<float>& probs, std::vector<float>* embedding) {
  FEDRX_RETURN_IF_ERROR(ValidateParameters(spec, params));
  FEDRX_RETURN_IF_ERROR(ValidateInput(spec, x));
  const std::vector<LayerLayout> layout = Layout(spec);
  const std::size_t n = x.rows();
  probs.assign(n * spec.num_tasks, 0.0f);
  const std::size_t width = spec.hidden.back();
  if (embedding != nullptr) embedding->assign(n * width, 0.0f);
  const std::size_t chunks = (n + kPredictChunk - 1) / kPredictChunk;
  const std::size_t workers = std::min<std::size_t>(static_cast<std::size_t>(std::max(threads, 1)),
                                                    std::max<std::size_t>(chunks, 1));
  // Chunk c goes to worker c % workers: every chunk is computed the same way.
  auto work = [&](std::size_t w) {
    std::vector<float> a, b;
    for (std::size_t c = w; c < chunks; c += workers) {
      const std::size_t begin = c * kPredictChunk;
      const std::size_t end = std::min(n, begin + kPredictChunk);
      PredictChunk(spec, params, layout, x, begin, end, a, b,
                   probs.data() + begin * spec.num_tasks,
                   embedding != nullptr ? embedding->data() + begin * width : nullptr);
    }
  };
  std::vector<std::thread> pool;
  for (std::size_t w = 1; w < workers; ++w) pool.emplace_back(work, w);
  work(0);
  for (std::thread& t : pool) t.join();
  return core::Status::Ok();
}

}  // namespace

core::Result<std::vector<float>> Predict(const NetSpec& spec, std::span<const float> params,
                                         const SparseRows& x, int threads) {
  std::vector<float> probs;
  FEDRX_RETURN_IF_ERROR(Forward(spec, params, x, threads, probs, nullptr));
  return probs;
}

core::Result<PredictionWithEmbedding> PredictWithEmbedding(const NetSpec& spec,
                                                           std::span<const float> params,
                                                           const SparseRows& x, int threads) {
  PredictionWithEmbedding out;
  FEDRX_RETURN_IF_ERROR(Forward(spec, params, x, threads, out.probabilities, &out.embedding));
  return out;
}

}  // namespace fedrx::ml
