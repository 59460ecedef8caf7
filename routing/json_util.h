// RapidJSON helpers for the readers: bounded parsing and messages that name what was wrong.
// Internal to routing/.
#pragma once

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/reader.h>

#include <cstddef>
#include <string>
#include <string_view>

#include "routing/result.h"

namespace tracepager::routing::internal {

// A RapidJSON input stream over bytes that need not be NUL-terminated (a string_view). Peek()
// returns '\0' at the end, which RapidJSON treats as end of input.
class ViewStream {
 public:
  using Ch = char;
  explicit ViewStream(std::string_view s)
      : begin_(s.data()), cur_(s.data()), end_(s.data() + s.size()) {}
  Ch Peek() const { return cur_ != end_ ? *cur_ : '\0'; }
  Ch Take() { return cur_ != end_ ? *cur_++ : '\0'; }
  size_t Tell() const { return static_cast<size_t>(cur_ - begin_); }
  bool AtEnd() const { return cur_ == end_; }

  // Unused by the reader in non-in-situ mode; present to satisfy the concept.
  Ch* PutBegin() { return nullptr; }
  void Put(Ch) {}
  void Flush() {}
  size_t PutEnd(Ch*) { return 0; }

 private:
  const char* begin_;
  const char* cur_;
  const char* end_;
};

// Parses with RapidJSON's reader under a handler that refuses nesting deeper than
// `max_depth` (the handler's StartObject/StartArray must return false beyond it). The
// recursive parser is ~15% faster than the iterative one; since the handler stops it before it
// recurses past max_depth, it is safe on any thread stack for depths up to
// kMaxRecursiveDepth. Deeper configured limits use the iterative parser, which never recurses.
inline constexpr unsigned kMaxRecursiveDepth = 256;

template <typename Stream, typename Handler>
rapidjson::ParseResult ParseBounded(Stream& stream, Handler& handler, unsigned max_depth) {
  rapidjson::Reader reader;
  if (max_depth <= kMaxRecursiveDepth) {
    return reader.Parse<rapidjson::kParseNoFlags>(stream, handler);
  }
  return reader.Parse<rapidjson::kParseIterativeFlag>(stream, handler);
}

// Parses `json` into `doc`, refusing nesting deeper than `max_depth`. Errors:
//   invalid JSON at byte 1234: Missing a comma or '}' after an object member.
//   JSON nesting deeper than 64 levels at byte 99
Status ParseDocument(std::string_view json, unsigned max_depth, rapidjson::Document* doc);

// Message for a RapidJSON parse error at `offset`.
std::string ParseErrorMessage(rapidjson::ParseErrorCode code, size_t offset);

// "a string", "an object", ... for messages.
const char* JsonTypeName(const rapidjson::Value& v);

// Checks after parsing that nothing but whitespace follows the root value. RapidJSON stops at
// a NUL byte, which a string_view may contain.
Status CheckTrailing(std::string_view json, size_t offset);

// `s` quoted for a message, cut to about 40 characters.
std::string Quote(std::string_view s);

}  // namespace tracepager::routing::internal

// Lets RapidJSON's reader keep a ViewStream in registers, as it does for its own StringStream.
namespace rapidjson {
template <>
struct StreamTraits<tracepager::routing::internal::ViewStream> {
  enum { copyOptimization = 1 };
};
}  // namespace rapidjson
