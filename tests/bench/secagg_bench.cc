// fedrx_secagg_bench: what secure aggregation (services/privacy, Bonawitz et
// al. CCS 2017, optionally SecAgg+) adds to a round, against plain FedAvg in
// the same run, for a model of --params floats (default: the 2048 -> 512 -> 12
// net, 1,055,244 parameters) and --sites 10,50,100:
//   site   extra compute: the four SecAggClient stages (key generation, Shamir
//          sharing and sealing, fixed-point encoding and n ChaCha20 masks,
//          opening and revealing shares) on --threads threads (default 2),
//          CPU and wall seconds, mean and max over the sites; against the
//          site's local training for one epoch of --train-rows rows, measured
//          here with the real Trainer (2 threads, synthetic Tox21-shaped data,
//          as fedrx_trainer_bench): CPU against CPU, wall against wall.
//          extra bytes: everything the site sends and receives for secagg
//          (ids 4 B, keys 32 B, sealed shares 112 B, masked words 4 B, revealed
//          shares 48 B) minus the 4 B/parameter float32 update plain FedAvg sends.
//   server extra compute: every SecAggServer call (accepting, summing mod 2^32,
//          reconstruction, mask removal, dequantising) against plain FedAvg's
//          running weighted mean of the same number of float updates (the
//          arithmetic of coordinator::FedAvg::Accept); extra bytes likewise.
// Each configuration runs with no dropouts and with --dropout-fraction of the
// sites dropping after ShareKeys (the server's worst case: their pairwise masks
// are regenerated for every survivor), and SecAgg+ with --plus-neighbours k
// (t = k/2 + 1) for n > k + 1, with the same dropouts. Thresholds: a majority,
// n/2 + 1, for the complete graph. Every run checks its sum against the exact
// one.
// Appends JSON lines {"bench","metric","value","unit","baseline","ratio"}.
//
// Usage: fedrx_secagg_bench [--out FILE] [--params N] [--sites A,B,...]
//            [--dropout-fraction F] [--plus-neighbours K] [--train-rows N]
//            [--threads N]
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "services/ml/model.h"
#include "services/ml/synthetic.h"
#include "services/ml/trainer.h"
#include "services/privacy/secagg_client.h"
#include "services/privacy/secagg_server.h"
#include "tests/bench/json_lines.h"

namespace fedrx::bench {
namespace {

using Steady = std::chrono::steady_clock;
using privacy::ParticipantId;

struct Config {
  std::string out;
  std::size_t params = 0;  // 0: the default net's
  std::vector<int> sites = {10, 50, 100};
  double dropout_fraction = 0.1;
  std::size_t plus_neighbours = 16;
  std::size_t train_rows = 20000;
  unsigned threads = 2;  // as the trainer: a site's two cores
};

[[noreturn]] void Die(const std::string& what) {
  std::cerr << "fedrx_secagg_bench: " << what << "\n";
  std::exit(1);
}

double Seconds(Steady::time_point since) {
  return std::chrono::duration<double>(Steady::now() - since).count();
}

// CPU time of the whole process, all threads: the compute figure that other
// processes on a shared machine do not inflate (wall time is reported too).
double ProcessCpu() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         1e-6 * static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

// Wall and CPU seconds of one call (process CPU: with --threads > 1 the
// masks are generated on worker threads too; nothing else runs meanwhile).
struct Timer {
  Steady::time_point wall = Steady::now();
  double cpu = ProcessCpu();
  void AddTo(double& wall_sum, double& cpu_sum) const {
    wall_sum += Seconds(wall);
    cpu_sum += ProcessCpu() - cpu;
  }
};

Config ParseArgs(int argc, char** argv) {
  Config c;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) Die(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--out") {
      c.out = value();
    } else if (arg == "--params") {
      c.params = static_cast<std::size_t>(std::atoll(value().c_str()));
    } else if (arg == "--sites") {
      c.sites.clear();
      std::stringstream list(value());
      std::string item;
      while (std::getline(list, item, ',')) c.sites.push_back(std::atoi(item.c_str()));
    } else if (arg == "--dropout-fraction") {
      c.dropout_fraction = std::atof(value().c_str());
    } else if (arg == "--plus-neighbours") {
      c.plus_neighbours = static_cast<std::size_t>(std::atoll(value().c_str()));
    } else if (arg == "--threads") {
      c.threads = static_cast<unsigned>(std::atoi(value().c_str()));
    } else if (arg == "--train-rows") {
      c.train_rows = static_cast<std::size_t>(std::atoll(value().c_str()));
    } else {
      Die("unknown argument " + arg);
    }
  }
  for (int n : c.sites) {
    if (n < 3) Die("--sites needs at least 3 sites per configuration");
  }
  if (c.dropout_fraction < 0 || c.dropout_fraction >= 0.5) Die("--dropout-fraction in [0, 0.5)");
  return c;
}

