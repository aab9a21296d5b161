#include "services/orchestrator/workflow.h"

#include <sodium.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <utility>

#include "services/orchestrator/expression.h"

namespace fedrx::orchestrator {
namespace {

using nlohmann::json;

constexpr std::size_t kMaxFileBytes = 1 << 20;
constexpr std::size_t kMaxSteps = 256;
constexpr std::chrono::milliseconds kMaxTimeout{3600000};
constexpr int kMaxRetries = 10;

const char* const kTopKeys[] = {"name",  "version", "description", "inputs",
                                "steps", "output",  "report"};
const char* const kInputKeys[] = {"type", "required",  "default",     "min",
                                  "max",  "min_items", "description", "items"};
const char* const kStepKeys[] = {"id",      "service", "call",  "with",
                                 "timeout", "retries", "needs", "when"};
const char* const kOutputKeys[] = {"call", "with"};
const char* const kInputTypes[] = {"string", "number", "integer", "boolean",
                                   "smiles", "array",  "object"};
const char* const kItemTypes[] = {"string", "number", "integer", "boolean", "smiles"};

template <std::size_t N>
bool OneOf(const std::string& value, const char* const (&set)[N]) {
  return std::find(std::begin(set), std::end(set), value) != std::end(set);
}

template <std::size_t N>
std::string Listed(const char* const (&set)[N]) {
  std::string out;
  for (const char* item : set) out += (out.empty() ? "" : ", ") + std::string(item);
  return out;
}

bool IsName(const std::string& s) {
  auto start = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; };
  if (s.empty() || !start(s[0])) return false;
  return std::all_of(s.begin(), s.end(),
                     [&](char c) { return start(c) || (c >= '0' && c <= '9') || c == '-'; });
}

std::string Hex(const unsigned char* data, std::size_t size) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(size * 2);
  for (std::size_t i = 0; i < size; ++i) {
    out += kDigits[data[i] >> 4];
    out += kDigits[data[i] & 0xf];
  }
  return out;
}

std::string Sha256Hex(std::string_view bytes) {
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  return Hex(digest, sizeof digest);
}

// Locates errors in the file being loaded.
class Source {
 public:
  explicit Source(std::string_view file) : file_(file) {}

  static int LineOf(const YAML::Node& node, int fallback) {
    const YAML::Mark mark = node.Mark();
    return mark.is_null() ? fallback : mark.line + 1;
  }
  std::string At(int line) const { return file_ + ":" + std::to_string(std::max(line, 1)); }
  core::Status Error(int line, const std::string& what) const {
    return core::InvalidArgument(what, At(line));
  }
  core::Status Error(const YAML::Node& node, const std::string& what, int fallback = 1) const {
    return Error(LineOf(node, fallback), what);
  }
  const std::string& file() const { return file_; }

 private:
  std::string file_;
};

// --- YAML scalars by the YAML 1.2 core schema --------------------------------------------------

bool IsIntegerText(const std::string& s) {
  std::size_t i = (!s.empty() && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
  if (i == s.size()) return false;
  for (; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
  }
  return true;
}

bool IsFloatText(const std::string& s) {
  std::size_t i = (!s.empty() && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
  std::size_t digits = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++digits;
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++digits;
  }
  if (digits == 0) return false;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    const std::size_t exp_start = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    if (i == exp_start) return false;
  }
  return i == s.size();
}

bool IsNonFiniteText(const std::string& s) {
  std::string t = s;
  if (!t.empty() && (t[0] == '-' || t[0] == '+')) t = t.substr(1);
  return t == ".inf" || t == ".Inf" || t == ".INF" || t == ".nan" || t == ".NaN" || t == ".NAN";
}

// Called for every string scalar converted (with its line), e.g. to collect references.
using StringHook = std::function<core::Status(const std::string& text, int line)>;

