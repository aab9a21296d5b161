// The descriptor of a prepared compound dataset version: counts, tasks, label
// balance, and hashes that let a consortium check sites prepared alike. It
// never holds rows or structures; it is what a site may publish. Value type.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "services/core/status.h"

namespace fedrx::ingest {

struct LabelBalance {
  std::size_t positives = 0;
  std::size_t negatives = 0;
  std::size_t missing = 0;
};

struct CompoundDescriptor {
  std::string kind = "fedrx-compounds/1";
  std::size_t records_read = 0;
  std::size_t compounds = 0;  // rows of the prepared table
  std::size_t unparseable = 0;
  std::size_t duplicates_merged = 0;
  std::size_t label_conflicts = 0;
  std::map<std::string, std::size_t> findings;  // count per finding code
  std::vector<std::string> tasks;
  std::vector<LabelBalance> balance;  // one per task
  bool has_split = false;
  std::uint32_t fingerprint_radius = 2;
  std::uint32_t fingerprint_bits = 2048;
  std::uint32_t folds = 5;
  std::string schema_hash;       // of the prepared table's columns
  std::string preparation_hash;  // IngestPreparationHash
  std::string reference_hash;    // ReferenceSetHash (hex SHA-256)
  std::string source_sha256;
  std::uint64_t source_bytes = 0;
  std::string source_format;  // "csv", "tsv", "sdf"
};

// Pretty-printed JSON with a trailing newline.
std::string DescriptorToJson(const CompoundDescriptor& d);
// kInvalidArgument (with `where`) for malformed JSON, a wrong kind or a
// field of the wrong type or out of range.
core::Result<CompoundDescriptor> DescriptorFromJson(const std::string& json,
                                                    const std::string& where);

}  // namespace fedrx::ingest
