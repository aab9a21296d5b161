#include "services/core/static_authenticator.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

#include "services/core/curve_keys.h"
#include "services/core/keys.h"

namespace fedrx::core {
namespace {

// A list of public keys; anything much larger is not one.
constexpr off_t kMaxClientsFileBytes = 1 << 20;

bool Space(char c) { return c == ' ' || c == '\t' || c == '\r'; }

std::vector<std::string_view> Fields(std::string_view line) {
  std::vector<std::string_view> fields;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && Space(line[i])) ++i;
    const std::size_t start = i;
    while (i < line.size() && !Space(line[i])) ++i;
    if (i > start) fields.push_back(line.substr(start, i - start));
  }
  return fields;
}

}  // namespace

Result<std::unique_ptr<StaticAuthenticator>> StaticAuthenticator::Parse(std::string_view text,
                                                                        std::string_view source) {
  const std::string file(source);
  std::map<std::string, Identity, std::less<>> clients;
  std::map<std::string, std::size_t, std::less<>> line_of_key;
  std::size_t line_no = 0;
  std::string_view rest = text;
  while (!rest.empty()) {
    ++line_no;
    const std::size_t end = rest.find('\n');
    const std::string_view line = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
    const std::vector<std::string_view> fields = Fields(line);
    if (fields.empty() || fields[0].front() == '#') continue;
    const std::string where = file + ":" + std::to_string(line_no);
    if (fields.size() != 3) {
      return InvalidArgument("expected `<id> <role> <public_key_z85>`, found " +
                                 std::to_string(fields.size()) + " field(s)",
                             where);
    }
    FEDRX_RETURN_IF_ERROR(ValidateId(fields[0], where + " (client id)"));
    FEDRX_RETURN_IF_ERROR(ValidateId(fields[1], where + " (role)"));
    FEDRX_RETURN_IF_ERROR(CheckCurveKey(fields[2], where + " (public key)"));
    const std::string key(fields[2]);
    if (auto seen = line_of_key.find(key); seen != line_of_key.end()) {
      return InvalidArgument(
          "this public key is already listed on line " + std::to_string(seen->second), where);
    }
    line_of_key.emplace(key, line_no);
    clients.emplace(key, Identity{std::string(fields[0]), std::string(fields[1])});
  }
  if (clients.empty()) {
    return InvalidArgument("no authorised client (one a line: `<id> <role> <public_key_z85>`)",
                           file);
  }
  return std::unique_ptr<StaticAuthenticator>(new StaticAuthenticator(std::move(clients)));
}

Result<std::unique_ptr<StaticAuthenticator>> StaticAuthenticator::Load(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int e = errno;
    if (e == ENOENT) return NotFound("no authorised clients file", path);
    return Unavailable(std::string("cannot open the authorised clients file: ") + std::strerror(e),
                       path);
  }
  struct stat st {};
  Status checked;
  if (::fstat(fd, &st) != 0) {
    checked = Unavailable(std::string("cannot stat the file: ") + std::strerror(errno), path);
  } else if (!S_ISREG(st.st_mode)) {
    checked = InvalidArgument("the authorised clients file is not a regular file", path);
  } else if ((st.st_mode & S_IWOTH) != 0) {
    checked = Status(StatusCode::kPermissionDenied,
                     "others may write the authorised clients file, and so admit any key; "
                     "run chmod o-w on it",
                     path);
  } else if (st.st_size > kMaxClientsFileBytes) {
    checked = InvalidArgument("the file is " + std::to_string(st.st_size) + " bytes, more than " +
                                  std::to_string(kMaxClientsFileBytes) + " allowed",
                              path);
  }
  std::string text;
  if (checked.ok()) {
    char buf[4096];
    for (;;) {
      const ssize_t n = ::read(fd, buf, sizeof buf);
      if (n < 0) {
        if (errno == EINTR) continue;
        checked = Unavailable(std::string("cannot read the file: ") + std::strerror(errno), path);
        break;
      }
      if (n == 0) break;
      text.append(buf, static_cast<std::size_t>(n));
      if (text.size() > static_cast<std::size_t>(kMaxClientsFileBytes)) {
        checked = InvalidArgument(
            "the file grew beyond " + std::to_string(kMaxClientsFileBytes) + " bytes while read",
            path);
        break;
      }
    }
  }
  ::close(fd);
  if (!checked.ok()) return checked;
  return Parse(text, path);
}

Result<Identity> StaticAuthenticator::Authenticate(std::string_view public_key_z85) {
  auto it = clients_.find(public_key_z85);
  if (it == clients_.end()) {
    return Status(StatusCode::kPermissionDenied, "key is not an authorised client", "curve key");
  }
  return it->second;
}

}  // namespace fedrx::core
