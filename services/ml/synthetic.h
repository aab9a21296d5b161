// Synthetic multi-task datasets shaped like fingerprint data (sparse binary
// rows, a few percent of bits set, missing labels), for tests and benchmarks
// that must not depend on files. Labels come from a planted linear model, so
// two datasets with the same model_seed and different sample_seed are a train
// and a held-out set of the same problem. Pure; deterministic on every platform.
#pragma once

#include <cstddef>
#include <cstdint>

#include "services/ml/dataset.h"

namespace fedrx::ml {

struct SyntheticOptions {
  std::size_t rows = 1000;
  std::uint32_t dim = 2048;
  // Set bits per row, drawn uniformly in [bits_per_row / 2, 3 * bits_per_row / 2].
  std::uint32_t bits_per_row = 40;
  std::uint32_t tasks = 12;
  double missing_fraction = 0.15;  // each label independently
  double positive_fraction = 0.5;  // approximate, per task
  // Fraction of labels flipped after thresholding (0: linearly separable).
  double label_noise = 0.0;
  std::uint64_t model_seed = 1;   // the planted model: which bits push each task
  std::uint64_t sample_seed = 2;  // the rows drawn from it
};

// Tasks are named "task0", "task1", ...; smiles and scaffolds are empty strings.
Dataset MakeSyntheticDataset(const SyntheticOptions& options);

}  // namespace fedrx::ml
