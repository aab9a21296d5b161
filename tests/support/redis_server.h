// RedisServer: a throwaway redis-server on 127.0.0.1 for tests that need a
// real Redis, with the means to take it away and bring it back. Not
// thread-safe: use from one thread.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "services/core/status.h"
#include "tests/support/child_process.h"

namespace fedrx::testing {

class RedisServer {
 public:
  // redis-server (found on PATH or /usr/bin/redis-server) on 127.0.0.1:<free
  // port>, no persistence (--save "" --appendonly no), in a temp dir; returns
  // once PING answers (bounded wait, clear error otherwise). `extra_args` are
  // appended to the command line (e.g. {"--requirepass", "secret"}).
  static core::Result<std::unique_ptr<RedisServer>> Start(
      const std::vector<std::string>& extra_args = {});

  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  int port() const { return port_; }
  std::string host() const { return "127.0.0.1"; }

  // Shuts it down (simulates Redis going away); every client connection
  // drops. Without persistence, the data goes too.
  core::Status Stop();
  // SIGKILL (simulates a crash): nothing is flushed on the way out, so only
  // what Redis had already persisted survives a Restart().
  core::Status Kill();
  // Starts again on the same port (stops it first if running).
  core::Status Restart();
  // SIGSTOP / SIGCONT: a server that accepts connections but never answers.
  core::Status Pause();
  core::Status Resume();
  bool running() const { return process_ != nullptr; }

  // Runs one command on a fresh connection (AUTH first when started with
  // --requirepass) and returns the reply: a simple string, an integer as
  // text, or a bulk string ("" for nil). An error reply is kFailedPrecondition
  // with its text; arrays are kUnimplemented. For test setup, e.g. FLUSHDB.
  core::Result<std::string> Command(const std::vector<std::string>& args,
                                    std::chrono::milliseconds timeout = std::chrono::seconds(5));

  // The server's output so far.
  std::string Log() const;

 private:
  RedisServer() = default;
  // Spawns redis-server on port_ and waits for PING.
  core::Status Launch();

  std::string binary_;
  int port_ = 0;
  std::string password_;
  std::vector<std::string> extra_args_;
  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<ChildProcess> process_;
  std::string last_log_;  // of the previous process, once stopped
};

}  // namespace fedrx::testing
