// fedrx_aggregation_bench: the coordinator's streaming FedAvg on 10M-float32
// updates, in one run:
//   (a) GB/s of update bytes consumed by FedAvg::Accept, next to a STREAM-like
//       copy and triad on buffers of the same size (best of the repetitions,
//       as STREAM reports; STREAM's byte counting: copy 8 B, triad 12 B per
//       element). FedAvg's own memory traffic (read the update, read and
//       write the mean: 12 B per parameter) is reported next to the triad,
//       which has the same two-reads-one-write pattern;
//   (b) peak RSS (VmHWM, each configuration in its own forked child) when
//       aggregating 10 and 100 sites' updates, each generated into one reused
//       buffer as it would arrive from the bus;
//   (c) the same 10 and 100 sites through the list-then-average baseline
//       (aggregation_baseline.py under /usr/bin/python3 with numpy; its fields
//       are null when numpy is missing): time and peak memory side by side.
// Appends JSON lines {"bench","metric","value","unit","baseline","ratio"} to
// --out, ratio = value / baseline.
//
// Usage: fedrx_aggregation_bench [--out FILE] [--params N] [--repetitions R]
//                                [--sites A,B] [--no-python]
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "services/coordinator/strategy.h"
#include "services/ml/model.h"
#include "tests/bench/json_lines.h"

namespace fedrx::bench {
namespace {

using Steady = std::chrono::steady_clock;

struct Config {
  std::string out;
  std::size_t params = 10'000'000;
  int repetitions = 40;
  std::vector<int> sites = {10, 100};
  bool python = true;
};

[[noreturn]] void Die(const std::string& what) {
  std::cerr << "fedrx_aggregation_bench: " << what << "\n";
  std::exit(1);
}

double Seconds(Steady::time_point since) {
  return std::chrono::duration<double>(Steady::now() - since).count();
}

// The updates of (b) and (c): site s sends a constant vector, weighted by its
// sample count, so the exact aggregate is known.
float SiteValue(int s) { return 1.0f + 0.1f * static_cast<float>(s % 10); }
double SiteSamples(int s) { return 100.0 + 7.0 * s; }

double ExpectedMean(int sites) {
  double num = 0, den = 0;
  for (int s = 0; s < sites; ++s) {
    num += SiteSamples(s) * SiteValue(s);
    den += SiteSamples(s);
  }
  return num / den;
}

// ---- (b) peak memory, one forked child per configuration ----------------------------

// A field of /proc/self/status in bytes (VmHWM, VmRSS); -1 if absent.
double StatusBytes(const std::string& field) {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind(field + ":", 0) == 0) {
      return std::strtod(line.c_str() + field.size() + 1, nullptr) * 1024.0;  // kB
    }
  }
  return -1;
}

struct StreamingRun {
  double peak_rss = 0;         // VmHWM at the end
  double start_rss = 0;        // VmRSS before the first update
  double accept_seconds = 0;   // FedAvg::Accept only
  double receive_seconds = 0;  // generating the updates
  bool correct = false;
};

// In the child: aggregates `sites` updates of `params` floats, one at a time
// through one reused buffer, and reports through `fd`.
int StreamingChild(int sites, std::size_t params, int fd) {
  StreamingRun run;
  run.start_rss = StatusBytes("VmRSS");
  coordinator::FedAvg fedavg;
  fedavg.Begin(params);
  std::vector<float> update(params);
  for (int s = 0; s < sites; ++s) {
    auto t0 = Steady::now();
    std::fill(update.begin(), update.end(), SiteValue(s));  // "arrives from the bus"
    run.receive_seconds += Seconds(t0);
    t0 = Steady::now();
    if (!fedavg.Accept(update, SiteSamples(s)).ok()) return 3;
    run.accept_seconds += Seconds(t0);
  }
  core::Result<std::vector<float>> mean = fedavg.Finish();
  if (!mean.ok()) return 4;
  const double expected = ExpectedMean(sites);
  run.correct = std::abs((*mean)[0] - expected) < 1e-4 * expected &&
                std::abs(mean->back() - expected) < 1e-4 * expected;
  run.peak_rss = StatusBytes("VmHWM");
  std::ostringstream msg;
  msg.precision(17);
  msg << run.peak_rss << " " << run.start_rss << " " << run.accept_seconds << " "
      << run.receive_seconds << " " << run.correct << "\n";
  const std::string text = msg.str();
  return write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) ? 0 : 5;
}

StreamingRun RunStreaming(int sites, std::size_t params) {
  int fds[2];
  if (pipe(fds) != 0) Die("pipe failed");
  const pid_t pid = fork();
  if (pid < 0) Die("fork failed");
  if (pid == 0) {
    close(fds[0]);
    _exit(StreamingChild(sites, params, fds[1]));
  }
  close(fds[1]);
  std::string text;
  char buf[256];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) > 0) text.append(buf, static_cast<std::size_t>(n));
  close(fds[0]);
  int status = 0;
  if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    Die("streaming child for " + std::to_string(sites) + " sites failed (status " +
        std::to_string(status) + ")");
  }
  StreamingRun run;
  std::istringstream in(text);
  if (!(in >> run.peak_rss >> run.start_rss >> run.accept_seconds >> run.receive_seconds >>
        run.correct)) {
    Die("streaming child sent '" + text + "'");
  }
  if (!run.correct) Die("streaming FedAvg of " + std::to_string(sites) + " sites is wrong");
  return run;
}

