// DatasetStore: a site's local, versioned dataset directory. Each ingest
// commits a new version atomically; readers follow the CURRENT pointer.
// Layout under the root:
//   versions/<n>/   one directory per committed version (n = 1, 2, ...)
//   CURRENT         "<n>\n": the version readers use
//   tmp/            versions being written (removed on failure)
//   LOCK            flock()ed while a commit runs (one writer at a time)
// What a version holds is up to the writer (a prepared compound table, or a
// SEND/SDTM study in the common data model). Methods block on file I/O. One
// DatasetStore object per thread; concurrent processes are serialised by LOCK.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "services/core/status.h"

namespace fedrx::ingest {

struct StoreVersion {
  std::uint64_t number = 0;
  std::string dir;  // absolute path of versions/<n>
};

class DatasetStore {
 public:
  // Opens (and with `create`, makes) the store at `root`. kNotFound when it
  // does not exist and `create` is false; kUnavailable when it cannot be made.
  static core::Result<DatasetStore> Open(const std::string& root, bool create);

  const std::string& root() const { return root_; }

  // The version CURRENT names, or nullopt for a store with none yet.
  // kDataLoss when CURRENT is malformed or names a missing version.
  core::Result<std::optional<StoreVersion>> Current() const;

  // Writes a new version: calls `write` with an empty temporary directory,
  // fsyncs every file it wrote and the directory, renames it to
  // versions/<n> (n = one past the highest existing version), then replaces
  // CURRENT atomically (write CURRENT.tmp, fsync, rename, fsync the root).
  // When `write` fails (or anything before the CURRENT swap does), the
  // temporary directory is removed and CURRENT and every earlier version are
  // left as they were; the error is returned. kUnavailable when another
  // commit holds the lock.
  core::Result<StoreVersion> Commit(const std::function<core::Status(const std::string& dir)>& write);

 private:
  explicit DatasetStore(std::string root) : root_(std::move(root)) {}
  std::string root_;
};

// Writes `contents` to `path` and fsyncs it (no rename: for files inside a
// version directory being written). kUnavailable on an I/O error.
core::Status WriteFileSynced(const std::string& path, const std::string& contents);

}  // namespace fedrx::ingest
