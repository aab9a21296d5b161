#include "services/ml/net_kernels.h"

#if defined(__x86_64__) || defined(__i386__)
#define FEDRX_ML_X86 1
#include <immintrin.h>
#endif

#include <cmath>

namespace fedrx::ml::internal {
namespace {

// Elementwise primitives. PortableOps and Avx2Ops must keep exactly the same
// per-element operations in the same order: that makes them bit-identical.
struct PortableOps {
  static void Prefetch(const float*, std::size_t) {}
  // dst[i] = src[i]
  static void Copy(float* dst, const float* src, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) dst[i] = src[i];
  }
  // dst[i] += src[i]
  static void Add(float* dst, const float* src, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) dst[i] += src[i];
  }
  // Adam with gradient g, or a zero gradient when g is null.
  static void Adam(float* p, float* m, float* v, const float* g, std::size_t n,
                   const AdamCoefficients& a) {
    for (std::size_t i = 0; i < n; ++i) {
      float grad = g != nullptr ? g[i] : 0.0f;
      if (a.weight_decay != 0.0f) grad = grad + a.weight_decay * p[i];
      const float mi = a.beta1 * m[i] + a.one_minus_beta1 * grad;
      const float vi = a.beta2 * v[i] + a.one_minus_beta2 * (grad * grad);
      const float denom = std::sqrt(vi) * a.inv_sqrt_bc2 + a.eps;
      p[i] = p[i] - a.step_size * (mi / denom);
      m[i] = mi;
      v[i] = vi;
    }
  }
  static void ReluDropout(float* a, float* gate, const std::uint32_t* draws,
                          std::uint32_t threshold, float scale, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      const bool on = a[i] > 0.0f && (draws == nullptr || draws[i] >= threshold);
      gate[i] = on ? scale : 0.0f;
      a[i] = on ? a[i] * scale : 0.0f;
    }
  }
};