// Site s's update and weight: deterministic, so the exact sum is known.
float SiteValue(int s, std::size_t i) {
  return static_cast<float>(static_cast<int>((i * 7 + static_cast<std::size_t>(s) * 13) % 2001) -
                            1000) /
         1000.0f;
}
double SiteWeight(int s) { return 0.2 + 0.8 * static_cast<double>(s % 5) / 4.0; }

// ---- wire sizes (payload bytes; the envelope is the same with and without secagg) -------

constexpr double kIdBytes = 4, kKeyBytes = 32;
constexpr double kSealedBytes = 8 + privacy::kSealedShareBytes;  // from, to, ciphertext
constexpr double kRevealedBytes = 4 + 4 + 8 * privacy::kShareElements;

struct Costs {
  double site_seconds_mean = 0, site_seconds_max = 0;
  double site_cpu_mean = 0, site_cpu_max = 0;
  double server_cpu = 0;
  double site_bytes_mean = 0;  // sent + received
  double server_seconds = 0;
  double server_bytes = 0;  // received + sent
  std::size_t survivors = 0;
};

Costs RunSecAgg(std::size_t dim, int n, std::size_t dropped, std::size_t neighbours,
                std::size_t threshold, unsigned threads) {
  privacy::SecAggParams params;
  params.round = 1;
  params.dimension = dim;
  params.max_sites = static_cast<std::size_t>(n);
  params.threshold = threshold;
  params.neighbours = neighbours;
  auto server = privacy::SecAggServer::Create(params, threads);
  if (!server.ok()) Die(server.status().ToString());

  std::vector<privacy::SecAggClient> clients;
  std::vector<double> site_seconds(static_cast<std::size_t>(n), 0);
  std::vector<double> site_cpu(static_cast<std::size_t>(n), 0);
  std::vector<double> site_bytes(static_cast<std::size_t>(n), 0);
  double server_seconds = 0, server_cpu = 0, server_bytes = 0;
  auto timed_server = [&](auto&& f) {
    const Timer t;
    auto r = f();
    t.AddTo(server_seconds, server_cpu);
    return r;
  };

  for (int s = 0; s < n; ++s) {
    auto c = privacy::SecAggClient::Create(params, static_cast<ParticipantId>(s + 1), threads);
    if (!c.ok()) Die(c.status().ToString());
    clients.push_back(std::move(*c));
  }
  // Stage 0.
  for (int s = 0; s < n; ++s) {
    const Timer t;
    auto adv = clients[s].AdvertiseKeys();
    t.AddTo(site_seconds[s], site_cpu[s]);
    if (!adv.ok()) Die(adv.status().ToString());
    site_bytes[s] += kIdBytes + 2 * kKeyBytes;
    server_bytes += kIdBytes + 2 * kKeyBytes;
    if (auto st = timed_server([&] { return server->AcceptKeys(*adv); }); !st.ok()) {
      Die(st.ToString());
    }
  }
  auto roster = timed_server([&] { return server->CloseKeys(); });
  if (!roster.ok()) Die(roster.status().ToString());
  const double roster_bytes = static_cast<double>(n) * (kIdBytes + 2 * kKeyBytes) + kKeyBytes;
  // Stage 1.
  for (int s = 0; s < n; ++s) {
    site_bytes[s] += roster_bytes;
    server_bytes += roster_bytes;
    const Timer t;
    auto msg = clients[s].ShareKeys(*roster);
    t.AddTo(site_seconds[s], site_cpu[s]);
    if (!msg.ok()) Die(msg.status().ToString());
    const double bytes =
        kIdBytes + kKeyBytes + static_cast<double>(msg->shares.size()) * kSealedBytes;
    site_bytes[s] += bytes;
    server_bytes += bytes;
    if (auto st = timed_server([&] { return server->AcceptShares(*msg); }); !st.ok()) {
      Die(st.ToString());
    }
  }
  // The last `dropped` sites vanish after sharing.
  auto bundles = timed_server([&] { return server->CloseShares(); });
  if (!bundles.ok()) Die(bundles.status().ToString());
  // Stage 2: each masked input goes straight into the server's running sum.
  std::vector<float> update(dim);
  for (auto& bundle : *bundles) {
    const int s = static_cast<int>(bundle.to) - 1;
    if (s >= n - static_cast<int>(dropped)) continue;
    const double bundle_bytes = kIdBytes + static_cast<double>(bundle.shares.size()) * kSealedBytes;
    site_bytes[s] += bundle_bytes;
    server_bytes += bundle_bytes;
    for (std::size_t i = 0; i < dim; ++i) update[i] = SiteValue(s, i);
    const Timer t;
    auto y = clients[s].MaskInput(bundle, update, SiteWeight(s));
    t.AddTo(site_seconds[s], site_cpu[s]);
    if (!y.ok()) Die(y.status().ToString());
    const double y_bytes = kIdBytes + 4.0 * static_cast<double>(y->masked.size());
    site_bytes[s] += y_bytes;
    server_bytes += y_bytes;
    if (auto st = timed_server([&] { return server->AcceptMaskedInput(*y); }); !st.ok()) {
      Die(st.ToString());
    }
  }
  auto request = timed_server([&] { return server->CloseMaskedInput(); });
  if (!request.ok()) Die(request.status().ToString());
  const double request_bytes = kIdBytes * static_cast<double>(request->survivors.size());
  // Stage 3.
  for (ParticipantId id : request->survivors) {
    const int s = static_cast<int>(id) - 1;
    site_bytes[s] += request_bytes;
    server_bytes += request_bytes;
    const Timer t;
    auto response = clients[s].Unmask(*request);
    t.AddTo(site_seconds[s], site_cpu[s]);
    if (!response.ok()) Die(response.status().ToString());
    const double bytes =
        kIdBytes + kRevealedBytes * static_cast<double>(response->self_seed_shares.size() +
                                                        response->mask_key_shares.size());
    site_bytes[s] += bytes;
    server_bytes += bytes;
    if (auto st = timed_server([&] { return server->AcceptUnmask(*response); }); !st.ok()) {
      Die(st.ToString());
    }
  }
  auto result = timed_server([&] { return server->Finish(); });
  if (!result.ok()) Die(result.status().ToString());

  // Check the sum against the exact one within the documented bound.
  const double bound =
      static_cast<double>(result->survivors.size()) * params.encoding.MaxErrorPerSite() + 1e-4;
  for (std::size_t i : {std::size_t{0}, dim / 2, dim - 1}) {
    double exact = 0;
    for (ParticipantId id : result->survivors) {
      const int s = static_cast<int>(id) - 1;
      exact += SiteWeight(s) * static_cast<double>(SiteValue(s, i));
    }
    if (std::abs(result->weighted_sum[i] - exact) > bound) {
      Die("secure sum wrong at " + std::to_string(i) + ": " +
          std::to_string(result->weighted_sum[i]) + " vs " + std::to_string(exact));
    }
  }

  Costs costs;
  costs.survivors = result->survivors.size();
  // Per-site figures over the sites that completed the round.
  for (ParticipantId id : result->survivors) {
    const int s = static_cast<int>(id) - 1;
    costs.site_seconds_mean += site_seconds[s];
    costs.site_seconds_max = std::max(costs.site_seconds_max, site_seconds[s]);
    costs.site_bytes_mean += site_bytes[s];
    costs.site_cpu_mean += site_cpu[s];
    costs.site_cpu_max = std::max(costs.site_cpu_max, site_cpu[s]);
  }
  costs.site_cpu_mean /= static_cast<double>(costs.survivors);
  costs.server_cpu = server_cpu;
  costs.site_seconds_mean /= static_cast<double>(costs.survivors);
  costs.site_bytes_mean /= static_cast<double>(costs.survivors);
  costs.server_seconds = server_seconds;
  costs.server_bytes = server_bytes;
  return costs;
}

