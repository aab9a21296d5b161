#include "services/ingest/dataset_json_reader.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>

#include "services/ingest/file_probe.h"

namespace fedrx::ingest {
namespace {

using Json = nlohmann::json;

// Enough to skip a BOM and leading blanks and see the first real byte.
constexpr std::size_t kHeadBytes = 4096;

struct RawValue {
  enum class Kind : std::uint8_t { kNull, kNumber, kString, kBool };
  Kind kind = Kind::kNull;
  double number = 0;
  bool exact = true;  // false for an integer too large to be held exactly
  std::string text;
};

// The column metadata as the file states it, before it is checked.
struct ColumnSpec {
  std::string oid, name, label, data_type, target_data_type, display_format;
  int length = 0;
};

std::optional<DataType> ParseDataType(std::string_view s) {
  static constexpr std::pair<std::string_view, DataType> kTypes[] = {
      {"string", DataType::kString},   {"integer", DataType::kInteger},
      {"decimal", DataType::kDecimal}, {"float", DataType::kFloat},
      {"double", DataType::kDouble},   {"boolean", DataType::kBoolean},
      {"date", DataType::kDate},       {"datetime", DataType::kDatetime},
      {"time", DataType::kTime},       {"URI", DataType::kUri}};
  for (const auto& [name, type] : kTypes) {
    if (s == name) return type;
  }
  return std::nullopt;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::optional<double> ParseNumber(std::string_view s) {
  s = Trim(s);
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  if (s.empty()) return std::nullopt;
  double value = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || end != s.data() + s.size() || !std::isfinite(value)) {
    return std::nullopt;
  }
  return value;
}

// Streams a Dataset-JSON 1.1 document into a Table. nlohmann calls these in
// document order; the handler keeps one row in memory at a time (all rows only
// if "rows" precedes "columns", which the standard allows but writers avoid).
class DatasetJsonSax {
 public:
  DatasetJsonSax(const std::string& path, const ReadOptions& options, Table& table)
      : path_(path), options_(options), table_(table) {}

  // nlohmann::json SAX interface; returning false stops the parse.
  bool null() { return Scalar(RawValue{}); }
  bool boolean(bool v) {
    RawValue value;
    value.kind = RawValue::Kind::kBool;
    value.number = v ? 1 : 0;
    return Scalar(std::move(value));
  }
  bool number_integer(Json::number_integer_t v) {
    return Number(static_cast<double>(v), v > kMaxExact || v < -kMaxExact);
  }
  bool number_unsigned(Json::number_unsigned_t v) {
    return Number(static_cast<double>(v), v > static_cast<std::uint64_t>(kMaxExact));
  }
  bool number_float(Json::number_float_t v, const Json::string_t& /*text*/) {
    return Number(v, false);
  }
  bool string(Json::string_t& v) {
    RawValue value;
    value.kind = RawValue::Kind::kString;
    value.text = std::move(v);
    return Scalar(std::move(value));
  }
  bool binary(Json::binary_t& /*v*/) { return Fail("binary values are not JSON text"); }
  bool key(Json::string_t& k) {
    key_ = std::move(k);
    return true;
  }
  bool start_object(std::size_t /*n*/) { return Open(/*is_array=*/false); }
  bool end_object() { return Close(); }
  bool start_array(std::size_t /*n*/) { return Open(/*is_array=*/true); }
  bool end_array() { return Close(); }
  bool parse_error(std::size_t position, const std::string& /*last_token*/,
                   const nlohmann::detail::exception& /*ex*/) {
    // The token and nlohmann's text may quote file content: keep them out.
    syntax_error_at_ = position;
    return false;
  }

  // After a parse that returned false: the error to report.
  core::Status ErrorStatus(std::uint64_t file_size) const {
    if (!status_.ok()) return status_;
    if (syntax_error_at_ > 0 && syntax_error_at_ >= file_size) {
      return core::InvalidArgument("not valid JSON: the file ends inside the document (truncated?)",
                                   internal::Where(path_));
    }
    return core::InvalidArgument(
        "not valid JSON: syntax error at byte " + std::to_string(syntax_error_at_),
        internal::Where(path_));
  }

