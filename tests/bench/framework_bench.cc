// fedrx_framework_bench: the framework's own cost, through the real
// processes (redis-server, fedrx-coordinator, fedrx-gateway and N fedrx-site)
// over TCP on 127.0.0.1, in one run:
//   framework_<P>_x_<N>_sites: a study whose model has exactly P float32
//     parameters (input_dim P-3, hidden {1}, one task), synthetic sites
//     (site.synthetic_step: no data, "training" adds a constant), no federated
//     evaluation; median round time from the coordinator's own per-round
//     started/closed timestamps, the round period (start to next start),
//     peak RSS (VmHWM) of the coordinator, the gateway and the largest site,
//     Redis used_memory (model versions live there, not in the coordinator)
//     and bytes sent per round summed over every process's
//     fedrx_<service>_bytes_total{direction="out"};
//   demo_round: the Tox21 demo study (deploy/studies/tox21-demo.study) with
//     the demo's three sites on real data, each round's wall time broken into
//     model download, local training, upload + aggregation + store,
//     aggregation alone (the coordinator's update_aggregation_seconds) and
//     federated evaluation, from the coordinator's timestamps and histograms
//     and the sites' /metrics polled every ~5 ms (medians over the rounds; the
//     polling interval is reported, as it bounds the sites' milestones).
// Baselines are the published-like figures of common Python frameworks that
// the issue quotes (0.09 s/round at 1M x 3 sites, 1.2 s/round at 10M x 3;
// server memory above 20x the model size); null where none is quoted. Time
// rows have ratio = baseline / fedrx (a speed-up); every other row has
// ratio = value / baseline.
//
// Usage: fedrx_framework_bench [--out FILE] [--rounds N] [--only synthetic|demo]
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "services/core/bus.h"
#include "services/core/clock.h"
#include "services/core/config.h"
#include "services/core/metrics.h"
#include "services/core/zmq_bus.h"
#include "services/ml/model.h"
#include "services/ml/study_spec.h"
#include "tests/bench/json_lines.h"
#include "tests/support/child_process.h"
#include "tests/support/http_client.h"
#include "tests/support/redis_server.h"

namespace fedrx::bench {
namespace {

using namespace std::chrono_literals;
using testing::ChildProcess;

[[noreturn]] void Die(const std::string& what) {
  std::cerr << "fedrx_framework_bench: " << what << std::endl;
  std::exit(1);
}

std::int64_t WallMillisNow() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

double Median(std::vector<double> v) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// ---- Processes --------------------------------------------------------------------------

// A /proc/<pid>/status field (VmHWM, VmRSS) of a live process, in bytes;
// NAN if unreadable.
double StatusBytes(int pid, const std::string& field) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind(field + ":", 0) == 0) {
      return std::strtod(line.c_str() + field.size() + 1, nullptr) * 1024.0;  // kB
    }
  }
  return NAN;
}
double PeakRss(int pid) { return StatusBytes(pid, "VmHWM"); }

std::string Tail(const std::string& log, std::size_t lines = 30) {
  std::size_t at = log.size();
  for (std::size_t n = 0; n <= lines && at != std::string::npos && at > 0; ++n) {
    at = log.rfind('\n', at - 1);
  }
  return at == std::string::npos ? log : log.substr(at + 1);
}

struct SiteSetup {
  std::string id;
  std::string data;  // empty: synthetic
};

// One service process with its /metrics port.
struct Service {
  std::string name;     // for messages
  std::string metrics;  // its metric prefix: fedrx_<metrics>_...
  std::unique_ptr<ChildProcess> process;
  int http_port = 0;

  std::string Scrape() const {
    auto r = testing::HttpGet(http_port, "/metrics", 2s);
    return r.ok() && r->status == 200 ? r->body : std::string();
  }
  double Metric(const std::string& exposition, const std::string& what,
                const std::string& labels = "") const {
    return testing::MetricValue(exposition, "fedrx_" + metrics + "_" + what, labels);
  }
};

constexpr char kOut[] = R"(direction="out")";

