// What the `fedrx` commands share: the parsed command line and asking a
// question over the bus (the coordinator, or the gateway as an enrolled
// institution). Single-threaded.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

#include "services/core/bus.h"
#include "services/core/status.h"

namespace fedrx::cli {

struct Options {
  std::string endpoint;
  // True with --gateway: endpoint is the gateway's, reached over CurveZMQ.
  bool via_gateway = false;
  std::string key_file;         // --key-file: the caller's key pair
  std::string server_key_file;  // --server-key-file: the gateway's public key
  std::chrono::milliseconds timeout{5000};
  bool timeout_given = false;  // --timeout was on the command line
  std::vector<std::string> command;
  std::map<std::string, std::string> flags;
  // The connection, made by the first request and reused by later ones (`study
  // watch` asks every interval; through the gateway each new connection would
  // be another CURVE handshake and registry lookup).
  mutable std::optional<core::ChannelId> channel;
};

// Parses the command line (args exclude the program name): the connection
// flags, then the command words and `--flag value` pairs.
core::Result<Options> Parse(const std::vector<std::string>& args);

// Who answers a command sent over the bus, for messages.
std::string Peer(const Options& o);

// The value of --flag; an error naming it when absent or empty.
core::Result<std::string> Required(const Options& o, const std::string& flag);

// The non-empty items of a comma-separated list.
std::vector<std::string> SplitComma(const std::string& s);

// The number after --flag, or `fallback` when it is absent; an error naming
// the flag when it is not a finite number.
core::Result<double> NumberOr(const Options& o, const std::string& flag, double fallback);
// A whole number within [min, max] after --flag, or `fallback`.
core::Result<std::int64_t> IntegerOr(const Options& o, const std::string& flag,
                                     std::int64_t fallback, std::int64_t min, std::int64_t max);
// A comma-separated list of finite numbers after --flag (empty when absent).
core::Result<std::vector<double>> NumbersOr(const Options& o, const std::string& flag);
// The text after --flag, or `fallback`.
std::string TextOr(const Options& o, const std::string& flag, const std::string& fallback);

// Writes `answer`, indented, to the file after --json; nothing without the
// flag. kUnavailable naming the file when it cannot be written.
core::Status WriteJsonIfAsked(const Options& o, const nlohmann::json& answer);

// Sends `body` and waits for the answer (an Error answer is its Status).
core::Result<codec::Message> Ask(core::Bus& bus, const Options& o, codec::Body body);

// The answer's body as T, or an error naming the unexpected body.
template <typename T>
core::Result<T> Expect(codec::Message&& m) {
  if (auto* v = std::get_if<T>(&m.body)) return std::move(*v);
  return core::Internal(std::string("unexpected reply ") + codec::BodyName(m.body),
                        "envelope.body");
}

}  // namespace fedrx::cli
