// fedrx_ingest_bench: compound ingest throughput on the vendored Tox21
// (7831 records) and ToxCast tables (the repo's 3000-molecule subset of
// MoleculeNet's 8576; deploy/data/toxcast/PROVENANCE.md), in one run:
//   (a) records/s of ReadCompoundFile + PrepareCompounds over both files
//       (parse, sanitise, largest fragment, uncharge, canonical SMILES,
//       Murcko scaffold, Morgan r2 2048 bits, keyed scrambling, keyed
//       scaffold folds) with 1 and 2 threads, InChIKey off and on; one
//       warm-up run, then the median of the repetitions;
//   (b) the same steps on Debian's python3-rdkit (ingest_baseline.py under
//       /usr/bin/python3; single process and multiprocessing.Pool(2)), which
//       has no InChI: the InChIKey-off figures are the like-for-like ones
//       (1 thread against 1 process, 2 threads against 2 processes). The
//       script runs as a co-process and its runs alternate with ours, so load
//       from other users of the machine falls on both alike; with one thread
//       (process) records per CPU-second are reported too, a figure such load
//       barely moves;
//   (c) how many records both prepare identically (canonical SMILES,
//       scaffold, fold, scrambled bits), so the baseline is known to do the
//       same work.
//   (d) with --stages, instead: microseconds per record of each step, one
//       thread, the RDKit calls of services/ml/chem.cc made one by one
//       (ingest_baseline.py --stages times the same steps in Python).
// Appends JSON lines {"bench","metric","value","unit","baseline","ratio"} to
// --out, ratio = value / baseline. Python's fields are null without rdkit.
//
// Usage: fedrx_ingest_bench [--out FILE] [--repetitions R] [--no-python]
//                           [--data-dir DIR] [--stages]
#include <DataStructs/ExplicitBitVect.h>
#include <GraphMol/ChemTransforms/ChemTransforms.h>
#include <GraphMol/Fingerprints/MorganFingerprints.h>
#include <GraphMol/GraphMol.h>
#include <GraphMol/MolOps.h>
#include <GraphMol/MolStandardize/Charge.h>
#include <GraphMol/MolStandardize/Fragment.h>
#include <GraphMol/SmilesParse/SmilesParse.h>
#include <GraphMol/SmilesParse/SmilesWrite.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "services/ingest/compounds.h"
#include "tests/bench/json_lines.h"

