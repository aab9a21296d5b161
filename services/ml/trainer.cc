#include "services/ml/trainer.h"

#include <Eigen/Core>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>
#include <thread>

#include "services/ml/net_kernels.h"
#include "services/core/random.h"

namespace fedrx::ml {
namespace {

using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MatMap = Eigen::Map<RowMajor>;
using ConstMatMap = Eigen::Map<const RowMajor>;
using RowVecMap = Eigen::Map<Eigen::RowVectorXf>;
using ConstRowVecMap = Eigen::Map<const Eigen::RowVectorXf>;

// Rows per shard. Fixed, so the work a shard does (and the Eigen kernels it
// runs, whose summation order depends on the shapes) is the same whatever the
// thread count.
constexpr std::size_t kShardRows = 16;
// Column and element ranges given to threads are multiples of this (one cache line).
constexpr std::size_t kAlign = 16;
// Largest batch: keeps a batch's shard count within the pool's 16-bit item count.
constexpr std::uint32_t kMaxBatch = 65536;
// Chunk size of LossAndGradient's passes over the data.
constexpr std::size_t kGradientChunk = 256;

Eigen::Index Idx(std::size_t v) { return static_cast<Eigen::Index>(v); }

// Buffers that threads split by columns start on a cache line, so that ranges
// cut at multiples of kAlign floats never share a line between threads.
template <typename T>
struct CacheAligned {
  using value_type = T;
  static constexpr std::align_val_t kAlignment{64};
  CacheAligned() = default;
  template <typename U>
  CacheAligned(const CacheAligned<U>&) {}  // NOLINT: allocator conversion
  T* allocate(std::size_t n) {
    return static_cast<T*>(::operator new(n * sizeof(T), kAlignment));
  }
  void deallocate(T* p, std::size_t) { ::operator delete(p, kAlignment); }
  template <typename U>
  bool operator==(const CacheAligned<U>&) const { return true; }
};
using Floats = std::vector<float, CacheAligned<float>>;

std::size_t RoundUp(std::size_t v, std::size_t m) { return (v + m - 1) / m * m; }

// [begin, end) of part `t` of `n` items split over `parts`, cut at multiples of kAlign.
std::pair<std::size_t, std::size_t> Split(std::size_t n, std::size_t parts, std::size_t t) {
  const std::size_t chunk = RoundUp((n + parts - 1) / parts, kAlign);
  return {std::min(n, t * chunk), std::min(n, (t + 1) * chunk)};
}

// Runs the items of a job on N threads (the caller is thread 0) and returns
// when all are done. Items are claimed dynamically, so on a busy machine the
// caller carries on alone when a worker has lost its core, instead of waiting
// at a barrier for it. Which thread runs an item must not change its result
// (the trainer's items write disjoint outputs, and per-thread scratch is only
// ever a temporary). Run is not reentrant; one caller at a time.
class WorkerPool {
 public:
  explicit WorkerPool(int threads) : size_(std::max(threads, 1)) {
    for (int t = 1; t < size_; ++t) workers_.emplace_back([this, t] { Loop(t); });
  }
  ~WorkerPool() {
    stop_.store(true, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
    generation_.notify_all();
    for (std::thread& w : workers_) w.join();
  }
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  int size() const { return size_; }

  // Calls fn(item, thread) once for each item in [0, items), items < 2^16.
  template <typename Fn>
  void Run(std::size_t items, Fn&& fn) {
    if (size_ == 1 || items <= 1) {
      for (std::size_t i = 0; i < items; ++i) fn(i, 0);
      return;
    }
    const std::uint32_t gen = generation_.load(std::memory_order_relaxed) + 1;
    job_.store(
        [](void* f, std::size_t i, int t) { (*static_cast<std::remove_reference_t<Fn>*>(f))(i, t); },
        std::memory_order_relaxed);
    job_arg_.store(&fn, std::memory_order_relaxed);
    done_.store(0, std::memory_order_relaxed);
    claim_.store(Claim(gen, static_cast<std::uint32_t>(items), 0), std::memory_order_release);
    generation_.store(gen, std::memory_order_release);
    generation_.notify_all();
    Work(gen, 0);
    const auto total = static_cast<std::uint32_t>(items);
    for (std::uint32_t d, spins = 0; (d = done_.load(std::memory_order_acquire)) != total;
         ++spins) {
      Backoff(spins, [&] { done_.wait(d, std::memory_order_acquire); });
    }
  }

 private:
  // Waiting: spin (the phases of a batch are tens of microseconds apart), then
  // yield, then sleep on the atomic.
  template <typename Sleep>
  static void Backoff(std::uint32_t spins, Sleep&& sleep) {
    if (spins < 2048) {
#if defined(__x86_64__) || defined(__i386__)
      _mm_pause();
#endif
    } else if (spins < 2048 + 64) {
      std::this_thread::yield();
    } else {
      sleep();
    }
  }

  // The claim word: generation (32 bits), item count and next item (16 each).
  // One atomic holds all three so that a worker that wakes late cannot claim
  // an item of a later job, nor read a later job's item count: its
  // compare-exchange fails once the word has moved on. While a generation has
  // unclaimed items the caller cannot have started the next job, so the job
  // pointer read before a successful claim is the claimed job's.
  static std::uint64_t Claim(std::uint32_t gen, std::uint32_t items, std::uint32_t next) {
    return std::uint64_t{gen} << 32 | std::uint64_t{items} << 16 | next;
  }

  // Claims and runs items of generation `gen` until none is left.
  void Work(std::uint32_t gen, int thread) {
    for (;;) {
      std::uint64_t c = claim_.load(std::memory_order_acquire);
      const auto items = static_cast<std::uint32_t>((c >> 16) & 0xffff);
      const auto item = static_cast<std::uint32_t>(c & 0xffff);
      if ((c >> 32) != gen || item >= items) return;
      const auto job = job_.load(std::memory_order_relaxed);
      void* arg = job_arg_.load(std::memory_order_relaxed);
      if (!claim_.compare_exchange_weak(c, c + 1, std::memory_order_acq_rel)) continue;
      job(arg, item, thread);
      if (done_.fetch_add(1, std::memory_order_acq_rel) + 1 == items) done_.notify_one();
    }
  }

  void Loop(int t) {
    std::uint32_t seen = 0;
    for (;;) {
      std::uint32_t g;
      for (std::uint32_t spins = 0; (g = generation_.load(std::memory_order_acquire)) == seen;
           ++spins) {
        Backoff(spins, [&] { generation_.wait(seen, std::memory_order_acquire); });
      }
      seen = g;
      if (stop_.load(std::memory_order_relaxed)) return;
      Work(g, t);
    }
  }

  const int size_;
  std::vector<std::thread> workers_;
  std::atomic<std::uint32_t> generation_{0};  // bumped per job; workers sleep on it
  std::atomic<std::uint64_t> claim_{0};       // see Claim()
  std::atomic<std::uint32_t> done_{0};
  std::atomic<bool> stop_{false};
  std::atomic<void (*)(void*, std::size_t, int)> job_{nullptr};
  std::atomic<void*> job_arg_{nullptr};
};

// How a batch's gradient is used.
enum class Mode {
  kAdam,        // one Adam step on the parameters
  kAccumulate,  // the gradient is added to a gradient buffer; parameters untouched
};

struct DropoutKey {
  std::uint64_t batch_key = 0;  // from (seed, epoch, batch)
  std::uint32_t threshold = 0;  // a unit is dropped when its 32-bit draw is below this
  float scale = 1.0f;           // 1 / (1 - p), applied to kept units
};

float Sigmoid(float z) {
  if (z >= 0) return 1.0f / (1.0f + std::exp(-z));
  const float e = std::exp(z);
  return e / (1.0f + e);
}

}  // namespace

// The per-batch forward/backward/update machinery and its buffers.
class BatchEngine {
 public:
  explicit BatchEngine(int threads) : pool_(threads), scratch_(pool_.size()) {}

