// fedrx_tox_bench: the tox panel end to end through the gateway, against the
// same work in Python (tox_baseline.py: python3-rdkit featurisation and a
// python3-torch forward pass of the same float32 weights, plus the same
// conformal p-values and domain score from the same calibration).
//
// The stack is the real processes on loopback: redis-server, fedrx-coordinator
// (the gateway needs one), fedrx-tox (2 workers, 1 thread each: the machine's
// 2 cores) and fedrx-gateway, with CURVE everywhere; a scientist is enrolled
// in the registry and asks over CURVE as the CLI would. The model is the
// Tox21 demo study's network (deploy/studies/tox21-demo.study, 2048 -> 512 ->
// 12), trained here for a few epochs on the scaffold split's training rows
// (or the weights of --model), stored with its calibration (score histograms
// of the validation rows, embedding moments of the training rows, domain
// histogram) through the coordinator's StudyStore, as the coordinator does.
// The compounds are the Tox21 scaffold test set's SMILES, as written (784),
// --repeat times over.
//   panel_compounds_per_s: structures in, predictions with p-values,
//     prediction sets and the domain flag out; requests of --batch structures,
//     two clients in flight; baseline: the Python script, one process (torch
//     with 2 threads), same batches, in-process (no network).
//   single_compound_p50_ms / _p99_ms: one structure per request, one at a
//     time, round trip through the gateway; baseline: one structure per call
//     in Python (lower is better: ratio = baseline / fedrx).
//   probability agreement: the largest |p_fedrx - p_python| over the
//     compounds both featurised, and how many differ by more than 1e-4
//     (standardisation differences between the two preparations).
// No fedrx consortium key in the demo, so no bit scrambling on either side.
//
// Usage: fedrx_tox_bench [--out FILE] [--batch 100] [--singles 300]
//                        [--compounds N] [--repeat 3] [--model WEIGHTS] [--no-python]
//                        [--tox-poll-interval DURATION] [--label SUFFIX]
// --tox-poll-interval sets the tox service's runner.poll_interval (default
// 50ms): a worker's answer is sent from the runner's loop, which wakes at the
// latest after that interval, so it bounds a lone request's latency from
// below; --label suffixes the metric names of such a run.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "messages/codec/message.h"
#include "services/coordinator/study_store.h"
#include "services/core/bus.h"
#include "services/core/clock.h"
#include "services/core/config.h"
#include "services/core/curve_keys.h"
#include "services/core/metrics.h"
#include "services/core/redis_state_store.h"
#include "services/core/zmq_bus.h"
#include "services/ml/csv_dataset.h"
#include "services/ml/domain.h"
#include "services/ml/metrics.h"
#include "services/ml/model.h"
#include "services/ml/split.h"
#include "services/ml/study_spec.h"
#include "services/ml/trainer.h"
#include "tests/bench/json_lines.h"
#include "tests/support/child_process.h"
#include "tests/support/http_client.h"
#include "tests/support/redis_server.h"

namespace fedrx::bench {
namespace {

using namespace std::chrono_literals;
using Steady = std::chrono::steady_clock;
using testing::ChildProcess;

constexpr char kBench[] = "tox";
constexpr std::size_t kDomainBins = 100;

[[noreturn]] void Die(const std::string& what) {
  std::cerr << "fedrx_tox_bench: " << what << std::endl;
  std::exit(1);
}

double Percentile(std::vector<double> v, double q) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  const double at = q * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(at));
  const auto hi = static_cast<std::size_t>(std::ceil(at));
  return v[lo] + (v[hi] - v[lo]) * (at - static_cast<double>(lo));
}

struct Flags {
  std::string out;
  std::size_t batch = 100;
  std::size_t singles = 300;
  std::size_t compounds = 0;  // 0: the whole test set
  std::size_t repeat = 3;     // the compounds, this many times over
  std::string model;
  bool python = true;
  // The tox service's runner.poll_interval; empty: its default, as deployed.
  std::string tox_poll_interval;
  std::string label;
};