#ifdef FEDRX_ML_X86
struct Avx2Ops {
  // Asks for the cache lines of src[0, n) ahead of use (no effect on results).
  static void Prefetch(const float* src, std::size_t n) {
    for (std::size_t i = 0; i < n; i += 16) {
      _mm_prefetch(reinterpret_cast<const char*>(src + i), _MM_HINT_T0);
    }
  }
  __attribute__((target("avx2"))) static void Copy(float* dst, const float* src, std::size_t n) {
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_loadu_ps(src + i));
    for (; i < n; ++i) dst[i] = src[i];
  }
  __attribute__((target("avx2"))) static void Add(float* dst, const float* src, std::size_t n) {
    std::size_t i = 0;
    for (; i + 32 <= n; i += 32) {
      const __m256 s0 = _mm256_loadu_ps(src + i);
      const __m256 s1 = _mm256_loadu_ps(src + i + 8);
      const __m256 s2 = _mm256_loadu_ps(src + i + 16);
      const __m256 s3 = _mm256_loadu_ps(src + i + 24);
      _mm256_storeu_ps(dst + i, _mm256_add_ps(_mm256_loadu_ps(dst + i), s0));
      _mm256_storeu_ps(dst + i + 8, _mm256_add_ps(_mm256_loadu_ps(dst + i + 8), s1));
      _mm256_storeu_ps(dst + i + 16, _mm256_add_ps(_mm256_loadu_ps(dst + i + 16), s2));
      _mm256_storeu_ps(dst + i + 24, _mm256_add_ps(_mm256_loadu_ps(dst + i + 24), s3));
    }
    for (; i + 8 <= n; i += 8) {
      _mm256_storeu_ps(dst + i, _mm256_add_ps(_mm256_loadu_ps(dst + i), _mm256_loadu_ps(src + i)));
    }
    for (; i < n; ++i) dst[i] += src[i];
  }
  __attribute__((target("avx2"))) static void Adam(float* p, float* m, float* v, const float* g,
                                                   std::size_t n, const AdamCoefficients& a) {
    const __m256 b1 = _mm256_set1_ps(a.beta1);
    const __m256 omb1 = _mm256_set1_ps(a.one_minus_beta1);
    const __m256 b2 = _mm256_set1_ps(a.beta2);
    const __m256 omb2 = _mm256_set1_ps(a.one_minus_beta2);
    const __m256 step = _mm256_set1_ps(a.step_size);
    const __m256 ibc2 = _mm256_set1_ps(a.inv_sqrt_bc2);
    const __m256 eps = _mm256_set1_ps(a.eps);
    const __m256 wd = _mm256_set1_ps(a.weight_decay);
    const bool decay = a.weight_decay != 0.0f;
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      const __m256 pi = _mm256_loadu_ps(p + i);
      __m256 grad = g != nullptr ? _mm256_loadu_ps(g + i) : _mm256_setzero_ps();
      if (decay) grad = _mm256_add_ps(grad, _mm256_mul_ps(wd, pi));
      const __m256 mi =
          _mm256_add_ps(_mm256_mul_ps(b1, _mm256_loadu_ps(m + i)), _mm256_mul_ps(omb1, grad));
      const __m256 vi = _mm256_add_ps(_mm256_mul_ps(b2, _mm256_loadu_ps(v + i)),
                                      _mm256_mul_ps(omb2, _mm256_mul_ps(grad, grad)));
      const __m256 denom = _mm256_add_ps(_mm256_mul_ps(_mm256_sqrt_ps(vi), ibc2), eps);
      _mm256_storeu_ps(p + i, _mm256_sub_ps(pi, _mm256_mul_ps(step, _mm256_div_ps(mi, denom))));
      _mm256_storeu_ps(m + i, mi);
      _mm256_storeu_ps(v + i, vi);
    }
    if (i < n) PortableOps::Adam(p + i, m + i, v + i, g != nullptr ? g + i : nullptr, n - i, a);
  }
  __attribute__((target("avx2"))) static void ReluDropout(float* a, float* gate,
                                                          const std::uint32_t* draws,
                                                          std::uint32_t threshold, float scale,
                                                          std::size_t n) {
    const __m256 zero = _mm256_setzero_ps();
    const __m256 vscale = _mm256_set1_ps(scale);
    // Unsigned draw >= threshold as a signed compare on values offset by 2^31.
    const __m256i flip = _mm256_set1_epi32(static_cast<int>(0x80000000u));
    const __m256i below = _mm256_set1_epi32(static_cast<int>((threshold ^ 0x80000000u) - 1));
    const bool drop = draws != nullptr && threshold != 0;
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      const __m256 ai = _mm256_loadu_ps(a + i);
      __m256 on = _mm256_cmp_ps(ai, zero, _CMP_GT_OQ);
      if (drop) {
        const __m256i d = _mm256_xor_si256(
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(draws + i)), flip);
        on = _mm256_and_ps(on, _mm256_castsi256_ps(_mm256_cmpgt_epi32(d, below)));
      }
      _mm256_storeu_ps(gate + i, _mm256_and_ps(on, vscale));
      _mm256_storeu_ps(a + i, _mm256_and_ps(on, _mm256_mul_ps(ai, vscale)));
    }
    if (i < n) PortableOps::ReluDropout(a + i, gate + i, draws != nullptr ? draws + i : nullptr,
                                        threshold, scale, n - i);
  }
};
#endif  // FEDRX_ML_X86

}  // namespace

// Plain C++ for both kernel sets (one function, so one rounding).
void AddProximal(float* dst, const float* g, const float* w, const float* anchor, float mu,
                 std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    const float base = g != nullptr ? g[i] : 0.0f;
    dst[i] = base + mu * (w[i] - anchor[i]);
  }
}

