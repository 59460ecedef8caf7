#include "routing/json_fields.h"

namespace tracepager::routing::json {

using rapidjson::Value;

// A null member reads as a missing one: a writer's null means "nothing here", never a value of
// the wrong type.
const Value* Member(const Value& obj, const char* key) {
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd() || it->value.IsNull()) return nullptr;
  return &it->value;
}

Error TypeError(std::string_view path, const char* key, const char* expected) {
  return Error::InvalidInput(std::string(path) + (path.empty() ? "" : ".") + key + ": expected " +
                             expected);
}

Status GetString(const Value& obj, const char* key, std::string_view path, std::string* out) {
  const Value* v = Member(obj, key);
  if (!v) return OkStatus();
  if (!v->IsString()) return TypeError(path, key, "a string");
  out->assign(v->GetString(), v->GetStringLength());
  return OkStatus();
}

Status GetBool(const Value& obj, const char* key, std::string_view path, bool* out) {
  const Value* v = Member(obj, key);
  if (!v) return OkStatus();
  if (!v->IsBool()) return TypeError(path, key, "true or false");
  *out = v->GetBool();
  return OkStatus();
}

Status GetStrings(const Value& obj, const char* key, std::string_view path,
                  std::vector<std::string>* out) {
  const Value* v = Member(obj, key);
  if (!v) return OkStatus();
  if (!v->IsArray()) return TypeError(path, key, "an array of strings");
  for (const Value& item : v->GetArray()) {
    if (!item.IsString()) return TypeError(path, key, "an array of strings");
    out->emplace_back(item.GetString(), item.GetStringLength());
  }
  return OkStatus();
}

}  // namespace tracepager::routing::json
