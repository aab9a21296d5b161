#include "services/orchestrator/local_functions.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>
#include <set>
#include <utility>

#include "services/reverse/organ_classes.h"

namespace fedrx::orchestrator {
namespace {

using nlohmann::json;

// --- Small, non-throwing JSON readers ---------------------------------------------------------
// nlohmann::json's value()/get() throw on a type mismatch; run records and step outputs come
// from other processes, so every read here checks the type first.

const json* Member(const json& j, std::string_view key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}

const json* Element(const json* j, std::size_t i) {
  if (j == nullptr || !j->is_array() || i >= j->size()) return nullptr;
  return &(*j)[i];
}

std::string Text(const json& j, std::string_view key) {
  const json* m = Member(j, key);
  return m != nullptr && m->is_string() ? m->get<std::string>() : std::string();
}

std::optional<double> Number(const json* j) {
  if (j == nullptr || !j->is_number()) return std::nullopt;
  const double v = j->get<double>();
  if (!std::isfinite(v)) return std::nullopt;
  return v;
}

std::optional<double> Number(const json& j, std::string_view key) { return Number(Member(j, key)); }

std::optional<bool> Bool(const json& j, std::string_view key) {
  const json* m = Member(j, key);
  if (m == nullptr || !m->is_boolean()) return std::nullopt;
  return m->get<bool>();
}

std::string Index(std::size_t i) { return "[" + std::to_string(i) + "]"; }

// A number for summaries and conditions: 3 significant digits, whole numbers above 1000.
std::string Num(double v) {
  char buf[64];
  if (std::fabs(v) >= 1000) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  } else {
    std::snprintf(buf, sizeof buf, "%.3g", v);
  }
  return buf;
}

// An optional number argument: `fallback` when absent; InvalidArgument when present but not a
// finite number.
core::Result<double> NumberArg(const json& args, std::string_view name, double fallback) {
  const json* m = Member(args, name);
  if (m == nullptr || m->is_null()) return fallback;
  const std::optional<double> v = Number(m);
  if (!v) {
    return core::InvalidArgument(std::string(name) + " must be a finite number, got " + m->dump(),
                                 "args." + std::string(name));
  }
  return *v;
}

core::Result<std::size_t> IndexArg(const json& args, std::string_view name) {
  const json* m = Member(args, name);
  if (m == nullptr || m->is_null()) return std::size_t{0};
  if (!m->is_number_integer() || m->get<std::int64_t>() < 0) {
    return core::InvalidArgument(std::string(name) + " must be an integer >= 0, got " + m->dump(),
                                 "args." + std::string(name));
  }
  return static_cast<std::size_t>(m->get<std::int64_t>());
}

core::Status RequireObject(const json& args) {
  if (args.is_object() || args.is_null()) return core::Status::Ok();
  return core::InvalidArgument("arguments must be an object, got " + std::string(args.type_name()),
                               "args");
}

// --- The run record ---------------------------------------------------------------------------

const json* FindStep(const json& run, std::string_view id) {
  const json* steps = Member(run, "steps");
  if (steps == nullptr || !steps->is_array()) return nullptr;
  for (const json& s : *steps) {
    if (Text(s, "id") == id) return &s;
  }
  return nullptr;
}

// The output of a step that succeeded; nullptr otherwise.
const json* StepOutput(const json& run, std::string_view id) {
  const json* step = FindStep(run, id);
  if (step == nullptr || Text(*step, "state") != "succeeded") return nullptr;
  const json* out = Member(*step, "output");
  return out != nullptr && out->is_object() ? out : nullptr;
}

// Why a step has no usable output; nullopt when it has one or when its condition was false
// (a step skipped by its own `when` is an answer, not a gap).
std::optional<std::string> StepGap(const json& run, std::string_view id) {
  const json* step = FindStep(run, id);
  if (step == nullptr) return "not in the run";
  const std::string state = Text(*step, "state");
  if (state == "succeeded") {
    if (StepOutput(run, id) != nullptr) return std::nullopt;
    return "succeeded without a recorded output";
  }
  if (state == "failed") {
    std::string reason = "failed";
    if (const json* e = Member(*step, "error")) {
      const std::string code = Text(*e, "code"), message = Text(*e, "message");
      if (!code.empty()) reason += " (" + code + ")";
      if (!message.empty()) reason += ": " + message;
    }
    return reason;
  }
  if (state == "skipped") {
    // The engine records skipped_by "condition" (the step's own condition, or a dependency's)
    // or "failure"; older records only have the reason's text.
    const std::string why = Text(*step, "skip_reason"), by = Text(*step, "skipped_by");
    if (by == "condition" || (by.empty() && why.starts_with("condition false"))) {
      return std::nullopt;
    }
    return "skipped" + (why.empty() ? std::string() : ": " + why);
  }
  return "did not finish (" + (state.empty() ? std::string("no state") : state) + ")";
}

// The model an output came from: ToxicityPanel/ClinicalAssessment `model`, or the counts
// study of a ReverseTranslation.
json ModelOf(const json* output) {
  if (output == nullptr) return nullptr;
  if (const json* m = Member(*output, "model"); m != nullptr && m->is_object()) {
    const json* version = Member(*m, "model_version");
    return json{{"study_id", Text(*m, "study_id")},
                {"model_version", version != nullptr && version->is_number() ? *version : json(0)}};
  }
  if (const std::string study = Text(*output, "counts_study"); !study.empty()) {
    const json* version = Member(*output, "counts_version");
    return json{{"study_id", study},
                {"model_version", version != nullptr && version->is_number() ? *version : json(0)}};
  }
  return nullptr;
}

// A structure a service refused: its error (code, message) or nullopt.
std::optional<std::string> Refusal(const json& structure) {
  const std::string code = Text(structure, "error_code");
  if (!code.empty()) return code + ": " + Text(structure, "error");
  const json* e = Member(structure, "error");
  if (e == nullptr || e->is_null()) return std::nullopt;
  if (e->is_string()) {
    if (e->get<std::string>().empty()) return std::nullopt;
    return e->get<std::string>();
  }
  if (e->is_object()) return Text(*e, "code") + ": " + Text(*e, "message");
  return e->dump();
}

// --- Flagging ---------------------------------------------------------------------------------

struct FlaggedTask {
  std::string task, panel;
  std::size_t panel_index = 0;
  std::string field;  // path of the probability inside the panel JSON
  double probability = 0;
  std::string prediction_set;
  std::optional<double> p_positive;
  std::vector<std::string> organ_classes;
};

struct ClassEvidence {
  std::string organ_class;
  std::size_t table_order = 0;
  double max_probability = 0;
  std::vector<std::string> tasks;
};

struct StructureFlags {
  std::string structure;
  std::vector<FlaggedTask> evidence;
  std::vector<ClassEvidence> classes;  // strongest first
};

// One structure's flags over several panels. `where[i]` names panel i in errors.
core::Result<StructureFlags> FlagStructure(const std::vector<const json*>& panels,
                                           const std::vector<std::string>& where, std::size_t index,
                                           double threshold) {
  StructureFlags out;
  std::vector<ClassEvidence> classes;
  const auto& table = reverse::OrganClassTable();
  for (std::size_t p = 0; p < panels.size(); ++p) {
    const json& panel = *panels[p];
    if (!panel.is_object()) {
      return core::InvalidArgument(
          "a panel must be a ToxicityPanel object, got " + std::string(panel.type_name()),
          where[p]);
    }
    const json* results = Member(panel, "results");
    if (results == nullptr || !results->is_array()) {
      return core::InvalidArgument("the panel has no results array", where[p] + ".results");
    }
    const json* r = Element(results, index);
    if (r == nullptr || !r->is_object()) {
      return core::InvalidArgument("structure_index " + std::to_string(index) +
                                       " but the panel answered " +
                                       std::to_string(results->size()) + " structure(s)",
                                   where[p] + ".results");
    }
    const std::string panel_name = Text(panel, "panel");
    const std::string input = Text(*r, "input");
    if (out.structure.empty()) out.structure = input;
    if (std::optional<std::string> refused = Refusal(*r)) {
      return core::InvalidArgument("structure '" + input + "' was refused by the " +
                                       (panel_name.empty() ? "toxicity" : panel_name) + " panel (" +
                                       *refused + "); nothing to flag",
                                   where[p] + ".results" + Index(index));
    }
    const json* tasks = Member(*r, "tasks");
    if (tasks == nullptr || !tasks->is_array()) {
      return core::InvalidArgument("the structure's answer has no tasks array",
                                   where[p] + ".results" + Index(index) + ".tasks");
    }
    for (std::size_t t = 0; t < tasks->size(); ++t) {
      const json& task = (*tasks)[t];
      const std::string field = "results" + Index(index) + ".tasks" + Index(t);
      const std::string name = Text(task, "task");
      const std::optional<double> prob = Number(task, "probability");
      if (name.empty()) {
        return core::InvalidArgument("a task has no name", where[p] + "." + field + ".task");
      }
      if (!prob || *prob < 0 || *prob > 1) {
        return core::InvalidArgument("task " + name + ": probability must be a number in [0, 1]",
                                     where[p] + "." + field + ".probability");
      }
      const std::string set = Text(task, "prediction_set");
      if (!(*prob >= threshold || set == "positive")) continue;
      FlaggedTask f{
          name, panel_name, p, field + ".probability", *prob, set, Number(task, "p_positive"), {}};
      for (std::size_t c = 0; c < table.size(); ++c) {
        if (!reverse::AssayBearsOn(table[c], name)) continue;
        f.organ_classes.push_back(table[c].name);
        auto it = std::find_if(classes.begin(), classes.end(),
                               [&](const ClassEvidence& e) { return e.table_order == c; });
        if (it == classes.end()) {
          classes.push_back({table[c].name, c, *prob, {}});
          it = classes.end() - 1;
        }
        it->max_probability = std::max(it->max_probability, *prob);
        it->tasks.push_back(name);
      }
      out.evidence.push_back(std::move(f));
    }
  }
  // Strongest evidence first: the highest probability among the class's flagged tasks, then
  // the number of flagged tasks, then the table's order (stable across runs).
  std::sort(classes.begin(), classes.end(), [](const ClassEvidence& a, const ClassEvidence& b) {
    if (a.max_probability != b.max_probability) return a.max_probability > b.max_probability;
    if (a.tasks.size() != b.tasks.size()) return a.tasks.size() > b.tasks.size();
    return a.table_order < b.table_order;
  });
  out.classes = std::move(classes);
  return out;
}

json FlagsToJson(const StructureFlags& f, double threshold, std::size_t index) {
  json names = json::array(), evidence = json::array(), classes = json::array();
  for (const ClassEvidence& c : f.classes) {
    names.push_back(c.organ_class);
    classes.push_back({{"organ_class", c.organ_class},
                       {"max_probability", c.max_probability},
                       {"tasks", c.tasks}});
  }
  for (const FlaggedTask& e : f.evidence) {
    evidence.push_back({{"task", e.task},
                        {"panel", e.panel},
                        {"panel_index", e.panel_index},
                        {"field", e.field},
                        {"probability", e.probability},
                        {"prediction_set", e.prediction_set},
                        {"p_positive", e.p_positive ? json(*e.p_positive) : json(nullptr)},
                        {"organ_classes", e.organ_classes}});
  }
  return {{"organ_classes", std::move(names)},
          {"flagged_task_count", f.evidence.size()},
          {"threshold", threshold},
          {"structure_index", index},
          {"structure", f.structure},
          {"evidence", std::move(evidence)},
          {"classes", std::move(classes)}};
}

// --- Verdict ----------------------------------------------------------------------------------

// The endpoints of an organ class as "LB ALT/AST, MI LIVER": from the reverse step's answer when
// it has the class, else from the organ-class table.
std::string EndpointText(const std::string& organ_class, const json* reverse_out) {
  std::vector<std::pair<std::string, std::string>> endpoints;
  if (reverse_out != nullptr) {
    if (const json* rows = Member(*reverse_out, "organ_classes"); rows && rows->is_array()) {
      for (const json& row : *rows) {
        if (Text(row, "organ_class") != organ_class) continue;
        if (const json* eps = Member(row, "endpoints"); eps && eps->is_array()) {
          for (const json& e : *eps) endpoints.emplace_back(Text(e, "domain"), Text(e, "code"));
        }
      }
    }
  }
  if (endpoints.empty()) {
    if (const reverse::OrganClass* row = reverse::FindOrganClass(organ_class)) {
      for (const auto& e : row->endpoints) endpoints.emplace_back(e.domain, e.code);
    }
  }
  // Group the codes by domain, in order of first appearance, without repeats.
  std::vector<std::pair<std::string, std::vector<std::string>>> groups;
  for (const auto& [domain, code] : endpoints) {
    auto it = std::find_if(groups.begin(), groups.end(),
                           [&](const auto& g) { return g.first == domain; });
    if (it == groups.end()) {
      groups.push_back({domain, {}});
      it = groups.end() - 1;
    }
    if (std::find(it->second.begin(), it->second.end(), code) == it->second.end()) {
      it->second.push_back(code);
    }
  }
  std::string text;
  for (const auto& [domain, codes] : groups) {
    if (!text.empty()) text += ", ";
    text += domain + " ";
    for (std::size_t i = 0; i < codes.size(); ++i) text += (i ? "/" : "") + codes[i];
  }
  return text;
}

// The index of task `name` in a structure's tasks, or nullopt.
std::optional<std::size_t> TaskIndex(const json* structure, std::string_view name) {
  if (structure == nullptr) return std::nullopt;
  const json* tasks = Member(*structure, "tasks");
  if (tasks == nullptr || !tasks->is_array()) return std::nullopt;
  for (std::size_t i = 0; i < tasks->size(); ++i) {
    if (Text((*tasks)[i], "task") == name) return i;
  }
  return std::nullopt;
}

constexpr const char* kFirstInHumanSteps[] = {"tox",    "toxcast",       "clinical",
                                              "dose",   "flags",         "reverse",
                                              "levels", "virtual_trial", "escalation_3p3"};
constexpr const char* kCriticalSteps[] = {"tox", "clinical", "dose"};

class VerdictBuilder {
 public:
  VerdictBuilder(const json& run, double ct_tox_threshold, double p_dlt_limit, std::size_t index)
      : run_(run), ct_tox_threshold_(ct_tox_threshold), p_dlt_limit_(p_dlt_limit), index_(index) {}