  // Sizes the buffers for `spec` and batches of up to `max_batch` rows.
  void Configure(const NetSpec& spec, std::size_t max_batch) {
    spec_ = spec;
    layout_ = Layout(spec);
    const std::size_t hidden_layers = spec.hidden.size();
    acts_.resize(hidden_layers);
    gates_.resize(hidden_layers);
    for (std::size_t l = 0; l < hidden_layers; ++l) {
      acts_[l].assign(max_batch * spec.hidden[l], 0.0f);
      gates_[l].assign(max_batch * spec.hidden[l], 0.0f);
    }
    logits_.assign(max_batch * spec.num_tasks, 0.0f);
    dz0_.assign(max_batch * spec.hidden[0], 0.0f);
    dense_begin_ = layout_[0].bias_offset();
    dense_size_ = layout_.back().end() - dense_begin_;
    const std::size_t shards = (max_batch + kShardRows - 1) / kShardRows;
    shard_grads_.assign(shards, Floats(dense_size_, 0.0f));
    shard_loss_.assign(shards, 0.0);
    const std::uint32_t widest = *std::max_element(spec.hidden.begin(), spec.hidden.end());
    for (Scratch& s : scratch_) {
      s.da.assign(kShardRows * widest, 0.0f);
      s.db.assign(kShardRows * widest, 0.0f);
      s.row.assign(spec.hidden[0], 0.0f);
      s.draws.assign(widest + 1, 0);
    }
    index_.start.assign(std::size_t{spec.input_dim} + 1, 0);
    index_.fill.assign(spec.input_dim, 0);
  }

