#include "services/cli/ingest_command.h"

#include <charconv>
#include <chrono>
#include <cstdio>
#include <iomanip>
#include <map>
#include <ostream>
#include <sstream>

#include "services/cli/cli_common.h"
#include "services/cli/ingest_study_command.h"
#include "services/core/status.h"
#include "services/ingest/compounds.h"
#include "services/ingest/dataset_store.h"

namespace fedrx::cli {
namespace {

constexpr char kIngestUsage[] =
    "usage: fedrx ingest compounds --in FILE --store DIR [--smiles-column C] [--tasks A,B]\n"
    "                              [--key-file K] [--folds 5] [--threads 2] [--radius 2]\n"
    "                              [--bits 2048] [--delimiter , | tab] [--max-bytes N]\n"
    "         fedrx ingest study --in DIR --store DIR [--prefer xpt|json] [--report FILE.json]\n"
    "                            [--max-findings 20] [--refuse-on-errors]\n"
    "  compounds: a CSV/TSV table (a SMILES column, 0/1/empty label columns, optional\n"
    "  split) or an SD file (labels from `> <NAME>` items); every structure is\n"
    "  standardised, given its InChIKey, merged by InChIKey (conflicting 0/1 labels\n"
    "  become missing), fingerprinted (bits scrambled with the consortium key) and given\n"
    "  a keyed scaffold fold; the result is committed as a new version of the store.\n"
    "  study: a SEND or SDTM study folder (*.xpt and/or Dataset-JSON *.json, define.xml\n"
    "  when beside them) is checked for conformance, mapped into the common data model\n"
    "  and committed as a new version (cdm/, conformance.json, descriptor.json). Findings\n"
    "  of any severity are recorded, not fatal, unless --refuse-on-errors; a study without\n"
    "  DM or subjects, or one that cannot be read, writes nothing. --report also writes\n"
    "  the conformance report to FILE.json; --max-findings: findings printed (0..1000).";

struct Flags {
  std::vector<std::string> positional;
  std::map<std::string, std::string> values;
};

core::Result<Flags> ParseFlags(const std::vector<std::string>& args) {
  Flags f;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i].rfind("--", 0) == 0) {
      static const char* known[] = {
          "in",     "store", "smiles-column", "tasks",     "key-file", "folds",  "threads",
          "radius", "bits",  "delimiter",     "max-bytes", "prefer",   "report", "max-findings"};
      const std::string name = args[i].substr(2);
      if (name == "refuse-on-errors") {  // the one flag without a value
        f.values[name] = "true";
        continue;
      }
      bool ok = false;
      for (const char* k : known) ok = ok || name == k;
      if (!ok) return core::InvalidArgument("unknown flag", args[i]);
      if (i + 1 >= args.size()) return core::InvalidArgument(args[i] + " needs a value", args[i]);
      f.values[name] = args[++i];
    } else {
      f.positional.push_back(args[i]);
    }
  }
  return f;
}

// Progress on stderr: a redrawn bar on a terminal, else a line every 10 s.
class Progress {
 public:
  Progress(std::ostream& err, bool tty)
      : err_(err), tty_(tty), start_(Clock::now()), last_(start_) {}
  void Update(std::size_t done, std::size_t total) {
    const auto now = Clock::now();
    const double secs = std::chrono::duration<double>(now - start_).count();
    const double rate = secs > 0 ? static_cast<double>(done) / secs : 0;
    if (tty_) {
      constexpr int kWidth = 30;
      const int filled = total ? static_cast<int>(kWidth * done / total) : kWidth;
      err_ << "\r[" << std::string(filled, '#') << std::string(kWidth - filled, ' ') << "] " << done
           << "/" << total << "  " << std::fixed << std::setprecision(0) << rate << " rec/s"
           << std::flush;
      if (done == total) err_ << "\n";
      drew_ = true;
    } else if (now - last_ >= std::chrono::seconds(10) || (done == total && !finished_)) {
      err_ << "ingest: " << done << "/" << total << " records prepared, " << std::fixed
           << std::setprecision(0) << rate << " rec/s\n";
      last_ = now;
      finished_ = done == total;
    }
  }