// ---- (c) the Python baseline ------------------------------------------------------------

struct BaselineRun {
  double seconds = 0;
  double peak_rss = 0;
  double value0 = 0;
};

// Pulls "key": number out of the script's one-line JSON.
std::optional<double> JsonNumber(const std::string& json, const std::string& key) {
  const std::string pattern = "\"" + key + "\":";
  const auto at = json.find(pattern);
  if (at == std::string::npos) return std::nullopt;
  return std::strtod(json.c_str() + at + pattern.size(), nullptr);
}

bool PythonHasNumpy() {
  return std::system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") == 0;
}

std::optional<BaselineRun> RunBaseline(int sites, std::size_t params) {
  const std::string command = std::string("/usr/bin/python3 ") + FEDRX_AGGREGATION_BASELINE_SCRIPT +
                              " --sites " + std::to_string(sites) + " --params " +
                              std::to_string(params);
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return std::nullopt;
  std::string out;
  char buf[512];
  while (std::fgets(buf, sizeof buf, pipe) != nullptr) out += buf;
  if (pclose(pipe) != 0) {
    std::cerr << "fedrx_aggregation_bench: baseline for " << sites << " sites failed\n";
    return std::nullopt;
  }
  auto seconds = JsonNumber(out, "seconds");
  auto peak = JsonNumber(out, "peak_rss_bytes");
  auto value0 = JsonNumber(out, "value0");
  if (!seconds || !peak || !value0) {
    std::cerr << "fedrx_aggregation_bench: unexpected baseline output: " << out << "\n";
    return std::nullopt;
  }
  const double expected = ExpectedMean(sites);
  if (std::abs(*value0 - expected) > 1e-3 * expected) {
    std::cerr << "fedrx_aggregation_bench: baseline aggregate " << *value0 << ", expected "
              << expected << "\n";
    return std::nullopt;
  }
  return BaselineRun{*seconds, *peak, *value0};
}

// ---- (a) bandwidth ------------------------------------------------------------------------

struct Bandwidth {
  double copy = 0;            // STREAM bytes/s
  double triad = 0;           // STREAM bytes/s
  double fedavg_update = 0;   // update bytes consumed / s
  double fedavg_checked = 0;  // update bytes / s, with the coordinator's finiteness check
};

// Kernels in their own non-inlined functions, so the compiler cannot drop or
// merge repetitions.
[[gnu::noinline]] void Copy(const float* a, float* b, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) b[i] = a[i];
}
[[gnu::noinline]] void Triad(float* a, const float* b, const float* c, float scalar,
                             std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) a[i] = b[i] + scalar * c[i];
}

Bandwidth MeasureBandwidth(std::size_t n, int repetitions) {
  std::vector<float> a(n, 1.0f), b(n, 2.0f), c(n, 0.5f);
  std::vector<float> update(n);
  for (std::size_t i = 0; i < n; ++i) update[i] = 0.001f * static_cast<float>(i % 1000);
  // The update's shape as the coordinator validates it (one hidden unit, one task).
  ml::NetSpec net;
  net.input_dim = static_cast<std::uint32_t>(n - 3);
  net.hidden = {1};
  net.num_tasks = 1;
  net.dropout = 0;
  if (ml::ParameterCount(net) != n) Die("spec does not have the bench's parameter count");

  coordinator::FedAvg fedavg;
  fedavg.Begin(n);
  double best[4];
  std::fill(std::begin(best), std::end(best), std::numeric_limits<double>::infinity());
  // One untimed pass of each first (page faults, caches); then the kernels
  // alternate so that all see the same machine load.
  for (int r = -1; r < repetitions; ++r) {
    auto t0 = Steady::now();
    Copy(a.data(), b.data(), n);
    const double copy = Seconds(t0);
    t0 = Steady::now();
    Triad(a.data(), b.data(), c.data(), 3.0f, n);
    const double triad = Seconds(t0);
    t0 = Steady::now();
    if (!fedavg.Accept(update, 10.0).ok()) Die("FedAvg refused the update");
    const double accept = Seconds(t0);
    t0 = Steady::now();
    if (!ml::ValidateParameters(net, update).ok()) Die("update is not finite");
    if (!fedavg.Accept(update, 10.0).ok()) Die("FedAvg refused the update");
    const double checked = Seconds(t0);
    if (r < 0) continue;
    best[0] = std::min(best[0], copy);
    best[1] = std::min(best[1], triad);
    best[2] = std::min(best[2], accept);
    best[3] = std::min(best[3], checked);
  }
  // Keep the results observable.
  volatile float sink = a[n / 2] + b[n / 3];
  (void)sink;
  const double bytes = static_cast<double>(n) * sizeof(float);
  return {2 * bytes / best[0], 3 * bytes / best[1], bytes / best[2], bytes / best[3]};
}