  json Build() {
    for (const char* id : kFirstInHumanSteps) {
      if (std::optional<std::string> gap = StepGap(run_, id)) {
        missing_.push_back({{"step", id}, {"reason", *gap}});
        gaps_.insert(id);
      }
    }
    Dose();
    Tox();
    Clinical();
    Flags();
    Reverse();
    Trial();
    return Decide();
  }

 private:
  // A finding whose value is read back from `field` of step `step`'s output, so that the cited
  // value is by construction the one at the path; nothing is added when the path is absent.
  // A value of another JSON type than `want` is not cited (a malformed answer cites nothing).
  enum class Want { kNumber, kText, kBool, kArray };
  const json* Cite(const std::string& label, const std::string& unit, const std::string& step,
                   const std::string& field, Want want = Want::kNumber) {
    const json* out = StepOutput(run_, step);
    const json* v = At(out, field);
    if (v == nullptr) return nullptr;
    const bool typed = want == Want::kNumber ? Number(v).has_value()
                       : want == Want::kText ? v->is_string()
                       : want == Want::kBool ? v->is_boolean()
                                             : v->is_array();
    if (!typed) return nullptr;
    json f = {{"label", label}, {"value", *v}, {"unit", unit}, {"step", step}, {"field", field}};
    if (json model = ModelOf(out); !model.is_null()) f["model"] = std::move(model);
    findings_.push_back(std::move(f));
    return v;
  }

