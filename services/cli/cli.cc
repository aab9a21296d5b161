#include "services/cli/cli.h"

#include <charconv>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <thread>
#include <iomanip>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>

#include "services/core/clock.h"
#include "services/core/config.h"
#include "services/ml/study_spec.h"
#include "services/core/metrics.h"
#include "services/core/zmq_bus.h"

namespace fedrx::cli {
namespace {

constexpr char kUsage[] =
    "usage: fedrx [--coordinator ENDPOINT] [--timeout MS] COMMAND\n"
    "commands:\n"
    "  health                          coordinator health and readiness\n"
    "  sites list                      every registered site\n"
    "  sites register --site ID --institution NAME [--samples N] [--tasks A,B,...]\n"
    "                 [--schema-hash H]\n"
    "  study create FILE               create a study from a `key = value` file\n"
    "  study show ID                   a study's state and its rounds\n"
    "  study watch ID [--interval MS]  follow a study's rounds until it ends\n"
    "  study model ID [--version N] --out FILE   fetch a model version (raw float32;\n"
    "                                  the latest without --version, 0 is the initial model)\n"
    "ENDPOINT defaults to $FEDRX_COORDINATOR or tcp://127.0.0.1:5570.";

struct Options {
  std::string endpoint;
  std::chrono::milliseconds timeout{5000};
  std::vector<std::string> command;
  std::map<std::string, std::string> flags;
};

core::Result<Options> Parse(const std::vector<std::string>& args) {
  Options o;
  const char* env = std::getenv("FEDRX_COORDINATOR");
  o.endpoint = env != nullptr ? env : "tcp://127.0.0.1:5570";
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.rfind("--", 0) == 0) {
      if (i + 1 >= args.size()) return core::InvalidArgument(a + " needs a value", a);
      const std::string& v = args[++i];
      if (a == "--coordinator") {
        o.endpoint = v;
      } else if (a == "--timeout") {
        int ms = 0;
        auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), ms);
        if (ec != std::errc() || p != v.data() + v.size() || ms <= 0) {
          return core::InvalidArgument("'" + v + "' is not a positive number of milliseconds",
                                       "--timeout");
        }
        o.timeout = std::chrono::milliseconds(ms);
      } else {
        o.flags[a.substr(2)] = v;
      }
    } else {
      o.command.push_back(a);
    }
  }
  return o;
}

core::Result<std::string> Required(const Options& o, const std::string& flag) {
  auto it = o.flags.find(flag);
  if (it == o.flags.end() || it->second.empty()) {
    return core::InvalidArgument("--" + flag + " is required", "--" + flag);
  }
  return it->second;
}

std::vector<std::string> SplitComma(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

std::string Timestamp(std::int64_t ms) {
  if (ms <= 0) return "-";
  const std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

core::Result<codec::Message> Ask(core::Bus& bus, const Options& o, codec::Body body) {
  FEDRX_ASSIGN_OR_RETURN(core::ChannelId ch, bus.Connect(o.endpoint, [](codec::Message&&) {}));
  auto reply = core::Call(bus, ch, core::MakeMessage(std::move(body)), o.timeout);
  if (!reply.ok() && reply.status().code() == core::StatusCode::kDeadlineExceeded) {
    return core::DeadlineExceeded("no answer from the coordinator within " +
                                      std::to_string(o.timeout.count()) + " ms",
                                  o.endpoint);
  }
  return reply;
}

template <typename T>
core::Result<T> Expect(codec::Message&& m) {
  if (auto* v = std::get_if<T>(&m.body)) return std::move(*v);
  return core::Internal(std::string("unexpected reply ") + codec::BodyName(m.body),
                        "envelope.body");
}

core::Status Health(core::Bus& bus, const Options& o, std::ostream& out) {
  FEDRX_ASSIGN_OR_RETURN(codec::Message m, Ask(bus, o, codec::HealthCheck{}));
  FEDRX_ASSIGN_OR_RETURN(codec::HealthStatus h, Expect<codec::HealthStatus>(std::move(m)));
  out << h.service << " " << h.version << ": " << (h.ready ? "ready" : "NOT READY")
      << (h.detail.empty() ? "" : " (" + h.detail + ")") << ", up " << std::fixed
      << std::setprecision(1) << h.uptime_s << " s\n";
  return h.ready ? core::Status::Ok() : core::Unavailable("coordinator is not ready", o.endpoint);
}

core::Status ListSites(core::Bus& bus, const Options& o, std::ostream& out) {
  FEDRX_ASSIGN_OR_RETURN(codec::Message m, Ask(bus, o, codec::ListSites{}));
  FEDRX_ASSIGN_OR_RETURN(codec::SiteList list, Expect<codec::SiteList>(std::move(m)));
  out << std::left << std::setw(20) << "SITE" << std::setw(28) << "INSTITUTION" << std::right
      << std::setw(10) << "SAMPLES" << std::setw(7) << "TASKS" << "  " << std::left
      << std::setw(22) << "REGISTERED" << "LAST SEEN\n";
  for (const auto& s : list.sites) {
    out << std::left << std::setw(20) << s.site_id << std::setw(28) << s.institution << std::right
        << std::setw(10) << s.num_samples << std::setw(7) << s.tasks.size() << "  " << std::left
        << std::setw(22) << Timestamp(s.registered_at_ms) << Timestamp(s.last_seen_ms) << "\n";
  }
  out << list.sites.size() << " site(s)\n";
  return core::Status::Ok();
}

core::Status RegisterSite(core::Bus& bus, const Options& o, std::ostream& out) {
  codec::RegisterSite r;
  FEDRX_ASSIGN_OR_RETURN(r.site_id, Required(o, "site"));
  FEDRX_ASSIGN_OR_RETURN(r.institution, Required(o, "institution"));
  if (auto it = o.flags.find("samples"); it != o.flags.end()) {
    const auto& v = it->second;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), r.num_samples);
    if (ec != std::errc() || p != v.data() + v.size()) {
      return core::InvalidArgument("'" + v + "' is not a whole number", "--samples");
    }
  }
  if (auto it = o.flags.find("tasks"); it != o.flags.end()) r.tasks = SplitComma(it->second);
  if (auto it = o.flags.find("schema-hash"); it != o.flags.end()) r.schema_hash = it->second;
  FEDRX_ASSIGN_OR_RETURN(codec::Message m, Ask(bus, o, std::move(r)));
  FEDRX_ASSIGN_OR_RETURN(codec::SiteRegistered done, Expect<codec::SiteRegistered>(std::move(m)));
  out << "site " << done.site_id << (done.first_registration ? " registered" : " refreshed")
      << " (first registered " << Timestamp(done.registered_at_ms) << ")\n";
  return core::Status::Ok();
}

