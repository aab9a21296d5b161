#include "services/ml/csv_dataset.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string_view>
#include <system_error>
#include <thread>
#include <unordered_set>
#include <utility>

namespace fedrx::ml {
namespace {

namespace fs = std::filesystem;

struct Record {
  std::size_t line = 0;
  std::vector<std::string> fields;
  // Set when the record is malformed in a way that spoils only this row.
  std::string defect;
};

std::string Where(const std::string& path, std::size_t line) {
  return path + ":" + std::to_string(line);
}

// Splits `text` into records. A quoted field may contain commas, doubled
// quotes and line breaks. Blank lines are dropped. Fails only on a quoted
// field still open at the end of the file, since everything after its opening
// quote would otherwise be silently swallowed.
core::Result<std::vector<Record>> ParseCsv(std::string_view text, const std::string& path) {
  std::vector<Record> records;
  std::size_t pos = 0;
  std::size_t line = 1;
  const std::size_t n = text.size();
  auto at_line_end = [&](std::size_t p) { return p >= n || text[p] == '\n' || text[p] == '\r'; };
  auto consume_line_end = [&] {
    if (pos < n && text[pos] == '\r') ++pos;
    if (pos < n && text[pos] == '\n') ++pos;
    ++line;
  };
  while (pos < n) {
    Record rec;
    rec.line = line;
    while (true) {
      std::string field;
      if (pos < n && text[pos] == '"') {
        const std::size_t open_line = line;
        ++pos;
        bool closed = false;
        while (pos < n) {
          const char c = text[pos];
          if (c == '"') {
            if (pos + 1 < n && text[pos + 1] == '"') {
              field += '"';
              pos += 2;
              continue;
            }
            ++pos;
            closed = true;
            break;
          }
          // Count CRLF once; a lone CR also ends a line.
          if (c == '\n' || (c == '\r' && !(pos + 1 < n && text[pos + 1] == '\n'))) ++line;
          field += c;
          ++pos;
        }
        if (!closed) {
          return core::InvalidArgument("quoted field opened here is never closed",
                                       Where(path, open_line));
        }
        if (pos < n && text[pos] != ',' && !at_line_end(pos)) {
          if (rec.defect.empty()) {
            rec.defect = "field " + std::to_string(rec.fields.size() + 1) +
                         " has text after its closing quote";
          }
          while (pos < n && text[pos] != ',' && !at_line_end(pos)) field += text[pos++];
        }
      } else {
        const std::size_t start = pos;
        while (pos < n && text[pos] != ',' && !at_line_end(pos)) ++pos;
        field.assign(text.substr(start, pos - start));
      }
      rec.fields.push_back(std::move(field));
      if (pos < n && text[pos] == ',') {
        ++pos;
        continue;
      }
      consume_line_end();
      break;
    }
    const bool blank = rec.fields.size() == 1 && rec.defect.empty() &&
                       rec.fields[0].find_first_not_of(" \t") == std::string::npos;
    if (!blank) records.push_back(std::move(rec));
  }
  return records;
}

std::string_view Trim(std::string_view s) {
  auto space = [](char c) { return c == ' ' || c == '\t'; };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return s;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto lower = [](char c) {
      return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

// Label cell -> 0, 1, kMissing, or nullopt when it is none of those.
std::optional<std::int8_t> ParseLabel(std::string_view cell) {
  cell = Trim(cell);
  if (cell.empty()) return kMissing;
  if (cell == "0" || cell == "0.0") return 0;
  if (cell == "1" || cell == "1.0") return 1;
  return std::nullopt;
}

// Quoted cells in error messages: bounded, and control characters shown as '?'.
std::string Quote(std::string_view s) {
  constexpr std::size_t kMax = 80;
  std::string out = "'";
  for (std::size_t i = 0; i < s.size() && i < kMax; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    out += (c < 0x20 || c == 0x7f) ? '?' : static_cast<char>(c);
  }
  if (s.size() > kMax) out += "...";
  return out + "'";
}

core::Result<std::string> ReadFile(const std::string& path, std::uint64_t max_bytes) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (ec || !fs::exists(st)) return core::NotFound("no such CSV file", path);
  if (!fs::is_regular_file(st)) return core::InvalidArgument("not a regular file", path);
  const std::uintmax_t size = fs::file_size(path, ec);
  if (ec) return core::NotFound("cannot read the size of the CSV file: " + ec.message(), path);
  if (size > max_bytes) {
    return core::InvalidArgument("CSV file of " + std::to_string(size) +
                                     " bytes is larger than the limit of " +
                                     std::to_string(max_bytes),
                                 path);
  }
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return core::NotFound(std::string("cannot open the CSV file: ") + std::strerror(errno), path);
  std::string text(static_cast<std::size_t>(size), '\0');
  in.read(text.data(), static_cast<std::streamsize>(size));
  text.resize(static_cast<std::size_t>(in.gcount()));
  if (in.bad()) return core::Unavailable("error while reading the CSV file", path);
  return text;
}

// Where each role sits in the header.
struct Columns {
  std::size_t smiles = 0;
  std::optional<std::size_t> split;
  std::vector<std::size_t> tasks;
  std::vector<std::string> task_names;
};

core::Result<Columns> ResolveColumns(const Record& header, const CsvOptions& options,
                                     const std::string& path) {
  const std::string where = Where(path, header.line);
  std::vector<std::string> names;
  names.reserve(header.fields.size());
  for (const std::string& f : header.fields) names.emplace_back(Trim(f));
  for (std::size_t i = 0; i < names.size(); ++i) {
    for (std::size_t j = 0; j < i; ++j) {
      if (EqualsIgnoreCase(names[i], names[j])) {
        return core::InvalidArgument(
            "column name " + Quote(names[i]) + " appears twice in the header", where);
      }
    }
  }
  auto find = [&](std::string_view want) -> std::optional<std::size_t> {
    for (std::size_t i = 0; i < names.size(); ++i) {
      if (EqualsIgnoreCase(names[i], want)) return i;
    }
    return std::nullopt;
  };
  Columns cols;
  const auto smiles = find(options.smiles_column);
  if (!smiles) {
    std::string all;
    for (const std::string& nm : names) all += (all.empty() ? "" : ", ") + Quote(nm);
    return core::InvalidArgument("no SMILES column " + Quote(options.smiles_column) +
                                     " in the header (columns: " + all + ")",
                                 where);
  }
  cols.smiles = *smiles;
  if (!options.split_column.empty()) cols.split = find(options.split_column);

  if (!options.task_columns.empty()) {
    for (const std::string& task : options.task_columns) {
      const auto it = std::find(names.begin(), names.end(), task);
      if (it == names.end()) {
        return core::InvalidArgument("no task column " + Quote(task) + " in the header", where);
      }
      const auto idx = static_cast<std::size_t>(it - names.begin());
      if (idx == cols.smiles || idx == cols.split) {
        return core::InvalidArgument(
            Quote(task) + " cannot be both a task and the SMILES or split column", where);
      }
      if (std::find(cols.tasks.begin(), cols.tasks.end(), idx) != cols.tasks.end()) {
        return core::InvalidArgument("task column " + Quote(task) + " is listed twice", where);
      }
      cols.tasks.push_back(idx);
      cols.task_names.push_back(task);
    }
    return cols;
  }
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i == cols.smiles || i == cols.split) continue;
    const bool is_id =
        std::any_of(options.id_columns.begin(), options.id_columns.end(),
                    [&](const std::string& id) { return EqualsIgnoreCase(names[i], id); });
    if (is_id) continue;
    if (names[i].empty()) {
      return core::InvalidArgument("column " + std::to_string(i + 1) + " has no name", where);
    }
    cols.tasks.push_back(i);
    cols.task_names.push_back(names[i]);
  }
  if (cols.tasks.empty()) {
    return core::InvalidArgument(
        "no task columns in the header (only SMILES, split and id columns)", where);
  }
  return cols;
}

// One data row that passed the cheap checks and awaits RDKit.
struct Pending {
  std::size_t row;
  std::size_t line;
  std::string_view smiles;
  std::string split;
  std::vector<std::int8_t> labels;
};

// Prepares every molecule on `threads` threads; out[i] belongs to in[i].
std::vector<std::optional<core::Result<PreparedMolecule>>> PrepareAll(
    const std::vector<Pending>& in, const FingerprintOptions& fp, int threads) {
  std::vector<std::optional<core::Result<PreparedMolecule>>> out(in.size());
  std::atomic<std::size_t> next{0};
  auto work = [&] {
    for (std::size_t i = next++; i < in.size(); i = next++) {
      out[i].emplace(PrepareMolecule(in[i].smiles, fp));
    }
  };
  const std::size_t extra =
      std::min<std::size_t>(static_cast<std::size_t>(std::max(threads, 1)) - 1, in.size() / 64);
  std::vector<std::thread> pool;
  pool.reserve(extra);
  for (std::size_t t = 0; t < extra; ++t) {
    try {
      pool.emplace_back(work);
    } catch (const std::system_error&) {
      break;  // No thread to spare: the calling thread does the rest.
    }
  }
  work();
  for (std::thread& t : pool) t.join();
  return out;
}

bool NeedsQuotes(std::string_view s) {
  if (s.empty()) return false;
  if (s.front() == ' ' || s.back() == ' ' || s.front() == '\t' || s.back() == '\t') return true;
  return s.find_first_of(",\"\r\n") != std::string_view::npos;
}

void WriteField(std::ostream& out, std::string_view s) {
  if (!NeedsQuotes(s)) {
    out << s;
    return;
  }
  out << '"';
  for (char c : s) {
    if (c == '"') out << '"';
    out << c;
  }
  out << '"';
}

core::Status WriteError(const std::string& what, const std::string& path, int err) {
  std::string msg = what + ": " + std::strerror(err);
  if (err == ENOENT || err == ENOTDIR) return core::NotFound(std::move(msg), path);
  if (err == EACCES || err == EPERM || err == EROFS) {
    return core::Status(core::StatusCode::kPermissionDenied, std::move(msg), path);
  }
  return core::Unavailable(std::move(msg), path);
}

}  // namespace