  // After a complete parse: checks what only the whole document can show.
  core::Status Finish() {
    if (saw_v10_wrapper_ && version_.empty()) {
      return core::Status(
          core::StatusCode::kUnimplemented,
          "Dataset-JSON 1.0 (clinicalData/referenceData) is not supported; only 1.1",
          internal::Where(path_));
    }
    if (version_.empty()) {
      return core::InvalidArgument("not Dataset-JSON: no \"datasetJSONVersion\"",
                                   internal::Where(path_));
    }
    if (!columns_done_) {
      return core::InvalidArgument("not Dataset-JSON: no \"columns\" array",
                                   internal::Where(path_));
    }
    if (!saw_rows_) {
      return core::InvalidArgument("not Dataset-JSON: no \"rows\" array", internal::Where(path_));
    }
    for (std::vector<RawValue>& row : pending_rows_) {
      FEDRX_RETURN_IF_ERROR(ConvertRow(row, row.size()));
    }
    pending_rows_.clear();
    if (records_ && *records_ != static_cast<std::int64_t>(table_.num_rows)) {
      AddProblem(-1, -1,
                 "\"records\" says " + std::to_string(*records_) + " but the file holds " +
                     std::to_string(table_.num_rows) + " rows");
    }
    if (item_group_oid_.empty()) AddProblem(-1, -1, "no \"itemGroupOID\"");
    if (table_.name.empty()) AddProblem(-1, -1, "no dataset \"name\"");
    return core::Status::Ok();
  }

 private:
  // Integers beyond 2^53 do not survive conversion to double.
  static constexpr std::int64_t kMaxExact = std::int64_t{1} << 53;

  enum class Ctx : std::uint8_t { kTop, kColumns, kColumn, kRows, kRow, kSkip };

  bool Fail(core::Status status) {
    status_ = std::move(status);
    return false;
  }
  bool Fail(std::string message) {
    return Fail(core::InvalidArgument(std::move(message), Where()));
  }

  std::string Where() const {
    if (!stack_.empty() && stack_.back() == Ctx::kRow) {
      const std::size_t c = row_len_;
      return internal::Where(
          path_, rows_seen_ + 1,
          c < table_.columns.size() ? table_.columns[c].name : "#" + std::to_string(c + 1));
    }
    return internal::Where(path_);
  }

  bool Number(double v, bool inexact) {
    RawValue value;
    value.kind = RawValue::Kind::kNumber;
    value.number = v;
    value.exact = !inexact;
    return Scalar(std::move(value));
  }

  bool Open(bool is_array) {
    if (stack_.empty()) {
      if (is_array) return Fail("not a Dataset-JSON object: the top level is an array");
      stack_.push_back(Ctx::kTop);
      return true;
    }
    switch (stack_.back()) {
      case Ctx::kTop:
        if (key_ == "columns") {
          if (!is_array) return Fail("\"columns\" is not an array");
          if (columns_done_) return Fail("\"columns\" appears twice");
          stack_.push_back(Ctx::kColumns);
        } else if (key_ == "rows") {
          if (!is_array) return Fail("\"rows\" is not an array");
          if (saw_rows_) return Fail("\"rows\" appears twice");
          saw_rows_ = true;
          stack_.push_back(Ctx::kRows);
        } else {
          if (key_ == "clinicalData" || key_ == "referenceData") saw_v10_wrapper_ = true;
          stack_.push_back(Ctx::kSkip);
        }
        return true;
      case Ctx::kColumns:
        if (is_array) return Fail("\"columns\" holds an array where a column object belongs");
        specs_.emplace_back();
        stack_.push_back(Ctx::kColumn);
        return true;
      case Ctx::kColumn:
      case Ctx::kSkip:
        stack_.push_back(Ctx::kSkip);
        return true;
      case Ctx::kRows:
        if (!is_array) {
          return Fail(core::InvalidArgument("record is an object; Dataset-JSON 1.1 rows are arrays",
                                            internal::Where(path_, rows_seen_ + 1)));
        }
        row_len_ = 0;
        stack_.push_back(Ctx::kRow);
        return true;
      case Ctx::kRow:
        return Fail("nested array or object in a record; values must be scalars");
    }
    return true;
  }

  bool Close() {
    const Ctx closing = stack_.back();
    stack_.pop_back();
    switch (closing) {
      case Ctx::kColumns: {
        const core::Status status = BuildColumns();
        if (!status.ok()) return Fail(status);
        columns_done_ = true;
        return true;
      }
      case Ctx::kRow: {
        if (!columns_done_) {
          pending_rows_.emplace_back(std::make_move_iterator(row_.begin()),
                                     std::make_move_iterator(row_.begin() + row_len_));
          ++rows_seen_;
          return true;
        }
        const core::Status status = ConvertRow(row_, row_len_);
        if (!status.ok()) return Fail(status);
        return true;
      }
      default:
        return true;
    }
  }

  bool Scalar(RawValue value) {
    if (stack_.empty()) return Fail("not a Dataset-JSON object: the top level is a scalar");
    switch (stack_.back()) {
      case Ctx::kTop:
        return TopScalar(value);
      case Ctx::kColumn:
        return ColumnScalar(value);
      case Ctx::kRow:
        if (row_len_ == row_.size()) row_.emplace_back();
        row_[row_len_++] = std::move(value);
        return true;
      case Ctx::kColumns:
        return Fail("\"columns\" holds a scalar where a column object belongs");
      case Ctx::kRows:
        return Fail(core::InvalidArgument("record is a scalar; Dataset-JSON 1.1 rows are arrays",
                                          internal::Where(path_, rows_seen_ + 1)));
      case Ctx::kSkip:
        return true;
    }
    return true;
  }

