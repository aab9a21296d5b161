// Config: `key = value` settings from a file, overridden by environment
// variables (key `bus.endpoint` <- FEDRX_BUS_ENDPOINT). Every getter says
// which key, from where, and what was wrong. Immutable after Load; thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "services/core/status.h"

namespace fedrx::core {

using Environment = std::map<std::string, std::string>;

// The FEDRX_* variables of this process.
Environment ProcessEnvironment();

class Config {
 public:
  // Reads `path` (missing or unreadable: error), then applies `env`.
  static Result<Config> Load(const std::string& path, const Environment& env);
  // Parses `text`; `source` names it in errors (a file path, "<defaults>").
  static Result<Config> Parse(std::string_view text, std::string_view source,
                              const Environment& env);

  bool Has(std::string_view key) const;
  Result<std::string> String(std::string_view key) const;
  std::string StringOr(std::string_view key, std::string_view fallback) const;
  // Integers within [min, max].
  Result<std::int64_t> Int(std::string_view key, std::int64_t min, std::int64_t max) const;
  Result<std::int64_t> IntOr(std::string_view key, std::int64_t fallback, std::int64_t min,
                             std::int64_t max) const;
  // "true"/"false"/"1"/"0"/"yes"/"no".
  Result<bool> BoolOr(std::string_view key, bool fallback) const;
  // "250ms", "5s", "2m", "1h"; a bare number is milliseconds.
  Result<std::chrono::milliseconds> DurationOr(std::string_view key,
                                               std::chrono::milliseconds fallback) const;
  // "64KiB", "40MiB", "2GiB" or a bare number of bytes.
  Result<std::uint64_t> BytesOr(std::string_view key, std::uint64_t fallback) const;

  // Where a key's value came from: "coordinator.conf:12" or "env FEDRX_BUS_ENDPOINT".
  std::string SourceOf(std::string_view key) const;

  // The environment variable that overrides `key`.
  static std::string EnvName(std::string_view key);

 private:
  struct Entry {
    std::string value;
    std::string source;
  };
  Status Bad(std::string_view key, std::string_view what) const;

  std::map<std::string, Entry, std::less<>> entries_;
};

}  // namespace fedrx::core