Flags ParseFlags(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto next = [&]() -> std::string {
      if (i + 1 >= argc) Die(a + " needs a value");
      return argv[++i];
    };
    if (a == "--out") {
      f.out = next();
    } else if (a == "--batch") {
      f.batch = std::stoul(next());
    } else if (a == "--singles") {
      f.singles = std::stoul(next());
    } else if (a == "--compounds") {
      f.compounds = std::stoul(next());
    } else if (a == "--repeat") {
      f.repeat = std::max<std::size_t>(1, std::stoul(next()));
    } else if (a == "--model") {
      f.model = next();
    } else if (a == "--label") {
      f.label = next();
    } else if (a == "--tox-poll-interval") {
      f.tox_poll_interval = next();
    } else if (a == "--no-python") {
      f.python = false;
    } else {
      Die("unknown flag " + a);
    }
  }
  if (f.batch == 0 || f.batch > 1000) Die("--batch must be in [1, 1000]");
  return f;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// One line of the Tox21 CSV's `smiles` column per data record, as written.
std::vector<std::string> RawSmiles(const std::string& csv_path) {
  std::ifstream in(csv_path);
  std::string header;
  std::getline(in, header);
  std::vector<std::string> columns;
  std::stringstream h(header);
  std::string c;
  while (std::getline(h, c, ',')) columns.push_back(c);
  const auto it = std::find(columns.begin(), columns.end(), "smiles");
  if (it == columns.end()) Die(csv_path + " has no smiles column");
  const std::size_t col = static_cast<std::size_t>(it - columns.begin());
  std::vector<std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    std::stringstream l(line);
    std::string field;
    for (std::size_t k = 0; k <= col && std::getline(l, field, ','); ++k) {
    }
    out.push_back(field);
  }
  return out;
}

class Stack {
 public:
  Stack(const std::string& dir, int redis_port) : dir_(dir), redis_port_(redis_port) {}

  void Start(const std::string& study, const std::string& tox_poll_interval) {
    gateway_keys_ = Keys();
    clients_file_ = dir_ + "/clients";
    std::ofstream(clients_file_) << "gateway-1 gateway " << gateway_keys_.public_key << "\n";
    coordinator_ = Backend("coordinator", FEDRX_COORDINATOR_BIN, {});
    std::map<std::string, std::string> tox_env = {
        {"FEDRX_TOX_REDIS", "127.0.0.1:" + std::to_string(redis_port_)},
        {"FEDRX_TOX_PANELS", "tox21=" + study},
        {"FEDRX_TOX_REFRESH_INTERVAL", "500ms"},
        {"FEDRX_TOX_WORKERS", "2"},
        {"FEDRX_TOX_THREADS", "1"}};
    if (!tox_poll_interval.empty()) tox_env["FEDRX_RUNNER_POLL_INTERVAL"] = tox_poll_interval;
    tox_ = Backend("tox", FEDRX_TOX_BIN, tox_env);
    StartGateway();
  }

  const std::string& gateway_endpoint() const { return gateway_endpoint_; }
  const std::string& gateway_public_key() const { return gateway_keys_.public_key; }
  const std::string& scientist_key() const { return scientist_key_; }

 private:
  struct Proc {
    std::unique_ptr<ChildProcess> process;
    std::string endpoint, public_file;
    int http = 0;
  };

  core::CurveKeyPair Keys() {
    auto pair = core::GenerateCurveKeyPair();
    if (!pair.ok()) Die("keys: " + pair.status().ToString());
    return *pair;
  }

  std::map<std::string, std::string> Env() const {
    return {{"FEDRX_REDIS_HOST", "127.0.0.1"},
            {"FEDRX_REDIS_PORT", std::to_string(redis_port_)},
            {"FEDRX_REDIS_STARTUP_WAIT", "5s"},
            {"FEDRX_RUNNER_DRAIN_TIMEOUT", "2s"}};
  }