core::Result<Dataset> LoadCsvDataset(const std::string& path, const CsvOptions& options,
                                     const FingerprintOptions& fp, LoadReport* report) {
  LoadReport local;
  LoadReport& rep = report ? *report : local;
  rep = LoadReport{};
  if (fp.radius < 0 || fp.radius > kMaxFingerprintRadius || fp.bits == 0 ||
      fp.bits > kMaxFingerprintBits) {
    return core::InvalidArgument("fingerprint options out of range (radius " +
                                 std::to_string(fp.radius) + ", bits " + std::to_string(fp.bits) +
                                 ")");
  }

  FEDRX_ASSIGN_OR_RETURN(std::string text, ReadFile(path, options.max_file_bytes));
  std::string_view body = text;
  if (body.starts_with("\xEF\xBB\xBF")) body.remove_prefix(3);
  FEDRX_ASSIGN_OR_RETURN(std::vector<Record> records, ParseCsv(body, path));
  if (records.empty()) return core::InvalidArgument("empty CSV file: no header", path);
  const Record& header = records.front();
  if (!header.defect.empty()) {
    return core::InvalidArgument("malformed header: " + header.defect, Where(path, header.line));
  }
  FEDRX_ASSIGN_OR_RETURN(Columns cols, ResolveColumns(header, options, path));

  const std::size_t width = header.fields.size();
  std::vector<Pending> pending;
  pending.reserve(records.size() - 1);
  for (std::size_t r = 1; r < records.size(); ++r) {
    const Record& rec = records[r];
    const std::size_t row = r;  // 1-based among data records
    ++rep.rows_read;
    auto skip = [&](std::string reason) {
      rep.skipped.push_back({row, rec.line, std::move(reason)});
    };
    if (!rec.defect.empty()) {
      skip("malformed row: " + rec.defect);
      continue;
    }
    if (rec.fields.size() != width) {
      skip("row has " + std::to_string(rec.fields.size()) + " fields, the header has " +
           std::to_string(width));
      continue;
    }
    Pending p{row, rec.line, rec.fields[cols.smiles], {}, {}};
    p.labels.reserve(cols.tasks.size());
    std::string bad_label;
    for (std::size_t t = 0; t < cols.tasks.size(); ++t) {
      const std::string& cell = rec.fields[cols.tasks[t]];
      const auto label = ParseLabel(cell);
      if (!label) {
        bad_label = "task " + Quote(cols.task_names[t]) + " has label " + Quote(cell) +
                    "; expected 0, 1 or empty";
        break;
      }
      p.labels.push_back(*label);
    }
    if (!bad_label.empty()) {
      skip(std::move(bad_label));
      continue;
    }
    if (cols.split) p.split = std::string(Trim(rec.fields[*cols.split]));
    pending.push_back(std::move(p));
  }

  const auto prepared = PrepareAll(pending, fp, options.threads);

  Dataset ds;
  ds.tasks = cols.task_names;
  ds.x.dim = fp.bits;
  std::unordered_set<std::string> seen;
  // Rows skipped for RDKit reasons are reported in row order with the rest.
  std::vector<LoadReport::Skipped> rdkit_skips;
  for (std::size_t i = 0; i < pending.size(); ++i) {
    const Pending& p = pending[i];
    const core::Result<PreparedMolecule>& mol = *prepared[i];
    if (!mol.ok()) {
      rdkit_skips.push_back(
          {p.row, p.line, "SMILES " + Quote(p.smiles) + ": " + mol.status().message()});
      continue;
    }
    if (!seen.insert(mol->canonical_smiles).second) ++rep.duplicate_smiles;
    ds.smiles.push_back(mol->canonical_smiles);
    ds.scaffolds.push_back(mol->scaffold);
    if (cols.split) ds.split.push_back(p.split);
    ds.x.AddRow(mol->bits);
    ds.y.insert(ds.y.end(), p.labels.begin(), p.labels.end());
  }
  rep.rows_loaded = ds.size();
  if (!rdkit_skips.empty()) {
    std::vector<LoadReport::Skipped> merged;
    merged.reserve(rep.skipped.size() + rdkit_skips.size());
    std::merge(
        std::make_move_iterator(rep.skipped.begin()), std::make_move_iterator(rep.skipped.end()),
        std::make_move_iterator(rdkit_skips.begin()), std::make_move_iterator(rdkit_skips.end()),
        std::back_inserter(merged),
        [](const LoadReport::Skipped& a, const LoadReport::Skipped& b) { return a.row < b.row; });
    rep.skipped = std::move(merged);
  }
  return ds;
}