  // Forward and backward over `rows`, the gradient scaled by `grad_scale`
  // (1 / number of labelled entries it is averaged over), then `mode`: an
  // Adam step (m, v: Adam's moments) or adding the gradient to `grad`.
  // `dropout` null means no dropout. A non-null `anchor` (kAdam only) adds
  // FedProx's mu (params - anchor) to the gradient. Returns the summed loss
  // over the labelled entries of the batch.
  double Step(const Dataset& data, std::span<const std::size_t> rows, std::span<float> params,
              float grad_scale, const DropoutKey* dropout, Mode mode, std::span<float> grad,
              std::span<float> m, std::span<float> v, const internal::AdamCoefficients& adam,
              const float* anchor = nullptr, float mu = 0) {
    BuildIndex(data.x, rows, index_);
    const std::size_t shards = (rows.size() + kShardRows - 1) / kShardRows;
    pool_.Run(shards, [&](std::size_t s, int t) {
      const std::size_t begin = s * kShardRows;
      const std::size_t end = std::min(rows.size(), begin + kShardRows);
      shard_loss_[s] = Shard(data, rows, begin, end, params, grad_scale, dropout,
                             shard_grads_[s], scratch_[static_cast<std::size_t>(t)]);
    });
    // Items [0, parts): ranges of the first layer's weight rows (split by rows,
    // not columns: two cores writing the two halves of the same rows slow each
    // other down); [parts, 2 parts): slices of the other parameters.
    const std::size_t parts = static_cast<std::size_t>(pool_.size());
    pool_.Run(2 * parts, [&](std::size_t item, int t) {
      const LayerLayout& first = layout_[0];
      if (item < parts) {
        const auto [r0, r1] = Split(first.in, parts, item);
        if (r0 == r1) return;
        internal::SparseRowPass pass;
        pass.row_begin = r0;
        pass.row_end = r1;
        pass.ld = first.out;
        pass.c0 = 0;
        pass.c1 = first.out;
        pass.w = params.data() + first.offset;
        pass.index = index_.view();
        pass.dz = dz0_.data();
        if (mode == Mode::kAdam) {
          pass.m = m.data() + first.offset;
          pass.v = v.data() + first.offset;
          pass.adam = &adam;
          if (anchor != nullptr) {
            pass.anchor = anchor + first.offset;
            pass.mu = mu;
          }
        } else {
          pass.grad = grad.data() + first.offset;
        }
        pass.scratch = scratch_[static_cast<std::size_t>(t)].row.data();
        internal::RunSparseRowPass(pass);
        return;
      }
      // The first layer's bias and the other layers: a slice, the shards
      // summed in shard order.
      const auto [e0, e1] = Split(dense_size_, parts, item - parts);
      if (e0 == e1) return;
      float* sum = shard_grads_[0].data();
      for (std::size_t s = 1; s < shards; ++s) {
        const float* add = shard_grads_[s].data();
        for (std::size_t e = e0; e < e1; ++e) sum[e] += add[e];
      }
      const std::size_t o = dense_begin_ + e0;
      if (mode == Mode::kAdam) {
        if (anchor != nullptr) {
          internal::AddProximal(sum + e0, sum + e0, params.data() + o, anchor + o, mu, e1 - e0);
        }
        internal::AdamStep(params.data() + o, m.data() + o, v.data() + o, sum + e0, e1 - e0,
                           adam);
      } else {
        for (std::size_t e = e0; e < e1; ++e) grad[dense_begin_ + e] += sum[e];
      }
    });
    double loss = 0;
    for (std::size_t s = 0; s < shards; ++s) loss += shard_loss_[s];
    return loss;
  }