  Proc Backend(const std::string& name, const char* binary,
               const std::map<std::string, std::string>& extra) {
    Proc p;
    p.endpoint = "tcp://127.0.0.1:" + std::to_string(testing::FreeTcpPort());
    p.http = testing::FreeTcpPort();
    const core::CurveKeyPair keys = Keys();
    const std::string key_file = dir_ + "/" + name + ".key";
    if (!core::WriteCurveKeyPair(key_file, keys).ok()) Die("cannot write " + key_file);
    p.public_file = dir_ + "/" + name + ".pub";
    if (!core::WriteCurvePublicKey(p.public_file, keys.public_key).ok()) Die("cannot write pub");
    std::string upper = name;
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    auto env = Env();
    env["FEDRX_" + upper + "_ENDPOINT"] = p.endpoint;
    env["FEDRX_" + upper + "_CURVE_KEY_FILE"] = key_file;
    env["FEDRX_" + upper + "_CLIENTS_FILE"] = clients_file_;
    env["FEDRX_HTTP_LISTEN"] = "127.0.0.1:" + std::to_string(p.http);
    for (const auto& [k, v] : extra) env[k] = v;
    auto child = ChildProcess::Spawn(binary, {}, env);
    if (!child.ok()) Die(name + ": " + child.status().ToString());
    p.process = std::move(*child);
    if (!testing::WaitForHttp200(p.http, "/readyz", 30s)) {
      Die(name + " never became ready: " + p.process->Log());
    }
    return p;
  }

  void StartGateway() {
    const std::string key_file = dir_ + "/gateway.key";
    if (!core::WriteCurveKeyPair(key_file, gateway_keys_).ok()) Die("cannot write gateway key");
    gateway_endpoint_ = "tcp://127.0.0.1:" + std::to_string(testing::FreeTcpPort());
    const int http = testing::FreeTcpPort();
    auto env = Env();
    env["FEDRX_GATEWAY_SITES_ENDPOINT"] = gateway_endpoint_;
    env["FEDRX_GATEWAY_COORDINATOR_ENDPOINT"] = coordinator_.endpoint;
    env["FEDRX_GATEWAY_CURVE_KEY_FILE"] = key_file;
    env["FEDRX_GATEWAY_COORDINATOR_PUBLIC_KEY_FILE"] = coordinator_.public_file;
    env["FEDRX_HTTP_LISTEN"] = "127.0.0.1:" + std::to_string(http);
    env["FEDRX_GATEWAY_SERVICES_TOX_ENDPOINT"] = tox_.endpoint;
    env["FEDRX_GATEWAY_SERVICES_TOX_PUBLIC_KEY_FILE"] = tox_.public_file;
    // The mechanism's cost, not the policy's: no per-identity throttling of
    // the bench's scientist (the demo's limit is 20 requests/s).
    env["FEDRX_GATEWAY_LIMITS_SCIENTIST_RATE"] = "100000";
    env["FEDRX_GATEWAY_LIMITS_SCIENTIST_BURST"] = "100000";
    auto child = ChildProcess::Spawn(FEDRX_GATEWAY_BIN, {}, env);
    if (!child.ok()) Die("gateway: " + child.status().ToString());
    gateway_ = std::move(*child);
    if (!testing::WaitForHttp200(http, "/readyz", 30s)) {
      Die("the gateway never became ready: " + gateway_->Log());
    }
    scientist_key_ = dir_ + "/scientist.key";
    auto cli =
        ChildProcess::Spawn(FEDRX_CLI_BIN, {"institutions", "enrol", "--redis",
                                            "127.0.0.1:" + std::to_string(redis_port_), "--id",
                                            "bench-scientist", "--name", "Bench scientist",
                                            "--role", "scientist", "--key-out", scientist_key_});
    if (!cli.ok()) Die("fedrx: " + cli.status().ToString());
    auto code = (*cli)->Wait(60s);
    if (!code.ok() || *code != 0) Die("enrolling the scientist failed: " + (*cli)->Log());
  }

