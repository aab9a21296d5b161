// The in-memory table every ingest reader produces (one SDTM/SEND domain):
// column metadata, column-major values with per-cell missingness, and the
// findings a reader recorded while it kept reading. Value type; thread-compatible.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace fedrx::ingest {

enum class SourceFormat : std::uint8_t { kXport, kDatasetJson };

// "xport" / "dataset-json"; bounded, usable as a metric label.
const char* SourceFormatName(SourceFormat format);

// How a column's values are stored: SAS has exactly these two.
enum class StorageType : std::uint8_t { kText, kNumber };

// What the source says the column holds. Dataset-JSON states it (dataType);
// XPORT only knows text/number, so a numeric XPORT column is kDouble unless its
// SAS format names a date, datetime or time (then kDate/kDatetime/kTime).
enum class DataType : std::uint8_t {
  kString,
  kInteger,
  kDecimal,
  kFloat,
  kDouble,
  kBoolean,
  kDate,
  kDatetime,
  kTime,
  kUri,
};

// "string", "integer", ... as Dataset-JSON 1.1 spells them.
const char* DataTypeName(DataType type);

// A missing numeric cell's tag: SAS system missing "." or a special missing
// .A-.Z / ._ (the tag is then 'A'..'Z' or '_'). kPresent marks a value.
inline constexpr char kPresent = 0;
inline constexpr char kSystemMissing = '.';

// One cell, as a view into its column: missing, a number, or text.
using Cell = std::variant<std::monostate, double, std::string_view>;

struct Column {
  std::string name;
  std::string label;
  std::string oid;  // Dataset-JSON itemOID; empty for XPORT
  StorageType storage = StorageType::kText;
  DataType data_type = DataType::kString;
  // Dataset-JSON "length", or XPORT's storage width in bytes (8 for numbers);
  // 0 when the source does not say.
  int length = 0;
  // SAS format (e.g. "DATE9.") or Dataset-JSON displayFormat; may be empty.
  std::string format;

  // Values, one per row; only the vectors of `storage` are filled.
  // kText: an empty string is missing (SAS cannot tell "" from missing).
  std::vector<std::string> text;
  // kNumber: `number[i]` is the value when `missing[i] == kPresent`; otherwise
  // number[i] is NaN and missing[i] is the SAS missing tag.
  std::vector<double> number;
  std::vector<char> missing;

  std::size_t size() const { return storage == StorageType::kText ? text.size() : number.size(); }
  bool IsMissing(std::size_t row) const {
    return storage == StorageType::kText ? text[row].empty() : missing[row] != kPresent;
  }
  // Row must be < size().
  Cell At(std::size_t row) const;

  void AppendText(std::string value) { text.push_back(std::move(value)); }
  void AppendNumber(double value) {
    number.push_back(value);
    missing.push_back(kPresent);
  }
  // For a text column, appends "" whatever the tag.
  void AppendMissing(char tag = kSystemMissing);
};

// A finding recorded while reading that did not stop the read, e.g. a number
// stored as text in a numeric column. The cell concerned is left missing.
struct Problem {
  std::int64_t row = -1;  // 0-based; -1 when it concerns the whole table
  int column = -1;        // index into Table::columns; -1 for the whole row/table
  std::string message;    // what was wrong; never contains the cell's value
};

struct Table {
  std::string name;    // dataset name, e.g. "DM"
  std::string label;   // e.g. "Demographics"
  std::string source;  // the file it was read from
  SourceFormat format = SourceFormat::kXport;
  std::vector<Column> columns;
  std::size_t num_rows = 0;
  std::vector<Problem> problems;
  // Problems beyond ReadOptions::max_problems are counted here, not stored.
  std::size_t problems_dropped = 0;

  // Index of the column named `name` (exact match), or -1.
  int ColumnIndex(std::string_view name) const;
  Cell At(std::size_t row, std::size_t column) const { return columns[column].At(row); }
};

// Limits every reader applies to input it does not trust.
struct ReadOptions {
  // A file larger than this is refused before its body is read.
  std::uint64_t max_bytes = std::uint64_t{1} << 30;
  // Problems recorded per table; the rest are only counted.
  std::size_t max_problems = 1000;
};

}  // namespace fedrx::ingest
