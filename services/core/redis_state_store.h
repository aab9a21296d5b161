// RedisStateStore: the StateStore over one synchronous hiredis connection.
// Not thread-safe: one instance per thread. A lost connection yields
// kUnavailable and the next call reconnects; values never appear in errors.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "services/core/metrics.h"
#include "services/core/state_store.h"
#include "services/core/status.h"

struct redisContext;
struct redisReply;

namespace fedrx::core {

struct RedisOptions {
  std::string host = "127.0.0.1";
  int port = 6379;
  // When set, connects to this Unix socket instead of host:port.
  std::string unix_socket;
  std::chrono::milliseconds connect_timeout{2000};
  // Bounds each socket read and write of a command.
  std::chrono::milliseconds command_timeout{2000};
  // Sent with AUTH after every (re)connect when non-empty.
  std::string password;
  // Selected after every (re)connect when not 0.
  int db = 0;
};

// Error mapping (every error's `where` names the key, or host:port for
// connection problems):
//   connection refused/lost, timeout -> kUnavailable, counted as
//     fedrx_<s>_errors_total{component="redis",reason="connection"|"timeout"};
//   a Redis error reply (WRONGTYPE, not an integer, ...) -> kFailedPrecondition
//     with Redis's text (reason="reply"); LOADING/BUSY/MASTERDOWN/TRYAGAIN ->
//     kUnavailable (reason="busy"); OOM -> kResourceExhausted (reason="reply");
//   an unexpected reply shape -> kInternal (reason="protocol").
// Semantics beyond StateStore's comments, shared with FakeStateStore:
//   HashSet with no fields -> kInvalidArgument (Redis has no empty hashes);
//   removing a set's last member removes the key;
//   GetMany reads a key holding a non-string as absent (MGET semantics).
//   StreamAppend with no fields -> kInvalidArgument; stream ops on a key of
//   another type, and other ops on a stream, -> kFailedPrecondition (WRONGTYPE).
//
// Apply is all-or-nothing even though MULTI/EXEC does not roll back runtime
// errors: a batch of only Set/Delete (which cannot fail at run time) goes out
// as one pipelined MULTI..EXEC. Any other batch first WATCHes its keys and
// reads their types (and, where needed, integer values and set membership) in
// one pipelined round trip, replays the batch on that snapshot to reject it
// before anything is written if any entry would fail, then sends MULTI..EXEC in
// a second round trip. EXEC aborts if a watched key changed in between; the
// batch is then retried from the snapshot step (up to 10 times, then
// kUnavailable with reason="conflict"). If the connection drops while EXEC's
// answer is awaited, the error says the outcome (all or nothing) is unknown.
//
// A write to a connection Redis closed would raise SIGPIPE: each call blocks
// it on its own thread and discards it; the process's disposition is untouched.
class RedisStateStore final : public StateStore {
 public:
  // Connects (AUTH, SELECT, PING) and fails fast: kInvalidArgument for bad
  // options, kUnavailable naming host:port when Redis cannot be reached.
  // `metrics` may be null; otherwise it must outlive the store.
  static Result<std::unique_ptr<RedisStateStore>> Connect(RedisOptions options, Metrics* metrics);

  ~RedisStateStore() override;
  RedisStateStore(const RedisStateStore&) = delete;
  RedisStateStore& operator=(const RedisStateStore&) = delete;

  // "host:port" or "unix:<path>".
  const std::string& endpoint() const { return endpoint_; }

  Status Ping() override;
  Result<std::optional<std::string>> Get(const Key& key) override;
  Status Set(const Key& key, std::string_view value) override;
  Result<bool> SetIfAbsent(const Key& key, std::string_view value) override;
  Result<bool> SetIfAbsentWithExpiry(const Key& key, std::string_view value,
                                     std::chrono::milliseconds ttl) override;
  // RenewIfEqual and DeleteIfEqual run as one Lua script each (EVAL), so the
  // compare and the write are atomic on the server.
  Result<bool> RenewIfEqual(const Key& key, std::string_view expected,
                            std::chrono::milliseconds ttl) override;
  Result<bool> DeleteIfEqual(const Key& key, std::string_view expected) override;
  Result<bool> Delete(const Key& key) override;
  Result<std::int64_t> Increment(const Key& key, std::int64_t by) override;
  Status HashSet(const Key& key, const FieldMap& fields) override;
  Result<std::optional<std::string>> HashGet(const Key& key, std::string_view field) override;
  Result<FieldMap> HashGetAll(const Key& key) override;
  Result<bool> SetAdd(const Key& key, std::string_view member) override;
  Result<bool> SetRemove(const Key& key, std::string_view member) override;
  Result<std::vector<std::string>> SetMembers(const Key& key) override;
  Result<std::vector<std::optional<std::string>>> GetMany(const std::vector<Key>& keys) override;
  Result<std::vector<FieldMap>> HashGetAllMany(const std::vector<Key>& keys) override;
  Status Apply(const WriteBatch& batch) override;
  Result<std::string> StreamAppend(const Key& stream, const FieldMap& fields) override;
  Result<std::vector<std::string>> StreamAppendMany(const Key& stream,
                                                    const std::vector<FieldMap>& entries) override;
  Result<std::vector<StreamEntry>> StreamRange(const Key& stream, std::string_view from_id = "-",
                                               std::size_t count = 0) override;
  Result<std::optional<StreamEntry>> StreamLast(const Key& stream) override;

 private:
  struct ReplyDeleter {
    void operator()(redisReply* reply) const;
  };
  using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;
  // One command's arguments; views must outlive the round trip.
  using Command = std::vector<std::string_view>;
  enum class ApplyOutcome { kDone, kConflict };

  RedisStateStore(RedisOptions options, Metrics* metrics);

  Status EnsureConnected();
  // Sends `commands` pipelined and reads one reply per command. Any transport
  // failure drops the connection and returns kUnavailable.
  Result<std::vector<ReplyPtr>> RoundTrip(const std::vector<Command>& commands);
  Result<ReplyPtr> Call(const Command& command);
  // Frees the connection, counts the error, and describes it.
  Status ConnectionError(std::string_view during);
  // Status for a reply of type error (counted); `where` is usually a key.
  Status ErrorReply(const redisReply& reply, std::string_view where);
  Status Unexpected(const redisReply& reply, std::string_view command, std::string_view where);
  // XRANGE/XREVRANGE's array of [id, [field, value, ...]] entries.
  Result<std::vector<StreamEntry>> StreamEntries(const redisReply& reply, std::string_view command,
                                                 std::string_view where);
  // The value of a reply that is a string or nil (absent), as GET and HGET give.
  Result<std::optional<std::string>> NilOrString(const redisReply& reply, std::string_view command,
                                                 std::string_view where);
  void CountError(std::string_view reason);

  Result<ApplyOutcome> ApplyOnce(const WriteBatch& batch, bool check_first);
  Result<ApplyOutcome> Exec(const WriteBatch& batch);
  // Writes `value` under `staging_key` in chunks, one round trip each.
  Status Stage(const std::string& staging_key, std::string_view value);

  RedisOptions options_;
  Metrics* metrics_;
  std::string endpoint_;
  redisContext* context_ = nullptr;
};

}  // namespace fedrx::core