const char* StateName(codec::StudyState s) {
  switch (s) {
    case codec::StudyState::kCreated: return "created";
    case codec::StudyState::kRunning: return "running";
    case codec::StudyState::kCompleted: return "completed";
    case codec::StudyState::kFailed: return "failed";
  }
  return "?";
}

const char* RoundStateName(codec::RoundState s) {
  switch (s) {
    case codec::RoundState::kPending: return "pending";
    case codec::RoundState::kTraining: return "training";
    case codec::RoundState::kAggregating: return "aggregating";
    case codec::RoundState::kEvaluating: return "evaluating";
    case codec::RoundState::kClosed: return "closed";
    case codec::RoundState::kFailed: return "failed";
  }
  return "?";
}

double MetricOr(const std::vector<codec::Metric>& metrics, const std::string& name, double fallback) {
  for (const auto& m : metrics) {
    if (m.name == name) return m.value;
  }
  return fallback;
}

void PrintRound(const codec::RoundSummary& r, std::uint32_t total, std::ostream& out) {
  out << "round " << std::right << std::setw(3) << r.round << "/" << std::left << std::setw(4)
      << total << std::setw(11) << RoundStateName(r.state) << std::right << std::setw(2)
      << r.updates_received << "/" << std::left << std::setw(3) << r.sites_selected << "sites "
      << std::right << std::setw(7) << r.samples << " samples";
  const double auc = MetricOr(r.metrics, "valid_mean_roc_auc", -1);
  if (auc >= 0) {
    out << "   valid ROC-AUC " << std::fixed << std::setprecision(4) << auc << "  PR-AUC "
        << MetricOr(r.metrics, "valid_mean_pr_auc", 0);
  }
  if (r.closed_at_ms > r.started_at_ms) {
    out << "   " << std::fixed << std::setprecision(1)
        << static_cast<double>(r.closed_at_ms - r.started_at_ms) / 1000.0 << " s";
  }
  out << "\n";
}

core::Result<codec::StudyInfo> FetchStudy(core::Bus& bus, const Options& o, const std::string& id) {
  FEDRX_ASSIGN_OR_RETURN(codec::Message m, Ask(bus, o, codec::GetStudy{id}));
  return Expect<codec::StudyInfo>(std::move(m));
}

core::Result<std::string> Argument(const Options& o, std::size_t index, const char* what) {
  if (o.command.size() <= index) return core::InvalidArgument(std::string(what) + " is missing", what);
  return o.command[index];
}

core::Status CreateStudy(core::Bus& bus, const Options& o, std::ostream& out) {
  FEDRX_ASSIGN_OR_RETURN(std::string path, Argument(o, 2, "FILE"));
  FEDRX_ASSIGN_OR_RETURN(core::Config config, core::Config::Load(path, core::ProcessEnvironment()));
  FEDRX_ASSIGN_OR_RETURN(codec::StudySpec spec, ml::StudySpecFromConfig(config));
  FEDRX_ASSIGN_OR_RETURN(codec::Message m, Ask(bus, o, codec::CreateStudy{spec}));
  FEDRX_ASSIGN_OR_RETURN(codec::StudyCreated done, Expect<codec::StudyCreated>(std::move(m)));
  out << "study " << done.study_id << " created: " << spec.tasks.size() << " tasks, "
      << spec.rounds << " rounds, at least " << spec.min_sites << " site(s) per round\n";
  return core::Status::Ok();
}

