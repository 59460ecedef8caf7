// RapidJSON helpers for the JSON documents tracepager writes and reads back: decisions
// (routing/decision_format.h, routing/decision_parse.h), audit records, outbox entries and page
// payloads. One definition here so that every writer and reader treats strings and fields alike.
//
// Writing: strings go out with explicit lengths, so embedded NULs survive.
// Reading: each getter checks the member's type before any Get* (RapidJSON only asserts on
// misuse, and not in release builds). A member that is missing or null leaves *out alone:
// writers omit some keys, and records written by another version may omit more. A member of the
// wrong type is kInvalidInput naming its path and key, e.g.
// `traces[1].notes: expected an array of strings` (no leading "." when the path is empty).
// Pure (std and RapidJSON only); safe to call from any thread.
#pragma once

#include <rapidjson/document.h>

#include <string>
#include <string_view>
#include <vector>

#include "routing/result.h"

namespace tracepager::routing::json {

template <typename Writer>
void WriteString(Writer& w, std::string_view s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

// `key` and then the string `value`.
template <typename Writer>
void WriteStringMember(Writer& w, const char* key, std::string_view value) {
  w.Key(key);
  WriteString(w, value);
}

template <typename Writer>
void WriteStrings(Writer& w, const std::vector<std::string>& values) {
  w.StartArray();
  for (const std::string& v : values) WriteString(w, v);
  w.EndArray();
}

// The member `key` of `obj`, or nullptr when it is missing or null. REQUIRES: obj.IsObject().
const rapidjson::Value* Member(const rapidjson::Value& obj, const char* key);

// kInvalidInput "<path>.<key>: expected <expected>" (`expected` as "a string", "an integer").
Error TypeError(std::string_view path, const char* key, const char* expected);

// The getters: REQUIRES obj.IsObject(); see the top of this file for missing members and errors.
Status GetString(const rapidjson::Value& obj, const char* key, std::string_view path,
                 std::string* out);
Status GetBool(const rapidjson::Value& obj, const char* key, std::string_view path, bool* out);
// Appends the strings to *out.
Status GetStrings(const rapidjson::Value& obj, const char* key, std::string_view path,
                  std::vector<std::string>* out);

}  // namespace tracepager::routing::json
