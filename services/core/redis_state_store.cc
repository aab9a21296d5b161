#include "services/core/redis_state_store.h"

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <signal.h>
#include <sys/time.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <deque>
#include <functional>
#include <map>
#include <utility>

namespace fedrx::core {
namespace {

// Watch conflicts tolerated before Apply gives up.
constexpr int kMaxApplyAttempts = 10;

// Redis's own texts, so that a batch rejected before it is sent reads the same
// as the error Redis would have returned.
constexpr std::string_view kWrongType =
    "WRONGTYPE Operation against a key holding the wrong kind of value";
constexpr std::string_view kNotInteger = "ERR value is not an integer or out of range";
constexpr std::string_view kOverflow = "ERR increment or decrement would overflow";

timeval ToTimeval(std::chrono::milliseconds ms) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}

// hiredis writes with write(2): writing to a connection Redis closed raises
// SIGPIPE, whose default action kills the process. Block it on this thread for
// a round trip and swallow one we caused, leaving the process-wide disposition
// alone (the library must not change it for its host).
class SigpipeGuard {
 public:
  SigpipeGuard() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    sigset_t pending;
    sigemptyset(&pending);
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    if (!was_pending_) pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
  }
  ~SigpipeGuard() {
    if (was_pending_) return;
    const int saved_errno = errno;
    sigset_t pending;
    sigemptyset(&pending);
    sigpending(&pending);
    if (sigismember(&pending, SIGPIPE) == 1) {
      const timespec zero{0, 0};
      while (sigtimedwait(&pipe_, nullptr, &zero) == -1 && errno == EINTR) {
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
    errno = saved_errno;
  }
  SigpipeGuard(const SigpipeGuard&) = delete;
  SigpipeGuard& operator=(const SigpipeGuard&) = delete;

 private:
  sigset_t pipe_;
  sigset_t old_;
  bool was_pending_ = false;
};

std::string_view Text(const redisReply& reply) {
  return reply.str == nullptr ? std::string_view() : std::string_view(reply.str, reply.len);
}

const char* ReplyTypeName(int type) {
  switch (type) {
    case REDIS_REPLY_STRING:
      return "string";
    case REDIS_REPLY_ARRAY:
      return "array";
    case REDIS_REPLY_INTEGER:
      return "integer";
    case REDIS_REPLY_NIL:
      return "nil";
    case REDIS_REPLY_STATUS:
      return "status";
    case REDIS_REPLY_ERROR:
      return "error";
  }
  return "unknown";
}

bool IsStatus(const redisReply& reply, std::string_view text) {
  return reply.type == REDIS_REPLY_STATUS && Text(reply) == text;
}

// Redis's INCRBY accepts only the canonical decimal form of an int64 (no sign
// '+', no leading zeros, no spaces); that is exactly what round-trips.
std::optional<std::int64_t> ParseRedisInteger(std::string_view s) {
  std::int64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  if (std::to_string(v) != s) return std::nullopt;
  return v;
}

enum class KeyType { kNone, kString, kHash, kSet, kOther };

KeyType ParseKeyType(std::string_view name) {
  if (name == "none") return KeyType::kNone;
  if (name == "string") return KeyType::kString;
  if (name == "hash") return KeyType::kHash;
  if (name == "set") return KeyType::kSet;
  return KeyType::kOther;  // list, zset, stream, module types
}

// What Apply knows of one key while replaying a batch.
struct KeyState {
  KeyType type = KeyType::kNone;
  std::optional<std::string> value;  // a string's value, if fetched or written
  long long cardinality = 0;         // a set's size
  // Membership of the members the batch adds or removes; absent means "not a member".
  std::map<std::string, bool, std::less<>> present;
};

// Replays one entry on `state` as Redis would run it; returns Redis's error
// text when Redis would refuse it.
std::optional<std::string_view> Replay(const WriteBatch::Entry& entry, KeyState& state) {
  switch (entry.op) {
    case WriteBatch::Op::kSet:
      state = KeyState{};
      state.type = KeyType::kString;
      // Only INCRBY reads a replayed value, and no integer Redis accepts is
      // longer than 20 bytes: a large value (a model) is kept as a marker
      // that is not an integer rather than copied.
      state.value = entry.bytes().size() <= 32 ? std::string(entry.bytes()) : std::string("-");
      return std::nullopt;
    case WriteBatch::Op::kDelete:
      state = KeyState{};
      return std::nullopt;
    case WriteBatch::Op::kHashSet:
      if (state.type != KeyType::kNone && state.type != KeyType::kHash) return kWrongType;
      state.type = KeyType::kHash;
      return std::nullopt;
    case WriteBatch::Op::kSetAdd: {
      if (state.type != KeyType::kNone && state.type != KeyType::kSet) return kWrongType;
      bool& member = state.present[entry.value];
      if (!member) {
        member = true;
        ++state.cardinality;
      }
      state.type = KeyType::kSet;
      return std::nullopt;
    }
    case WriteBatch::Op::kSetRemove: {
      if (state.type != KeyType::kNone && state.type != KeyType::kSet) return kWrongType;
      auto it = state.present.find(entry.value);
      if (state.type == KeyType::kSet && it != state.present.end() && it->second) {
        it->second = false;
        // Redis deletes a set when its last member goes.
        if (--state.cardinality == 0) state.type = KeyType::kNone;
      }
      return std::nullopt;
    }
    case WriteBatch::Op::kIncrement: {
      if (state.type != KeyType::kNone && state.type != KeyType::kString) return kWrongType;
      std::int64_t current = 0;
      if (state.type == KeyType::kString) {
        std::optional<std::int64_t> parsed =
            state.value ? ParseRedisInteger(*state.value) : std::nullopt;
        if (!parsed) return kNotInteger;
        current = *parsed;
      }
      std::int64_t next = 0;
      if (__builtin_add_overflow(current, entry.by, &next)) return kOverflow;
      state.type = KeyType::kString;
      state.value = std::to_string(next);
      return std::nullopt;
    }
  }
  return std::nullopt;
}

}  // namespace

void RedisStateStore::ReplyDeleter::operator()(redisReply* reply) const { freeReplyObject(reply); }

RedisStateStore::RedisStateStore(RedisOptions options, Metrics* metrics)
    : options_(std::move(options)), metrics_(metrics) {
  endpoint_ = options_.unix_socket.empty() ? options_.host + ":" + std::to_string(options_.port)
                                           : "unix:" + options_.unix_socket;
}

RedisStateStore::~RedisStateStore() {
  if (context_ != nullptr) redisFree(context_);
}

Result<std::unique_ptr<RedisStateStore>> RedisStateStore::Connect(RedisOptions options,
                                                                  Metrics* metrics) {
  if (options.unix_socket.empty()) {
    if (options.host.empty()) return InvalidArgument("host is empty", "RedisOptions.host");
    if (options.port < 1 || options.port > 65535) {
      return InvalidArgument("port " + std::to_string(options.port) + " is outside 1..65535",
                             "RedisOptions.port");
    }
  }
  if (options.connect_timeout.count() <= 0) {
    return InvalidArgument("connect_timeout must be positive", "RedisOptions.connect_timeout");
  }
  if (options.command_timeout.count() <= 0) {
    return InvalidArgument("command_timeout must be positive", "RedisOptions.command_timeout");
  }
  if (options.db < 0) {
    return InvalidArgument("db " + std::to_string(options.db) + " is negative", "RedisOptions.db");
  }
  std::unique_ptr<RedisStateStore> store(new RedisStateStore(std::move(options), metrics));
  FEDRX_RETURN_IF_ERROR(store->Ping());
  return store;
}

void RedisStateStore::CountError(std::string_view reason) {
  if (metrics_ != nullptr) metrics_->CountError("redis", reason);
}

Status RedisStateStore::EnsureConnected() {
  if (context_ != nullptr) return Status::Ok();
  const timeval connect_timeout = ToTimeval(options_.connect_timeout);
  errno = 0;
  redisContext* context =
      options_.unix_socket.empty()
          ? redisConnectWithTimeout(options_.host.c_str(), options_.port, connect_timeout)
          : redisConnectUnixWithTimeout(options_.unix_socket.c_str(), connect_timeout);
  const int connect_errno = errno;
  if (context == nullptr) {
    CountError("connection");
    return Unavailable("cannot allocate a Redis connection", endpoint_);
  }
  if (context->err != 0) {
    const bool timed_out = connect_errno == ETIMEDOUT || connect_errno == EINPROGRESS;
    std::string detail = context->errstr;
    redisFree(context);
    CountError(timed_out ? "timeout" : "connection");
    return Unavailable("cannot connect to Redis: " + detail, endpoint_);
  }
  context_ = context;
  if (redisSetTimeout(context_, ToTimeval(options_.command_timeout)) != REDIS_OK) {
    return ConnectionError("setting the command timeout");
  }
  // AUTH and SELECT go through Call, which sees a live context_ and does not
  // re-enter here. Any failure drops the connection so the next call redoes both.
  if (!options_.password.empty()) {
    FEDRX_ASSIGN_OR_RETURN(ReplyPtr reply, Call({"AUTH", options_.password}));
    if (reply->type == REDIS_REPLY_ERROR) {
      // Redis's AUTH errors never echo the password.
      Status status(StatusCode::kUnauthenticated,
                    "Redis refused AUTH: " + std::string(Text(*reply)), endpoint_);
      redisFree(context_);
      context_ = nullptr;
      CountError("auth");
      return status;
    }
  }
  if (options_.db != 0) {
    const std::string db = std::to_string(options_.db);
    FEDRX_ASSIGN_OR_RETURN(ReplyPtr reply, Call({"SELECT", db}));
    if (!IsStatus(*reply, "OK")) {
      Status status =
          reply->type == REDIS_REPLY_ERROR
              ? FailedPrecondition("Redis refused SELECT " + db + ": " + std::string(Text(*reply)),
                                   endpoint_)
              : Internal("unexpected reply to SELECT", endpoint_);
      redisFree(context_);
      context_ = nullptr;
      CountError("reply");
      return status;
    }
  }
  return Status::Ok();
}

Status RedisStateStore::ConnectionError(std::string_view during) {
  const int saved_errno = errno;
  std::string detail = "connection lost";
  std::string_view reason = "connection";
  if (context_ != nullptr) {
    if (context_->err == REDIS_ERR_IO &&
        (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK || saved_errno == ETIMEDOUT)) {
      reason = "timeout";
      detail = "no answer within the command timeout of " +
               std::to_string(options_.command_timeout.count()) + " ms";
    } else if (context_->err == REDIS_ERR_PROTOCOL) {
      reason = "protocol";
      detail = std::string("protocol error: ") + context_->errstr;
    } else if (context_->err != 0) {
      detail = context_->errstr;
    }
    redisFree(context_);
    context_ = nullptr;
  }
  CountError(reason);
  return Unavailable("Redis " + std::string(reason) + " error during " + std::string(during) +
                         ": " + detail + "; the next call reconnects",
                     endpoint_);
}

Status RedisStateStore::ErrorReply(const redisReply& reply, std::string_view where) {
  // The commands sent here never make Redis echo an argument in its error, so
  // the text carries no value.
  const std::string text(Text(reply));
  for (std::string_view transient : {"LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN"}) {
    if (text.starts_with(transient)) {
      CountError("busy");
      return Unavailable("Redis cannot serve now: " + text, std::string(where));
    }
  }
  CountError("reply");
  if (text.starts_with("OOM")) return ResourceExhausted(text, std::string(where));
  return FailedPrecondition(text, std::string(where));
}

Status RedisStateStore::Unexpected(const redisReply& reply, std::string_view command,
                                   std::string_view where) {
  CountError("protocol");
  return Internal("unexpected Redis reply of type " + std::string(ReplyTypeName(reply.type)) +
                      " to " + std::string(command),
                  std::string(where));
}

Result<std::vector<RedisStateStore::ReplyPtr>> RedisStateStore::RoundTrip(
    const std::vector<Command>& commands) {
  SigpipeGuard guard;
  FEDRX_RETURN_IF_ERROR(EnsureConnected());
  std::vector<const char*> argv;
  std::vector<std::size_t> lengths;
  for (const Command& command : commands) {
    argv.clear();
    lengths.clear();
    for (std::string_view arg : command) {
      argv.push_back(arg.empty() ? "" : arg.data());
      lengths.push_back(arg.size());
    }
    if (redisAppendCommandArgv(context_, static_cast<int>(argv.size()), argv.data(),
                               lengths.data()) != REDIS_OK) {
      return ConnectionError(command.front());
    }
  }
  std::vector<ReplyPtr> replies;
  replies.reserve(commands.size());
  for (const Command& command : commands) {
    void* raw = nullptr;
    if (redisGetReply(context_, &raw) != REDIS_OK || raw == nullptr) {
      return ConnectionError(command.front());
    }
    replies.emplace_back(static_cast<redisReply*>(raw));
  }
  return replies;
}

Result<RedisStateStore::ReplyPtr> RedisStateStore::Call(const Command& command) {
  FEDRX_ASSIGN_OR_RETURN(std::vector<ReplyPtr> replies, RoundTrip({command}));
  return std::move(replies.front());
}

Status RedisStateStore::Ping() {
  FEDRX_ASSIGN_OR_RETURN(ReplyPtr reply, Call({"PING"}));
  if (reply->type == REDIS_REPLY_ERROR) return ErrorReply(*reply, endpoint_);
  if (!IsStatus(*reply, "PONG")) return Unexpected(*reply, "PING", endpoint_);
  return Status::Ok();
}

Result<std::optional<std::string>> RedisStateStore::NilOrString(const redisReply& reply,
                                                                std::string_view command,
                                                                std::string_view where) {
  switch (reply.type) {
    case REDIS_REPLY_NIL:
      return std::optional<std::string>();
    case REDIS_REPLY_STRING:
      return std::optional<std::string>(Text(reply));
    case REDIS_REPLY_ERROR:
      return ErrorReply(reply, where);
  }
  return Unexpected(reply, command, where);
}

Result<std::optional<std::string>> RedisStateStore::Get(const Key& key) {
  FEDRX_ASSIGN_OR_RETURN(ReplyPtr reply, Call({"GET", key.str()}));
  return NilOrString(*reply, "GET", key.str());
}

Status RedisStateStore::Set(const Key& key, std::string_view value) {
  FEDRX_ASSIGN_OR_RETURN(ReplyPtr reply, Call({"SET", key.str(), value}));
  if (reply->type == REDIS_REPLY_ERROR) return ErrorReply(*reply, key.str());
  if (!IsStatus(*reply, "OK")) return Unexpected(*reply, "SET", key.str());
  return Status::Ok();
}

Result<bool> RedisStateStore::SetIfAbsent(const Key& key, std::string_view value) {
  FEDRX_ASSIGN_OR_RETURN(ReplyPtr reply, Call({"SET", key.str(), value, "NX"}));
  if (reply->type == REDIS_REPLY_ERROR) return ErrorReply(*reply, key.str());
  if (reply->type == REDIS_REPLY_NIL) return false;
  if (!IsStatus(*reply, "OK")) return Unexpected(*reply, "SET NX", key.str());
  return true;
}

Result<bool> RedisStateStore::SetIfAbsentWithExpiry(const Key& key, std::string_view value,
                                                    std::chrono::milliseconds ttl) {
  if (ttl.count() <= 0) return InvalidArgument("a lease needs a positive ttl", key.str());
  const std::string px = std::to_string(ttl.count());
  FEDRX_ASSIGN_OR_RETURN(ReplyPtr reply, Call({"SET", key.str(), value, "NX", "PX", px}));
  if (reply->type == REDIS_REPLY_ERROR) return ErrorReply(*reply, key.str());
  if (reply->type == REDIS_REPLY_NIL) return false;
  if (!IsStatus(*reply, "OK")) return Unexpected(*reply, "SET NX PX", key.str());
  return true;
}

namespace {
// Compare-and-set on the server. A key of another type compares unequal
// rather than failing with WRONGTYPE (TYPE is checked first).
constexpr std::string_view kRenewIfEqual =
    "if redis.call('TYPE', KEYS[1]).ok == 'string' and redis.call('GET', KEYS[1]) == ARGV[1] "
    "then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end";
constexpr std::string_view kDeleteIfEqual =
    "if redis.call('TYPE', KEYS[1]).ok == 'string' and redis.call('GET', KEYS[1]) == ARGV[1] "
    "then return redis.call('DEL', KEYS[1]) else return 0 end";
}  // namespace

Result<bool> RedisStateStore::RenewIfEqual(const Key& key, std::string_view expected,
                                           std::chrono::milliseconds ttl) {
  if (ttl.count() <= 0) return InvalidArgument("a lease needs a positive ttl", key.str());
  const std::string px = std::to_string(ttl.count());
  FEDRX_ASSIGN_OR_RETURN(ReplyPtr reply,
                         Call({"EVAL", kRenewIfEqual, "1", key.str(), expected, px}));
  if (reply->type == REDIS_REPLY_ERROR) return ErrorReply(*reply, key.str());
  if (reply->type != REDIS_REPLY_INTEGER) return Unexpected(*reply, "EVAL renew", key.str());
  return reply->integer == 1;
}

Result<bool> RedisStateStore::DeleteIfEqual(const Key& key, std::string_view expected) {
  FEDRX_ASSIGN_OR_RETURN(ReplyPtr reply, Call({"EVAL", kDeleteIfEqual, "1", key.str(), expected}));
  if (reply->type == REDIS_REPLY_ERROR) return ErrorReply(*reply, key.str());
  if (reply->type != REDIS_REPLY_INTEGER) return Unexpected(*reply, "EVAL delete", key.str());
  return reply->integer == 1;
}

Result<bool> RedisStateStore::Delete(const Key& key) {
  FEDRX_ASSIGN_OR_RETURN(ReplyPtr reply, Call({"DEL", key.str()}));
  if (reply->type == REDIS_REPLY_ERROR) return ErrorReply(*reply, key.str());
  if (reply->type != REDIS_REPLY_INTEGER) return Unexpected(*reply, "DEL", key.str());
  return reply->integer > 0;
}

Result<std::int64_t> RedisStateStore::Increment(const Key& key, std::int64_t by) {
  const std::string amount = std::to_string(by);
  FEDRX_ASSIGN_OR_RETURN(ReplyPtr reply, Call({"INCRBY", key.str(), amount}));
  if (reply->type == REDIS_REPLY_ERROR) return ErrorReply(*reply, key.str());
  if (reply->type != REDIS_REPLY_INTEGER) return Unexpected(*reply, "INCRBY", key.str());
  return static_cast<std::int64_t>(reply->integer);
}

Status RedisStateStore::HashSet(const Key& key, const FieldMap& fields) {
  if (fields.empty()) return InvalidArgument("HashSet needs at least one field", key.str());
  Command command = {"HSET", key.str()};
  for (const auto& [field, value] : fields) {
    command.push_back(field);
    command.push_back(value);
  }
  FEDRX_ASSIGN_OR_RETURN(ReplyPtr reply, Call(command));
  if (reply->type == REDIS_REPLY_ERROR) return ErrorReply(*reply, key.str());
  if (reply->type != REDIS_REPLY_INTEGER) return Unexpected(*reply, "HSET", key.str());
  return Status::Ok();
}

Result<std::optional<std::string>> RedisStateStore::HashGet(const Key& key,
                                                            std::string_view field) {
  FEDRX_ASSIGN_OR_RETURN(ReplyPtr reply, Call({"HGET", key.str(), field}));
  return NilOrString(*reply, "HGET", key.str());
}

namespace {
// HGETALL's flat [field, value, ...] array as a map; nullopt if malformed.
std::optional<FieldMap> ToFieldMap(const redisReply& reply) {
  if (reply.type != REDIS_REPLY_ARRAY || reply.elements % 2 != 0) return std::nullopt;
  FieldMap fields;
  for (std::size_t i = 0; i < reply.elements; i += 2) {
    const redisReply* field = reply.element[i];
    const redisReply* value = reply.element[i + 1];
    if (field->type != REDIS_REPLY_STRING || value->type != REDIS_REPLY_STRING) {
      return std::nullopt;
    }
    fields.emplace(Text(*field), Text(*value));
  }
  return fields;
}
}  // namespace

Result<FieldMap> RedisStateStore::HashGetAll(const Key& key) {
  FEDRX_ASSIGN_OR_RETURN(ReplyPtr reply, Call({"HGETALL", key.str()}));
  if (reply->type == REDIS_REPLY_ERROR) return ErrorReply(*reply, key.str());
  std::optional<FieldMap> fields = ToFieldMap(*reply);
  if (!fields) return Unexpected(*reply, "HGETALL", key.str());
  return std::move(*fields);
}

Result<std::string> RedisStateStore::StreamAppend(const Key& stream, const FieldMap& fields) {
  if (fields.empty()) return InvalidArgument("StreamAppend needs at least one field", stream.str());
  Command command = {"XADD", stream.str(), "*"};
  for (const auto& [field, value] : fields) {
    command.push_back(field);
    command.push_back(value);
  }
  FEDRX_ASSIGN_OR_RETURN(ReplyPtr reply, Call(command));
  if (reply->type == REDIS_REPLY_ERROR) return ErrorReply(*reply, stream.str());
  if (reply->type != REDIS_REPLY_STRING) return Unexpected(*reply, "XADD", stream.str());
  return std::string(Text(*reply));
}

Result<std::vector<std::string>> RedisStateStore::StreamAppendMany(
    const Key& stream, const std::vector<FieldMap>& entries) {
  std::vector<Command> commands;
  commands.reserve(entries.size());
  for (std::size_t i = 0; i < entries.size(); ++i) {
    if (entries[i].empty()) {
      return InvalidArgument("StreamAppendMany entry " + std::to_string(i) + " has no fields",
                             stream.str());
    }
    Command command = {"XADD", stream.str(), "*"};
    for (const auto& [field, value] : entries[i]) {
      command.push_back(field);
      command.push_back(value);
    }
    commands.push_back(std::move(command));
  }
  std::vector<std::string> ids;
  if (commands.empty()) return ids;
  FEDRX_ASSIGN_OR_RETURN(std::vector<ReplyPtr> replies, RoundTrip(commands));
  ids.reserve(replies.size());
  for (const ReplyPtr& reply : replies) {
    if (reply->type == REDIS_REPLY_ERROR) return ErrorReply(*reply, stream.str());
    if (reply->type != REDIS_REPLY_STRING) return Unexpected(*reply, "XADD", stream.str());
    ids.emplace_back(Text(*reply));
  }
  return ids;
}

Result<std::vector<StreamEntry>> RedisStateStore::StreamEntries(const redisReply& reply,
                                                                std::string_view command,
                                                                std::string_view where) {
  if (reply.type == REDIS_REPLY_ERROR) return ErrorReply(reply, where);
  if (reply.type != REDIS_REPLY_ARRAY) return Unexpected(reply, command, where);
  std::vector<StreamEntry> entries;
  entries.reserve(reply.elements);
  for (std::size_t i = 0; i < reply.elements; ++i) {
    const redisReply& entry = *reply.element[i];
    if (entry.type != REDIS_REPLY_ARRAY || entry.elements != 2 ||
        entry.element[0]->type != REDIS_REPLY_STRING) {
      return Unexpected(entry, command, where);
    }
    std::optional<FieldMap> fields = ToFieldMap(*entry.element[1]);
    if (!fields) return Unexpected(*entry.element[1], command, where);
    entries.push_back(StreamEntry{std::string(Text(*entry.element[0])), std::move(*fields)});
  }
  return entries;
}

Result<std::vector<StreamEntry>> RedisStateStore::StreamRange(const Key& stream,
                                                              std::string_view from_id,
                                                              std::size_t count) {
  if (from_id != "-" && !ParseStreamId(from_id)) {
    return InvalidArgument("'" + std::string(from_id) + "' is not a stream id (<ms>-<seq>)",
                           stream.str());
  }
  const std::string count_text = std::to_string(count);
  Command command = {"XRANGE", stream.str(), from_id, "+"};
  if (count > 0) {
    command.push_back("COUNT");
    command.push_back(count_text);
  }
  FEDRX_ASSIGN_OR_RETURN(ReplyPtr reply, Call(command));
  return StreamEntries(*reply, "XRANGE", stream.str());
}

Result<std::optional<StreamEntry>> RedisStateStore::StreamLast(const Key& stream) {
  FEDRX_ASSIGN_OR_RETURN(ReplyPtr reply, Call({"XREVRANGE", stream.str(), "+", "-", "COUNT", "1"}));
  FEDRX_ASSIGN_OR_RETURN(std::vector<StreamEntry> entries,
                         StreamEntries(*reply, "XREVRANGE", stream.str()));
  if (entries.empty()) return std::optional<StreamEntry>();
  return std::optional<StreamEntry>(std::move(entries.front()));
}

Result<bool> RedisStateStore::SetAdd(const Key& key, std::string_view member) {
  FEDRX_ASSIGN_OR_RETURN(ReplyPtr reply, Call({"SADD", key.str(), member}));
  if (reply->type == REDIS_REPLY_ERROR) return ErrorReply(*reply, key.str());
  if (reply->type != REDIS_REPLY_INTEGER) return Unexpected(*reply, "SADD", key.str());
  return reply->integer > 0;
}

Result<bool> RedisStateStore::SetRemove(const Key& key, std::string_view member) {
  FEDRX_ASSIGN_OR_RETURN(ReplyPtr reply, Call({"SREM", key.str(), member}));
  if (reply->type == REDIS_REPLY_ERROR) return ErrorReply(*reply, key.str());
  if (reply->type != REDIS_REPLY_INTEGER) return Unexpected(*reply, "SREM", key.str());
  return reply->integer > 0;
}

Result<std::vector<std::string>> RedisStateStore::SetMembers(const Key& key) {
  FEDRX_ASSIGN_OR_RETURN(ReplyPtr reply, Call({"SMEMBERS", key.str()}));
  if (reply->type == REDIS_REPLY_ERROR) return ErrorReply(*reply, key.str());
  if (reply->type != REDIS_REPLY_ARRAY) return Unexpected(*reply, "SMEMBERS", key.str());
  std::vector<std::string> members;
  members.reserve(reply->elements);
  for (std::size_t i = 0; i < reply->elements; ++i) {
    const redisReply* member = reply->element[i];
    if (member->type != REDIS_REPLY_STRING) return Unexpected(*member, "SMEMBERS", key.str());
    members.emplace_back(Text(*member));
  }
  // std::string compares as unsigned bytes (char_traits<char>::lt), i.e. Redis's order.
  std::sort(members.begin(), members.end());
  return members;
}

Result<std::vector<std::optional<std::string>>> RedisStateStore::GetMany(
    const std::vector<Key>& keys) {
  std::vector<std::optional<std::string>> values;
  if (keys.empty()) return values;
  Command command = {"MGET"};
  for (const Key& key : keys) command.push_back(key.str());
  FEDRX_ASSIGN_OR_RETURN(ReplyPtr reply, Call(command));
  if (reply->type == REDIS_REPLY_ERROR) return ErrorReply(*reply, keys.front().str());
  if (reply->type != REDIS_REPLY_ARRAY || reply->elements != keys.size()) {
    return Unexpected(*reply, "MGET", keys.front().str());
  }
  values.reserve(keys.size());
  for (std::size_t i = 0; i < reply->elements; ++i) {
    const redisReply* value = reply->element[i];
    if (value->type == REDIS_REPLY_NIL) {
      values.emplace_back();
    } else if (value->type == REDIS_REPLY_STRING) {
      values.emplace_back(Text(*value));
    } else {
      return Unexpected(*value, "MGET", keys[i].str());
    }
  }
  return values;
}

Result<std::vector<FieldMap>> RedisStateStore::HashGetAllMany(const std::vector<Key>& keys) {
  std::vector<FieldMap> maps;
  if (keys.empty()) return maps;
  std::vector<Command> commands;
  commands.reserve(keys.size());
  for (const Key& key : keys) commands.push_back({"HGETALL", key.str()});
  FEDRX_ASSIGN_OR_RETURN(std::vector<ReplyPtr> replies, RoundTrip(commands));
  maps.reserve(keys.size());
  for (std::size_t i = 0; i < replies.size(); ++i) {
    if (replies[i]->type == REDIS_REPLY_ERROR) return ErrorReply(*replies[i], keys[i].str());
    std::optional<FieldMap> fields = ToFieldMap(*replies[i]);
    if (!fields) return Unexpected(*replies[i], "HGETALL", keys[i].str());
    maps.push_back(std::move(*fields));
  }
  return maps;
}

Status RedisStateStore::Apply(const WriteBatch& batch) {
  if (batch.empty()) return Status::Ok();
  bool check_first = false;
  for (std::size_t i = 0; i < batch.entries().size(); ++i) {
    const WriteBatch::Entry& entry = batch.entries()[i];
    if (entry.op == WriteBatch::Op::kHashSet && entry.fields.empty()) {
      return InvalidArgument(batch.EntryName(i) + ": HashSet needs at least one field",
                             entry.key.str());
    }
    // SET and DEL cannot fail at run time; every other command can.
    if (entry.op != WriteBatch::Op::kSet && entry.op != WriteBatch::Op::kDelete) {
      check_first = true;
    }
  }
  for (int attempt = 0; attempt < kMaxApplyAttempts; ++attempt) {
    FEDRX_ASSIGN_OR_RETURN(ApplyOutcome outcome, ApplyOnce(batch, check_first));
    if (outcome == ApplyOutcome::kDone) return Status::Ok();
  }
  CountError("conflict");
  return Unavailable("a batch of " + std::to_string(batch.entries().size()) +
                         " writes met concurrent changes to its keys " +
                         std::to_string(kMaxApplyAttempts) + " times; nothing was written",
                     endpoint_);
}

Result<RedisStateStore::ApplyOutcome> RedisStateStore::ApplyOnce(const WriteBatch& batch,
                                                                 bool check_first) {
  if (!check_first) return Exec(batch);

  // Per key that some entry can fail on: what to read of it.
  struct Probe {
    bool increments = false;
    bool set_ops = false;
    std::vector<std::string_view> members;  // distinct, in first-seen order
    std::size_t type_reply = 0;
    std::size_t get_reply = 0;
    std::size_t card_reply = 0;
    std::size_t first_member_reply = 0;
  };
  std::map<std::string_view, Probe> probes;
  for (const WriteBatch::Entry& entry : batch.entries()) {
    if (entry.op == WriteBatch::Op::kSet || entry.op == WriteBatch::Op::kDelete) continue;
    Probe& probe = probes[entry.key.str()];
    if (entry.op == WriteBatch::Op::kIncrement) probe.increments = true;
    if (entry.op == WriteBatch::Op::kSetAdd || entry.op == WriteBatch::Op::kSetRemove) {
      probe.set_ops = true;
      if (std::find(probe.members.begin(), probe.members.end(), entry.value) ==
          probe.members.end()) {
        probe.members.push_back(entry.value);
      }
    }
  }

  // One pipelined round trip: WATCH the keys, then read their state. Any change
  // after WATCH makes the EXEC below abort, so the batch is never applied to a
  // state other than the one checked here.
  std::vector<Command> commands;
  Command watch = {"WATCH"};
  for (const auto& [key, probe] : probes) watch.push_back(key);
  commands.push_back(std::move(watch));
  for (auto& [key, probe] : probes) {
    probe.type_reply = commands.size();
    commands.push_back({"TYPE", key});
    if (probe.increments) {
      probe.get_reply = commands.size();
      commands.push_back({"GET", key});
    }
    if (probe.set_ops) {
      probe.card_reply = commands.size();
      commands.push_back({"SCARD", key});
      probe.first_member_reply = commands.size();
      for (std::string_view member : probe.members) commands.push_back({"SISMEMBER", key, member});
    }
  }
  FEDRX_ASSIGN_OR_RETURN(std::vector<ReplyPtr> replies, RoundTrip(commands));
  if (replies[0]->type == REDIS_REPLY_ERROR) return ErrorReply(*replies[0], endpoint_);
  if (!IsStatus(*replies[0], "OK")) return Unexpected(*replies[0], "WATCH", endpoint_);

  std::map<std::string_view, KeyState> states;
  for (const auto& [key, probe] : probes) {
    const redisReply& type = *replies[probe.type_reply];
    if (type.type != REDIS_REPLY_STATUS) {
      Status status = Unexpected(type, "TYPE", key);
      Call({"UNWATCH"}).status().IgnoreError();
      return status;
    }
    KeyState& state = states[key];
    state.type = ParseKeyType(Text(type));
    // The reads below are not atomic with TYPE; a key that changed in between
    // is retried (EXEC would abort anyway since it is watched).
    bool torn = false;
    if (probe.increments && state.type == KeyType::kString) {
      const redisReply& value = *replies[probe.get_reply];
      if (value.type == REDIS_REPLY_STRING) {
        state.value = std::string(Text(value));
      } else {
        torn = true;
      }
    }
    if (probe.set_ops && state.type == KeyType::kSet) {
      const redisReply& card = *replies[probe.card_reply];
      if (card.type == REDIS_REPLY_INTEGER && card.integer > 0) {
        state.cardinality = card.integer;
      } else {
        torn = true;
      }
      for (std::size_t m = 0; m < probe.members.size(); ++m) {
        const redisReply& is_member = *replies[probe.first_member_reply + m];
        if (is_member.type != REDIS_REPLY_INTEGER) {
          torn = true;
          break;
        }
        state.present[std::string(probe.members[m])] = is_member.integer == 1;
      }
    }
    if (torn) {
      FEDRX_RETURN_IF_ERROR(Call({"UNWATCH"}).status());
      return ApplyOutcome::kConflict;
    }
  }

  for (std::size_t i = 0; i < batch.entries().size(); ++i) {
    const WriteBatch::Entry& entry = batch.entries()[i];
    auto it = states.find(entry.key.str());
    if (it == states.end()) continue;  // only Set/Delete on this key: cannot fail
    if (std::optional<std::string_view> error = Replay(entry, it->second)) {
      // Should UNWATCH fail, the connection is dropped, which unwatches too;
      // the batch's own error is the one to report.
      Call({"UNWATCH"}).status().IgnoreError();
      CountError("reply");
      return FailedPrecondition(
          batch.EntryName(i) + " would fail: " + std::string(*error) + "; nothing was written",
          entry.key.str());
    }
  }
  return Exec(batch);
}

// Values at least this large are written before the transaction, in chunks
// under a staging key, and renamed into place inside it: pipelined whole,
// hiredis would first copy the value into its output buffer (for a model,
// one more model's worth of memory).
constexpr std::size_t kStageThreshold = std::size_t{4} << 20;
constexpr std::size_t kStageChunk = std::size_t{4} << 20;

Status RedisStateStore::Stage(const std::string& staging_key, std::string_view value) {
  std::size_t offset = 0;
  do {
    const std::string_view chunk = value.substr(offset, kStageChunk);
    FEDRX_ASSIGN_OR_RETURN(ReplyPtr reply,
                           Call({offset == 0 ? "SET" : "APPEND", staging_key, chunk}));
    if (reply->type == REDIS_REPLY_ERROR) return ErrorReply(*reply, staging_key);
    offset += chunk.size();
  } while (offset < value.size());
  return Status::Ok();
}

Result<RedisStateStore::ApplyOutcome> RedisStateStore::Exec(const WriteBatch& batch) {
  const std::vector<WriteBatch::Entry>& entries = batch.entries();
  std::deque<std::string> amounts;  // stable storage for INCRBY arguments
  std::deque<std::string> staged;   // staging keys of large values, renamed in the transaction
  const auto drop_staged = [&] {
    for (const auto& key : staged) Call({"DEL", key}).status().IgnoreError();
  };
  std::vector<Command> commands;
  commands.reserve(entries.size() + 2);
  commands.push_back({"MULTI"});
  for (const WriteBatch::Entry& entry : entries) {
    const std::string& key = entry.key.str();
    switch (entry.op) {
      case WriteBatch::Op::kSet:
        if (entry.bytes().size() >= kStageThreshold) {
          staged.push_back(key + "~staging");
          if (Status s = Stage(staged.back(), entry.bytes()); !s.ok()) {
            drop_staged();
            return s.WithContext("staging a large value; nothing was written");
          }
          commands.push_back({"RENAME", staged.back(), key});
        } else {
          commands.push_back({"SET", key, entry.bytes()});
        }
        break;
      case WriteBatch::Op::kDelete:
        commands.push_back({"DEL", key});
        break;
      case WriteBatch::Op::kHashSet: {
        Command command = {"HSET", key};
        for (const auto& [field, value] : entry.fields) {
          command.push_back(field);
          command.push_back(value);
        }
        commands.push_back(std::move(command));
        break;
      }
      case WriteBatch::Op::kSetAdd:
        commands.push_back({"SADD", key, entry.value});
        break;
      case WriteBatch::Op::kSetRemove:
        commands.push_back({"SREM", key, entry.value});
        break;
      case WriteBatch::Op::kIncrement:
        amounts.push_back(std::to_string(entry.by));
        commands.push_back({"INCRBY", key, amounts.back()});
        break;
    }
  }
  commands.push_back({"EXEC"});

  // Pipelining the writes behind MULTI is safe: MULTI itself cannot fail on a
  // connection that is not already inside a transaction, and a transport
  // failure drops the connection, which discards a half-queued transaction.
  // Connecting first separates "nothing was sent" from "outcome unknown".
  FEDRX_RETURN_IF_ERROR(EnsureConnected());
  Result<std::vector<ReplyPtr>> sent = RoundTrip(commands);
  if (!sent.ok()) {
    drop_staged();
    return sent.status().WithContext(
        "batch of " + std::to_string(entries.size()) +
        " writes interrupted (Redis applies a transaction entirely or not at all; which one "
        "is unknown)");
  }
  std::vector<ReplyPtr>& replies = sent.value();
  const std::string& first_key = entries.front().key.str();
  if (!IsStatus(*replies.front(), "OK")) {
    if (replies.front()->type == REDIS_REPLY_ERROR) return ErrorReply(*replies.front(), first_key);
    return Unexpected(*replies.front(), "MULTI", first_key);
  }
  const redisReply& exec = *replies.back();
  if (exec.type != REDIS_REPLY_ARRAY) drop_staged();                 // the transaction did not run
  if (exec.type == REDIS_REPLY_NIL) return ApplyOutcome::kConflict;  // a watched key changed
  if (exec.type == REDIS_REPLY_ERROR) {
    // EXECABORT: a command was refused while queueing; Redis ran none of them.
    for (std::size_t i = 0; i < entries.size(); ++i) {
      const redisReply& queued = *replies[i + 1];
      if (queued.type == REDIS_REPLY_ERROR) {
        Status status = ErrorReply(queued, entries[i].key.str());
        return Status(
            status.code(),
            batch.EntryName(i) + " refused: " + status.message() + "; nothing was written",
            status.where());
      }
    }
    return ErrorReply(exec, first_key);
  }
  if (exec.type != REDIS_REPLY_ARRAY || exec.elements != entries.size()) {
    return Unexpected(exec, "EXEC", first_key);
  }
  for (std::size_t i = 0; i < entries.size(); ++i) {
    if (exec.element[i]->type == REDIS_REPLY_ERROR) {
      // The checks above make this unreachable short of a server-side surprise;
      // say plainly that atomicity was lost.
      CountError("partial");
      return Internal(batch.EntryName(i) + " failed inside EXEC after the checks passed: " +
                          std::string(Text(*exec.element[i])) + "; the other entries were applied",
                      entries[i].key.str());
    }
  }
  return ApplyOutcome::kDone;
}

}  // namespace fedrx::core