// Redis, coordinator, gateway and sites on loopback, each on free ports.
class Federation {
 public:
  Federation(const std::vector<SiteSetup>& sites, const std::string& approved_study) {
    auto redis = testing::RedisServer::Start();
    if (!redis.ok()) Die("redis: " + redis.status().ToString());
    redis_ = std::move(*redis);
    endpoint_ = "tcp://127.0.0.1:" + std::to_string(testing::FreeTcpPort());
    const std::string sites_endpoint = "tcp://127.0.0.1:" + std::to_string(testing::FreeTcpPort());
    const std::map<std::string, std::string> common = {{"FEDRX_BUS_MAX_TENSOR_BYTES", "512MiB"},
                                                       {"FEDRX_RUNNER_DRAIN_TIMEOUT", "2s"}};

    auto env = common;
    env["FEDRX_COORDINATOR_ENDPOINT"] = endpoint_;
    env["FEDRX_REDIS_HOST"] = "127.0.0.1";
    env["FEDRX_REDIS_PORT"] = std::to_string(redis_->port());
    coordinator_ = Start("coordinator", "coordinator", FEDRX_COORDINATOR_BIN, {}, env);

    env = common;
    env["FEDRX_GATEWAY_SITES_ENDPOINT"] = sites_endpoint;
    env["FEDRX_GATEWAY_COORDINATOR_ENDPOINT"] = endpoint_;
    gateway_ = Start("gateway", "gateway", FEDRX_GATEWAY_BIN, {}, env);

    for (const SiteSetup& s : sites) {
      env = common;
      env["FEDRX_SITE_ID"] = s.id;
      env["FEDRX_SITE_INSTITUTION"] = "Bench " + s.id;
      env["FEDRX_SITE_GATEWAY"] = sites_endpoint;
      env["FEDRX_SITE_APPROVED_STUDIES"] = approved_study;
      env["FEDRX_SITE_HEARTBEAT_INTERVAL"] = "1s";
      env["FEDRX_SITE_TRAIN_THREADS"] = "1";
      std::vector<std::string> args;
      if (s.data.empty()) {
        env["FEDRX_SITE_SYNTHETIC_STEP"] = "0.001";
      } else {
        env["FEDRX_SITE_DATA"] = s.data;
        args = {"--config", std::string(FEDRX_SOURCE_DIR) + "/deploy/site.conf"};
      }
      sites_.push_back(Start("site " + s.id, "site", FEDRX_SITE_BIN, args, env, false));
    }
    // Sites featurise their data before they are ready: wait for all at once.
    for (Service& s : sites_) WaitReady(s, 180s);
    auto ch = bus_.Connect(endpoint_, [](codec::Message&&) {});
    if (!ch.ok()) Die("connect to the coordinator: " + ch.status().ToString());
    channel_ = *ch;
  }

  core::Result<codec::Message> Ask(codec::Body body, std::chrono::milliseconds timeout = 30s) {
    return core::Call(bus_, channel_, core::MakeMessage(std::move(body)), timeout);
  }

  void CreateStudy(const codec::StudySpec& spec) {
    auto reply = Ask(codec::CreateStudy{spec}, 60s);
    if (!reply.ok()) Die("CreateStudy: " + reply.status().ToString());
    if (auto* e = std::get_if<codec::Error>(&reply->body)) {
      Die("CreateStudy refused: " + core::FromErrorBody(*e).ToString());
    }
  }

  codec::StudyInfo GetStudy(const std::string& id) {
    auto reply = Ask(codec::GetStudy{id});
    if (!reply.ok()) Die("GetStudy: " + reply.status().ToString());
    auto* info = std::get_if<codec::StudyInfo>(&reply->body);
    if (info == nullptr) Die(std::string("GetStudy answered ") + codec::BodyName(reply->body));
    return std::move(*info);
  }

  // Every process's fedrx_<service>_bytes_total{direction="out"}, summed.
  double BytesOut() const {
    double total = 0;
    for (const Service* s : All()) {
      const double v = s->Metric(s->Scrape(), "bytes_total", kOut);
      if (v < 0) Die("no bytes_total from " + s->name);
      total += v;
    }
    return total;
  }

  double RedisUsedMemory() {
    auto info = redis_->Command({"INFO", "memory"});
    if (!info.ok()) return NAN;
    const auto at = info->find("used_memory:");
    return at == std::string::npos ? NAN : std::strtod(info->c_str() + at + 12, nullptr);
  }

