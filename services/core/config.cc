#include "services/core/config.h"

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <limits>
#include <string>
#include <utility>

extern char** environ;

namespace fedrx::core {
namespace {

constexpr std::string_view kEnvPrefix = "FEDRX_";
// A config file is a handful of settings; anything larger is a mistake (or
// the wrong file), and reading it whole would be unbounded.
constexpr std::size_t kMaxFileBytes = 1 << 20;
// How much of a bad line an error message quotes.
constexpr std::size_t kMaxQuotedChars = 80;

std::string_view Trim(std::string_view s) {
  const char* kSpace = " \t\r\n\f\v";
  const auto begin = s.find_first_not_of(kSpace);
  if (begin == std::string_view::npos) return {};
  const auto end = s.find_last_not_of(kSpace);
  return s.substr(begin, end - begin + 1);
}

bool IsKeyChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.';
}

std::string Quote(std::string_view s) {
  std::string out = "\"";
  if (s.size() > kMaxQuotedChars) {
    out.append(s.substr(0, kMaxQuotedChars));
    out += "...";
  } else {
    out.append(s);
  }
  out += '"';
  return out;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// Parses a whole non-negative decimal number; false on anything else or overflow.
bool ParseUnsigned(std::string_view s, std::uint64_t& out) {
  if (s.empty()) return false;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && ptr == s.data() + s.size();
}

// Splits "250ms" into "250" and "ms" (whitespace between them is allowed).
std::pair<std::string_view, std::string_view> SplitNumberUnit(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
  return {s.substr(0, i), Trim(s.substr(i))};
}

}  // namespace

Environment ProcessEnvironment() {
  Environment env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view entry(*e);
    if (entry.substr(0, kEnvPrefix.size()) != kEnvPrefix) continue;
    const auto eq = entry.find('=');
    if (eq == std::string_view::npos) continue;
    env.emplace(std::string(entry.substr(0, eq)), std::string(entry.substr(eq + 1)));
  }
  return env;
}

std::string Config::EnvName(std::string_view key) {
  std::string name(kEnvPrefix);
  for (char c : key) {
    if (c == '.') {
      name += '_';
    } else if (c >= 'a' && c <= 'z') {
      name += static_cast<char>(c - 'a' + 'A');
    } else {
      name += c;
    }
  }
  return name;
}

Result<Config> Config::Load(const std::string& path, const Environment& env) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return InvalidArgument("cannot read config file " + path + ": " + std::strerror(errno), path);
  }
  std::string text;
  char buf[4096];
  while (in.read(buf, sizeof(buf)) || in.gcount() > 0) {
    text.append(buf, static_cast<std::size_t>(in.gcount()));
    if (text.size() > kMaxFileBytes) {
      return InvalidArgument(
          "config file " + path + " is larger than " + std::to_string(kMaxFileBytes) + " bytes",
          path);
    }
  }
  if (in.bad()) {
    return InvalidArgument("cannot read config file " + path + ": " + std::strerror(errno), path);
  }
  return Parse(text, path, env);
}

Result<Config> Config::Parse(std::string_view text, std::string_view source,
                             const Environment& env) {
  Config config;
  std::size_t line_no = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    const std::string_view raw = text.substr(pos, eol - pos);
    pos = eol + 1;
    ++line_no;

    const std::string where = std::string(source) + ":" + std::to_string(line_no);
    const std::string_view line = Trim(raw);
    // Only whole-line comments: a '#' inside a value is part of the value.
    if (line.empty() || line.front() == '#') continue;

    const auto eq = line.find('=');
    if (eq == std::string_view::npos) {
      return InvalidArgument(where + ": expected `key = value`, got " + Quote(line));
    }
    const std::string_view key = Trim(line.substr(0, eq));
    const std::string_view value = Trim(line.substr(eq + 1));
    if (key.empty()) {
      return InvalidArgument(where + ": missing key before '='");
    }
    for (char c : key) {
      if (!IsKeyChar(c)) {
        return InvalidArgument(where + ": key " + Quote(key) +
                               " may only contain a-z, 0-9, '_' and '.'");
      }
    }
    auto [it, inserted] =
        config.entries_.try_emplace(std::string(key), Entry{std::string(value), where});
    if (!inserted) {
      return InvalidArgument(where + ": duplicate key " + std::string(key) + " (first set at " +
                             it->second.source + ")");
    }
  }

  // Environment values are stored under their variable name, which cannot
  // clash with a file key (those are lower case). Lookups try the variable
  // first, so the environment wins, and a key set only in the environment
  // (as Kubernetes usually does) is found too.
  for (const auto& [name, value] : env) {
    if (name.size() <= kEnvPrefix.size() || name.compare(0, kEnvPrefix.size(), kEnvPrefix) != 0) {
      continue;
    }
    config.entries_.insert_or_assign(name, Entry{value, "env " + name});
  }
  return config;
}

