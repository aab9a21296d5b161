#include "services/cli/assess_command.h"

#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <optional>
#include <ostream>
#include <set>
#include <sstream>
#include <thread>

#include "services/ingest/cdm_io.h"
#include "services/ingest/dataset_store.h"
#include "services/ingest/noael.h"

namespace fedrx::cli {
namespace {

using nlohmann::json;

// A candidate file is a few lines; nesting deeper than this is a mistake (and
// would only cost stack).
constexpr int kMaxDepth = 64;
// How long `assess` waits, after the run ended, for the report service's
// report id to appear in the run.
constexpr auto kReportWait = std::chrono::seconds(5);
// A report page may be close to the report service's 900 kB bound.
constexpr std::chrono::milliseconds kReportTimeout{30000};

std::string Where(std::string_view file, const YAML::Mark& mark) {
  return std::string(file) + ":" + std::to_string(mark.line + 1);
}

// The value of a plain (unquoted) scalar, read as YAML 1.2's core schema reads it.
core::Result<json> PlainScalar(const std::string& s, const std::string& where) {
  if (s == "true" || s == "True" || s == "TRUE") return json(true);
  if (s == "false" || s == "False" || s == "FALSE") return json(false);
  if (s == "null" || s == "Null" || s == "NULL" || s == "~" || s.empty()) return json(nullptr);
  std::string lower = s;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const std::string unsigned_part = lower[0] == '+' || lower[0] == '-' ? lower.substr(1) : lower;
  if (unsigned_part == ".inf" || unsigned_part == ".nan") {
    return core::InvalidArgument("'" + s + "' is not a finite number (JSON has none)", where);
  }
  std::string text = s[0] == '+' ? s.substr(1) : s;
  if (text.empty()) return json(s);
  const char* begin = text.data();
  const char* end = begin + text.size();
  const bool digits_only = std::all_of(text[0] == '-' ? begin + 1 : begin, end,
                                       [](char c) { return c >= '0' && c <= '9'; });
  if (digits_only && end > (text[0] == '-' ? begin + 1 : begin)) {
    std::int64_t n = 0;
    auto [p, ec] = std::from_chars(begin, end, n);
    if (ec == std::errc() && p == end) return json(n);
  }
  // Only text made of number characters is tried as a number (from_chars
  // would take "inf" and "nan").
  const bool number_chars = std::all_of(begin, end, [](char c) {
    return (c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '-' || c == '+';
  });
  if (number_chars && std::any_of(begin, end, [](char c) { return c >= '0' && c <= '9'; })) {
    double v = 0;
    auto [p, ec] = std::from_chars(begin, end, v);
    if (ec == std::errc() && p == end) {
      if (!std::isfinite(v)) {
        return core::InvalidArgument("'" + s + "' is not a finite number", where);
      }
      return json(v);
    }
  }
  return json(s);
}

core::Result<json> Convert(const YAML::Node& node, std::string_view file, int depth) {
  const std::string where = Where(file, node.Mark());
  if (depth > kMaxDepth) {
    return core::InvalidArgument("nested deeper than " + std::to_string(kMaxDepth) + " levels",
                                 where);
  }
  switch (node.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      return json(nullptr);
    case YAML::NodeType::Scalar: {
      const std::string& tag = node.Tag();
      // "!" marks a quoted scalar; an explicit !!str keeps text as text.
      if (tag == "!" || tag == "tag:yaml.org,2002:str") return json(node.Scalar());
      return PlainScalar(node.Scalar(), where);
    }
    case YAML::NodeType::Sequence: {
      json a = json::array();
      for (const YAML::Node& item : node) {
        FEDRX_ASSIGN_OR_RETURN(json v, Convert(item, file, depth + 1));
        a.push_back(std::move(v));
      }
      return a;
    }
    case YAML::NodeType::Map: {
      json o = json::object();
      for (const auto& kv : node) {
        const std::string key_where = Where(file, kv.first.Mark());
        if (!kv.first.IsScalar()) {
          return core::InvalidArgument("a mapping key must be a plain name", key_where);
        }
        const std::string& key = kv.first.Scalar();
        if (o.contains(key)) {
          return core::InvalidArgument("duplicate key '" + key + "'", key_where);
        }
        FEDRX_ASSIGN_OR_RETURN(json v, Convert(kv.second, file, depth + 1));
        o[key] = std::move(v);
      }
      return o;
    }
  }
  return core::InvalidArgument("unsupported YAML node", where);
}

bool EndsWith(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

core::Result<std::string> ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return core::NotFound("cannot read the candidate file", path);
  std::ostringstream text;
  text << f.rdbuf();
  return text.str();
}

bool Terminal(const std::string& state) {
  return state == "succeeded" || state == "partial" || state == "failed";
}

std::string Seconds(std::int64_t ms) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(1) << static_cast<double>(ms) / 1000.0;
  return s.str();
}

core::Status WriteText(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << text;
  f.close();
  if (!f) return core::Unavailable("cannot write the file", path);
  return core::Status::Ok();
}

// Usage errors (the command line itself) exit 2; the rest 1.
struct AssessFlags {
  std::string candidate;
  std::string workflow;
  std::string out_dir;
  std::string run_id;
  std::chrono::milliseconds poll{200};
  std::chrono::seconds timeout{600};
};

core::Result<AssessFlags> ParseAssess(const Options& o) {
  AssessFlags f;
  if (o.command.size() < 2) {
    return core::InvalidArgument("assess needs the candidate file (YAML or JSON)", "CANDIDATE");
  }
  if (o.command.size() > 2) {
    return core::InvalidArgument("one candidate file only; '" + o.command[2] + "' is extra",
                                 "CANDIDATE");
  }
  static const std::set<std::string> kKnown = {"workflow", "out", "run-id", "poll-ms", "timeout-s"};
  for (const auto& [flag, value] : o.flags) {
    if (kKnown.count(flag) == 0) {
      return core::InvalidArgument("assess has no --" + flag, "--" + flag);
    }
  }
  f.candidate = o.command[1];
  f.workflow = TextOr(o, "workflow", "first-in-human");
  if (f.workflow.empty()) return core::InvalidArgument("--workflow is empty", "--workflow");
  f.out_dir = TextOr(o, "out", ".");
  if (f.out_dir.empty()) return core::InvalidArgument("--out is empty", "--out");
  f.run_id = TextOr(o, "run-id", "");
  FEDRX_ASSIGN_OR_RETURN(std::int64_t poll, IntegerOr(o, "poll-ms", 200, 0, 60000));
  FEDRX_ASSIGN_OR_RETURN(std::int64_t timeout, IntegerOr(o, "timeout-s", 600, 0, 7 * 86400));
  f.poll = std::chrono::milliseconds(poll);
  f.timeout = std::chrono::seconds(timeout);
  return f;
}

core::Result<codec::WorkflowRun> FetchRun(core::Bus& bus, const Options& o,
                                          const std::string& run_id) {
  FEDRX_ASSIGN_OR_RETURN(codec::Message m, Ask(bus, o, codec::GetWorkflowRun{run_id, false}));
  return Expect<codec::WorkflowRun>(std::move(m));
}

// While the orchestrator restarts (it resumes its runs), the gateway answers
// unavailable or nothing answers in time: worth waiting out.
bool Transient(const core::Status& s) {
  return s.code() == core::StatusCode::kUnavailable ||
         s.code() == core::StatusCode::kDeadlineExceeded;
}

core::Status FetchReport(core::Bus& bus, const Options& o, const std::string& report_id,
                         const std::string& format, const std::string& path) {
  Options asked = o;
  if (!o.timeout_given) asked.timeout = kReportTimeout;
  FEDRX_ASSIGN_OR_RETURN(codec::Message m, Ask(bus, asked, codec::GetReport{report_id, format}));
  o.channel = asked.channel;
  FEDRX_ASSIGN_OR_RETURN(codec::ReportDocument d, Expect<codec::ReportDocument>(std::move(m)));
  return WriteText(path, d.content);
}

// Waits for the run's report and writes it as DIR/<run_id>.html and .json.
core::Status WriteReports(core::Bus& bus, const Options& o, codec::WorkflowRun run,
                          const AssessFlags& f, std::ostream& out) {
  const auto until = std::chrono::steady_clock::now() + kReportWait;
  while (run.report_id.empty() && run.report_error.empty() &&
         std::chrono::steady_clock::now() < until) {
    if (f.poll.count() > 0) std::this_thread::sleep_for(f.poll);
    core::Result<codec::WorkflowRun> again = FetchRun(bus, o, run.run_id);
    if (again.ok()) {
      run = std::move(*again);
    } else if (!Transient(again.status())) {
      return again.status();
    }
  }
  if (!run.report_error.empty()) {
    return core::Unavailable("no report was written: " + run.report_error, "run " + run.run_id);
  }
  if (run.report_id.empty()) {
    return core::DeadlineExceeded(
        "no report for the run within " + std::to_string(kReportWait.count()) +
            " s (its workflow may not ask for one; see `fedrx report list`)",
        "run " + run.run_id);
  }
  std::error_code ec;
  std::filesystem::create_directories(f.out_dir, ec);
  if (ec) return core::Unavailable("cannot create the directory: " + ec.message(), f.out_dir);
  const std::string base = (std::filesystem::path(f.out_dir) / run.run_id).string();
  FEDRX_RETURN_IF_ERROR(FetchReport(bus, o, run.report_id, "html", base + ".html"));
  FEDRX_RETURN_IF_ERROR(FetchReport(bus, o, run.report_id, "json", base + ".json"));
  out << "report " << run.report_id << ":\n  " << base << ".html\n  " << base << ".json\n";
  return core::Status::Ok();
}

}  // namespace

bool IsAssessCommand(const Options& o) { return !o.command.empty() && o.command[0] == "assess"; }

bool IsTerminal(const std::ostream& out) { return &out == &std::cout && ::isatty(1) != 0; }

core::Result<json> YamlToJson(std::string_view text, std::string_view file) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    return core::InvalidArgument("not valid YAML: " + e.msg, Where(file, e.mark));
  }
  try {
    return Convert(root, file, 0);
  } catch (const YAML::Exception& e) {
    return core::InvalidArgument("unreadable YAML: " + e.msg, Where(file, e.mark));
  }
}

