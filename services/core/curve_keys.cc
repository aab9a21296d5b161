#include "services/core/curve_keys.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <optional>
#include <utility>

namespace fedrx::core {
namespace {

// A key file is two short lines; anything much larger is not one.
constexpr off_t kMaxKeyFileBytes = 4096;

Status PermissionDenied(std::string message, std::string where) {
  return Status(StatusCode::kPermissionDenied, std::move(message), std::move(where));
}

std::string Errno(int e) { return std::strerror(e); }

std::string OctalMode(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

std::string_view Trim(std::string_view s) {
  const auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r'; };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return s;
}

// Closes a file descriptor on every return path.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  // Closes now, so that a failed close (lost write) can be reported.
  int Close() {
    const int rc = ::close(fd_);
    fd_ = -1;
    return rc;
  }

 private:
  int fd_;
};

Status WriteAll(int fd, std::string_view data, const std::string& where) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Unavailable("write failed: " + Errno(errno), where);
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return Status::Ok();
}

// Opens and reads a key file whole, refusing anything but a small regular
// file; with `must_be_private`, also one group or others may access (checked
// on the open file before a byte is read: what is checked is what is read).
Result<std::string> ReadKeyFile(const std::string& path, bool must_be_private) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (fd.get() < 0) {
    const int e = errno;
    if (e == ENOENT) return NotFound("no key file", path);
    if (e == ELOOP) return InvalidArgument("the key file is a symbolic link", path);
    return Unavailable("cannot open the key file: " + Errno(e), path);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0)
    return Unavailable("cannot stat the key file: " + Errno(errno), path);
  if (!S_ISREG(st.st_mode)) return InvalidArgument("the key file is not a regular file", path);
  if (must_be_private && (st.st_mode & 077) != 0) {
    return PermissionDenied(
        "the key file holds a secret key but group or others may access it "
        "(mode " +
            OctalMode(st.st_mode) + "); run chmod 600 on it",
        path);
  }
  if (st.st_size > kMaxKeyFileBytes) {
    return InvalidArgument("the key file is " + std::to_string(st.st_size) +
                               " bytes, more than a key file can be (" +
                               std::to_string(kMaxKeyFileBytes) + ")",
                           path);
  }
  std::string text;
  char buf[1024];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Unavailable("cannot read the key file: " + Errno(errno), path);
    }
    if (n == 0) break;
    text.append(buf, static_cast<std::size_t>(n));
    if (text.size() > static_cast<std::size_t>(kMaxKeyFileBytes)) {
      return InvalidArgument("the key file grew beyond " + std::to_string(kMaxKeyFileBytes) +
                                 " bytes while being read",
                             path);
    }
  }
  return text;
}

// The keys a key file names; each checked to be Z85 of the right length.
struct KeyEntries {
  std::optional<std::string> public_key;
  std::optional<std::string> secret_key;
};

Result<KeyEntries> ParseKeyFile(std::string_view text, const std::string& path) {
  KeyEntries keys;
  std::size_t line_no = 0;
  std::string_view rest = text;
  while (!rest.empty()) {
    ++line_no;
    const std::size_t end = rest.find('\n');
    std::string_view line = Trim(rest.substr(0, end));
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
    if (line.empty() || line.front() == '#') continue;
    const std::string where = path + ":" + std::to_string(line_no);
    const std::size_t eq = line.find('=');
    if (eq == std::string_view::npos) {
      return InvalidArgument("expected `public = <key>` or `secret = <key>`", where);
    }
    const std::string_view name = Trim(line.substr(0, eq));
    const std::string_view value = Trim(line.substr(eq + 1));
    // "public-key"/"secret-key" are what services/security's enrolment writes.
    const bool is_public = name == "public" || name == "public-key";
    const bool is_secret = name == "secret" || name == "secret-key";
    std::optional<std::string>* slot = is_public   ? &keys.public_key
                                       : is_secret ? &keys.secret_key
                                                   : nullptr;
    if (slot == nullptr) {
      // Not quoted: a malformed line may be part of a secret key.
      return InvalidArgument("unknown entry (expected `public = ...` or `secret = ...`)", where);
    }
    if (slot->has_value()) {
      return InvalidArgument(
          std::string(is_public ? "the public" : "the secret") + " key is given twice", where);
    }
    // The message never quotes the value: it may be a secret.
    FEDRX_RETURN_IF_ERROR(
        CheckCurveKey(value, where + (is_public ? " (public key)" : " (secret key)")));
    *slot = std::string(value);
  }
  return keys;
}