 private:
  using Clock = std::chrono::steady_clock;
  std::ostream& err_;
  bool tty_;
  Clock::time_point start_, last_;
  bool drew_ = false;
  bool finished_ = false;
};

void PrintSummary(const ingest::CompoundIngest& run, double seconds, std::ostream& out) {
  const ingest::PreparedCompounds& p = run.prepared;
  const ingest::CompoundDescriptor& d = run.descriptor;
  const ingest::StoreVersion& version = run.version;
  auto row = [&](const std::string& k, const std::string& v) {
    out << "  " << std::left << std::setw(22) << k << v << "\n";
  };
  out << "ingest: " << run.source.path << " -> version " << version.number << "\n";
  row("format", d.source_format);
  row("records read", std::to_string(p.records_read));
  row("compounds ingested", std::to_string(p.compounds.size()));
  row("unparseable", std::to_string(p.unparseable));
  std::size_t missing = 0;
  for (const auto& f : p.findings) missing += f.code == ingest::kFindingMissingStructure;
  row("missing structure", std::to_string(missing));
  row("duplicates merged", std::to_string(p.duplicates_merged));
  row("label conflicts", std::to_string(p.label_conflicts));
  row("findings", std::to_string(p.findings.size()));
  {
    std::ostringstream rate;
    rate << std::fixed << std::setprecision(1) << seconds << " s (" << std::setprecision(0)
         << (seconds > 0 ? p.records_read / seconds : 0) << " records/s)";
    row("time", rate.str());
  }
  row("version", std::to_string(version.number) + " (" + version.dir + ")");
  row("schema hash", d.schema_hash);
  row("preparation hash", d.preparation_hash);
  row("reference set hash", d.reference_hash);
  row("source sha256", d.source_sha256);
  out << "  " << std::left << std::setw(24) << "task" << std::right << std::setw(8) << "pos"
      << std::setw(8) << "neg" << std::setw(9) << "missing" << std::setw(8) << "pos%"
      << "\n";
  for (std::size_t t = 0; t < d.tasks.size(); ++t) {
    const auto& b = d.balance[t];
    const std::size_t known = b.positives + b.negatives;
    std::ostringstream pct;
    pct << std::fixed << std::setprecision(1) << (known ? 100.0 * b.positives / known : 0.0);
    out << "  " << std::left << std::setw(24) << d.tasks[t].substr(0, 23) << std::right
        << std::setw(8) << b.positives << std::setw(8) << b.negatives << std::setw(9) << b.missing
        << std::setw(8) << pct.str() << "\n";
  }
  // The first findings, by record number (never the structures themselves).
  std::size_t shown = 0;
  for (const auto& f : p.findings) {
    if (shown++ == 10) {
      out << "  ... " << p.findings.size() - 10 << " more in findings.csv\n";
      break;
    }
    out << "  record " << f.record << ": " << f.code << ": " << f.message.substr(0, 160) << "\n";
  }
}