 private:
  struct Scratch {
    Floats da, db;  // gradients w.r.t. activations, ping-pong
    Floats row;     // a first-layer weight row's gradient
    std::vector<std::uint32_t> draws;  // a row's dropout draws (one spare for odd widths)
  };

  // A batch's rows grouped by input bit (internal::BitIndex).
  struct Index {
    std::vector<std::uint32_t> start, fill, samples;
    internal::BitIndex view() const { return {start.data(), samples.data()}; }
  };

  static void BuildIndex(const SparseRows& x, std::span<const std::size_t> rows, Index& index) {
    std::fill(index.start.begin(), index.start.end(), 0u);
    std::size_t total = 0;
    for (std::size_t r : rows) {
      for (std::uint32_t j : x.row(r)) ++index.start[j + 1];
      total += x.row(r).size();
    }
    for (std::size_t j = 1; j < index.start.size(); ++j) index.start[j] += index.start[j - 1];
    std::copy(index.start.begin(), index.start.end() - 1, index.fill.begin());
    index.samples.resize(total);
    for (std::size_t k = 0; k < rows.size(); ++k) {
      for (std::uint32_t j : x.row(rows[k])) {
        index.samples[index.fill[j]++] = static_cast<std::uint32_t>(k);
      }
    }
  }

  // Applies ReLU then dropout to layer l's pre-activations in acts_[l] for
  // batch rows [begin, end), recording each unit's gate (0, or the dropout
  // scale: the derivative of the two) in gates_[l].
  void Gate(std::size_t l, std::size_t begin, std::size_t end, const DropoutKey* dropout,
            Scratch& scratch) {
    const std::size_t width = spec_.hidden[l];
    if (dropout == nullptr) {
      internal::ReluDropout(acts_[l].data() + begin * width, gates_[l].data() + begin * width,
                            nullptr, 0, 1.0f, (end - begin) * width);
      return;
    }
    std::uint32_t* draws = scratch.draws.data();
    for (std::size_t k = begin; k < end; ++k) {
      // One generator per (batch, layer, row): the mask does not depend on
      // which thread computes the row.
      core::Xoshiro256 rng(core::MixKeys(dropout->batch_key, (std::uint64_t{l} << 32) | k));
      for (std::size_t c = 0; c < width; c += 2) {
        const std::uint64_t bits = rng.Next();
        draws[c] = static_cast<std::uint32_t>(bits);
        draws[c + 1] = static_cast<std::uint32_t>(bits >> 32);
      }
      internal::ReluDropout(acts_[l].data() + k * width, gates_[l].data() + k * width, draws,
                            dropout->threshold, dropout->scale, width);
    }
  }

