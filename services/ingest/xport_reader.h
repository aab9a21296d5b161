// Reads one SAS XPORT v5 (.xpt) dataset into a Table, through ReadStat.
// Stateless and reentrant: concurrent calls on different files are safe.
#pragma once

#include <string>

#include "services/core/status.h"
#include "services/ingest/table.h"

namespace fedrx::ingest {

// Reads the first (in SDTM/SEND: the only) member of the XPORT file at `path`.
// The 80-byte library header and the file size are checked before anything
// else is read. Blocks on file I/O. Errors, each naming the file (and the
// record where known) in Status::where():
//   kNotFound            the file does not exist or cannot be opened
//   kInvalidArgument     empty file; first record is not an XPORT library header
//   kUnimplemented       an XPORT v8 (LIBV8) file
//   kResourceExhausted   larger than options.max_bytes
//   kDataLoss            truncated (not whole 80-byte records) or corrupt body
core::Result<Table> ReadXport(const std::string& path, const ReadOptions& options = {});

}  // namespace fedrx::ingest
