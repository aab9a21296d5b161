// Tolerant reads of report inputs (run records, step outputs): a field of
// the wrong type or absent reads as absent, never throws. Pure; thread-safe.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace fedrx::report {

// The field `key` of `j`, or nullptr when `j` is not an object or lacks it.
inline const nlohmann::json* Field(const nlohmann::json& j, std::string_view key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(std::string(key));
  return it == j.end() ? nullptr : &*it;
}

// A string field; numbers and booleans as text; else `fallback`.
std::string Str(const nlohmann::json& j, std::string_view key, std::string_view fallback = "");
// A JSON value as one line of text (strings unquoted), at most `max_chars`.
std::string Text(const nlohmann::json& v, std::size_t max_chars = 240);
// A number field; NaN when absent or not a number.
double Dbl(const nlohmann::json& j, std::string_view key);
bool Bool(const nlohmann::json& j, std::string_view key, bool fallback = false);
std::int64_t Int(const nlohmann::json& j, std::string_view key, std::int64_t fallback = 0);
// An array field, or an empty array.
const nlohmann::json& Arr(const nlohmann::json& j, std::string_view key);
// An object field, or an empty object.
const nlohmann::json& Obj(const nlohmann::json& j, std::string_view key);
// Unix ms as "2026-11-26 19:01:02 UTC" ("-" for 0 or negative).
std::string FormatUtc(std::int64_t ms);
// One line: newlines and tabs become spaces, cut at `max_chars` bytes (on a
// UTF-8 boundary).
std::string OneLine(std::string_view text, std::size_t max_chars = 300);

}  // namespace fedrx::report
