// Small RapidJSON helpers shared by the pager payload mappers and the outbox records.
// Writing: strings with explicit lengths (embedded NULs survive), string arrays and maps.
// Reading: Reader checks each member's type before any Get* (RapidJSON only asserts on
// misuse), treats a missing member as "keep the default" (records written by an older version
// still load) and remembers the first wrong type as an Error naming the field.
#pragma once

#include <fmt/format.h>
#include <rapidjson/document.h>

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "routing/json_fields.h"
#include "routing/result.h"

namespace tracepager::integrations::json {

// The string writers are routing's (routing/json_fields.h), so that decisions, pages and
// outbox entries write strings alike.
using routing::json::WriteString;
using routing::json::WriteStringMember;
using routing::json::WriteStrings;

template <typename Writer, typename Map>
void WriteStringMap(Writer& w, const Map& values) {
  w.StartObject();
  for (const auto& [k, v] : values) {
    WriteString(w, k);
    WriteString(w, v);
  }
  w.EndObject();
}

class Reader {
 public:
  // `what` names the document in messages ("page", "outbox entry 12").
  Reader(const rapidjson::Value& object, std::string what)
      : object_(object), what_(std::move(what)) {}

  bool ok() const { return error_.empty(); }
  Error error() const { return Error::InvalidInput(error_); }

  void String(const char* key, std::string* out) {
    const rapidjson::Value* v = Find(key);
    if (v == nullptr) return;
    if (!v->IsString()) return Fail(key, "a string");
    out->assign(v->GetString(), v->GetStringLength());
  }
  void Int64(const char* key, int64_t* out) {
    const rapidjson::Value* v = Find(key);
    if (v == nullptr) return;
    if (!v->IsInt64()) return Fail(key, "an integer");
    *out = v->GetInt64();
  }
  void Bool(const char* key, bool* out) {
    const rapidjson::Value* v = Find(key);
    if (v == nullptr) return;
    if (!v->IsBool()) return Fail(key, "a boolean");
    *out = v->GetBool();
  }
  void Strings(const char* key, std::vector<std::string>* out) {
    const rapidjson::Value* v = Find(key);
    if (v == nullptr) return;
    if (!v->IsArray()) return Fail(key, "an array of strings");
    for (const rapidjson::Value& item : v->GetArray()) {
      if (!item.IsString()) return Fail(key, "an array of strings");
      out->emplace_back(item.GetString(), item.GetStringLength());
    }
  }
  void StringMap(const char* key, std::map<std::string, std::string>* out) {
    const rapidjson::Value* v = Find(key);
    if (v == nullptr) return;
    if (!v->IsObject()) return Fail(key, "an object of strings");
    for (const auto& m : v->GetObject()) {
      if (!m.value.IsString()) return Fail(key, "an object of strings");
      (*out)[std::string(m.name.GetString(), m.name.GetStringLength())] =
          std::string(m.value.GetString(), m.value.GetStringLength());
    }
  }
  // The array member `key`, or nullptr when missing (or not an array, which is an error).
  const rapidjson::Value* Array(const char* key) {
    const rapidjson::Value* v = Find(key);
    if (v == nullptr) return nullptr;
    if (!v->IsArray()) {
      Fail(key, "an array");
      return nullptr;
    }
    return v;
  }

 private:
  const rapidjson::Value* Find(const char* key) const {
    if (!ok() || !object_.IsObject()) return nullptr;
    auto it = object_.FindMember(key);
    return it == object_.MemberEnd() ? nullptr : &it->value;
  }
  void Fail(const char* key, const char* expected) {
    if (ok()) error_ = fmt::format("{}: \"{}\" is not {}", what_, key, expected);
  }

  const rapidjson::Value& object_;
  std::string what_;
  std::string error_;
};

}  // namespace tracepager::integrations::json