  // The value at a path such as "results[0].tasks[3].probability" (the flags step's `field`).
  static const json* At(const json* root, const std::string& path) {
    const json* cur = root;
    std::size_t i = 0;
    while (cur != nullptr && i < path.size()) {
      if (path[i] == '.') {
        ++i;
        continue;
      }
      if (path[i] == '[') {
        const std::size_t close = path.find(']', i);
        if (close == std::string::npos) return nullptr;
        std::size_t k = 0;
        for (std::size_t c = i + 1; c < close; ++c) {
          if (path[c] < '0' || path[c] > '9') return nullptr;
          k = k * 10 + static_cast<std::size_t>(path[c] - '0');
        }
        cur = Element(cur, k);
        i = close + 1;
        continue;
      }
      const std::size_t end = path.find_first_of(".[", i);
      const std::string key =
          path.substr(i, end == std::string::npos ? std::string::npos : end - i);
      cur = Member(*cur, key);
      i = end == std::string::npos ? path.size() : end;
    }
    return cur;
  }

  std::string Prefix() const { return Index(index_); }

  void Dose() {
    const json* out = StepOutput(run_, "dose");
    if (out == nullptr) return;
    mrsd_mg_ = Number(Cite("maximum recommended starting dose (MRSD)", "mg", "dose", "mrsd_mg"));
    Cite("MRSD per kg", "mg/kg", "dose", "mrsd_mg_per_kg");
    Cite("human equivalent dose (HED) of the species used", "mg/kg", "dose", "hed_mg_per_kg");
    species_ = Text(*out, "chosen_species");
    Cite("species used", "", "dose", "chosen_species", Want::kText);
    if (const json* heds = Member(*out, "heds"); heds && heds->is_array()) {
      for (std::size_t i = 0; i < heds->size(); ++i) {
        if (Text((*heds)[i], "species") != species_) continue;
        noael_ = Number(
            Cite(species_ + " NOAEL", "mg/kg", "dose", "heds" + Index(i) + ".noael_mg_per_kg"));
        break;
      }
    }
    safety_factor_ = Number(Cite("safety factor", "", "dose", "safety_factor"));
    Cite("human body weight", "kg", "dose", "human_weight_kg");
  }

  void Tox() {
    for (const char* step : {"tox", "toxcast"}) {
      const json* out = StepOutput(run_, step);
      if (out == nullptr) continue;
      const std::string panel = Text(*out, "panel").empty() ? step : Text(*out, "panel");
      const json* r = Element(Member(*out, "results"), index_);
      if (r == nullptr) {
        refused_.push_back(std::string(step) + ": no answer for structure " +
                           std::to_string(index_));
        continue;
      }
      if (std::optional<std::string> why = Refusal(*r)) {
        refused_.push_back(std::string(step) + " refused the structure (" + *why + ")");
        continue;
      }
      Domain(step, panel, "results" + Prefix());
    }
  }

  // The applicability domain of one structure's answer; a condition when it is out of domain.
  void Domain(const std::string& step, const std::string& model_name, const std::string& base) {
    const json* out = StepOutput(run_, step);
    const json* in = Cite(model_name + ": structure inside the applicability domain", "", step,
                          base + ".domain.in_domain", Want::kBool);
    const json* p =
        Cite(model_name + ": applicability-domain p-value", "", step, base + ".domain.p_value");
    if (in == nullptr || !in->is_boolean() || in->get<bool>()) return;
    const json* threshold = At(out, base + ".domain.threshold");
    std::string c =
        "the structure lies outside the applicability domain of the " + model_name + " model";
    if (Number(p)) {
      c += " (domain p " + Num(*Number(p));
      if (Number(threshold)) c += " < " + Num(*Number(threshold));
      c += ")";
    }
    c += ": confirm its predictions with in-vitro assays before relying on them";
    conditions_.push_back(c);
    out_of_domain_.push_back(model_name);
  }

  void Clinical() {
    const json* out = StepOutput(run_, "clinical");
    if (out == nullptr) return;
    const std::string base = "clinical" + Prefix();
    const json* structure = At(out, base);
    if (structure == nullptr) {
      refused_.push_back("clinical: no answer for structure " + std::to_string(index_));
      return;
    }
    if (std::optional<std::string> why = Refusal(*structure)) {
      refused_.push_back("clinical refused the structure (" + *why + ")");
      return;
    }
    if (std::optional<std::size_t> t = TaskIndex(structure, "CT_TOX")) {
      const std::string field = base + ".tasks" + Index(*t);
      ct_tox_ = Number(Cite("clinical-toxicity risk (CT_TOX probability)", "probability",
                            "clinical", field + ".probability"));
      if (const json* set =
              Cite("CT_TOX prediction set", "", "clinical", field + ".prediction_set", Want::kText);
          set && set->is_string()) {
        ct_tox_set_ = set->get<std::string>();
      }
      Cite("CT_TOX conformal p-value of 'toxic'", "", "clinical", field + ".p_positive");
      const json* calibrated = At(out, field + ".calibrated");
      ct_tox_calibrated_ =
          calibrated == nullptr || !calibrated->is_boolean() || calibrated->get<bool>();
    }
    if (std::optional<std::size_t> t = TaskIndex(structure, "FDA_APPROVED")) {
      Cite("approval probability (FDA_APPROVED)", "probability", "clinical",
           base + ".tasks" + Index(*t) + ".probability");
    }
    Domain("clinical", "ClinTox", base);
    const std::string success = "success" + Prefix();
    Cite("therapeutic area of the base rates", "", "clinical", success + ".therapeutic_area",
         Want::kText);
    Cite("likelihood of approval from Phase I, base rate for the area", "probability", "clinical",
         success + ".base_likelihood_of_approval");
    Cite("likelihood of approval from Phase I, adjusted by the predicted risk", "probability",
         "clinical", success + ".adjusted_likelihood_of_approval");
    if (const json* effects = Member(*out, "side_effects_unavailable");
        effects && effects->is_string() && !effects->get<std::string>().empty()) {
      notes_.push_back("side-effect profile unavailable: " + effects->get<std::string>());
    }
    SideEffects(*out);
  }