  bool TopScalar(const RawValue& value) {
    const bool is_text = value.kind == RawValue::Kind::kString;
    if (key_ == "datasetJSONVersion") {
      if (!is_text) return Fail("\"datasetJSONVersion\" is not a string");
      version_ = value.text;
      // 1.1, 1.1.0, 1.1.x; checked early so that another JSON is not parsed whole.
      if (version_ != "1.1" && version_.rfind("1.1.", 0) != 0) {
        return Fail(
            core::Status(core::StatusCode::kUnimplemented,
                         "Dataset-JSON version \"" + version_ + "\" is not supported; only 1.1",
                         internal::Where(path_)));
      }
    } else if (key_ == "itemGroupOID" && is_text) {
      item_group_oid_ = value.text;
    } else if (key_ == "name" && is_text) {
      table_.name = value.text;
    } else if (key_ == "label" && is_text) {
      table_.label = value.text;
    } else if (key_ == "records") {
      if (value.kind != RawValue::Kind::kNumber || value.number < 0 ||
          value.number != std::floor(value.number)) {
        return Fail("\"records\" is not a non-negative integer");
      }
      records_ = static_cast<std::int64_t>(value.number);
    }
    return true;
  }

  bool ColumnScalar(const RawValue& value) {
    ColumnSpec& spec = specs_.back();
    const bool is_text = value.kind == RawValue::Kind::kString;
    if (key_ == "length") {
      if (value.kind == RawValue::Kind::kNumber && value.number >= 0 && value.number < 1e9) {
        spec.length = static_cast<int>(value.number);
      }
      return true;
    }
    if (!is_text) return true;
    if (key_ == "itemOID")
      spec.oid = value.text;
    else if (key_ == "name")
      spec.name = value.text;
    else if (key_ == "label")
      spec.label = value.text;
    else if (key_ == "dataType")
      spec.data_type = value.text;
    else if (key_ == "targetDataType")
      spec.target_data_type = value.text;
    else if (key_ == "displayFormat")
      spec.display_format = value.text;
    return true;
  }

  core::Status BuildColumns() {
    table_.columns.reserve(specs_.size());
    for (std::size_t i = 0; i < specs_.size(); ++i) {
      ColumnSpec& spec = specs_[i];
      const std::string where = internal::Where(path_) + " columns[" + std::to_string(i) + "]" +
                                (spec.name.empty() ? "" : " (" + spec.name + ")");
      if (spec.name.empty()) return core::InvalidArgument("column has no \"name\"", where);
      const auto type = ParseDataType(spec.data_type);
      if (!type) {
        return core::InvalidArgument(spec.data_type.empty()
                                         ? "column has no \"dataType\""
                                         : "unknown dataType \"" + spec.data_type + "\"",
                                     where);
      }
      Column column;
      column.name = std::move(spec.name);
      column.label = std::move(spec.label);
      column.oid = std::move(spec.oid);
      column.format = std::move(spec.display_format);
      column.length = spec.length;
      column.data_type = *type;
      switch (*type) {
        case DataType::kString:
        case DataType::kUri:
          column.storage = StorageType::kText;
          break;
        case DataType::kDate:
        case DataType::kDatetime:
        case DataType::kTime:
          // ISO 8601 text unless the file says the value is a SAS number.
          column.storage = spec.target_data_type == "integer" || spec.target_data_type == "decimal"
                               ? StorageType::kNumber
                               : StorageType::kText;
          break;
        default:
          column.storage = StorageType::kNumber;
      }
      table_.columns.push_back(std::move(column));
    }
    specs_.clear();
    return core::Status::Ok();
  }

  core::Status ConvertRow(std::vector<RawValue>& values, std::size_t count) {
    const std::size_t row = rows_seen_++;
    if (count != table_.columns.size()) {
      return core::InvalidArgument("record has " + std::to_string(count) +
                                       " values; the dataset has " +
                                       std::to_string(table_.columns.size()) + " columns",
                                   internal::Where(path_, row + 1));
    }
    for (std::size_t c = 0; c < count; ++c) ConvertCell(row, c, values[c]);
    ++table_.num_rows;
    return core::Status::Ok();
  }

