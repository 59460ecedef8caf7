// Result<T>: a value or an Error, the way fallible code in tracepager reports failure.
//
// Codes are few and each tells the caller what to do next (after absl::Status):
//   kInvalidInput  the input can never succeed; do not retry.
//   kNotFound      the thing is not there (yet); a later retry may succeed.
//   kUnavailable   a peer or resource is temporarily unable; back off and retry.
//   kTimeout       a deadline passed.
//   kInternal      a bug in tracepager.
// Messages are written for the person on call: they name the thing, the field and what was
// wrong, e.g. `zipkin span 7: "parentId" is a number, expected a 16-hex-digit string`.
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace tracepager {

enum class ErrorCode { kInvalidInput, kNotFound, kUnavailable, kTimeout, kInternal };

const char* ErrorCodeName(ErrorCode code);

struct Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;

  static Error InvalidInput(std::string m) { return {ErrorCode::kInvalidInput, std::move(m)}; }
  static Error NotFound(std::string m) { return {ErrorCode::kNotFound, std::move(m)}; }
  static Error Unavailable(std::string m) { return {ErrorCode::kUnavailable, std::move(m)}; }
  static Error Timeout(std::string m) { return {ErrorCode::kTimeout, std::move(m)}; }
  static Error Internal(std::string m) { return {ErrorCode::kInternal, std::move(m)}; }
};

// A value or an Error. There is no default constructor, so a Result can never silently
// count as success. REQUIRES: value() only when ok(), error() only when !ok().
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}      // NOLINT: implicit
  Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT: implicit

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & {
    assert(ok());
    return std::get<0>(v_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<0>(v_);
  }
  T&& value() && {
    assert(ok());
    return std::get<0>(std::move(v_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const {
    assert(!ok());
    return std::get<1>(v_);
  }

 private:
  std::variant<T, Error> v_;
};

// Result of an operation with no value.
struct Ok {};
using Status = Result<Ok>;
inline Status OkStatus() { return Ok{}; }

}  // namespace tracepager