core::Result<json> ToJson(const YAML::Node& node, const Source& src, int fallback_line,
                          const StringHook* hook) {
  const int line = Source::LineOf(node, fallback_line);
  switch (node.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      return json(nullptr);
    case YAML::NodeType::Sequence: {
      json out = json::array();
      for (const YAML::Node& item : node) {
        FEDRX_ASSIGN_OR_RETURN(json value, ToJson(item, src, line, hook));
        out.push_back(std::move(value));
      }
      return out;
    }
    case YAML::NodeType::Map: {
      json out = json::object();
      for (const auto& kv : node) {
        if (!kv.first.IsScalar()) return src.Error(kv.first, "mapping keys must be scalars", line);
        const std::string key = kv.first.Scalar();
        if (out.contains(key)) return src.Error(kv.first, "duplicate key '" + key + "'", line);
        FEDRX_ASSIGN_OR_RETURN(json value,
                               ToJson(kv.second, src, Source::LineOf(kv.first, line), hook));
        out[key] = std::move(value);
      }
      return out;
    }
    case YAML::NodeType::Scalar:
      break;
  }
  const std::string& text = node.Scalar();
  const std::string& tag = node.Tag();
  const bool quoted = tag == "!" || tag == "tag:yaml.org,2002:str";
  if (!quoted) {
    if (text.empty() || text == "~" || text == "null" || text == "Null" || text == "NULL") {
      return json(nullptr);
    }
    if (text == "true" || text == "True" || text == "TRUE") return json(true);
    if (text == "false" || text == "False" || text == "FALSE") return json(false);
    if (IsIntegerText(text)) {
      errno = 0;
      const long long value = std::strtoll(text.c_str(), nullptr, 10);
      if (errno == ERANGE) return src.Error(line, "integer " + text + " is out of range");
      return json(value);
    }
    if (IsFloatText(text)) {
      const double value = std::strtod(text.c_str(), nullptr);
      if (!std::isfinite(value)) return src.Error(line, "number " + text + " is out of range");
      return json(value);
    }
    if (IsNonFiniteText(text)) return src.Error(line, "non-finite number " + text);
  }
  if (hook != nullptr) FEDRX_RETURN_IF_ERROR((*hook)(text, line));
  return json(text);
}

// --- Workflow structure ----------------------------------------------------------------------

// A reference from a step (or the output) to a step id or an input name, with its line.
struct Ref {
  std::string name;
  int line = 0;
};

struct StepRefs {
  std::vector<Ref> steps;   // explicit needs, with, when
  std::vector<Ref> inputs;  // with, when
};

// Iterates a mapping's keys, refusing duplicates and keys outside `allowed`.
template <std::size_t N, typename Fn>
core::Status ForEachKey(const YAML::Node& map, const Source& src, const char* what,
                        const char* const (&allowed)[N], Fn&& fn) {
  std::set<std::string> seen;
  for (const auto& kv : map) {
    const std::string key = kv.first.IsScalar() ? kv.first.Scalar() : std::string("?");
    if (!kv.first.IsScalar() || !OneOf(key, allowed)) {
      return src.Error(kv.first, "unknown key '" + key + "' in " + what +
                                     " (expected one of: " + Listed(allowed) + ")");
    }
    if (!seen.insert(key).second) return src.Error(kv.first, "duplicate key '" + key + "'");
    FEDRX_RETURN_IF_ERROR(fn(key, kv.first, kv.second));
  }
  return core::Status::Ok();
}

core::Result<std::string> ScalarText(const YAML::Node& node, const Source& src,
                                     const std::string& key, int fallback) {
  if (!node.IsScalar()) return src.Error(node, "'" + key + "' must be a single value", fallback);
  return node.Scalar();
}

core::Result<std::chrono::milliseconds> ParseTimeout(const std::string& text, const Source& src,
                                                     int line) {
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  const std::string unit = text.substr(digits);
  if (digits == 0 || digits > 9 || (unit != "ms" && unit != "s" && unit != "m")) {
    return src.Error(
        line, "timeout '" + text + "' must be a whole number followed by ms, s or m (e.g. 30s)");
  }
  const long long count = std::stoll(text.substr(0, digits));
  const long long factor = unit == "ms" ? 1 : (unit == "s" ? 1000 : 60000);
  const std::chrono::milliseconds timeout(count * factor);
  if (timeout.count() <= 0) return src.Error(line, "timeout '" + text + "' must be > 0");
  if (timeout > kMaxTimeout) return src.Error(line, "timeout '" + text + "' exceeds 1h");
  return timeout;
}