namespace {

// The drivers are inlined into each target-specific entry point below, so
// their Ops calls are compiled (and inlined) for that target.
template <typename Ops>
__attribute__((always_inline)) inline void SparseForwardImpl(const SparseRows& x,
                                                             std::span<const std::size_t> rows,
                                                             const float* w, const float* bias,
                                                             std::size_t n, float* out) {
  for (std::size_t k = 0; k < rows.size(); ++k) {
    float* o = out + k * n;
    Ops::Copy(o, bias, n);
    // Weight rows are scattered: fetch the next one while adding this one.
    const std::span<const std::uint32_t> bits = x.row(rows[k]);
    for (std::size_t b = 0; b < bits.size(); ++b) {
      if (b + 1 < bits.size()) Ops::Prefetch(w + std::size_t{bits[b + 1]} * n, n);
      Ops::Add(o, w + std::size_t{bits[b]} * n, n);
    }
  }
}

template <typename Ops>
__attribute__((always_inline)) inline void SparseRowPassImpl(const SparseRowPass& s) {
  const std::size_t n = s.c1 - s.c0;
  for (std::size_t j = s.row_begin; j < s.row_end; ++j) {
    const std::uint32_t first = s.index.start[j];
    const std::uint32_t last = s.index.start[j + 1];
    const float* g = nullptr;
    if (first < last) {
      // A row one sample touches uses that sample's gradient directly.
      g = s.dz + std::size_t{s.index.samples[first]} * s.ld + s.c0;
      if (last - first > 1) {
        Ops::Copy(s.scratch, g, n);
        for (std::uint32_t i = first + 1; i < last; ++i) {
          Ops::Add(s.scratch, s.dz + std::size_t{s.index.samples[i]} * s.ld + s.c0, n);
        }
        g = s.scratch;
      }
    }
    const std::size_t o = j * s.ld + s.c0;
    if (s.adam != nullptr) {
      if (s.anchor != nullptr) {
        AddProximal(s.scratch, g, s.w + o, s.anchor + o, s.mu, n);
        g = s.scratch;
      }
      Ops::Adam(s.w + o, s.m + o, s.v + o, g, n, *s.adam);
    } else if (g != nullptr) {
      Ops::Add(s.grad + o, g, n);
    }
  }
}

void SparseForwardPortable(const SparseRows& x, std::span<const std::size_t> rows,
                           const float* w, const float* bias, std::size_t n, float* out) {
  SparseForwardImpl<PortableOps>(x, rows, w, bias, n, out);
}
#ifdef FEDRX_ML_X86
__attribute__((target("avx2"))) void SparseForwardAvx2(const SparseRows& x,
                                                       std::span<const std::size_t> rows,
                                                       const float* w, const float* bias,
                                                       std::size_t n, float* out) {
  SparseForwardImpl<Avx2Ops>(x, rows, w, bias, n, out);
}
__attribute__((target("avx2"))) void SparseRowPassAvx2(const SparseRowPass& s) {
  SparseRowPassImpl<Avx2Ops>(s);
}
#endif  // FEDRX_ML_X86
void SparseRowPassPortable(const SparseRowPass& s) { SparseRowPassImpl<PortableOps>(s); }

constexpr KernelSet kPortable = {"portable", &SparseForwardPortable, &SparseRowPassPortable,
                                 &PortableOps::Adam, &PortableOps::ReluDropout};
#ifdef FEDRX_ML_X86
constexpr KernelSet kAvx2 = {"avx2", &SparseForwardAvx2, &SparseRowPassAvx2, &Avx2Ops::Adam,
                             &Avx2Ops::ReluDropout};
#endif

}  // namespace

const KernelSet& PortableKernels() { return kPortable; }

const KernelSet* Avx2Kernels() {
#ifdef FEDRX_ML_X86
  // libgcc's check includes the OS saving the YMM registers (XGETBV).
  static const bool supported = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") != 0;
  }();
  return supported ? &kAvx2 : nullptr;
#else
  return nullptr;
#endif
}

const KernelSet& Kernels() {
  static const KernelSet& selected = Avx2Kernels() != nullptr ? *Avx2Kernels() : kPortable;
  return selected;
}

void SparseForward(const SparseRows& x, std::span<const std::size_t> rows, const float* w,
                   const float* bias, std::size_t n, float* out) {
  Kernels().sparse_forward(x, rows, w, bias, n, out);
}

void AdamStep(float* p, float* m, float* v, const float* g, std::size_t n,
              const AdamCoefficients& c) {
  Kernels().adam(p, m, v, g, n, c);
}

void RunSparseRowPass(const SparseRowPass& pass) { Kernels().row_pass(pass); }

void ReluDropout(float* a, float* gate, const std::uint32_t* draws, std::uint32_t threshold,
                 float scale, std::size_t n) {
  Kernels().relu_dropout(a, gate, draws, threshold, scale, n);
}

}  // namespace fedrx::ml::internal