// Plain FedAvg over the same number of float32 updates: the running weighted
// mean of coordinator::FedAvg::Accept, updates generated outside the timing.
struct PlainCost {
  double seconds = 0, cpu = 0;
};
PlainCost PlainFedAvg(std::size_t dim, int n) {
  std::vector<float> mean(dim, 0.0f), update(dim);
  double total = 0;
  PlainCost cost;
  for (int s = 0; s < n; ++s) {
    for (std::size_t i = 0; i < dim; ++i) update[i] = SiteValue(s, i);
    const Timer t;
    total += SiteWeight(s);
    const float step = static_cast<float>(SiteWeight(s) / total);
    float* m = mean.data();
    const float* x = update.data();
    for (std::size_t i = 0; i < dim; ++i) m[i] += step * (x[i] - m[i]);
    t.AddTo(cost.seconds, cost.cpu);
  }
  if (!std::isfinite(mean[0])) Die("plain FedAvg produced a non-finite mean");
  return cost;
}

// One epoch of local training on `rows` synthetic Tox21-shaped rows, as
// fedrx_trainer_bench trains (after a warm-up epoch).
struct EpochCost {
  double seconds = 0, cpu = 0;
};
EpochCost LocalEpoch(std::size_t rows) {
  ml::SyntheticOptions so;
  so.rows = rows;
  so.dim = 2048;
  so.bits_per_row = 40;
  so.tasks = 12;
  so.missing_fraction = 0.15;
  so.positive_fraction = 0.1;
  so.label_noise = 0.05;
  const ml::Dataset data = ml::MakeSyntheticDataset(so);
  ml::NetSpec spec;
  std::vector<float> params = ml::InitParameters(spec, 1);
  ml::TrainOptions options;
  options.batch_size = 64;
  options.threads = 2;
  options.seed = 1;
  ml::Trainer warmup(options);
  if (auto r = warmup.Train(spec, data, params); !r.ok()) Die(r.status().ToString());
  options.seed = 2;
  ml::Trainer timed(options);
  const double cpu0 = ProcessCpu();
  const auto t0 = Steady::now();
  const auto stats = timed.Train(spec, data, params);
  EpochCost cost{Seconds(t0), ProcessCpu() - cpu0};
  if (!stats.ok()) Die(stats.status().ToString());
  return cost;
}