// Checks `value` against `type` (and the spec's min/max for numbers); converts an integral float
// given for an integer to an integer.
core::Status CheckTyped(const std::string& type, const InputSpec& spec, json& value,
                        const std::string& where, const SmilesCheck* smiles_check);

core::Status CheckNumberRange(const InputSpec& spec, const json& value, const std::string& where) {
  const double v = value.get<double>();
  if (spec.min && v < *spec.min) {
    return core::InvalidArgument(value.dump() + " is below the minimum " + json(*spec.min).dump(),
                                 where);
  }
  if (spec.max && v > *spec.max) {
    return core::InvalidArgument(value.dump() + " is above the maximum " + json(*spec.max).dump(),
                                 where);
  }
  return core::Status::Ok();
}

core::Status CheckTyped(const std::string& type, const InputSpec& spec, json& value,
                        const std::string& where, const SmilesCheck* smiles_check) {
  auto wrong = [&](const char* expected) {
    return core::InvalidArgument(std::string("expected ") + expected + ", got " + value.type_name(),
                                 where);
  };
  if (type == "string") {
    if (!value.is_string()) return wrong("a string");
  } else if (type == "smiles") {
    if (!value.is_string()) return wrong("a SMILES string");
    if (value.get_ref<const std::string&>().empty()) {
      return core::InvalidArgument("empty SMILES", where);
    }
    if (smiles_check != nullptr && *smiles_check) {
      FEDRX_RETURN_IF_ERROR((*smiles_check)(value.get_ref<const std::string&>(), where));
    }
  } else if (type == "number") {
    if (!value.is_number()) return wrong("a number");
    if (!std::isfinite(value.get<double>())) {
      return core::InvalidArgument("non-finite number", where);
    }
    FEDRX_RETURN_IF_ERROR(CheckNumberRange(spec, value, where));
  } else if (type == "integer") {
    if (value.is_number_float()) {
      const double v = value.get<double>();
      if (!std::isfinite(v) || std::floor(v) != v || std::fabs(v) > 9007199254740992.0) {
        return core::InvalidArgument("expected an integer, got " + value.dump(), where);
      }
      value = static_cast<std::int64_t>(v);
    }
    if (!value.is_number_integer()) return wrong("an integer");
    FEDRX_RETURN_IF_ERROR(CheckNumberRange(spec, value, where));
  } else if (type == "boolean") {
    if (!value.is_boolean()) return wrong("a boolean");
  } else if (type == "array") {
    if (!value.is_array()) return wrong("an array");
    if (value.size() < spec.min_items) {
      return core::InvalidArgument("has " + std::to_string(value.size()) + " items, at least " +
                                       std::to_string(spec.min_items) + " required",
                                   where);
    }
    if (!spec.items.empty()) {
      for (std::size_t i = 0; i < value.size(); ++i) {
        FEDRX_RETURN_IF_ERROR(CheckTyped(spec.items, spec, value[i],
                                         where + "[" + std::to_string(i) + "]", smiles_check));
      }
    }
  } else if (type == "object") {
    if (!value.is_object()) return wrong("an object");
  } else {
    return core::InvalidArgument("unknown input type '" + type + "'", where);
  }
  return core::Status::Ok();
}