  std::string dir_;
  int redis_port_;
  core::CurveKeyPair gateway_keys_;
  std::string clients_file_;
  Proc coordinator_, tox_;
  std::unique_ptr<ChildProcess> gateway_;
  std::string gateway_endpoint_, scientist_key_;
};

// A scientist's CURVE connection to the gateway.
class Client {
 public:
  Client(const Stack& stack) : bus_(Options(stack), metrics_, clock_) {
    auto ch = bus_.Connect(stack.gateway_endpoint(), [](codec::Message&&) {});
    if (!ch.ok()) Die("connect: " + ch.status().ToString());
    channel_ = *ch;
  }

  // The panel for `smiles`, or the error (request-level) as a status.
  core::Result<codec::ToxicityPanel> Ask(const std::vector<std::string>& smiles) {
    codec::PredictToxicity req;
    req.smiles = smiles;
    req.panel = "tox21";
    req.confidence = 0.9;
    FEDRX_ASSIGN_OR_RETURN(codec::Message reply,
                           core::Call(bus_, channel_, core::MakeMessage(std::move(req)), 60s));
    if (auto* e = std::get_if<codec::Error>(&reply.body)) return core::FromErrorBody(*e);
    auto* panel = std::get_if<codec::ToxicityPanel>(&reply.body);
    if (panel == nullptr) {
      return core::Internal(std::string("answered ") + codec::BodyName(reply.body), "bench");
    }
    return std::move(*panel);
  }

 private:
  static core::BusOptions Options(const Stack& stack) {
    auto own = core::LoadCurveKeyPair(stack.scientist_key());
    if (!own.ok()) Die("scientist key: " + own.status().ToString());
    core::BusOptions o;
    o.name = "tox-bench";
    o.curve_public_key = own->public_key;
    o.curve_secret_key = own->secret_key;
    o.curve_server_key = stack.gateway_public_key();
    o.limits.max_envelope_bytes = 64u << 20;
    return o;
  }

  core::Metrics metrics_{"toxbench"};
  core::SystemClock clock_;
  core::ZmqBus bus_;
  core::ChannelId channel_ = 0;
};

// The calibration a coordinator would store after the sites' evaluation.
coordinator::VersionCalibration Calibrate(const ml::NetSpec& net, const std::vector<float>& w,
                                          const ml::Dataset& train, const ml::Dataset& valid) {
  coordinator::VersionCalibration c;
  c.samples = valid.size();
  c.tasks = valid.tasks;
  auto v = ml::PredictWithEmbedding(net, w, valid.x, 2);
  auto t = ml::PredictWithEmbedding(net, w, train.x, 2);
  if (!v.ok() || !t.ok()) Die("calibration forward pass failed");
  c.histograms = *ml::Histograms(valid, v->probabilities);
  c.embedding = *ml::MomentsOf(t->embedding, net.hidden.back());
  auto ref = ml::ReferenceFromMoments(c.embedding);
  if (!ref.ok()) Die("reference: " + ref.status().ToString());
  c.domain_histogram = *ml::DomainHistogram(v->embedding, *ref, kDomainBins);
  return c;
}

// The calibration for the Python side, as plain JSON.
void WriteCalibrationJson(const std::string& path, const coordinator::VersionCalibration& c) {
  auto ref = ml::ReferenceFromMoments(c.embedding);
  if (!ref.ok()) Die("reference: " + ref.status().ToString());
  std::ofstream f(path);
  const auto list = [&](const auto& v) {
    f << "[";
    for (std::size_t i = 0; i < v.size(); ++i) f << (i ? "," : "") << v[i];
    f << "]";
  };
  f.precision(17);
  f << "{\"pos\": [";
  for (std::size_t t = 0; t < c.histograms.size(); ++t) {
    f << (t ? "," : "");
    list(c.histograms[t].pos);
  }
  f << "], \"neg\": [";
  for (std::size_t t = 0; t < c.histograms.size(); ++t) {
    f << (t ? "," : "");
    list(c.histograms[t].neg);
  }
  f << "], \"mean\": ";
  list(ref->mean);
  f << ", \"scale\": ";
  list(ref->scale);
  f << ", \"domain\": ";
  list(c.domain_histogram);
  f << "}\n";
}