int Main(int argc, char** argv) {
  const Config c = ParseArgs(argc, argv);
  JsonLines out(c.out);
  const std::size_t dim = c.params != 0 ? c.params : ml::ParameterCount(ml::NetSpec{});
  std::cerr << "fedrx_secagg_bench: " << dim << " parameters\n";

  std::optional<EpochCost> epoch;
  if (c.train_rows > 0) {
    epoch = LocalEpoch(c.train_rows);
    const std::string rows = std::to_string(c.train_rows);
    out.Emit("secagg", "local_epoch_seconds_rows_" + rows, epoch->seconds, "s");
    out.Emit("secagg", "local_epoch_cpu_seconds_rows_" + rows, epoch->cpu, "s");
  }

  for (int n : c.sites) {
    struct Variant {
      std::string name;
      std::size_t dropped, neighbours, threshold;
    };
    const std::size_t dropped =
        static_cast<std::size_t>(std::floor(c.dropout_fraction * static_cast<double>(n)));
    const std::size_t t = static_cast<std::size_t>(n) / 2 + 1;  // a majority
    std::vector<Variant> variants = {{"complete", 0, 0, t}};
    if (dropped > 0) variants.push_back({"complete_drop", dropped, 0, t});
    if (c.plus_neighbours >= 2 && static_cast<std::size_t>(n) > c.plus_neighbours + 1) {
      variants.push_back({"plus_k" + std::to_string(c.plus_neighbours), dropped, c.plus_neighbours,
                          c.plus_neighbours / 2 + 1});
    }
    for (const auto& v : variants) {
      const Costs k = RunSecAgg(dim, n, v.dropped, v.neighbours, v.threshold, c.threads);
      // Plain FedAvg over the updates that make it into the sum.
      const int m = static_cast<int>(k.survivors);
      const PlainCost plain = PlainFedAvg(dim, m);
      const double plain_site_bytes = 4.0 * static_cast<double>(dim);
      const double plain_server_bytes = plain_site_bytes * m;
      const std::string bench = "secagg_" + v.name + "_n" + std::to_string(n);
      std::cerr << bench << ": " << k.survivors << " survivors, t " << v.threshold << "\n";
      out.Emit(bench, "site_extra_cpu_seconds_mean", k.site_cpu_mean, "s");
      out.Emit(bench, "site_extra_cpu_seconds_max", k.site_cpu_max, "s");
      out.Emit(bench, "site_extra_wall_seconds_mean", k.site_seconds_mean, "s");
      if (epoch) {
        // CPU work against CPU work: the site's extra over one local epoch.
        out.Emit(bench, "site_extra_cpu_over_epoch_cpu", k.site_cpu_mean / epoch->cpu, "fraction");
        out.Emit(bench, "site_extra_wall_over_epoch_wall", k.site_seconds_mean / epoch->seconds,
                 "fraction");
      }
      out.Emit(bench, "site_bytes", k.site_bytes_mean, "B", plain_site_bytes);
      out.Emit(bench, "site_extra_bytes", k.site_bytes_mean - plain_site_bytes, "B");
      out.Emit(bench, "server_cpu_seconds", k.server_cpu, "s", plain.cpu);
      out.Emit(bench, "server_extra_cpu_seconds", k.server_cpu - plain.cpu, "s");
      out.Emit(bench, "server_wall_seconds", k.server_seconds, "s", plain.seconds);
      out.Emit(bench, "server_bytes", k.server_bytes, "B", plain_server_bytes);
      out.Emit(bench, "server_extra_bytes", k.server_bytes - plain_server_bytes, "B");
    }
  }
  return 0;
}

}  // namespace
}  // namespace fedrx::bench

int main(int argc, char** argv) { return fedrx::bench::Main(argc, argv); }
