#include "services/ingest/dataset_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

namespace fedrx::ingest {
namespace {

namespace fs = std::filesystem;

constexpr char kVersions[] = "versions";
constexpr char kCurrent[] = "CURRENT";
constexpr char kTmp[] = "tmp";
constexpr char kLock[] = "LOCK";

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

core::Status FsyncPath(const std::string& path, bool directory) {
  const int fd = ::open(path.c_str(), (directory ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) return core::Unavailable(Errno("cannot open for fsync"), path);
  const int rc = ::fsync(fd);
  const int saved = errno;
  ::close(fd);
  if (rc != 0) {
    errno = saved;
    return core::Unavailable(Errno("fsync failed"), path);
  }
  return core::Status::Ok();
}

// fsyncs every regular file and directory under `dir`, then `dir` itself.
core::Status FsyncTree(const std::string& dir) {
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const bool is_dir = it->is_directory(ec);
    if (is_dir || it->is_regular_file(ec)) {
      FEDRX_RETURN_IF_ERROR(FsyncPath(it->path().string(), is_dir));
    }
  }
  if (ec) return core::Unavailable("cannot walk the new version: " + ec.message(), dir);
  return FsyncPath(dir, /*directory=*/true);
}

std::optional<std::uint64_t> ParseNumber(std::string_view s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.remove_suffix(1);
  std::uint64_t n = 0;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc() || p != s.data() + s.size() || n == 0) return std::nullopt;
  return n;
}

// Holds an flock on LOCK for its lifetime.
class LockFile {
 public:
  explicit LockFile(const std::string& path) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ >= 0 && ::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      ::close(fd_);
      fd_ = -2;
    }
  }
  ~LockFile() {
    if (fd_ >= 0) {
      ::flock(fd_, LOCK_UN);
      ::close(fd_);
    }
  }
  LockFile(const LockFile&) = delete;
  LockFile& operator=(const LockFile&) = delete;
  bool held() const { return fd_ >= 0; }
  bool busy() const { return fd_ == -2; }

 private:
  int fd_ = -1;
};

}  // namespace

core::Status WriteFileSynced(const std::string& path, const std::string& contents) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return core::Unavailable(Errno("cannot create file"), path);
  std::size_t done = 0;
  while (done < contents.size()) {
    const ssize_t n = ::write(fd, contents.data() + done, contents.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int saved = errno;
      ::close(fd);
      errno = saved;
      return core::Unavailable(Errno("write failed"), path);
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) {
    const int saved = errno;
    ::close(fd);
    errno = saved;
    return core::Unavailable(Errno("fsync failed"), path);
  }
  if (::close(fd) != 0) return core::Unavailable(Errno("close failed"), path);
  return core::Status::Ok();
}

core::Result<DatasetStore> DatasetStore::Open(const std::string& root, bool create) {
  std::error_code ec;
  if (root.empty()) return core::InvalidArgument("empty store path");
  fs::path abs = fs::absolute(root, ec);
  if (ec) return core::Unavailable("cannot resolve path: " + ec.message(), root);
  if (!fs::exists(abs, ec)) {
    if (!create) return core::NotFound("no dataset store here", abs.string());
    fs::create_directories(abs, ec);
    if (ec) return core::Unavailable("cannot create the store: " + ec.message(), abs.string());
  }
  if (!fs::is_directory(abs, ec)) return core::InvalidArgument("not a directory", abs.string());
  if (create) {
    for (const char* sub : {kVersions, kTmp}) {
      fs::create_directories(abs / sub, ec);
      if (ec) return core::Unavailable("cannot create " + std::string(sub) + ": " + ec.message(), abs.string());
    }
  }
  return DatasetStore(abs.lexically_normal().string());
}

core::Result<std::optional<StoreVersion>> DatasetStore::Current() const {
  const fs::path current = fs::path(root_) / kCurrent;
  std::error_code ec;
  if (!fs::exists(current, ec)) return std::optional<StoreVersion>();
  std::ifstream in(current, std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!in.good() && !in.eof()) return core::Unavailable("cannot read", current.string());
  const auto n = text.size() <= 32 ? ParseNumber(text) : std::nullopt;
  if (!n) {
    return core::Status(core::StatusCode::kDataLoss, "CURRENT does not hold a version number",
                        current.string());
  }
  StoreVersion v{*n, (fs::path(root_) / kVersions / std::to_string(*n)).string()};
  if (!fs::is_directory(v.dir, ec)) {
    return core::Status(core::StatusCode::kDataLoss,
                        "CURRENT names version " + std::to_string(*n) + ", which is missing",
                        v.dir);
  }
  return std::optional<StoreVersion>(v);
}

core::Result<StoreVersion> DatasetStore::Commit(
    const std::function<core::Status(const std::string& dir)>& write) {
  std::error_code ec;
  for (const char* sub : {kVersions, kTmp}) {
    fs::create_directories(fs::path(root_) / sub, ec);
    if (ec) return core::Unavailable("cannot create " + std::string(sub) + ": " + ec.message(), root_);
  }
  LockFile lock((fs::path(root_) / kLock).string());
  if (lock.busy()) return core::Unavailable("another ingest is writing this store", root_);
  if (!lock.held()) return core::Unavailable(Errno("cannot lock the store"), root_);

  // One past the highest version present, committed or not (a crash between
  // the version rename and the CURRENT swap leaves an orphan; never reuse it).
  std::uint64_t next = 1;
  for (fs::directory_iterator it(fs::path(root_) / kVersions, ec), end; !ec && it != end;
       it.increment(ec)) {
    if (auto n = ParseNumber(it->path().filename().string())) next = std::max(next, *n + 1);
  }
  if (ec) return core::Unavailable("cannot list versions: " + ec.message(), root_);

  const fs::path tmp = fs::path(root_) / kTmp / (std::to_string(next) + "." + std::to_string(::getpid()));
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  if (ec) return core::Unavailable("cannot create a temporary directory: " + ec.message(), tmp.string());
  auto abandon = [&](core::Status s) {
    std::error_code ignored;
    fs::remove_all(tmp, ignored);
    return s;
  };
  if (core::Status s = write(tmp.string()); !s.ok()) return abandon(std::move(s));
  if (core::Status s = FsyncTree(tmp.string()); !s.ok()) return abandon(std::move(s));

  const fs::path final_dir = fs::path(root_) / kVersions / std::to_string(next);
  fs::rename(tmp, final_dir, ec);
  if (ec) return abandon(core::Unavailable("cannot move the new version in place: " + ec.message(), final_dir.string()));
  FEDRX_RETURN_IF_ERROR(FsyncPath((fs::path(root_) / kVersions).string(), true));

  const fs::path current = fs::path(root_) / kCurrent;
  const fs::path current_tmp = fs::path(root_) / "CURRENT.tmp";
  FEDRX_RETURN_IF_ERROR(WriteFileSynced(current_tmp.string(), std::to_string(next) + "\n"));
  fs::rename(current_tmp, current, ec);
  if (ec) return core::Unavailable("cannot replace CURRENT: " + ec.message(), current.string());
  FEDRX_RETURN_IF_ERROR(FsyncPath(root_, true));
  return StoreVersion{next, final_dir.string()};
}

}  // namespace fedrx::ingest