namespace fedrx::bench {
namespace {

using Steady = std::chrono::steady_clock;

// Any fixed 16+ byte secret: scrambling and folds run as at a real site.
constexpr char kSecret[] = "fedrx-ingest-bench-key-0123456789";

struct Config {
  std::string out;
  int repetitions = 5;
  bool python = true;
  bool stages = false;
  std::string data_dir = std::string(FEDRX_SOURCE_DIR) + "/deploy/data";
};

[[noreturn]] void Die(const std::string& what) {
  std::cerr << "fedrx_ingest_bench: " << what << "\n";
  std::exit(1);
}

double Seconds(Steady::time_point since) {
  return std::chrono::duration<double>(Steady::now() - since).count();
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double CpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

double LoadAverage() {
  std::ifstream in("/proc/loadavg");
  double one = -1;
  in >> one;
  return one;
}

std::vector<std::string> Files(const Config& c) {
  return {c.data_dir + "/tox21/tox21.csv", c.data_dir + "/toxcast/toxcast.csv"};
}

// One ingest of every file: read, then prepare. Returns the prepared sets.
std::vector<ingest::PreparedCompounds> Ingest(const std::vector<std::string>& files, int threads,
                                              bool inchikey) {
  const ingest::ConsortiumKey key(kSecret);
  ingest::PrepOptions options;
  options.threads = threads;
  options.inchikey = inchikey;
  std::vector<ingest::PreparedCompounds> out;
  for (const auto& f : files) {
    auto source = ingest::ReadCompoundFile(f, {});
    if (!source.ok()) Die(source.status().ToString());
    auto prepared = ingest::PrepareCompounds(*source, options, key);
    if (!prepared.ok()) Die(prepared.status().ToString());
    out.push_back(std::move(*prepared));
  }
  return out;
}

// ingest_baseline.py --serve as a co-process: warmed up once, then one timed
// run per request, so its runs alternate with ours under the same load.
class PythonBaseline {
 public:
  // Null when /usr/bin/python3 has no rdkit or the script fails to start.
  static std::unique_ptr<PythonBaseline> Start(const Config& c) {
    if (std::system("/usr/bin/python3 -c 'import rdkit' >/dev/null 2>&1") != 0) {
      std::cerr << "fedrx_ingest_bench: /usr/bin/python3 has no rdkit (apt-get install "
                   "python3-rdkit); Python fields are null\n";
      return nullptr;
    }
    auto p = std::unique_ptr<PythonBaseline>(new PythonBaseline);
    p->dump_ = "/tmp/fedrx_ingest_bench_python." + std::to_string(getpid()) + ".tsv";
    std::vector<std::string> args = {"/usr/bin/python3", FEDRX_INGEST_BASELINE_SCRIPT,
                                     "--secret",         kSecret,
                                     "--processes",      "1,2",
                                     "--dump",           p->dump_,
                                     "--serve"};
    for (const auto& f : Files(c)) args.push_back(f);
    int to_child[2], from_child[2];
    if (pipe(to_child) != 0 || pipe(from_child) != 0) Die("pipe failed");
    p->pid_ = fork();
    if (p->pid_ < 0) Die("fork failed");
    if (p->pid_ == 0) {
      dup2(to_child[0], 0);
      dup2(from_child[1], 1);
      for (int fd : {to_child[0], to_child[1], from_child[0], from_child[1]}) close(fd);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(to_child[0]);
    close(from_child[1]);
    p->in_ = fdopen(to_child[1], "w");
    p->out_ = fdopen(from_child[0], "r");
    if (p->ReadLine() != "ready") {
      std::cerr << "fedrx_ingest_bench: the Python baseline did not start; its fields are null\n";
      return nullptr;
    }
    return p;
  }
  ~PythonBaseline() {
    if (in_) std::fclose(in_);
    if (out_) std::fclose(out_);
    if (pid_ > 0) waitpid(pid_, nullptr, 0);
    if (!dump_.empty()) std::remove(dump_.c_str());
  }

  // Wall-clock and (the main process's) CPU seconds of one read-and-prepare
  // run with `processes`.
  std::pair<double, double> Once(int processes) {
    std::fprintf(in_, "%d\n", processes);
    std::fflush(in_);
    const std::string line = ReadLine();
    if (line.empty()) Die("the Python baseline stopped answering");
    char* end = nullptr;
    const double wall = std::strtod(line.c_str(), &end);
    return {wall, std::strtod(end, nullptr)};
  }
  const std::string& dump() const { return dump_; }

 private:
  PythonBaseline() = default;
  std::string ReadLine() {
    char buf[256];
    if (!std::fgets(buf, sizeof buf, out_)) return "";
    std::string s(buf);
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
    return s;
  }

  pid_t pid_ = -1;
  FILE* in_ = nullptr;
  FILE* out_ = nullptr;
  std::string dump_;
};

// Records whose (SMILES, scaffold, fold, scrambled bits) are equal on both
// sides, keyed by (file, record).
std::size_t Agreeing(const std::vector<std::string>& files,
                     const std::vector<ingest::PreparedCompounds>& ours, const std::string& dump) {
  using Row = std::tuple<std::string, std::string, std::uint32_t, std::string>;
  std::map<std::pair<std::string, std::size_t>, Row> theirs;
  std::ifstream in(dump);
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    std::stringstream s(line);
    for (std::string field; std::getline(s, field, '\t');) f.push_back(field);
    if (f.size() == 5) f.emplace_back();  // no bits
    if (f.size() != 6) continue;
    theirs[{f[0], std::stoul(f[1])}] = Row(f[2], f[3], std::stoul(f[4]), f[5]);
  }
  std::size_t same = 0;
  for (std::size_t i = 0; i < files.size(); ++i) {
    for (const auto& c : ours[i].compounds) {
      auto it = theirs.find({files[i], c.first_record});
      if (it == theirs.end()) continue;
      std::string bits;
      for (std::uint32_t b : c.bits) bits += (bits.empty() ? "" : " ") + std::to_string(b);
      same += it->second == Row(c.smiles, c.scaffold, c.fold, bits);
    }
  }
  return same;
}

// (d): the steps of ml::PrepareStructure (services/ml/chem.cc) timed one by
// one over every record, plus the InChIKey (PrepareStructure with it on, less
// with it off), scrambling and the keyed fold. A profile, not a second
// implementation: chem.cc stays the one that ingest uses.
void ProfileStages(const Config& config, JsonLines& out) {
  std::vector<std::string> smiles;
  for (const auto& f : Files(config)) {
    auto source = ingest::ReadCompoundFile(f, {});
    if (!source.ok()) Die(source.status().ToString());
    for (const auto& r : source->records) smiles.push_back(r.structure);
  }
  const ingest::ConsortiumKey key(kSecret);
  const ml::BitScrambler scrambler(key.ScrambleKey(), 2048);
  (void)ml::PrepareMolecule("C", {});  // routes RDKit's logs away from stderr
  enum Stage {
    kParse,
    kSanitize,
    kStandardise,
    kCanonical,
    kMorgan,
    kScaffold,
    kFree,
    kScrambleFold,
    kWhole,
    kWholeInchi,
    kStages
  };
  const char* names[kStages] = {"parse",
                                "sanitize_removehs",
                                "standardise",
                                "canonical_smiles",
                                "morgan",
                                "scaffold",
                                "free",
                                "scramble_fold",
                                "prepare_structure",
                                "prepare_structure_inchikey"};
  std::vector<double> total(kStages, 0.0);
  for (int pass = 0; pass < 2; ++pass) {  // the first is a warm-up
    std::fill(total.begin(), total.end(), 0.0);
    for (const auto& smi : smiles) {
      auto t = Steady::now();
      auto lap = [&](Stage s) {
        const auto now = Steady::now();
        total[s] += std::chrono::duration<double>(now - t).count();
        t = now;
      };
      RDKit::SmilesParserParams params;
      params.sanitize = false;
      params.removeHs = false;
      params.parseName = false;
      params.allowCXSMILES = false;
      std::unique_ptr<RDKit::RWMol> mol(RDKit::SmilesToMol(smi, params));
      lap(kParse);
      RDKit::MolOps::sanitizeMol(*mol);
      RDKit::MolOps::removeHs(*mol);
      lap(kSanitize);
      std::unique_ptr<RDKit::ROMol> neutral(std::move(mol));
      std::vector<int> frag;
      if (RDKit::MolOps::getMolFrags(*neutral, frag) > 1) {
        RDKit::MolStandardize::LargestFragmentChooser chooser;
        neutral.reset(chooser.choose(*neutral));
      }
      bool charged = false;
      for (const RDKit::Atom* a : neutral->atoms()) charged = charged || a->getFormalCharge() != 0;
      if (charged) {
        static RDKit::MolStandardize::Uncharger uncharger;
        std::unique_ptr<RDKit::ROMol> u(uncharger.uncharge(*neutral));
        std::unique_ptr<RDKit::RWMol> reread;
        try {
          reread.reset(RDKit::SmilesToMol(RDKit::MolToSmiles(*u)));
        } catch (const std::exception&) {
          reread.reset();  // as chem.cc: the molecule keeps its charges
        }
        if (reread) neutral = std::move(u);
      }
      lap(kStandardise);
      const std::string canonical = RDKit::MolToSmiles(*neutral);
      lap(kCanonical);
      std::unique_ptr<ExplicitBitVect> fp(
          RDKit::MorganFingerprints::getFingerprintAsBitVect(*neutral, 2, 2048));
      IntVect on;
      fp->getOnBits(on);
      lap(kMorgan);
      std::string scaffold;
      std::unique_ptr<RDKit::ROMol> core(RDKit::MurckoDecompose(*neutral));
      if (core && core->getNumAtoms() > 0) {
        core->updatePropertyCache(false);
        scaffold = RDKit::MolToSmiles(*core, false);
      }
      lap(kScaffold);
      neutral.reset();
      core.reset();
      fp.reset();
      lap(kFree);
      std::vector<std::uint32_t> bits(on.begin(), on.end());
      const auto scrambled = scrambler.Apply(bits);
      const auto fold = key.Fold(scaffold.empty() ? canonical : scaffold, 5);
      (void)scrambled;
      (void)fold;
      lap(kScrambleFold);
      (void)ml::PrepareStructure(smi, ml::StructureFormat::kSmiles, {}, false);
      lap(kWhole);
      (void)ml::PrepareStructure(smi, ml::StructureFormat::kSmiles, {}, true);
      lap(kWholeInchi);
    }
  }
  for (int s = 0; s < kStages; ++s) {
    out.Emit("ingest_stages", std::string("us_per_record_") + names[s],
             1e6 * total[s] / static_cast<double>(smiles.size()), "us");
  }
  out.Emit("ingest_stages", "us_per_record_inchikey",
           1e6 * (total[kWholeInchi] - total[kWhole]) / static_cast<double>(smiles.size()), "us");
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
    } else if (arg == "--repetitions") {
      c.repetitions = std::max(1, std::atoi(value().c_str()));
    } else if (arg == "--no-python") {
      c.python = false;
    } else if (arg == "--stages") {
      c.stages = true;
    } else if (arg == "--data-dir") {
      c.data_dir = value();
    } else {
      Die("usage: fedrx_ingest_bench [--out FILE] [--repetitions R] [--no-python] "
          "[--data-dir DIR] [--stages]");
    }
  }
  return c;
}

int Main(int argc, char** argv) {
  const Config config = ParseArgs(argc, argv);
  JsonLines out(config.out);
  if (config.stages) {
    ProfileStages(config, out);
    return 0;
  }
  const auto files = Files(config);
  std::cerr << "fedrx_ingest_bench: Tox21 (deploy/data/tox21) and ToxCast (deploy/data/toxcast: "
               "the repo's 3000-molecule subset of MoleculeNet's 8576), "
            << config.repetitions << " repetitions after a warm-up, median\n";

  // Reference results (1 thread, no InChIKey) double as the warm-up.
  const auto reference = Ingest(files, 1, false);
  std::size_t records = 0, rejected = 0;
  for (const auto& p : reference) {
    records += p.records_read;
    rejected += p.unparseable;
  }
  out.Emit("ingest", "records", static_cast<double>(records), "records");
  out.Emit("ingest", "rejected", static_cast<double>(rejected), "records");
  out.Emit("ingest", "loadavg_1min_start", LoadAverage(), "load");

  // Warm-up of every configuration on both sides, then rounds in which each
  // runs once, ours and Python's alternating, so load from other users of the
  // machine falls on both alike.
  std::unique_ptr<PythonBaseline> python;
  if (config.python) python = PythonBaseline::Start(config);
  const std::vector<std::pair<int, bool>> configs = {{1, false}, {2, false}, {1, true}, {2, true}};
  for (const auto& [threads, inchikey] : configs) Ingest(files, threads, inchikey);
  // CPU seconds too: with one thread (one process) they are the whole work,
  // and barely move with other load on the machine, unlike wall-clock time.
  std::map<std::pair<int, bool>, std::vector<double>> our_times, our_cpu;
  std::map<int, std::vector<double>> python_times, python_cpu;
  for (int r = 0; r < config.repetitions; ++r) {
    for (const auto& [threads, inchikey] : configs) {
      const auto started = Steady::now();
      const double cpu = CpuSeconds();
      Ingest(files, threads, inchikey);
      our_times[{threads, inchikey}].push_back(Seconds(started));
      our_cpu[{threads, inchikey}].push_back(CpuSeconds() - cpu);
      if (python && !inchikey) {
        const auto [wall, python_cpu_s] = python->Once(threads);
        python_times[threads].push_back(wall);
        python_cpu[threads].push_back(python_cpu_s);
      }
    }
  }
  out.Emit("ingest", "loadavg_1min_end", LoadAverage(), "load");
  std::map<std::pair<int, bool>, double> ours;  // (threads, inchikey) -> records/s
  for (const auto& [config_key, times] : our_times) {
    ours[config_key] = static_cast<double>(records) / Median(times);
    std::cerr << "  fedrx " << config_key.first << " thread(s), InChIKey "
              << (config_key.second ? "on" : "off") << ": " << ours[config_key] << " records/s\n";
  }
  auto baseline = [&](const std::string& metric) -> std::optional<double> {
    const int processes = metric == "records_per_s_1proc" ? 1 : 2;
    if (!python_times.count(processes)) return std::nullopt;
    return static_cast<double>(records) / Median(python_times[processes]);
  };

  out.Emit("ingest_python", "records_per_s_1proc", baseline("records_per_s_1proc"), "records/s");
  out.Emit("ingest_python", "records_per_s_2proc", baseline("records_per_s_2proc"), "records/s");
  // Like-for-like (no InChIKey on either side): ratio = ours / Python's.
  out.Emit("ingest", "records_per_s_1thread_vs_python_1proc", ours[{1, false}], "records/s",
           baseline("records_per_s_1proc"));
  out.Emit("ingest", "records_per_s_2threads_vs_python_2proc", ours[{2, false}], "records/s",
           baseline("records_per_s_2proc"));
  // With the InChIKey (Python cannot compute it): ratio = against our own
  // InChIKey-off figure, i.e. the fraction of throughput left with it on.
  out.Emit("ingest", "records_per_s_1thread_inchikey", ours[{1, true}], "records/s",
           ours[{1, false}]);
  out.Emit("ingest", "records_per_s_2threads_inchikey", ours[{2, true}], "records/s",
           ours[{2, false}]);
  const double n = static_cast<double>(records);
  out.Emit("ingest", "records_per_cpu_s_1thread_vs_python_1proc", n / Median(our_cpu[{1, false}]),
           "records/cpu-s",
           python_cpu.count(1) ? std::optional<double>(n / Median(python_cpu[1])) : std::nullopt);
  out.Emit("ingest", "records_per_cpu_s_1thread_inchikey", n / Median(our_cpu[{1, true}]),
           "records/cpu-s", n / Median(our_cpu[{1, false}]));
  out.Emit("ingest", "thread_scaling_2_over_1", ours[{2, false}] / ours[{1, false}], "x");
  if (python) {
    const std::size_t same = Agreeing(files, reference, python->dump());
    out.Emit("ingest", "records_identical_to_python", static_cast<double>(same), "records",
             static_cast<double>(records));
  }
  return 0;
}

}  // namespace
}  // namespace fedrx::bench

int main(int argc, char** argv) { return fedrx::bench::Main(argc, argv); }