core::Result<InputSpec> ParseInput(const std::string& name, const YAML::Node& key_node,
                                   const YAML::Node& node, const Source& src) {
  InputSpec spec;
  spec.name = name;
  spec.line = Source::LineOf(key_node, 1);
  if (!IsName(name)) {
    return src.Error(spec.line, "input name '" + name +
                                    "' must be letters, digits, '_' or '-' (not starting with a "
                                    "digit or '-')");
  }
  if (!node.IsMap()) {
    return src.Error(node, "input '" + name + "' must be a mapping with at least 'type'",
                     spec.line);
  }
  int type_line = spec.line, default_line = spec.line, items_line = spec.line,
      range_line = spec.line;
  bool has_min_items = false;
  FEDRX_RETURN_IF_ERROR(ForEachKey(
      node, src, ("input '" + name + "'").c_str(), kInputKeys,
      [&](const std::string& key, const YAML::Node& k, const YAML::Node& v) -> core::Status {
        const int line = Source::LineOf(k, spec.line);
        if (key == "default") {
          default_line = line;
          FEDRX_ASSIGN_OR_RETURN(json value, ToJson(v, src, line, nullptr));
          spec.default_value = std::move(value);
          return core::Status::Ok();
        }
        FEDRX_ASSIGN_OR_RETURN(json value, ToJson(v, src, line, nullptr));
        if (key == "type" || key == "items" || key == "description") {
          if (!value.is_string()) return src.Error(line, "'" + key + "' must be a string");
          if (key == "type") {
            spec.type = value.get<std::string>();
            type_line = line;
          } else if (key == "items") {
            spec.items = value.get<std::string>();
            items_line = line;
          } else {
            spec.description = value.get<std::string>();
          }
        } else if (key == "required") {
          if (!value.is_boolean()) return src.Error(line, "'required' must be true or false");
          spec.required = value.get<bool>();
        } else if (key == "min" || key == "max") {
          if (!value.is_number()) return src.Error(line, "'" + key + "' must be a number");
          (key == "min" ? spec.min : spec.max) = value.get<double>();
          range_line = line;
        } else if (key == "min_items") {
          if (!value.is_number_integer() || value.get<long long>() < 0) {
            return src.Error(line, "'min_items' must be a non-negative integer");
          }
          spec.min_items = value.get<std::size_t>();
          has_min_items = true;
        }
        return core::Status::Ok();
      }));
  if (spec.type.empty()) return src.Error(spec.line, "input '" + name + "' has no 'type'");
  if (!OneOf(spec.type, kInputTypes)) {
    return src.Error(type_line, "input '" + name + "' has unknown type '" + spec.type +
                                    "' (expected one of: " + Listed(kInputTypes) + ")");
  }
  if (!spec.items.empty() && (spec.type != "array" || !OneOf(spec.items, kItemTypes))) {
    return src.Error(items_line, spec.type != "array"
                                     ? "'items' applies to array inputs only"
                                     : "unknown items type '" + spec.items +
                                           "' (expected one of: " + Listed(kItemTypes) + ")");
  }
  const std::string numeric = spec.type == "array" ? spec.items : spec.type;
  if ((spec.min || spec.max) && numeric != "number" && numeric != "integer") {
    return src.Error(range_line, "min/max apply to number or integer inputs (input '" + name +
                                     "' is " + spec.type + ")");
  }
  if (spec.min && spec.max && *spec.min > *spec.max) {
    return src.Error(range_line, "input '" + name + "' has min > max");
  }
  if (has_min_items && spec.type != "array") {
    return src.Error(spec.line, "'min_items' applies to array inputs only");
  }
  if (spec.default_value) {
    if (spec.required) {
      return src.Error(default_line, "input '" + name + "' is required and has a default");
    }
    json value = *spec.default_value;
    core::Status st = CheckTyped(spec.type, spec, value, "input." + name, nullptr);
    if (!st.ok()) {
      return src.Error(default_line, "default of input '" + name + "': " + st.message());
    }
    spec.default_value = std::move(value);
  }
  return spec;
}

// Collects references in a `with` block's strings (syntax checked here, with the line).
StringHook ReferenceCollector(const Source& src, StepRefs& refs) {
  return [&src, &refs](const std::string& text, int line) -> core::Status {
    if (text.find("${") == std::string::npos) return core::Status::Ok();
    const json value(text);
    core::Status st = ValidateTemplate(value, "");
    if (!st.ok()) return src.Error(line, st.message());
    for (std::string& id : ReferencedSteps(value)) refs.steps.push_back({std::move(id), line});
    for (std::string& in : ReferencedInputs(value)) refs.inputs.push_back({std::move(in), line});
    return core::Status::Ok();
  };
}