  // Dies with the processes' last words if one has exited.
  void CheckAlive() {
    for (const Service* s : All()) {
      if (!s->process->Running()) Die(s->name + " exited:\n" + Tail(s->process->Log()));
    }
  }

  std::string Logs() const {
    std::string all;
    for (const Service* s : All()) all += "--- " + s->name + "\n" + Tail(s->process->Log(), 12);
    return all;
  }

  const Service& coordinator() const { return coordinator_; }
  const Service& gateway() const { return gateway_; }
  const std::vector<Service>& sites() const { return sites_; }

 private:
  std::vector<const Service*> All() const {
    std::vector<const Service*> all = {&coordinator_, &gateway_};
    for (const Service& s : sites_) all.push_back(&s);
    return all;
  }

  Service Start(const std::string& name, const std::string& metrics, const std::string& binary,
                const std::vector<std::string>& args, std::map<std::string, std::string> env,
                bool wait = true) {
    Service s;
    s.name = name;
    s.metrics = metrics;
    s.http_port = testing::FreeTcpPort();
    env["FEDRX_HTTP_LISTEN"] = "127.0.0.1:" + std::to_string(s.http_port);
    auto child = ChildProcess::Spawn(binary, args, env);
    if (!child.ok()) Die(name + ": " + child.status().ToString());
    s.process = std::move(*child);
    if (wait) WaitReady(s, 30s);
    return s;
  }

  static void WaitReady(Service& s, std::chrono::milliseconds timeout) {
    if (!testing::WaitForHttp200(s.http_port, "/readyz", timeout)) {
      Die(s.name + " did not become ready:\n" + Tail(s.process->Log()));
    }
  }

  std::unique_ptr<testing::RedisServer> redis_;
  std::string endpoint_;
  Service coordinator_;
  Service gateway_;
  std::vector<Service> sites_;
  core::SystemClock clock_;
  core::Metrics metrics_{"bench"};
  core::ZmqBus bus_{core::BusOptions{"framework-bench"}, metrics_, clock_};
  core::ChannelId channel_ = -1;
};

// Polls the study every `interval` until it completes (dies if it fails or
// takes longer than `patience`), calling `each_poll` in between.
codec::StudyInfo WaitForStudy(Federation& fed, const std::string& id,
                              std::chrono::milliseconds interval, std::chrono::seconds patience,
                              const std::function<void()>& each_poll = {}) {
  const auto give_up = std::chrono::steady_clock::now() + patience;
  auto next_info = std::chrono::steady_clock::now();
  for (;;) {
    if (each_poll) each_poll();
    if (std::chrono::steady_clock::now() >= next_info) {
      codec::StudyInfo info = fed.GetStudy(id);
      if (info.state == codec::StudyState::kCompleted) return info;
      if (info.state == codec::StudyState::kFailed) Die("study " + id + " failed: " + info.detail);
      fed.CheckAlive();
      next_info = std::chrono::steady_clock::now() + 200ms;
    }
    if (std::chrono::steady_clock::now() > give_up) {
      Die("study " + id + " did not complete in time\n" + fed.Logs());
    }
    std::this_thread::sleep_for(interval);
  }
}

// ---- Synthetic studies --------------------------------------------------------------------

struct Scenario {
  std::size_t params;
  int sites;
  std::optional<double> baseline_round_s;  // the Python frameworks' figure, if quoted
};

constexpr double kBaselineServerMemoryOverModel = 20;

std::string Count(std::size_t n) {
  return n % 1'000'000 == 0 ? std::to_string(n / 1'000'000) + "M" : std::to_string(n);
}