  // The three organ classes of the side-effect profile (SIDER tasks) with the highest predicted
  // probability, cited with the side-effect model rather than the ClinTox one.
  void SideEffects(const json& out) {
    const std::string base = "side_effects" + Prefix();
    const json* structure = At(&out, base);
    if (structure == nullptr || Refusal(*structure)) return;
    const json* tasks = Member(*structure, "tasks");
    if (tasks == nullptr || !tasks->is_array()) return;
    std::vector<std::pair<double, std::size_t>> ranked;
    for (std::size_t t = 0; t < tasks->size(); ++t) {
      if (std::optional<double> p = Number((*tasks)[t], "probability")) ranked.emplace_back(*p, t);
    }
    std::stable_sort(ranked.begin(), ranked.end(),
                     [](const auto& a, const auto& b) { return a.first > b.first; });
    const json* model = Member(out, "side_effect_model");
    for (std::size_t k = 0; k < ranked.size() && k < 3; ++k) {
      const std::string field = base + ".tasks" + Index(ranked[k].second) + ".probability";
      Cite("side effect: " + Text((*tasks)[ranked[k].second], "task") + " probability",
           "probability", "clinical", field);
      if (model != nullptr && model->is_object()) {
        const json* version = Member(*model, "model_version");
        findings_.back()["model"] = {
            {"study_id", Text(*model, "study_id")},
            {"model_version", version != nullptr && version->is_number() ? *version : json(0)}};
      }
    }
  }

  void Flags() {
    const json* out = StepOutput(run_, "flags");
    if (out == nullptr) {
      FlagsFromPanels();
      return;
    }
    Cite("flagged toxicity tasks", "tasks", "flags", "flagged_task_count");
    Cite("flag threshold (probability)", "probability", "flags", "threshold");
    Cite("organ classes flagged", "", "flags", "organ_classes", Want::kArray);
    const json* classes = Member(*out, "organ_classes");
    if (classes != nullptr && classes->is_array()) {
      for (const json& c : *classes) {
        if (c.is_string()) organ_classes_.push_back(c.get<std::string>());
      }
    }
    // Each flagged task's probability, cited in its own panel's step.
    const json* evidence = Member(*out, "evidence");
    if (evidence == nullptr || !evidence->is_array()) return;
    for (const json& e : *evidence) {
      const std::string panel = Text(e, "panel"), field = Text(e, "field"), task = Text(e, "task");
      std::string step;
      for (const char* s : {"tox", "toxcast"}) {
        const json* o = StepOutput(run_, s);
        if (o != nullptr && Text(*o, "panel") == panel) step = s;
      }
      if (step.empty() || field.empty()) continue;
      Cite(panel + " " + task + " probability (flagged)", "probability", step, field);
    }
  }

  // Without a flags step output (it failed, or was skipped because the toxcast panel failed),
  // the organ classes are flagged here from the panels that did answer, at input.flag_threshold,
  // so that one missing panel does not hide the other's flags.
  void FlagsFromPanels() {
    std::vector<const json*> panels;
    std::vector<std::string> where, steps;
    for (const char* step : {"tox", "toxcast"}) {
      if (const json* o = StepOutput(run_, step)) {
        panels.push_back(o);
        where.push_back(std::string("steps.") + step);
        steps.push_back(step);
      }
    }
    if (panels.empty()) return;
    const json* input = Member(run_, "input");
    const double threshold = input ? Number(*input, "flag_threshold").value_or(0.5) : 0.5;
    auto flags = FlagStructure(panels, where, index_, threshold);
    if (!flags.ok()) return;  // a refusal is reported by Tox()
    fallback_flags_ = true;
    for (const ClassEvidence& c : flags->classes) organ_classes_.push_back(c.organ_class);
    for (const FlaggedTask& f : flags->evidence) {
      Cite(f.panel + " " + f.task + " probability (flagged)", "probability", steps[f.panel_index],
           f.field);
      fallback_evidence_.push_back({{"task", f.task},
                                    {"panel", f.panel},
                                    {"probability", f.probability},
                                    {"prediction_set", f.prediction_set},
                                    {"organ_classes", f.organ_classes}});
    }
    notes_.push_back("the flags step has no output: organ classes flagged here from the " +
                     std::to_string(panels.size()) + " panel(s) that answered, threshold " +
                     Num(threshold));
  }

  // The strongest flagged task of a class, from the flags step's evidence.
  std::string StrongestTask(const std::string& organ_class) const {
    const json* out = StepOutput(run_, "flags");
    const json* evidence = fallback_flags_ ? &fallback_evidence_
                           : out           ? Member(*out, "evidence")
                                           : nullptr;
    if (evidence == nullptr || !evidence->is_array()) return {};
    std::string best;
    double best_p = -1;
    for (const json& e : *evidence) {
      const json* classes = Member(e, "organ_classes");
      if (classes == nullptr || !classes->is_array()) continue;
      if (std::find(classes->begin(), classes->end(), json(organ_class)) == classes->end()) {
        continue;
      }
      const double p = Number(e, "probability").value_or(0);
      if (p > best_p) {
        best_p = p;
        best = Text(e, "task") + " (" + Text(e, "panel") + ") probability " + Num(p);
        const std::string set = Text(e, "prediction_set");
        if (!set.empty()) best += ", prediction set " + set;
      }
    }
    return best;
  }

