// Reading and writing a Dataset as CSV: one molecule per row, a SMILES column,
// binary task columns (empty = not measured) and an optional split column.
// Free functions; thread-safe (LoadCsvDataset starts its own worker threads).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "services/core/status.h"
#include "services/ml/chem.h"
#include "services/ml/dataset.h"

namespace fedrx::ml {

struct CsvOptions {
  // Column holding the structures; matched case-insensitively.
  std::string smiles_column = "smiles";
  // Optional column copied into Dataset::split; matched case-insensitively.
  std::string split_column = "split";
  // Identifier columns, ignored; matched case-insensitively.
  std::vector<std::string> id_columns = {"mol_id", "id"};
  // The task columns, in this order, matched exactly. Empty: every column that
  // is not the SMILES, split or an id column, in file order.
  std::vector<std::string> task_columns;
  // Threads preparing molecules with RDKit (at least 1). Results do not
  // depend on it.
  int threads = 2;
  // Larger files are refused.
  std::uint64_t max_file_bytes = std::uint64_t{1} << 30;
};

struct LoadReport {
  // Data records after the header (blank lines are not records).
  std::size_t rows_read = 0;
  std::size_t rows_loaded = 0;
  // Loaded rows whose canonical SMILES an earlier loaded row already had.
  // Duplicates are kept as separate rows (merging them is a later step).
  std::size_t duplicate_smiles = 0;
  struct Skipped {
    std::size_t row;   // 1-based data record number (the header is not counted)
    std::size_t line;  // 1-based physical line where the record starts
    std::string reason;
  };
  std::vector<Skipped> skipped;
};

// Reads `path` (RFC 4180: quoted fields may hold commas, doubled quotes and
// line breaks; LF or CRLF line ends; an optional UTF-8 BOM) and prepares each
// SMILES with PrepareMolecule(…, fp). Labels are "0", "1", "0.0", "1.0" or empty
// (kMissing). A row whose SMILES RDKit rejects, whose label is anything else,
// or whose field count differs from the header's is skipped and listed in
// `report` (may be null); never fatal. Rows keep their input order.
// Errors: kNotFound if the file cannot be opened; kInvalidArgument (with the
// path, and the line where one applies) for an empty or over-large file, an
// unterminated quoted field, a missing SMILES or task column, duplicate column
// names, no task columns, or invalid fingerprint options. Blocks.
core::Result<Dataset> LoadCsvDataset(const std::string& path, const CsvOptions& options,
                                     const FingerprintOptions& fp, LoadReport* report);

// Writes `dataset` as CSV to `path`: header "smiles,<tasks...>" plus ",split"
// when dataset.split is filled; labels as 0, 1 or empty. Writes a temporary
// file beside `path` and renames it, so readers never see half a file.
// Errors: kInvalidArgument if the dataset's columns disagree in length or a
// label is not 0, 1 or kMissing; kNotFound, kPermissionDenied or kUnavailable
// if the file cannot be written. Blocks.
core::Status WriteCsvDataset(const std::string& path, const Dataset& dataset);

}  // namespace fedrx::ml