core::Status IngestCompounds(const Flags& f, std::ostream& out, std::ostream& err, bool tty) {
  auto need = [&](const char* name) -> core::Result<std::string> {
    auto it = f.values.find(name);
    if (it == f.values.end() || it->second.empty()) {
      return core::InvalidArgument(std::string("--") + name + " is required",
                                   std::string("--") + name);
    }
    return it->second;
  };
  FEDRX_ASSIGN_OR_RETURN(std::string in, need("in"));
  FEDRX_ASSIGN_OR_RETURN(std::string store_dir, need("store"));
  ingest::CompoundReadOptions read;
  if (auto it = f.values.find("smiles-column"); it != f.values.end())
    read.smiles_column = it->second;
  if (auto it = f.values.find("tasks"); it != f.values.end()) read.tasks = SplitComma(it->second);
  if (auto it = f.values.find("delimiter"); it != f.values.end()) {
    if (it->second == "tab" || it->second == "\\t") {
      read.delimiter = '\t';
    } else if (it->second.size() == 1) {
      read.delimiter = it->second[0];
    } else {
      return core::InvalidArgument("expected one character or 'tab'", "--delimiter");
    }
  }
  FEDRX_ASSIGN_OR_RETURN(
      read.max_file_bytes,
      IngestFlagNumber(f.values, "max-bytes", read.max_file_bytes, 1, std::uint64_t{1} << 40));
  ingest::PrepOptions prep;
  FEDRX_ASSIGN_OR_RETURN(std::uint64_t folds, IngestFlagNumber(f.values, "folds", 5, 1, 100));
  FEDRX_ASSIGN_OR_RETURN(std::uint64_t threads, IngestFlagNumber(f.values, "threads", 2, 1, 64));
  FEDRX_ASSIGN_OR_RETURN(std::uint64_t radius, IngestFlagNumber(f.values, "radius", 2, 0, 6));
  FEDRX_ASSIGN_OR_RETURN(std::uint64_t bits, IngestFlagNumber(f.values, "bits", 2048, 64, 1 << 20));
  prep.folds = static_cast<std::uint32_t>(folds);
  prep.threads = static_cast<int>(threads);
  prep.fingerprint.radius = static_cast<int>(radius);
  prep.fingerprint.bits = static_cast<std::uint32_t>(bits);
  ingest::ConsortiumKey key;
  if (auto it = f.values.find("key-file"); it != f.values.end()) {
    FEDRX_ASSIGN_OR_RETURN(key, ingest::ConsortiumKey::FromFile(it->second));
  }
  const auto start = std::chrono::steady_clock::now();
  Progress progress(err, tty);
  ingest::CompoundIngest run;
  FEDRX_RETURN_IF_ERROR(ingest::IngestCompoundFile(
      in, store_dir, read, prep, key,
      [&](std::size_t done, std::size_t total) { progress.Update(done, total); }, run));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  PrintSummary(run, seconds, out);
  return core::Status::Ok();
}

}  // namespace

core::Result<std::uint64_t> IngestFlagNumber(const std::map<std::string, std::string>& flags,
                                             const std::string& name, std::uint64_t fallback,
                                             std::uint64_t lo, std::uint64_t hi) {
  auto it = flags.find(name);
  if (it == flags.end()) return fallback;
  std::uint64_t v = 0;
  const std::string& s = it->second;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v < lo || v > hi) {
    return core::InvalidArgument(
        "'" + s + "' is not a number in " + std::to_string(lo) + ".." + std::to_string(hi),
        "--" + name);
  }
  return v;
}

bool IsIngestCommand(const std::vector<std::string>& args) {
  return !args.empty() && args[0] == "ingest";
}

int RunIngestCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
                     bool err_is_tty) {
  auto flags =
      ParseFlags(std::vector<std::string>(args.begin() + (args.empty() ? 0 : 1), args.end()));
  if (!flags.ok()) {
    err << "fedrx: " << flags.status() << "\n" << kIngestUsage << "\n";
    return 2;
  }
  const std::vector<std::string>& what = flags->positional;
  if (what == std::vector<std::string>{"compounds"}) {
    if (core::Status s = IngestCompounds(*flags, out, err, err_is_tty); !s.ok()) {
      err << "fedrx: ingest failed, the store's current version is unchanged: " << s << "\n";
      return s.code() == core::StatusCode::kInvalidArgument && s.where().rfind("--", 0) == 0 ? 2
                                                                                             : 1;
    }
    return 0;
  }
  if (what == std::vector<std::string>{"study"}) {
    if (core::Status s = IngestStudyCommand(flags->values, out, err, err_is_tty); !s.ok()) {
      err << "fedrx: ingest study failed, the store's current version is unchanged: " << s << "\n";
      return s.code() == core::StatusCode::kInvalidArgument && s.where().rfind("--", 0) == 0 ? 2
                                                                                             : 1;
    }
    return 0;
  }
  err << kIngestUsage << "\n";
  return 2;
}

}  // namespace fedrx::cli
