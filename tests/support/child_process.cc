#include "tests/support/child_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

extern char** environ;

namespace fedrx::testing {
namespace {

std::string ErrnoText(int err) { return std::strerror(err); }

// The file to execute: `path` itself when it has a '/', else the first
// executable match on PATH.
std::optional<std::string> Resolve(const std::string& path) {
  if (path.find('/') != std::string::npos) {
    if (access(path.c_str(), X_OK) == 0) return path;
    return std::nullopt;
  }
  const char* env_path = std::getenv("PATH");
  std::stringstream dirs(env_path != nullptr ? env_path : "/usr/local/bin:/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (dir.empty()) dir = ".";
    std::string candidate = dir + "/" + path;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return std::nullopt;
}

std::vector<std::string> MergedEnvironment(const std::map<std::string, std::string>& extra) {
  std::map<std::string, std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string entry(*e);
    const std::size_t eq = entry.find('=');
    if (eq == std::string::npos) continue;
    env[entry.substr(0, eq)] = entry.substr(eq + 1);
  }
  for (const auto& [name, value] : extra) env[name] = value;
  std::vector<std::string> merged;
  merged.reserve(env.size());
  for (const auto& [name, value] : env) merged.push_back(name + "=" + value);
  return merged;
}

std::vector<char*> Pointers(std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  pointers.reserve(strings.size() + 1);
  for (std::string& s : strings) pointers.push_back(s.data());
  pointers.push_back(nullptr);
  return pointers;
}

}  // namespace

int FreeTcpPort() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  int port = 0;
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

TempDir::TempDir() {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern =
      std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/fedrx-test-XXXXXX";
  if (mkdtemp(pattern.data()) != nullptr) path_ = pattern;
}

TempDir::~TempDir() {
  if (path_.empty()) return;
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

core::Result<std::unique_ptr<ChildProcess>> ChildProcess::Spawn(
    const std::string& path, const std::vector<std::string>& args,
    const std::map<std::string, std::string>& extra_env) {
  std::optional<std::string> file = Resolve(path);
  if (!file) return core::NotFound("no executable file found", path);

  std::unique_ptr<ChildProcess> child(new ChildProcess());
  child->dir_ = std::make_unique<TempDir>();
  if (child->dir_->path().empty()) {
    return core::Internal("cannot create a temporary directory: " + ErrnoText(errno), path);
  }
  child->log_path_ =
      child->dir_->path() + "/" + std::filesystem::path(*file).filename().string() + ".log";

  // Everything the child needs is prepared before fork: between fork and exec
  // only async-signal-safe calls are allowed.
  std::vector<std::string> argv_strings;
  argv_strings.reserve(args.size() + 1);
  argv_strings.push_back(path);
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<std::string> env_strings = MergedEnvironment(extra_env);
  std::vector<char*> argv = Pointers(argv_strings);
  std::vector<char*> envp = Pointers(env_strings);

  const int log_fd = open(child->log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (log_fd < 0) return core::Internal("cannot open log: " + ErrnoText(errno), child->log_path_);
  const int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  int exec_pipe[2];
  if (null_fd < 0 || pipe2(exec_pipe, O_CLOEXEC) != 0) {
    const int err = errno;
    close(log_fd);
    if (null_fd >= 0) close(null_fd);
    return core::Internal("cannot prepare the child's descriptors: " + ErrnoText(err), path);
  }
  const pid_t parent = getpid();

  const pid_t pid = fork();
  if (pid == 0) {
    // Die with the parent (its spawning thread) so a crashed test leaves no
    // servers behind; the check covers a parent that died before prctl.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int sig : {SIGPIPE, SIGINT, SIGTERM, SIGHUP}) sigaction(sig, &dfl, nullptr);
    if (dup2(null_fd, STDIN_FILENO) < 0 || dup2(log_fd, STDOUT_FILENO) < 0 ||
        dup2(log_fd, STDERR_FILENO) < 0) {
      const int err = errno;
      (void)!write(exec_pipe[1], &err, sizeof(err));
      _exit(127);
    }
    execve(file->c_str(), argv.data(), envp.data());
    const int err = errno;
    (void)!write(exec_pipe[1], &err, sizeof(err));
    _exit(127);
  }
  const int fork_errno = errno;
  close(log_fd);
  close(null_fd);
  close(exec_pipe[1]);
  if (pid < 0) {
    close(exec_pipe[0]);
    return core::Internal("fork failed: " + ErrnoText(fork_errno), path);
  }
  child->pid_ = pid;

  // The pipe closes on a successful exec (CLOEXEC); otherwise it carries errno.
  int exec_errno = 0;
  ssize_t n;
  do {
    n = read(exec_pipe[0], &exec_errno, sizeof(exec_errno));
  } while (n < 0 && errno == EINTR);
  close(exec_pipe[0]);
  if (n == static_cast<ssize_t>(sizeof(exec_errno))) {
    child->Wait(std::chrono::seconds(5)).status().IgnoreError();
    return core::NotFound("cannot execute: " + ErrnoText(exec_errno), *file);
  }
  return child;
}

ChildProcess::~ChildProcess() {
  if (pid_ <= 0 || Reap()) return;
  kill(pid_, SIGKILL);
  Wait(std::chrono::seconds(10)).status().IgnoreError();
}

bool ChildProcess::Reap() {
  if (exit_code_) return true;
  if (pid_ <= 0) return false;
  int status = 0;
  pid_t r;
  do {
    r = waitpid(pid_, &status, WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r == 0) return false;
  if (r < 0) {
    exit_code_ = -1;  // reaped elsewhere; the code is lost
  } else if (WIFEXITED(status)) {
    exit_code_ = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    exit_code_ = 128 + WTERMSIG(status);
  } else {
    return false;  // stopped or continued: still there
  }
  return true;
}

core::Status ChildProcess::Signal(int sig) {
  if (Reap()) {
    return core::FailedPrecondition("process has exited with " + std::to_string(*exit_code_),
                                    "pid " + std::to_string(pid_));
  }
  if (kill(pid_, sig) != 0) {
    return core::Internal("kill(" + std::to_string(sig) + ") failed: " + ErrnoText(errno),
                          "pid " + std::to_string(pid_));
  }
  return core::Status::Ok();
}

core::Result<int> ChildProcess::Wait(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!Reap()) {
    if (std::chrono::steady_clock::now() >= deadline) {
      return core::DeadlineExceeded(
          "still running after " + std::to_string(timeout.count()) + " ms",
          "pid " + std::to_string(pid_));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return *exit_code_;
}

bool ChildProcess::Running() { return !Reap(); }

std::string ChildProcess::Log() const {
  std::ifstream in(log_path_, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

}  // namespace fedrx::testing
