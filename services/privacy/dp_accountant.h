// Rényi differential privacy (RDP) accounting for the sampled Gaussian
// mechanism, as DP-FedAvg composes it over rounds, and its conversion to
// (epsilon, delta). Pure functions and an immutable accountant; thread-safe.
//
// References:
//   I. Mironov, K. Talwar, L. Zhang, "Rényi Differential Privacy of the
//   Sampled Gaussian Mechanism", arXiv:1908.10530 (2019), Section 3.3: the
//   RDP of one step at integer and fractional orders.
//   I. Mironov, "Rényi Differential Privacy", CSF 2017, Proposition 3: the
//   classic conversion eps = rdp(a) + log(1/delta) / (a - 1).
//   B. Balle, G. Barthe, M. Gaboardi, J. Hsu, T. Sato, "Hypothesis Testing
//   Interpretations and Renyi Differential Privacy", AISTATS 2020, Theorem 21:
//   the tighter eps = rdp(a) + log((a - 1) / a) - (log(delta) + log(a)) / (a - 1),
//   the one Opacus' RDPAccountant reports (the default here).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "services/core/status.h"

namespace fedrx::privacy {

// Opacus' default orders: 1.1, 1.2, ..., 10.9, then 12, 13, ..., 63.
std::vector<double> DefaultRdpOrders();

// RDP at order `alpha` (> 1) of one step of the sampled Gaussian mechanism:
// each record (here: each site) is included with probability `q` in [0, 1],
// the sum of the included (L2-clipped to C) contributions gets N(0, (sigma C)^2)
// noise. q = 1 is the plain Gaussian mechanism: alpha / (2 sigma^2) exactly.
// Integer orders use the binomial expansion, fractional ones the two
// erfc-weighted series of Mironov et al. (2019); both in log space.
// Returns +inf when the value overflows; NaN for arguments out of range.
double SampledGaussianRdp(double q, double sigma, double alpha);

enum class RdpConversion {
  // eps = rdp + log(1/delta) / (alpha - 1): TensorFlow Privacy's and
  // Opacus' conversion before Opacus 1.0.
  kClassic,
  // Balle et al. (2020), Theorem 21, as Opacus' RDPAccountant.get_epsilon.
  kBalle2020,
};

struct EpsilonAt {
  double epsilon = 0;
  // The order that gave the smallest epsilon.
  double order = 0;
};

// The smallest epsilon over `orders` for total RDP `rdp` (same length) at
// `delta` in (0, 1). kInvalidArgument for mismatched or out-of-range input.
core::Result<EpsilonAt> RdpToEpsilon(std::span<const double> orders, std::span<const double> rdp,
                                     double delta, RdpConversion conversion);

// The privacy spent by a study that runs rounds of the sampled Gaussian
// mechanism with fixed q and sigma, and its budget. RDP composes additively,
// so after T rounds the RDP at each order is T times one round's; the
// accountant keeps one round's RDP per order and needs no other state: a
// resumed study recomputes what it spent from its round count.
class RdpAccountant {
 public:
  struct Options {
    double sampling_rate = 1.0;     // q: probability a site takes part in a round
    double noise_multiplier = 0;    // sigma: noise stddev / clip norm
    double delta = 1e-5;            // target delta, in (0, 1)
    double epsilon_budget = 0;      // the study's budget; 0 means unlimited
    RdpConversion conversion = RdpConversion::kBalle2020;
    std::vector<double> orders = DefaultRdpOrders();
  };

  // kInvalidArgument names the option that is out of range.
  static core::Result<RdpAccountant> Create(Options options);

  const Options& options() const { return options_; }
  // One round's RDP at each order.
  std::span<const double> round_rdp() const { return round_rdp_; }

  // (epsilon, delta)-DP after `rounds` rounds; epsilon 0 after none.
  EpsilonAt SpentAfter(std::uint64_t rounds) const;
  double EpsilonAfter(std::uint64_t rounds) const { return SpentAfter(rounds).epsilon; }
  // Whether running round `next_round` (counting from 1, so that rounds
  // 1..next_round will have run) would take epsilon past the budget. Never
  // true with an unlimited budget.
  bool WouldExceed(std::uint64_t next_round) const;
  // The most rounds the budget allows (capped at kMaxRounds); kMaxRounds
  // with an unlimited budget.
  std::uint64_t RoundsAllowed() const;
  static constexpr std::uint64_t kMaxRounds = 1'000'000'000;

 private:
  explicit RdpAccountant(Options options) : options_(std::move(options)) {}
  Options options_;
  std::vector<double> round_rdp_;
};

}  // namespace fedrx::privacy
