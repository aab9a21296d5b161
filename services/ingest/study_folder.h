// Loads every SDTM/SEND domain of a study folder (*.xpt and/or Dataset-JSON
// *.json) into Tables, one per domain. Stateless and reentrant.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "services/core/status.h"
#include "services/ingest/define_xml.h"
#include "services/ingest/table.h"

namespace fedrx::ingest {

struct StudyFolderOptions {
  // When a domain exists in both formats, the one read.
  SourceFormat prefer = SourceFormat::kXport;
  // When false, a domain present only in the other format is skipped.
  bool read_other_format = true;
  ReadOptions read;
};

struct StudyFolder {
  std::string path;
  // Domain (upper-case file stem, e.g. "DM", "SUPPLB") -> its table.
  std::map<std::string, Table> domains;
  std::vector<std::string> files_read;     // file names, in the order read
  std::vector<std::string> files_skipped;  // datasets not read (other format)
  std::vector<std::string> files_ignored;  // everything else in the folder
  bool has_define_xml = false;
  std::string define_xml;  // its path when present
  // define.xml parsed; empty when absent or unreadable. A bad define.xml does
  // not fail the folder: its error is kept in define_error for the conformance
  // report to carry.
  std::optional<DefineXml> define;
  std::string define_error;  // Status::ToString() of the failed parse; empty otherwise
};

// Reads the folder at `path` (not recursively). Files are taken in name order;
// extensions match case-insensitively. Blocks on file I/O. Errors:
//   kNotFound         `path` is not a directory, or holds no .xpt/.json dataset
//   kAlreadyExists    two files of one format name the same domain (dm.xpt, DM.XPT)
//   any error of ReadXport / ReadDatasetJson, for the first file that fails;
//   nothing is returned then (a study is read whole or not at all).
core::Result<StudyFolder> ReadStudyFolder(const std::string& path,
                                          const StudyFolderOptions& options = {});

}  // namespace fedrx::ingest
