#include "services/privacy/secagg_protocol.h"

#include <algorithm>
#include <numeric>
#include <string>

namespace fedrx::privacy {

core::Status SecAggParams::Validate() const {
  if (dimension == 0) return core::InvalidArgument("dimension is 0", "SecAggParams.dimension");
  if (max_sites < 2) return core::InvalidArgument("fewer than 2 sites", "SecAggParams.max_sites");
  if (max_sites > (std::size_t{1} << 31) - 1) {
    return core::InvalidArgument("too many sites", "SecAggParams.max_sites");
  }
  if (threshold < 2 || threshold > max_sites) {
    return core::InvalidArgument("threshold " + std::to_string(threshold) + " outside [2, " +
                                     std::to_string(max_sites) + "]",
                                 "SecAggParams.threshold");
  }
  if (neighbours != 0) {
    if (neighbours % 2 != 0) {
      return core::InvalidArgument("neighbours must be even", "SecAggParams.neighbours");
    }
    if (threshold > neighbours + 1) {
      return core::InvalidArgument("threshold " + std::to_string(threshold) +
                                       " exceeds a neighbourhood of " +
                                       std::to_string(neighbours + 1),
                                   "SecAggParams.threshold");
    }
  }
  return encoding.Validate(max_sites);
}

NeighbourGraph::NeighbourGraph(std::vector<ParticipantId> u1, std::size_t k,
                               const Key32& graph_seed)
    : u1_(std::move(u1)) {
  const std::size_t n = u1_.size();
  complete_ = k == 0 || n == 0 || k >= n - 1;
  if (complete_) return;
  half_ = k / 2;
  // Fisher-Yates driven by the seed's keystream; modulo bias is below 2^-32 *
  // n, irrelevant for a graph that need only be unpredictable before the keys.
  std::vector<std::uint32_t> words(n, 0);
  AccumulateMask(graph_seed, words);
  at_pos_.resize(n);
  std::iota(at_pos_.begin(), at_pos_.end(), std::size_t{0});
  for (std::size_t i = n; i-- > 1;) std::swap(at_pos_[i], at_pos_[words[i] % (i + 1)]);
  ring_pos_.resize(n);
  for (std::size_t p = 0; p < n; ++p) ring_pos_[at_pos_[p]] = p;
}

std::vector<ParticipantId> NeighbourGraph::Of(ParticipantId u) const {
  const auto it = std::lower_bound(u1_.begin(), u1_.end(), u);
  if (it == u1_.end() || *it != u) return {};
  std::vector<ParticipantId> out;
  if (complete_) {
    out.reserve(u1_.size() - 1);
    for (ParticipantId v : u1_) {
      if (v != u) out.push_back(v);
    }
    return out;
  }
  const std::size_t n = u1_.size();
  const std::size_t p = ring_pos_[static_cast<std::size_t>(it - u1_.begin())];
  for (std::size_t d = 1; d <= half_; ++d) {
    out.push_back(u1_[at_pos_[(p + d) % n]]);
    out.push_back(u1_[at_pos_[(p + n - d) % n]]);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

bool NeighbourGraph::Adjacent(ParticipantId a, ParticipantId b) const {
  if (a == b) return false;
  const auto ia = std::lower_bound(u1_.begin(), u1_.end(), a);
  const auto ib = std::lower_bound(u1_.begin(), u1_.end(), b);
  if (ia == u1_.end() || *ia != a || ib == u1_.end() || *ib != b) return false;
  if (complete_) return true;
  const std::size_t n = u1_.size();
  const std::size_t pa = ring_pos_[static_cast<std::size_t>(ia - u1_.begin())];
  const std::size_t pb = ring_pos_[static_cast<std::size_t>(ib - u1_.begin())];
  const std::size_t d = pa > pb ? pa - pb : pb - pa;
  return std::min(d, n - d) <= half_;
}

}  // namespace fedrx::privacy
