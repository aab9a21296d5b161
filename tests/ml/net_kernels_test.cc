#include "services/ml/net_kernels.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "services/core/random.h"
#include "services/ml/synthetic.h"

namespace fedrx::ml::internal {
namespace {

bool BitIdentical(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

std::vector<float> Random(std::size_t n, std::uint64_t seed, double lo = -1, double hi = 1) {
  core::Xoshiro256 rng(seed);
  std::vector<float> v(n);
  for (float& x : v) x = static_cast<float>(lo + (hi - lo) * rng.NextDouble());
  return v;
}

AdamCoefficients Coefficients(float weight_decay) {
  AdamCoefficients a;
  a.step_size = 1e-3f / 0.1f;
  a.inv_sqrt_bc2 = static_cast<float>(1 / std::sqrt(0.001));
  a.weight_decay = weight_decay;
  return a;
}

TEST(NetKernelsTest, FirstAdamStepMovesByLearningRate) {
  // Step 1 with bias correction: m_hat = g, v_hat = g^2, so p -= lr * g / |g|.
  std::vector<float> p = {1.0f, 1.0f}, m = {0, 0}, v = {0, 0};
  const std::vector<float> g = {0.5f, -2.0f};
  PortableKernels().adam(p.data(), m.data(), v.data(), g.data(), 2, Coefficients(0));
  EXPECT_NEAR(p[0], 0.999f, 1e-6);
  EXPECT_NEAR(p[1], 1.001f, 1e-6);
  EXPECT_FLOAT_EQ(m[0], 0.05f);
  EXPECT_FLOAT_EQ(v[1], 0.004f);
}

// The batch positions of `rows` grouped by bit, built the obvious way.
void GroupByBit(const SparseRows& x, const std::vector<std::size_t>& rows, std::uint32_t dim,
                std::vector<std::uint32_t>& start, std::vector<std::uint32_t>& samples) {
  start.assign(dim + 1, 0);
  samples.clear();
  for (std::size_t j = 0; j < dim; ++j) {
    start[j] = static_cast<std::uint32_t>(samples.size());
    for (std::size_t k = 0; k < rows.size(); ++k) {
      for (std::uint32_t b : x.row(rows[k])) {
        if (b == j) samples.push_back(static_cast<std::uint32_t>(k));
      }
    }
  }
  start[dim] = static_cast<std::uint32_t>(samples.size());
}

TEST(NetKernelsTest, RowPassGradientIsScatterOfSampleGradients) {
  SyntheticOptions o;
  o.rows = 37;
  o.dim = 300;
  o.bits_per_row = 10;
  const Dataset d = MakeSyntheticDataset(o);
  const std::size_t width = 52;
  std::vector<std::size_t> rows;
  for (std::size_t r = 0; r < d.size(); r += 2) rows.push_back(r);
  const std::vector<float> dz = Random(rows.size() * width, 1);

  // Reference: every sample adds its gradient row to the rows of its bits.
  std::vector<double> expected(o.dim * width, 0.0);
  for (std::size_t k = 0; k < rows.size(); ++k) {
    for (std::uint32_t j : d.x.row(rows[k])) {
      for (std::size_t c = 0; c < width; ++c) expected[j * width + c] += dz[k * width + c];
    }
  }

  std::vector<std::uint32_t> start, samples;
  GroupByBit(d.x, rows, o.dim, start, samples);
  std::vector<float> grad(o.dim * width, 0.0f), w(o.dim * width, 0.0f), scratch(width);
  for (std::size_t part = 0; part < 2; ++part) {  // two row ranges, as two threads would
    SparseRowPass pass;
    pass.row_begin = part == 0 ? 0 : 160;
    pass.row_end = part == 0 ? 160 : o.dim;
    pass.ld = width;
    pass.c0 = 0;
    pass.c1 = width;
    pass.w = w.data();
    pass.index = {start.data(), samples.data()};
    pass.dz = dz.data();
    pass.grad = grad.data();
    pass.scratch = scratch.data();
    RunSparseRowPass(pass);
  }
  std::size_t nonzero = 0;
  for (std::size_t i = 0; i < grad.size(); ++i) {
    EXPECT_NEAR(grad[i], expected[i], 1e-5) << i;
    nonzero += grad[i] != 0.0f;
  }
  EXPECT_GT(nonzero, grad.size() / 4);
}

// Runs every kernel of `k` on the same inputs and returns all outputs.
std::vector<std::vector<float>> RunAll(const KernelSet& k) {
  std::vector<std::vector<float>> out;
  SyntheticOptions o;
  o.rows = 20;
  o.dim = 64;
  o.bits_per_row = 8;
  const Dataset d = MakeSyntheticDataset(o);
  std::vector<std::size_t> rows(d.size());
  for (std::size_t r = 0; r < rows.size(); ++r) rows[r] = r;
  const std::size_t width = 45;  // not a multiple of 8: the tails run too

  const std::vector<float> w = Random(o.dim * width, 3);
  const std::vector<float> bias = Random(width, 4);
  std::vector<float> fwd(rows.size() * width);
  k.sparse_forward(d.x, rows, w.data(), bias.data(), width, fwd.data());
  out.push_back(fwd);

  for (float wd : {0.0f, 0.01f}) {
    std::vector<float> p = Random(1000, 5), m = Random(1000, 6), v = Random(1000, 7, 0, 1);
    const std::vector<float> g = Random(1000, 8);
    k.adam(p.data(), m.data(), v.data(), g.data(), 999, Coefficients(wd));
    k.adam(p.data(), m.data(), v.data(), nullptr, 1000, Coefficients(wd));
    out.push_back(p);
    out.push_back(m);
    out.push_back(v);
  }

  std::vector<float> a = Random(1001, 9), gate(1001);
  std::vector<std::uint32_t> draws(1001);
  core::Xoshiro256 rng(10);
  for (std::uint32_t& x : draws) x = static_cast<std::uint32_t>(rng.Next());
  k.relu_dropout(a.data(), gate.data(), draws.data(), 0x40000000u, 1.25f, 1001);
  out.push_back(a);
  out.push_back(gate);
  a = Random(1001, 11);
  k.relu_dropout(a.data(), gate.data(), nullptr, 0, 1.0f, 1001);
  out.push_back(a);
  out.push_back(gate);

  // Row pass: an Adam update, then accumulating the gradient.
  std::vector<std::uint32_t> start, samples;
  GroupByBit(d.x, rows, o.dim, start, samples);
  std::vector<float> pw = w, m = Random(w.size(), 12), v = Random(w.size(), 13, 0, 1);
  const std::vector<float> dz = Random(rows.size() * width, 14);
  std::vector<float> scratch(width), grad(w.size(), 0.0f);
  const AdamCoefficients adam = Coefficients(0.001f);
  SparseRowPass pass;
  pass.row_begin = 1;
  pass.row_end = o.dim;
  pass.ld = width;
  pass.c0 = 3;
  pass.c1 = width;
  pass.w = pw.data();
  pass.index = {start.data(), samples.data()};
  pass.dz = dz.data();
  pass.m = m.data();
  pass.v = v.data();
  pass.adam = &adam;
  pass.scratch = scratch.data();
  k.row_pass(pass);
  pass.adam = nullptr;
  pass.grad = grad.data();
  k.row_pass(pass);
  out.push_back(pw);
  out.push_back(m);
  out.push_back(v);
  out.push_back(grad);
  return out;
}

TEST(NetKernelsTest, RowPassWithAnAnchorAddsTheProximalGradientToEveryRow) {
  // FedProx: the Adam step's gradient is G_j + mu (W_j - anchor_j), also on
  // rows no sample touches (G_j = 0 there).
  SyntheticOptions o;
  o.rows = 21;
  o.dim = 120;
  o.bits_per_row = 6;
  const Dataset d = MakeSyntheticDataset(o);
  const std::size_t width = 20;
  std::vector<std::size_t> rows;
  for (std::size_t r = 0; r < d.size(); ++r) rows.push_back(r);
  const std::vector<float> dz = Random(rows.size() * width, 2);
  const std::vector<float> w0 = Random(o.dim * width, 3), anchor = Random(o.dim * width, 4);
  const float mu = 0.7f;
  std::vector<std::uint32_t> start, samples;
  GroupByBit(d.x, rows, o.dim, start, samples);

  // The plain gradient, from the accumulate mode.
  std::vector<float> grad(o.dim * width, 0.0f), scratch(width);
  {
    std::vector<float> w = w0;
    SparseRowPass pass;
    pass.row_begin = 0;
    pass.row_end = o.dim;
    pass.ld = width;
    pass.c1 = width;
    pass.w = w.data();
    pass.index = {start.data(), samples.data()};
    pass.dz = dz.data();
    pass.grad = grad.data();
    pass.scratch = scratch.data();
    RunSparseRowPass(pass);
  }
  AdamCoefficients c;
  c.step_size = 0.01f;
  // Expected: one Adam step on grad + mu (w0 - anchor).
  std::vector<float> want = w0, wm(w0.size(), 0.0f), wv(w0.size(), 0.0f), g(w0.size());
  for (std::size_t i = 0; i < g.size(); ++i) g[i] = grad[i] + mu * (w0[i] - anchor[i]);
  PortableKernels().adam(want.data(), wm.data(), wv.data(), g.data(), g.size(), c);

  std::vector<float> got = w0, m(w0.size(), 0.0f), v(w0.size(), 0.0f);
  SparseRowPass pass;
  pass.row_begin = 0;
  pass.row_end = o.dim;
  pass.ld = width;
  pass.c1 = width;
  pass.w = got.data();
  pass.index = {start.data(), samples.data()};
  pass.dz = dz.data();
  pass.m = m.data();
  pass.v = v.data();
  pass.adam = &c;
  pass.anchor = anchor.data();
  pass.mu = mu;
  pass.scratch = scratch.data();
  RunSparseRowPass(pass);
  for (std::size_t i = 0; i < got.size(); ++i) {
    ASSERT_NEAR(got[i], want[i], 1e-6) << i;
    ASSERT_NEAR(m[i], wm[i], 1e-6) << i;
  }
  // Every row moved, touched or not (the anchor differs from w0 everywhere).
  for (std::size_t i = 0; i < got.size(); ++i) ASSERT_NE(got[i], w0[i]) << i;
}

TEST(NetKernelsTest, Avx2AndPortableAreBitIdentical) {
  const KernelSet* avx2 = Avx2Kernels();
  if (avx2 == nullptr) GTEST_SKIP() << "this CPU has no AVX2";
  const auto portable = RunAll(PortableKernels());
  const auto vector = RunAll(*avx2);
  ASSERT_EQ(portable.size(), vector.size());
  for (std::size_t i = 0; i < portable.size(); ++i) {
    EXPECT_TRUE(BitIdentical(portable[i], vector[i])) << "output " << i;
  }
  // The outputs moved: the comparison is not between untouched inputs.
  EXPECT_FALSE(BitIdentical(portable[1], Random(1000, 5)));
}

}  // namespace
}  // namespace fedrx::ml::internal
