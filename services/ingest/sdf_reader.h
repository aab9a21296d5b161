// Splits an MDL SD file into records: each record's molfile block (up to and
// including "M  END") and its `> <NAME>` data items. Structures are not
// parsed here (chem does that). Pure functions; thread-safe.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fedrx::ingest {

struct SdfRecord {
  std::size_t record = 0;  // 1-based record number in the file
  std::size_t line = 0;    // 1-based line where the record starts
  // The molfile block, "M  END" included; empty when the record has none
  // (no "M  END" before its first data item or its end).
  std::string molblock;
  // Data items in file order: name (between < and >) and value (its lines
  // joined with '\n', trailing blank lines dropped).
  std::vector<std::pair<std::string, std::string>> items;
};

// Splits `text` on "$$$$" lines (LF or CRLF). A trailing record without
// "$$$$" counts when it holds anything but blank lines. Never fails: a record
// that is not a molfile ends up with an empty molblock.
std::vector<SdfRecord> SplitSdf(std::string_view text);

// True when `head` (the first bytes of a file) looks like an SD file: a
// "V2000"/"V3000" counts line, an "M  END" or a "$$$$" line.
bool LooksLikeSdf(std::string_view head);

}  // namespace fedrx::ingest
