// Status: a value type for "did it work, and if not, why" (leveldb style).
// Used for probe-side errors (bad config, bind failure, database error).
// Network outcomes are NOT Status: they are observations with an OONI failure
// string (see probe/measure/failure.h).
#pragma once

#include <string>
#include <utility>

namespace rasad {

class Status {
 public:
  Status() = default;  // OK
  static Status Ok() { return Status(); }
  static Status Invalid(std::string msg) { return Status(kInvalid, std::move(msg)); }
  static Status NotFound(std::string msg) { return Status(kNotFound, std::move(msg)); }
  static Status IoError(std::string msg) { return Status(kIoError, std::move(msg)); }
  static Status Internal(std::string msg) { return Status(kInternal, std::move(msg)); }

  bool ok() const { return code_ == kOk; }
  bool IsInvalid() const { return code_ == kInvalid; }
  bool IsNotFound() const { return code_ == kNotFound; }
  bool IsIoError() const { return code_ == kIoError; }
  const std::string& message() const { return msg_; }
  std::string ToString() const { return ok() ? "OK" : msg_; }

 private:
  enum Code { kOk, kInvalid, kNotFound, kIoError, kInternal };
  Status(Code c, std::string m) : code_(c), msg_(std::move(m)) {}
  Code code_ = kOk;
  std::string msg_;
};

}  // namespace rasad