core::Status ParseStep(const YAML::Node& node, const Source& src, StepSpec& step, StepRefs& refs,
                       int& call_line) {
  step.line = Source::LineOf(node, 1);
  if (!node.IsMap()) return src.Error(step.line, "a step must be a mapping with id, service, call");
  int id_line = step.line, when_line = step.line;
  bool has_id = false, has_service = false, has_call = false;
  const StringHook hook = ReferenceCollector(src, refs);
  FEDRX_RETURN_IF_ERROR(ForEachKey(
      node, src, "a step", kStepKeys,
      [&](const std::string& key, const YAML::Node& k, const YAML::Node& v) -> core::Status {
        const int line = Source::LineOf(k, step.line);
        if (key == "with") {
          if (!v.IsMap()) return src.Error(line, "'with' must be a mapping (the request fields)");
          FEDRX_ASSIGN_OR_RETURN(step.with, ToJson(v, src, line, &hook));
          return core::Status::Ok();
        }
        if (key == "needs") {
          if (!v.IsSequence() && !v.IsScalar()) {
            return src.Error(line, "'needs' must be a step id or a list of step ids");
          }
          std::vector<YAML::Node> items;
          if (v.IsScalar()) {
            items.push_back(v);
          } else {
            for (const YAML::Node& item : v) items.push_back(item);
          }
          for (const YAML::Node& item : items) {
            const int item_line = Source::LineOf(item, line);
            if (!item.IsScalar()) return src.Error(item_line, "'needs' lists step ids");
            refs.steps.push_back({item.Scalar(), item_line});
            step.needs.push_back(item.Scalar());
          }
          return core::Status::Ok();
        }
        FEDRX_ASSIGN_OR_RETURN(std::string text, ScalarText(v, src, key, line));
        if (key == "id") {
          step.id = text;
          id_line = line;
          has_id = true;
        } else if (key == "service") {
          step.service = text;
          has_service = true;
        } else if (key == "call") {
          step.call = text;
          call_line = line;
          has_call = true;
        } else if (key == "timeout") {
          FEDRX_ASSIGN_OR_RETURN(step.timeout, ParseTimeout(text, src, line));
        } else if (key == "retries") {
          if (!IsIntegerText(text) || text.size() > 3 || std::stoi(text) < 0 ||
              std::stoi(text) > kMaxRetries) {
            return src.Error(line, "retries '" + text + "' must be an integer from 0 to " +
                                       std::to_string(kMaxRetries));
          }
          step.retries = std::stoi(text);
        } else if (key == "when") {
          step.when = text;
          when_line = line;
        }
        return core::Status::Ok();
      }));
  const std::string label = has_id ? "step '" + step.id + "'" : "step";
  if (!has_id) return src.Error(step.line, "step has no 'id'");
  if (!IsName(step.id)) {
    return src.Error(id_line, "step id '" + step.id +
                                  "' must be letters, digits, '_' or '-' (not starting with a "
                                  "digit or '-')");
  }
  if (!has_service) return src.Error(step.line, label + " has no 'service'");
  if (!has_call) return src.Error(step.line, label + " has no 'call'");
  if (!step.when.empty()) {
    auto condition = Condition::Parse(step.when);
    if (!condition.ok()) {
      return src.Error(when_line,
                       label + ": condition '" + step.when + "': " + condition.status().message());
    }
    for (const std::string& id : condition->ReferencedSteps())
      refs.steps.push_back({id, when_line});
    for (const std::string& in : condition->ReferencedInputs()) {
      refs.inputs.push_back({in, when_line});
    }
  }
  return core::Status::Ok();
}