  // Forward and backward over batch rows [begin, end); writes the gradients
  // of the first layer's bias and of the dense layers to `dense_grad`, the
  // first layer's pre-activation gradient to dz0_, and returns the loss sum.
  double Shard(const Dataset& data, std::span<const std::size_t> rows, std::size_t begin,
               std::size_t end, std::span<const float> params, float grad_scale,
               const DropoutKey* dropout, Floats& dense_grad, Scratch& scratch) {
    const std::size_t n = end - begin;
    const Eigen::Index en = Idx(n);
    const std::size_t num_layers = layout_.size();  // hidden layers + head
    const std::size_t hidden_layers = num_layers - 1;
    const float* p = params.data();

    // Forward.
    const LayerLayout& first = layout_[0];
    internal::SparseForward(data.x, rows.subspan(begin, n), p + first.offset,
                            p + first.bias_offset(), first.out,
                            acts_[0].data() + begin * first.out);
    Gate(0, begin, end, dropout, scratch);
    for (std::size_t l = 1; l < num_layers; ++l) {
      const LayerLayout& ly = layout_[l];
      const bool head = l == hidden_layers;
      float* out = head ? logits_.data() + begin * ly.out : acts_[l].data() + begin * ly.out;
      MatMap z(out, en, ly.out);
      z.noalias() = ConstMatMap(acts_[l - 1].data() + begin * ly.in, en, ly.in) *
                    ConstMatMap(p + ly.offset, ly.in, ly.out);
      z.rowwise() += ConstRowVecMap(p + ly.bias_offset(), ly.out);
      if (!head) Gate(l, begin, end, dropout, scratch);
    }

    // Masked BCE with logits; d(loss)/d(logit) = sigmoid(z) - y on labelled entries.
    const std::size_t tasks = spec_.num_tasks;
    double loss = 0;
    float* d = logits_.data() + begin * tasks;  // overwritten by the logit gradients
    for (std::size_t k = 0; k < n; ++k) {
      const std::int8_t* y = data.y.data() + rows[begin + k] * tasks;
      for (std::size_t t = 0; t < tasks; ++t) {
        float& z = d[k * tasks + t];
        if (y[t] == kMissing) {
          z = 0.0f;
          continue;
        }
        const float label = y[t] == 1 ? 1.0f : 0.0f;
        loss += static_cast<double>(std::max(z, 0.0f) - z * label +
                                    std::log1p(std::exp(-std::fabs(z))));
        z = (Sigmoid(z) - label) * grad_scale;
      }
    }

    // Backward through the dense layers, head first.
    float* da = scratch.da.data();
    float* db = scratch.db.data();
    const float* dz = d;
    for (std::size_t l = num_layers - 1; l >= 1; --l) {
      const LayerLayout& ly = layout_[l];
      ConstMatMap dzm(dz, en, ly.out);
      ConstMatMap a_in(acts_[l - 1].data() + begin * ly.in, en, ly.in);
      float* gw = dense_grad.data() + (ly.offset - dense_begin_);
      MatMap(gw, ly.in, ly.out).noalias() = a_in.transpose() * dzm;
      RowVecMap(gw + ly.weight_count(), ly.out) = dzm.colwise().sum();
      // Gradient w.r.t. the layer's input, through the previous layer's gate.
      float* dst = l - 1 == 0 ? dz0_.data() + begin * ly.in : da;
      MatMap dam(dst, en, ly.in);
      dam.noalias() = dzm * ConstMatMap(p + ly.offset, ly.in, ly.out).transpose();
      const float* gate = gates_[l - 1].data() + begin * ly.in;
      for (std::size_t i = 0; i < n * ly.in; ++i) dst[i] *= gate[i];
      dz = dst;
      std::swap(da, db);
    }
    RowVecMap(dense_grad.data(), first.out) =
        ConstMatMap(dz0_.data() + begin * first.out, en, first.out).colwise().sum();
    return loss;
  }