core::Result<json> ReadCandidate(const std::string& path) {
  FEDRX_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  json candidate;
  if (EndsWith(path, ".json")) {
    try {
      candidate = json::parse(text);
    } catch (const json::parse_error& e) {
      const std::size_t upto = std::min<std::size_t>(e.byte, text.size());
      const auto line = 1 + std::count(text.begin(), text.begin() + static_cast<long>(upto), '\n');
      // e.byte is one past the offending character; a newline there is on the line before.
      const long at = upto > 0 && text[upto - 1] == '\n' ? line - 1 : line;
      return core::InvalidArgument("not valid JSON: " + std::string(e.what()),
                                   path + ":" + std::to_string(std::max<long>(at, 1)));
    }
  } else {
    FEDRX_ASSIGN_OR_RETURN(candidate, YamlToJson(text, path));
  }
  if (!candidate.is_object()) {
    return core::InvalidArgument(
        "the candidate must be a mapping of the workflow's inputs (structure: ..., noaels: ...)",
        path + ":1");
  }
  return candidate;
}

core::Status ProposeNoaelsLocally(json& candidate, const std::string& base_dir, std::ostream& out) {
  auto it = candidate.find("noael_from_study");
  if (it == candidate.end()) return core::Status::Ok();
  if (!it->is_string() || it->get<std::string>().empty()) {
    return core::InvalidArgument("noael_from_study must name an ingested study store",
                                 "noael_from_study");
  }
  std::filesystem::path root(it->get<std::string>());
  if (root.is_relative() && !base_dir.empty()) root = std::filesystem::path(base_dir) / root;
  ingest::cdm::NoaelRule rule;
  if (auto g = candidate.find("noael_group"); g != candidate.end()) {
    if (!g->is_string()) {
      return core::InvalidArgument("noael_group must be a set code (SETCD)", "noael_group");
    }
    rule.noael_set_code = g->get<std::string>();
  }
  auto noaels = candidate.find("noaels");
  if (noaels != candidate.end() && !noaels->is_array() && !noaels->is_null()) {
    return core::InvalidArgument("noaels must be a list", "noaels");
  }
  core::Result<ingest::DatasetStore> store = ingest::DatasetStore::Open(root.string(), false);
  if (!store.ok()) return store.status().WithContext("noael_from_study");
  FEDRX_ASSIGN_OR_RETURN(std::optional<ingest::StoreVersion> current, store->Current());
  if (!current) {
    return core::NotFound("the study store has no ingested version yet", root.string());
  }
  FEDRX_ASSIGN_OR_RETURN(ingest::cdm::StudyData study, ingest::cdm::ReadCdm(current->dir + "/cdm"));
  FEDRX_ASSIGN_OR_RETURN(ingest::cdm::NoaelProposal p, ingest::cdm::ProposeNoael(study, rule));
  json proposed = {
      {"species", p.species},
      {"noael_mg_per_kg", p.noael},
      {"source", "SEND study " + p.study_id + ", group " + p.noael_set_code + " (" + p.noael_label +
                     "), " + p.noael_unit + "; proposed at the institution by: " + p.rule}};
  if (noaels == candidate.end() || noaels->is_null()) candidate["noaels"] = json::array();
  candidate["noaels"].push_back(std::move(proposed));
  candidate.erase("noael_from_study");
  candidate.erase("noael_group");
  out << "NOAEL proposed here from SEND study " << p.study_id << " (" << p.species
      << "): " << p.noael << " " << p.noael_unit << ", group " << p.noael_set_code
      << "; only species, dose and source are sent\n";
  return core::Status::Ok();
}

