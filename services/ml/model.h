// The fedrx multi-task network over sparse binary fingerprints: its shape
// (NetSpec), the layout of its one flat parameter vector, initialisation,
// validation of untrusted parameters, and inference. All functions are pure
// (no shared state); Predict may use several threads internally.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "services/core/status.h"
#include "services/ml/dataset.h"

namespace fedrx::ml {

// Shape of the network: a shared trunk of hidden layers (Linear -> ReLU ->
// dropout each; the first takes the sparse binary input) and a head, one
// Linear hidden.back() -> num_tasks, giving one logit per task.
struct NetSpec {
  std::uint32_t input_dim = 2048;
  std::vector<std::uint32_t> hidden = {512};
  std::uint32_t num_tasks = 12;
  // Probability of zeroing a hidden unit during training (inverted dropout:
  // kept units are scaled by 1 / (1 - dropout)). Never applied by Predict.
  float dropout = 0.2f;
};

// Upper bound on ParameterCount, so a hostile spec cannot ask for terabytes.
inline constexpr std::size_t kMaxParameters = std::size_t{1} << 30;

// OK when every dimension is positive, hidden is not empty, dropout is in
// [0, 1) and the parameter count is at most kMaxParameters.
core::Status ValidateSpec(const NetSpec& spec);

// Parameter layout. All parameters live in one contiguous float vector, layer
// after layer, input side first:
//   layer 0          W0 [input_dim][hidden[0]] row-major, then b0 [hidden[0]]
//   layer l (1..L-1) Wl [hidden[l-1]][hidden[l]],           then bl [hidden[l]]
//   layer L (head)   WL [hidden[L-1]][num_tasks],           then bL [num_tasks]
// with L = hidden.size(). Row i of W0 is the contribution of input bit i, so
// the first layer's forward pass is b0 plus the sum of the rows of the set
// bits. The trunk (layers 0..L-1) comes first, so parameters
// [0, TrunkParameterCount) are the trunk and the rest is the head.
struct LayerLayout {
  std::uint32_t in = 0;
  std::uint32_t out = 0;
  std::size_t offset = 0;  // of W; b follows at offset + in * out

  std::size_t weight_count() const { return std::size_t{in} * out; }
  std::size_t bias_offset() const { return offset + weight_count(); }
  std::size_t size() const { return weight_count() + out; }
  std::size_t end() const { return offset + size(); }
};

// One entry per layer (hidden.size() + 1 of them, the head last). The spec
// must be valid.
std::vector<LayerLayout> Layout(const NetSpec& spec);
std::size_t ParameterCount(const NetSpec& spec);
std::size_t TrunkParameterCount(const NetSpec& spec);

// Private heads (MELLODDY-style personalisation): the trunk (layers 0..L-1)
// is shared by every site of a study, the head (layer L) is sized by one
// site's own tasks and never leaves it. A trunk is described by a NetSpec
// whose num_tasks is ignored (0 in a private-heads study). Because the head
// is the last layer, a full network's parameters are [trunk][head]: the
// trunk is exactly the prefix of TrunkParameterCount values, and the trainer
// needs no change to train trunk and head together.
std::size_t HeadParameterCount(const NetSpec& spec);
// The network a site trains: `trunk`'s layers with a head of `num_tasks` outputs.
NetSpec WithHead(NetSpec trunk, std::uint32_t num_tasks);
// ValidateSpec for the trunk alone (num_tasks is not looked at).
core::Status ValidateTrunkSpec(const NetSpec& spec);
// OK when `params` holds TrunkParameterCount(spec) finite values; otherwise
// InvalidArgument as ValidateParameters. Used to reject untrusted trunks.
core::Status ValidateTrunkParameters(const NetSpec& spec, std::span<const float> params);
// Deterministic initial parameters of `spec`'s head alone (weights then
// biases, uniform in [-1/sqrt(in), 1/sqrt(in)] as InitParameters), from
// `seed`. The spec must be valid.
std::vector<float> InitHead(const NetSpec& spec, std::uint64_t seed);
// The full parameter vector [trunk][head] of a network of `spec`.
// InvalidArgument unless trunk has TrunkParameterCount(spec) values and head
// HeadParameterCount(spec).
core::Result<std::vector<float>> JoinTrunkHead(const NetSpec& spec, std::span<const float> trunk,
                                               std::span<const float> head);
// Splits a full parameter vector of `spec` into its trunk and head (both
// resized). InvalidArgument unless params has ParameterCount(spec) values.
core::Status SplitTrunk(const NetSpec& spec, std::span<const float> params,
                        std::vector<float>& trunk, std::vector<float>& head);

// A layer's weights (row-major [in][out]) and biases inside a parameter span.
template <typename T>
struct LayerView {
  std::uint32_t in = 0;
  std::uint32_t out = 0;
  std::span<T> weights;
  std::span<T> bias;

  T& w(std::size_t i, std::size_t j) const { return weights[i * out + j]; }
};

// Views of layer `layer` (0 .. hidden.size(); the last is the head). `params`
// must hold ParameterCount(spec) values.
LayerView<const float> Layer(const NetSpec& spec, std::span<const float> params,
                             std::size_t layer);
LayerView<float> Layer(const NetSpec& spec, std::span<float> params, std::size_t layer);

// Deterministic initial parameters, identical on every platform for a given
// (spec, seed): weights and biases uniform in [-1/sqrt(in), 1/sqrt(in)] per
// layer (PyTorch's nn.Linear default), drawn from xoshiro256** seeded through
// splitmix64, in layout order. The spec must be valid.
std::vector<float> InitParameters(const NetSpec& spec, std::uint64_t seed);

// OK when the spec is valid and `params` has ParameterCount(spec) finite
// values; otherwise InvalidArgument naming the layer, the index and what was
// wrong. Used to reject untrusted updates. Does not allocate.
core::Status ValidateParameters(const NetSpec& spec, std::span<const float> params);

// OK when `x` can be fed to a network of this spec: its dim equals
// input_dim, every bit index is below it and the offsets are consistent.
core::Status ValidateInput(const NetSpec& spec, const SparseRows& x);

// Probabilities (sigmoid of the logits), row-major x.rows() x num_tasks, in
// inference mode (no dropout). Uses up to `threads` threads (the caller's
// included; values < 1 mean 1); the result does not depend on `threads`.
// InvalidArgument when the spec, the parameters or the input are invalid.
core::Result<std::vector<float>> Predict(const NetSpec& spec, std::span<const float> params,
                                         const SparseRows& x, int threads = 1);

// Predict's probabilities and, from the same forward pass, the trunk's last
// hidden layer (ReLU applied) of each row: row-major x.rows() x
// spec.hidden.back(). What serving needs for an applicability-domain check.
struct PredictionWithEmbedding {
  std::vector<float> probabilities;
  std::vector<float> embedding;
};
core::Result<PredictionWithEmbedding> PredictWithEmbedding(const NetSpec& spec,
                                                           std::span<const float> params,
                                                           const SparseRows& x, int threads = 1);

}  // namespace fedrx::ml
