#include "services/report/study_report.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "services/report/html.h"
#include "services/report/json_view.h"
#include "services/report/svg.h"

namespace fedrx::report {

namespace {

using nlohmann::json;

constexpr std::string_view kTaskRoc = "valid_roc_auc:";

bool Closed(const StudyRoundView& r) { return r.state == "closed" || r.state == "failed"; }

double Metric(const StudyRoundView& r, const std::string& name) {
  auto it = r.metrics.find(name);
  return it == r.metrics.end() ? svg::kNone : it->second;
}

std::string Join(const std::vector<std::string>& v, std::size_t max_items = 20) {
  std::string s;
  for (std::size_t i = 0; i < v.size() && i < max_items; ++i) s += (i ? ", " : "") + v[i];
  if (v.size() > max_items) s += " and " + std::to_string(v.size() - max_items) + " more";
  return s;
}

// A line of `metric` over the rounds that have it.
svg::Line MetricLine(const StudyView& study, const std::string& metric, const std::string& name) {
  svg::Line line{name, {}};
  for (const StudyRoundView& r : study.rounds) {
    const double v = Metric(r, metric);
    if (std::isfinite(v)) line.points.push_back({static_cast<double>(r.round), v});
  }
  return line;
}

json LineData(const std::vector<svg::Line>& lines) {
  json data = json::object();
  for (const svg::Line& l : lines) {
    json pts = json::array();
    for (const svg::Point& p : l.points) pts.push_back({{"round", p.x}, {"value", p.y}});
    data[l.name] = pts;
  }
  return data;
}

}  // namespace

std::string StudyStateName(codec::StudyState state) {
  switch (state) {
    case codec::StudyState::kCreated:
      return "created";
    case codec::StudyState::kRunning:
      return "running";
    case codec::StudyState::kCompleted:
      return "completed";
    case codec::StudyState::kFailed:
      return "failed";
  }
  return "unknown";
}

std::string RoundStateName(codec::RoundState state) {
  switch (state) {
    case codec::RoundState::kPending:
      return "pending";
    case codec::RoundState::kTraining:
      return "training";
    case codec::RoundState::kAggregating:
      return "aggregating";
    case codec::RoundState::kClosed:
      return "closed";
    case codec::RoundState::kFailed:
      return "failed";
    case codec::RoundState::kEvaluating:
      return "evaluating";
  }
  return "unknown";
}

std::vector<std::string> Dropouts(const StudyRoundView& round) {
  if (!Closed(round)) return {};
  const std::set<std::string> in(round.contributed.begin(), round.contributed.end());
  std::vector<std::string> out;
  for (const std::string& s : round.selected) {
    if (in.count(s) == 0) out.push_back(s);
  }
  return out;
}

RenderedReport RenderStudyReport(const StudyView& study, std::int64_t generated_ms) {
  const codec::StudySpec& spec = study.spec;
  RenderedReport out;
  out.title = "Study report: " + OneLine(spec.name.empty() ? spec.study_id : spec.name, 120);
  json charts = json::object();
  HtmlWriter w;

  // Summary figures.
  std::size_t closed = 0;
  double last_roc = svg::kNone, last_eps = svg::kNone;
  std::size_t dropouts_total = 0;
  for (const StudyRoundView& r : study.rounds) {
    if (r.state == "closed") ++closed;
    if (std::isfinite(Metric(r, "valid_mean_roc_auc"))) last_roc = Metric(r, "valid_mean_roc_auc");
    if (std::isfinite(Metric(r, "privacy_epsilon"))) last_eps = Metric(r, "privacy_epsilon");
    dropouts_total += Dropouts(r).size();
  }
  std::string summary = spec.study_id + ": " + study.state + ", " + std::to_string(closed) +
                        " of " + std::to_string(spec.rounds) + " rounds closed";
  if (std::isfinite(last_roc)) summary += ", validation mean ROC-AUC " + Num(last_roc, 3);
  if (std::isfinite(last_eps)) summary += ", privacy epsilon spent " + Num(last_eps, 3);
  if (dropouts_total > 0) summary += ", " + std::to_string(dropouts_total) + " dropouts";
  out.summary = OneLine(summary, 300);

  w.Open("header");
  w.Element("h1", out.title);
  w.Element("p", out.summary);
  w.Close();
  w.Open("main");

  // Overview.
  w.Open("section", {{"id", "overview"}});
  w.Element("h2", "Study");
  const bool statistic = !spec.statistic.empty();
  std::string aggregation = spec.strategy.empty() ? "fedavg" : spec.strategy;
  if (spec.trim_fraction > 0) aggregation += ", trim fraction " + Num(spec.trim_fraction, 3);
  if (spec.krum_byzantine > 0) aggregation += ", Krum f=" + std::to_string(spec.krum_byzantine);
  if (spec.norm_bound > 0) aggregation += ", update norm bound " + Num(spec.norm_bound, 3);
  if (spec.proximal_mu > 0) aggregation += ", FedProx mu " + Num(spec.proximal_mu, 3);
  if (!spec.server_optimizer.empty()) {
    aggregation += ", server optimiser " + spec.server_optimizer + " (lr " +
                   Num(spec.server_learning_rate, 3) + ")";
  }
  std::string privacy = "none";
  if (spec.dp_noise_multiplier > 0 || spec.dp_clip_norm > 0) {
    privacy = "DP-FedAvg: clip " + Num(spec.dp_clip_norm, 3) + ", noise multiplier " +
              Num(spec.dp_noise_multiplier, 3) + ", delta " + Num(spec.dp_delta, 3);
    if (spec.dp_epsilon_budget > 0) privacy += ", epsilon budget " + Num(spec.dp_epsilon_budget, 3);
  }
  std::vector<std::vector<std::string>> facts = {
      {"Study id", spec.study_id},
      {"Name", spec.name},
      {"State", study.state + (study.detail.empty() ? "" : " (" + study.detail + ")")},
      {"Kind", statistic ? "statistics (" + spec.statistic + ")" : "model training"},
      {"Tasks", Join(spec.tasks, 40)},
      {"Rounds", std::to_string(study.current_round) + " reached of " +
                     std::to_string(spec.rounds) + " planned; latest model version " +
                     std::to_string(study.model_version)},
      {"Sites named", Join(spec.sites, 40)},
      {"Minimum sites per round", std::to_string(spec.min_sites)},
      {"Aggregation", aggregation},
      {"Secure aggregation", spec.secure_aggregation
                                 ? "yes (threshold " + std::to_string(spec.secagg_threshold) + ")"
                                 : "no"},
      {"Differential privacy", privacy},
      {"Privacy budget spent",
       std::isfinite(last_eps)
           ? "epsilon " + Num(last_eps, 4) + " (delta " + Num(spec.dp_delta, 3) + ")"
           : "not recorded"},
      {"Local training", statistic ? "-"
                                   : std::to_string(spec.local_epochs) + " epochs, learning rate " +
                                         Num(spec.learning_rate, 3) + ", batch " +
                                         std::to_string(spec.batch_size)},
      {"Preparation hash", spec.preparation_hash.empty() ? "-" : spec.preparation_hash}};
  w.Table({"", ""}, facts);
  w.Close();

  // Metric curves.
  w.Open("section", {{"id", "metrics"}});
  w.Element("h2", "Metrics per round");
  std::vector<svg::Line> mean_lines;
  for (const auto& [metric, name] : std::vector<std::pair<std::string, std::string>>{
           {"valid_mean_roc_auc", "mean ROC-AUC"}, {"valid_mean_pr_auc", "mean PR-AUC"}}) {
    svg::Line l = MetricLine(study, metric, name);
    if (!l.points.empty()) mean_lines.push_back(std::move(l));
  }
  if (mean_lines.empty()) {
    w.Unavailable(statistic ? "a statistics study has no validation metrics"
                            : "no round has validation metrics yet");
  } else {
    svg::ChartOptions o;
    o.name = "metric-curves";
    o.integer_x = true;
    o.title = "Federated validation metrics per round";
    o.x_label = "round";
    o.y_label = "AUC";
    o.min = 0;
    o.max = 1;
    w.Raw(svg::LineChart(o, mean_lines));
    charts[o.name] = LineData(mean_lines);
    std::set<std::string> tasks;
    for (const StudyRoundView& r : study.rounds) {
      for (const auto& [k, v] : r.metrics) {
        if (k.rfind(kTaskRoc, 0) == 0) tasks.insert(k.substr(kTaskRoc.size()));
      }
    }
    std::vector<svg::Line> task_lines;
    for (const std::string& t : tasks) {
      if (task_lines.size() >= 12) break;
      task_lines.push_back(MetricLine(study, std::string(kTaskRoc) + t, t));
    }
    if (!task_lines.empty()) {
      svg::ChartOptions t;
      t.name = "task-roc";
      t.integer_x = true;
      t.title =
          "Validation ROC-AUC per task" + std::string(tasks.size() > 12 ? " (first 12 tasks)" : "");
      t.x_label = "round";
      t.y_label = "ROC-AUC";
      t.min = 0;
      t.max = 1;
      w.Raw(svg::LineChart(t, task_lines));
      charts[t.name] = LineData(task_lines);
    }
  }
  svg::Line eps = MetricLine(study, "privacy_epsilon", "epsilon spent");
  if (!eps.points.empty()) {
    std::vector<svg::Line> lines{eps};
    if (spec.dp_epsilon_budget > 0 && eps.points.size() >= 1) {
      lines.push_back({"budget",
                       {{eps.points.front().x, spec.dp_epsilon_budget},
                        {eps.points.back().x, spec.dp_epsilon_budget}}});
    }
    svg::ChartOptions o;
    o.name = "privacy-budget";
    o.integer_x = true;
    o.title = "Privacy budget spent (epsilon, cumulative)";
    o.x_label = "round";
    o.y_label = "epsilon";
    o.min = 0;
    w.Raw(svg::LineChart(o, lines));
    charts[o.name] = LineData(lines);
  }
  w.Close();

  // Sites per round.
  w.Open("section", {{"id", "sites"}});
  w.Element("h2", "Participating sites and dropouts");
  if (study.rounds.empty()) {
    w.Unavailable("no round has started");
  } else {
    std::vector<std::string> cats;
    svg::Series sel{"selected", {}, "#8a94a6"}, con{"contributed", {}, "#3a9a5b"},
        drop{"dropped out", {}, "#c0392b"};
    json data = json::array();
    for (const StudyRoundView& r : study.rounds) {
      cats.push_back(std::to_string(r.round));
      sel.values.push_back(static_cast<double>(r.selected.size()));
      con.values.push_back(static_cast<double>(r.contributed.size()));
      drop.values.push_back(static_cast<double>(Dropouts(r).size()));
      data.push_back({{"round", r.round},
                      {"selected", r.selected.size()},
                      {"contributed", r.contributed.size()},
                      {"dropouts", Dropouts(r).size()}});
    }
    svg::ChartOptions o;
    o.name = "sites-per-round";
    o.title = "Sites per round";
    o.x_label = "round";
    o.y_label = "sites";
    w.Raw(svg::GroupedBars(o, cats, {sel, con, drop}));
    charts[o.name] = data;
  }
  w.Close();

  // Rounds table.
  w.Open("section", {{"id", "rounds"}});
  w.Element("h2", "Rounds");
  json rounds = json::array();
  std::vector<std::vector<std::string>> rows;
  for (const StudyRoundView& r : study.rounds) {
    const std::vector<std::string> dropped = Dropouts(r);
    std::string metrics;
    for (const auto& [k, v] : r.metrics) {
      if (k.rfind(kTaskRoc, 0) == 0) continue;
      metrics += (metrics.empty() ? "" : "; ") + k + " " + Num(v, 4);
    }
    const double seconds = r.started_ms > 0 && r.closed_ms >= r.started_ms
                               ? static_cast<double>(r.closed_ms - r.started_ms) / 1000.0
                               : svg::kNone;
    rows.push_back({std::to_string(r.round), r.state, std::to_string(r.base_version),
                    Join(r.selected), Join(r.contributed), dropped.empty() ? "-" : Join(dropped),
                    std::to_string(r.samples), Num(seconds, 4), metrics,
                    r.secagg_detections.empty() ? "-" : Join(r.secagg_detections)});
    json m = json::object();
    for (const auto& [k, v] : r.metrics) m[k] = std::isfinite(v) ? json(v) : json();
    rounds.push_back({{"round", r.round},
                      {"state", r.state},
                      {"base_version", r.base_version},
                      {"selected", r.selected},
                      {"contributed", r.contributed},
                      {"dropouts", dropped},
                      {"samples", r.samples},
                      {"started_ms", r.started_ms},
                      {"closed_ms", r.closed_ms},
                      {"metrics", m},
                      {"secagg_detections", r.secagg_detections}});
  }
  if (rows.empty()) {
    w.Unavailable("no round has started");
  } else {
    w.Table({"Round", "State", "Base version", "Selected", "Contributed", "Dropouts", "Samples",
             "Seconds", "Metrics", "Secure-aggregation detections"},
            rows, {true, false, true, false, false, false, true, true, false, false});
  }
  w.Close();
  w.Close();  // main
  w.Element("footer", "Generated " + FormatUtc(generated_ms) +
                          " by fedrx-report from the coordinator's study records; only sums "
                          "over sites are shown.");
  out.html = Page(out.title, w.Finish());
  out.json = {{"kind", "study"},
              {"report_version", 1},
              {"generated_ms", generated_ms},
              {"title", out.title},
              {"summary", out.summary},
              {"study",
               {{"study_id", spec.study_id},
                {"name", spec.name},
                {"state", study.state},
                {"detail", study.detail},
                {"tasks", spec.tasks},
                {"rounds_planned", spec.rounds},
                {"current_round", study.current_round},
                {"model_version", study.model_version},
                {"strategy", spec.strategy},
                {"aggregation", aggregation},
                {"secure_aggregation", spec.secure_aggregation},
                {"dp_clip_norm", spec.dp_clip_norm},
                {"dp_noise_multiplier", spec.dp_noise_multiplier},
                {"dp_delta", spec.dp_delta},
                {"dp_epsilon_budget", spec.dp_epsilon_budget},
                {"privacy_epsilon_spent", std::isfinite(last_eps) ? json(last_eps) : json()},
                {"statistic", spec.statistic}}},
              {"rounds", rounds},
              {"charts", charts}};
  return out;
}

}  // namespace fedrx::report
