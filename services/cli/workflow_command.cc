#include "services/cli/workflow_command.h"

#include <ctime>
#include <fstream>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>

#include "services/cli/assess_command.h"

namespace fedrx::cli {
namespace {

// A report page may be close to the report service's 900 kB bound, and a
// candidate report is written from every step's output.
constexpr std::chrono::milliseconds kReportTimeout{30000};

std::string Utc(std::int64_t ms) {
  if (ms <= 0) return "-";
  const std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

core::Result<std::string> Argument(const Options& o, std::size_t index, const char* what) {
  if (o.command.size() <= index) {
    return core::InvalidArgument(std::string(what) + " is missing", what);
  }
  return o.command[index];
}

Options WithLongTimeout(const Options& o) {
  Options asked = o;
  if (!o.timeout_given) asked.timeout = kReportTimeout;
  return asked;
}

core::Status ListWorkflows(core::Bus& bus, const Options& o, std::ostream& out) {
  FEDRX_ASSIGN_OR_RETURN(codec::Message m, Ask(bus, o, codec::ListWorkflows{}));
  FEDRX_ASSIGN_OR_RETURN(codec::WorkflowList list, Expect<codec::WorkflowList>(std::move(m)));
  for (const codec::WorkflowInfo& w : list.workflows) {
    out << w.name << " (version " << w.version << ")";
    if (!w.description.empty()) out << ": " << w.description;
    out << "\n  inputs:";
    for (const std::string& i : w.inputs) out << " " << i;
    out << "\n  steps: ";
    for (std::size_t i = 0; i < w.steps.size(); ++i) out << (i ? ", " : "") << w.steps[i];
    out << "\n";
  }
  out << list.workflows.size() << " workflow(s)\n";
  return core::Status::Ok();
}

core::Status ShowRun(core::Bus& bus, const Options& o, std::ostream& out) {
  FEDRX_ASSIGN_OR_RETURN(std::string id, Argument(o, 2, "RUN_ID"));
  const bool with_outputs = o.flags.count("json") > 0;
  FEDRX_ASSIGN_OR_RETURN(codec::Message m, Ask(bus, o, codec::GetWorkflowRun{id, with_outputs}));
  FEDRX_ASSIGN_OR_RETURN(codec::WorkflowRun run, Expect<codec::WorkflowRun>(std::move(m)));
  out << "run " << run.run_id << ": workflow " << run.workflow << " version "
      << run.workflow_version << ", created " << Utc(run.created_ms) << "\n";
  for (const codec::StepState& s : run.steps) out << StepLine(s, run.created_ms) << "\n";
  if (run.state == "running") {
    out << "run " << run.run_id << ": running\n";
  } else {
    PrintRunEnd(run, out);
  }
  if (!run.report_id.empty()) out << "report " << run.report_id << "\n";
  if (!run.report_error.empty()) out << "no report: " << run.report_error << "\n";
  return WriteJsonIfAsked(o, RunToJson(run));
}

core::Status ListRuns(core::Bus& bus, const Options& o, std::ostream& out) {
  codec::ListWorkflowRuns r;
  r.workflow = TextOr(o, "workflow", "");
  FEDRX_ASSIGN_OR_RETURN(std::int64_t limit, IntegerOr(o, "limit", 20, 1, 1000));
  r.limit = static_cast<std::uint32_t>(limit);
  FEDRX_ASSIGN_OR_RETURN(codec::Message m, Ask(bus, o, std::move(r)));
  FEDRX_ASSIGN_OR_RETURN(codec::WorkflowRunList list, Expect<codec::WorkflowRunList>(std::move(m)));
  out << std::left << std::setw(36) << "RUN" << std::setw(18) << "WORKFLOW" << std::setw(11)
      << "STATE" << std::setw(22) << "CREATED"
      << "SUMMARY\n";
  for (const codec::WorkflowRun& run : list.runs) {
    out << std::left << std::setw(36) << run.run_id << std::setw(18) << run.workflow
        << std::setw(11) << run.state << std::setw(22) << Utc(run.created_ms) << run.summary
        << "\n";
  }
  out << list.runs.size() << " run(s)\n";
  return core::Status::Ok();
}

void PrintReportInfo(const codec::ReportInfo& r, std::ostream& out) {
  out << "report " << r.report_id << " (" << r.kind << " " << r.subject << ", " << Utc(r.created_ms)
      << "): " << r.title << "\n  " << r.html_bytes << " bytes HTML, " << r.json_bytes
      << " bytes JSON";
  if (!r.summary.empty()) out << "\n  " << r.summary;
  out << "\n";
}

core::Status ListReports(core::Bus& bus, const Options& o, std::ostream& out) {
  codec::ListReports r;
  r.kind = TextOr(o, "kind", "");
  FEDRX_ASSIGN_OR_RETURN(std::int64_t limit, IntegerOr(o, "limit", 50, 1, 1000));
  r.limit = static_cast<std::uint32_t>(limit);
  FEDRX_ASSIGN_OR_RETURN(codec::Message m, Ask(bus, o, std::move(r)));
  FEDRX_ASSIGN_OR_RETURN(codec::ReportList list, Expect<codec::ReportList>(std::move(m)));
  out << std::left << std::setw(36) << "REPORT" << std::setw(11) << "KIND" << std::setw(36)
      << "SUBJECT" << std::setw(22) << "CREATED"
      << "SUMMARY\n";
  for (const codec::ReportInfo& r : list.reports) {
    out << std::left << std::setw(36) << r.report_id << std::setw(11) << r.kind << std::setw(36)
        << r.subject << std::setw(22) << Utc(r.created_ms) << r.summary << "\n";
  }
  out << list.reports.size() << " report(s)\n";
  return core::Status::Ok();
}

core::Status GetReport(core::Bus& bus, const Options& o, std::ostream& out) {
  FEDRX_ASSIGN_OR_RETURN(std::string id, Argument(o, 2, "REPORT_ID"));
  const std::string format = TextOr(o, "format", "html");
  if (format != "html" && format != "json") {
    return core::InvalidArgument("'" + format + "' is not html or json", "--format");
  }
  FEDRX_ASSIGN_OR_RETURN(std::string path, Required(o, "out"));
  Options asked = WithLongTimeout(o);
  FEDRX_ASSIGN_OR_RETURN(codec::Message m, Ask(bus, asked, codec::GetReport{id, format}));
  o.channel = asked.channel;
  FEDRX_ASSIGN_OR_RETURN(codec::ReportDocument d, Expect<codec::ReportDocument>(std::move(m)));
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << d.content;
  f.close();
  if (!f) return core::Unavailable("cannot write the report", path);
  out << "report " << d.info.report_id << " (" << d.format << ", " << d.content.size()
      << " bytes) written to " << path << "\n";
  return core::Status::Ok();
}

core::Status CreateReport(core::Bus& bus, const Options& o, std::ostream& out) {
  FEDRX_ASSIGN_OR_RETURN(std::string kind, Required(o, "kind"));
  if (kind != "study" && kind != "candidate") {
    return core::InvalidArgument("'" + kind + "' is not study or candidate", "--kind");
  }
  FEDRX_ASSIGN_OR_RETURN(std::string subject, Required(o, "subject"));
  Options asked = WithLongTimeout(o);
  FEDRX_ASSIGN_OR_RETURN(codec::Message m, Ask(bus, asked, codec::CreateReport{kind, subject}));
  o.channel = asked.channel;
  FEDRX_ASSIGN_OR_RETURN(codec::ReportInfo info, Expect<codec::ReportInfo>(std::move(m)));
  PrintReportInfo(info, out);
  return core::Status::Ok();
}

}  // namespace

bool IsWorkflowCommand(const Options& o) {
  return !o.command.empty() && o.command[0] == "workflow";
}

bool IsReportCommand(const Options& o) { return !o.command.empty() && o.command[0] == "report"; }

core::Status RunWorkflowCommand(core::Bus& bus, const Options& o, std::ostream& out) {
  const auto& c = o.command;
  if (c.size() == 2 && c[1] == "list") return ListWorkflows(bus, o, out);
  if (c.size() >= 2 && c[1] == "show") return ShowRun(bus, o, out);
  if (c.size() == 2 && c[1] == "runs") return ListRuns(bus, o, out);
  return core::InvalidArgument(
      "unknown workflow command (try: workflow list, workflow show RUN_ID, "
      "workflow runs)",
      "command");
}

core::Status RunReportCommand(core::Bus& bus, const Options& o, std::ostream& out) {
  const auto& c = o.command;
  if (c.size() == 2 && c[1] == "list") return ListReports(bus, o, out);
  if (c.size() >= 2 && c[1] == "get") return GetReport(bus, o, out);
  if (c.size() == 2 && c[1] == "create") return CreateReport(bus, o, out);
  return core::InvalidArgument(
      "unknown report command (try: report list, report get ID --out FILE, report create --kind "
      "study --subject ID)",
      "command");
}

}  // namespace fedrx::cli