core::Status ShowStudy(core::Bus& bus, const Options& o, std::ostream& out) {
  FEDRX_ASSIGN_OR_RETURN(std::string id, Argument(o, 2, "ID"));
  FEDRX_ASSIGN_OR_RETURN(codec::StudyInfo info, FetchStudy(bus, o, id));
  out << "study " << id << ": " << StateName(info.state) << ", round " << info.current_round << "/"
      << info.study.rounds << ", model version " << info.model_version << "\n";
  for (const auto& r : info.rounds) PrintRound(r, info.study.rounds, out);
  return core::Status::Ok();
}

core::Status WatchStudy(core::Bus& bus, const Options& o, std::ostream& out) {
  FEDRX_ASSIGN_OR_RETURN(std::string id, Argument(o, 2, "ID"));
  int interval_ms = 1000;
  if (auto it = o.flags.find("interval"); it != o.flags.end()) interval_ms = std::atoi(it->second.c_str());
  if (interval_ms <= 0) return core::InvalidArgument("interval must be positive", "--interval");
  std::uint32_t printed = 0;
  while (true) {
    FEDRX_ASSIGN_OR_RETURN(codec::StudyInfo info, FetchStudy(bus, o, id));
    for (const auto& r : info.rounds) {
      const bool over = r.state == codec::RoundState::kClosed || r.state == codec::RoundState::kFailed;
      if (over && r.round > printed) {
        PrintRound(r, info.study.rounds, out);
        out.flush();
        printed = r.round;
      }
    }
    if (info.state == codec::StudyState::kCompleted || info.state == codec::StudyState::kFailed) {
      out << "study " << id << " " << StateName(info.state) << " at model version "
          << info.model_version << (info.detail.empty() ? "" : ": " + info.detail) << "\n";
      return info.state == codec::StudyState::kCompleted
                 ? core::Status::Ok()
                 : core::FailedPrecondition("study failed: " + info.detail, id);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(interval_ms));
  }
}

core::Status FetchModel(core::Bus& bus, const Options& o, std::ostream& out) {
  FEDRX_ASSIGN_OR_RETURN(std::string id, Argument(o, 2, "ID"));
  FEDRX_ASSIGN_OR_RETURN(std::string path, Required(o, "out"));
  codec::GetModel request{id, 0, /*latest=*/true};
  if (auto it = o.flags.find("version"); it != o.flags.end()) {
    char* end = nullptr;
    const unsigned long v = std::strtoul(it->second.c_str(), &end, 10);
    if (it->second.empty() || *end != '\0' || v > 0xffffffffUL) {
      return core::InvalidArgument("'" + it->second + "' is not a model version", "--version");
    }
    request.version = static_cast<std::uint32_t>(v);
    request.latest = false;
  }
  FEDRX_ASSIGN_OR_RETURN(codec::Message m, Ask(bus, o, std::move(request)));
  if (m.tensors.size() != 1) return core::Internal("model reply without weights", "tensors");
  const codec::Blob& w = m.tensors[0].data;
  FEDRX_ASSIGN_OR_RETURN(codec::ModelVersion mv, Expect<codec::ModelVersion>(std::move(m)));
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file.write(reinterpret_cast<const char*>(w.data()), static_cast<std::streamsize>(w.size()));
  if (!file) return core::Unavailable("cannot write the model", path);
  out << "study " << id << " model version " << mv.version << " (round " << mv.round << "): "
      << w.size() / sizeof(float) << " float32 parameters written to " << path << "\n";
  return core::Status::Ok();
}

}  // namespace

int RunCommand(const std::vector<std::string>& args, core::Bus& bus, std::ostream& out,
               std::ostream& err) {
  auto parsed = Parse(args);
  if (!parsed.ok()) {
    err << "fedrx: " << parsed.status() << "\n" << kUsage << "\n";
    return 2;
  }
  const Options& o = *parsed;
  const auto& c = o.command;
  core::Status s;
  if (c == std::vector<std::string>{"health"}) {
    s = Health(bus, o, out);
  } else if (c == std::vector<std::string>{"sites", "list"}) {
    s = ListSites(bus, o, out);
  } else if (c == std::vector<std::string>{"sites", "register"}) {
    s = RegisterSite(bus, o, out);
  } else if (c.size() >= 2 && c[0] == "study" && c[1] == "create") {
    s = CreateStudy(bus, o, out);
  } else if (c.size() >= 2 && c[0] == "study" && c[1] == "show") {
    s = ShowStudy(bus, o, out);
  } else if (c.size() >= 2 && c[0] == "study" && c[1] == "watch") {
    s = WatchStudy(bus, o, out);
  } else if (c.size() >= 2 && c[0] == "study" && c[1] == "model") {
    s = FetchModel(bus, o, out);
  } else {
    err << kUsage << "\n";
    return 2;
  }
  if (!s.ok()) {
    err << "fedrx: " << s << "\n";
    return 1;
  }
  return 0;
}

int Main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  core::SystemClock clock;
  core::Metrics metrics("cli");
  core::BusOptions options;
  options.name = "fedrx-cli";
  core::ZmqBus bus(options, metrics, clock);
  return RunCommand(args, bus, std::cout, std::cerr);
}

}  // namespace fedrx::cli