namespace {

template <typename Map>
auto FindEntry(const Map& entries, std::string_view key) {
  auto it = entries.find(Config::EnvName(key));
  if (it != entries.end()) return it;
  return entries.find(key);
}

}  // namespace

bool Config::Has(std::string_view key) const { return FindEntry(entries_, key) != entries_.end(); }

std::string Config::SourceOf(std::string_view key) const {
  const auto it = FindEntry(entries_, key);
  return it == entries_.end() ? std::string() : it->second.source;
}

Status Config::Bad(std::string_view key, std::string_view what) const {
  const auto it = FindEntry(entries_, key);
  std::string message;
  if (it != entries_.end()) {
    message = it->second.source + ": " + std::string(key) + " = " + Quote(it->second.value) + ": ";
  } else {
    message = std::string(key) + ": ";
  }
  message.append(what);
  return InvalidArgument(std::move(message));
}

Result<std::string> Config::String(std::string_view key) const {
  const auto it = FindEntry(entries_, key);
  if (it == entries_.end()) {
    return NotFound("missing required setting " + std::string(key) +
                    ": set it in the config file or in env " + EnvName(key));
  }
  return it->second.value;
}

std::string Config::StringOr(std::string_view key, std::string_view fallback) const {
  const auto it = FindEntry(entries_, key);
  return it == entries_.end() ? std::string(fallback) : it->second.value;
}

Result<std::int64_t> Config::Int(std::string_view key, std::int64_t min, std::int64_t max) const {
  FEDRX_ASSIGN_OR_RETURN(const std::string text, String(key));
  const std::string expected =
      "expected an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "]";
  std::int64_t value = 0;
  const char* begin = text.data();
  const char* end = text.data() + text.size();
  // from_chars refuses a leading '+', which people do write.
  if (begin != end && *begin == '+') ++begin;
  const auto [ptr, ec] = std::from_chars(begin, end, value);
  if (text.empty() || ec != std::errc() || ptr != end) return Bad(key, expected);
  if (value < min || value > max) return Bad(key, expected);
  return value;
}

Result<std::int64_t> Config::IntOr(std::string_view key, std::int64_t fallback, std::int64_t min,
                                   std::int64_t max) const {
  if (!Has(key)) return fallback;
  return Int(key, min, max);
}

Result<bool> Config::BoolOr(std::string_view key, bool fallback) const {
  const auto it = FindEntry(entries_, key);
  if (it == entries_.end()) return fallback;
  const std::string v = Lower(it->second.value);
  if (v == "true" || v == "1" || v == "yes") return true;
  if (v == "false" || v == "0" || v == "no") return false;
  return Bad(key, "expected true, false, 1, 0, yes or no");
}

Result<std::chrono::milliseconds> Config::DurationOr(std::string_view key,
                                                     std::chrono::milliseconds fallback) const {
  const auto it = FindEntry(entries_, key);
  if (it == entries_.end()) return fallback;
  constexpr std::string_view kExpected =
      "expected a duration like 250ms, 5s, 2m or 1h (a bare number is milliseconds)";
  const auto [digits, unit] = SplitNumberUnit(it->second.value);
  std::uint64_t n = 0;
  if (!ParseUnsigned(digits, n)) return Bad(key, kExpected);
  std::uint64_t scale = 0;
  if (unit.empty() || unit == "ms") {
    scale = 1;
  } else if (unit == "s") {
    scale = 1000;
  } else if (unit == "m") {
    scale = 60'000;
  } else if (unit == "h") {
    scale = 3'600'000;
  } else {
    return Bad(key, kExpected);
  }
  constexpr auto kMax =
      static_cast<std::uint64_t>(std::numeric_limits<std::chrono::milliseconds::rep>::max());
  if (n > kMax / scale) return Bad(key, "duration is too large");
  return std::chrono::milliseconds(static_cast<std::chrono::milliseconds::rep>(n * scale));
}

Result<std::uint64_t> Config::BytesOr(std::string_view key, std::uint64_t fallback) const {
  const auto it = FindEntry(entries_, key);
  if (it == entries_.end()) return fallback;
  constexpr std::string_view kExpected =
      "expected a size like 65536, 64KiB, 40MiB or 2GiB (a bare number is bytes)";
  const auto [digits, unit] = SplitNumberUnit(it->second.value);
  std::uint64_t n = 0;
  if (!ParseUnsigned(digits, n)) return Bad(key, kExpected);
  std::uint64_t scale = 0;
  if (unit.empty() || unit == "B") {
    scale = 1;
  } else if (unit == "KiB") {
    scale = std::uint64_t{1} << 10;
  } else if (unit == "MiB") {
    scale = std::uint64_t{1} << 20;
  } else if (unit == "GiB") {
    scale = std::uint64_t{1} << 30;
  } else if (unit == "TiB") {
    scale = std::uint64_t{1} << 40;
  } else {
    return Bad(key, kExpected);
  }
  if (n > std::numeric_limits<std::uint64_t>::max() / scale) return Bad(key, "size is too large");
  return n * scale;
}

}  // namespace fedrx::core
