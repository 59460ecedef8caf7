#include "routing/json_util.h"

#include <cstdio>

namespace tracepager::routing::internal {
namespace {

// Forwards SAX events to the Document that builds the DOM, counting nesting. RapidJSON's own
// parser has no depth limit, and a DOM of a 10,000-deep document is harmless only as long as
// nothing walks it recursively; refusing it at parse time keeps every later step simple.
class DepthLimiter {
 public:
  DepthLimiter(rapidjson::Document& doc, unsigned max_depth) : doc_(doc), max_depth_(max_depth) {}

  bool Null() { return doc_.Null(); }
  bool Bool(bool b) { return doc_.Bool(b); }
  bool Int(int i) { return doc_.Int(i); }
  bool Uint(unsigned u) { return doc_.Uint(u); }
  bool Int64(int64_t i) { return doc_.Int64(i); }
  bool Uint64(uint64_t u) { return doc_.Uint64(u); }
  bool Double(double d) { return doc_.Double(d); }
  bool RawNumber(const char* s, rapidjson::SizeType n, bool copy) {
    return doc_.RawNumber(s, n, copy);
  }
  bool String(const char* s, rapidjson::SizeType n, bool copy) { return doc_.String(s, n, copy); }
  bool Key(const char* s, rapidjson::SizeType n, bool copy) { return doc_.Key(s, n, copy); }
  bool StartObject() { return Enter() && doc_.StartObject(); }
  bool EndObject(rapidjson::SizeType n) {
    --depth_;
    return doc_.EndObject(n);
  }
  bool StartArray() { return Enter() && doc_.StartArray(); }
  bool EndArray(rapidjson::SizeType n) {
    --depth_;
    return doc_.EndArray(n);
  }

  bool too_deep() const { return too_deep_; }

 private:
  bool Enter() {
    if (++depth_ > max_depth_) {
      too_deep_ = true;
      return false;
    }
    return true;
  }

  rapidjson::Document& doc_;
  unsigned max_depth_;
  unsigned depth_ = 0;
  bool too_deep_ = false;
};

}  // namespace

std::string ParseErrorMessage(rapidjson::ParseErrorCode code, size_t offset) {
  return "invalid JSON at byte " + std::to_string(offset) + ": " +
         rapidjson::GetParseError_En(code);
}

Status ParseDocument(std::string_view json, unsigned max_depth, rapidjson::Document* doc) {
  ViewStream stream(json);
  rapidjson::ParseResult result;
  bool too_deep = false;
  auto generate = [&](rapidjson::Document& d) {
    DepthLimiter limiter(d, max_depth);
    result = ParseBounded(stream, limiter, max_depth);
    too_deep = limiter.too_deep();
    return !result.IsError();
  };
  doc->Populate(generate);
  if (too_deep) {
    return Error::InvalidInput("JSON nesting deeper than " + std::to_string(max_depth) +
                               " levels at byte " + std::to_string(result.Offset()));
  }
  if (result.IsError())
    return Error::InvalidInput(ParseErrorMessage(result.Code(), result.Offset()));
  return CheckTrailing(json, stream.Tell());
}

Status CheckTrailing(std::string_view json, size_t offset) {
  for (size_t i = offset; i < json.size(); ++i) {
    char c = json[i];
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
    return Error::InvalidInput("invalid JSON at byte " + std::to_string(i) +
                               (c == '\0' ? ": a NUL byte" : ": data after the document's end"));
  }
  return OkStatus();
}

const char* JsonTypeName(const rapidjson::Value& v) {
  switch (v.GetType()) {
    case rapidjson::kNullType:
      return "null";
    case rapidjson::kFalseType:
    case rapidjson::kTrueType:
      return "a boolean";
    case rapidjson::kObjectType:
      return "an object";
    case rapidjson::kArrayType:
      return "an array";
    case rapidjson::kStringType:
      return "a string";
    case rapidjson::kNumberType:
      return "a number";
  }
  return "a value";
}

std::string Quote(std::string_view s) {
  std::string out = "\"";
  size_t n = 0;
  for (char c : s) {
    if (n++ >= 40) {
      out += "...";
      break;
    }
    unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || c == '"' || c == '\\') {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", u);
      out += buf;
    } else {
      out.push_back(c);
    }
  }
  out += "\"";
  return out;
}

}  // namespace tracepager::routing::internal
