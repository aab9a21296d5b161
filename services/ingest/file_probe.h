// Internal to the ingest readers: looks at a file's size and first bytes
// before a reader commits to parsing it. Reentrant.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "services/core/status.h"

namespace fedrx::ingest::internal {

struct FileProbe {
  std::uint64_t size = 0;
  std::string head;  // the first min(size, head_bytes) bytes
};

// kNotFound when `path` is missing, not a regular file or unreadable;
// kInvalidArgument when it is empty. Reads at most `head_bytes`.
core::Result<FileProbe> ProbeFile(const std::string& path, std::size_t head_bytes);

// "<path> record 3 column AGE"; record is 1-based, omitted when 0, as is an
// empty column name.
std::string Where(const std::string& path, std::uint64_t record = 0,
                  const std::string& column = {});

}  // namespace fedrx::ingest::internal
