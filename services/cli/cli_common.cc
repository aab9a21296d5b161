#include "services/cli/cli_common.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace fedrx::cli {

core::Result<Options> Parse(const std::vector<std::string>& args) {
  Options o;
  const char* env = std::getenv("FEDRX_COORDINATOR");
  o.endpoint = env != nullptr ? env : "tcp://127.0.0.1:5570";
  bool coordinator_given = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.rfind("--", 0) == 0) {
      if (i + 1 >= args.size()) return core::InvalidArgument(a + " needs a value", a);
      const std::string& v = args[++i];
      if (v.empty() && (a == "--gateway" || a == "--key-file" || a == "--server-key-file")) {
        return core::InvalidArgument(a + " is empty", a);
      }
      if (a == "--coordinator") {
        o.endpoint = v;
        coordinator_given = true;
      } else if (a == "--gateway") {
        o.endpoint = v;
        o.via_gateway = true;
      } else if (a == "--key-file") {
        o.key_file = v;
      } else if (a == "--server-key-file") {
        o.server_key_file = v;
      } else if (a == "--timeout") {
        int ms = 0;
        auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), ms);
        if (ec != std::errc() || p != v.data() + v.size() || ms <= 0) {
          return core::InvalidArgument("'" + v + "' is not a positive number of milliseconds",
                                       "--timeout");
        }
        o.timeout = std::chrono::milliseconds(ms);
        o.timeout_given = true;
      } else {
        o.flags[a.substr(2)] = v;
      }
    } else {
      o.command.push_back(a);
    }
  }
  if (o.via_gateway) {
    if (coordinator_given) {
      return core::InvalidArgument("give --gateway or --coordinator, not both", "--gateway");
    }
    if (o.key_file.empty()) {
      return core::InvalidArgument(
          "--gateway needs --key-file (your institution's key pair, from its enrolment)",
          "--key-file");
    }
    if (o.server_key_file.empty()) {
      return core::InvalidArgument("--gateway needs --server-key-file (the gateway's public key)",
                                   "--server-key-file");
    }
  } else if (!o.key_file.empty() || !o.server_key_file.empty()) {
    return core::InvalidArgument(
        "--key-file and --server-key-file are for connections through --gateway",
        o.key_file.empty() ? "--server-key-file" : "--key-file");
  }
  return o;
}

std::string Peer(const Options& o) { return o.via_gateway ? "the gateway" : "the coordinator"; }

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

core::Result<codec::Message> Ask(core::Bus& bus, const Options& o, codec::Body body) {
  if (!o.channel) {
    FEDRX_ASSIGN_OR_RETURN(o.channel, bus.Connect(o.endpoint, [](codec::Message&&) {}));
  }
  auto reply = core::Call(bus, *o.channel, core::MakeMessage(std::move(body)), o.timeout);
  if (!reply.ok() && reply.status().code() == core::StatusCode::kDeadlineExceeded) {
    // A refused CURVE handshake looks like silence from the client's side.
    return core::DeadlineExceeded(
        "no answer from " + Peer(o) + " within " + std::to_string(o.timeout.count()) + " ms" +
            (o.via_gateway ? " (is the key pair in " + o.key_file + " enrolled and active, and " +
                                 o.server_key_file + " the gateway's public key?)"
                           : ""),
        o.endpoint);
  }
  return reply;
}

namespace {

core::Result<double> ParseNumber(const std::string& text, const std::string& flag) {
  double v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || p != text.data() + text.size() || !std::isfinite(v)) {
    return core::InvalidArgument("'" + text + "' is not a number", "--" + flag);
  }
  return v;
}

}  // namespace

core::Result<double> NumberOr(const Options& o, const std::string& flag, double fallback) {
  auto it = o.flags.find(flag);
  if (it == o.flags.end()) return fallback;
  return ParseNumber(it->second, flag);
}

core::Result<std::int64_t> IntegerOr(const Options& o, const std::string& flag,
                                     std::int64_t fallback, std::int64_t min, std::int64_t max) {
  auto it = o.flags.find(flag);
  if (it == o.flags.end()) return fallback;
  const std::string& v = it->second;
  std::int64_t n = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || p != v.data() + v.size()) {
    return core::InvalidArgument("'" + v + "' is not a whole number", "--" + flag);
  }
  if (n < min || n > max) {
    return core::InvalidArgument(
        v + " is outside [" + std::to_string(min) + ", " + std::to_string(max) + "]", "--" + flag);
  }
  return n;
}

core::Result<std::vector<double>> NumbersOr(const Options& o, const std::string& flag) {
  std::vector<double> out;
  auto it = o.flags.find(flag);
  if (it == o.flags.end()) return out;
  for (const std::string& item : SplitComma(it->second)) {
    FEDRX_ASSIGN_OR_RETURN(double v, ParseNumber(item, flag));
    out.push_back(v);
  }
  return out;
}

std::string TextOr(const Options& o, const std::string& flag, const std::string& fallback) {
  auto it = o.flags.find(flag);
  return it == o.flags.end() ? fallback : it->second;
}

core::Status WriteJsonIfAsked(const Options& o, const nlohmann::json& answer) {
  auto it = o.flags.find("json");
  if (it == o.flags.end()) return core::Status::Ok();
  std::ofstream f(it->second, std::ios::trunc);
  f << answer.dump(2) << "\n";
  f.close();
  if (!f) return core::Unavailable("cannot write the answer", it->second);
  return core::Status::Ok();
}

}  // namespace fedrx::cli