struct PythonResult {
  double compounds_per_s = NAN, p50_ms = NAN, p99_ms = NAN;
  std::vector<double> probabilities;  // first rows, row-major
  std::vector<int> featurised;        // per compound: 1 when RDKit read it
};

PythonResult RunPython(const std::string& dir, const std::string& smiles_file,
                       const std::string& weights, const std::string& calibration,
                       std::size_t batch, std::size_t singles) {
  PythonResult r;
  const std::string out = dir + "/python.json";
  const std::string cmd = "/usr/bin/python3 " FEDRX_TOX_BASELINE_SCRIPT " --smiles " + smiles_file +
                          " --weights " + weights + " --calibration " + calibration +
                          " --input-dim 2048 --hidden 512 --tasks 12 --radius 2 --batch " +
                          std::to_string(batch) + " --singles " + std::to_string(singles) +
                          " --threads 2 --out " + out + " 2>" + dir + "/python.log";
  const int code = std::system(cmd.c_str());
  if (code != 0) {
    std::cerr << "python baseline unavailable (exit " << code
              << "): " << ReadAll(dir + "/python.log") << std::endl;
    return r;
  }
  // A flat JSON object of numbers and two number lists, written by the script.
  const std::string text = ReadAll(out);
  const auto number = [&](const std::string& key) {
    const auto at = text.find("\"" + key + "\":");
    return at == std::string::npos ? NAN : std::strtod(text.c_str() + at + key.size() + 3, nullptr);
  };
  const auto numbers = [&](const std::string& key) {
    std::vector<double> v;
    auto at = text.find("\"" + key + "\": [");
    if (at == std::string::npos) return v;
    at += key.size() + 5;
    const auto end = text.find(']', at);
    std::stringstream s(text.substr(at, end - at));
    std::string item;
    while (std::getline(s, item, ',')) v.push_back(std::strtod(item.c_str(), nullptr));
    return v;
  };
  r.compounds_per_s = number("compounds_per_s");
  r.p50_ms = number("single_p50_ms");
  r.p99_ms = number("single_p99_ms");
  r.probabilities = numbers("probabilities");
  for (double v : numbers("featurised")) r.featurised.push_back(static_cast<int>(v));
  return r;
}

