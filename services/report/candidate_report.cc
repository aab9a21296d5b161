#include "services/report/candidate_report.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "services/report/html.h"
#include "services/report/json_view.h"
#include "services/report/svg.h"

namespace fedrx::report {

namespace {

using nlohmann::json;

// Everything the sections add to: the page, the chart data, the section list.
struct Ctx {
  const json& run;
  HtmlWriter w;
  json charts = json::object();
  json sections = json::array();
  std::set<std::string> chart_names;
  double threshold = 0.5;  // the workflow's flag threshold, for the tox charts

  // A unique, attribute-safe chart name built from `base`.
  std::string ChartName(std::string_view base) {
    std::string name;
    for (char c : base) {
      const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '_';
      name += ok ? c : '_';
    }
    if (name.size() > 80) name.resize(80);
    std::string unique = name;
    for (int n = 2; chart_names.count(unique) > 0; ++n) unique = name + "-" + std::to_string(n);
    chart_names.insert(unique);
    return unique;
  }

  void BeginSection(const std::string& id, const std::string& title) {
    w.Open("section", {{"id", id}});
    w.Element("h2", title);
    sections.push_back({{"id", id}, {"title", title}, {"available", true}, {"reason", ""}});
  }
  // Marks the current section unavailable (its first reason is kept).
  void SectionUnavailable(const std::string& reason) {
    json& s = sections.back();
    if (s["available"].get<bool>()) {
      s["available"] = false;
      s["reason"] = reason;
    }
    w.Unavailable(reason);
  }
  void EndSection() { w.Close(); }
};

const json& Steps(const json& run) { return Arr(run, "steps"); }

// The steps calling `call` (a body type or local function name), in order.
std::vector<const json*> StepsCalling(const json& run, std::string_view call) {
  std::vector<const json*> out;
  for (const json& s : Steps(run)) {
    if (s.is_object() && Str(s, "call") == call) out.push_back(&s);
  }
  return out;
}

// Why a step's output cannot be shown, or nullopt when it can.
std::optional<std::string> StepUnavailable(const json& step) {
  const std::string id = Str(step, "id", "?");
  const std::string state = Str(step, "state", "unknown");
  if (state == "succeeded") {
    if (Field(step, "output") != nullptr && Field(step, "output")->is_object()) return std::nullopt;
    return "step " + id + " succeeded but its output is not stored";
  }
  if (state == "failed") {
    const json& err = Obj(step, "error");
    std::string r = "step " + id + " failed";
    const std::string code = Str(err, "code");
    if (!code.empty()) r += " (" + code + ")";
    const std::string msg = Str(err, "message");
    if (!msg.empty()) r += ": " + msg;
    const std::string where = Str(err, "where");
    if (!where.empty()) r += " [" + where + "]";
    return OneLine(r, 600);
  }
  if (state == "skipped") {
    const std::string why = Str(step, "skip_reason");
    return OneLine("step " + id + " was skipped" + (why.empty() ? "" : ": " + why), 600);
  }
  return "step " + id + " is " + state;
}

std::string ModelText(const json& model) {
  if (!model.is_object() || model.empty()) return "";
  std::string s = Str(model, "study_id", "?");
  const json* v = Field(model, "model_version");
  if (v != nullptr) s += " v" + Text(*v);
  return s;
}

std::string SetColor(const std::string& set) {
  if (set == "positive") return "#c0392b";
  if (set == "negative") return "#3a9a5b";
  if (set == "empty") return "#7b5ea7";
  return "#8a94a6";  // both / uncalibrated
}

void RenderModelLine(Ctx& c, const json& model, std::string_view what) {
  if (!model.is_object() || model.empty()) return;
  std::string s = std::string(what) + ": study " + Str(model, "study_id", "?") +
                  ", model version " + Str(model, "model_version", "?");
  const std::int64_t cal = Int(model, "calibration_samples");
  if (cal > 0) {
    s += ", calibrated on " + std::to_string(cal) + " site validation rows (version " +
         Str(model, "calibration_version", "?") + ")";
  } else {
    s += ", uncalibrated";
  }
  c.w.Element("p", s, {{"class", "muted"}});
  const std::string method = Str(model, "method");
  if (!method.empty()) c.w.Element("p", "Method: " + method, {{"class", "muted"}});
}

// A service's Working: method, guidance, the steps table, notes.
void RenderWorking(Ctx& c, const json& working, std::string_view heading) {
  if (!working.is_object()) return;
  const json& steps = Arr(working, "steps");
  const std::string method = Str(working, "method");
  if (steps.empty() && method.empty()) return;
  c.w.Element("h3", heading);
  if (!method.empty()) c.w.Element("p", "Method: " + method);
  const std::string guidance = Str(working, "guidance");
  if (!guidance.empty()) c.w.Element("p", "Guidance: " + guidance, {{"class", "muted"}});
  std::vector<std::vector<std::string>> rows;
  for (const json& st : steps) {
    std::string inputs;
    for (const json& q : Arr(st, "inputs")) {
      if (!inputs.empty()) inputs += "; ";
      inputs += Str(q, "name") + " = " + Num(Dbl(q, "value"), 6);
      const std::string unit = Str(q, "unit");
      if (!unit.empty()) inputs += " " + unit;
    }
    const json& r = Obj(st, "result");
    std::string result = Str(r, "name") + " = " + Num(Dbl(r, "value"), 6);
    const std::string unit = Str(r, "unit");
    if (!unit.empty()) result += " " + unit;
    rows.push_back({Str(st, "label"), Str(st, "formula"), inputs, result, Str(st, "reference")});
  }
  if (!rows.empty()) c.w.Table({"Step", "Formula", "Inputs", "Result", "Reference"}, rows);
  const json& notes = Arr(working, "notes");
  if (!notes.empty()) {
    c.w.Open("ul");
    for (const json& n : notes) c.w.Element("li", Text(n, 1000));
    c.w.Close();
  }
}

// One structure's task predictions as bars (probability, set and p-values)
// and a table. Returns false when there was nothing to draw.
void RenderPredictions(Ctx& c, const json& prediction, const std::string& chart_base,
                       const std::string& title, double reference) {
  const json& tasks = Arr(prediction, "tasks");
  if (tasks.empty()) {
    c.w.Unavailable("no task was predicted for this structure");
    return;
  }
  constexpr std::size_t kMaxBars = 60;
  std::vector<svg::Bar> bars;
  json data = json::array();
  std::vector<std::vector<std::string>> rows;
  for (const json& t : tasks) {
    const std::string task = Str(t, "task", "?");
    const double p = Dbl(t, "probability");
    const std::string set = Str(t, "prediction_set", "?");
    const double pn = Dbl(t, "p_negative");
    const double pp = Dbl(t, "p_positive");
    const bool calibrated = Bool(t, "calibrated");
    if (bars.size() < kMaxBars) {
      svg::Bar b;
      b.label = task;
      b.value = p;
      b.note = "{" + set + "}" +
               (calibrated ? "  p-=" + Num(pn, 2) + " p+=" + Num(pp, 2) : "  uncalibrated");
      b.color = SetColor(set);
      bars.push_back(std::move(b));
    }
    data.push_back({{"task", task},
                    {"probability", std::isfinite(p) ? json(p) : json()},
                    {"prediction_set", set},
                    {"p_negative", std::isfinite(pn) ? json(pn) : json()},
                    {"p_positive", std::isfinite(pp) ? json(pp) : json()}});
    rows.push_back({task, Num(p, 3), set, Num(pn, 3), Num(pp, 3), Num(Dbl(t, "credibility"), 3),
                    Num(Dbl(t, "confidence"), 3), calibrated ? "yes" : "no"});
  }
  svg::ChartOptions o;
  o.name = c.ChartName(chart_base);
  o.title = title;
  o.x_label = "predicted probability (colour: conformal prediction set)";
  o.min = 0;
  o.max = 1;
  c.w.Raw(svg::HorizontalBars(o, bars, reference));
  c.charts[o.name] = data;
  if (tasks.size() > kMaxBars) {
    c.w.Element("p",
                "The chart shows the first " + std::to_string(kMaxBars) + " of " +
                    std::to_string(tasks.size()) + " tasks; the table lists all.",
                {{"class", "muted"}});
  }
  c.w.Table({"Task", "Probability", "Prediction set", "p (negative)", "p (positive)", "Credibility",
             "Confidence", "Calibrated"},
            rows, {false, true, false, true, true, true, true, false});
}

void RenderDomain(Ctx& c, const json& domain) {
  if (!domain.is_object()) return;
  if (!Bool(domain, "calibrated")) {
    c.w.Element("p", "Applicability domain: no domain statistics (not assessed).",
                {{"class", "muted"}});
    return;
  }
  const bool in = Bool(domain, "in_domain", true);
  c.w.Element("p",
              std::string("Applicability domain: ") + (in ? "in domain" : "OUT OF DOMAIN") +
                  " (score " + Num(Dbl(domain, "score"), 3) +
                  ", p = " + Num(Dbl(domain, "p_value"), 3) + ", threshold " +
                  Num(Dbl(domain, "threshold"), 3) + ")",
              {{"class", in ? "muted" : "unavailable"}});
}

// The structure heading: the input as given and its canonical form.
std::string StructureTitle(const json& r, std::size_t i) {
  std::string s = "Structure " + std::to_string(i + 1) + ": " + OneLine(Str(r, "input", "?"), 120);
  const std::string canonical = Str(r, "canonical_smiles");
  if (!canonical.empty() && canonical != Str(r, "input")) s += " (" + OneLine(canonical, 120) + ")";
  return s;
}

bool StructureRefused(Ctx& c, const json& r) {
  const std::string code = Str(r, "error_code");
  if (code.empty()) return false;
  c.w.Unavailable("structure refused (" + code + "): " + Str(r, "error") +
                  (Str(r, "error_where").empty() ? "" : " [" + Str(r, "error_where") + "]"));
  return true;
}

// A ranking of several structures (the lead-triage workflow's output).
void RenderRanking(Ctx& c, const json& out) {
  const std::string summary = Str(out, "summary");
  if (!summary.empty()) c.w.Element("p", summary, {{"class", "verdict verdict-incomplete"}});
  const std::string rule = Str(out, "rule");
  if (!rule.empty()) c.w.Element("p", "Ranking rule: " + rule, {{"class", "muted"}});
  std::vector<svg::Bar> bars;
  json data = json::array();
  std::vector<std::vector<std::string>> rows;
  for (const json& e : Arr(out, "ranking")) {
    std::string label = Str(e, "name");
    if (label.empty()) label = Str(e, "structure", "?");
    const double score = Dbl(e, "score");
    std::string classes;
    for (const json& x : Arr(e, "organ_classes")) {
      classes += (classes.empty() ? "" : ", ") + Text(x, 120);
    }
    std::string reasons;
    for (const json& x : Arr(e, "reasons")) reasons += (reasons.empty() ? "" : "; ") + Text(x, 300);
    const json* in_domain = Field(e, "in_domain");
    const std::string domain = in_domain == nullptr || !in_domain->is_boolean()
                                   ? "-"
                                   : (in_domain->get<bool>() ? "in" : "OUT");
    rows.push_back({Str(e, "rank", "-"), label, Num(score, 3), Num(Dbl(e, "ct_tox"), 3),
                    Num(Dbl(e, "approval_probability"), 3), Str(e, "flags", "-"), classes, domain,
                    reasons});
    if (bars.size() < 40 && std::isfinite(score)) {
      svg::Bar b;
      b.label = "#" + Str(e, "rank", "?") + " " + label;
      b.value = score;
      b.note = "CT_TOX " + Num(Dbl(e, "ct_tox"), 2) + ", " + Str(e, "flags", "0") + " flags" +
               (domain == "OUT" ? ", out of domain" : "");
      b.color = domain == "OUT" ? "#7b5ea7" : "#3b6fb6";
      bars.push_back(std::move(b));
      data.push_back({{"rank", Int(e, "rank")}, {"label", label}, {"score", score}});
    }
  }
  if (!bars.empty()) {
    svg::ChartOptions o;
    o.name = c.ChartName("ranking");
    o.title = "Ranking score (lower first)";
    o.x_label = "score";
    c.w.Raw(svg::HorizontalBars(o, bars));
    c.charts[o.name] = data;
  }
  c.w.Table({"Rank", "Structure", "Score", "CT_TOX", "Approval", "Tox flags", "Organ classes",
             "Domain", "Reasons"},
            rows, {true, false, true, true, true, true, false, false, false});
  const json& missing = Arr(out, "missing");
  if (!missing.empty()) {
    c.w.Element("h3", "Missing evidence");
    std::vector<std::vector<std::string>> mrows;
    for (const json& m : missing) mrows.push_back({Str(m, "step"), Str(m, "reason")});
    c.w.Table({"Step", "Reason"}, mrows);
  }
}

void RenderVerdict(Ctx& c) {
  c.BeginSection("verdict", "Verdict");
  const json& out = Obj(c.run, "output");
  const std::string verdict = Str(out, "verdict");
  if (verdict.empty() && !Arr(out, "ranking").empty()) {
    RenderRanking(c, out);
  } else if (verdict.empty()) {
    c.SectionUnavailable("the run has no verdict (state " + Str(c.run, "state", "unknown") + ")");
  } else {
    std::string cls = "verdict";
    if (verdict == "proceed" || verdict == "proceed_with_conditions" ||
        verdict == "do_not_proceed" || verdict == "incomplete") {
      cls += " verdict-" + verdict;
    }
    std::string shown = verdict;
    std::replace(shown.begin(), shown.end(), '_', ' ');
    c.w.Element("p", shown, {{"class", cls}});
    const std::string summary = Str(out, "summary");
    if (!summary.empty()) c.w.Element("p", summary);
    const json& conditions = Arr(out, "conditions");
    if (!conditions.empty()) {
      c.w.Element("h3", "Conditions");
      c.w.Open("ul");
      for (const json& x : conditions) c.w.Element("li", Text(x, 1000));
      c.w.Close();
    }
    const json& findings = Arr(out, "findings");
    if (!findings.empty()) {
      c.w.Element("h3", "Findings (each number with the step, field and model that produced it)");
      std::vector<std::vector<std::string>> rows;
      for (const json& f : findings) {
        const json* v = Field(f, "value");
        rows.push_back({Str(f, "label"), v == nullptr ? "-" : Text(*v, 120), Str(f, "unit"),
                        Str(f, "step"), Str(f, "field"), ModelText(Obj(f, "model"))});
      }
      c.w.Table({"Finding", "Value", "Unit", "Step", "Field", "Model (study vN)"}, rows,
                {false, true, false, false, false, false});
    }
    const json& missing = Arr(out, "missing");
    if (!missing.empty()) {
      c.w.Element("h3", "Missing evidence");
      std::vector<std::vector<std::string>> rows;
      for (const json& m : missing) rows.push_back({Str(m, "step"), Str(m, "reason")});
      c.w.Table({"Step", "Reason"}, rows);
    }
  }
  const json& input = Obj(c.run, "input");
  if (!input.empty()) {
    c.w.Element("h3", "Candidate as given");
    std::vector<std::vector<std::string>> rows;
    for (auto it = input.begin(); it != input.end(); ++it)
      rows.push_back({it.key(), Text(*it, 400)});
    c.w.Table({"Input", "Value"}, rows);
  }
  c.EndSection();
}

void RenderToxicity(Ctx& c) {
  c.BeginSection("toxicity", "Toxicity panel with uncertainty");
  const auto steps = StepsCalling(c.run, "PredictToxicity");
  if (steps.empty()) c.SectionUnavailable("the workflow has no toxicity step");
  for (const json* step : steps) {
    const std::string id = Str(*step, "id", "tox");
    const json& out = Obj(*step, "output");
    std::string panel = Str(out, "panel");
    if (panel.empty()) panel = Str(Obj(*step, "request"), "panel", "tox21");
    c.w.Element("h3", "Panel " + panel + " (step " + id + ")");
    if (auto why = StepUnavailable(*step)) {
      c.SectionUnavailable(*why);
      continue;
    }
    RenderModelLine(c, Obj(out, "model"), "Model");
    const double conf = Dbl(out, "confidence");
    c.w.Element("p",
                "Bars: the model's probability per task; colour: the conformal prediction set "
                "at confidence " +
                    Num(conf, 3) +
                    " (red positive, green negative, grey both/uncertain, purple empty); the "
                    "dashed line is the flag threshold " +
                    Num(c.threshold, 3) + ".",
                {{"class", "muted"}});
    const json& results = Arr(out, "results");
    if (results.empty()) c.SectionUnavailable("step " + id + " returned no structure");
    for (std::size_t i = 0; i < results.size(); ++i) {
      const json& r = results[i];
      c.w.Element("h3", StructureTitle(r, i));
      if (StructureRefused(c, r)) continue;
      RenderDomain(c, Obj(r, "domain"));
      RenderPredictions(c, r, "tox-" + id + "-" + std::to_string(i),
                        panel + " panel, structure " + std::to_string(i + 1), c.threshold);
    }
    RenderWorking(c, Obj(out, "working"), "How the p-values and the domain flag are computed");
  }
  c.EndSection();
}

void RenderClinical(Ctx& c) {
  c.BeginSection("clinical", "Clinical risk, probability of success and side-effect profile");
  const auto steps = StepsCalling(c.run, "AssessClinical");
  if (steps.empty()) c.SectionUnavailable("the workflow has no clinical step");
  for (const json* step : steps) {
    const std::string id = Str(*step, "id", "clinical");
    c.w.Element("h3", "Step " + id);
    if (auto why = StepUnavailable(*step)) {
      c.SectionUnavailable(*why);
      continue;
    }
    const json& out = Obj(*step, "output");
    RenderModelLine(c, Obj(out, "model"), "ClinTox model");
    const json& clinical = Arr(out, "clinical");
    const json& success = Arr(out, "success");
    const json& side = Arr(out, "side_effects");
    for (std::size_t i = 0; i < clinical.size(); ++i) {
      const json& r = clinical[i];
      c.w.Element("h3", StructureTitle(r, i));
      if (StructureRefused(c, r)) continue;
      RenderDomain(c, Obj(r, "domain"));
      RenderPredictions(c, r, "clinical-" + id + "-" + std::to_string(i),
                        "Clinical-trial toxicity (CT_TOX) and approval (FDA_APPROVED)", svg::kNone);
      // Phase-transition success, base rate against adjusted.
      const json& s = i < success.size() ? success[i] : json::object();
      const json& transitions = Arr(s, "transitions");
      if (transitions.empty()) {
        c.w.Unavailable("no phase-transition estimate for this structure");
      } else {
        c.w.Element("p", "Therapeutic area: " + Str(s, "therapeutic_area", "all indications") +
                             "; CT_TOX risk used " + Num(Dbl(s, "risk"), 3) +
                             ", log likelihood ratio " + Num(Dbl(s, "log_likelihood_ratio"), 3) +
                             "; likelihood of approval from phase I " +
                             Pct(Dbl(s, "base_likelihood_of_approval")) + " (base) -> " +
                             Pct(Dbl(s, "adjusted_likelihood_of_approval")) + " (adjusted).");
        std::vector<std::string> cats;
        svg::Series base{"base rate", {}}, adjusted{"adjusted for the candidate", {}};
        json data = json::array();
        std::vector<std::vector<std::string>> rows;
        for (const json& t : transitions) {
          std::string name = Str(t, "transition", "?");
          std::string shown = name;
          std::replace(shown.begin(), shown.end(), '_', ' ');
          cats.push_back(shown);
          base.values.push_back(Dbl(t, "base_rate"));
          adjusted.values.push_back(Dbl(t, "adjusted"));
          data.push_back({{"transition", name},
                          {"base_rate",
                           std::isfinite(Dbl(t, "base_rate")) ? json(Dbl(t, "base_rate")) : json()},
                          {"adjusted",
                           std::isfinite(Dbl(t, "adjusted")) ? json(Dbl(t, "adjusted")) : json()}});
          rows.push_back(
              {shown, Pct(Dbl(t, "base_rate")), Pct(Dbl(t, "adjusted")), Num(Dbl(t, "weight"), 3)});
        }
        cats.push_back("approval from phase I");
        base.values.push_back(Dbl(s, "base_likelihood_of_approval"));
        adjusted.values.push_back(Dbl(s, "adjusted_likelihood_of_approval"));
        svg::ChartOptions o;
        o.name = c.ChartName("phase-" + id + "-" + std::to_string(i));
        o.title = "Probability of success by phase transition";
        o.y_label = "probability";
        o.min = 0;
        o.max = 1;
        c.w.Raw(svg::GroupedBars(o, cats, {base, adjusted}));
        c.charts[o.name] = data;
        c.w.Table({"Transition", "Base rate", "Adjusted", "Weight of the risk evidence"}, rows,
                  {false, true, true, true});
        const std::string source = Str(s, "source");
        if (!source.empty()) c.w.Element("p", "Base rates: " + source, {{"class", "muted"}});
      }
      // Side-effect profile.
      c.w.Element("h3", "Side-effect profile (organ classes)");
      if (i < side.size() && side[i].is_object() && !Arr(side[i], "tasks").empty()) {
        RenderModelLine(c, Obj(out, "side_effect_model"), "Side-effect model");
        if (!StructureRefused(c, side[i])) {
          RenderPredictions(c, side[i], "side-effects-" + id + "-" + std::to_string(i),
                            "Side-effect organ classes", svg::kNone);
        }
      } else {
        std::string why = Str(out, "side_effects_unavailable");
        if (why.empty()) why = "the answer has no side-effect profile for this structure";
        c.w.Unavailable(why);
      }
    }
    if (clinical.empty()) c.SectionUnavailable("step " + id + " returned no structure");
    RenderWorking(c, Obj(out, "working"), "Likelihood ratio and adjustment");
  }
  c.EndSection();
}

void RenderDose(Ctx& c) {
  c.BeginSection("dose", "Dose translation: human equivalent dose and MRSD");
  const auto steps = StepsCalling(c.run, "TranslateDose");
  if (steps.empty()) c.SectionUnavailable("the workflow has no dose-translation step");
  for (const json* step : steps) {
    const std::string id = Str(*step, "id", "dose");
    if (steps.size() > 1) c.w.Element("h3", "Step " + id);
    if (auto why = StepUnavailable(*step)) {
      c.SectionUnavailable(*why);
      continue;
    }
    const json& out = Obj(*step, "output");
    const std::string chosen = Str(out, "chosen_species");
    c.w.Element("p",
                "MRSD " + Num(Dbl(out, "mrsd_mg"), 4) + " mg (" +
                    Num(Dbl(out, "mrsd_mg_per_kg"), 4) + " mg/kg for a " +
                    Num(Dbl(out, "human_weight_kg"), 4) + " kg adult) = HED " +
                    Num(Dbl(out, "hed_mg_per_kg"), 4) + " mg/kg of the " + chosen +
                    " / safety factor " + Num(Dbl(out, "safety_factor"), 4) + ".",
                {{"class", "verdict verdict-incomplete"}});
    const std::string species_reason = Str(out, "species_reason");
    if (!species_reason.empty()) c.w.Element("p", "Species: " + species_reason);
    const std::string sf_reason = Str(out, "safety_factor_reason");
    if (!sf_reason.empty()) c.w.Element("p", "Safety factor: " + sf_reason);
    std::vector<svg::Bar> bars;
    json data = json::array();
    std::vector<std::vector<std::string>> rows;
    for (const json& h : Arr(out, "heds")) {
      const std::string sp = Str(h, "species", "?");
      svg::Bar b;
      b.label = sp;
      b.value = Dbl(h, "hed_mg_per_kg");
      b.note = "NOAEL " + Num(Dbl(h, "noael_mg_per_kg"), 4) + " mg/kg" +
               (sp == chosen ? " (most sensitive)" : "");
      b.color = sp == chosen ? "#c0392b" : "#3b6fb6";
      bars.push_back(b);
      data.push_back(
          {{"species", sp}, {"hed_mg_per_kg", std::isfinite(b.value) ? json(b.value) : json()}});
      rows.push_back({sp, Num(Dbl(h, "noael_mg_per_kg"), 4), Num(Dbl(h, "body_weight_kg"), 4),
                      Num(Dbl(h, "km"), 4), Num(Dbl(h, "conversion_factor"), 4),
                      Num(Dbl(h, "hed_mg_per_kg"), 4), Str(h, "source")});
    }
    if (bars.empty()) {
      c.w.Unavailable("the translation lists no species");
    } else {
      svg::ChartOptions o;
      o.name = c.ChartName("hed-" + id);
      o.title = "Human equivalent dose per species (dashed: MRSD per kg)";
      o.x_label = "mg/kg";
      c.w.Raw(svg::HorizontalBars(o, bars, Dbl(out, "mrsd_mg_per_kg")));
      c.charts[o.name] = data;
      c.w.Table({"Species", "NOAEL mg/kg", "Body weight kg", "Km", "Conversion factor", "HED mg/kg",
                 "Source"},
                rows, {false, true, true, true, true, true, false});
    }
    RenderWorking(c, Obj(out, "working"), "Working");
  }
  c.EndSection();
}

struct Design {
  std::string name;
  const json* oc = nullptr;
};

void RenderEscalation(Ctx& c) {
  c.BeginSection("escalation", "Dose escalation: operating characteristics and virtual trial");
  const auto trials = StepsCalling(c.run, "RunVirtualTrial");
  const auto escalations = StepsCalling(c.run, "SimulateEscalation");
  if (trials.empty() && escalations.empty()) {
    c.SectionUnavailable("the workflow has no escalation or virtual-trial step");
  }
  std::vector<Design> designs;
  std::vector<double> doses;  // mg, from the virtual trial
  for (const json* step : trials) {
    const std::string id = Str(*step, "id", "virtual_trial");
    c.w.Element("h3", "Virtual trial (step " + id + ")");
    if (auto why = StepUnavailable(*step)) {
      c.SectionUnavailable(*why);
      continue;
    }
    const json& out = Obj(*step, "output");
    const json& dose = Arr(out, "dose_mg");
    const json& pdlt = Arr(out, "p_dlt");
    const json& presp = Arr(out, "p_response");
    svg::Line dlt{"P(DLT)", {}}, resp{"P(response)", {}};
    std::vector<std::vector<std::string>> rows;
    json data = json::array();
    for (std::size_t d = 0; d < dose.size(); ++d) {
      const double mg = dose[d].is_number() ? dose[d].get<double>() : svg::kNone;
      const auto at = [&](const json& a) {
        return d < a.size() && a[d].is_number() ? a[d].get<double>() : svg::kNone;
      };
      if (doses.size() <= d) doses.push_back(mg);
      dlt.points.push_back({mg, at(pdlt)});
      resp.points.push_back({mg, at(presp)});
      rows.push_back({std::to_string(d + 1), Num(mg, 4), Num(at(Arr(out, "auc_median")), 4),
                      Num(at(Arr(out, "auc_p05")), 4) + " - " + Num(at(Arr(out, "auc_p95")), 4),
                      Num(at(pdlt), 3), Num(at(presp), 3)});
      data.push_back({{"dose_mg", std::isfinite(mg) ? json(mg) : json()},
                      {"p_dlt", std::isfinite(at(pdlt)) ? json(at(pdlt)) : json()}});
    }
    if (rows.empty()) {
      c.w.Unavailable("the virtual trial has no dose level");
    } else {
      svg::ChartOptions o;
      o.name = c.ChartName("virtual-trial-" + id);
      o.title = "Virtual population: probability of DLT and response per dose";
      o.x_label = "dose (mg)";
      o.y_label = "probability";
      o.min = 0;
      o.max = 1;
      c.w.Raw(svg::LineChart(o, {dlt, resp}));
      c.charts[o.name] = data;
      c.w.Table({"Level", "Dose mg", "AUC median", "AUC 5th - 95th pct", "P(DLT)", "P(response)"},
                rows, {true, true, true, true, true, true});
    }
    const json* oc = Field(out, "oc");
    if (oc != nullptr && oc->is_object()) {
      designs.push_back({Str(*oc, "design", "design") + " (" + id + ")", oc});
    }
    RenderWorking(c, Obj(out, "working"), "Virtual-trial working");
  }
  for (const json* step : escalations) {
    const std::string id = Str(*step, "id", "escalation");
    if (auto why = StepUnavailable(*step)) {
      c.w.Element("h3", "Escalation design (step " + id + ")");
      c.SectionUnavailable(*why);
      continue;
    }
    const json& out = Obj(*step, "output");
    designs.push_back({Str(out, "design", "design") + " (" + id + ")", &out});
  }
  if (!designs.empty()) {
    c.w.Element("h3", "Operating characteristics");
    std::size_t levels = 0;
    for (const Design& d : designs) levels = std::max(levels, Arr(*d.oc, "selection_pct").size());
    std::vector<std::string> cats;
    for (std::size_t l = 0; l < levels; ++l) {
      std::string cat = "level " + std::to_string(l + 1);
      if (l < doses.size() && std::isfinite(doses[l])) cat = Num(doses[l], 4) + " mg";
      cats.push_back(cat);
    }
    const auto chart = [&](const char* field, const char* base, const char* title,
                           const char* y_label) {
      std::vector<svg::Series> series;
      json data = json::object();
      for (const Design& d : designs) {
        svg::Series s{d.name, {}};
        for (const json& v : Arr(*d.oc, field)) {
          s.values.push_back(v.is_number() ? v.get<double>() : svg::kNone);
        }
        data[d.name] = Arr(*d.oc, field);
        series.push_back(std::move(s));
      }
      svg::ChartOptions o;
      o.name = c.ChartName(base);
      o.title = title;
      o.y_label = y_label;
      o.x_label = "dose level";
      c.w.Raw(svg::GroupedBars(o, cats, series));
      c.charts[o.name] = data;
    };
    chart("selection_pct", "oc-selection", "Selected as the maximum tolerated dose", "% of trials");
    chart("patients_mean", "oc-patients", "Patients treated per dose (mean)", "patients");
    chart("dlt_mean", "oc-dlts", "DLTs per dose (mean)", "DLTs");
    std::vector<std::vector<std::string>> rows;
    for (const Design& d : designs) {
      rows.push_back({d.name, Str(*d.oc, "trials"), Num(Dbl(*d.oc, "correct_selection_pct"), 3),
                      Num(Dbl(*d.oc, "early_stop_pct"), 3),
                      Num(Dbl(*d.oc, "patients_total_mean"), 3),
                      Num(Dbl(*d.oc, "dlt_total_mean"), 3)});
    }
    c.w.Table({"Design", "Simulated trials", "Correct selection %", "Early stop %",
               "Patients (mean)", "DLTs (mean)"},
              rows, {false, true, true, true, true, true});
    for (const json* step : escalations) {
      if (!StepUnavailable(*step)) {
        RenderWorking(c, Obj(Obj(*step, "output"), "working"),
                      "Escalation working (step " + Str(*step, "id") + ")");
      }
    }
  }
  c.EndSection();
}

void RenderAssays(Ctx& c, const json& assays, const std::string& chart_base,
                  const std::string& title) {
  if (assays.empty()) return;
  std::vector<svg::Bar> bars;
  json data = json::array();
  std::vector<std::vector<std::string>> rows;
  for (const json& a : assays) {
    const double odds = Dbl(a, "odds_ratio"), lo = Dbl(a, "ci_low"), hi = Dbl(a, "ci_high");
    const std::string assay = Str(a, "assay", "?");
    const bool sufficient = Bool(a, "sufficient_evidence");
    rows.push_back(
        {assay, Str(a, "clinical_label"),
         Str(a, "a") + "/" + Str(a, "b") + "/" + Str(a, "c") + "/" + Str(a, "d"),
         sufficient ? Num(odds, 3) + " [" + Num(lo, 3) + ", " + Num(hi, 3) + "]" : "insufficient",
         Num(Dbl(a, "p_value"), 3), Num(Dbl(a, "q_value"), 3),
         Bool(a, "significant") ? "yes" : "no", Str(a, "evidence")});
    if (sufficient && odds > 0 && std::isfinite(odds) && bars.size() < 30) {
      svg::Bar b;
      b.label = assay;
      b.value = std::log2(odds);
      if (lo > 0 && hi > 0 && std::isfinite(lo) && std::isfinite(hi)) {
        b.low = std::log2(lo);
        b.high = std::log2(hi);
      }
      b.note = "OR " + Num(odds, 3) + ", q " + Num(Dbl(a, "q_value"), 2);
      b.color = Bool(a, "significant") ? "#c0392b" : "#8a94a6";
      bars.push_back(b);
      data.push_back({{"assay", assay},
                      {"odds_ratio", odds},
                      {"ci_low", std::isfinite(lo) ? json(lo) : json()},
                      {"ci_high", std::isfinite(hi) ? json(hi) : json()}});
    }
  }
  if (!bars.empty()) {
    svg::ChartOptions o;
    o.name = c.ChartName(chart_base);
    o.title = title;
    o.x_label = "log2 odds ratio with 95% CI (red: significant after FDR)";
    c.w.Raw(svg::HorizontalBars(o, bars, 0.0));
    c.charts[o.name] = data;
  }
  c.w.Table({"Assay", "Clinical label", "a/b/c/d", "OR [95% CI]", "p", "q (BH)", "Significant",
             "Evidence"},
            rows, {false, false, true, true, true, true, false, false});
}

void RenderRecommendations(Ctx& c) {
  c.BeginSection("recommendations", "Reverse translation: recommended preclinical studies");
  for (const json* step : StepsCalling(c.run, "flag_organ_classes")) {
    if (StepUnavailable(*step)) continue;
    const json& out = Obj(*step, "output");
    const json& evidence = Arr(out, "evidence");
    std::vector<std::string> classes;
    for (const json& x : Arr(out, "organ_classes")) classes.push_back(Text(x, 120));
    std::string list;
    for (const std::string& s : classes) list += (list.empty() ? "" : ", ") + s;
    c.w.Element("p", "Organ classes flagged by the toxicity panel (step " + Str(*step, "id") +
                         "): " + (list.empty() ? "none" : list));
    if (!evidence.empty()) {
      std::vector<std::vector<std::string>> rows;
      for (const json& e : evidence) {
        std::string organs;
        for (const json& x : Arr(e, "organ_classes"))
          organs += (organs.empty() ? "" : ", ") + Text(x, 120);
        rows.push_back(
            {Str(e, "task"), Num(Dbl(e, "probability"), 3), Str(e, "prediction_set"), organs});
      }
      c.w.Table({"Task", "Probability", "Prediction set", "Organ classes"}, rows,
                {false, true, false, false});
    }
  }
  const auto steps = StepsCalling(c.run, "ReverseTranslate");
  if (steps.empty()) c.SectionUnavailable("the workflow has no reverse-translation step");
  for (const json* step : steps) {
    const std::string id = Str(*step, "id", "reverse");
    if (auto why = StepUnavailable(*step)) {
      c.SectionUnavailable(*why);
      continue;
    }
    const json& out = Obj(*step, "output");
    const std::int64_t sites = Int(out, "counts_sites");
    if (sites > 0) {
      c.w.Element("p",
                  "Association counts: study " + Str(out, "counts_study") + " v" +
                      Str(out, "counts_version") + ", summed over " + std::to_string(sites) +
                      " sites and " + Str(out, "counts_compounds") + " compounds" +
                      (Bool(out, "counts_secure") ? " by secure aggregation" : "") + ".",
                  {{"class", "muted"}});
    } else {
      c.w.Element("p", "No federated association counts yet: the organ-class table alone answers.",
                  {{"class", "muted"}});
    }
    const json& classes = Arr(out, "organ_classes");
    for (std::size_t k = 0; k < classes.size(); ++k) {
      const json& oc = classes[k];
      c.w.Element("h3", Str(oc, "organ_class", "?"));
      std::string terms;
      for (const json& t : Arr(oc, "matched_terms"))
        terms += (terms.empty() ? "" : ", ") + Text(t, 120);
      if (!terms.empty()) c.w.Element("p", "Matched terms: " + terms, {{"class", "muted"}});
      const std::string rationale = Str(oc, "rationale");
      if (!rationale.empty()) c.w.Element("p", rationale);
      const std::string none = Str(oc, "none_reason");
      if (!none.empty()) c.w.Unavailable(none);
      RenderAssays(c, Arr(oc, "assays"), "assoc-" + id + "-" + std::to_string(k),
                   "Assay associations: " + Str(oc, "organ_class", "?"));
      const json& endpoints = Arr(oc, "endpoints");
      if (!endpoints.empty()) {
        std::vector<std::vector<std::string>> rows;
        for (const json& e : endpoints) {
          rows.push_back({Str(e, "domain"), Str(e, "code"), Str(e, "note")});
        }
        c.w.Element("p", "SEND endpoints to examine in the in-vivo studies:");
        c.w.Table({"SEND domain", "Code", "Note"}, rows);
      }
      const std::string ref = Str(oc, "reference");
      if (!ref.empty()) c.w.Element("p", "Reference: " + ref, {{"class", "muted"}});
    }
    const json& labels = Arr(out, "label_associations");
    if (!labels.empty()) {
      c.w.Element("h3", "Clinical label associations");
      RenderAssays(c, labels, "assoc-" + id + "-labels", "Assay associations of clinical labels");
    }
    if (classes.empty() && labels.empty()) c.w.Unavailable("no organ class or label was asked for");
    RenderWorking(c, Obj(out, "working"), "Association statistics");
  }
  c.EndSection();
}

void RenderProvenance(Ctx& c) {
  c.BeginSection("provenance", "Provenance");
  const json& run = c.run;
  std::vector<std::vector<std::string>> facts = {
      {"Run id", Str(run, "run_id", "-")},
      {"Workflow", Str(run, "workflow", "-") + " version " + Str(run, "workflow_version", "-")},
      {"Workflow file", Str(run, "workflow_file", "-")},
      {"Workflow SHA-256", Str(run, "workflow_sha256", "-")},
      {"State", Str(run, "state", "-")},
      {"Created", FormatUtc(Int(run, "created_ms"))},
      {"Finished", FormatUtc(Int(run, "finished_ms"))}};
  c.w.Table({"", ""}, facts);
  const json& steps = Steps(run);
  if (steps.empty()) {
    c.SectionUnavailable("the run record lists no step");
    c.EndSection();
    return;
  }
  const std::int64_t t0 = Int(run, "created_ms");
  std::vector<svg::Span> spans;
  json data = json::array();
  std::vector<std::vector<std::string>> rows;
  std::vector<std::vector<std::string>> models;
  for (const json& s : steps) {
    const std::string id = Str(s, "id", "?");
    const std::string state = Str(s, "state", "unknown");
    const std::int64_t start = Int(s, "started_ms"), end = Int(s, "finished_ms");
    const double rs = start > 0 && t0 > 0 ? static_cast<double>(start - t0) / 1000.0 : 0.0;
    const double re = end > 0 && t0 > 0 ? static_cast<double>(end - t0) / 1000.0 : rs;
    spans.push_back({id, rs, re, state});
    data.push_back({{"step", id}, {"state", state}, {"start_s", rs}, {"end_s", re}});
    const json& output = Obj(s, "output");
    json prov = Obj(s, "provenance");
    if (prov.empty()) prov = Obj(output, "model");
    std::string detail;
    if (auto why = StepUnavailable(s); why && state != "succeeded") detail = *why;
    rows.push_back(
        {id, Str(s, "service"), Str(s, "call"), state, Str(s, "attempts", "0"),
         start > 0 && end >= start ? Num(static_cast<double>(end - start) / 1000.0, 3) : "-",
         ModelText(prov), detail});
    for (const char* key : {"model", "side_effect_model"}) {
      const json& m = Obj(output, key);
      if (m.empty() || Str(m, "study_id").empty()) continue;
      models.push_back({id, key, Str(m, "study_id"), Str(m, "model_version"),
                        Str(m, "preparation_hash"), Str(m, "calibration_samples"),
                        Str(m, "calibration_version")});
    }
    if (!Str(output, "counts_study").empty()) {
      models.push_back({id, "association counts", Str(output, "counts_study"),
                        Str(output, "counts_version"), "",
                        Str(output, "counts_compounds") + " compounds", ""});
    }
  }
  svg::ChartOptions o;
  o.name = c.ChartName("timeline");
  o.title = "Step timings";
  o.x_label = "seconds since the run started";
  c.w.Raw(svg::Gantt(o, spans));
  c.charts[o.name] = data;
  c.w.Table({"Step", "Service", "Call", "State", "Attempts", "Seconds", "Model", "Error / reason"},
            rows, {false, false, false, false, true, true, false, false});
  if (!models.empty()) {
    c.w.Element("h3", "Models and data behind the numbers");
    c.w.Table({"Step", "Role", "Study", "Version", "Preparation hash", "Calibration rows",
               "Calibration version"},
              models);
  }
  const std::string report_error = Str(run, "report_error");
  if (!report_error.empty()) c.w.Element("p", "Earlier report error: " + report_error);
  c.EndSection();
}

std::string CandidateName(const json& run) {
  const json& input = Obj(run, "input");
  for (const char* key : {"name", "candidate", "structure"}) {
    const std::string s = Str(input, key);
    if (!s.empty()) return OneLine(s, 120);
  }
  const json& structures = Arr(input, "structures");
  if (!structures.empty()) {
    const json& names = Arr(input, "names");
    std::string s = !names.empty() && names[0].is_string() && !names[0].get<std::string>().empty()
                        ? Text(names[0], 120)
                        : Text(structures[0], 120);
    if (structures.size() > 1) s += " and " + std::to_string(structures.size() - 1) + " more";
    return s;
  }
  return Str(run, "run_id", "unnamed run");
}

}  // namespace

core::Result<RenderedReport> RenderCandidateReport(const nlohmann::json& run,
                                                   std::int64_t generated_ms) {
  if (!run.is_object()) return core::InvalidArgument("the run record is not a JSON object", "run");
  Ctx c{run};
  const double threshold = Dbl(Obj(run, "input"), "flag_threshold");
  if (std::isfinite(threshold) && threshold >= 0 && threshold <= 1) c.threshold = threshold;

  RenderedReport out;
  out.title = "Candidate report: " + CandidateName(run);
  std::string summary = Str(Obj(run, "output"), "summary");
  if (summary.empty()) summary = Str(run, "summary");
  if (summary.empty()) {
    summary = Str(run, "workflow", "workflow") + " run " + Str(run, "run_id", "?") + ": " +
              Str(run, "state", "unknown");
  }
  out.summary = OneLine(summary, 300);

  c.w.Open("header");
  c.w.Element("h1", out.title);
  c.w.Element("p", "Workflow " + Str(run, "workflow", "-") + " v" +
                       Str(run, "workflow_version", "-") + " - run " + Str(run, "run_id", "-") +
                       " - " + Str(run, "state", "unknown") + " - " + out.summary);
  c.w.Close();
  c.w.Open("main");
  RenderVerdict(c);
  RenderToxicity(c);
  RenderClinical(c);
  RenderDose(c);
  RenderEscalation(c);
  RenderRecommendations(c);
  RenderProvenance(c);
  c.w.Close();
  c.w.Element("footer", "Generated " + FormatUtc(generated_ms) +
                            " by fedrx-report. Predictions come from federated models; every "
                            "number names the step and model that produced it.");
  out.html = Page(out.title, c.w.Finish());
  out.json = {{"kind", "candidate"},    {"report_version", 1},    {"generated_ms", generated_ms},
              {"title", out.title},     {"summary", out.summary}, {"run", run},
              {"sections", c.sections}, {"charts", c.charts}};
  return out;
}

}  // namespace fedrx::report