  void ConvertCell(std::size_t row, std::size_t c, RawValue& value) {
    Column& column = table_.columns[c];
    using Kind = RawValue::Kind;
    if (value.kind == Kind::kNull) {
      column.AppendMissing();
      return;
    }
    const std::string type = DataTypeName(column.data_type);
    if (column.storage == StorageType::kText) {
      if (value.kind == Kind::kString) {
        column.AppendText(std::move(value.text));
      } else {
        AddProblem(row, c,
                   std::string(value.kind == Kind::kBool ? "a boolean" : "a number") +
                       " in a text column (dataType " + type + ")");
        column.AppendMissing();
      }
      return;
    }
    switch (value.kind) {
      case Kind::kNumber:
        if (column.data_type == DataType::kInteger && value.number != std::floor(value.number)) {
          AddProblem(row, c, "a fractional number in an integer column");
          column.AppendMissing();
          return;
        }
        if (!value.exact) AddProblem(row, c, "an integer beyond 2^53 lost precision");
        column.AppendNumber(value.number);
        return;
      case Kind::kBool:
        if (column.data_type == DataType::kBoolean) {
          column.AppendNumber(value.number);
        } else {
          AddProblem(row, c, "a boolean in a numeric column (dataType " + type + ")");
          column.AppendMissing();
        }
        return;
      case Kind::kString: {
        const std::optional<double> parsed = ParseNumber(value.text);
        // Dataset-JSON 1.1 writes decimals as strings to keep their digits.
        if (column.data_type == DataType::kDecimal) {
          if (parsed) {
            column.AppendNumber(*parsed);
          } else {
            if (!Trim(value.text).empty()) {
              AddProblem(row, c, "text that is not a number in a decimal column");
            }
            column.AppendMissing();
          }
          return;
        }
        AddProblem(row, c,
                   std::string(parsed ? "a number stored as text" : "text") +
                       " in a numeric column (dataType " + type + ")");
        column.AppendMissing();
        return;
      }
      case Kind::kNull:
        break;
    }
  }

  void AddProblem(std::int64_t row, std::int64_t column, std::string message) {
    if (table_.problems.size() >= options_.max_problems) {
      ++table_.problems_dropped;
      return;
    }
    table_.problems.push_back({row, static_cast<int>(column), std::move(message)});
  }

  const std::string& path_;
  const ReadOptions& options_;
  Table& table_;

  std::vector<Ctx> stack_;
  std::string key_;  // the last object key seen
  core::Status status_;
  std::size_t syntax_error_at_ = 0;

  std::string version_, item_group_oid_;
  std::optional<std::int64_t> records_;
  bool saw_v10_wrapper_ = false;
  bool saw_rows_ = false;
  bool columns_done_ = false;
  std::vector<ColumnSpec> specs_;

  std::vector<RawValue> row_;  // the record being read; reused, row_len_ valid entries
  std::size_t row_len_ = 0;
  std::size_t rows_seen_ = 0;
  std::vector<std::vector<RawValue>> pending_rows_;  // rows read before "columns"
};

}  // namespace

core::Result<Table> ReadDatasetJson(const std::string& path, const ReadOptions& options) {
  FEDRX_ASSIGN_OR_RETURN(internal::FileProbe probe, internal::ProbeFile(path, kHeadBytes));
  std::string_view head(probe.head);
  if (head.substr(0, 3) == "\xEF\xBB\xBF") head.remove_prefix(3);  // UTF-8 BOM
  const std::size_t first = head.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos || head[first] != '{') {
    return core::InvalidArgument(first == std::string_view::npos && probe.size > probe.head.size()
                                     ? "not a JSON object: the first " +
                                           std::to_string(probe.head.size()) + " bytes are blank"
                                     : "not a JSON object: the first non-blank byte is not '{'",
                                 internal::Where(path));
  }
  if (probe.size > options.max_bytes) {
    return core::ResourceExhausted("file is " + std::to_string(probe.size) +
                                       " bytes, over the limit of " +
                                       std::to_string(options.max_bytes),
                                   internal::Where(path));
  }

  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"),
                                                       &std::fclose);
  if (!file) return core::NotFound("cannot open file", internal::Where(path));

  Table table;
  table.source = path;
  table.format = SourceFormat::kDatasetJson;
  DatasetJsonSax sax(path, options, table);
  bool parsed = false;
  try {
    parsed = Json::sax_parse(file.get(), &sax);
  } catch (const Json::exception& e) {
    // With a SAX handler nlohmann reports syntax errors through parse_error;
    // what remains (e.g. invalid UTF-8 in a string) still ends up here.
    return core::InvalidArgument(
        std::string("not valid JSON (nlohmann error ") + std::to_string(e.id) + ")",
        internal::Where(path));
  }
  if (!parsed) return sax.ErrorStatus(probe.size);
  FEDRX_RETURN_IF_ERROR(sax.Finish());
  return table;
}

}  // namespace fedrx::ingest
