// Status and Result<T>: how every fallible fedrx call reports failure. No
// exception crosses a component boundary. Value types; thread-compatible.
#pragma once

#include <cassert>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace fedrx::core {

// Values equal codec::ErrorCode's and are stable on the wire.
enum class StatusCode : unsigned short {
  kOk = 0xffff,
  kUnknown = 0,
  kInvalidArgument = 1,
  kNotFound = 2,
  kAlreadyExists = 3,
  kPermissionDenied = 4,
  kUnauthenticated = 5,
  kResourceExhausted = 6,
  kFailedPrecondition = 7,
  kUnavailable = 8,
  kDeadlineExceeded = 9,
  kInternal = 10,
  kDataLoss = 11,
  kUnimplemented = 12,
};

// Stable lower-case name, e.g. "invalid_argument"; bounded, usable as a metric label.
const char* StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message, std::string where = {})
      : code_(code), message_(std::move(message)), where_(std::move(where)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  // What went wrong, in words.
  const std::string& message() const { return message_; }
  // Where: a frame, a field, a key, a file and line. May be empty.
  const std::string& where() const { return where_; }

  // "invalid_argument: site id is empty (at RegisterSite.site_id)"
  std::string ToString() const;

  // Returns a copy whose message is prefixed by `context`.
  Status WithContext(std::string_view context) const;

  // Explicitly drops a status where ignoring it is correct.
  void IgnoreError() const {}

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
  std::string where_;
};

std::ostream& operator<<(std::ostream& os, const Status& status);

inline Status InvalidArgument(std::string m, std::string w = {}) {
  return {StatusCode::kInvalidArgument, std::move(m), std::move(w)};
}
inline Status NotFound(std::string m, std::string w = {}) {
  return {StatusCode::kNotFound, std::move(m), std::move(w)};
}
inline Status Unavailable(std::string m, std::string w = {}) {
  return {StatusCode::kUnavailable, std::move(m), std::move(w)};
}
inline Status DeadlineExceeded(std::string m, std::string w = {}) {
  return {StatusCode::kDeadlineExceeded, std::move(m), std::move(w)};
}
inline Status Internal(std::string m, std::string w = {}) {
  return {StatusCode::kInternal, std::move(m), std::move(w)};
}
inline Status FailedPrecondition(std::string m, std::string w = {}) {
  return {StatusCode::kFailedPrecondition, std::move(m), std::move(w)};
}
inline Status ResourceExhausted(std::string m, std::string w = {}) {
  return {StatusCode::kResourceExhausted, std::move(m), std::move(w)};
}

// Either a T or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT
    assert(!std::get<Status>(v_).ok() && "Result built from an OK status");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace fedrx::core

// Returns the status from the enclosing function when `expr` is not OK.
#define FEDRX_RETURN_IF_ERROR(expr)              \
  do {                                           \
    ::fedrx::core::Status fedrx_status_ = (expr); \
    if (!fedrx_status_.ok()) return fedrx_status_; \
  } while (0)

#define FEDRX_CONCAT_INNER_(a, b) a##b
#define FEDRX_CONCAT_(a, b) FEDRX_CONCAT_INNER_(a, b)
// Declares `lhs` from a Result, or returns its status from the enclosing function.
#define FEDRX_ASSIGN_OR_RETURN(lhs, expr)                                 \
  auto FEDRX_CONCAT_(fedrx_result_, __LINE__) = (expr);                   \
  if (!FEDRX_CONCAT_(fedrx_result_, __LINE__).ok())                       \
    return FEDRX_CONCAT_(fedrx_result_, __LINE__).status();               \
  lhs = std::move(FEDRX_CONCAT_(fedrx_result_, __LINE__)).value()