  WorkerPool pool_;
  std::vector<Scratch> scratch_;  // one per thread
  NetSpec spec_;
  std::vector<LayerLayout> layout_;
  Index index_;  // the batch's rows grouped by input bit
  // Batch-wide, rows of one shard written by one thread at a time.
  std::vector<Floats> acts_;   // per hidden layer: activations after ReLU+dropout
  std::vector<Floats> gates_;  // per hidden layer: 0 or the dropout scale
  Floats logits_;              // then the logit gradients
  Floats dz0_;                 // first layer's pre-activation gradient
  std::size_t dense_begin_ = 0;  // the first layer's bias, then the other layers
  std::size_t dense_size_ = 0;
  std::vector<Floats> shard_grads_;  // dense layers' gradient per shard
  std::vector<double> shard_loss_;
};

namespace {

core::Status ValidateOptions(const TrainOptions& o) {
  if (o.batch_size == 0) return core::InvalidArgument("batch_size is 0", "TrainOptions.batch_size");
  if (o.batch_size > kMaxBatch) {
    return core::InvalidArgument("batch_size above " + std::to_string(kMaxBatch),
                                 "TrainOptions.batch_size");
  }
  if (o.threads < 1 || o.threads > 256) {
    return core::InvalidArgument("threads must be in [1, 256]", "TrainOptions.threads");
  }
  if (!(std::isfinite(o.learning_rate) && o.learning_rate > 0)) {
    return core::InvalidArgument("learning_rate must be finite and positive",
                                 "TrainOptions.learning_rate");
  }
  if (!(o.beta1 >= 0 && o.beta1 < 1)) {
    return core::InvalidArgument("beta1 must be in [0, 1)", "TrainOptions.beta1");
  }
  if (!(o.beta2 >= 0 && o.beta2 < 1)) {
    return core::InvalidArgument("beta2 must be in [0, 1)", "TrainOptions.beta2");
  }
  if (!(std::isfinite(o.eps) && o.eps > 0)) {
    return core::InvalidArgument("eps must be finite and positive", "TrainOptions.eps");
  }
  if (!(std::isfinite(o.weight_decay) && o.weight_decay >= 0)) {
    return core::InvalidArgument("weight_decay must be finite and >= 0",
                                 "TrainOptions.weight_decay");
  }
  if (!(std::isfinite(o.proximal_mu) && o.proximal_mu >= 0)) {
    return core::InvalidArgument("proximal_mu must be finite and >= 0",
                                 "TrainOptions.proximal_mu");
  }
  return core::Status::Ok();
}

core::Status ValidateData(const NetSpec& spec, const Dataset& data) {
  FEDRX_RETURN_IF_ERROR(ValidateInput(spec, data.x));
  if (data.num_tasks() != spec.num_tasks) {
    return core::InvalidArgument("dataset has " + std::to_string(data.num_tasks()) +
                                     " tasks, network " + std::to_string(spec.num_tasks),
                                 "Dataset.tasks");
  }
  if (data.y.size() != data.size() * spec.num_tasks) {
    return core::InvalidArgument("label count " + std::to_string(data.y.size()) +
                                     " != rows x tasks",
                                 "Dataset.y");
  }
  for (std::size_t i = 0; i < data.y.size(); ++i) {
    const std::int8_t v = data.y[i];
    if (v != 0 && v != 1 && v != kMissing) {
      return core::InvalidArgument(
          "label " + std::to_string(v) + " is not 0, 1 or missing",
          "Dataset.y row " + std::to_string(i / spec.num_tasks) + " task " +
              std::to_string(i % spec.num_tasks));
    }
  }
  return core::Status::Ok();
}

std::size_t CountLabelled(const Dataset& data, std::span<const std::size_t> rows) {
  const std::size_t tasks = data.num_tasks();
  std::size_t n = 0;
  for (std::size_t r : rows) {
    const std::int8_t* y = data.y.data() + r * tasks;
    for (std::size_t t = 0; t < tasks; ++t) n += y[t] != kMissing;
  }
  return n;
}

// The batches of a training run in order, epoch after epoch, each epoch a
// fresh shuffle of the rows keyed by (seed, epoch). Batches without any label
// are left out: no label, no gradient, and an Adam step on a zero gradient
// would still move the weights by momentum. A returned batch's rows stay
// valid until the next call.
class BatchStream {
 public:
  struct Batch {
    std::uint64_t epoch_key = 0;
    std::uint32_t epoch = 0;
    std::size_t index = 0;  // within the epoch, counting skipped batches
    std::span<const std::size_t> rows;
    std::size_t labelled = 0;
  };