std::string StepLine(const codec::StepState& step, std::int64_t run_created_ms) {
  std::ostringstream line;
  const std::int64_t at = step.finished_ms > 0 ? step.finished_ms : step.started_ms;
  if (at > 0) {
    line << "[" << std::setw(5) << Seconds(std::max<std::int64_t>(0, at - run_created_ms)) << "s] ";
  } else {
    line << "[      ] ";
  }
  line << std::left << std::setw(14) << step.step << " " << std::setw(9) << step.state;
  if (step.attempts > 0) {
    line << "  " << step.attempts << (step.attempts == 1 ? " attempt" : " attempts");
  }
  if (step.state == "failed") {
    line << "  " << (step.error_code.empty() ? "error" : step.error_code) << ": " << step.error;
    if (!step.error_where.empty()) line << " (at " << step.error_where << ")";
  } else if (step.state == "skipped" && !step.error.empty()) {
    line << "  " << step.error;
  }
  std::string s = line.str();
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

void ProgressDisplay::Show(const codec::WorkflowRun& run, std::ostream& out) {
  if (tty_) {
    // Cursor up over the lines drawn last time, then each line cleared and redrawn.
    if (drawn_ > 0) out << "\x1b[" << drawn_ << "A";
    for (const codec::StepState& s : run.steps) {
      out << "\r\x1b[2K" << StepLine(s, run.created_ms) << "\n";
    }
    drawn_ = run.steps.size();
    out.flush();
    return;
  }
  for (const codec::StepState& s : run.steps) {
    const std::string now = s.state + "/" + std::to_string(s.attempts);
    auto it = last_.find(s.step);
    const bool changed = it == last_.end() ? s.state != "pending" : it->second != now;
    last_[s.step] = now;
    if (changed) out << StepLine(s, run.created_ms) << "\n";
  }
  out.flush();
}

void PrintRunEnd(const codec::WorkflowRun& run, std::ostream& out) {
  std::size_t succeeded = 0;
  for (const codec::StepState& s : run.steps) succeeded += s.state == "succeeded" ? 1 : 0;
  out << (run.summary.empty() ? "(no summary)" : run.summary) << "\n";
  out << "run " << run.run_id << ": " << run.state << " (" << succeeded << " of "
      << run.steps.size() << " steps succeeded";
  if (run.finished_ms > 0 && run.created_ms > 0) {
    const std::int64_t took = run.finished_ms - run.created_ms;
    // A run of fast services takes milliseconds; "0.0 s" would hide how long.
    if (took < 1000) {
      out << ", took " << took << " ms";
    } else {
      out << ", took " << Seconds(took) << " s";
    }
  }
  out << ")\n";
}

json RunToJson(const codec::WorkflowRun& run) {
  // Outputs are JSON documents; one that does not parse is kept as text.
  auto parsed = [](const std::string& text) {
    json j = json::parse(text, nullptr, false);
    return j.is_discarded() ? json(text) : j;
  };
  json steps = json::array();
  for (const codec::StepState& s : run.steps) {
    json j = {{"step", s.step},
              {"service", s.service},
              {"call", s.call},
              {"state", s.state},
              {"attempts", s.attempts},
              {"started_ms", s.started_ms},
              {"finished_ms", s.finished_ms}};
    if (!s.error_code.empty() || !s.error.empty()) {
      j["error"] = {{"code", s.error_code}, {"message", s.error}, {"where", s.error_where}};
    }
    if (!s.output_json.empty()) j["output"] = parsed(s.output_json);
    steps.push_back(std::move(j));
  }
  json j = {{"run_id", run.run_id},
            {"workflow", run.workflow},
            {"workflow_version", run.workflow_version},
            {"state", run.state},
            {"created_ms", run.created_ms},
            {"finished_ms", run.finished_ms},
            {"steps", std::move(steps)},
            {"summary", run.summary},
            {"report_id", run.report_id},
            {"report_error", run.report_error}};
  if (!run.output_json.empty()) j["output"] = parsed(run.output_json);
  return j;
}

int RunAssessCommand(core::Bus& bus, const Options& o, std::ostream& out, std::ostream& err,
                     bool tty) {
  core::Result<AssessFlags> parsed = ParseAssess(o);
  if (!parsed.ok()) {
    err << "fedrx: " << parsed.status() << "\n"
        << "usage: fedrx [connection flags] assess CANDIDATE.yaml|json [--workflow "
           "first-in-human]\n"
        << "             [--out DIR] [--run-id ID] [--poll-ms 200] [--timeout-s 600]\n";
    return 2;
  }
  const AssessFlags& f = *parsed;
  auto fail = [&err](const core::Status& s) {
    err << "fedrx: " << s << "\n";
    return 1;
  };
  core::Result<json> candidate = ReadCandidate(f.candidate);
  if (!candidate.ok()) return fail(candidate.status());
  const std::string base_dir = std::filesystem::path(f.candidate).parent_path().string();
  if (core::Status s = ProposeNoaelsLocally(*candidate, base_dir, out); !s.ok()) return fail(s);

  core::Result<codec::Message> started =
      Ask(bus, o, codec::RunWorkflow{f.workflow, candidate->dump(), f.run_id});
  if (!started.ok()) return fail(started.status());
  core::Result<codec::WorkflowRun> run = Expect<codec::WorkflowRun>(std::move(*started));
  if (!run.ok()) return fail(run.status());
  out << "run " << run->run_id << ": workflow " << run->workflow << " version "
      << run->workflow_version << ", " << run->steps.size() << " steps\n";

  ProgressDisplay display(tty);
  display.Show(*run, out);
  const auto deadline = std::chrono::steady_clock::now() + f.timeout;
  bool told_waiting = false;
  while (!Terminal(run->state)) {
    if (std::chrono::steady_clock::now() >= deadline) {
      return fail(core::DeadlineExceeded(
          "the run is still " + run->state + " after " + std::to_string(f.timeout.count()) +
              " s; it goes on (see `fedrx workflow show " + run->run_id + "`)",
          "--timeout-s"));
    }
    if (f.poll.count() > 0) std::this_thread::sleep_for(f.poll);
    core::Result<codec::WorkflowRun> now = FetchRun(bus, o, run->run_id);
    if (!now.ok()) {
      if (!Transient(now.status())) return fail(now.status());
      if (!told_waiting) {
        err << "fedrx: the orchestrator is not answering (" << now.status()
            << "); still waiting for run " << run->run_id << "\n";
        told_waiting = true;
      }
      continue;
    }
    told_waiting = false;
    run = std::move(now);
    display.Show(*run, out);
  }
  PrintRunEnd(*run, out);
  const bool verdict = run->state == "succeeded" || run->state == "partial";
  if (core::Status s = WriteReports(bus, o, *run, f, out); !s.ok()) {
    err << "fedrx: " << s << "\n";
  }
  return verdict ? 0 : 1;
}

}  // namespace fedrx::cli