  void Reverse() {
    const json* out = StepOutput(run_, "reverse");
    if (out != nullptr) {
      if (const json* rows = Member(*out, "organ_classes"); rows && rows->is_array()) {
        for (std::size_t i = 0; i < rows->size(); ++i) {
          const json& row = (*rows)[i];
          const json* assays = Member(row, "assays");
          if (assays == nullptr || !assays->is_array()) continue;
          for (std::size_t a = 0; a < assays->size(); ++a) {
            const json& assay = (*assays)[a];
            if (Bool(assay, "sufficient_evidence") != true || !Number(assay, "odds_ratio")) {
              continue;
            }
            const std::string field = "organ_classes" + Index(i) + ".assays" + Index(a);
            const std::string label =
                Text(row, "organ_class") + ": top assay association, " + Text(assay, "assay");
            Cite(label + " odds ratio", "", "reverse", field + ".odds_ratio");
            Cite(label + " q-value (BH)", "", "reverse", field + ".q_value");
            top_assay_[Text(row, "organ_class")] = Text(assay, "assay") + " OR " +
                                                   Num(*Number(assay, "odds_ratio")) + " (q " +
                                                   Num(Number(assay, "q_value").value_or(1)) + ")";
            break;
          }
        }
      }
      if (const json* labels = Member(*out, "label_associations"); labels && labels->is_array()) {
        for (std::size_t a = 0; a < labels->size(); ++a) {
          const json& assay = (*labels)[a];
          if (Bool(assay, "sufficient_evidence") != true || !Number(assay, "odds_ratio")) continue;
          const std::string field = "label_associations" + Index(a);
          const std::string label =
              Text(assay, "clinical_label") + ": top assay association, " + Text(assay, "assay");
          Cite(label + " odds ratio", "", "reverse", field + ".odds_ratio");
          Cite(label + " q-value (BH)", "", "reverse", field + ".q_value");
          break;
        }
      }
    }
    for (const std::string& c : organ_classes_) {
      std::string text = "add " + EndpointText(c, out) + " to the GLP study: " + c + " flagged";
      if (const std::string task = StrongestTask(c); !task.empty()) text += " by " + task;
      if (auto it = top_assay_.find(c); it != top_assay_.end()) {
        text += "; federated association " + it->second;
      }
      if (reverse::FindOrganClass(c) != nullptr &&
          !reverse::FindOrganClass(c)->has_preclinical_correlate()) {
        text = c + " flagged: " + reverse::FindOrganClass(c)->none_reason;
      }
      conditions_.push_back(text);
    }
  }

  void Trial() {
    Cite("assumed exposure giving 50% DLT (tox_auc50)", "mg·h/L", "levels", "tox_auc50");
    Cite("typical AUC at the start dose", "mg·h/L", "levels", "start_auc_mg_h_per_l");
    const json* vt = StepOutput(run_, "virtual_trial");
    std::vector<double> doses;
    if (vt != nullptr) {
      if (const json* d = Member(*vt, "dose_mg"); d && d->is_array()) {
        for (const json& x : *d) doses.push_back(Number(&x).value_or(0));
      }
      start_dose_ = Number(Cite("virtual trial start dose", "mg", "virtual_trial", "dose_mg[0]"));
      p_dlt_start_ = Number(Cite("virtual trial P(DLT) at the start dose", "probability",
                                 "virtual_trial", "p_dlt[0]"));
      Design("virtual_trial", "oc.", "BOIN", doses);
    }
    if (StepOutput(run_, "escalation_3p3") != nullptr) Design("escalation_3p3", "", "3+3", doses);
    if (design_text_.size() > 1) {
      std::string note = "escalation designs on the same per-dose P(DLT), per trial: ";
      for (std::size_t i = 0; i < design_text_.size(); ++i) {
        note += (i ? "; " : "") + design_text_[i];
      }
      notes_.push_back(note);
    }
  }

  void Design(const std::string& step, const std::string& oc, const std::string& name,
              const std::vector<double>& doses) {
    const json* out = StepOutput(run_, step);
    const json* selection = At(out, oc + "selection_pct");
    std::optional<std::size_t> best;
    if (selection != nullptr && selection->is_array()) {
      for (std::size_t i = 0; i < selection->size(); ++i) {
        const std::string dose =
            i < doses.size() ? Num(doses[i]) + " mg" : "level " + std::to_string(i + 1);
        const std::optional<double> pct = Number(Cite(name + " selects " + dose + " as MTD", "%",
                                                      step, oc + "selection_pct" + Index(i)));
        if (pct && (!best || *pct > *Number(&(*selection)[*best]))) best = i;
      }
    }
    if (best && step == "virtual_trial") {
      recommended_ = Number(Cite(name + " recommended dose (most often selected)", "mg", step,
                                 "dose_mg" + Index(*best)));
    }
    const std::optional<double> dlts =
        Number(Cite(name + " expected DLTs per trial", "patients", step, oc + "dlt_total_mean"));
    const std::optional<double> patients = Number(
        Cite(name + " expected patients per trial", "patients", step, oc + "patients_total_mean"));
    Cite(name + " trials stopped early", "%", step, oc + "early_stop_pct");
    if (dlts && patients) {
      design_text_.push_back(name + " " + Num(*patients) + " patients, " + Num(*dlts) + " DLTs");
    }
  }

  json Decide() {
    // The rules, in order; the first that applies decides.
    const json rules = json::array({
        "do_not_proceed: the clinical step answered and the candidate's CT_TOX prediction set is "
        "\"positive\" at the panel's confidence, or its CT_TOX probability >= " +
            Num(ct_tox_threshold_),
        "incomplete: the tox, clinical or dose step has no output, or a service refused the "
        "structure",
        "proceed_with_conditions: an organ class is flagged, a structure is outside a model's "
        "applicability domain, CT_TOX toxicity is not excluded (prediction set \"both\" or "
        "\"empty\", or an uncalibrated model), the virtual trial's P(DLT) at the start dose "
        "exceeds " +
            Num(p_dlt_limit_) +
            ", or a supporting step (toxcast, flags, reverse, levels, "
            "virtual_trial, escalation_3p3) has no output",
        "proceed: none of the above",
    });
    std::string verdict;
    std::vector<std::string> critical;
    for (const char* id : kCriticalSteps) {
      if (gaps_.count(id)) critical.push_back(id);
    }
    const bool high_risk = ct_tox_ && (ct_tox_set_ == "positive" || *ct_tox_ >= ct_tox_threshold_);
    if (high_risk) {
      verdict = "do_not_proceed";
      conditions_.insert(conditions_.begin(),
                         "predicted clinical-toxicity risk is high (CT_TOX probability " +
                             Num(*ct_tox_) + ", prediction set " + ct_tox_set_ +
                             "): do not take the candidate into humans");
    } else if (!critical.empty() || !refused_.empty()) {
      verdict = "incomplete";
    } else {
      if (ct_tox_ && (ct_tox_set_ == "both" || ct_tox_set_ == "empty" || !ct_tox_calibrated_)) {
        conditions_.push_back(
            "clinical toxicity is not excluded at the panel's confidence (CT_TOX probability " +
            Num(*ct_tox_) + ", prediction set " + (ct_tox_set_.empty() ? "none" : ct_tox_set_) +
            (ct_tox_calibrated_ ? "" : ", uncalibrated") +
            "): weigh the GLP package and the clinical monitoring plan accordingly");
      }
      if (p_dlt_start_ && *p_dlt_start_ > p_dlt_limit_) {
        conditions_.push_back("the virtual trial's P(DLT) at the start dose " +
                              (start_dose_ ? Num(*start_dose_) + " mg " : std::string()) + "is " +
                              Num(*p_dlt_start_) + " > " + Num(p_dlt_limit_) +
                              ": consider a lower start dose or sentinel dosing");
      }
      for (const json& m : missing_) {
        const std::string step = m["step"].get<std::string>();
        conditions_.push_back("complete the missing " + step + " analysis (" +
                              m["reason"].get<std::string>() + ")");
      }
      verdict = conditions_.empty() ? "proceed" : "proceed_with_conditions";
    }
    json out = {{"verdict", verdict},
                {"summary", Summary(verdict, critical)},
                {"rules", rules},
                {"findings", findings_},
                {"conditions", conditions_},
                {"missing", missing_},
                {"notes", notes_}};
    if (recommended_) out["recommended_dose_mg"] = *recommended_;
    return out;
  }