// Writes `text` to `path` with `mode`, through a temporary file in the same
// directory and a rename, so a reader never sees half a file and an existing
// file is replaced whole or not at all.
Status WriteFileReplacing(const std::string& path, const std::string& text, mode_t mode) {
  std::string temp = path + ".tmp.XXXXXX";
  // mkstemp creates the file with mode 0600, so a secret is never readable
  // by others, not even for a moment.
  Fd fd(::mkstemp(temp.data()));
  if (fd.get() < 0) return Unavailable("cannot create a temporary key file: " + Errno(errno), path);
  const auto fail = [&](Status s) {
    ::unlink(temp.c_str());
    return s;
  };
  if (::fchmod(fd.get(), mode) != 0)
    return fail(Unavailable("chmod " + OctalMode(mode) + " failed: " + Errno(errno), temp));
  Status written = WriteAll(fd.get(), text, temp);
  if (!written.ok()) return fail(std::move(written));
  if (::fsync(fd.get()) != 0) return fail(Unavailable("fsync failed: " + Errno(errno), temp));
  if (fd.Close() != 0) return fail(Unavailable("close failed: " + Errno(errno), temp));
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    return fail(
        Unavailable("cannot rename the temporary key file into place: " + Errno(errno), path));
  }
  return Status::Ok();
}

}  // namespace

Status CheckCurveKey(std::string_view key, std::string_view what) {
  const std::string name(what);
  if (key.size() != kCurveKeyZ85Length) {
    return InvalidArgument("a CURVE key is " + std::to_string(kCurveKeyZ85Length) +
                               " Z85 characters, this one has " + std::to_string(key.size()),
                           name);
  }
  // zmq_z85_decode needs a terminated string and rejects characters outside
  // the Z85 alphabet and out-of-range groups.
  const std::string text(key);
  std::uint8_t bytes[32];
  if (zmq_z85_decode(bytes, text.c_str()) == nullptr) {
    return InvalidArgument("the CURVE key is not valid Z85", name);
  }
  return Status::Ok();
}

Status CheckCurveKeyPair(const CurveKeyPair& pair, std::string_view where) {
  const std::string w(where);
  FEDRX_RETURN_IF_ERROR(CheckCurveKey(pair.public_key, w + " public key"));
  FEDRX_RETURN_IF_ERROR(CheckCurveKey(pair.secret_key, w + " secret key"));
  char derived[kCurveKeyZ85Length + 1];
  if (zmq_curve_public(derived, pair.secret_key.c_str()) != 0) {
    return InvalidArgument("cannot derive the public key from the secret key: " +
                               std::string(zmq_strerror(zmq_errno())),
                           w);
  }
  if (pair.public_key != derived) {
    return InvalidArgument("the public key does not belong to the secret key", w);
  }
  return Status::Ok();
}

Result<CurveKeyPair> GenerateCurveKeyPair() {
  char public_key[kCurveKeyZ85Length + 1];
  char secret_key[kCurveKeyZ85Length + 1];
  if (zmq_curve_keypair(public_key, secret_key) != 0) {
    const int e = zmq_errno();
    if (e == ENOTSUP) {
      return Status(StatusCode::kUnimplemented, "libzmq was built without CURVE support",
                    "GenerateCurveKeyPair");
    }
    return Internal(std::string("zmq_curve_keypair failed: ") + zmq_strerror(e),
                    "GenerateCurveKeyPair");
  }
  CurveKeyPair pair{public_key, secret_key};
  // Wipe the stack copy of the secret; the caller owns the only one now.
  std::memset(secret_key, 0, sizeof secret_key);
  return pair;
}

Result<CurveKeyPair> LoadCurveKeyPair(const std::string& path) {
  FEDRX_ASSIGN_OR_RETURN(std::string text, ReadKeyFile(path, /*must_be_private=*/true));
  FEDRX_ASSIGN_OR_RETURN(KeyEntries keys, ParseKeyFile(text, path));
  if (!keys.public_key) return InvalidArgument("no `public = ...` line", path);
  if (!keys.secret_key) return InvalidArgument("no `secret = ...` line", path);
  CurveKeyPair pair{std::move(*keys.public_key), std::move(*keys.secret_key)};
  FEDRX_RETURN_IF_ERROR(CheckCurveKeyPair(pair, path));
  return pair;
}

Result<std::string> LoadCurvePublicKey(const std::string& path) {
  FEDRX_ASSIGN_OR_RETURN(std::string text, ReadKeyFile(path, /*must_be_private=*/false));
  FEDRX_ASSIGN_OR_RETURN(KeyEntries keys, ParseKeyFile(text, path));
  // A key-pair file holds a secret: it gets no laxer treatment for being
  // read for its public half.
  if (keys.secret_key) {
    FEDRX_ASSIGN_OR_RETURN(CurveKeyPair pair, LoadCurveKeyPair(path));
    return std::move(pair.public_key);
  }
  if (!keys.public_key) return InvalidArgument("no `public = ...` line", path);
  return std::move(*keys.public_key);
}

Status WriteCurveKeyPair(const std::string& path, const CurveKeyPair& pair) {
  FEDRX_RETURN_IF_ERROR(CheckCurveKeyPair(pair, path));
  return WriteFileReplacing(
      path, "public = " + pair.public_key + "\nsecret = " + pair.secret_key + "\n", 0600);
}

Status WriteCurvePublicKey(const std::string& path, std::string_view public_key) {
  FEDRX_RETURN_IF_ERROR(CheckCurveKey(public_key, path + " public key"));
  return WriteFileReplacing(path, "public = " + std::string(public_key) + "\n", 0644);
}

}  // namespace fedrx::core