// Names the first cycle found (in declared order) or OK.
core::Status CheckAcyclic(const std::vector<StepSpec>& steps, const Source& src) {
  std::map<std::string, std::size_t> index;
  for (std::size_t i = 0; i < steps.size(); ++i) index[steps[i].id] = i;
  enum : char { kNew, kOnStack, kDone };
  std::vector<char> state(steps.size(), kNew);
  std::vector<std::size_t> stack;
  std::function<core::Status(std::size_t)> visit = [&](std::size_t i) -> core::Status {
    state[i] = kOnStack;
    stack.push_back(i);
    for (const std::string& need : steps[i].needs) {
      const std::size_t j = index.at(need);
      if (state[j] == kOnStack) {
        auto first = std::find(stack.begin(), stack.end(), j);
        std::string names;
        for (auto it = first; it != stack.end(); ++it) names += steps[*it].id + " -> ";
        names += steps[j].id;
        return src.Error(steps[j].line, "cycle: " + names + " (each step needs the next)");
      }
      if (state[j] == kNew) FEDRX_RETURN_IF_ERROR(visit(j));
    }
    stack.pop_back();
    state[i] = kDone;
    return core::Status::Ok();
  };
  for (std::size_t i = 0; i < steps.size(); ++i) {
    if (state[i] == kNew) FEDRX_RETURN_IF_ERROR(visit(i));
  }
  return core::Status::Ok();
}

core::Status CheckRefs(const std::string& owner, const std::string& self_id, const StepRefs& refs,
                       const std::set<std::string>& step_ids,
                       const std::set<std::string>& input_names, const Source& src) {
  for (const Ref& ref : refs.steps) {
    if (!self_id.empty() && ref.name == self_id) {
      return src.Error(ref.line, owner + " refers to itself");
    }
    if (!step_ids.count(ref.name)) {
      return src.Error(ref.line, owner + " refers to unknown step '" + ref.name + "'");
    }
  }
  for (const Ref& ref : refs.inputs) {
    if (!input_names.count(ref.name)) {
      return src.Error(ref.line, owner + " refers to undeclared input '" + ref.name + "'");
    }
  }
  return core::Status::Ok();
}