  BatchStream(const Dataset& data, std::size_t batch, std::uint32_t epochs, std::uint64_t seed)
      : data_(data), batch_(batch), epochs_(epochs), seed_(seed) {}

  // The next batch; false after the last one.
  bool Next(Batch& out) {
    const std::size_t n = data_.size();
    while (epoch_ < epochs_) {
      std::vector<std::size_t>& order = order_;
      if (first_ == 0 && index_ == 0) {
        order.resize(n);
        std::iota(order.begin(), order.end(), std::size_t{0});
        core::Xoshiro256(core::MixKeys(seed_, epoch_)).Shuffle(order.data(), n);
      }
      if (first_ >= n) {
        ++epoch_;
        first_ = 0;
        index_ = 0;
        continue;
      }
      out.epoch_key = core::MixKeys(seed_, epoch_);
      out.epoch = epoch_;
      out.index = index_++;
      out.rows = std::span<const std::size_t>(order.data() + first_, std::min(batch_, n - first_));
      first_ += out.rows.size();
      out.labelled = CountLabelled(data_, out.rows);
      if (out.labelled != 0) return true;
    }
    return false;
  }

 private:
  const Dataset& data_;
  const std::size_t batch_;
  const std::uint32_t epochs_;
  const std::uint64_t seed_;
  std::vector<std::size_t> order_;
  std::uint32_t epoch_ = 0;
  std::size_t first_ = 0;
  std::size_t index_ = 0;
};

}  // namespace

// Adam's moments and step count, and an aligned working copy of the
// parameters (the caller's vector need not start on a cache line).
struct AdamState {
  Floats params, m, v;
  Floats anchor;  // FedProx: the parameters Train() started from
  std::uint64_t step = 0;
};

Trainer::Trainer(TrainOptions options)
    : options_(options),
      engine_(std::make_unique<BatchEngine>(std::clamp(options.threads, 1, 256))),
      adam_(std::make_unique<AdamState>()) {}

Trainer::~Trainer() = default;

void Trainer::ResetOptimizer() {
  adam_->m.clear();
  adam_->v.clear();
  adam_->step = 0;
}

core::Result<TrainStats> Trainer::Train(const NetSpec& spec, const Dataset& data,
                                        std::vector<float>& params) {
  const auto start = std::chrono::steady_clock::now();
  FEDRX_RETURN_IF_ERROR(ValidateOptions(options_));
  FEDRX_RETURN_IF_ERROR(ValidateParameters(spec, params));
  FEDRX_RETURN_IF_ERROR(ValidateData(spec, data));

  const std::size_t count = params.size();
  AdamState& state = *adam_;
  if (!options_.keep_optimizer_state || state.m.size() != count) {
    state.m.assign(count, 0.0f);
    state.v.assign(count, 0.0f);
    state.step = 0;
  }
  state.params.assign(params.begin(), params.end());
  const float* anchor = nullptr;
  if (options_.proximal_mu > 0) {
    state.anchor.assign(params.begin(), params.end());
    anchor = state.anchor.data();
  } else {
    Floats().swap(state.anchor);
  }
  const std::size_t n = data.size();
  const std::size_t batch =
      std::min<std::size_t>(options_.batch_size, std::max<std::size_t>(n, 1));
  engine_->Configure(spec, batch);

  DropoutKey dropout;
  // Drop when a uniform 32-bit draw is below p * 2^32.
  dropout.threshold = static_cast<std::uint32_t>(
      std::min(std::ldexp(static_cast<double>(spec.dropout), 32), 4294967295.0));
  dropout.scale = 1.0f / (1.0f - spec.dropout);
  const DropoutKey* dropout_ptr = spec.dropout > 0.0f ? &dropout : nullptr;

  internal::AdamCoefficients adam;
  adam.beta1 = options_.beta1;
  adam.one_minus_beta1 = 1.0f - options_.beta1;
  adam.beta2 = options_.beta2;
  adam.one_minus_beta2 = 1.0f - options_.beta2;
  adam.eps = options_.eps;
  adam.weight_decay = options_.weight_decay;

  TrainStats stats;
  std::vector<double> loss_sum(options_.epochs, 0.0);
  std::vector<std::size_t> labelled(options_.epochs, 0);
  BatchStream stream(data, batch, options_.epochs, options_.seed);
  BatchStream::Batch current;
  while (stream.Next(current)) {
    ++state.step;
    const double t = static_cast<double>(state.step);
    const double bc1 = 1.0 - std::pow(static_cast<double>(options_.beta1), t);
    const double bc2 = 1.0 - std::pow(static_cast<double>(options_.beta2), t);
    adam.step_size = static_cast<float>(options_.learning_rate / bc1);
    adam.inv_sqrt_bc2 = static_cast<float>(1.0 / std::sqrt(bc2));
    dropout.batch_key = core::MixKeys(current.epoch_key, current.index + 1);
    loss_sum[current.epoch] +=
        engine_->Step(data, current.rows, state.params, 1.0f / static_cast<float>(current.labelled),
                      dropout_ptr, Mode::kAdam, {}, state.m, state.v, adam, anchor,
                      options_.proximal_mu);
    labelled[current.epoch] += current.labelled;
  }
  std::copy(state.params.begin(), state.params.end(), params.begin());
  for (std::uint32_t e = 0; e < options_.epochs; ++e) {
    stats.epoch_loss.push_back(labelled[e] == 0 ? std::numeric_limits<double>::quiet_NaN()
                                                : loss_sum[e] / static_cast<double>(labelled[e]));
  }
  stats.samples_seen = std::uint64_t{options_.epochs} * n;
  stats.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return stats;
}

core::Result<double> LossAndGradient(const NetSpec& spec, std::span<const float> params,
                                     const Dataset& data, std::vector<float>& grad, int threads) {
  FEDRX_RETURN_IF_ERROR(ValidateParameters(spec, params));
  FEDRX_RETURN_IF_ERROR(ValidateData(spec, data));
  if (threads < 1 || threads > 256) {
    return core::InvalidArgument("threads must be in [1, 256]", "threads");
  }
  grad.assign(params.size(), 0.0f);
  const std::size_t n = data.size();
  std::vector<std::size_t> all(n);
  std::iota(all.begin(), all.end(), std::size_t{0});
  std::vector<std::span<const std::size_t>> chunks;
  for (std::size_t first = 0; first < n; first += kGradientChunk) {
    const std::span<const std::size_t> rows(all.data() + first, std::min(kGradientChunk, n - first));
    if (CountLabelled(data, rows) != 0) chunks.push_back(rows);
  }
  const std::size_t labelled = CountLabelled(data, all);
  if (chunks.empty()) return 0.0;
  // In kAccumulate mode the engine only reads the parameters.
  Floats copy(params.begin(), params.end());
  BatchEngine engine(threads);
  engine.Configure(spec, std::min(kGradientChunk, n));
  double loss = 0;
  for (const std::span<const std::size_t> rows : chunks) {
    loss += engine.Step(data, rows, copy, 1.0f / static_cast<float>(labelled), nullptr,
                        Mode::kAccumulate, grad, {}, {}, {});
  }
  return loss / static_cast<double>(labelled);
}

}  // namespace fedrx::ml