codec::StudySpec SyntheticSpec(const std::string& id, std::size_t params,
                               const std::vector<std::string>& sites, int rounds) {
  codec::StudySpec spec;
  spec.study_id = id;
  spec.name = "framework bench " + id;
  spec.tasks = {"t0"};
  spec.model.input_dim = static_cast<std::uint32_t>(params - 3);
  spec.model.hidden = {1};
  spec.model.num_tasks = 1;
  spec.model.dropout = 0;
  spec.rounds = static_cast<std::uint32_t>(rounds);
  spec.min_sites = static_cast<std::uint32_t>(sites.size());
  spec.local_epochs = 1;
  spec.learning_rate = 0.001f;
  spec.seed = 7;
  spec.strategy = "fedavg";
  spec.round_deadline_ms = 120'000;
  spec.batch_size = 64;
  spec.sites = sites;
  spec.evaluate_every = 0;
  if (ml::ParameterCount(ml::NetSpecFromStudy(spec)) != params) {
    Die("the synthetic spec does not have " + std::to_string(params) + " parameters");
  }
  return spec;
}

void RunSynthetic(const Scenario& sc, int rounds, JsonLines& sink) {
  const std::string id = "bench-" + Count(sc.params) + "-" + std::to_string(sc.sites);
  std::vector<SiteSetup> setups;
  std::vector<std::string> ids;
  for (int i = 0; i < sc.sites; ++i) {
    char name[16];
    std::snprintf(name, sizeof name, "site-%02d", i);
    setups.push_back({name, ""});
    ids.push_back(name);
  }
  Federation fed(setups, id);
  const codec::StudySpec spec = SyntheticSpec(id, sc.params, ids, rounds);
  const double bytes_before = fed.BytesOut();
  const double coordinator_idle = StatusBytes(fed.coordinator().process->pid(), "VmRSS");
  const auto t0 = std::chrono::steady_clock::now();
  fed.CreateStudy(spec);
  const codec::StudyInfo info = WaitForStudy(fed, id, 20ms, 600s);
  const double study_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double bytes = fed.BytesOut() - bytes_before;

  std::vector<double> round_s, period_s;
  for (std::size_t i = 0; i < info.rounds.size(); ++i) {
    const codec::RoundSummary& r = info.rounds[i];
    if (r.state != codec::RoundState::kClosed ||
        r.updates_received != static_cast<std::uint32_t>(sc.sites)) {
      Die(id + ": round " + std::to_string(r.round) + " did not close with every site");
    }
    round_s.push_back((r.closed_at_ms - r.started_at_ms) / 1e3);
    if (i + 1 < info.rounds.size()) {
      period_s.push_back((info.rounds[i + 1].started_at_ms - r.started_at_ms) / 1e3);
    }
  }
  if (round_s.size() != static_cast<std::size_t>(rounds)) Die(id + ": rounds missing");

  const double model_bytes = static_cast<double>(sc.params) * sizeof(float);
  const double coordinator_peak = PeakRss(fed.coordinator().process->pid());
  const double gateway_peak = PeakRss(fed.gateway().process->pid());
  double site_peak = 0;
  for (const Service& s : fed.sites()) site_peak = std::max(site_peak, PeakRss(s.process->pid()));
  const double redis_used = fed.RedisUsedMemory();

  const std::string bench =
      "framework_" + Count(sc.params) + "_x_" + std::to_string(sc.sites) + "_sites";
  const auto mib = [](double b) { return b / (1 << 20); };
  sink.Emit(bench, "round_time_median", Median(round_s), "s", sc.baseline_round_s, true);
  sink.Emit(bench, "round_period_median", Median(period_s), "s", sc.baseline_round_s, true);
  sink.Emit(bench, "study_wall_time", study_s, "s");
  sink.Emit(bench, "coordinator_peak_rss", mib(coordinator_peak), "MiB",
            kBaselineServerMemoryOverModel * mib(model_bytes));
  sink.Emit(bench, "coordinator_peak_rss_over_model_size", coordinator_peak / model_bytes, "x",
            kBaselineServerMemoryOverModel);
  sink.Emit(bench, "coordinator_rss_before_study", mib(coordinator_idle), "MiB");
  sink.Emit(bench, "coordinator_peak_rss_above_idle_over_model_size",
            (coordinator_peak - coordinator_idle) / model_bytes, "x",
            kBaselineServerMemoryOverModel);
  sink.Emit(bench, "gateway_peak_rss", mib(gateway_peak), "MiB");
  sink.Emit(bench, "site_peak_rss_max", mib(site_peak), "MiB");
  sink.Emit(bench, "site_peak_rss_over_model_size", site_peak / model_bytes, "x");
  sink.Emit(bench, "redis_used_memory", mib(redis_used), "MiB");
  sink.Emit(bench, "bytes_out_per_round", bytes / rounds / 1e6, "MB");
  // Each site receives the model and sends its update through the gateway:
  // 2 hops x 2 directions x sites x model, the floor for this topology.
  sink.Emit(bench, "bytes_out_per_round_over_model_exchange",
            bytes / rounds / (4.0 * sc.sites * model_bytes), "x");
}

