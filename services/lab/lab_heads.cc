// `heads-prepare` and `heads-compare`: the private-heads demo, in which four
// institutions with different tasks (Tox21 nuclear-receptor assays, Tox21
// stress-response assays, ClinTox, a ToxCast subset) federate one trunk and
// each keeps a head for its own tasks; then, per institution, the federated
// trunk under its private head against the same network trained on its data
// alone.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <iomanip>
#include <set>

#include "services/coordinator/study_runner.h"
#include "services/lab/lab_common.h"
#include "services/ml/csv_dataset.h"
#include "services/ml/private_head.h"
#include "services/core/random.h"
#include "services/ml/split.h"
#include "services/ml/trainer.h"

namespace fedrx::lab {
namespace {

constexpr char kSubstitution[] =
    "site 4 holds a ToxCast subset instead of SIDER: SIDER's licence is non-commercial";

// One institution of the demo: its file and the rows it holds.
struct HeadsSite {
  std::string file;  // under --out
  ml::Dataset data;  // its own tasks only, split column filled
};

// `count` of the rows [0, n), drawn without replacement from `seed` and
// returned ascending: one institution's share of a shared compound library.
std::vector<std::size_t> DrawRows(std::size_t n, std::size_t count, std::uint64_t seed) {
  std::vector<std::size_t> rows(n);
  for (std::size_t i = 0; i < n; ++i) rows[i] = i;
  core::Xoshiro256 rng(seed);
  rng.Shuffle(rows.data(), rows.size());
  rows.resize(std::min(count, n));
  std::sort(rows.begin(), rows.end());
  return rows;
}

// `d` restricted to `tasks` (each must be one of its columns) and to the rows
// with at least one of those labels: a row without any is not data the
// institution holds for its tasks.
core::Result<ml::Dataset> OwnTasks(const ml::Dataset& d, const std::vector<std::string>& tasks,
                                   const std::string& path) {
  for (const auto& t : tasks) {
    if (std::find(d.tasks.begin(), d.tasks.end(), t) == d.tasks.end()) {
      return core::InvalidArgument("no task column '" + t + "'", path);
    }
  }
  ml::Dataset own = d.WithTasks(tasks);
  std::vector<std::size_t> labelled;
  for (std::size_t r = 0; r < own.size(); ++r) {
    for (std::size_t t = 0; t < own.num_tasks(); ++t) {
      if (own.label(r, t) != ml::kMissing) {
        labelled.push_back(r);
        break;
      }
    }
  }
  return own.Subset(labelled);
}

// Tags every row train / valid / test by an 80/10/10 scaffold split.
void TagScaffoldSplit(ml::Dataset& d) {
  d.split.clear();
  const ml::SplitIndices parts = ml::ScaffoldSplit(d, 0.8, 0.1);
  d.split.assign(d.size(), "");
  for (std::size_t r : parts.train) d.split[r] = "train";
  for (std::size_t r : parts.valid) d.split[r] = "valid";
  for (std::size_t r : parts.test) d.split[r] = "test";
}

std::string Join(const std::vector<std::string>& items, const std::string& sep) {
  std::string s;
  for (const auto& i : items) s += (s.empty() ? "" : sep) + i;
  return s;
}

// ---- heads-compare ---------------------------------------------------------------------

// One --sites entry: ID=CSV:HEAD.
struct SiteArg {
  std::string id, csv, head;
};

core::Result<std::vector<SiteArg>> ParseSites(const Flags& f) {
  FEDRX_ASSIGN_OR_RETURN(std::string flag, Need(f, "sites"));
  std::vector<SiteArg> sites;
  for (const auto& item : CommaList(flag)) {
    const auto eq = item.find('=');
    const auto colon = item.rfind(':');
    if (eq == std::string::npos || eq == 0 || colon == std::string::npos || colon < eq + 2 ||
        colon + 1 == item.size()) {
      return core::InvalidArgument("expected ID=CSV:HEAD_FILE, got '" + item + "'", "--sites");
    }
    SiteArg s{item.substr(0, eq), item.substr(eq + 1, colon - eq - 1), item.substr(colon + 1)};
    for (const auto& other : sites) {
      if (other.id == s.id)
        return core::InvalidArgument("site '" + s.id + "' given twice", "--sites");
    }
    sites.push_back(std::move(s));
  }
  if (sites.empty()) return core::InvalidArgument("--sites names no site", "--sites");
  return sites;
}

struct SiteResult {
  std::string id;
  std::vector<std::string> tasks;
  std::size_t train_rows = 0, test_rows = 0;
  std::vector<ml::TaskMetrics> federated, local;
};

core::Result<SiteResult> CompareSite(const codec::StudySpec& spec, const SiteArg& site,
                                     const std::vector<float>& trunk, const ml::TrainOptions& train,
                                     std::ostream& out) {
  const ml::NetSpec trunk_net = ml::NetSpecFromStudy(spec);
  FEDRX_ASSIGN_OR_RETURN(ml::Dataset all, Load(site.csv, static_cast<int>(spec.fingerprint_radius),
                                               trunk_net.input_dim, out));
  if (all.split.empty()) {
    return core::InvalidArgument("no split column (heads-prepare writes one)", site.csv);
  }
  // The site's own tasks, as the site picks them: all of its columns, or,
  // when the study names tasks, those of them it holds, in the study's order.
  std::vector<std::string> tasks;
  if (spec.tasks.empty()) {
    tasks = all.tasks;
  } else {
    for (const auto& t : spec.tasks) {
      if (std::find(all.tasks.begin(), all.tasks.end(), t) != all.tasks.end()) tasks.push_back(t);
    }
  }
  if (tasks.empty()) return core::InvalidArgument("holds none of the study's tasks", site.csv);
  SiteResult r;
  r.id = site.id;
  r.tasks = tasks;
  const ml::Dataset train_rows = all.WithSplit("train").WithTasks(tasks);
  const ml::Dataset test = all.WithSplit("test").WithTasks(tasks);
  r.train_rows = train_rows.size();
  r.test_rows = test.size();
  if (test.size() == 0) return core::InvalidArgument("no test rows", site.csv);
  const ml::NetSpec net = ml::WithHead(trunk_net, static_cast<std::uint32_t>(tasks.size()));

  // Federated: the global trunk under the site's own trained head.
  FEDRX_ASSIGN_OR_RETURN(std::vector<float> head,
                         ml::ReadHeadFile(site.head, tasks, ml::HeadParameterCount(net)));
  FEDRX_ASSIGN_OR_RETURN(std::vector<float> full, ml::JoinTrunkHead(net, trunk, head));
  FEDRX_ASSIGN_OR_RETURN(std::vector<float> probs, ml::Predict(net, full, test.x, train.threads));
  FEDRX_ASSIGN_OR_RETURN(r.federated, ml::Evaluate(test, probs));

  // Local only: the same network from the same start (the coordinator's
  // initial trunk, the site's initial head) on its train rows alone.
  FEDRX_ASSIGN_OR_RETURN(std::vector<float> local,
                         ml::JoinTrunkHead(net, coordinator::InitialModel(spec),
                                           ml::InitHead(net, ml::PrivateHeadSeed(spec.seed, site.id))));
  if (train.epochs > 0) {  // 0: the start itself, which pins the seeds in tests
    ml::Trainer trainer(train);
    FEDRX_ASSIGN_OR_RETURN(ml::TrainStats stats, trainer.Train(net, train_rows, local));
    (void)stats;
  }
  FEDRX_ASSIGN_OR_RETURN(probs, ml::Predict(net, local, test.x, train.threads));
  FEDRX_ASSIGN_OR_RETURN(r.local, ml::Evaluate(test, probs));
  return r;
}

}  // namespace

core::Status HeadsPrepareCommand(const Flags& f, std::ostream& out) {
  FEDRX_ASSIGN_OR_RETURN(std::string tox21_path, Need(f, "tox21"));
  FEDRX_ASSIGN_OR_RETURN(std::string clintox_path, Need(f, "clintox"));
  FEDRX_ASSIGN_OR_RETURN(std::string toxcast_path, Need(f, "toxcast"));
  FEDRX_ASSIGN_OR_RETURN(std::string dir, Need(f, "out"));
  FEDRX_ASSIGN_OR_RETURN(std::uint64_t seed, CountFlag(f, "seed", 7, 0, 1'000'000'000'000'000));
  FEDRX_ASSIGN_OR_RETURN(double fraction, NumberFlag(f, "fraction", 0.6, 0.01, 1));

  // Only the SMILES and labels are written; small fingerprints load faster.
  FEDRX_ASSIGN_OR_RETURN(ml::Dataset tox21, Load(tox21_path, 2, 64, out));
  FEDRX_ASSIGN_OR_RETURN(ml::Dataset clintox, Load(clintox_path, 2, 64, out));
  FEDRX_ASSIGN_OR_RETURN(ml::Dataset toxcast, Load(toxcast_path, 2, 64, out));
  std::vector<std::string> nr, sr;
  for (const auto& t : tox21.tasks) {
    if (t.rfind("NR-", 0) == 0) nr.push_back(t);
    if (t.rfind("SR-", 0) == 0) sr.push_back(t);
  }
  if (nr.empty() || sr.empty()) {
    return core::InvalidArgument("expected Tox21's NR-* and SR-* task columns", tox21_path);
  }
  // Two labs screened two independently drawn shares of one compound library.
  const auto share = static_cast<std::size_t>(std::llround(fraction * tox21.size()));
  const ml::Dataset nr_rows = tox21.Subset(DrawRows(tox21.size(), share, core::MixKeys(seed, 1)));
  const ml::Dataset sr_rows = tox21.Subset(DrawRows(tox21.size(), share, core::MixKeys(seed, 2)));
  std::vector<HeadsSite> sites(4);
  sites[0].file = "nr-site.csv";
  FEDRX_ASSIGN_OR_RETURN(sites[0].data, OwnTasks(nr_rows, nr, tox21_path));
  sites[1].file = "sr-site.csv";
  FEDRX_ASSIGN_OR_RETURN(sites[1].data, OwnTasks(sr_rows, sr, tox21_path));
  sites[2].file = "clintox-site.csv";
  FEDRX_ASSIGN_OR_RETURN(sites[2].data,
                         OwnTasks(clintox, {"FDA_APPROVED", "CT_TOX"}, clintox_path));
  sites[3].file = "toxcast-site.csv";
  FEDRX_ASSIGN_OR_RETURN(sites[3].data, OwnTasks(toxcast, toxcast.tasks, toxcast_path));

  std::vector<std::set<std::string>> molecules(sites.size());
  for (std::size_t i = 0; i < sites.size(); ++i) {
    TagScaffoldSplit(sites[i].data);
    molecules[i].insert(sites[i].data.smiles.begin(), sites[i].data.smiles.end());
    FEDRX_RETURN_IF_ERROR(ml::WriteCsvDataset(dir + "/" + sites[i].file, sites[i].data));
  }
  out << "four institutions, each with its own tasks (molecules compared by canonical SMILES):\n"
      << std::left << std::setw(18) << "file" << std::right << std::setw(6) << "rows"
      << std::setw(7) << "train" << std::setw(6) << "valid" << std::setw(6) << "test"
      << std::setw(7) << "tasks" << std::setw(10) << "shared*"
      << "  shared with nr / sr / clintox / toxcast\n";
  for (std::size_t i = 0; i < sites.size(); ++i) {
    const ml::Dataset& d = sites[i].data;
    const auto count = [&](const char* tag) {
      return std::count(d.split.begin(), d.split.end(), tag);
    };
    std::size_t shared_any = 0;
    for (const auto& m : molecules[i]) {
      for (std::size_t j = 0; j < sites.size(); ++j) {
        if (j != i && molecules[j].count(m) != 0) {
          ++shared_any;
          break;
        }
      }
    }
    out << std::left << std::setw(18) << sites[i].file << std::right << std::setw(6) << d.size()
        << std::setw(7) << count("train") << std::setw(6) << count("valid") << std::setw(6)
        << count("test") << std::setw(7) << d.num_tasks() << std::setw(10) << shared_any << " ";
    for (std::size_t j = 0; j < sites.size(); ++j) {
      std::size_t both = 0;
      if (j != i) {
        for (const auto& m : molecules[i]) both += molecules[j].count(m);
      }
      out << (j ? " / " : " ") << (j == i ? std::string("-") : std::to_string(both));
    }
    out << "\n    tasks: " << Join(d.tasks, ", ") << "\n";
  }
  out << "* molecules also held by at least one other site; each site's rows are scaffold-split "
         "80/10/10 on their own; written to "
      << dir << "/\n";
  return core::Status::Ok();
}

core::Status HeadsCompareCommand(const Flags& f, std::ostream& out) {
  FEDRX_ASSIGN_OR_RETURN(std::string study_path, Need(f, "study"));
  FEDRX_ASSIGN_OR_RETURN(std::string trunk_path, Need(f, "trunk"));
  FEDRX_ASSIGN_OR_RETURN(std::string json_path, Need(f, "json"));
  FEDRX_ASSIGN_OR_RETURN(std::vector<SiteArg> sites, ParseSites(f));
  FEDRX_ASSIGN_OR_RETURN(codec::StudySpec spec, LoadStudy(study_path));
  if (!spec.private_heads) {
    return core::InvalidArgument("not a private-heads study (train.private_heads is not true)",
                                 study_path);
  }
  for (const auto& s : sites) {
    if (!spec.sites.empty() &&
        std::find(spec.sites.begin(), spec.sites.end(), s.id) == spec.sites.end()) {
      return core::InvalidArgument(
          "site '" + s.id + "' is not one of the study's sites (" + Join(spec.sites, ", ") + ")",
          "--sites");
    }
  }
  const ml::NetSpec trunk_net = ml::NetSpecFromStudy(spec);
  FEDRX_ASSIGN_OR_RETURN(std::vector<float> trunk,
                         ReadWeights(trunk_path, ml::TrunkParameterCount(trunk_net)));
  FEDRX_RETURN_IF_ERROR(ml::ValidateTrunkParameters(trunk_net, trunk));

  // The federation's budget: what each site trained over the whole study.
  ml::TrainOptions o;
  FEDRX_ASSIGN_OR_RETURN(std::uint64_t epochs,
                         CountFlag(f, "epochs", spec.rounds * spec.local_epochs, 0, 100000));
  o.epochs = static_cast<std::uint32_t>(epochs);
  o.batch_size = spec.batch_size;
  o.learning_rate = spec.learning_rate;
  o.seed = spec.seed;
  o.threads = 2;

  out << "Private heads, study " << spec.study_id
      << ": per site, the federated trunk under the site's own head against the same network\n"
         "trained on the site's data alone ("
      << o.epochs
      << " epochs, the study's budget). In a deployment each institution runs this\n"
         "on its own machine with its own head, which never leaves it; in this demo all sites\n"
         "live on one machine, so one call covers them.\n";
  std::vector<SiteResult> results;
  for (const auto& s : sites) {
    auto r = CompareSite(spec, s, trunk, o, out);
    if (!r.ok()) {
      return core::Status(r.status().code(), "site " + s.id + ": " + r.status().message(),
                          r.status().where());
    }
    results.push_back(std::move(*r));
  }

  out << "\n"
      << std::left << std::setw(14) << "site" << std::right << std::setw(6) << "tasks"
      << std::setw(11) << "test rows" << std::setw(24) << "fed. trunk + own head" << std::setw(13)
      << "local only" << std::setw(9) << "gain"
      << "   (mean test ROC-AUC)\n";
  for (const auto& r : results) {
    const double fed = ml::MeanRocAuc(r.federated), local = ml::MeanRocAuc(r.local);
    out << std::left << std::setw(14) << r.id << std::right << std::setw(6) << r.tasks.size()
        << std::setw(11) << r.test_rows << std::fixed << std::setprecision(4) << std::setw(24)
        << fed << std::setw(13) << local << std::setw(9) << std::showpos << fed - local
        << std::noshowpos << "\n";
  }
  for (const auto& r : results) {
    out << "\n" << r.id << " per task (ROC-AUC federated / local only):\n";
    for (std::size_t t = 0; t < r.tasks.size(); ++t) {
      out << "  " << std::left << std::setw(22) << r.tasks[t] << std::right << std::fixed
          << std::setprecision(4) << std::setw(8) << r.federated[t].roc_auc << std::setw(9)
          << r.local[t].roc_auc << "   (" << r.federated[t].positives << " positives of "
          << r.federated[t].positives + r.federated[t].negatives << ")\n";
    }
  }
  out << "\n" << kSubstitution << "\n";

  std::ofstream json(json_path, std::ios::trunc);
  json << "{\"study\": \"" << spec.study_id << "\", \"substitution\": \"" << kSubstitution
       << "\",\n  \"note\": \"each institution runs this on its own machine (its head never "
          "leaves it); in the demo all sites share one machine\",\n  \"local_only_epochs\": "
       << o.epochs << ", \"batch_size\": " << o.batch_size
       << ", \"learning_rate\": " << JsonNumber(o.learning_rate) << ",\n  \"sites\": {\n";
  for (std::size_t i = 0; i < results.size(); ++i) {
    const SiteResult& r = results[i];
    json << "    \"" << r.id << "\": {\"tasks\": [";
    for (std::size_t t = 0; t < r.tasks.size(); ++t)
      json << (t ? ", " : "") << "\"" << r.tasks[t] << "\"";
    json << "], \"train_rows\": " << r.train_rows << ", \"test_rows\": " << r.test_rows
         << ",\n      \"federated_trunk_private_head\": ";
    WriteMetricsJson(json, r.federated);
    json << "},\n      \"local_only\": ";
    WriteMetricsJson(json, r.local);
    json << "},\n      \"gain\": "
         << JsonNumber(ml::MeanRocAuc(r.federated) - ml::MeanRocAuc(r.local)) << "}"
         << (i + 1 < results.size() ? "," : "") << "\n";
  }
  json << "  }}\n";
  if (!json) return core::Unavailable("cannot write the private-heads comparison", json_path);
  out << "private-heads comparison written to " << json_path << "\n";
  return core::Status::Ok();
}

}  // namespace fedrx::lab