core::Result<Workflow> Parse(std::string_view yaml, const Source& src, const CallCatalog& catalog) {
  const YAML::Node root = YAML::Load(std::string(yaml));
  if (!root.IsMap()) {
    return src.Error(root, "a workflow file is a mapping with at least 'name' and 'steps'");
  }
  const int root_line = Source::LineOf(root, 1);
  Workflow wf;
  bool has_name = false, has_steps = false;
  int steps_line = root_line;
  std::vector<StepRefs> step_refs;
  std::vector<int> call_lines;
  StepRefs output_refs;
  int output_line = root_line, output_call_line = root_line;
  std::map<std::string, int> step_lines;

  FEDRX_RETURN_IF_ERROR(ForEachKey(
      root, src, "the workflow", kTopKeys,
      [&](const std::string& key, const YAML::Node& k, const YAML::Node& v) -> core::Status {
        const int line = Source::LineOf(k, root_line);
        if (key == "inputs") {
          if (v.IsNull()) return core::Status::Ok();
          if (!v.IsMap()) return src.Error(line, "'inputs' must be a mapping of name: {type: ...}");
          std::set<std::string> names;
          for (const auto& kv : v) {
            const int input_line = Source::LineOf(kv.first, line);
            if (!kv.first.IsScalar()) return src.Error(input_line, "input names must be scalars");
            const std::string name = kv.first.Scalar();
            if (!names.insert(name).second) {
              return src.Error(input_line, "duplicate input '" + name + "'");
            }
            FEDRX_ASSIGN_OR_RETURN(InputSpec spec, ParseInput(name, kv.first, kv.second, src));
            wf.inputs.push_back(std::move(spec));
          }
          return core::Status::Ok();
        }
        if (key == "steps") {
          has_steps = true;
          steps_line = line;
          if (!v.IsSequence() || v.size() == 0) {
            return src.Error(line, "'steps' must be a non-empty list of steps");
          }
          if (v.size() > kMaxSteps) {
            return src.Error(line, "at most " + std::to_string(kMaxSteps) + " steps");
          }
          for (const YAML::Node& item : v) {
            StepSpec step;
            StepRefs refs;
            int call_line = Source::LineOf(item, line);
            FEDRX_RETURN_IF_ERROR(ParseStep(item, src, step, refs, call_line));
            auto [it, inserted] = step_lines.emplace(step.id, step.line);
            if (!inserted) {
              return src.Error(step.line, "duplicate step id '" + step.id + "' (first at line " +
                                              std::to_string(it->second) + ")");
            }
            wf.steps.push_back(std::move(step));
            step_refs.push_back(std::move(refs));
            call_lines.push_back(call_line);
          }
          return core::Status::Ok();
        }
        if (key == "output") {
          output_line = line;
          if (!v.IsMap()) return src.Error(line, "'output' must be a mapping with 'call'");
          const StringHook hook = ReferenceCollector(src, output_refs);
          bool has_call = false;
          FEDRX_RETURN_IF_ERROR(ForEachKey(
              v, src, "the output", kOutputKeys,
              [&](const std::string& okey, const YAML::Node& ok,
                  const YAML::Node& ov) -> core::Status {
                const int oline = Source::LineOf(ok, line);
                if (okey == "with") {
                  if (!ov.IsMap()) return src.Error(oline, "'with' must be a mapping");
                  FEDRX_ASSIGN_OR_RETURN(wf.output_with, ToJson(ov, src, oline, &hook));
                } else {
                  FEDRX_ASSIGN_OR_RETURN(wf.output_call, ScalarText(ov, src, okey, oline));
                  output_call_line = oline;
                  has_call = true;
                }
                return core::Status::Ok();
              }));
          if (!has_call || wf.output_call.empty()) return src.Error(line, "'output' has no 'call'");
          return core::Status::Ok();
        }
        FEDRX_ASSIGN_OR_RETURN(std::string text, ScalarText(v, src, key, line));
        if (key == "name") {
          if (!IsName(text)) {
            return src.Error(line, "workflow name '" + text +
                                       "' must be letters, digits, '_' or '-' (not starting with "
                                       "a digit or '-')");
          }
          wf.name = text;
          has_name = true;
        } else if (key == "version") {
          wf.version = text;
        } else if (key == "description") {
          wf.description = text;
        } else if (key == "report") {
          if (text != "candidate") {
            return src.Error(line, "unknown report kind '" + text + "' (expected candidate)");
          }
          wf.report = text;
        }
        return core::Status::Ok();
      }));
  if (!has_name) return src.Error(root_line, "the workflow has no 'name'");
  if (!has_steps) return src.Error(root_line, "the workflow has no 'steps'");
  (void)steps_line;

  std::set<std::string> step_ids, input_names;
  for (const StepSpec& step : wf.steps) step_ids.insert(step.id);
  for (const InputSpec& input : wf.inputs) input_names.insert(input.name);

  for (std::size_t i = 0; i < wf.steps.size(); ++i) {
    StepSpec& step = wf.steps[i];
    core::Status served =
        catalog ? catalog(step.service, step.call) : core::InvalidArgument("no call catalog");
    if (!served.ok()) {
      return src.Error(call_lines[i], "step '" + step.id + "': " + served.message());
    }
    FEDRX_RETURN_IF_ERROR(
        CheckRefs("step '" + step.id + "'", step.id, step_refs[i], step_ids, input_names, src));
    std::set<std::string> needs;
    for (const Ref& ref : step_refs[i].steps) needs.insert(ref.name);
    step.needs.assign(needs.begin(), needs.end());
  }
  if (!wf.output_call.empty()) {
    core::Status served =
        catalog ? catalog("local", wf.output_call) : core::InvalidArgument("no call catalog");
    if (!served.ok()) return src.Error(output_call_line, "output: " + served.message());
    FEDRX_RETURN_IF_ERROR(CheckRefs("output", "", output_refs, step_ids, input_names, src));
  }
  (void)output_line;
  FEDRX_RETURN_IF_ERROR(CheckAcyclic(wf.steps, src));
  return wf;
}

core::Status FromYamlException(const YAML::Exception& e, const Source& src) {
  const int line = e.mark.is_null() ? 1 : e.mark.line + 1;
  return src.Error(line, "malformed YAML: " + e.msg);
}

}  // namespace

