// Compound-assay ingest: reads a CSV/TSV table (a SMILES column and binary
// label columns) or an SD file (a structure per record, labels from data
// items), standardises every structure with the ML core's chemistry (largest
// fragment, neutralised, canonical SMILES) and its standard InChIKey, merges
// duplicates by InChIKey, scrambles fingerprints and assigns scaffold folds
// with the consortium key (MELLODDY-TUNER-like), and writes/reads the
// prepared table of a DatasetStore version. Bad rows are findings, never
// fatal. Free functions; thread-safe (PrepareCompounds starts its own threads).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "services/core/status.h"
#include "services/ingest/dataset_store.h"
#include "services/ingest/descriptor.h"
#include "services/ml/chem.h"
#include "services/ml/dataset.h"

namespace fedrx::ingest {

// The secret a consortium's sites share. It keys bit scrambling and fold
// assignment; only one-way digests of it ever leave the site.
class ConsortiumKey {
 public:
  ConsortiumKey() = default;  // no key: bits unscrambled, folds keyed with ""
  explicit ConsortiumKey(std::string secret) : secret_(std::move(secret)) {}
  // Reads a key file: its bytes, trailing whitespace dropped; 16..4096 bytes.
  // kNotFound if unreadable, kInvalidArgument if too short or long.
  static core::Result<ConsortiumKey> FromFile(const std::string& path);

  bool empty() const { return secret_.empty(); }
  // The 64-bit BitScrambler key: HMAC-SHA256(secret, "fedrx-scramble1"), first
  // 8 bytes little-endian.
  std::uint64_t ScrambleKey() const;
  // A one-way digest for PreparationHash: hex HMAC-SHA256(secret,
  // "fedrx-keyfp1"); empty without a key.
  std::string Fingerprint() const;
  // The fold of a scaffold group: HMAC-SHA256(secret, "fedrx-fold1\0" + group),
  // first 8 bytes big-endian, mod `folds` (folds >= 1).
  std::uint32_t Fold(std::string_view group, std::uint32_t folds) const;