  std::string Summary(const std::string& verdict, const std::vector<std::string>& critical) const {
    std::string s = verdict == "proceed_with_conditions" ? "proceed with conditions"
                    : verdict == "do_not_proceed"        ? "do not proceed"
                                                         : verdict;
    std::vector<std::string> parts;
    if (verdict == "incomplete") {
      std::string why;
      for (const std::string& id : critical) why += (why.empty() ? "" : ", ") + id + " failed";
      for (const std::string& r : refused_) why += (why.empty() ? "" : ", ") + r;
      s += " (" + why + ")";
    }
    if (mrsd_mg_) {
      std::string p = "MRSD " + Num(*mrsd_mg_) + " mg";
      if (!species_.empty() && noael_) {
        p += " (" + species_ + " NOAEL " + Num(*noael_) + " mg/kg";
        if (safety_factor_) p += ", SF " + Num(*safety_factor_);
        p += ")";
      }
      parts.push_back(p);
    }
    if (ct_tox_) {
      parts.push_back("CT_TOX risk " + Num(*ct_tox_) +
                      (ct_tox_set_.empty() ? "" : " (" + ct_tox_set_ + ")"));
    }
    if (StepOutput(run_, "flags") != nullptr || fallback_flags_) {
      parts.push_back(std::to_string(organ_classes_.size()) + " organ class" +
                      (organ_classes_.size() == 1 ? "" : "es") + " flagged");
    }
    if (!out_of_domain_.empty()) {
      std::string p = "out of domain for ";
      for (std::size_t i = 0; i < out_of_domain_.size(); ++i) {
        p += (i ? ", " : "") + out_of_domain_[i];
      }
      parts.push_back(p);
    }
    if (p_dlt_start_) parts.push_back("P(DLT) at start " + Num(*p_dlt_start_));
    if (recommended_) parts.push_back("BOIN recommends " + Num(*recommended_) + " mg");
    if (!missing_.empty() && verdict != "incomplete") {
      parts.push_back(std::to_string(missing_.size()) + " step(s) missing");
    }
    for (std::size_t i = 0; i < parts.size(); ++i) s += (i ? "; " : ": ") + parts[i];
    return s;
  }

  const json& run_;
  const double ct_tox_threshold_, p_dlt_limit_;
  const std::size_t index_;
  json findings_ = json::array(), missing_ = json::array();
  std::vector<std::string> conditions_, notes_, refused_, organ_classes_, out_of_domain_,
      design_text_;
  std::set<std::string> gaps_;
  std::map<std::string, std::string> top_assay_;
  std::optional<double> mrsd_mg_, noael_, safety_factor_, ct_tox_, p_dlt_start_, start_dose_,
      recommended_;
  std::string species_, ct_tox_set_;
  bool ct_tox_calibrated_ = true;
  bool fallback_flags_ = false;
  json fallback_evidence_ = json::array();
};

// Wraps a function so that an unexpected nlohmann::json exception becomes an Internal status
// instead of crossing into the engine.
LocalFunction Guarded(std::string name,
                      core::Result<json> (*fn)(const json& args, const json& run)) {
  return [name = std::move(name), fn](const json& args, const json& run) -> core::Result<json> {
    try {
      return fn(args, run);
    } catch (const json::exception& e) {
      return core::Internal(name + ": unexpected JSON shape (" + e.what() + ")", name);
    }
  };
}

}  // namespace

void LocalFunctions::Register(std::string name, LocalFunction fn) {
  fns_[std::move(name)] = std::move(fn);
}

const LocalFunction* LocalFunctions::Find(std::string_view name) const {
  auto it = fns_.find(name);
  return it == fns_.end() ? nullptr : &it->second;
}

std::vector<std::string> LocalFunctions::Names() const {
  std::vector<std::string> names;
  for (const auto& [name, fn] : fns_) names.push_back(name);
  return names;
}

LocalFunctions BuiltinLocalFunctions() {
  LocalFunctions fns;
  fns.Register("flag_organ_classes", Guarded("flag_organ_classes", &FlagOrganClasses));
  fns.Register("dose_levels", Guarded("dose_levels", &DoseLevels));
  fns.Register("first_in_human_verdict", Guarded("first_in_human_verdict", &FirstInHumanVerdict));
  fns.Register("rank_candidates", Guarded("rank_candidates", &RankCandidates));
  return fns;
}

core::Result<json> FlagOrganClasses(const json& args, const json& /*run*/) {
  FEDRX_RETURN_IF_ERROR(RequireObject(args));
  std::vector<const json*> panels;
  std::vector<std::string> where;
  if (const json* list = Member(args, "panels"); list != nullptr && !list->is_null()) {
    if (!list->is_array()) {
      return core::InvalidArgument("panels must be an array of ToxicityPanel objects",
                                   "args.panels");
    }
    for (std::size_t i = 0; i < list->size(); ++i) {
      panels.push_back(&(*list)[i]);
      where.push_back("args.panels" + Index(i));
    }
  }
  if (const json* one = Member(args, "panel"); one != nullptr && !one->is_null()) {
    panels.push_back(one);
    where.push_back("args.panel");
  }
  if (panels.empty()) {
    return core::InvalidArgument("give the toxicity panel(s) to flag: panels or panel",
                                 "args.panels");
  }
  FEDRX_ASSIGN_OR_RETURN(const double threshold, NumberArg(args, "threshold", 0.5));
  if (threshold < 0 || threshold > 1) {
    return core::InvalidArgument("threshold must be in [0, 1], got " + Num(threshold),
                                 "args.threshold");
  }
  FEDRX_ASSIGN_OR_RETURN(const std::size_t index, IndexArg(args, "structure_index"));
  FEDRX_ASSIGN_OR_RETURN(StructureFlags flags, FlagStructure(panels, where, index, threshold));
  return FlagsToJson(flags, threshold, index);
}

