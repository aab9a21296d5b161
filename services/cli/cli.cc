#include "services/cli/cli.h"

#include <charconv>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <iomanip>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>

#include "services/core/clock.h"
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
