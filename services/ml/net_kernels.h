// Internal to the ML core (model.cc, trainer.cc): the memory-bound loops of the
// network, dispatched at run time to an AVX2 version on CPUs that have it and
// to plain C++ elsewhere, so the binaries run on any x86-64. Both versions
// perform the same IEEE-754 operations per element in the same order (no FMA),
// so their results are bit-identical. Stateless; safe from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "services/ml/dataset.h"

namespace fedrx::ml::internal {

// out[k * n + c] = bias[c] + sum over the set bits j of row rows[k] (ascending)
// of w[j * n + c], for c in [0, n). Row-major, leading dimension n everywhere.
void SparseForward(const SparseRows& x, std::span<const std::size_t> rows, const float* w,
                   const float* bias, std::size_t n, float* out);

// Per-step constants of Adam (PyTorch's torch.optim.Adam, L2 weight decay
// added to the gradient).
struct AdamCoefficients {
  float beta1 = 0.9f;
  float one_minus_beta1 = 0.1f;
  float beta2 = 0.999f;
  float one_minus_beta2 = 0.001f;
  float step_size = 1e-3f;    // learning_rate / (1 - beta1^t)
  float inv_sqrt_bc2 = 1.0f;  // 1 / sqrt(1 - beta2^t)
  float eps = 1e-8f;
  float weight_decay = 0.0f;
};

// One Adam step over n contiguous parameters with gradient g (not modified):
//   g' = g + wd * p;  m = b1 m + (1 - b1) g';  v = b2 v + (1 - b2) g'^2;
//   p -= step_size * (m / (sqrt(v) * inv_sqrt_bc2 + eps))
void AdamStep(float* p, float* m, float* v, const float* g, std::size_t n,
              const AdamCoefficients& c);

// A batch's rows grouped by input bit: the batch positions k (ascending) of
// the rows that have bit j are samples[start[j] .. start[j + 1]).
struct BitIndex {
  const std::uint32_t* start = nullptr;  // dim + 1 entries
  const std::uint32_t* samples = nullptr;
};

// The update of the sparse first layer's weights W [rows][ld] for one batch,
// over rows [row_begin, row_end) and columns [c0, c1). For each row j, its
// gradient G_j = sum over the batch positions k with bit j (ascending) of
// dz[k * ld + c]; then either one Adam step on W_j (m, v: Adam's moments,
// same layout; adam non-null), or grad[j * ld + c] += G_j (grad non-null).
// Rows no sample touches get an Adam step with a zero gradient. With an
// anchor (FedProx's global weights, same layout as w), the Adam step's
// gradient is G_j + mu (W_j - anchor_j), for every row.
struct SparseRowPass {
  std::size_t row_begin = 0, row_end = 0;
  std::size_t ld = 0;
  std::size_t c0 = 0, c1 = 0;
  float* w = nullptr;
  BitIndex index;
  const float* dz = nullptr;
  float* m = nullptr;
  float* v = nullptr;
  const AdamCoefficients* adam = nullptr;
  float* grad = nullptr;
  float* scratch = nullptr;  // c1 - c0 floats
  const float* anchor = nullptr;  // Adam only; null: no proximal term
  float mu = 0;
};

// dst[i] = (g ? g[i] : 0) + mu * (w[i] - anchor[i]): the gradient of a
// FedProx proximal term (mu/2) ||w - anchor||^2 added to g. dst may be g.
void AddProximal(float* dst, const float* g, const float* w, const float* anchor, float mu,
                 std::size_t n);
void RunSparseRowPass(const SparseRowPass& pass);

// ReLU then inverted dropout on n pre-activations a, in place, recording each
// unit's gate (its derivative: 0 or `scale`) in gate. Unit i is kept when
// a[i] > 0 and draws[i] >= threshold (draws null: no dropout, scale must be 1).
void ReluDropout(float* a, float* gate, const std::uint32_t* draws, std::uint32_t threshold,
                 float scale, std::size_t n);

// The implementations behind the functions above, for tests that compare
// them: PortableKernels() always exists, Avx2Kernels() is null on CPUs
// without AVX2, Kernels() is the one in use.
struct KernelSet {
  const char* name;
  void (*sparse_forward)(const SparseRows&, std::span<const std::size_t>, const float*,
                         const float*, std::size_t, float*);
  void (*row_pass)(const SparseRowPass&);
  void (*adam)(float*, float*, float*, const float*, std::size_t, const AdamCoefficients&);
  void (*relu_dropout)(float*, float*, const std::uint32_t*, std::uint32_t, float, std::size_t);
};
const KernelSet& PortableKernels();
const KernelSet* Avx2Kernels();
const KernelSet& Kernels();

}  // namespace fedrx::ml::internal