core::Result<json> DoseLevels(const json& args, const json& /*run*/) {
  FEDRX_RETURN_IF_ERROR(RequireObject(args));
  const json* mrsd_arg = Member(args, "mrsd_mg");
  const std::optional<double> mrsd = Number(mrsd_arg);
  if (!mrsd || *mrsd <= 0) {
    return core::InvalidArgument(
        "mrsd_mg must be a finite number > 0, got " +
            (mrsd_arg == nullptr ? std::string("nothing") : mrsd_arg->dump()),
        "args.mrsd_mg");
  }
  std::vector<double> multiples = {1, 3, 10, 30, 60};
  if (const json* m = Member(args, "multiples"); m != nullptr && !m->is_null()) {
    if (!m->is_array() || m->empty()) {
      return core::InvalidArgument("multiples must be a non-empty array of numbers",
                                   "args.multiples");
    }
    // The trial service accepts at most 50 dose levels (trial::kMaxEscalationDoses).
    if (m->size() > 50) {
      return core::InvalidArgument("at most 50 dose levels, got " + std::to_string(m->size()),
                                   "args.multiples");
    }
    multiples.clear();
    for (std::size_t i = 0; i < m->size(); ++i) {
      const std::optional<double> k = Number(&(*m)[i]);
      if (!k || *k <= 0 || (i > 0 && !(*k > multiples.back()))) {
        return core::InvalidArgument("multiples must be finite, > 0 and increasing",
                                     "args.multiples" + Index(i));
      }
      multiples.push_back(*k);
    }
  }
  if (multiples.front() > 1) {
    return core::InvalidArgument(
        "the first multiple must be <= 1: a first-in-human trial starts at or below the MRSD, "
        "got " +
            Num(multiples.front()),
        "args.multiples[0]");
  }
  json doses = json::array();
  for (double k : multiples) doses.push_back(*mrsd * k);
  json out = {{"dose_mg", doses},
              {"start_dose_mg", doses.front()},
              {"mrsd_mg", *mrsd},
              {"multiples", multiples}};

  const json* model = Member(args, "model");
  if (model == nullptr || model->is_null()) {
    for (const char* field : {"tox_auc50", "response_auc50"}) {
      FEDRX_ASSIGN_OR_RETURN(const double given, NumberArg(args, field, 0));
      if (given > 0) out[field] = given;
    }
    return out;
  }
  if (!model->is_object()) {
    return core::InvalidArgument("model must be a PkModel object", "args.model");
  }
  const std::optional<double> cl = Number(*model, "cl_l_per_h");
  if (!cl || *cl <= 0) {
    return core::InvalidArgument("model.cl_l_per_h must be a finite number > 0",
                                 "args.model.cl_l_per_h");
  }
  const bool oral = Text(*model, "kind") == "oral_1cmt";
  double f = 1;
  if (oral) {
    const std::optional<double> given = Number(*model, "bioavailability");
    f = given.value_or(1);
    if (!(f > 0 && f <= 1)) {
      return core::InvalidArgument("model.bioavailability must be in (0, 1]",
                                   "args.model.bioavailability");
    }
  }
  // AUC(0-inf) of one dose in a linear model is F·D/CL whatever the compartments.
  const double start_auc = f * doses.front().get<double>() / *cl;
  out["start_auc_mg_h_per_l"] = start_auc;
  json assumptions = json::array();
  assumptions.push_back("typical AUC(0-inf) at the start dose = F·D/CL = " + Num(f) + " x " +
                        Num(doses.front().get<double>()) + " mg / " + Num(*cl) +
                        " L/h = " + Num(start_auc) + " mg·h/L");
  struct Threshold {
    const char* field;
    const char* multiple_field;
    double default_multiple;
    const char* why;
  };
  const Threshold thresholds[] = {
      {"tox_auc50", "tox_auc50_multiple", 30,
       "the exposure giving 50% DLT, assumed at 30x the start-dose exposure (3x the exposure at "
       "the animal NOAEL's human equivalent when the safety factor is 10)"},
      {"response_auc50", "response_auc50_multiple", 10,
       "the exposure giving half the maximal response, assumed at 10x the start-dose exposure "
       "(the human equivalent of the NOAEL when the safety factor is 10)"},
  };
  for (const Threshold& t : thresholds) {
    FEDRX_ASSIGN_OR_RETURN(const double given, NumberArg(args, t.field, 0));
    if (given < 0) {
      return core::InvalidArgument(
          std::string(t.field) + " must be >= 0 (0: derive), got " + Num(given),
          std::string("args.") + t.field);
    }
    FEDRX_ASSIGN_OR_RETURN(const double multiple,
                           NumberArg(args, t.multiple_field, t.default_multiple));
    if (multiple <= 0) {
      return core::InvalidArgument(std::string(t.multiple_field) + " must be > 0",
                                   std::string("args.") + t.multiple_field);
    }
    if (given > 0) {
      out[t.field] = given;
      assumptions.push_back(std::string(t.field) + " = " + Num(given) + " mg·h/L as given");
    } else {
      out[t.field] = multiple * start_auc;
      assumptions.push_back(std::string(t.field) + " = " + Num(multiple) + " x " + Num(start_auc) +
                            " = " + Num(multiple * start_auc) + " mg·h/L: " +
                            (multiple == t.default_multiple ? t.why : "multiple as given"));
    }
  }
  out["assumptions"] = std::move(assumptions);
  return out;
}

core::Result<json> FirstInHumanVerdict(const json& args, const json& run) {
  FEDRX_RETURN_IF_ERROR(RequireObject(args));
  FEDRX_ASSIGN_OR_RETURN(const double ct_tox_threshold, NumberArg(args, "ct_tox_threshold", 0.5));
  FEDRX_ASSIGN_OR_RETURN(const double p_dlt_limit, NumberArg(args, "p_dlt_limit", 0.05));
  FEDRX_ASSIGN_OR_RETURN(const std::size_t index, IndexArg(args, "structure_index"));
  if (ct_tox_threshold <= 0 || ct_tox_threshold > 1) {
    return core::InvalidArgument("ct_tox_threshold must be in (0, 1]", "args.ct_tox_threshold");
  }
  if (p_dlt_limit <= 0 || p_dlt_limit >= 1) {
    return core::InvalidArgument("p_dlt_limit must be in (0, 1)", "args.p_dlt_limit");
  }
  if (!run.is_object()) {
    return core::InvalidArgument("the run record must be an object", "run");
  }
  return VerdictBuilder(run, ct_tox_threshold, p_dlt_limit, index).Build();
}

