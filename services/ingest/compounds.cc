#include "services/ingest/compounds.h"

#include <sodium.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>
#include <unordered_map>

#include "services/ingest/dataset_store.h"
#include "services/ingest/file_probe.h"
#include "services/ingest/sdf_reader.h"

namespace fedrx::ingest {
namespace {

using internal::Where;

constexpr std::size_t kHeadBytes = 64 * 1024;
constexpr std::size_t kTaskSampleRecords = 2000;
constexpr std::size_t kMaxTasks = 4096;
constexpr std::size_t kMaxKeyBytes = 4096;
constexpr std::size_t kMinKeyBytes = 16;
constexpr char kTableKind[] = "fedrx-compounds/1";
constexpr char kFixedColumns[] = "inchikey,smiles,scaffold,fold,split,fingerprint";

std::string Hex(const unsigned char* p, std::size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string out(2 * n, '0');
  for (std::size_t i = 0; i < n; ++i) {
    out[2 * i] = digits[p[i] >> 4];
    out[2 * i + 1] = digits[p[i] & 15];
  }
  return out;
}

std::string Sha256Hex(std::string_view data) {
  unsigned char out[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(out, reinterpret_cast<const unsigned char*>(data.data()), data.size());
  return Hex(out, sizeof out);
}

void HmacSha256(std::string_view key, std::string_view message, unsigned char out[32]) {
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, reinterpret_cast<const unsigned char*>(key.data()), key.size());
  crypto_auth_hmacsha256_update(&st, reinterpret_cast<const unsigned char*>(message.data()),
                                message.size());
  crypto_auth_hmacsha256_final(&st, out);
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

// 0, 1 or missing; nullopt for anything else.
std::optional<std::int8_t> ParseLabel(std::string_view v) {
  v = Trim(v);
  if (v.empty()) return ml::kMissing;
  if (v == "0" || v == "0.0" || v == "0.00") return std::int8_t{0};
  if (v == "1" || v == "1.0" || v == "1.00") return std::int8_t{1};
  return std::nullopt;
}

bool IsIdColumn(const std::string& lower) {
  static const char* ids[] = {"mol_id",      "id",  "name",  "num",
                              "compound_id", "cid", "index", "smiles_id"};
  for (const char* id : ids) {
    if (lower == id) return true;
  }
  return false;
}

// RFC 4180 records over an in-memory text (quotes, doubled quotes, embedded
// delimiters and line breaks; LF or CRLF).
class CsvCursor {
 public:
  CsvCursor(std::string_view text, char delimiter) : text_(text), delim_(delimiter) {
    if (text_.substr(0, 3) == "\xEF\xBB\xBF") pos_ = 3;
  }
  // False at the end; `line` is where the record starts. kInvalidArgument
  // for an unterminated quote.
  core::Result<bool> Next(std::vector<std::string>* fields, std::size_t* line) {
    fields->clear();
    // Skip blank lines.
    while (pos_ < text_.size() && (text_[pos_] == '\n' || text_[pos_] == '\r')) {
      if (text_[pos_] == '\n') ++line_;
      ++pos_;
    }
    if (pos_ >= text_.size()) return false;
    *line = line_;
    std::string field;
    bool quoted = false;
    bool was_quoted = false;
    while (pos_ < text_.size()) {
      const char c = text_[pos_++];
      if (quoted) {
        if (c == '"') {
          if (pos_ < text_.size() && text_[pos_] == '"') {
            field.push_back('"');
            ++pos_;
          } else {
            quoted = false;
          }
        } else {
          if (c == '\n') ++line_;
          field.push_back(c);
        }
        continue;
      }
      if (c == '"' && field.empty() && !was_quoted) {
        quoted = was_quoted = true;
      } else if (c == delim_) {
        fields->push_back(std::move(field));
        field.clear();
        was_quoted = false;
      } else if (c == '\n') {
        ++line_;
        break;
      } else if (c == '\r') {
        // dropped: CRLF
      } else {
        field.push_back(c);
      }
    }
    if (quoted)
      return core::InvalidArgument("unterminated quoted field", "line " + std::to_string(*line));
    fields->push_back(std::move(field));
    return true;
  }

 private:
  std::string_view text_;
  char delim_;
  std::size_t pos_ = 0;
  std::size_t line_ = 1;
};

char DetectDelimiter(const std::string& path, std::string_view head) {
  const std::string ext = Lower(std::filesystem::path(path).extension().string());
  if (ext == ".tsv" || ext == ".tab") return '\t';
  std::string_view first = head.substr(0, head.find('\n'));
  std::size_t commas = 0, tabs = 0, semis = 0;
  bool quoted = false;
  for (char c : first) {
    if (c == '"') quoted = !quoted;
    if (quoted) continue;
    commas += c == ',';
    tabs += c == '\t';
    semis += c == ';';
  }
  if (tabs > commas && tabs >= semis) return '\t';
  if (semis > commas && semis > tabs) return ';';
  return ',';
}

core::Result<std::string> ReadAll(const std::string& path, std::uint64_t size) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return core::NotFound("cannot open file", Where(path));
  std::string text(static_cast<std::size_t>(size), '\0');
  in.read(text.data(), static_cast<std::streamsize>(size));
  text.resize(static_cast<std::size_t>(in.gcount()));
  return text;
}

// Picks the task columns: given ones must exist; else every 0/1/empty column.
core::Result<std::vector<std::size_t>> ChooseTasks(
    const std::vector<std::string>& names, const std::vector<std::size_t>& candidates,
    const std::vector<std::vector<std::string>>& sample, const std::vector<std::string>& wanted,
    const std::string& where) {
  std::vector<std::size_t> out;
  if (!wanted.empty()) {
    for (const auto& w : wanted) {
      auto it = std::find(names.begin(), names.end(), w);
      if (it == names.end()) return core::InvalidArgument("no task column \"" + w + "\"", where);
      out.push_back(static_cast<std::size_t>(it - names.begin()));
    }
    return out;
  }
  for (std::size_t c : candidates) {
    bool labels = true;
    for (const auto& rec : sample) {
      if (c < rec.size() && !ParseLabel(rec[c])) {
        labels = false;
        break;
      }
    }
    if (labels) out.push_back(c);
  }
  if (out.empty())
    return core::InvalidArgument("no label columns (0, 1 or empty values) found", where);
  return out;
}

core::Status ReadTable(std::string_view text, char delimiter, const CompoundReadOptions& options,
                       CompoundSource* src) {
  const std::string& path = src->path;
  CsvCursor cursor(text, delimiter);
  std::vector<std::string> header;
  std::size_t line = 0;
  FEDRX_ASSIGN_OR_RETURN(bool has_header, cursor.Next(&header, &line));
  if (!has_header) return core::InvalidArgument("no header line", Where(path));
  for (auto& h : header) h = std::string(Trim(h));
  {
    std::map<std::string, int> seen;
    for (const auto& h : header) {
      if (++seen[h] == 2)
        return core::InvalidArgument("column \"" + h + "\" appears twice in the header",
                                     Where(path));
    }
  }
  // The structure column.
  std::optional<std::size_t> smiles;
  if (!options.smiles_column.empty()) {
    for (std::size_t i = 0; i < header.size(); ++i) {
      if (Lower(header[i]) == Lower(options.smiles_column)) smiles = i;
    }
    if (!smiles) {
      return core::InvalidArgument(
          "no SMILES column \"" + options.smiles_column + "\" in the header", Where(path));
    }
  } else {
    for (const char* name : {"smiles", "drug", "structure", "canonical_smiles"}) {
      for (std::size_t i = 0; i < header.size() && !smiles; ++i) {
        if (Lower(header[i]) == name) smiles = i;
      }
    }
    if (!smiles) {
      return core::InvalidArgument(
          "the header has no SMILES column (looked for smiles, SMILES, Drug, structure; "
          "name it with --smiles-column)",
          Where(path));
    }
  }
  std::optional<std::size_t> split;
  std::vector<std::size_t> candidates;
  for (std::size_t i = 0; i < header.size(); ++i) {
    if (i == *smiles) continue;
    const std::string lower = Lower(header[i]);
    if (lower == "split") {
      split = i;
      continue;
    }
    if (IsIdColumn(lower) || header[i].empty()) continue;
    candidates.push_back(i);
  }
  // Read every record, then decide the tasks from the first ones.
  std::vector<std::vector<std::string>> rows;
  std::vector<std::size_t> lines;
  std::vector<std::string> fields;
  while (true) {
    auto more = cursor.Next(&fields, &line);
    if (!more.ok()) return more.status().WithContext(path);
    if (!*more) break;
    rows.push_back(fields);
    lines.push_back(line);
  }
  if (rows.empty())
    return core::InvalidArgument("the table has a header but no records", Where(path));
  std::vector<std::vector<std::string>> sample;
  for (std::size_t r = 0; r < rows.size() && r < kTaskSampleRecords; ++r) {
    if (rows[r].size() == header.size()) sample.push_back(rows[r]);
  }
  FEDRX_ASSIGN_OR_RETURN(std::vector<std::size_t> tasks,
                         ChooseTasks(header, candidates, sample, options.tasks, Where(path)));
  if (tasks.size() > kMaxTasks)
    return core::InvalidArgument("more than 4096 task columns", Where(path));
  for (std::size_t t : tasks) src->tasks.push_back(header[t]);
  src->has_split = split.has_value();
  src->records_read = rows.size();
  for (std::size_t r = 0; r < rows.size(); ++r) {
    const std::size_t record = r + 1;
    const auto& f = rows[r];
    if (f.size() != header.size()) {
      src->findings.push_back({record, kFindingFieldCount,
                               "line " + std::to_string(lines[r]) + ": " +
                                   std::to_string(f.size()) + " fields, the header has " +
                                   std::to_string(header.size())});
      continue;
    }
    CompoundSource::Record rec;
    rec.record = record;
    rec.structure = std::string(Trim(f[*smiles]));
    if (rec.structure.empty()) {
      src->findings.push_back({record, kFindingMissingStructure, "empty SMILES field"});
      continue;
    }
    rec.labels.reserve(tasks.size());
    for (std::size_t t : tasks) {
      auto label = ParseLabel(f[t]);
      if (!label) {
        src->findings.push_back({record, kFindingBadLabel,
                                 "column " + header[t] + ": not 0, 1 or empty (taken as missing)"});
        label = ml::kMissing;
      }
      rec.labels.push_back(*label);
    }
    if (split) rec.split = std::string(Trim(f[*split]));
    src->records.push_back(std::move(rec));
  }
  return core::Status::Ok();
}

core::Status ReadSdf(std::string_view text, const CompoundReadOptions& options,
                     CompoundSource* src) {
  const std::string& path = src->path;
  std::vector<SdfRecord> records = SplitSdf(text);
  if (records.empty()) return core::InvalidArgument("no SD records", Where(path));
  bool any_block = false;
  for (const auto& r : records) any_block = any_block || !r.molblock.empty();
  if (!any_block)
    return core::InvalidArgument("no record holds a molfile block (\"M  END\"): not an SD file",
                                 Where(path));
  // Data item names in order of first appearance.
  std::vector<std::string> names;
  for (const auto& r : records) {
    for (const auto& [name, value] : r.items) {
      if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
    }
  }
  std::vector<std::size_t> candidates;
  std::optional<std::size_t> split;
  for (std::size_t i = 0; i < names.size(); ++i) {
    const std::string lower = Lower(names[i]);
    if (lower == "split") {
      split = i;
    } else if (!IsIdColumn(lower) && lower != "smiles" && !names[i].empty()) {
      candidates.push_back(i);
    }
  }
  auto value_of = [&](const SdfRecord& r, const std::string& name) -> std::string {
    for (const auto& [n, v] : r.items) {
      if (n == name) return v;
    }
    return "";
  };
  std::vector<std::vector<std::string>> sample;
  for (std::size_t k = 0; k < records.size() && k < kTaskSampleRecords; ++k) {
    std::vector<std::string> row;
    for (const auto& n : names) row.push_back(value_of(records[k], n));
    sample.push_back(std::move(row));
  }
  FEDRX_ASSIGN_OR_RETURN(std::vector<std::size_t> tasks,
                         ChooseTasks(names, candidates, sample, options.tasks, Where(path)));
  for (std::size_t t : tasks) src->tasks.push_back(names[t]);
  src->has_split = split.has_value();
  src->records_read = records.size();
  for (const auto& r : records) {
    if (r.molblock.empty()) {
      src->findings.push_back(
          {r.record, kFindingMissingStructure,
           "line " + std::to_string(r.line) + ": the record has no molfile block"});
      continue;
    }
    CompoundSource::Record rec;
    rec.record = r.record;
    rec.structure = r.molblock;
    for (std::size_t t : tasks) {
      auto label = ParseLabel(value_of(r, names[t]));
      if (!label) {
        src->findings.push_back({r.record, kFindingBadLabel,
                                 "item " + names[t] + ": not 0, 1 or empty (taken as missing)"});
        label = ml::kMissing;
      }
      rec.labels.push_back(*label);
    }
    if (split) rec.split = std::string(Trim(value_of(r, names[*split])));
    src->records.push_back(std::move(rec));
  }
  return core::Status::Ok();
}

std::string CsvField(std::string_view v) {
  if (v.find_first_of(",\"\n\r") == std::string_view::npos) return std::string(v);
  std::string out = "\"";
  for (char c : v) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

std::string TableHeader(const std::vector<std::string>& tasks) {
  std::string h = kFixedColumns;
  for (const auto& t : tasks) h += "," + CsvField(t);
  return h;
}

std::string SchemaHash(const std::vector<std::string>& tasks) {
  return Sha256Hex(std::string(kTableKind) + "\n" + TableHeader(tasks)).substr(0, 16);
}

// The group a molecule's fold is drawn for: its scaffold, or for an acyclic
// molecule its own canonical SMILES (as split.h groups them).
std::string_view FoldGroup(const ml::PreparedMolecule& m) {
  return m.scaffold.empty() ? std::string_view(m.canonical_smiles) : std::string_view(m.scaffold);
}

}  // namespace

core::Result<ConsortiumKey> ConsortiumKey::FromFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return core::NotFound("cannot read the key file", path);
  std::string secret((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!secret.empty() && std::isspace(static_cast<unsigned char>(secret.back())))
    secret.pop_back();
  if (secret.size() < kMinKeyBytes || secret.size() > kMaxKeyBytes) {
    return core::InvalidArgument(
        "a consortium key must be 16..4096 bytes, this one has " + std::to_string(secret.size()),
        path);
  }
  return ConsortiumKey(std::move(secret));
}

std::uint64_t ConsortiumKey::ScrambleKey() const {
  unsigned char mac[32];
  HmacSha256(secret_, "fedrx-scramble1", mac);
  std::uint64_t k = 0;
  for (int i = 7; i >= 0; --i) k = (k << 8) | mac[i];
  return k;
}

std::string ConsortiumKey::Fingerprint() const {
  if (secret_.empty()) return "";
  unsigned char mac[32];
  HmacSha256(secret_, "fedrx-keyfp1", mac);
  return Hex(mac, sizeof mac);
}

std::uint32_t ConsortiumKey::Fold(std::string_view group, std::uint32_t folds) const {
  std::string message("fedrx-fold1");
  message.push_back('\0');
  message.append(group);
  unsigned char mac[32];
  HmacSha256(secret_, message, mac);
  std::uint64_t h = 0;
  for (int i = 0; i < 8; ++i) h = (h << 8) | mac[i];
  return static_cast<std::uint32_t>(h % std::max<std::uint32_t>(folds, 1));
}

core::Result<CompoundSource> ReadCompoundFile(const std::string& path,
                                              const CompoundReadOptions& options) {
  if (sodium_init() < 0) return core::Internal("libsodium failed to initialise");
  FEDRX_ASSIGN_OR_RETURN(internal::FileProbe probe, internal::ProbeFile(path, kHeadBytes));
  if (probe.size > options.max_file_bytes) {
    return core::InvalidArgument("file of " + std::to_string(probe.size) +
                                     " bytes is larger than the limit of " +
                                     std::to_string(options.max_file_bytes),
                                 Where(path));
  }
  const std::string_view head = probe.head;
  if (head.size() >= 2 && static_cast<unsigned char>(head[0]) == 0x1f &&
      static_cast<unsigned char>(head[1]) == 0x8b) {
    return core::InvalidArgument("gzip-compressed; decompress it first", Where(path));
  }
  if (head.find('\0') != std::string_view::npos) {
    return core::InvalidArgument("binary content (a NUL byte in the first " +
                                     std::to_string(head.size()) +
                                     " bytes): not a text table or SD file",
                                 Where(path));
  }
  CompoundSource src;
  src.path = path;
  src.bytes = probe.size;
  const std::string ext = Lower(std::filesystem::path(path).extension().string());
  const bool sdf_ext = ext == ".sdf" || ext == ".sd" || ext == ".mol";
  const bool table_ext = ext == ".csv" || ext == ".tsv" || ext == ".tab" || ext == ".txt";
  if (sdf_ext || (!table_ext && LooksLikeSdf(head))) {
    if (!LooksLikeSdf(head)) {
      return core::InvalidArgument("named like an SD file but its first " +
                                       std::to_string(head.size()) + " bytes hold no molfile block",
                                   Where(path));
    }
    src.format = CompoundSource::Format::kSdf;
  } else {
    const char d = options.delimiter ? options.delimiter : DetectDelimiter(path, head);
    src.format = d == '\t' ? CompoundSource::Format::kTsv : CompoundSource::Format::kCsv;
    // Check the header before reading the rest of a possibly large file.
    const std::size_t nl = head.find('\n');
    if (nl == std::string_view::npos && probe.size > head.size()) {
      return core::InvalidArgument(
          "no line break in the first " + std::to_string(head.size()) + " bytes: not a table",
          Where(path));
    }
    CompoundSource probe_src;
    probe_src.path = path;
    std::string_view first_lines = head.substr(
        0, head.rfind('\n') == std::string_view::npos ? head.size() : head.rfind('\n') + 1);
    // A header-only check: the SMILES column must be there.
    CsvCursor cursor(first_lines, d);
    std::vector<std::string> header;
    std::size_t line = 0;
    auto got = cursor.Next(&header, &line);
    if (got.ok() && *got) {
      bool has_smiles = false;
      for (auto& h : header) {
        const std::string l = Lower(std::string(Trim(h)));
        has_smiles = has_smiles ||
                     (options.smiles_column.empty() ? (l == "smiles" || l == "drug" ||
                                                       l == "structure" || l == "canonical_smiles")
                                                    : l == Lower(options.smiles_column));
      }
      if (!has_smiles) {
        return core::InvalidArgument(
            "the header has no SMILES column (looked for " +
                (options.smiles_column.empty() ? std::string("smiles, SMILES, Drug, structure")
                                               : "\"" + options.smiles_column + "\"") +
                ")",
            Where(path));
      }
    }
    FEDRX_ASSIGN_OR_RETURN(std::string text, ReadAll(path, probe.size));
    src.sha256 = Sha256Hex(text);
    FEDRX_RETURN_IF_ERROR(ReadTable(text, d, options, &src));
    return src;
  }
  FEDRX_ASSIGN_OR_RETURN(std::string text, ReadAll(path, probe.size));
  src.sha256 = Sha256Hex(text);
  FEDRX_RETURN_IF_ERROR(ReadSdf(text, options, &src));
  return src;
}

core::Result<PreparedCompounds> PrepareCompounds(const CompoundSource& source,
                                                 const PrepOptions& options,
                                                 const ConsortiumKey& key,
                                                 const ProgressFn& progress) {
  if (options.folds < 1 || options.folds > 100) {
    return core::InvalidArgument("folds must be in 1..100", "PrepOptions.folds");
  }
  if (options.threads < 1 || options.threads > 256) {
    return core::InvalidArgument("threads must be in 1..256", "PrepOptions.threads");
  }
  if (sodium_init() < 0) return core::Internal("libsodium failed to initialise");
  const ml::BitScrambler scrambler(key.ScrambleKey(), key.empty() ? 0 : options.fingerprint.bits);
  const std::size_t n = source.records.size();
  std::vector<core::Result<ml::PreparedMolecule>> results(n, core::Internal("not prepared"));
  std::atomic<std::size_t> next{0};
  std::atomic<std::size_t> done{0};
  auto work = [&] {
    for (std::size_t i; (i = next.fetch_add(1)) < n;) {
      const auto& rec = source.records[i];
      auto m = ml::PrepareStructure(rec.structure,
                                    source.format == CompoundSource::Format::kSdf
                                        ? ml::StructureFormat::kMolBlock
                                        : ml::StructureFormat::kSmiles,
                                    options.fingerprint, options.inchikey);
      if (m.ok() && !key.empty()) m->bits = scrambler.Apply(m->bits);
      results[i] = std::move(m);
      done.fetch_add(1, std::memory_order_relaxed);
    }
  };
  {
    std::vector<std::thread> workers;
    const int threads =
        static_cast<int>(std::min<std::size_t>(options.threads, std::max<std::size_t>(n, 1)));
    for (int t = 0; t < threads; ++t) workers.emplace_back(work);
    if (progress) {
      while (done.load() < n) {
        progress(done.load(), n);
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      progress(n, n);
    }
    for (auto& w : workers) w.join();
  }
  if (options.fingerprint.radius < 0) return core::InvalidArgument("bad fingerprint options");

  PreparedCompounds out;
  out.tasks = source.tasks;
  out.has_split = source.has_split;
  out.records_read = source.records_read;
  out.findings = source.findings;
  const std::size_t tasks = source.tasks.size();
  std::unordered_map<std::string, std::size_t> by_key;
  // Per (compound, task): already conflicted, so a third record cannot revive it.
  std::vector<std::vector<bool>> conflicted;
  for (std::size_t i = 0; i < n; ++i) {
    const auto& rec = source.records[i];
    auto& r = results[i];
    if (!r.ok()) {
      if (r.status().code() != core::StatusCode::kInvalidArgument) return r.status();
      ++out.unparseable;
      out.findings.push_back({rec.record, kFindingUnparseable, r.status().message()});
      continue;
    }
    ml::PreparedMolecule& m = *r;
    // Without InChIKeys (benchmarks) nothing is merged.
    const std::string merge_key = options.inchikey ? m.inchikey : std::to_string(i);
    auto [it, inserted] = by_key.emplace(merge_key, out.compounds.size());
    if (inserted) {
      PreparedCompound c;
      c.inchikey = m.inchikey;
      c.fold = key.Fold(FoldGroup(m), options.folds);
      c.smiles = std::move(m.canonical_smiles);
      c.scaffold = std::move(m.scaffold);
      c.split = rec.split;
      c.bits = std::move(m.bits);
      c.labels = rec.labels;
      c.first_record = rec.record;
      out.compounds.push_back(std::move(c));
      conflicted.emplace_back(tasks, false);
      continue;
    }
    ++out.duplicates_merged;
    PreparedCompound& c = out.compounds[it->second];
    ++c.records;
    for (std::size_t t = 0; t < tasks; ++t) {
      if (conflicted[it->second][t]) continue;
      const std::int8_t a = c.labels[t], b = rec.labels[t];
      if (b == ml::kMissing || a == b) continue;
      if (a == ml::kMissing) {
        c.labels[t] = b;
        continue;
      }
      c.labels[t] = ml::kMissing;
      conflicted[it->second][t] = true;
      ++out.label_conflicts;
      out.findings.push_back({c.first_record, kFindingLabelConflict,
                              "task " + source.tasks[t] + ": record " + std::to_string(rec.record) +
                                  " (same InChIKey) disagrees; label set to missing"});
    }
  }
  std::stable_sort(
      out.findings.begin(), out.findings.end(),
      [](const RecordFinding& a, const RecordFinding& b) { return a.record < b.record; });
  FEDRX_ASSIGN_OR_RETURN(out.reference_hash, ReferenceSetHash(options, key));
  out.preparation_hash = IngestPreparationHash(options, key, out.reference_hash);
  return out;
}

const std::vector<std::string>& ReferenceSmiles() {
  // The first 38 single-component neutral, 8 multi-component (salts,
  // hydrates) and 4 charged structures of deploy/data/tox21/tox21.csv (CC0).
  static const std::vector<std::string> kReference = {
#include "services/ingest/reference_set.inc"
  };
  return kReference;
}

core::Result<std::string> ReferenceSetHash(const PrepOptions& options, const ConsortiumKey& key) {
  if (sodium_init() < 0) return core::Internal("libsodium failed to initialise");
  const ml::BitScrambler scrambler(key.ScrambleKey(), key.empty() ? 0 : options.fingerprint.bits);
  std::string out;
  for (const auto& smiles : ReferenceSmiles()) {
    FEDRX_ASSIGN_OR_RETURN(ml::PreparedMolecule m,
                           ml::PrepareStructure(smiles, ml::StructureFormat::kSmiles,
                                                options.fingerprint, /*with_inchikey=*/true));
    if (!key.empty()) m.bits = scrambler.Apply(m.bits);
    out += m.inchikey + "," + m.canonical_smiles + "," + m.scaffold + "," +
           std::to_string(key.Fold(FoldGroup(m), options.folds)) + ",";
    for (std::size_t i = 0; i < m.bits.size(); ++i) {
      if (i) out.push_back(' ');
      out += std::to_string(m.bits[i]);
    }
    out.push_back('\n');
  }
  return Sha256Hex(out);
}

std::string IngestPreparationHash(const PrepOptions& options, const ConsortiumKey& key,
                                  const std::string& reference_hash) {
  return ml::PreparationHash(options.fingerprint, key.Fingerprint()) + ";" + ml::InChIVersion() +
         ";folds" + std::to_string(options.folds) + ";ref-" + reference_hash.substr(0, 16);
}

CompoundDescriptor DescribeCompounds(const PreparedCompounds& p, const CompoundSource& source,
                                     const PrepOptions& options) {
  CompoundDescriptor d;
  d.records_read = p.records_read;
  d.compounds = p.compounds.size();
  d.unparseable = p.unparseable;
  d.duplicates_merged = p.duplicates_merged;
  d.label_conflicts = p.label_conflicts;
  for (const auto& f : p.findings) ++d.findings[f.code];
  d.tasks = p.tasks;
  d.balance.resize(p.tasks.size());
  for (const auto& c : p.compounds) {
    for (std::size_t t = 0; t < p.tasks.size(); ++t) {
      auto& b = d.balance[t];
      (c.labels[t] == 1 ? b.positives : c.labels[t] == 0 ? b.negatives : b.missing)++;
    }
  }
  d.has_split = p.has_split;
  d.fingerprint_radius = static_cast<std::uint32_t>(options.fingerprint.radius);
  d.fingerprint_bits = options.fingerprint.bits;
  d.folds = options.folds;
  d.schema_hash = SchemaHash(p.tasks);
  d.preparation_hash = p.preparation_hash;
  d.reference_hash = p.reference_hash;
  d.source_sha256 = source.sha256;
  d.source_bytes = source.bytes;
  d.source_format = source.format == CompoundSource::Format::kSdf   ? "sdf"
                    : source.format == CompoundSource::Format::kTsv ? "tsv"
                                                                    : "csv";
  return d;
}

core::Status WriteCompoundVersion(const std::string& dir, const PreparedCompounds& p,
                                  const CompoundDescriptor& descriptor) {
  std::string table = TableHeader(p.tasks) + "\n";
  for (const auto& c : p.compounds) {
    table += c.inchikey + "," + CsvField(c.smiles) + "," + CsvField(c.scaffold) + "," +
             std::to_string(c.fold) + "," + CsvField(c.split) + ",";
    for (std::size_t i = 0; i < c.bits.size(); ++i) {
      if (i) table.push_back(' ');
      table += std::to_string(c.bits[i]);
    }
    for (std::int8_t l : c.labels) {
      table.push_back(',');
      if (l != ml::kMissing) table.push_back(l == 1 ? '1' : '0');
    }
    table.push_back('\n');
  }
  const std::filesystem::path base(dir);
  FEDRX_RETURN_IF_ERROR(WriteFileSynced((base / kCompoundTableFile).string(), table));
  std::string findings = "record,code,message\n";
  for (const auto& f : p.findings) {
    findings += std::to_string(f.record) + "," + f.code + "," + CsvField(f.message) + "\n";
  }
  FEDRX_RETURN_IF_ERROR(WriteFileSynced((base / kFindingsFile).string(), findings));
  return WriteFileSynced((base / kDescriptorFile).string(), DescriptorToJson(descriptor));
}

core::Result<LoadedCompounds> LoadCompoundVersion(const std::string& dir) {
  const std::filesystem::path base(dir);
  const std::string dpath = (base / kDescriptorFile).string();
  const std::string tpath = (base / kCompoundTableFile).string();
  LoadedCompounds out;
  {
    std::ifstream in(dpath, std::ios::binary);
    if (!in) return core::NotFound("cannot read the descriptor", dpath);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    FEDRX_ASSIGN_OR_RETURN(out.descriptor, DescriptorFromJson(text, dpath));
  }
  std::error_code ec;
  const auto size = std::filesystem::file_size(tpath, ec);
  if (ec) return core::NotFound("cannot read the prepared table", tpath);
  FEDRX_ASSIGN_OR_RETURN(std::string text, ReadAll(tpath, size));
  CsvCursor cursor(text, ',');
  std::vector<std::string> fields;
  std::size_t line = 0;
  FEDRX_ASSIGN_OR_RETURN(bool any, cursor.Next(&fields, &line));
  if (!any) return core::InvalidArgument("empty prepared table", tpath);
  const std::size_t fixed = 6;
  std::vector<std::string> tasks(fields.size() > fixed ? fields.begin() + fixed : fields.end(),
                                 fields.end());
  if (fields.size() < fixed || TableHeader(tasks) != [&] {
        std::string h;
        for (std::size_t i = 0; i < fields.size(); ++i) h += (i ? "," : "") + CsvField(fields[i]);
        return h;
      }()) {
    return core::InvalidArgument(
        "the prepared table's header is not " + std::string(kFixedColumns) + ",<tasks>", tpath);
  }
  const CompoundDescriptor& d = out.descriptor;
  if (tasks != d.tasks || SchemaHash(tasks) != d.schema_hash) {
    return core::InvalidArgument("the prepared table's columns disagree with descriptor.json",
                                 tpath);
  }
  ml::Dataset& ds = out.dataset;
  ds.tasks = tasks;
  ds.x.dim = d.fingerprint_bits;
  std::vector<std::uint32_t> bits;
  std::size_t record = 0;
  bool any_split = false;
  while (true) {
    auto more = cursor.Next(&fields, &line);
    if (!more.ok()) return more.status().WithContext(tpath);
    if (!*more) break;
    ++record;
    const std::string where = Where(tpath, record);
    if (fields.size() != fixed + tasks.size())
      return core::InvalidArgument("wrong number of fields", where);
    ds.smiles.push_back(fields[1]);
    ds.scaffolds.push_back(fields[2]);
    std::uint32_t fold = 0;
    const auto [fp, fec] =
        std::from_chars(fields[3].data(), fields[3].data() + fields[3].size(), fold);
    if (fec != std::errc() || fp != fields[3].data() + fields[3].size() || fold >= d.folds) {
      return core::InvalidArgument("bad fold \"" + fields[3] + "\"", where);
    }
    out.folds.push_back(fold);
    ds.split.push_back(fields[4]);
    any_split = any_split || !fields[4].empty();
    bits.clear();
    std::string_view s = fields[5];
    while (!s.empty()) {
      const auto sp = s.find(' ');
      std::string_view tok = s.substr(0, sp);
      std::uint32_t b = 0;
      const auto [bp, bec] = std::from_chars(tok.data(), tok.data() + tok.size(), b);
      if (bec != std::errc() || bp != tok.data() + tok.size() || b >= ds.x.dim ||
          (!bits.empty() && b <= bits.back())) {
        return core::InvalidArgument("bad fingerprint bit \"" + std::string(tok) + "\"", where);
      }
      bits.push_back(b);
      s = sp == std::string_view::npos ? std::string_view() : s.substr(sp + 1);
    }
    ds.x.AddRow(bits);
    for (std::size_t t = 0; t < tasks.size(); ++t) {
      auto label = ParseLabel(fields[fixed + t]);
      if (!label) return core::InvalidArgument("bad label in column " + tasks[t], where);
      ds.y.push_back(*label);
    }
  }
  if (record != d.compounds) {
    return core::InvalidArgument("the prepared table has " + std::to_string(record) +
                                     " rows, the descriptor says " + std::to_string(d.compounds),
                                 tpath);
  }
  if (!any_split) ds.split.clear();
  return out;
}

core::Result<LoadedCompounds> LoadCurrentCompounds(const std::string& store_dir,
                                                   std::uint64_t* version) {
  FEDRX_ASSIGN_OR_RETURN(DatasetStore store, DatasetStore::Open(store_dir, false));
  FEDRX_ASSIGN_OR_RETURN(std::optional<StoreVersion> current, store.Current());
  if (!current) return core::NotFound("the store has no version yet (run fedrx ingest)", store_dir);
  if (version != nullptr) *version = current->number;
  return LoadCompoundVersion(current->dir);
}

core::Status IngestCompoundFile(const std::string& input, const std::string& store_root,
                                const CompoundReadOptions& read, const PrepOptions& prep,
                                const ConsortiumKey& key, const ProgressFn& progress,
                                CompoundIngest& out) {
  FEDRX_ASSIGN_OR_RETURN(DatasetStore store, DatasetStore::Open(store_root, true));
  FEDRX_ASSIGN_OR_RETURN(out.source, ReadCompoundFile(input, read));
  FEDRX_ASSIGN_OR_RETURN(out.prepared, PrepareCompounds(out.source, prep, key, progress));
  out.prepared_ok = true;
  if (out.prepared.compounds.empty()) {
    return core::InvalidArgument("no record could be ingested (" +
                                     std::to_string(out.prepared.findings.size()) + " findings)",
                                 input);
  }
  out.descriptor = DescribeCompounds(out.prepared, out.source, prep);
  FEDRX_ASSIGN_OR_RETURN(out.version, store.Commit([&](const std::string& dir) {
    return WriteCompoundVersion(dir, out.prepared, out.descriptor);
  }));
  return core::Status::Ok();
}

}  // namespace fedrx::ingest
