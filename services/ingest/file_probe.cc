#include "services/ingest/file_probe.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <system_error>

namespace fedrx::ingest::internal {

core::Result<FileProbe> ProbeFile(const std::string& path, std::size_t head_bytes) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(status)) {
    return core::NotFound("no such file", Where(path));
  }
  if (!std::filesystem::is_regular_file(status)) {
    return core::NotFound("not a regular file", Where(path));
  }
  FileProbe probe;
  probe.size = std::filesystem::file_size(path, ec);
  if (ec) return core::NotFound("cannot stat file: " + ec.message(), Where(path));
  if (probe.size == 0) return core::InvalidArgument("empty file (0 bytes)", Where(path));

  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"),
                                                       &std::fclose);
  if (!file) {
    return core::NotFound(std::string("cannot open file: ") + std::strerror(errno), Where(path));
  }
  probe.head.resize(static_cast<std::size_t>(
      std::min<std::uint64_t>(probe.size, static_cast<std::uint64_t>(head_bytes))));
  const std::size_t got = std::fread(probe.head.data(), 1, probe.head.size(), file.get());
  probe.head.resize(got);
  return probe;
}

std::string Where(const std::string& path, std::uint64_t record, const std::string& column) {
  std::string where = path;
  if (record > 0) where += " record " + std::to_string(record);
  if (!column.empty()) where += " column " + column;
  return where;
}

}  // namespace fedrx::ingest::internal
