// fedrx_trainer_bench: training throughput (samples/s) of the fedrx Trainer on
// the 2048 -> 512 ReLU dropout(0.2) -> 12 network, batch 64, Adam, on a
// synthetic dataset shaped like Tox21 (6000 rows, ~40 set bits per row, 12
// tasks, ~15% missing labels), after one warm-up epoch. With --torch (and a
// python3 that imports torch), the same data is written to a file and
// trainer_bench_torch.py trains the same architecture on it with PyTorch
// (dense float input to nn.Linear, OPENBLAS_NUM_THREADS=1,
// torch.set_num_threads(threads)) as the baseline.
// Appends a JSON line {"bench","metric","value","unit","baseline","ratio"}
// to --out (ratio = fedrx / torch; baseline and ratio null without torch).
//
// Usage: fedrx_trainer_bench [--out FILE] [--torch] [--epochs N] [--rows N]
//            [--threads N] [--python PATH] [--script PATH] [--write-data PATH]
// --write-data also saves the dataset in trainer_bench_torch.py's format, to
// run the baseline by hand.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "services/ml/dataset.h"
#include "services/ml/model.h"
#include "services/ml/synthetic.h"
#include "services/ml/trainer.h"

#ifndef FEDRX_TRAINER_BENCH_SCRIPT
#define FEDRX_TRAINER_BENCH_SCRIPT "tests/bench/trainer_bench_torch.py"
#endif

namespace fedrx::bench {
namespace {

struct Config {
  std::string out;
  bool torch = false;
  int epochs = 3;
  std::size_t rows = 6000;
  int threads = 2;
  std::string python = "/usr/bin/python3";
  std::string script = FEDRX_TRAINER_BENCH_SCRIPT;
  std::string write_data;
};

[[noreturn]] void Die(const std::string& why) {
  std::cerr << "fedrx_trainer_bench: " << why << "\n";
  std::exit(2);
}

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
    } else if (arg == "--torch") {
      c.torch = true;
    } else if (arg == "--epochs") {
      c.epochs = std::atoi(value().c_str());
    } else if (arg == "--rows") {
      c.rows = static_cast<std::size_t>(std::atoll(value().c_str()));
    } else if (arg == "--threads") {
      c.threads = std::atoi(value().c_str());
    } else if (arg == "--python") {
      c.python = value();
    } else if (arg == "--script") {
      c.script = value();
    } else if (arg == "--write-data") {
      c.write_data = value();
    } else {
      Die("unknown argument " + arg +
          " (usage: fedrx_trainer_bench [--out FILE] [--torch] [--epochs N] [--rows N]"
          " [--threads N] [--python PATH] [--script PATH] [--write-data PATH])");
    }
  }
  if (c.epochs < 1 || c.rows < 64 || c.threads < 1) Die("--epochs >= 1, --rows >= 64, --threads >= 1");
  return c;
}

// The file trainer_bench_torch.py reads (format described there).
void WriteDataset(const ml::Dataset& d, const std::string& path) {
  std::ofstream f(path);
  if (!f) Die("cannot write " + path);
  f << "fedrx-trainer-bench 1 " << d.size() << " " << d.x.dim << " " << d.num_tasks() << "\n";
  for (std::size_t r = 0; r < d.size(); ++r) {
    for (std::size_t t = 0; t < d.num_tasks(); ++t) {
      const std::int8_t y = d.label(r, t);
      f << (y == ml::kMissing ? '-' : y == 1 ? '1' : '0');
    }
    for (std::uint32_t j : d.x.row(r)) f << ' ' << j;
    f << '\n';
  }
  if (!f.flush()) Die("cannot write " + path);
}

// Runs the PyTorch baseline; returns its samples/s, or a negative value when
// it cannot run.
double TorchBaseline(const Config& c, const ml::Dataset& d) {
  const std::string probe = c.python + " -c 'import torch' >/dev/null 2>&1";
  if (std::system(probe.c_str()) != 0) {
    std::cerr << "fedrx_trainer_bench: " << c.python << " cannot import torch; no baseline\n";
    return -1;
  }
  const std::string data = "/tmp/fedrx_trainer_bench_" + std::to_string(getpid()) + ".txt";
  WriteDataset(d, data);
  const std::string cmd = "OPENBLAS_NUM_THREADS=1 " + c.python + " " + c.script + " --data " +
                          data + " --epochs " + std::to_string(c.epochs) + " --threads " +
                          std::to_string(c.threads) + " --batch-size 64 --hidden 512";
  std::string output;
  if (FILE* p = popen(cmd.c_str(), "r")) {
    char buf[4096];
    while (std::fgets(buf, sizeof buf, p) != nullptr) output += buf;
    if (pclose(p) != 0) output.clear();
  }
  std::remove(data.c_str());
  std::cout << "torch: " << output;
  const std::string key = "\"samples_per_s\": ";
  const std::size_t at = output.find(key);
  if (at == std::string::npos) {
    std::cerr << "fedrx_trainer_bench: the torch baseline failed\n";
    return -1;
  }
  return std::atof(output.c_str() + at + key.size());
}

int Main(int argc, char** argv) {
  const Config c = ParseArgs(argc, argv);
  ml::SyntheticOptions so;
  so.rows = c.rows;
  so.dim = 2048;
  so.bits_per_row = 40;
  so.tasks = 12;
  so.missing_fraction = 0.15;
  so.positive_fraction = 0.1;
  so.label_noise = 0.05;
  const ml::Dataset data = ml::MakeSyntheticDataset(so);
  if (!c.write_data.empty()) WriteDataset(data, c.write_data);

  ml::NetSpec spec;  // 2048 -> 512 -> 12, dropout 0.2
  std::vector<float> params = ml::InitParameters(spec, 1);
  ml::TrainOptions options;
  options.batch_size = 64;
  options.threads = c.threads;
  options.seed = 1;
  ml::Trainer trainer(options);
  if (auto warmup = trainer.Train(spec, data, params); !warmup.ok()) {
    Die(warmup.status().ToString());
  }
  options.epochs = static_cast<std::uint32_t>(c.epochs);
  options.seed = 2;
  ml::Trainer timed(options);
  const auto stats = timed.Train(spec, data, params);
  if (!stats.ok()) Die(stats.status().ToString());
  const double value = static_cast<double>(stats->samples_seen) / stats->seconds;
  std::cout << "fedrx: " << stats->samples_seen << " samples in " << stats->seconds
            << " s, threads " << c.threads << ", final epoch loss " << stats->epoch_loss.back()
            << "\n";

  const double baseline = c.torch ? TorchBaseline(c, data) : -1;
  std::ostringstream line;
  line << "{\"bench\": \"trainer\", \"metric\": \"throughput\", \"value\": " << value
       << ", \"unit\": \"samples/s\", \"baseline\": ";
  if (baseline > 0) {
    line << baseline << ", \"ratio\": " << value / baseline << "}";
  } else {
    line << "null, \"ratio\": null}";
  }
  std::cout << line.str() << std::endl;
  if (!c.out.empty()) {
    std::ofstream out(c.out, std::ios::app);
    if (!(out << line.str() << "\n")) Die("cannot write " + c.out);
  }
  return 0;
}

}  // namespace
}  // namespace fedrx::bench

int main(int argc, char** argv) { return fedrx::bench::Main(argc, argv); }