// ---- The Tox21 demo round ------------------------------------------------------------------

// When a counter first reached each value, as seen by polling.
class Milestones {
 public:
  void See(double value, std::int64_t at_ms) {
    for (long v = static_cast<long>(seen_) + 1; v <= static_cast<long>(value); ++v) {
      at_[static_cast<int>(v)] = at_ms;
    }
    seen_ = std::max(seen_, value);
  }
  std::optional<std::int64_t> At(int value) const {
    auto it = at_.find(value);
    return it == at_.end() ? std::nullopt : std::optional<std::int64_t>(it->second);
  }

 private:
  double seen_ = 0;
  std::map<int, std::int64_t> at_;
};

void RunDemo(JsonLines& sink) {
  const std::string source = FEDRX_SOURCE_DIR;
  const std::vector<std::string> names = {"pharma-a", "hospital-b", "cro-c"};
  testing::TempDir dir;
  if (dir.path().empty()) Die("no temporary directory");
  {
    auto lab = ChildProcess::Spawn(
        FEDRX_LAB_BIN,
        {"prepare", "--data", source + "/deploy/data/tox21/tox21.csv", "--out", dir.path(),
         "--sites", "pharma-a,hospital-b,cro-c", "--shares", "0.5,0.3,0.2", "--seed", "7"});
    if (!lab.ok()) Die("fedrx-lab: " + lab.status().ToString());
    auto code = (*lab)->Wait(300s);
    if (!code.ok() || *code != 0) Die("fedrx-lab prepare failed:\n" + Tail((*lab)->Log()));
  }
  auto config = core::Config::Load(source + "/deploy/studies/tox21-demo.study", {});
  if (!config.ok()) Die("study file: " + config.status().ToString());
  auto spec = ml::StudySpecFromConfig(*config);
  if (!spec.ok()) Die("study file: " + spec.status().ToString());

  std::vector<SiteSetup> setups;
  for (const auto& n : names) setups.push_back({n, dir.path() + "/" + n + ".csv"});
  Federation fed(setups, spec->study_id);

  // Per site: when it had the model (TrainTask received) and when it had
  // trained, by round; the coordinator's training-phase and aggregation
  // histograms, by the number of rounds stored.
  std::vector<Milestones> got_task(names.size()), trained(names.size());
  std::map<int, double> training_phase_s = {{0, 0.0}}, aggregation_sum_s = {{0, 0.0}};
  double last_training_count = 0;
  std::vector<double> cycle_ms;  // time between polls: the resolution of the site milestones
  std::int64_t last_poll = 0;
  const auto poll = [&] {
    const std::int64_t now = WallMillisNow();
    if (last_poll != 0) cycle_ms.push_back(static_cast<double>(now - last_poll));
    last_poll = now;
    for (std::size_t i = 0; i < fed.sites().size(); ++i) {
      const Service& s = fed.sites()[i];
      const std::string m = s.Scrape();
      if (m.empty()) continue;
      got_task[i].See(s.Metric(m, "messages_total", R"(direction="in",type="TrainTask")"), now);
      trained[i].See(s.Metric(m, "rounds_trained_total"), now);
    }
    const Service& c = fed.coordinator();
    const std::string m = c.Scrape();
    const double count = c.Metric(m, "round_training_seconds_count");
    if (count > last_training_count) {
      // Rounds are seconds apart: one poll never sees two of them close.
      training_phase_s[static_cast<int>(count)] = c.Metric(m, "round_training_seconds_sum");
      aggregation_sum_s[static_cast<int>(count)] = c.Metric(m, "update_aggregation_seconds_sum");
      last_training_count = count;
    }
  };
  fed.CreateStudy(*spec);
  const codec::StudyInfo info = WaitForStudy(fed, spec->study_id, 5ms, 900s, poll);

  std::map<std::string, std::vector<double>> phases;
  std::vector<double> samples;  // training rows behind each round's update, over all sites
  for (const codec::RoundSummary& r : info.rounds) {
    const int k = static_cast<int>(r.round);
    if (r.state != codec::RoundState::kClosed) Die("demo round " + std::to_string(k) + " failed");
    std::int64_t last_task = 0, last_trained = 0;
    double slowest = 0, mean = 0;
    for (std::size_t i = 0; i < names.size(); ++i) {
      auto task_at = got_task[i].At(k);
      auto trained_at = trained[i].At(k);
      if (!task_at || !trained_at) Die("demo round " + std::to_string(k) + ": a site was missed");
      last_task = std::max(last_task, *task_at);
      last_trained = std::max(last_trained, *trained_at);
      slowest = std::max(slowest, (*trained_at - *task_at) / 1e3);
      mean += (*trained_at - *task_at) / 1e3 / names.size();
    }
    if (training_phase_s.count(k) == 0 || training_phase_s.count(k - 1) == 0) {
      Die("demo round " + std::to_string(k) + ": coordinator histograms were missed");
    }
    const double training_phase = training_phase_s[k] - training_phase_s[k - 1];
    const double aggregation = aggregation_sum_s[k] - aggregation_sum_s[k - 1];
    const double stored_ms = r.started_at_ms + training_phase * 1e3;
    phases["round_wall"].push_back((r.closed_at_ms - r.started_at_ms) / 1e3);
    phases["download"].push_back((last_task - r.started_at_ms) / 1e3);
    phases["local_training_critical"].push_back((last_trained - last_task) / 1e3);
    phases["local_training_slowest_site"].push_back(slowest);
    phases["local_training_mean_site"].push_back(mean);
    phases["upload_aggregate_store"].push_back((stored_ms - last_trained) / 1e3);
    phases["aggregation"].push_back(aggregation);
    phases["evaluation"].push_back((r.closed_at_ms - stored_ms) / 1e3);
    samples.push_back(static_cast<double>(r.samples));
  }
  for (const char* phase :
       {"round_wall", "download", "local_training_critical", "local_training_slowest_site",
        "local_training_mean_site", "upload_aggregate_store", "aggregation", "evaluation"}) {
    sink.Emit("demo_round", std::string(phase) + "_median", Median(phases[phase]), "s");
  }
  sink.Emit("demo_round", "rounds", static_cast<double>(info.rounds.size()), "rounds");
  sink.Emit("demo_round", "training_rows_per_round", Median(samples), "rows");
  sink.Emit("demo_round", "site_observation_interval_median", Median(cycle_ms) / 1e3, "s");
}