int Main(int argc, char** argv) {
  const Flags flags = ParseFlags(argc, argv);
  JsonLines lines(flags.out);
  testing::TempDir dir;
  const std::string source = FEDRX_SOURCE_DIR;

  // The demo study's network and the Tox21 data, split as the demo splits it.
  auto config =
      core::Config::Load(source + "/deploy/studies/tox21-demo.study", core::ProcessEnvironment());
  if (!config.ok()) Die(config.status().ToString());
  auto spec = ml::StudySpecFromConfig(*config);
  if (!spec.ok()) Die(spec.status().ToString());
  spec->study_id = "tox-bench";
  const ml::NetSpec net = ml::NetSpecFromStudy(*spec);
  const std::string csv = source + "/deploy/data/tox21/tox21.csv";
  ml::FingerprintOptions fp;
  fp.radius = static_cast<int>(spec->fingerprint_radius);
  fp.bits = net.input_dim;
  ml::LoadReport report;
  auto all = ml::LoadCsvDataset(csv, ml::CsvOptions{}, fp, &report);
  if (!all.ok()) Die(all.status().ToString());
  const std::vector<std::string> raw = RawSmiles(csv);
  // Loaded rows keep the file's order; map each back to its record's SMILES.
  std::vector<std::size_t> loaded_record;
  {
    std::vector<bool> skipped(report.rows_read + 1, false);
    for (const auto& s : report.skipped) skipped[s.row] = true;
    for (std::size_t rec = 1; rec <= report.rows_read; ++rec) {
      if (!skipped[rec]) loaded_record.push_back(rec - 1);
    }
  }
  const ml::SplitIndices parts = ml::ScaffoldSplit(*all, 0.8, 0.1);
  const ml::Dataset train = all->Subset(parts.train).WithTasks(spec->tasks);
  const ml::Dataset valid = all->Subset(parts.valid).WithTasks(spec->tasks);
  std::vector<std::string> compounds;
  for (std::size_t r : parts.test) compounds.push_back(raw.at(loaded_record.at(r)));
  if (flags.compounds > 0 && flags.compounds < compounds.size()) compounds.resize(flags.compounds);
  {
    const std::vector<std::string> once = compounds;
    for (std::size_t k = 1; k < flags.repeat; ++k) {
      compounds.insert(compounds.end(), once.begin(), once.end());
    }
  }

  std::vector<float> weights;
  if (!flags.model.empty()) {
    std::ifstream f(flags.model, std::ios::binary | std::ios::ate);
    const auto bytes = static_cast<std::size_t>(f.tellg());
    if (!f || bytes != ml::ParameterCount(net) * sizeof(float)) Die("--model has the wrong size");
    weights.resize(ml::ParameterCount(net));
    f.seekg(0);
    f.read(reinterpret_cast<char*>(weights.data()), static_cast<std::streamsize>(bytes));
  } else {
    weights = ml::InitParameters(net, spec->seed);
    ml::TrainOptions o;
    o.epochs = 3;
    o.batch_size = spec->batch_size;
    o.learning_rate = spec->learning_rate;
    o.seed = spec->seed;
    o.threads = 2;
    ml::Trainer trainer(o);
    if (!trainer.Train(net, train, weights).ok()) Die("training failed");
  }
  const std::string weights_file = dir.path() + "/weights.bin";
  std::ofstream(weights_file, std::ios::binary)
      .write(reinterpret_cast<const char*>(weights.data()),
             static_cast<std::streamsize>(weights.size() * sizeof(float)));
  coordinator::VersionCalibration calibration = Calibrate(net, weights, train, valid);
  const std::string calibration_file = dir.path() + "/calibration.json";
  WriteCalibrationJson(calibration_file, calibration);
  const std::string smiles_file = dir.path() + "/smiles.txt";
  {
    std::ofstream f(smiles_file);
    for (const auto& s : compounds) f << s << "\n";
  }

  auto redis = testing::RedisServer::Start();
  if (!redis.ok()) Die("redis: " + redis.status().ToString());
  {
    core::RedisOptions ro;
    ro.port = (*redis)->port();
    auto store = core::RedisStateStore::Connect(ro, nullptr);
    if (!store.ok()) Die(store.status().ToString());
    coordinator::StudyStore studies(**store);
    if (auto s = studies.Create(*spec, weights, 0); !s.ok()) Die(s.ToString());
    calibration.version = 0;
    if (auto s = studies.SaveCalibration(spec->study_id, calibration); !s.ok()) Die(s.ToString());
  }
  Stack stack(dir.path(), (*redis)->port());
  stack.Start(spec->study_id, flags.tox_poll_interval);
  std::cerr << "stack up: " << compounds.size() << " test compounds, batches of " << flags.batch
            << std::endl;

  // Wait for the service to load the model.
  {
    Client c(stack);
    bool ready = false;
    for (int i = 0; i < 100 && !ready; ++i) {
      ready = c.Ask({"CCO"}).ok();
      if (!ready) std::this_thread::sleep_for(200ms);
    }
    if (!ready) Die("the tox service never answered");
  }

  // Throughput: two clients in flight, each taking the next batch.
  std::vector<std::vector<std::string>> batches;
  for (std::size_t i = 0; i < compounds.size(); i += flags.batch) {
    batches.emplace_back(compounds.begin() + static_cast<std::ptrdiff_t>(i),
                         compounds.begin() + static_cast<std::ptrdiff_t>(
                                                 std::min(i + flags.batch, compounds.size())));
  }
  std::vector<codec::ToxicityPanel> answers(batches.size());
  std::atomic<std::size_t> next{0};
  std::atomic<int> failures{0};
  const auto t0 = Steady::now();
  std::vector<std::thread> clients;
  for (int k = 0; k < 2; ++k) {
    clients.emplace_back([&] {
      Client c(stack);
      for (std::size_t b = next++; b < batches.size(); b = next++) {
        auto a = c.Ask(batches[b]);
        if (!a.ok()) {
          std::cerr << "batch " << b << ": " << a.status() << std::endl;
          ++failures;
          continue;
        }
        answers[b] = std::move(*a);
      }
    });
  }
  for (auto& t : clients) t.join();
  const double seconds = std::chrono::duration<double>(Steady::now() - t0).count();
  if (failures > 0) Die(std::to_string(failures.load()) + " batches failed");
  const double fedrx_rate = static_cast<double>(compounds.size()) / seconds;

  // Latency of single-compound requests, one at a time.
  std::vector<double> latencies;
  {
    Client c(stack);
    for (std::size_t i = 0; i < flags.singles; ++i) {
      const auto s = Steady::now();
      auto a = c.Ask({compounds[i % compounds.size()]});
      latencies.push_back(std::chrono::duration<double, std::milli>(Steady::now() - s).count());
      if (!a.ok()) Die("single request: " + a.status().ToString());
    }
  }

  PythonResult py;
  if (flags.python) {
    py = RunPython(dir.path(), smiles_file, weights_file, calibration_file, flags.batch,
                   flags.singles);
  }
  const std::string sfx = flags.label.empty() ? "" : "_" + flags.label;
  lines.Emit(kBench, "panel_compounds_per_s" + sfx, fedrx_rate, "compounds/s", py.compounds_per_s);
  lines.Emit(kBench, "single_compound_p50_ms" + sfx, Percentile(latencies, 0.5), "ms", py.p50_ms,
             true);
  lines.Emit(kBench, "single_compound_p99_ms" + sfx, Percentile(latencies, 0.99), "ms", py.p99_ms,
             true);

  // Do both sides compute the same thing? Compare the probabilities of the
  // compounds both featurised.
  std::size_t refused = 0, compared = 0, differ = 0;
  double max_diff = 0;
  std::size_t row = 0;
  for (const auto& panel : answers) {
    for (const auto& r : panel.results) {
      const bool ok = r.error_code.empty();
      refused += ok ? 0 : 1;
      const bool py_ok = row < py.featurised.size() && py.featurised[row] == 1;
      if (ok && py_ok && (row + 1) * 12 <= py.probabilities.size()) {
        double d = 0;
        for (std::size_t t = 0; t < r.tasks.size() && t < 12; ++t) {
          d = std::max(d, std::abs(r.tasks[t].probability - py.probabilities[row * 12 + t]));
        }
        ++compared;
        differ += d > 1e-4 ? 1 : 0;
        max_diff = std::max(max_diff, d);
      }
      ++row;
    }
  }
  lines.Emit(kBench, "structures_refused", static_cast<double>(refused), "structures");
  if (!py.probabilities.empty()) {
    lines.Emit(kBench, "probability_rows_compared", static_cast<double>(compared), "structures");
    lines.Emit(kBench, "probability_rows_differing_gt_1e-4", static_cast<double>(differ),
               "structures");
  }
  std::cerr << "tox: " << compounds.size() << " compounds in " << seconds << " s; " << refused
            << " refused by fedrx; python compared " << compared << ", " << differ
            << " differ by > 1e-4 (max " << max_diff << ")" << std::endl;
  return 0;
}

}  // namespace
}  // namespace fedrx::bench

int main(int argc, char** argv) { return fedrx::bench::Main(argc, argv); }
