#include "services/report/json_view.h"

#include <ctime>

#include "services/report/html.h"

namespace fedrx::report {

std::string Str(const nlohmann::json& j, std::string_view key, std::string_view fallback) {
  const nlohmann::json* v = Field(j, key);
  if (v == nullptr) return std::string(fallback);
  if (v->is_string()) return v->get<std::string>();
  if (v->is_number() || v->is_boolean()) return Text(*v);
  return std::string(fallback);
}

std::string Text(const nlohmann::json& v, std::size_t max_chars) {
  std::string s;
  if (v.is_string()) {
    s = v.get<std::string>();
  } else if (v.is_number_float()) {
    s = Num(v.get<double>(), 4);
  } else {
    s = v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  return OneLine(s, max_chars);
}

double Dbl(const nlohmann::json& j, std::string_view key) {
  const nlohmann::json* v = Field(j, key);
  if (v == nullptr || !v->is_number()) return std::numeric_limits<double>::quiet_NaN();
  return v->get<double>();
}

bool Bool(const nlohmann::json& j, std::string_view key, bool fallback) {
  const nlohmann::json* v = Field(j, key);
  if (v == nullptr || !v->is_boolean()) return fallback;
  return v->get<bool>();
}

std::int64_t Int(const nlohmann::json& j, std::string_view key, std::int64_t fallback) {
  const nlohmann::json* v = Field(j, key);
  if (v == nullptr || !v->is_number()) return fallback;
  if (v->is_number_integer()) return v->get<std::int64_t>();
  const double d = v->get<double>();
  if (!std::isfinite(d) || std::fabs(d) > 9e18) return fallback;
  return static_cast<std::int64_t>(d);
}

const nlohmann::json& Arr(const nlohmann::json& j, std::string_view key) {
  static const nlohmann::json kEmpty = nlohmann::json::array();
  const nlohmann::json* v = Field(j, key);
  return v != nullptr && v->is_array() ? *v : kEmpty;
}

const nlohmann::json& Obj(const nlohmann::json& j, std::string_view key) {
  static const nlohmann::json kEmpty = nlohmann::json::object();
  const nlohmann::json* v = Field(j, key);
  return v != nullptr && v->is_object() ? *v : kEmpty;
}

std::string FormatUtc(std::int64_t ms) {
  if (ms <= 0) return "-";
  const std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  if (gmtime_r(&t, &tm) == nullptr) return "-";
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

std::string OneLine(std::string_view text, std::size_t max_chars) {
  std::string s;
  s.reserve(std::min(text.size(), max_chars));
  for (char c : text) s += (c == '\n' || c == '\r' || c == '\t') ? ' ' : c;
  if (s.size() > max_chars) {
    std::size_t cut = max_chars;
    while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
    s.resize(cut);
    s += "\xE2\x80\xA6";
  }
  return s;
}

}  // namespace fedrx::report