// ---- Main ---------------------------------------------------------------------------------

struct Config {
  std::string out;
  int rounds = 10;
  std::string only;
};

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
    } else if (arg == "--rounds") {
      c.rounds = std::atoi(value().c_str());
    } else if (arg == "--only") {
      c.only = value();
    } else {
      Die("unknown argument " + arg +
          " (usage: fedrx_framework_bench [--out FILE] [--rounds N] [--only synthetic|demo])");
    }
  }
  if (c.rounds < 2) Die("--rounds >= 2");
  if (!c.only.empty() && c.only != "synthetic" && c.only != "demo") {
    Die("--only takes synthetic or demo");
  }
  return c;
}

int Main(int argc, char** argv) {
  const Config config = ParseArgs(argc, argv);
  signal(SIGPIPE, SIG_IGN);
  alarm(900);  // a few minutes normally; never hang a CI job
  JsonLines sink(config.out);
  if (config.only != "demo") {
    const std::vector<Scenario> scenarios = {
        {1'000'000, 3, 0.09}, {10'000'000, 3, 1.2}, {1'000'000, 10, std::nullopt}};
    for (const Scenario& sc : scenarios) RunSynthetic(sc, config.rounds, sink);
  }
  if (config.only != "synthetic") RunDemo(sink);
  return 0;
}

}  // namespace
}  // namespace fedrx::bench

int main(int argc, char** argv) { return fedrx::bench::Main(argc, argv); }