core::Result<Workflow> ParseWorkflow(std::string_view yaml, std::string_view file_name,
                                     const CallCatalog& catalog) {
  const Source src(file_name);
  try {
    FEDRX_ASSIGN_OR_RETURN(Workflow wf, Parse(yaml, src, catalog));
    wf.file = std::string(file_name);
    wf.sha256 = Sha256Hex(yaml);
    return wf;
  } catch (const YAML::Exception& e) {
    return FromYamlException(e, src);
  }
}

core::Result<nlohmann::json> YamlToJson(std::string_view yaml, std::string_view file_name) {
  const Source src(file_name);
  try {
    const YAML::Node root = YAML::Load(std::string(yaml));
    return ToJson(root, src, 1, nullptr);
  } catch (const YAML::Exception& e) {
    return FromYamlException(e, src);
  }
}

core::Result<Workflow> LoadWorkflowFile(const std::filesystem::path& file,
                                        const CallCatalog& catalog) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return core::NotFound("cannot read workflow file", file.string());
  std::string bytes;
  char buf[8192];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    bytes.append(buf, static_cast<std::size_t>(in.gcount()));
    if (bytes.size() > kMaxFileBytes) {
      return core::InvalidArgument("workflow file larger than 1 MiB", file.string());
    }
  }
  if (in.bad()) return core::NotFound("cannot read workflow file", file.string());
  return ParseWorkflow(bytes, file.filename().string(), catalog);
}

core::Result<std::vector<Workflow>> LoadWorkflowDir(const std::filesystem::path& dir,
                                                    const CallCatalog& catalog) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    return core::NotFound("workflow directory does not exist", dir.string());
  }
  std::vector<std::filesystem::path> files;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().extension() == ".yaml" && it->is_regular_file(ec)) files.push_back(it->path());
  }
  if (ec) return core::NotFound("cannot list workflow directory: " + ec.message(), dir.string());
  std::sort(files.begin(), files.end());
  std::vector<Workflow> out;
  std::map<std::string, std::string> file_of_name;
  for (const auto& file : files) {
    FEDRX_ASSIGN_OR_RETURN(Workflow wf, LoadWorkflowFile(file, catalog));
    auto [it, inserted] = file_of_name.emplace(wf.name, wf.file);
    if (!inserted) {
      return core::InvalidArgument(
          "workflow name '" + wf.name + "' is defined in both " + it->second + " and " + wf.file,
          wf.file);
    }
    out.push_back(std::move(wf));
  }
  return out;
}

core::Result<nlohmann::json> ResolveInputs(const Workflow& wf, const nlohmann::json& given,
                                           const SmilesCheck& smiles_check) {
  if (!given.is_object() && !given.is_null()) {
    return core::InvalidArgument(std::string("inputs must be an object, got ") + given.type_name(),
                                 "input");
  }
  std::set<std::string> declared;
  for (const InputSpec& spec : wf.inputs) declared.insert(spec.name);
  if (given.is_object()) {
    for (auto it = given.begin(); it != given.end(); ++it) {
      if (!declared.count(it.key())) {
        std::string names;
        for (const std::string& name : declared) names += (names.empty() ? "" : ", ") + name;
        return core::InvalidArgument("unknown input '" + it.key() + "' (workflow '" + wf.name +
                                         "' declares: " + (names.empty() ? "none" : names) + ")",
                                     "input." + it.key());
      }
    }
  }
  json out = json::object();
  for (const InputSpec& spec : wf.inputs) {
    const std::string where = "input." + spec.name;
    json value;
    auto it = given.is_object() ? given.find(spec.name) : given.end();
    if (given.is_object() && it != given.end() && !it->is_null()) {
      value = *it;
    } else if (spec.default_value) {
      value = *spec.default_value;
    } else if (spec.required) {
      return core::InvalidArgument("missing required input '" + spec.name + "'", where);
    } else {
      continue;
    }
    FEDRX_RETURN_IF_ERROR(CheckTyped(spec.type, spec, value, where, &smiles_check));
    out[spec.name] = std::move(value);
  }
  return out;
}

}  // namespace fedrx::orchestrator
