#include "services/reverse/reverse_service.h"

#include <algorithm>
#include <cmath>
#include <iostream>

#include "services/coordinator/study_store.h"
#include "services/domain/working.h"
#include "services/reverse/organ_classes.h"
#include "services/reverse/recommend.h"

namespace fedrx::reverse {
namespace {

// The statistic a counts study must compute (coordinator::kStatisticPairCounts;
// the service does not link the coordinator).
constexpr char kPairCounts[] = "pair_counts";
// Counts at or above 2^24 are not stored exactly by float32, so the
// coordinator never stores them: a blob holding one is damaged.
constexpr double kMaxExactCount = 16777216.0;
// Entries of one request, per list: a signal is a handful of terms.
constexpr std::size_t kMaxEntries = 64;

codec::AssayAssociation ToWire(const std::string& clinical, const AssayRecommendation& r) {
  codec::AssayAssociation a;
  a.clinical_label = clinical;
  a.assay = r.assay;
  a.a = r.counts.a;
  a.b = r.counts.b;
  a.c = r.counts.c;
  a.d = r.counts.d;
  a.sufficient_evidence = r.sufficient_evidence;
  if (r.sufficient_evidence) {
    a.odds_ratio = r.odds_ratio.estimate;
    a.ci_low = r.odds_ratio.ci_low;
    a.ci_high = r.odds_ratio.ci_high;
    a.p_value = r.p_value;
    a.q_value = r.q_value;
  }
  a.significant = r.significant;
  a.in_table_family = r.in_table_family;
  a.evidence = r.evidence;
  return a;
}

core::Status CheckEntries(const std::vector<std::string>& entries, const std::string& field) {
  if (entries.size() > kMaxEntries) {
    return core::InvalidArgument("at most " + std::to_string(kMaxEntries) + " entries",
                                 "ReverseTranslate." + field);
  }
  for (std::size_t i = 0; i < entries.size(); ++i) {
    if (entries[i].empty() || entries[i].size() > 256) {
      return core::InvalidArgument("an entry is 1..256 bytes",
                                   "ReverseTranslate." + field + "[" + std::to_string(i) + "]");
    }
  }
  return core::Status::Ok();
}

std::string Join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

void Count(core::Metrics* metrics, const char* kind, std::size_t n) {
  if (metrics == nullptr || n == 0) return;
  metrics
      ->Counter("signals_total", "Entries of the clinical signals asked about, by kind",
                {{"kind", kind}})
      .Inc(static_cast<double>(n));
}

void BuildWorking(const codec::ReverseTranslate& request, const CountsSnapshot& snapshot,
                  std::size_t tested, std::size_t significant, codec::Working& w) {
  domain::WorkingBuilder b(&w);
  w.method =
      "Reverse translation: each organ class of the signal maps to the SEND domains and "
      "endpoints to study in vivo (documented organ-class table); the preclinical assays are "
      "ranked by their association with the clinical label in 2x2 counts that the sites "
      "computed on their own compounds (those carrying both labels, matched by InChIKey) and "
      "the federation summed, never pooling compounds.";
  w.guidance =
      "An association says which assays flagged compounds that went on to show the clinical "
      "signal; it is not causation. Significant: q below the FDR level requested.";
  const FederatedCounts* c = snapshot.counts.get();
  if (c != nullptr) {
    b.Step("Counts summed across sites",
           "n_xy = sum over sites of n_xy(site), per cell of each 2x2 table",
           {domain::Qty("sites", c->sites), domain::Qty("compounds", c->compounds, "compounds")},
           domain::Qty("label pairs", static_cast<double>(c->pairs.size())),
           std::string(c->secure ? "secure aggregation (Bonawitz et al. 2017): the coordinator "
                                   "learned only the sum"
                                 : "plain sum of the sites' counts"));
  }
  b.Step("Minimum margin",
         "a pair is tested only when a+b, c+d, a+c and b+d each hold at least m compounds",
         {domain::Qty("m", static_cast<double>(kMinMarginCount), "compounds")},
         domain::Qty("pairs tested", static_cast<double>(tested)),
         "fewer compounds give no usable interval");
  b.Step("Odds ratio (Woolf, Haldane-Anscombe)",
         "ln OR = ln(a d / (b c)); SE = sqrt(1/a + 1/b + 1/c + 1/d); 95% CI = exp(ln OR -/+ "
         "1.959964 SE); 0.5 added to every cell when one is 0",
         {domain::Qty("confidence", 0.95)}, domain::Qty("z", 1.959964), "Woolf 1955; Haldane 1956");
  b.Step("Fisher's exact test, two-sided",
         "p = sum of the hypergeometric probabilities (margins fixed) of the tables no more "
         "probable than the observed one (relative tolerance 1e-7, as R's fisher.test)",
         {}, domain::Qty("tests", static_cast<double>(tested)), "Fisher 1922; R fisher.test");
  b.Step("Benjamini-Hochberg",
         "q_(i) = min over j >= i of min(1, m p_(j) / j), p sorted ascending, over the m tested "
         "pairs of the counts study (one FDR family); significant when q < FDR",
         {domain::Qty("m", static_cast<double>(tested)), domain::Qty("FDR", request.fdr)},
         domain::Qty("significant pairs", static_cast<double>(significant)),
         "Benjamini & Hochberg 1995; R p.adjust(method = \"BH\")");
  if (c == nullptr) {
    b.Note("No association counts: " + snapshot.missing +
           ". The organ-class table alone answers (SEND endpoints, no ranked assays).");
  } else {
    b.Note("Counts: study " + c->study + " version " + std::to_string(c->version) + ", " +
           std::to_string(c->sites) + " site(s), " + std::to_string(c->compounds) +
           " compounds; clinical labels " + Join(c->clinical) + ".");
    b.Note(
        "A compound held by two sites counts at each (sites never reveal which compounds "
        "they hold).");
  }
}

}  // namespace

core::Result<FederatedCounts> CountsFromVersion(const codec::StudySpec& spec, std::uint32_t version,
                                                std::span<const float> blob) {
  if (spec.statistic != kPairCounts) {
    return core::FailedPrecondition("study " + spec.study_id +
                                        " is not a pair_counts statistics study (statistic '" +
                                        spec.statistic + "')",
                                    "reverse.counts_study");
  }
  FederatedCounts out;
  out.study = spec.study_id;
  out.version = version;
  out.clinical = spec.statistic_rows;
  out.preclinical = spec.tasks;
  out.pairs = AllPairs(out.clinical, out.preclinical);
  out.secure = spec.secure_aggregation;
  const std::string where = "study " + spec.study_id + " version " + std::to_string(version);
  if (blob.size() != 4 * out.pairs.size()) {
    return core::Status(core::StatusCode::kDataLoss,
                        "the counts hold " + std::to_string(blob.size()) + " words, " +
                            std::to_string(out.pairs.size()) + " pairs need " +
                            std::to_string(4 * out.pairs.size()),
                        where);
  }
  std::vector<std::uint64_t> flat(blob.size());
  for (std::size_t i = 0; i < blob.size(); ++i) {
    const double v = blob[i];
    if (!(v >= 0 && v < kMaxExactCount) || std::floor(v) != v) {
      return core::Status(core::StatusCode::kDataLoss,
                          "word " + std::to_string(i) +
                              " is not a count (a non-negative "
                              "integer below 2^24)",
                          where);
    }
    flat[i] = static_cast<std::uint64_t>(v);
  }
  FEDRX_ASSIGN_OR_RETURN(out.counts, Unflatten(flat, out.pairs.size()));
  FEDRX_ASSIGN_OR_RETURN(out.associations, Analyze(out.pairs, out.counts));
  return out;
}

core::Result<std::shared_ptr<const FederatedCounts>> CountsReader::Read() {
  coordinator::StudyStore studies(store_);
  core::Result<coordinator::StudyRecord> record = studies.Load(study_);
  if (!record.ok()) {
    if (record.status().code() == core::StatusCode::kNotFound) {
      return std::shared_ptr<const FederatedCounts>();
    }
    return record.status();
  }
  if (record->model_version == 0) return std::shared_ptr<const FederatedCounts>();
  FEDRX_ASSIGN_OR_RETURN(std::vector<float> blob, studies.LoadModel(study_, record->model_version));
  FEDRX_ASSIGN_OR_RETURN(FederatedCounts counts,
                         CountsFromVersion(record->spec, record->model_version, blob));
  // Who contributed: the round that produced the version.
  FEDRX_ASSIGN_OR_RETURN(std::uint32_t round, studies.ModelRound(study_, record->model_version));
  FEDRX_ASSIGN_OR_RETURN(std::optional<coordinator::RoundRecord> r,
                         studies.LoadRound(study_, round));
  if (r.has_value()) {
    counts.sites = static_cast<std::uint32_t>(r->contributed.size());
    counts.compounds = r->samples;
  }
  return std::shared_ptr<const FederatedCounts>(
      std::make_shared<FederatedCounts>(std::move(counts)));
}

CountsCache::CountsCache(std::unique_ptr<CountsReader> reader, core::Metrics& metrics)
    : reader_(std::move(reader)), metrics_(metrics) {
  snapshot_.study = reader_ ? reader_->study() : "";
  snapshot_.missing = reader_ ? "the counts study " + reader_->study() + " has not been read yet"
                              : "no counts study is configured (reverse.counts_study)";
}

core::Status CountsCache::Refresh() {
  if (!reader_) return core::Status::Ok();
  std::lock_guard<std::mutex> reading(read_mu_);
  core::Result<std::shared_ptr<const FederatedCounts>> read = reader_->Read();
  std::lock_guard<std::mutex> lock(mu_);
  if (!read.ok()) {
    metrics_.CountError("counts", "read");
    std::cerr << "reverse: cannot read the counts of study " << reader_->study() << ": "
              << read.status() << "\n";
    if (!snapshot_.counts) {
      snapshot_.missing = "the counts study " + reader_->study() + " cannot be read (" +
                          read.status().message() + ")";
    }
    return read.status();
  }
  if (*read == nullptr) {
    snapshot_.counts.reset();
    snapshot_.missing = "the counts study " + reader_->study() +
                        " has no counts yet (not created, or its round has not completed)";
  } else {
    if (!snapshot_.counts || snapshot_.counts->version != (*read)->version) {
      std::cerr << "reverse: counts of study " << (*read)->study << " version " << (*read)->version
                << ": " << (*read)->pairs.size() << " pairs, " << (*read)->sites << " site(s)\n";
    }
    snapshot_.counts = std::move(*read);
    snapshot_.missing.clear();
  }
  metrics_.Gauge("counts_version", "Version of the counts study the answers use (0: none)")
      .Set(snapshot_.counts ? static_cast<double>(snapshot_.counts->version) : 0.0);
  return core::Status::Ok();
}

CountsSnapshot CountsCache::Current() const {
  std::lock_guard<std::mutex> lock(mu_);
  return snapshot_;
}

core::Result<codec::ReverseTranslation> AnswerReverseTranslate(
    const codec::ReverseTranslate& request, const CountsSnapshot& snapshot,
    core::Metrics* metrics) {
  if (!(request.fdr > 0 && request.fdr <= 1)) {
    return core::InvalidArgument("fdr must be in (0, 1]", "ReverseTranslate.fdr");
  }
  FEDRX_RETURN_IF_ERROR(CheckEntries(request.organ_classes, "organ_classes"));
  FEDRX_RETURN_IF_ERROR(CheckEntries(request.adverse_events, "adverse_events"));
  FEDRX_RETURN_IF_ERROR(CheckEntries(request.clinical_labels, "clinical_labels"));
  if (request.organ_classes.empty() && request.adverse_events.empty() &&
      request.clinical_labels.empty()) {
    return core::InvalidArgument(
        "the signal is empty: name an organ class, an adverse event or a clinical label",
        "ReverseTranslate");
  }
  for (std::size_t i = 0; i < request.organ_classes.size(); ++i) {
    if (FindOrganClass(request.organ_classes[i]) == nullptr) {
      return core::InvalidArgument(
          "unknown organ class '" + request.organ_classes[i] +
              "' (the 27 SIDER system organ classes, e.g. \"Hepatobiliary disorders\")",
          "ReverseTranslate.organ_classes[" + std::to_string(i) + "]");
    }
  }
  for (std::size_t i = 0; i < request.adverse_events.size(); ++i) {
    if (OrganClassForTerm(request.adverse_events[i]) == nullptr) {
      return core::InvalidArgument("unknown adverse-event term '" + request.adverse_events[i] +
                                       "' (neither an organ class nor a term of the synonym table)",
                                   "ReverseTranslate.adverse_events[" + std::to_string(i) + "]");
    }
  }
  const FederatedCounts* counts = snapshot.counts.get();
  if (counts != nullptr) {
    for (std::size_t i = 0; i < request.clinical_labels.size(); ++i) {
      const std::string& label = request.clinical_labels[i];
      if (std::find(counts->clinical.begin(), counts->clinical.end(), label) ==
          counts->clinical.end()) {
        return core::InvalidArgument("the counts (study " + counts->study +
                                         ") hold no clinical "
                                         "label '" +
                                         label + "' (they hold " + Join(counts->clinical) + ")",
                                     "ReverseTranslate.clinical_labels[" + std::to_string(i) + "]");
      }
    }
  }
  Count(metrics, "organ_class", request.organ_classes.size());
  Count(metrics, "adverse_event", request.adverse_events.size());
  Count(metrics, "clinical_label", request.clinical_labels.size());

  static const std::vector<Association> kNone;
  const std::vector<Association>& associations = counts ? counts->associations : kNone;
  codec::ReverseTranslation out;
  if (!request.organ_classes.empty() || !request.adverse_events.empty()) {
    FEDRX_ASSIGN_OR_RETURN(std::vector<OrganClassRecommendation> recs,
                           Recommend(ClinicalSignal{request.organ_classes, request.adverse_events},
                                     associations, request.fdr));
    for (auto& rec : recs) {
      codec::OrganClassRecommendation o;
      o.organ_class = rec.organ_class;
      o.matched_terms = rec.matched_terms;
      for (const auto& a : rec.assays) o.assays.push_back(ToWire(rec.organ_class, a));
      for (const auto& e : rec.in_vivo_endpoints) o.endpoints.push_back({e.domain, e.code, e.note});
      o.none_reason = rec.none_reason;
      o.rationale = rec.rationale;
      o.reference = rec.reference;
      out.organ_classes.push_back(std::move(o));
    }
  }
  for (const std::string& label : request.clinical_labels) {
    std::vector<AssayRecommendation> ranked;
    for (const Association& a : associations) {
      if (a.pair.clinical == label) {
        ranked.push_back(ToRecommendation(a, request.fdr, FindOrganClass(label)));
      }
    }
    RankAssays(ranked);
    for (const auto& r : ranked) out.label_associations.push_back(ToWire(label, r));
  }
  out.counts_study = snapshot.study;
  std::size_t tested = 0, significant = 0;
  if (counts != nullptr) {
    out.counts_study = counts->study;
    out.counts_version = counts->version;
    out.counts_sites = counts->sites;
    out.counts_compounds = counts->compounds;
    out.counts_secure = counts->secure;
    for (const Association& a : counts->associations) {
      tested += a.sufficient_evidence ? 1 : 0;
      significant += a.sufficient_evidence && a.q_value < request.fdr ? 1 : 0;
    }
  }
  BuildWorking(request, snapshot, tested, significant, out.working);
  if (counts != nullptr) {
    for (const auto& o : out.organ_classes) {
      if (o.assays.empty()) {
        out.working.notes.push_back("The counts hold no pairs for " + o.organ_class +
                                    " (their clinical labels are " + Join(counts->clinical) +
                                    "): its endpoints come from the table alone.");
      }
    }
  }
  return out;
}

}  // namespace fedrx::reverse
