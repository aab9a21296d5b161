#include "services/trial/isotonic.h"

#include <cstddef>

namespace fedrx::trial {

std::vector<double> IsotonicRegression(std::span<const double> values,
                                       std::span<const double> weights) {
  const std::size_t n = values.size();
  // A stack of blocks, each the weighted mean of a run of adjacent inputs.
  // Pushing each value and merging while the top two blocks are out of order
  // gives the same fit as repeatedly pooling the first violating pair (the
  // fit is unique), in linear time.
  struct Block {
    double mean;
    double weight;
    std::size_t count;
  };
  std::vector<Block> blocks;
  blocks.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    const double w = weights.empty() ? 1.0 : weights[i];
    blocks.push_back({values[i], w, 1});
    while (blocks.size() > 1 && blocks[blocks.size() - 2].mean > blocks.back().mean) {
      const Block top = blocks.back();
      blocks.pop_back();
      Block& below = blocks.back();
      const double total = below.weight + top.weight;
      below.mean = (below.mean * below.weight + top.mean * top.weight) / total;
      below.weight = total;
      below.count += top.count;
    }
  }
  std::vector<double> fit;
  fit.reserve(n);
  for (const Block& b : blocks) fit.insert(fit.end(), b.count, b.mean);
  return fit;
}

}  // namespace fedrx::trial