core::Status WriteCsvDataset(const std::string& path, const Dataset& dataset) {
  const std::size_t rows = dataset.size();
  const std::size_t t = dataset.num_tasks();
  if (dataset.smiles.size() != rows || dataset.y.size() != rows * t ||
      (!dataset.split.empty() && dataset.split.size() != rows)) {
    return core::InvalidArgument(
        "dataset columns disagree in length (rows " + std::to_string(rows) + ", smiles " +
            std::to_string(dataset.smiles.size()) + ", labels " + std::to_string(dataset.y.size()) +
            ", split " + std::to_string(dataset.split.size()) + ")",
        path);
  }
  for (std::size_t i = 0; i < dataset.y.size(); ++i) {
    const std::int8_t v = dataset.y[i];
    if (v != 0 && v != 1 && v != kMissing) {
      return core::InvalidArgument("label " + std::to_string(v) + " at row " +
                                       std::to_string(i / t + 1) + ", task " +
                                       Quote(dataset.tasks[i % t]) + " is not 0, 1 or missing",
                                   path);
    }
  }
  for (const std::string& task : dataset.tasks) {
    if (task.empty() || EqualsIgnoreCase(task, "smiles") || EqualsIgnoreCase(task, "split")) {
      return core::InvalidArgument("task name " + Quote(task) + " would not read back as a task",
                                   path);
    }
  }
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return WriteError("cannot create the CSV file", tmp, errno);
    out << "smiles";
    for (const std::string& task : dataset.tasks) {
      out << ',';
      WriteField(out, task);
    }
    if (!dataset.split.empty()) out << ",split";
    out << '\n';
    for (std::size_t r = 0; r < rows; ++r) {
      WriteField(out, dataset.smiles[r]);
      for (std::size_t k = 0; k < t; ++k) {
        const std::int8_t v = dataset.label(r, k);
        out << ',';
        if (v != kMissing) out << (v == 1 ? '1' : '0');
      }
      if (!dataset.split.empty()) {
        out << ',';
        WriteField(out, dataset.split[r]);
      }
      out << '\n';
    }
    out.flush();
    if (!out) {
      const int err = errno;
      std::error_code ignored;
      fs::remove(tmp, ignored);
      return WriteError("error while writing the CSV file", tmp, err);
    }
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
    return WriteError("cannot move the CSV file into place", path, ec.value());
  }
  return core::Status::Ok();
}

}  // namespace fedrx::ml
