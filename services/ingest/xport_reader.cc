#include "services/ingest/xport_reader.h"

#include <readstat.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <memory>
#include <string_view>

#include "services/ingest/file_probe.h"

namespace fedrx::ingest {
namespace {

// XPORT is a sequence of 80-byte card images; the first is the library header.
constexpr std::size_t kRecordBytes = 80;
constexpr std::string_view kV5LibraryHeader = "HEADER RECORD*******LIBRARY HEADER RECORD!!!!!!!";
constexpr std::string_view kV8LibraryHeader = "HEADER RECORD*******LIBV8   HEADER RECORD!!!!!!!";

core::Status DataLoss(std::string message, std::string where) {
  return {core::StatusCode::kDataLoss, std::move(message), std::move(where)};
}

// SAS formats that make a number a date, datetime or time. The format name is
// the format without its width/decimals ("DATE9." -> "DATE").
DataType NumericDataType(std::string_view format) {
  std::string name(format);
  while (!name.empty() &&
         (std::isdigit(static_cast<unsigned char>(name.back())) || name.back() == '.')) {
    name.pop_back();
  }
  for (char& c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  static constexpr std::string_view kDates[] = {"DATE",     "YYMMDD",   "MMDDYY",  "DDMMYY",
                                                "E8601DA",  "IS8601DA", "B8601DA", "MONYY",
                                                "WEEKDATE", "WORDDATE", "YYMMDDN"};
  static constexpr std::string_view kDatetimes[] = {"DATETIME", "E8601DT", "IS8601DT", "B8601DT",
                                                    "DATEAMPM"};
  static constexpr std::string_view kTimes[] = {"TIME",    "E8601TM", "IS8601TM",
                                                "B8601TM", "HHMM",    "TOD"};
  auto in = [&](const auto& list) {
    return std::find(std::begin(list), std::end(list), name) != std::end(list);
  };
  if (in(kDates)) return DataType::kDate;
  if (in(kDatetimes)) return DataType::kDatetime;
  if (in(kTimes)) return DataType::kTime;
  return DataType::kDouble;
}

// XPORT v5 does not store a row count: readers derive it from the file size, so
// a file cut at an 80-byte boundary inside the data reads "fine" with rows
// missing and the last one half-filled. The bytes after the last whole
// observation must be blank padding, shorter than one 80-byte record; anything
// else is a cut-off observation. (A cut exactly at an observation boundary that
// is also an 80-byte boundary leaves no trace and cannot be detected.)
core::Status CheckDataSection(const std::string& path, std::uint64_t size, Table& table) {
  std::uint64_t row_bytes = 0;
  for (const Column& column : table.columns) row_bytes += static_cast<std::uint64_t>(column.length);
  if (row_bytes == 0) return core::Status::Ok();

  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"),
                                                       &std::fclose);
  if (!file) return core::NotFound("cannot reopen file", internal::Where(path));
  // Header records are 80-byte aligned; the observations follow the OBS header.
  constexpr std::string_view kObsHeader = "HEADER RECORD*******OBS     HEADER RECORD!!!!!!!";
  char record[kRecordBytes];
  std::uint64_t data_start = 0;
  for (std::uint64_t offset = 0; offset + kRecordBytes <= size; offset += kRecordBytes) {
    if (std::fread(record, 1, kRecordBytes, file.get()) != kRecordBytes) break;
    if (std::string_view(record, kObsHeader.size()) == kObsHeader) {
      data_start = offset + kRecordBytes;
      break;
    }
  }
  if (data_start == 0) {
    return DataLoss("no OBS header record: the file is not a complete XPORT dataset",
                    internal::Where(path));
  }
  const std::uint64_t data_bytes = size - data_start;
  const std::uint64_t whole_rows = data_bytes / row_bytes;
  const std::uint64_t tail = data_bytes % row_bytes;
  bool blank_tail = tail < kRecordBytes;
  if (blank_tail && tail > 0) {
    std::string bytes(tail, '\0');
    if (std::fseek(file.get(), static_cast<long>(size - tail), SEEK_SET) != 0 ||
        std::fread(bytes.data(), 1, bytes.size(), file.get()) != bytes.size()) {
      return DataLoss("cannot read the end of the file", internal::Where(path));
    }
    blank_tail = bytes.find_first_not_of(' ') == std::string::npos;
  }
  if (!blank_tail) {
    return DataLoss("truncated XPORT file: the last observation is cut off (" +
                        std::to_string(tail) + " of " + std::to_string(row_bytes) + " bytes)",
                    internal::Where(path, whole_rows + 1));
  }
  if (table.num_rows > whole_rows) {
    return DataLoss("XPORT file holds " + std::to_string(whole_rows) + " whole observations but " +
                        std::to_string(table.num_rows) + " were read",
                    internal::Where(path));
  }
  if (table.num_rows < whole_rows) {
    // ReadStat drops trailing all-blank observations: padding and data look alike.
    table.problems.push_back({-1, -1,
                              std::to_string(whole_rows - table.num_rows) +
                                  " trailing all-blank observations were taken as padding"});
  }
  return core::Status::Ok();
}

// State shared with ReadStat's C callbacks for one parse.
struct ParseContext {
  Table* table = nullptr;
  int members_seen = 0;
  bool stopped_after_first_member = false;
  std::int64_t last_obs = -1;    // highest 0-based observation delivered
  std::string readstat_message;  // from the error handler, if any
};

int OnMetadata(readstat_metadata_t* metadata, void* ctx_ptr) {
  auto* ctx = static_cast<ParseContext*>(ctx_ptr);
  if (++ctx->members_seen > 1) {
    // SDTM/SEND put one dataset in each file; a second member is not ours to read.
    ctx->stopped_after_first_member = true;
    return READSTAT_HANDLER_ABORT;
  }
  if (const char* name = readstat_get_table_name(metadata)) ctx->table->name = name;
  if (const char* label = readstat_get_file_label(metadata)) ctx->table->label = label;
  const int vars = readstat_get_var_count(metadata);
  if (vars > 0) ctx->table->columns.reserve(static_cast<std::size_t>(vars));
  return READSTAT_HANDLER_OK;
}

int OnVariable(int index, readstat_variable_t* variable, const char* /*val_labels*/,
               void* ctx_ptr) {
  auto* ctx = static_cast<ParseContext*>(ctx_ptr);
  if (ctx->members_seen > 1) return READSTAT_HANDLER_ABORT;
  Column column;
  if (const char* name = readstat_variable_get_name(variable)) column.name = name;
  if (const char* label = readstat_variable_get_label(variable)) column.label = label;
  if (const char* format = readstat_variable_get_format(variable)) column.format = format;
  column.length = static_cast<int>(readstat_variable_get_storage_width(variable));
  if (readstat_variable_get_type_class(variable) == READSTAT_TYPE_CLASS_STRING) {
    column.storage = StorageType::kText;
    column.data_type = DataType::kString;
  } else {
    column.storage = StorageType::kNumber;
    column.data_type = NumericDataType(column.format);
  }
  // ReadStat numbers variables 0..n-1 in order; keep the table aligned with that.
  if (index != static_cast<int>(ctx->table->columns.size())) return READSTAT_HANDLER_ABORT;
  ctx->table->columns.push_back(std::move(column));
  return READSTAT_HANDLER_OK;
}

int OnValue(int obs_index, readstat_variable_t* variable, readstat_value_t value, void* ctx_ptr) {
  auto* ctx = static_cast<ParseContext*>(ctx_ptr);
  const int index = readstat_variable_get_index(variable);
  if (index < 0 || static_cast<std::size_t>(index) >= ctx->table->columns.size()) {
    return READSTAT_HANDLER_ABORT;
  }
  Column& column = ctx->table->columns[static_cast<std::size_t>(index)];
  // Values arrive row by row, column by column; anything else is a corrupt file.
  if (column.size() != static_cast<std::size_t>(obs_index)) return READSTAT_HANDLER_ABORT;
  ctx->last_obs = std::max<std::int64_t>(ctx->last_obs, obs_index);

  if (column.storage == StorageType::kText) {
    const char* s = readstat_string_value(value);
    std::string text = s ? s : "";
    // SAS pads character values with blanks; trailing blanks carry no meaning.
    while (!text.empty() && text.back() == ' ') text.pop_back();
    column.AppendText(std::move(text));
    return READSTAT_HANDLER_OK;
  }
  if (readstat_value_is_tagged_missing(value)) {
    column.AppendMissing(readstat_value_tag(value));
  } else if (readstat_value_is_system_missing(value)) {
    column.AppendMissing(kSystemMissing);
  } else {
    column.AppendNumber(readstat_double_value(value));
  }
  return READSTAT_HANDLER_OK;
}

void OnError(const char* message, void* ctx_ptr) {
  auto* ctx = static_cast<ParseContext*>(ctx_ptr);
  if (message && ctx->readstat_message.empty()) {
    ctx->readstat_message = message;
    while (!ctx->readstat_message.empty() &&
           std::isspace(static_cast<unsigned char>(ctx->readstat_message.back()))) {
      ctx->readstat_message.pop_back();
    }
  }
}

}  // namespace

core::Result<Table> ReadXport(const std::string& path, const ReadOptions& options) {
  FEDRX_ASSIGN_OR_RETURN(internal::FileProbe probe, internal::ProbeFile(path, kRecordBytes));
  const std::string_view head(probe.head);
  if (head.substr(0, kV8LibraryHeader.size()) == kV8LibraryHeader) {
    return core::Status(core::StatusCode::kUnimplemented,
                        "SAS XPORT v8 (LIBV8) is not supported; only v5", internal::Where(path));
  }
  if (head.size() < kRecordBytes || head.substr(0, kV5LibraryHeader.size()) != kV5LibraryHeader) {
    return core::InvalidArgument(
        "not a SAS XPORT v5 file: the first 80-byte record is not the library header \"" +
            std::string(kV5LibraryHeader) + "...\"",
        internal::Where(path));
  }
  if (probe.size > options.max_bytes) {
    return core::ResourceExhausted("file is " + std::to_string(probe.size) +
                                       " bytes, over the limit of " +
                                       std::to_string(options.max_bytes),
                                   internal::Where(path));
  }
  if (probe.size % kRecordBytes != 0) {
    // Writers pad XPORT to whole 80-byte records; a ragged end means lost bytes.
    return DataLoss("truncated XPORT file: " + std::to_string(probe.size) +
                        " bytes is not a whole number of 80-byte records (" +
                        std::to_string(probe.size % kRecordBytes) + " bytes over)",
                    internal::Where(path));
  }

  Table table;
  table.source = path;
  table.format = SourceFormat::kXport;
  ParseContext ctx;
  ctx.table = &table;

  std::unique_ptr<readstat_parser_t, void (*)(readstat_parser_t*)> parser(readstat_parser_init(),
                                                                          &readstat_parser_free);
  if (!parser) return core::Internal("readstat_parser_init failed", internal::Where(path));
  readstat_set_metadata_handler(parser.get(), &OnMetadata);
  readstat_set_variable_handler(parser.get(), &OnVariable);
  readstat_set_value_handler(parser.get(), &OnValue);
  readstat_set_error_handler(parser.get(), &OnError);
  const readstat_error_t error = readstat_parse_xport(parser.get(), path.c_str(), &ctx);

  const bool clean_stop = error == READSTAT_ERROR_USER_ABORT && ctx.stopped_after_first_member;
  if (error != READSTAT_OK && !clean_stop) {
    std::string message = std::string("cannot parse XPORT file (truncated or corrupt?): ") +
                          readstat_error_message(error);
    if (!ctx.readstat_message.empty()) message += " (" + ctx.readstat_message + ")";
    // The record after the last complete one is where reading failed.
    const auto record = static_cast<std::uint64_t>(ctx.last_obs + 2);
    const core::StatusCode code =
        error == READSTAT_ERROR_OPEN ? core::StatusCode::kNotFound : core::StatusCode::kDataLoss;
    return core::Status(code, std::move(message),
                        ctx.last_obs >= 0 ? internal::Where(path, record) : internal::Where(path));
  }
  if (ctx.members_seen == 0) {
    return DataLoss("XPORT file holds no dataset (no member header)", internal::Where(path));
  }

  std::size_t rows = 0;
  for (const Column& column : table.columns) rows = std::max(rows, column.size());
  for (Column& column : table.columns) {
    if (column.size() != rows) {
      // A row cut short: ReadStat stopped mid-observation.
      return DataLoss("truncated XPORT file: record " + std::to_string(rows) + " is incomplete",
                      internal::Where(path, rows, column.name));
    }
  }
  table.num_rows = rows;
  if (ctx.stopped_after_first_member) {
    table.problems.push_back(
        {-1, -1, "file holds more than one dataset member; only the first was read"});
  } else {
    FEDRX_RETURN_IF_ERROR(CheckDataSection(path, probe.size, table));
  }
  return table;
}

}  // namespace fedrx::ingest
