// Test harness for real processes: free loopback ports, temporary
// directories, and child processes whose output goes to a log file. Every wait
// is bounded. Not thread-safe: use each object from one thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "services/core/status.h"

namespace fedrx::testing {

// Picks a free TCP port on 127.0.0.1 (bind port 0, read it, close). Another
// process may take it before it is used; callers that can retry should.
// Returns 0 if no port could be had.
int FreeTcpPort();

// A temporary directory (under $TMPDIR or /tmp) removed, recursively, on
// destruction. path() is empty if it could not be created.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

class ChildProcess {
 public:
  // Starts `path` (searched on PATH when it has no '/') with `args` as
  // argv[1..] and `extra_env` added to (or replacing in) this process's
  // environment. stdin is /dev/null; stdout and stderr go to a log file in a
  // temporary directory. The child is killed if the spawning thread dies.
  // Fails with kNotFound if `path` cannot be executed.
  static core::Result<std::unique_ptr<ChildProcess>> Spawn(
      const std::string& path, const std::vector<std::string>& args,
      const std::map<std::string, std::string>& extra_env = {});

  // SIGKILL and reap if still running.
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  int pid() const { return pid_; }
  core::Status Signal(int sig);
  // Waits for exit up to `timeout`; returns the exit code, or 128+signal if a
  // signal ended it. kDeadlineExceeded if it is still running.
  core::Result<int> Wait(std::chrono::milliseconds timeout);
  bool Running();
  // What it printed so far (stdout and stderr interleaved).
  std::string Log() const;
  const std::string& log_path() const { return log_path_; }

 private:
  ChildProcess() = default;
  // Reaps without blocking; true once the exit status is known.
  bool Reap();

  pid_t pid_ = -1;
  std::optional<int> exit_code_;
  std::unique_ptr<TempDir> dir_;
  std::string log_path_;
};

}  // namespace fedrx::testing