core::Result<json> RankCandidates(const json& args, const json& run) {
  FEDRX_RETURN_IF_ERROR(RequireObject(args));
  if (!run.is_object()) return core::InvalidArgument("the run record must be an object", "run");
  const json* input = Member(run, "input");
  const json empty = json::object();
  if (input == nullptr) input = &empty;
  FEDRX_ASSIGN_OR_RETURN(
      const double threshold,
      NumberArg(args, "threshold", Number(*input, "flag_threshold").value_or(0.5)));
  if (threshold < 0 || threshold > 1) {
    return core::InvalidArgument("threshold must be in [0, 1], got " + Num(threshold),
                                 "args.threshold");
  }
  constexpr double kFlagWeight = 0.05, kPositiveSet = 0.5, kOutOfDomain = 0.1;
  const std::string rule =
      "score = CT_TOX probability + " + Num(kPositiveSet) +
      " if the CT_TOX prediction set is \"positive\" + " + Num(kFlagWeight) +
      " per flagged toxicity task (probability >= " + Num(threshold) +
      " or prediction set \"positive\", tox21 and toxcast) + " + Num(kOutOfDomain) +
      " if any model finds the structure outside its applicability domain; lower ranks first; "
      "ties go to fewer flags, then input order; structures without a CT_TOX risk (clinical "
      "step missing or structure refused) rank after all others";

  json missing = json::array();
  for (const char* id : {"tox", "toxcast", "clinical"}) {
    if (std::optional<std::string> gap = StepGap(run, id)) {
      missing.push_back({{"step", id}, {"reason", *gap}});
    }
  }
  std::vector<std::pair<std::string, const json*>> panels;
  for (const char* id : {"tox", "toxcast"}) {
    if (const json* out = StepOutput(run, id)) panels.emplace_back(id, out);
  }
  const json* clinical = StepOutput(run, "clinical");

  const json* structures = Member(*input, "structures");
  std::size_t n = structures != nullptr && structures->is_array() ? structures->size() : 0;
  if (n == 0) {
    for (const auto& [id, out] : panels) {
      if (const json* r = Member(*out, "results"); r && r->is_array()) n = std::max(n, r->size());
    }
  }
  const json* names = Member(*input, "names");

  struct Row {
    std::size_t index = 0;
    json entry;
    bool has_risk = false;
    double score = 0;
    std::size_t flags = 0;
  };
  std::vector<Row> rows;
  for (std::size_t i = 0; i < n; ++i) {
    Row row;
    row.index = i;
    json reasons = json::array();
    std::string structure;
    if (const json* s = Element(structures, i); s && s->is_string())
      structure = s->get<std::string>();
    // Flags over every panel that answered this structure.
    std::set<std::string> classes;
    bool in_domain = true, any_domain = false;
    for (const auto& [id, out] : panels) {
      const json* r = Element(Member(*out, "results"), i);
      if (r == nullptr) continue;
      if (structure.empty()) structure = Text(*r, "input");
      if (std::optional<std::string> why = Refusal(*r)) {
        reasons.push_back(id + " refused the structure (" + why.value() + ")");
        continue;
      }
      auto flags = FlagStructure({out}, {"steps." + id}, i, threshold);
      if (!flags.ok()) {
        reasons.push_back(id + ": " + flags.status().message());
        continue;
      }
      row.flags += flags->evidence.size();
      for (const FlaggedTask& f : flags->evidence) {
        reasons.push_back(f.panel + " " + f.task + " flagged (probability " + Num(f.probability) +
                          (f.prediction_set.empty() ? "" : ", set " + f.prediction_set) + ")");
      }
      for (const ClassEvidence& c : flags->classes) classes.insert(c.organ_class);
      const json* domain = Member(*r, "domain");
      if (std::optional<bool> d = domain ? Bool(*domain, "in_domain") : std::nullopt) {
        any_domain = true;
        if (!*d) {
          in_domain = false;
          reasons.push_back("outside the " + Text(*out, "panel") + " model's applicability domain");
        }
      }
    }
    json ct_tox = nullptr, set = nullptr, approval = nullptr;
    if (clinical != nullptr) {
      const json* r = Element(Member(*clinical, "clinical"), i);
      if (r != nullptr) {
        if (std::optional<std::string> why = Refusal(*r)) {
          reasons.push_back("clinical refused the structure (" + *why + ")");
        } else {
          if (std::optional<std::size_t> t = TaskIndex(r, "CT_TOX")) {
            const json& task = (*Member(*r, "tasks"))[*t];
            if (std::optional<double> p = Number(task, "probability")) {
              ct_tox = *p;
              set = Text(task, "prediction_set");
              row.has_risk = true;
              row.score = *p + (set == "positive" ? kPositiveSet : 0);
              reasons.push_back("CT_TOX risk " + Num(*p) + " (prediction set " +
                                set.get<std::string>() + ")");
            }
          }
          if (std::optional<std::size_t> t = TaskIndex(r, "FDA_APPROVED")) {
            if (auto p = Number((*Member(*r, "tasks"))[*t], "probability")) approval = *p;
          }
          if (const json* d = Member(*r, "domain")) {
            if (std::optional<bool> in = Bool(*d, "in_domain")) {
              any_domain = true;
              if (!*in) {
                in_domain = false;
                reasons.push_back("outside the ClinTox model's applicability domain");
              }
            }
          }
        }
      }
    }
    row.score += kFlagWeight * static_cast<double>(row.flags) + (in_domain ? 0 : kOutOfDomain);
    row.entry = {{"structure", structure},
                 {"score", row.has_risk ? json(row.score) : json(nullptr)},
                 {"ct_tox", ct_tox},
                 {"prediction_set", set},
                 {"approval_probability", approval},
                 {"flags", row.flags},
                 {"organ_classes", std::vector<std::string>(classes.begin(), classes.end())},
                 {"in_domain", any_domain ? json(in_domain) : json(nullptr)},
                 {"reasons", std::move(reasons)}};
    if (const json* name = Element(names, i); name && name->is_string() && !name->empty()) {
      row.entry["name"] = *name;
    }
    rows.push_back(std::move(row));
  }
  std::stable_sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
    if (a.has_risk != b.has_risk) return a.has_risk;
    if (a.score != b.score) return a.score < b.score;
    if (a.flags != b.flags) return a.flags < b.flags;
    return a.index < b.index;
  });
  json ranking = json::array();
  for (std::size_t r = 0; r < rows.size(); ++r) {
    rows[r].entry["rank"] = r + 1;
    rows[r].entry["index"] = rows[r].index;
    ranking.push_back(rows[r].entry);
  }
  std::string summary;
  if (rows.empty()) {
    summary = "no structures to rank";
  } else {
    const json& best = rows.front().entry;
    const std::string label = best.contains("name") ? best["name"].get<std::string>()
                                                    : best["structure"].get<std::string>();
    std::size_t out_of_domain = 0;
    for (const Row& row : rows) {
      if (row.entry["in_domain"] == json(false)) ++out_of_domain;
    }
    summary = "first: " + label;
    if (rows.front().has_risk) {
      summary += " (score " + Num(rows.front().score) + ", CT_TOX " +
                 Num(best["ct_tox"].get<double>()) + ", " + std::to_string(rows.front().flags) +
                 " tox flag" + (rows.front().flags == 1 ? "" : "s") + ")";
    } else {
      summary += " (no CT_TOX risk available)";
    }
    summary += " of " + std::to_string(rows.size()) + " ranked";
    if (out_of_domain > 0) summary += "; " + std::to_string(out_of_domain) + " out of domain";
    if (!missing.empty()) summary += "; " + std::to_string(missing.size()) + " step(s) missing";
  }
  return json{{"ranking", std::move(ranking)},
              {"rule", rule},
              {"threshold", threshold},
              {"summary", summary},
              {"missing", std::move(missing)}};
}

}  // namespace fedrx::orchestrator