// ---- Main ----------------------------------------------------------------------------------

Config ParseArgs(int argc, char** argv) {
  Config c;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) Die(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--out") {
      c.out = value();
    } else if (arg == "--params") {
      c.params = std::strtoull(value().c_str(), nullptr, 10);
    } else if (arg == "--repetitions") {
      c.repetitions = std::atoi(value().c_str());
    } else if (arg == "--sites") {
      c.sites.clear();
      std::stringstream in(value());
      std::string item;
      while (std::getline(in, item, ',')) c.sites.push_back(std::atoi(item.c_str()));
    } else if (arg == "--no-python") {
      c.python = false;
    } else {
      Die("unknown argument " + arg +
          " (usage: fedrx_aggregation_bench [--out FILE] [--params N] [--repetitions R] "
          "[--sites A,B] [--no-python])");
    }
  }
  if (c.params < 16 || c.repetitions < 1 || c.sites.size() != 2 || c.sites[0] < 1 ||
      c.sites[1] < 1) {
    Die("--params >= 16, --repetitions >= 1, --sites takes two positive counts");
  }
  return c;
}

std::string Millions(std::size_t n) { return std::to_string(n / 1'000'000) + "M"; }

int Main(int argc, char** argv) {
  const Config config = ParseArgs(argc, argv);
  alarm(900);  // a minute or two normally (the numpy baseline dominates); never hang CI
  JsonLines sink(config.out);
  const double model_bytes = static_cast<double>(config.params) * sizeof(float);
  const std::string size = Millions(config.params);

  // (b) before anything big is allocated here, so the children start small.
  std::map<int, StreamingRun> streaming;
  for (int sites : config.sites) streaming[sites] = RunStreaming(sites, config.params);

  // (c), one process per configuration, each run once (100 x 40 MB held).
  std::map<int, std::optional<BaselineRun>> baseline;
  const bool numpy = config.python && PythonHasNumpy();
  if (!numpy) std::cerr << "fedrx_aggregation_bench: no numpy; baseline fields are null\n";
  for (int sites : config.sites) {
    baseline[sites] = numpy ? RunBaseline(sites, config.params) : std::nullopt;
  }

  // (a)
  const Bandwidth bw = MeasureBandwidth(config.params, config.repetitions);

  const std::string agg = "aggregation_fedavg_" + size;
  sink.Emit("stream_copy_" + size, "bandwidth", bw.copy / 1e9, "GB/s", std::nullopt);
  sink.Emit("stream_triad_" + size, "bandwidth", bw.triad / 1e9, "GB/s", std::nullopt);
  sink.Emit(agg, "update_bytes_consumed", bw.fedavg_update / 1e9, "GB/s", bw.copy / 1e9);
  sink.Emit(agg, "update_bytes_consumed_with_finite_check", bw.fedavg_checked / 1e9, "GB/s",
            bw.copy / 1e9);
  sink.Emit(agg, "memory_traffic", 3 * bw.fedavg_update / 1e9, "GB/s", bw.triad / 1e9);

  const auto mb = [](double bytes) { return bytes / (1 << 20); };
  const int few = config.sites[0], many = config.sites[1];
  for (int sites : config.sites) {
    const StreamingRun& run = streaming[sites];
    const std::optional<BaselineRun>& base = baseline[sites];
    const std::string bench = "aggregation_" + std::to_string(sites) + "_sites_x_" + size;
    sink.Emit(bench, "peak_rss", mb(run.peak_rss), "MiB",
              base ? std::optional<double>(mb(base->peak_rss)) : std::nullopt);
    sink.Emit(bench, "peak_rss_over_model_size", run.peak_rss / model_bytes, "x",
              base ? std::optional<double>(base->peak_rss / model_bytes) : std::nullopt);
    sink.Emit(bench, "rss_at_start", mb(run.start_rss), "MiB", std::nullopt);
    sink.Emit(bench, "aggregation_time", run.accept_seconds, "s",
              base ? std::optional<double>(base->seconds) : std::nullopt);
  }
  const std::optional<BaselineRun>& base_few = baseline[few];
  const std::optional<BaselineRun>& base_many = baseline[many];
  sink.Emit("aggregation_peak_rss_scaling_" + size,
            "peak_rss_" + std::to_string(many) + "_over_" + std::to_string(few) + "_sites",
            streaming[many].peak_rss / streaming[few].peak_rss, "x",
            base_few && base_many ? std::optional<double>(base_many->peak_rss / base_few->peak_rss)
                                  : std::nullopt);
  return 0;
}

}  // namespace
}  // namespace fedrx::bench

int main(int argc, char** argv) { return fedrx::bench::Main(argc, argv); }
