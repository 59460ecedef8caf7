// Field access on a RapidJSON DOM for the Jaeger and Zipkin readers: every accessor checks
// the type first and turns a mismatch into an Error that names the element and the field.
// Internal to routing/.
#pragma once

#include <rapidjson/document.h>

#include <string>
#include <string_view>

#include "routing/reader_common.h"
#include "routing/result.h"

namespace tracepager::routing::internal {

// The member `name` of `obj`, or nullptr when absent or null. REQUIRES: obj.IsObject().
const rapidjson::Value* Member(const rapidjson::Value& obj, const char* name);

// `path: "field" is a number, expected a string`
Error WrongType(const std::string& path, const char* field, const rapidjson::Value& v,
                const char* expected);
Error Missing(const std::string& path, const char* field);

// Optional string member: absent/null -> empty view, not a string -> error.
Result<std::string_view> OptString(const rapidjson::Value& obj, const std::string& path,
                                   const char* field);

// A time member as a RawTime: a number or a decimal string in the reader's unit. Absent or
// null: kMissing. Not a number: error.
Result<RawTime> TimeMember(const rapidjson::Value& obj, const std::string& path, const char* field,
                           const char* unit);

// The DOM value as an AttrValue (strings point into the DOM).
AttrValue ToAttrValue(const rapidjson::Value& v);

}  // namespace tracepager::routing::internal