 private:
  std::string secret_;
};

struct PrepOptions {
  ml::FingerprintOptions fingerprint;
  std::uint32_t folds = 5;  // 1..100
  int threads = 2;          // workers preparing molecules (>= 1); results do not depend on it
  bool inchikey = true;     // false only for benchmarks: no InChIKey, no merging
};

struct CompoundReadOptions {
  // Column (CSV/TSV) holding the structures; empty detects smiles, SMILES,
  // Drug, structure (case-insensitively, in that order).
  std::string smiles_column;
  // Label columns (or SD data items), in this order; empty takes every column
  // except the SMILES, split and identifier ones whose values (in the first
  // 2000 records) are all 0, 1 or empty.
  std::vector<std::string> tasks;
  // ',' or '\t' (or ';'); 0 detects from the extension and the header line.
  char delimiter = 0;
  // Larger files are refused before they are read.
  std::uint64_t max_file_bytes = std::uint64_t{1} << 30;
};

// A problem with one record of the input; never fatal.
struct RecordFinding {
  std::size_t record = 0;  // 1-based data record (CSV: after the header; SDF: record)
  std::string code;        // see kFinding* below
  std::string message;     // what was wrong; never the structure itself
};
inline constexpr char kFindingUnparseable[] = "unparseable_structure";
inline constexpr char kFindingMissingStructure[] = "missing_structure";
inline constexpr char kFindingBadLabel[] = "bad_label";
inline constexpr char kFindingFieldCount[] = "field_count";
inline constexpr char kFindingLabelConflict[] = "label_conflict";

// The input as read, before any chemistry.
struct CompoundSource {
  enum class Format { kCsv, kTsv, kSdf };
  Format format = Format::kCsv;
  std::string path;
  std::uint64_t bytes = 0;
  std::string sha256;  // hex, of the whole file
  std::vector<std::string> tasks;
  bool has_split = false;
  struct Record {
    std::size_t record = 0;
    std::string structure;            // SMILES, or a molfile block for SDF
    std::vector<std::int8_t> labels;  // one per task: 0, 1 or ml::kMissing
    std::string split;
  };
  std::vector<Record> records;   // records with a structure field
  std::size_t records_read = 0;  // every data record, including ones without a structure
  std::vector<RecordFinding> findings;
};

// Reads `path`: the format from the extension (.sdf/.sd/.mol: SDF; .tsv/.tab:
// TSV) or, failing that, the head of the file. Checks the head before reading
// the rest: errors (kInvalidArgument, naming the file) for an empty file, a
// file over the size limit, a compressed or binary file, a table header
// without a SMILES column or with unknown/duplicate task columns, an SD file
// without a single molfile block, an unterminated quote, no task columns.
// kNotFound when the file cannot be opened. Blocks.
core::Result<CompoundSource> ReadCompoundFile(const std::string& path,
                                              const CompoundReadOptions& options);

// One standardised, merged compound.
struct PreparedCompound {
  std::string inchikey;
  std::string smiles;    // canonical SMILES of the first record merged in
  std::string scaffold;  // Bemis-Murcko scaffold; empty for acyclic molecules
  std::uint32_t fold = 0;
  std::string split;                // the first record's split tag
  std::vector<std::uint32_t> bits;  // scrambled with the key (when there is one)
  std::vector<std::int8_t> labels;  // merged, one per task
  std::size_t first_record = 0;
  std::size_t records = 1;  // input records merged into this one
};

struct PreparedCompounds {
  std::vector<std::string> tasks;
  bool has_split = false;
  std::vector<PreparedCompound> compounds;  // in order of first appearance
  std::vector<RecordFinding> findings;      // the source's, then preparation's, by record
  std::size_t records_read = 0;
  std::size_t unparseable = 0;
  std::size_t duplicates_merged = 0;  // records folded into an earlier one
  std::size_t label_conflicts = 0;    // (compound, task) pairs set to missing
  std::string preparation_hash;       // IngestPreparationHash of the options and key
  std::string reference_hash;         // ReferenceSetHash of the options and key
};

// Called from the calling thread about every 100 ms: records done, total.
using ProgressFn = std::function<void(std::size_t done, std::size_t total)>;

// Standardises and merges `source`. Merge rule, per task, over the records of
// one InChIKey: equal labels stay; a label and a missing one give the label;
// 0 against 1 gives missing, for good (a third record does not revive it),
// counted once per (compound, task) in label_conflicts and reported as a
// label_conflict finding at the compound's first record. Records RDKit or
// InChI reject are unparseable_structure findings with their record number.
// Errors: kInvalidArgument for bad options. Blocks.
core::Result<PreparedCompounds> PrepareCompounds(const CompoundSource& source,
                                                 const PrepOptions& options,
                                                 const ConsortiumKey& key,
                                                 const ProgressFn& progress = {});

// The fixed reference set every site prepares to prove identical
// preparation: 50 Tox21 structures (salts and charged forms among them),
// compiled in.
const std::vector<std::string>& ReferenceSmiles();

// Hex SHA-256 over the reference set's prepared output (per structure:
// InChIKey, canonical SMILES, scaffold, keyed fold, scrambled bits).
// Equal across sites with the same software, options and key.
core::Result<std::string> ReferenceSetHash(const PrepOptions& options, const ConsortiumKey& key);

// The preparation hash a site reports (RegisterSite.schema_hash, < 128
// bytes): ml::PreparationHash of the fingerprint options and key digest, the
// InChI version, the fold count and the first 16 hex digits of the reference
// set's hash. Example: "fedrx-prep1;rdkit2022.09.3;lf+unc;ecfp-r2-b2048-c0;
// key-none;inchi1.03;folds5;ref-0123456789abcdef".
std::string IngestPreparationHash(const PrepOptions& options, const ConsortiumKey& key,
                                  const std::string& reference_hash);

// File names inside a compound version.
inline constexpr char kCompoundTableFile[] = "compounds.csv";
inline constexpr char kDescriptorFile[] = "descriptor.json";
inline constexpr char kFindingsFile[] = "findings.csv";

// The descriptor of a prepared set (counts, tasks, label balance, hashes).
CompoundDescriptor DescribeCompounds(const PreparedCompounds& prepared,
                                     const CompoundSource& source, const PrepOptions& options);

// Writes compounds.csv (inchikey, smiles, scaffold, fold, split, fingerprint
// as space-separated bit indices, then one column per task: 0, 1 or empty),
// descriptor.json and findings.csv (record, code, message) into `dir`, each
// fsynced. kUnavailable on I/O errors. Blocks.
core::Status WriteCompoundVersion(const std::string& dir, const PreparedCompounds& prepared,
                                  const CompoundDescriptor& descriptor);

// One ingest of a compound file into a store, as `fedrx ingest compounds`
// and fedrx-ingest run it.
struct CompoundIngest {
  CompoundSource source;
  PreparedCompounds prepared;
  CompoundDescriptor descriptor;
  StoreVersion version;      // the version written; number 0 until then
  bool prepared_ok = false;  // `prepared` holds the preparation's result
};

// Opens (creating) the store at `store_root` first, so a bad store fails
// before any work; reads `input`, prepares it, refuses it (kInvalidArgument
// naming `input`) when no compound is left, describes it and commits it as a
// new version. Fills `out` as the stages complete, so a caller can report
// what was read and found even when the ingest failed; on any error nothing
// was committed and the store's previous version is untouched. Blocks.
core::Status IngestCompoundFile(const std::string& input, const std::string& store_root,
                                const CompoundReadOptions& read, const PrepOptions& prep,
                                const ConsortiumKey& key, const ProgressFn& progress,
                                CompoundIngest& out);

struct LoadedCompounds {
  ml::Dataset dataset;  // smiles, scaffolds, split (empty when the table has none), x, y
  std::vector<std::uint32_t> folds;
  CompoundDescriptor descriptor;
};

// Reads a version written by WriteCompoundVersion. kInvalidArgument (naming
// the file and record) for a malformed table or descriptor, or a table that
// disagrees with its descriptor (count, tasks, schema hash); kNotFound when
// a file is missing. Blocks.
core::Result<LoadedCompounds> LoadCompoundVersion(const std::string& dir);

// The version a store's CURRENT names (DatasetStore), loaded as
// LoadCompoundVersion; kNotFound for a missing store or one with no version
// yet. `version`, when not null, receives the version's number. Blocks.
core::Result<LoadedCompounds> LoadCurrentCompounds(const std::string& store_dir,
                                                   std::uint64_t* version = nullptr);

}  // namespace fedrx::ingest
