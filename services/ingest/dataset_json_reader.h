// Reads one CDISC Dataset-JSON 1.1 (.json) dataset into a Table. The file is
// streamed (SAX), never held whole in memory. Stateless and reentrant.
#pragma once

#include <string>

#include "services/core/status.h"
#include "services/ingest/table.h"

namespace fedrx::ingest {

// Reads the Dataset-JSON file at `path`. The first bytes and the size are
// checked before the body is parsed. A value whose JSON type contradicts its
// column's dataType (e.g. a number stored as text in an "integer" column) is
// not an error: it becomes a Table::problems entry and the cell is missing.
// "decimal" columns take numbers or numeric strings (1.1 writes them as text).
// Blocks on file I/O. Errors, naming the file (and record/column) in where():
//   kNotFound            the file does not exist or cannot be opened
//   kInvalidArgument     empty file; not JSON; not a Dataset-JSON 1.1 object;
//                        a record with the wrong number of values or a nested
//                        value; a column without name or with an unknown dataType
//   kUnimplemented       Dataset-JSON 1.0 (clinicalData/referenceData wrapper)
//   kResourceExhausted   larger than options.max_bytes
core::Result<Table> ReadDatasetJson(const std::string& path, const ReadOptions& options = {});

}  // namespace fedrx::ingest
