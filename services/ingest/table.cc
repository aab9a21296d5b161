#include "services/ingest/table.h"

#include <cmath>

namespace fedrx::ingest {

const char* SourceFormatName(SourceFormat format) {
  switch (format) {
    case SourceFormat::kXport:
      return "xport";
    case SourceFormat::kDatasetJson:
      return "dataset-json";
  }
  return "unknown";
}

const char* DataTypeName(DataType type) {
  switch (type) {
    case DataType::kString:
      return "string";
    case DataType::kInteger:
      return "integer";
    case DataType::kDecimal:
      return "decimal";
    case DataType::kFloat:
      return "float";
    case DataType::kDouble:
      return "double";
    case DataType::kBoolean:
      return "boolean";
    case DataType::kDate:
      return "date";
    case DataType::kDatetime:
      return "datetime";
    case DataType::kTime:
      return "time";
    case DataType::kUri:
      return "URI";
  }
  return "unknown";
}

Cell Column::At(std::size_t row) const {
  if (storage == StorageType::kText) {
    if (text[row].empty()) return std::monostate{};
    return std::string_view(text[row]);
  }
  if (missing[row] != kPresent) return std::monostate{};
  return number[row];
}

void Column::AppendMissing(char tag) {
  if (storage == StorageType::kText) {
    text.emplace_back();
  } else {
    number.push_back(std::nan(""));
    missing.push_back(tag == kPresent ? kSystemMissing : tag);
  }
}

int Table::ColumnIndex(std::string_view name) const {
  for (std::size_t i = 0; i < columns.size(); ++i) {
    if (columns[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

}  // namespace fedrx::ingest
